/* tests/test_lessons.c — every lesson of examples/learn runs and teaches the numbers its comments
 * promise (not its whole output: the wording may change, the numbers may not). */
#include "test.h"

#include <string.h>

/* Runs lesson `name` and checks it exits 0 and prints each of the n expected strings. */
static void lesson(const char *name, const char *const *expect, int n) {
    char exe[1024], cmd[1200], out[16384];
    if (!ct_test_example_path(name, exe, sizeof exe)) CT_SKIP("%s is not built", name);
    snprintf(cmd, sizeof cmd, "'%s' 2>&1", exe);
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "%s exited with %d:\n%s", name, status, out);
    for (int i = 0; i < n; i++) CHECK(strstr(out, expect[i]), "%s does not print \"%s\":\n%s", name, expect[i], out);
}

CT_TEST(lessons, chain_rule) {
    static const char *const expect[] = {"L = (a·b + c)·f = -8", "dL/da         6          6",
                                         "dL/db        -4         -4", "dL/dc        -2         -2",
                                         "dL/df         4          4", "o = tanh(x1·w1 + x2·w2 + b) = 0.7071",
                                         "do/dx1 = -1.5000  do/dw1 = 1.0000  do/dx2 = 0.5000  do/dw2 = 0.0000"};
    lesson("learn/01_chain_rule", expect, 7);
}
