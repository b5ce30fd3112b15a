/* tests/nn/test_conv_init.c — the airbench conv initialisations: patch whitening
 * (ct_conv2d_init_whitening) and Dirac identity filters (ct_init_dirac).
 *
 * Whitening is checked by what it promises, on the images it was fitted on: the conv's outputs
 * over every patch have second moments λ_i/(λ_i + eps) = 1 − eps·|w_i|² on the diagonal (the
 * identity as eps → 0) and 0 off it, and output D + i is output i negated. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* n images (n, 3, H, W) whose channels are correlated: a shared field plus per-channel noise and
 * offsets, so the patch covariance is far from diagonal (eigenvalues spread over ~3 decades). */
static ct_tensor *correlated_images(int n, int H, int W, uint64_t seed) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(n, 3, H, W));
    ct_rng r;
    ct_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const double base = ct_rng_normal(&r, 0, 1);
                for (int c = 0; c < 3; c++)
                    t->data[(((size_t)i * 3 + c) * H + y) * W + x] =
                        (ct_real)((1 + 0.5 * c) * base + 0.05 * (c + 1) * ct_rng_normal(&r, 0, 1) + 0.2 * c);
            }
    return t;
}

/* The second moments of the conv's outputs (N, O, OH, OW) over every position: M (O×O), in double. */
static double *output_moments(const ct_tensor *y) {
    const int N = y->shape[0], O = y->shape[1];
    const size_t S = (size_t)y->shape[2] * y->shape[3];
    double *M = calloc((size_t)O * O, sizeof *M);
    for (int i = 0; i < N; i++)
        for (size_t s = 0; s < S; s++)
            for (int a = 0; a < O; a++) {
                const double ya = y->data[((size_t)i * O + a) * S + s];
                for (int b = 0; b < O; b++) M[(size_t)a * O + b] += ya * y->data[((size_t)i * O + b) * S + s];
            }
    for (size_t k = 0; k < (size_t)O * O; k++) M[k] /= (double)N * S;
    return M;
}

/* |w_i|² of filter i of a weight (O, D). */
static double filter_norm2(const ct_tensor *w, int i) {
    const size_t D = w->size / (size_t)w->shape[0];
    double s = 0;
    for (size_t q = 0; q < D; q++) s += (double)w->data[i * D + q] * w->data[i * D + q];
    return s;
}

/* Fits a k×k whitening conv on images, runs it on them, checks the moments; the worst deviation
 * from the promised matrix goes to *worst. */
static void check_whitened(const ct_tensor *images, int k, double eps, double tol, double *worst) {
    *worst = INFINITY;
    const int D = 3 * k * k;
    ct_model *m = ct_model_new();
    ct_module *conv = ct_conv2d_new(m, "whiten", 3, 2 * D, k, CT_CONV2D(.bias = 0));
    CHECK(ct_conv2d_init_whitening(conv, images, images->shape[0], eps) == CT_OK, "%s", ct_last_error());
    ct_tensor *w = ct_conv2d_weight(conv);
    CHECK(w->shape[0] == 2 * D && w->shape[1] == 3 && w->shape[2] == k && w->shape[3] == k);
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_tensor *y = ct_forward(tape, conv, (ct_tensor *)images);
    CHECK(y->shape[1] == 2 * D && y->shape[2] == images->shape[2] - k + 1);
    double *M = output_moments(y);
    double dev = 0;
    for (int a = 0; a < D; a++) {
        /* descending eigenvalues: |w_i|² = 1/(λ_i + eps) does not decrease */
        if (a > 0) CHECK(filter_norm2(w, a) >= filter_norm2(w, a - 1) * (1 - 1e-6), "filter %d sorted", a);
        for (int b = 0; b < D; b++) {
            const double want = a == b ? 1 - eps * filter_norm2(w, a) : 0;
            dev = fmax(dev, fabs(M[(size_t)a * 2 * D + b] - want));
        }
        /* the negative pair: w[D + a] = −w[a] exactly, so its outputs are output a negated */
        for (size_t q = 0; q < (size_t)D; q++) CHECK(w->data[(D + a) * (size_t)D + q] == -w->data[a * (size_t)D + q]);
        CHECK_NEAR(M[(size_t)(D + a) * 2 * D + (D + a)], M[(size_t)a * 2 * D + a], 10 * tol, 0);
        CHECK_NEAR(M[(size_t)a * 2 * D + (D + a)], -M[(size_t)a * 2 * D + a], 10 * tol, 0);
    }
    free(M);
    ct_tape_free(tape);
    ct_model_free(m);
    *worst = dev;
    CHECK(dev <= tol, "second moments of the whitened outputs deviate by %.3g (tolerance %.3g)", dev, tol);
}

static double tolerance(void) { return fmax(1e4 * CT_REAL_EPS, 1e-9); }

CT_TEST(conv_init, whitening_makes_the_patch_moments_the_identity) {
    ct_tensor *images = correlated_images(40, 8, 8, 5);
    double worst;
    check_whitened(images, 2, 1e-9, tolerance(), &worst); /* eps → 0: the identity */
    if (ct_test_stopped()) return;
    ct_test_note("2x2, eps 1e-9: worst deviation from I %.2g", worst);
    check_whitened(images, 2, 5e-4, tolerance(), &worst); /* airbench's eps: λ/(λ + eps) on the diagonal */
    if (ct_test_stopped()) return;
    check_whitened(images, 3, 5e-4, tolerance(), &worst); /* 3×3: 27 directions, 54 filters */
    ct_tensor_free(images);
}

/* The first n images only: the same weights as on a copy holding just those. */
CT_TEST(conv_init, whitening_fits_the_first_n_images) {
    ct_tensor *images = correlated_images(30, 6, 5, 8);
    ct_tensor *first = ct_tensor_new(CT_SHAPE(10, 3, 6, 5));
    memcpy(first->data, images->data, first->size * sizeof *first->data);
    ct_model *m = ct_model_new();
    ct_module *a = ct_conv2d_new(m, "a", 3, 24, 2, CT_CONV2D());
    ct_module *b = ct_conv2d_new(m, "b", 3, 24, 2, CT_CONV2D());
    ct_module *all = ct_conv2d_new(m, "all", 3, 24, 2, CT_CONV2D());
    ct_tensor *bias = ct_conv2d_bias(a);
    ct_real bias0[24];
    memcpy(bias0, bias->data, sizeof bias0);
    CHECK(ct_conv2d_init_whitening(a, images, 10, 5e-4) == CT_OK);
    CHECK(ct_conv2d_init_whitening(b, first, 10, 5e-4) == CT_OK);
    CHECK(ct_conv2d_init_whitening(all, images, 30, 5e-4) == CT_OK);
    CHECK(memcmp(ct_conv2d_weight(a)->data, ct_conv2d_weight(b)->data, 96 * sizeof(ct_real)) == 0);
    CHECK(memcmp(ct_conv2d_weight(a)->data, ct_conv2d_weight(all)->data, 96 * sizeof(ct_real)) != 0);
    CHECK(memcmp(bias->data, bias0, sizeof bias0) == 0, "the bias is left as it was");
    ct_model_free(m);
    ct_tensor_free(first);
    ct_tensor_free(images);
}

/* Data that cannot be whitened returns an error and leaves the weight as it was. */
CT_TEST(conv_init, whitening_refuses_bad_data_and_keeps_the_weight) {
    ct_model *m = ct_model_new();
    ct_module *conv = ct_conv2d_new(m, "stem", 3, 24, 2, CT_CONV2D());
    ct_tensor *w = ct_conv2d_weight(conv);
    ct_real before[96];
    memcpy(before, w->data, sizeof before);
    ct_tensor *images = correlated_images(4, 5, 5, 2);
    images->data[2 * 75 + 7] = NAN;
    CHECK(ct_conv2d_init_whitening(conv, images, 4, 5e-4) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "stem") && strstr(ct_last_error(), "image 2") &&
          strstr(ct_last_error(), "non-finite"), "%s", ct_last_error());
    CHECK(memcmp(w->data, before, sizeof before) == 0);
    CHECK(ct_conv2d_init_whitening(conv, images, 2, 5e-4) == CT_OK, "image 2 is not among the first 2");
    memcpy(w->data, before, sizeof before);
    /* flat images: every patch is (v, v, ..., v), Σ has rank 1, and eps 0 cannot invert it */
    for (size_t q = 0; q < images->size; q++) images->data[q] = (ct_real)(0.1 * (double)(q / 75));
    CHECK(ct_conv2d_init_whitening(conv, images, 4, 0) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "eigenvalue") && strstr(ct_last_error(), "eps"), "%s", ct_last_error());
    CHECK(memcmp(w->data, before, sizeof before) == 0);
    CHECK(ct_conv2d_init_whitening(conv, images, 4, 5e-4) == CT_OK, "eps > 0 makes it invertible: %s",
          ct_last_error());
    for (size_t q = 0; q < w->size; q++) CHECK(isfinite(w->data[q]));
    ct_tensor_free(images);
    ct_model_free(m);
}

typedef struct {
    int out, kernel, groups, channels;
} whiten_case;

static void whiten_wrong(void *arg) {
    const whiten_case *c = arg;
    ct_model *m = ct_model_new();
    ct_module *conv = ct_conv2d_new(m, "stem", 3, c->out, c->kernel, CT_CONV2D(.groups = c->groups));
    ct_tensor *images = ct_tensor_new(CT_SHAPE(2, c->channels, 4, 4));
    ct_conv2d_init_whitening(conv, images, 2, 5e-4);
}

CT_TEST(conv_init, whitening_refuses_a_conv_of_the_wrong_width) {
    const struct {
        whiten_case c;
        const char *expect;
    } cases[] = {
        {{16, 2, 1, 3}, "stem has 16 output channels; whitening 2x2 patches of 3 channels needs 2*3*2*2 = 24"},
        {{24, 3, 1, 3}, "needs 2*3*3*3 = 54"},
        {{24, 2, 3, 3}, "groups 1"},
        {{24, 2, 1, 1}, "must be (N, 3, H, W)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char got[512];
        CHECK(ct_test_expect_fatal(whiten_wrong, (void *)&cases[k].c, cases[k].expect, got, sizeof got) &&
              strstr(got, "ct_conv2d_init_whitening"), "case %zu: stderr was: %s", k, got);
    }
}

/* airbench's own setting on real data: the first 1000 CIFAR-10 training images, normalised with
 * its mean and std, 2×2 patches, eps 5e-4. */
CT_TEST(conv_init, whitening_cifar10_patches) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char path[1024];
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_1.bin", shared);
    ct_dataset *d = ct_cifar10_load(path, NULL);
    if (!d) CT_SKIP("%s", ct_last_error());
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 1000, .shuffle = 0, .normalize = 1,
                                              .mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2470f, 0.2435f, 0.2616f}));
    ct_batch b;
    CHECK(ct_loader_next(l, &b) && b.n == 1000);
    double worst;
    check_whitened(b.x, 2, 5e-4, tolerance(), &worst);
    ct_loader_free(l);
    ct_dataset_free(d);
    if (!ct_test_stopped()) ct_test_note("1000 images, 961,000 patches: worst deviation %.2g", worst);
}

/* ---- Dirac ------------------------------------------------------------------------------------ */

/* A 3×3 conv with padding 1 whose first min(out, in) filters are Dirac passes those input channels
 * through exactly; the other filters keep the default init. */
static void check_dirac_pass_through(int in, int out) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 9);
    ct_module *conv = ct_conv2d_new(m, "c", in, out, 3, CT_CONV2D(.padding = 1, .bias = 0));
    ct_tensor *w = ct_conv2d_weight(conv);
    const int f = in < out ? in : out;
    const size_t per = (size_t)in * 9;
    ct_real *default_init = malloc(w->size * sizeof *default_init);
    memcpy(default_init, w->data, w->size * sizeof *default_init);
    ct_init_dirac(w, f);
    for (int i = 0; i < out; i++)
        for (size_t q = 0; q < per; q++) {
            const ct_real want = i < f ? (q == (size_t)i * 9 + 4) : default_init[i * per + q];
            CHECK(w->data[i * per + q] == want, "filter %d [%zu] = %g, want %g", i, q, (double)w->data[i * per + q],
                  (double)want);
        }
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, in, 5, 6));
    ct_rng r;
    ct_rng_seed(&r, 4);
    ct_tensor_fill_uniform(x, &r, -3, 3);
    ct_tensor *y = ct_forward(tape, conv, x);
    CHECK(y->shape[1] == out && y->shape[2] == 5 && y->shape[3] == 6);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < f; c++)
            CHECK(memcmp(y->data + ((size_t)n * out + c) * 30, x->data + ((size_t)n * in + c) * 30, 30 * sizeof(ct_real)) == 0,
                  "%d->%d: output channel %d of sample %d is input channel %d", in, out, c, n, c);
    ct_tape_free(tape);
    free(default_init);
    ct_model_free(m);
}

CT_TEST(conv_init, dirac_filters_pass_their_channels_through) {
    check_dirac_pass_through(4, 8); /* airbench: out > in, the first in filters */
    if (ct_test_stopped()) return;
    check_dirac_pass_through(6, 3); /* out < in: every filter */
    if (ct_test_stopped()) return;
    check_dirac_pass_through(5, 5);
}

static void dirac_too_many(void *arg) {
    (void)arg;
    ct_tensor *w = ct_tensor_new(CT_SHAPE(8, 4, 3, 3));
    ct_init_dirac(w, 5);
}

static void dirac_matrix(void *arg) {
    (void)arg;
    ct_init_dirac(ct_tensor_new(CT_SHAPE(4, 4)), 4);
}

CT_TEST(conv_init, dirac_refuses_more_filters_than_channels) {
    char got[512];
    CHECK(ct_test_expect_fatal(dirac_too_many, NULL, "filters 5 must be in 0..min(out 8, in 4)", got, sizeof got),
          "stderr was: %s", got);
    CHECK(ct_test_expect_fatal(dirac_matrix, NULL, "needs a conv weight", got, sizeof got), "stderr was: %s", got);
}
