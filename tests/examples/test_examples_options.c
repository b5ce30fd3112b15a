/* tests/examples/test_examples_options.c — the examples' one option parser (examples/options.h): every
 * message names the flag and the value given; a stray word is an unexpected argument. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the examples' options ---------------------------------------------------------------- */

static const char *const examples[] = {"mnist_mlp", "mnist_cnn", "cifar10_cnn", "custom_loss", "optim_race"};

/* A bad value is named with its flag and the value given. */
CT_TEST(examples, bad_value_names_the_flag_and_value) {
    static const struct {
        const char *example, *args, *want;
    } cases[] = {
        {"mnist_mlp", "--epochs 0", "--epochs must be an integer >= 1, got '0'"},
        {"mnist_mlp", "--lr -0.1", "--lr must be a number > 0, got '-0.1'"},
        {"mnist_mlp", "--batch 12x", "--batch must be an integer >= 1, got '12x'"},
        {"mnist_cnn", "--batch 0", "--batch must be an integer >= 1, got '0'"},
        {"cifar10_cnn", "--cutout -1", "--cutout must be an integer >= 0, got '-1'"},
        {"cifar10_cnn", "--seed x", "--seed must be a non-negative integer, got 'x'"},
        {"custom_loss", "--epochs 0", "--epochs must be an integer >= 1, got '0'"},
        {"optim_race", "--steps 0", "--steps must be an integer >= 1, got '0'"},
        {"mnist_mlp", "--lr", "--lr needs a value"},
        {"mnist_mlp", "--learning-rate 1", "unknown option --learning-rate"},
        {"mnist_mlp", "--epoch 2", "unknown option --epoch (did you mean --epochs?)"},
        {"mnist_mlp", "--epochs=0", "--epochs must be an integer >= 1, got '0'"},
        {"mnist_mlp", "--cosine=1", "--cosine takes no value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024], cmd[1400], out[8192];
        if (!ct_test_example_path(cases[i].example, path, sizeof path))
            CT_SKIP("examples not built next to the tests (make builds them)");
        snprintf(cmd, sizeof cmd, "'%s' %s", path, cases[i].args);
        int status = ct_test_run_capture(cmd, out, sizeof out);
        CHECK(status == 2 && strstr(out, cases[i].want), "%s %s: exit %d, said: %s", cases[i].example,
              cases[i].args, status, out);
    }
}

/* A word that is not an option is called that, with the usage after it. */
CT_TEST(examples, stray_word_is_an_unexpected_argument) {
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        char path[1024], cmd[1400], out[8192];
        if (!ct_test_example_path(examples[i], path, sizeof path))
            CT_SKIP("examples not built next to the tests (make builds them)");
        snprintf(cmd, sizeof cmd, "'%s' extra_positional --threads 1", path);
        int status = ct_test_run_capture(cmd, out, sizeof out);
        CHECK(status == 2 && strstr(out, "unexpected argument 'extra_positional'") && strstr(out, "usage:") &&
                  !strstr(out, "needs a value"),
              "%s: exit %d, said: %s", examples[i], status, out);
    }
}

/* Without --threads, an example takes $CTAPE_THREADS (it used to set all cores over it). */
CT_TEST(examples, threads_from_environment) {
    char path[1024], cmd[2600], out[8192], dir[1100];
    if (!ct_test_example_path("mnist_mlp", path, sizeof path))
        CT_SKIP("examples not built next to the tests (make builds them)");
    const char *shared = ct_test_shared_data();
    const char *split = "t10k";
    if (shared) snprintf(dir, sizeof dir, "%s/mnist", shared);
    else snprintf(dir, sizeof dir, "/usr/share/datasets/fashion-mnist");
    if (access(dir, R_OK) != 0) CT_SKIP("neither %s nor Fashion-MNIST: %s", dir, ct_test_shared_data_why());
    /* the first line names the threads; head ends the run there */
    snprintf(cmd, sizeof cmd, "CTAPE_THREADS=3 '%s' --data '%s' --train %s | head -n 1", path, dir, split);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0 && strstr(out, "; 3 threads"), "exit %d: %s", status, out);
}
