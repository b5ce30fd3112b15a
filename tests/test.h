/* tests/test.h — the one test runner's interface. A test is a function registered with
 *     CT_TEST(group, name) { CHECK(x == 1); ... }
 * CHECK stops the test at the first failure with the file, line and message; CT_SKIP ends it
 * as skipped (real-data tests when ../shared is absent). */
#ifndef CTAPE_TESTS_TEST_H
#define CTAPE_TESTS_TEST_H

#include "../ctape.h"
#include "../autograd/op.h" /* the op table and node fields, as op authors see them */

#include <math.h>
#include <stdio.h>

void ct_test_register(const char *group, const char *name, void (*fn)(void));
void ct_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends ": <message>" to the failure just recorded. */
void ct_test_fail_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ct_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A note printed after "ok" (an accuracy, a measured error). */
void ct_test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Non-zero once the running test has failed or skipped. */
int ct_test_stopped(void);

/* The repository that holds this test binary (the folder above build/.../tests with ctape.h and
 * tests/main.c), found from /proc/self/exe; "" when there is none. */
const char *ct_test_repository(void);
/* $CTAPE_SHARED_DATA, else ../shared/data beside the repository that holds this test binary
 * (found from /proc/self/exe, whatever the current directory), when it is a folder; else NULL. */
const char *ct_test_shared_data(void);
/* A small learnable dataset for trainer tests: n "images" of 1×1×8 bytes, 4 classes (label i mod 4),
 * pixel k bright (≈200) when k mod 4 is the label, dim (≈60) otherwise, Gaussian noise of std 30. */
ct_dataset *ct_test_blobs(int n, uint64_t seed);
/* The MLP 8-16-4 (ReLU) the trainer tests fit to ct_test_blobs, its layers named net.0 .. net.2. */
ct_module *ct_test_blobs_mlp(ct_model *m);
/* A tensor on the tape holding `values` (as many as the shape has elements) that collects a gradient:
 * the leaf of a gradient or reference-value test. */
ct_tensor *ct_test_leaf(ct_tape *tape, ct_shape shape, const double *values);
/* After ct_test_shared_data() returned NULL: the path it tried, where that came from and why it
 * is not usable ("/x (from $CTAPE_SHARED_DATA): No such file or directory"). */
const char *ct_test_shared_data_why(void);
/* Ends a real-data test as skipped with that reason. */
#define CT_SKIP_NO_SHARED_DATA() CT_SKIP("real data absent: %s", ct_test_shared_data_why())
/* The built example program `name` next to this test binary (build/.../examples/<name>);
 * returns 1 when it exists and is executable. */
int ct_test_example_path(const char *name, char *out, size_t len);
/* Runs the shell command `cmd` (an example, stderr joined), reads the "test accuracy: X" line it
 * prints into *accuracy (−1 when there is none) and its last line into `last`; returns pclose's
 * status (0: exited 0) or −1 when it could not start. */
int ct_test_run_for_accuracy(const char *cmd, double *accuracy, char *last, size_t last_len);
/* Runs the shell command `cmd` with stderr joined to stdout and keeps the output (truncated to
 * len − 1 bytes) in out; returns its exit status, or −1 when it did not exit normally. */
int ct_test_run_capture(const char *cmd, char *out, size_t len);
/* A fresh empty directory for this test's files (removed when the run ends). */
const char *ct_test_tmpdir(void);
/* The name of a locale whose decimal point is a comma: an installed one, else de_DE.UTF-8 made once
 * per run with localedef (Debian's `locales`) into the run's temporary directory, with LOCPATH set
 * to it for the rest of the run. NULL, with the reason in why, when neither works. */
const char *ct_test_comma_locale(char *why, size_t why_len);

/* Runs `body` in a child process and checks that it stops (abort) with a message on stderr
 * containing `expect`. Returns 1 when it did. */
int ct_test_expect_fatal(void (*body)(void *), void *arg, const char *expect, char *got, size_t got_len);

#define CT_TEST(group, name)                                                       \
    static void test_##group##_##name(void);                                       \
    __attribute__((constructor)) static void register_##group##_##name(void) {     \
        ct_test_register(#group, #name, test_##group##_##name);                    \
    }                                                                              \
    static void test_##group##_##name(void)

/* A gradient-check test outside tests/autograd/test_gradcheck.c's table declares the op it checks, next
 * to that test, so gradcheck/every_op_has_an_entry counts it:  CT_GRADCHECK_COVERS(conv2d) */
void ct_test_gradcheck_cover(const char *op);
int ct_test_gradcheck_covered(const char *op);
#define CT_GRADCHECK_COVERS(op)                                                     \
    __attribute__((constructor)) static void gradcheck_covers_##op(void) {          \
        ct_test_gradcheck_cover(#op);                                               \
    }

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            ct_test_fail(__FILE__, __LINE__, "%s", #cond);                         \
            __VA_OPT__(ct_test_fail_detail(__VA_ARGS__);)                          \
            return;                                                                \
        }                                                                          \
    } while (0)

/* |got − want| <= atol + rtol·|want| */
#define CHECK_NEAR(got, want, atol, rtol)                                          \
    do {                                                                           \
        double g_ = (double)(got), w_ = (double)(want);                            \
        if (!(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_))) {                      \
            ct_test_fail(__FILE__, __LINE__, "%s = %.10g, want %.10g", #got, g_, w_); \
            return;                                                                \
        }                                                                          \
    } while (0)

#define CT_SKIP(...)                                                               \
    do {                                                                           \
        ct_test_skip(__VA_ARGS__);                                                 \
        return;                                                                    \
    } while (0)

#endif
