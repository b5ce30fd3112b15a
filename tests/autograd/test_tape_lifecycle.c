/* tests/autograd/test_tape_lifecycle.c — the tape's contract with its user: repeated backward passes,
 * forgotten resets, tensors kept past a reset, freed handles, mismatched precision, anomaly mode,
 * the fatal-error hook, and what ct_last_error() shows after a success. */
#include "../test.h"
#include "../../autograd/op.h" /* a deliberately broken op, for the gradient checker */

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- repeated backward passes -------------------------------------------------------------- */

/* y = 3x; backward of Σy, then of Σy² on the same tape: PyTorch (retain_graph=True) gives
 * dx = 3 + 18x = 21 at x = 1. Pushing the first pass's gradient of y through again gave 27. */
CT_TEST(tape_lifecycle, second_backward_is_pytorchs_retain_graph) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE_SCALAR);
    x->data[0] = 1;
    ct_tensor *y = ct_mul_scalar(tape, x, 3);
    ct_backward(tape, ct_sum_all(tape, y));
    CHECK(x->grad[0] == 3);
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, y)));
    CHECK_NEAR(x->grad[0], 21, 1e-5, 0);
    ct_tensor_free(x);
    ct_tape_free(tape);
}

typedef struct {
    ct_tensor *w1, *b1, *w2, *b2, *x;
} mlp;

static mlp mlp_new(uint64_t seed) {
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    mlp m = {ct_tensor_new_grad(CT_SHAPE(8, 5)), ct_tensor_new_grad(CT_SHAPE(8)),
             ct_tensor_new_grad(CT_SHAPE(3, 8)), ct_tensor_new_grad(CT_SHAPE(3)), ct_tensor_new(CT_SHAPE(4, 5))};
    ct_tensor *all[] = {m.w1, m.b1, m.w2, m.b2, m.x};
    for (int k = 0; k < 5; k++) ct_tensor_fill_normal(all[k], &rng, 0, 1);
    return m;
}

static void mlp_free(mlp *m) {
    ct_tensor *all[] = {m->w1, m->b1, m->w2, m->b2, m->x};
    for (int k = 0; k < 5; k++) ct_tensor_free(all[k]);
}

static ct_tensor *mlp_loss(ct_tape *tape, const mlp *m) {
    static const int labels[4] = {0, 2, 1, 2};
    ct_tensor *h = ct_relu(tape, ct_linear(tape, m->x, m->w1, m->b1));
    return ct_cross_entropy(tape, ct_linear(tape, h, m->w2, m->b2), CT_LABELS(labels, 4), CT_CE());
}

/* A second backward of the same loss adds the same gradients again (it gave 4x and 6x). */
CT_TEST(tape_lifecycle, second_backward_of_an_mlp_doubles_every_gradient) {
    ct_tape *tape = ct_tape_new();
    mlp m = mlp_new(3);
    ct_tensor *loss = mlp_loss(tape, &m);
    ct_backward(tape, loss);
    ct_tensor *params[] = {m.w1, m.b1, m.w2, m.b2};
    ct_real *first[4];
    for (int k = 0; k < 4; k++) {
        first[k] = malloc(params[k]->size * sizeof(ct_real));
        memcpy(first[k], params[k]->grad, params[k]->size * sizeof(ct_real));
    }
    ct_backward(tape, loss);
    int ok = 1;
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < params[k]->size; i++)
            ok &= fabs((double)params[k]->grad[i] - 2.0 * first[k][i]) <= 1e-6 * (1 + fabs((double)first[k][i]));
        free(first[k]);
    }
    CHECK(ok, "a second backward must double each parameter's gradient");
    mlp_free(&m);
    ct_tape_free(tape);
}

/* Steps without ct_tape_reset: each backward gives its own step's gradient (it gave 2, 6, 12). */
CT_TEST(tape_lifecycle, a_forgotten_reset_does_not_change_the_gradient) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(3, 2)), *b = ct_tensor_new_grad(CT_SHAPE(3));
    ct_tensor *x = ct_tensor_new(CT_SHAPE(2, 2));
    ct_tensor_fill(w, (ct_real)0.5);
    ct_tensor_fill(x, 1);
    for (int step = 0; step < 3; step++) {
        ct_backward(tape, ct_sum_all(tape, ct_linear(tape, x, w, b)));
        for (int j = 0; j < 3; j++) CHECK(b->grad[j] == 2, "step %d: bias gradient %g", step, (double)b->grad[j]);
        ct_tensor_zero_grad(w);
        ct_tensor_zero_grad(b);
        for (size_t i = 0; i < w->size; i++) w->data[i] -= (ct_real)0.1; /* an optimizer step */
    }
    ct_tensor_free(w), ct_tensor_free(b), ct_tensor_free(x);
    ct_tape_free(tape);
}

/* SAM calls its closure twice; a closure that forgets the reset gets the same step as one that
 * resets (it gave w[0] = −0.388 where the reset gave 0.5375). */
typedef struct {
    ct_tape *tape;
    ct_model *model;
    ct_module *fc;
    ct_tensor *x;
    int reset;
} sam_ctx;

static double sam_closure(void *p) {
    sam_ctx *c = p;
    static const int labels[4] = {1, 0, 1, 1};
    if (c->reset) ct_tape_reset(c->tape);
    ct_tensor *loss = ct_cross_entropy(c->tape, ct_forward(c->tape, c->fc, c->x), CT_LABELS(labels, 4), CT_CE());
    double value = loss->data[0];
    ct_backward(c->tape, loss);
    return value;
}

static void sam_run(int reset, ct_real *w_out) {
    sam_ctx c = {ct_tape_new(), ct_model_new(), NULL, ct_tensor_new(CT_SHAPE(4, 3)), reset};
    ct_model_set_seed(c.model, 7);
    c.fc = ct_linear_new(c.model, "fc", 3, 2);
    for (size_t i = 0; i < c.x->size; i++) c.x->data[i] = (ct_real)((double)i * 0.3 - 1.5);
    ct_optim *sam = ct_sam_new(ct_sgd_new(c.model, CT_SGD(.lr = 0.5)), CT_SAM(.rho = 0.1));
    for (int step = 0; step < 3; step++) ct_sam_step(sam, sam_closure, &c);
    memcpy(w_out, ct_linear_weight(c.fc)->data, 6 * sizeof(ct_real));
    ct_optim_free(sam);
    ct_model_free(c.model);
    ct_tensor_free(c.x);
    ct_tape_free(c.tape);
}

CT_TEST(tape_lifecycle, sam_closure_without_reset_takes_the_same_step) {
    ct_real with[6], without[6];
    sam_run(1, with);
    sam_run(0, without);
    for (int i = 0; i < 6; i++) CHECK(with[i] == without[i], "w[%d]: %g with the reset, %g without", i, (double)with[i], (double)without[i]);
}

/* ---- tensors and handles past their life ---------------------------------------------------- */

static void backward_after_reset(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(4));
    ct_tensor *loss = ct_sum_all(tape, ct_mul(tape, w, w));
    ct_tape_reset(tape);
    ct_backward(tape, loss); /* was a silent no-op */
}

static void op_after_reset(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(4));
    ct_tensor *h = ct_relu(tape, w);
    ct_tape_reset(tape);
    ct_tensor *fresh = ct_relu(tape, w); /* the next step allocates where h's data was */
    ct_add(tape, fresh, h);
}

static void tensor_of_another_tape(void *arg) {
    (void)arg;
    ct_tape *a = ct_tape_new(), *b = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(4));
    ct_add(b, w, ct_relu(a, w));
}

CT_TEST(tape_lifecycle, a_tensor_kept_past_its_step_is_refused) {
    char got[1024];
    CHECK(ct_test_expect_fatal(backward_after_reset, NULL, "earlier step", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "ct_backward") && strstr(got, "test_tape_lifecycle.c"), "got: %s", got);
    CHECK(ct_test_expect_fatal(op_after_reset, NULL, "earlier step", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "add: input 1"), "got: %s", got);
    CHECK(ct_test_expect_fatal(tensor_of_another_tape, NULL, "or of another tape", got, sizeof got), "got: %s", got);
}

/* After a reset the stale tensor's header is still readable (headers alternate between two
 * arenas), so the refusal does not depend on what the next step allocated. */
CT_TEST(tape_lifecycle, headers_survive_one_reset) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *old = ct_tape_zeros(tape, CT_SHAPE(2, 3));
    uint64_t step = old->step;
    ct_tape_reset(tape);
    for (int i = 0; i < 100; i++) ct_tape_zeros(tape, CT_SHAPE(2, 3));
    CHECK(old->step == step && old->ndim == 2 && old->shape[1] == 3);
    ct_tape_free(tape);
}

static void tape_used_after_free(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tape_free(tape);
    ct_tape_reset(tape);
}

static void tensor_freed_twice(void *arg) {
    (void)arg;
    ct_tensor *t = ct_tensor_new(CT_SHAPE(100));
    ct_tensor_free(t);
    ct_tensor_free(t);
}

static void null_tape(void *arg) {
    (void)arg;
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(4));
    ct_relu(NULL, w);
}

CT_TEST(tape_lifecycle, freed_and_null_handles_are_named) {
    char got[1024];
#ifdef __SANITIZE_ADDRESS__
    /* the sanitizer stops at the read of freed memory first, which is as clear */
    const char *freed_tape = "heap-use-after-free", *freed_tensor = "heap-use-after-free";
#else
    const char *freed_tape = "was freed with ct_tape_free", *freed_tensor = "already freed";
#endif
    CHECK(ct_test_expect_fatal(tape_used_after_free, NULL, freed_tape, got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(tensor_freed_twice, NULL, freed_tensor, got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(null_tape, NULL, "the tape is NULL", got, sizeof got), "got: %s", got);
}

/* ---- the gradient checker catches a backward that spoils its saved state -------------------- */

/* y = 2x, with a backward that halves what it saved: right once, wrong the second time. */
static void spoiling_backward(ct_tape *tape, ct_node *nd) {
    ct_real *gx = ct_grad_of(tape, nd->in[0]);
    ct_real *factor = nd->extra;
    for (size_t i = 0; i < nd->out->size; i++) gx[i] += factor[0] * nd->out->grad[i];
    factor[0] /= 2;
}

static const ct_op spoiling_op = {"spoiling_double", "y = 2x", spoiling_backward};

static ct_tensor *spoiling_double(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    (void)ctx;
    ct_node *nd;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(in[0]), &spoiling_op, in, 1, &nd);
    for (size_t i = 0; i < y->size; i++) y->data[i] = 2 * in[0]->data[i];
    if (nd) {
        ct_real *factor = ct_arena_alloc(ct_tape_arena(tape), sizeof *factor);
        factor[0] = 2;
        nd->extra = factor;
    }
    return y;
}

CT_TEST(tape_lifecycle, gradcheck_fails_a_backward_that_cannot_run_twice) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3));
    ct_tensor_fill(x, 1);
    ct_gradcheck_result r = ct_gradcheck(spoiling_double, NULL, &x, 1, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    CHECK(!r.passed && !r.repeat_ok && strstr(line, "second backward"), "%s", line);
    ct_tensor_free(x);
}

/* ---- precision at link time ------------------------------------------------------------------ */

/* Walks up from the test binary to the directory holding ctape.h. */
static int repo_and_lib(char *repo, size_t repo_len, char *lib, size_t lib_len) {
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0; /* .../build[/asan][/f64]/tests */
    snprintf(lib, lib_len, "%s/../libctape.a", exe);
    for (int up = 1; up <= 5; up++) {
        char *s = strrchr(exe, '/');
        if (!s) return 0;
        *s = 0;
        char probe[1100];
        snprintf(probe, sizeof probe, "%s/ctape.h", exe);
        if (access(probe, R_OK) == 0) {
            snprintf(repo, repo_len, "%s", exe);
            return access(lib, R_OK) == 0;
        }
    }
    return 0;
}

/* Compiles and links a one-line program against this build's libctape.a; returns the exit status
 * of the compiler and puts its output into out. */
static int build_program(const char *repo, const char *lib, const char *defines, char *out, size_t out_len) {
    const char *dir = ct_test_tmpdir();
    char src[512], cmd[4096];
    snprintf(src, sizeof src, "%s/precision.c", dir);
    FILE *f = fopen(src, "w");
    if (!f) return -1;
    fprintf(f, "#include <ctape.h>\nint main(void) {\n    ct_tensor *t = ct_tensor_new(CT_SHAPE(2));\n"
               "    ct_tensor_free(t);\n    return 0;\n}\n");
    fclose(f);
#ifdef __SANITIZE_ADDRESS__
    const char *sanitize = "-fsanitize=address,undefined"; /* the library was built with them */
#else
    const char *sanitize = "";
#endif
    snprintf(cmd, sizeof cmd, "cd %s && cc -std=c11 %s %s -I%s -fopenmp precision.c %s "
             "-L/usr/lib/$(gcc -print-multiarch)/openblas-openmp -lopenblas -lstb -lm -lpthread "
             "-o precision 2>&1", dir, sanitize, defines, repo, lib);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, out_len - 1, p);
    out[used] = 0;
    return pclose(p);
}

CT_TEST(tape_lifecycle, mismatched_precision_fails_to_link) {
    char repo[1024], lib[1200], out[4096];
    if (!repo_and_lib(repo, sizeof repo, lib, sizeof lib)) CT_SKIP("no ctape.h above the test binary");
#ifdef CT_PRECISION_64
    const char *same = "-DCT_PRECISION_64", *other = "", *missing = "ct_library_built_for_float32";
#else
    const char *same = "", *other = "-DCT_PRECISION_64", *missing = "ct_library_built_for_float64";
#endif
    int status = build_program(repo, lib, same, out, sizeof out);
    CHECK(status == 0, "the same precision must link: %s", out);
    status = build_program(repo, lib, other, out, sizeof out);
    CHECK(status != 0 && strstr(out, missing), "the other precision must not link: %s", out);
}

/* ---- anomaly mode ---------------------------------------------------------------------------- */

static void anomaly_forward(void *arg) {
    (void)arg;
    ct_set_anomaly(1);
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(3));
    w->data[0] = 1, w->data[1] = -1, w->data[2] = 2;
    ct_tensor *y = ct_log(tape, w); /* NaN at [1] */
    ct_sum_all(tape, ct_exp(tape, y));
}

static void anomaly_input(void *arg) {
    (void)arg;
    ct_set_anomaly(1);
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2, 2));
    w->name = "fc.weight";
    w->data[3] = (ct_real)INFINITY;
    ct_relu(tape, w);
}

static void anomaly_backward(void *arg) {
    (void)arg;
    ct_set_anomaly(1);
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2));
    w->data[0] = 0, w->data[1] = 4;
    ct_tensor *loss = ct_sum_all(tape, ct_sqrt(tape, w)); /* finite; d√x/dx = ∞ at 0 */
    ct_backward(tape, loss);
}

static void anomaly_at_backward(void *arg) {
    (void)arg;
    ct_set_anomaly(1);
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2));
    w->data[0] = -1, w->data[1] = 4;
    ct_backward(tape, ct_sum_all(tape, ct_sqrt(tape, ct_log(tape, ct_exp(tape, w)))));
}

CT_TEST(tape_lifecycle, anomaly_mode_names_the_first_op_and_its_call_site) {
    char got[1024];
    CHECK(ct_test_expect_fatal(anomaly_forward, NULL, "forward of op 'log'", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "test_tape_lifecycle.c") && strstr(got, "NaN at flat index 1"), "got: %s", got);
    CHECK(ct_test_expect_fatal(anomaly_input, NULL, "input of op 'relu'", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "fc.weight") && strstr(got, "+Inf at flat index 3"), "got: %s", got);
    CHECK(ct_test_expect_fatal(anomaly_backward, NULL, "backward of op 'sqrt'", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "gradient of its input 0") && strstr(got, "+Inf at flat index 0"), "got: %s", got);
    CHECK(ct_test_expect_fatal(anomaly_at_backward, NULL, "forward of op 'sqrt'", got, sizeof got), "got: %s", got);
}

CT_TEST(tape_lifecycle, anomaly_mode_off_lets_nan_through) {
    int was = ct_set_anomaly(0);
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2));
    w->data[0] = -1, w->data[1] = 1;
    ct_tensor *loss = ct_sum_all(tape, ct_log(tape, w));
    ct_backward(tape, loss);
    CHECK(isnan(loss->data[0]) && w->grad[1] == 1);
    ct_tensor_free(w);
    ct_tape_free(tape);
    ct_set_anomaly(was);
}

/* Run by anomaly_mode_from_the_environment in a child with CTAPE_ANOMALY=1; in the main run it
 * checks that anomaly mode starts off. */
CT_TEST(tape_lifecycle, anomaly_mode_starts_as_the_environment_says) {
    int on = ct_set_anomaly(0);
    ct_set_anomaly(on);
    const char *env = getenv("CTAPE_ANOMALY");
    CHECK(on == (env && strcmp(env, "0") != 0), "CTAPE_ANOMALY=%s, anomaly mode %d", env ? env : "(unset)", on);
}

/* Runs this test binary on one test with an environment variable set; returns its exit status
 * and its output (stdout and stderr) in out. */
static int run_self(const char *env, const char *test, char *out, size_t out_len) {
    char exe[1024], cmd[2400];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>&1", env, exe, test);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, out_len - 1, p);
    out[used] = 0;
    return pclose(p);
}

CT_TEST(tape_lifecycle, anomaly_mode_from_the_environment) {
    char out[4096];
    int status = run_self("CTAPE_ANOMALY=1", "anomaly_mode_starts_as_the_environment_says", out, sizeof out);
    CHECK(status == 0 && strstr(out, "1 passed"), "%s", out);
}

/* ---- the fatal-error hook -------------------------------------------------------------------- */

static jmp_buf fatal_jump;
static char fatal_message[1024];

static void catch_fatal(const char *message, void *user) {
    (void)user;
    snprintf(fatal_message, sizeof fatal_message, "%s", message);
    longjmp(fatal_jump, 1);
}

CT_TEST(tape_lifecycle, fatal_handler_lets_a_host_survive_a_programmer_error) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *a = ct_tensor_new_grad(CT_SHAPE(2, 3)), *b = ct_tensor_new(CT_SHAPE(4));
    ct_fatal_handler previous = ct_set_fatal_handler(catch_fatal, NULL);
    volatile int caught = 0;
    if (setjmp(fatal_jump) == 0) ct_add(tape, a, b);
    else caught = 1;
    ct_set_fatal_handler(previous, NULL);
    CHECK(caught, "the handler was not called");
    CHECK(strstr(fatal_message, "ct_add") && strstr(fatal_message, "do not broadcast") &&
          strstr(fatal_message, "test_tape_lifecycle.c"), "%s", fatal_message);
    /* the host goes on: the tape works after a reset, and no stale call site is left behind */
    ct_tape_reset(tape);
    ct_tensor *y = ct_sum_all(tape, ct_mul(tape, a, a));
    ct_backward(tape, y);
    CHECK(ct_site_current().file == NULL);
    ct_tensor_free(a), ct_tensor_free(b);
    ct_tape_free(tape);
}

/* ---- errors, threads, call sites ------------------------------------------------------------- */

CT_TEST(tape_lifecycle, last_error_is_cleared_by_a_later_success) {
    ct_dataset *d = ct_idx_load("/nonexistent-ctape-dir", "train");
    CHECK(d == NULL && strstr(ct_last_error(), "nonexistent-ctape-dir"), "%s", ct_last_error());
    ct_model *m = ct_model_new();
    CHECK(strstr(ct_last_error(), "nonexistent-ctape-dir"), "a call that cannot fail keeps it: %s", ct_last_error());
    CHECK(ct_model_save(m, "/nonexistent-ctape-dir/m.safetensors") != CT_OK);
    ct_loss *loss = ct_loss_parse("focal:gamma=2");
    CHECK(loss && strcmp(ct_last_error(), "no error") == 0, "after a success: %s", ct_last_error());
    ct_loss_free(loss);
    ct_model_free(m);
}

CT_TEST(tape_lifecycle, thread_counts_out_of_range_are_refused) {
    int before = ct_get_threads();
    CHECK(ct_set_threads(1000) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "1000 threads") && ct_get_threads() == before, "%s", ct_last_error());
    CHECK(ct_set_threads(before) == CT_OK);
    char out[4096];
    int status = run_self("CTAPE_THREADS=abc", "tape_lifecycle/anomaly_mode_starts", out, sizeof out);
    CHECK(status == 0 && strstr(out, "CTAPE_THREADS=abc is not a thread count"), "%s", out);
}

static void layer_with_wrong_input(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *fc = ct_linear_new(m, "fc2", 256, 10);
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, fc, ct_tape_zeros(tape, CT_SHAPE(128, 512)));
}

CT_TEST(tape_lifecycle, layer_errors_carry_the_call_site) {
    char got[1024];
    CHECK(ct_test_expect_fatal(layer_with_wrong_input, NULL, "linear 256->10 got input (128, 512)", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "called at tests/autograd/test_tape_lifecycle.c"), "got: %s", got);
}

#ifdef __SANITIZE_ADDRESS__
static void data_read_after_reset(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(16));
    ct_tape_reset(tape);
    volatile ct_real v = x->data[3];
    (void)v;
}

/* The release build cannot see a raw read of x->data after the reset (ops.h says so); the
 * sanitizer build reports it. */
CT_TEST(tape_lifecycle, sanitizer_reports_data_read_after_reset) {
    char got[4096];
    CHECK(ct_test_expect_fatal(data_read_after_reset, NULL, "use-after-poison", got, sizeof got), "got: %s", got);
}
#endif

static void model_freed_twice(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_linear_new(m, "fc", 2, 2);
    ct_model_free(m);
    ct_model_free(m);
}

static void null_model(void *arg) {
    (void)arg;
    ct_linear_new(NULL, "fc", 2, 2);
}

static void loader_freed_twice(void *arg) {
    (void)arg;
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = 4, d->channels = 1, d->height = 2, d->width = 2, d->classes = 2;
    d->images = calloc(16, 1);
    d->labels = calloc(4, sizeof *d->labels);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 2));
    ct_loader_free(l);
    ct_batch b;
    ct_loader_next(l, &b);
}

CT_TEST(tape_lifecycle, freed_and_null_models_and_loaders_are_named) {
    char got[1024];
#ifdef __SANITIZE_ADDRESS__
    const char *freed_model = "heap-use-after-free", *freed_loader = "heap-use-after-free";
#else
    const char *freed_model = "was freed with ct_model_free", *freed_loader = "was freed with ct_loader_free";
#endif
    CHECK(ct_test_expect_fatal(model_freed_twice, NULL, freed_model, got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(null_model, NULL, "the model is NULL", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "test_tape_lifecycle.c"), "got: %s", got);
    CHECK(ct_test_expect_fatal(loader_freed_twice, NULL, freed_loader, got, sizeof got), "got: %s", got);
}
