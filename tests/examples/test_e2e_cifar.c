/* tests/examples/test_e2e_cifar.c — end to end on real data: examples/cifar10_cnn (3 x [conv, batch norm,
 * ReLU, maxpool] at width 16, linear 10; SGD momentum 0.9, weight decay 5e-4, lr 0.01 with a
 * cosine schedule, batch 128) trained for 2 epochs on the 10k-image CIFAR-10 subset with random
 * crop + flip + normalisation, batches prepared by the prefetch thread, must reach 42% on the
 * 2,000 test images (chance is 10%).
 *
 * Measured with this recipe: ctape 48.2%, 50.1%, 48.5% (seeds 1-3, 1 thread, no prefetch), and
 * 47.9-48.9% as this test runs it (seed 1, 2 threads, prefetch; at the last commits 48.70% in
 * the float32 build and 48.85% in the sanitizer build); the same recipe in PyTorch
 * (tests/reference/cifar_recipe_torch.py) 50.4%, 50.1%, 50.0%. The bar leaves room for seed
 * noise and none for a broken loader, augmentation or layer. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

CT_TEST(e2e, cifar10_cnn_subset_two_epochs) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char exe[1100], cmd[2600];
    if (!ct_test_example_path("cifar10_cnn", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    snprintf(cmd, sizeof cmd,
             "'%s' --data '%s/cifar10' --train data_batch_sub.bin --test test_batch_sub.bin --epochs 2 --width 16 "
             "--cosine --prefetch --seed 1 --threads 2 2>&1",
             exe, shared);
    double acc;
    char last[512];
    int status = ct_test_run_for_accuracy(cmd, &acc, last, sizeof last);
    CHECK(status == 0, "cifar10_cnn exited with %d; last line: %s", status, last);
    CHECK(acc >= 0.42, "test accuracy %.4f below 0.42", acc);
    ct_test_note("test accuracy %.2f%%", 100 * acc);
}

/* A missing dataset is a message naming the path and the way to get the data, and exit 1. */
CT_TEST(e2e, cifar10_cnn_missing_data_message) {
    char exe[1100], cmd[2600], out[4096] = "";
    if (!ct_test_example_path("cifar10_cnn", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    snprintf(cmd, sizeof cmd, "'%s' --data '%s/no-such-dir' 2>&1", exe, ct_test_tmpdir());
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = 0;
    int status = pclose(p);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d; output: %s", status, out);
    CHECK(strstr(out, "no-such-dir") && strstr(out, "make data"), "output should name the path and 'make data': %s", out);
}
