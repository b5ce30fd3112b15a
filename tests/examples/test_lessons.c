/* tests/examples/test_lessons.c — every lesson of examples/learn runs and teaches the numbers its comments
 * promise (not its whole output: the wording may change, the numbers may not). */
#include "../test.h"

#include <string.h>

/* Runs lesson `name` (with args) and checks it exits 0 and prints each of the n expected strings. */
static void lesson_with(const char *name, const char *args, const char *const *expect, int n) {
    char exe[1024], cmd[2400], out[16384];
    if (!ct_test_example_path(name, exe, sizeof exe)) CT_SKIP("%s is not built", name);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", exe, args);
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "%s exited with %d:\n%s", name, status, out);
    for (int i = 0; i < n; i++) CHECK(strstr(out, expect[i]), "%s does not print \"%s\":\n%s", name, expect[i], out);
}

static void lesson(const char *name, const char *const *expect, int n) { lesson_with(name, "", expect, n); }

CT_TEST(lessons, chain_rule) {
    static const char *const expect[] = {"L = (a·b + c)·f = -8", "dL/da         6          6",
                                         "dL/db        -4         -4", "dL/dc        -2         -2",
                                         "dL/df         4          4", "o = tanh(x1·w1 + x2·w2 + b) = 0.7071",
                                         "do/dx1 = -1.5000  do/dw1 = 1.0000  do/dx2 = 0.5000  do/dw2 = 0.0000"};
    lesson("learn/01_chain_rule", expect, 7);
}

/* Adam's bias correction in numbers, and both pictures written and readable. */
CT_TEST(lessons, optimizers) {
    static const char *const expect[] = {"   1     0.1000   0.001000       3.1623       1.0000",
                                         "   2     0.1900   0.001999       4.2496       1.0000", "valley.png", "rosenbrock.png"};
    const char *dir = ct_test_tmpdir();
    char args[1100];
    snprintf(args, sizeof args, "'%s'", dir);
    lesson_with("learn/06_optimizers", args, expect, 4);
    for (int k = 0; k < 2; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, k ? "rosenbrock.png" : "valley.png");
        FILE *f = fopen(path, "rb");
        unsigned char magic[8] = {0};
        const int read = f && fread(magic, 1, 8, f) == 8;
        if (f) fclose(f);
        CHECK(read && !memcmp(magic, "\x89PNG", 4), "%s is not a PNG", path);
    }
}

CT_TEST(lessons, softmax_cross_entropy) {
    static const char *const expect[] = {"p − y  = (-0.3410, 0.2424, 0.0986)", "tape ∂L/∂z = (-0.3410, 0.2424, 0.0986)",
                                         "in float32 = inf", "(ctape's cross-entropy: 0)",
                                         "gradient exactly 0 (learning has stopped)",
                                         "StableMax's gradient on a wrong class is 0.008333"};
    lesson("learn/04_softmax_cross_entropy", expect, 6);
}

CT_TEST(lessons, vectors_and_broadcasting) {
    static const char *const expect[] = {"dL/db from the tape =\n     -4.500   0.000   4.500   9.000",
                                         "the sum of the rows of dL/dy =\n     -4.500   0.000   4.500   9.000",
                                         "cube with dx = dy·3x²: ok", "cube with dx = dy·x²:  FAIL",
                                         "the gradient check caught the wrong backward"};
    lesson("learn/02_vectors_and_broadcasting", expect, 5);
}

CT_TEST(lessons, mlp_step_three_ways) {
    static const char *const expect[] = {"loss: by hand 0.891628, tape 0.891628", "dW1[0][0]     0.229531     0.229531",
                                         "W1[0][0] 0.220130 -> by hand 0.105365, ct_sgd 0.105365", "The three ways agree."};
    lesson("learn/03_mlp_step_three_ways", expect, 4);
}

CT_TEST(lessons, convolution) {
    static const char *const expect[] = {"cols is (27, 30) per image", "dW[0][0][0][0] by hand 9.948754, tape 9.948754",
                                         "dX[0][0][0][0] by hand -0.469242, tape -0.469242",
                                         "agree, forward and backward."};
    lesson("learn/05_convolution", expect, 4);
}
