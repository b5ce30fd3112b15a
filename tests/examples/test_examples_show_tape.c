/* tests/examples/test_examples_show_tape.c — examples/mnist_mlp --show-tape prints one training step's
 * tape (every node, its inputs and its math) and then trains on. */
#include "../test.h"

#include <string.h>

CT_TEST(examples, mnist_mlp_show_tape) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char exe[1100], cmd[2600];
    static char out[1 << 16];
    if (!ct_test_example_path("mnist_mlp", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    /* ten steps of 1000 images: the test split serves as a small training set */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s/mnist' --train t10k --batch 1000 --threads 1 --show-tape", exe, shared);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    const char *tape = strstr(out, "tape: 6 nodes");
    CHECK(tape, "no tape printed: %s", out);
    CHECK(strstr(tape, "linear") && strstr(tape, "fc1.weight(512, 784)") && strstr(tape, "relu") &&
              strstr(tape, "cross_entropy") && strstr(tape, "-> ()"),
          "%s", tape);
    CHECK(!strstr(tape + 1, "tape: "), "printed more than once: %s", out);
    CHECK(strstr(tape, "test accuracy: "), "did not train on after the tape: %s", out);
}
