/* tests/examples/test_airbench.c — examples/cifar10_airbench's code path (whitening init, Dirac convs,
 * fixed-scale batch norm, decoupled SGD with the triangular schedule, weight averaging, the frozen
 * whitening weight, alternating flip, TTA) on a few hundred real CIFAR-10 images for one epoch: the
 * loss is finite and falls (or the training accuracy beats chance), and the end of the run prints
 * the accuracy with and without TTA, the time and the 94% line. Missing data is a message and exit 1. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

CT_TEST(examples, airbench_one_epoch_on_a_few_hundred_images) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char exe[1100], cmd[2600];
    static char out[1 << 16];
    if (!ct_test_example_path("cifar10_airbench", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    /* 192 images in 6 batches of 32; 50 test images (7 forward passes each with TTA) */
    snprintf(cmd, sizeof cmd,
             "'%s' --data '%s/cifar-10-batches-bin' --subset 192 --test-subset 50 --batch 32 --epochs 1 --seed 1 "
             "--threads 1",
             exe, shared);
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "data: 192 training and 50 test images"), "%s", out);
    CHECK(strstr(out, "airbench94: 6 steps of 32 (1 epochs of 6)"), "%s", out);
    const char *end = strstr(out, "train loss ");
    double mean = NAN, first = NAN, last = NAN, train_acc = NAN, test_acc = NAN;
    CHECK(end && sscanf(end, "train loss %lf (first batch %lf, last %lf)  train acc %lf%%  test acc %lf%%", &mean,
                        &first, &last, &train_acc, &test_acc) == 5,
          "no epoch line: %s", out);
    CHECK(isfinite(mean) && isfinite(first) && isfinite(last), "%s", end);
    /* ln 10 = 2.30 at the start; falling within the epoch, or above chance (10%) */
    CHECK(last < first || train_acc > 10, "loss %g -> %g, train accuracy %g%%", first, last, train_acc);
    double plain = -1, tta = -1;
    const char *p = strstr(out, "test accuracy: "), *q = strstr(out, "test accuracy with TTA: ");
    CHECK(p && sscanf(p, "test accuracy: %lf", &plain) == 1 && plain >= 0 && plain <= 1, "%s", out);
    CHECK(q && sscanf(q, "test accuracy with TTA: %lf", &tta) == 1 && tta >= 0 && tta <= 1, "%s", out);
    CHECK(strstr(out, "time: ") && strstr(out, "wall time"), "%s", out);
    CHECK(strstr(out, "94% reached: no"), "%s", out);
    ct_test_note("loss %.3f -> %.3f, train accuracy %.1f%%, test %.0f%% (TTA %.0f%%) after 6 steps", first, last,
                 train_acc, 100 * plain, 100 * tta);
}

CT_TEST(examples, airbench_missing_data_is_a_message) {
    char exe[1100], cmd[2600], out[4096] = "";
    if (!ct_test_example_path("cifar10_airbench", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    snprintf(cmd, sizeof cmd, "'%s' --data '%s/no-such-dir'", exe, ct_test_tmpdir());
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 1, "exit %d: %s", status, out);
    CHECK(strstr(out, "no-such-dir") && strstr(out, "--data"), "%s", out);
}
