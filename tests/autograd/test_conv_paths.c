/* tests/autograd/test_conv_paths.c — code paths of the CIFAR-network ops that the general tests reach only
 * in part: conv2d's "same width" im2col/col2im (Wo = W, stride 1: whole-plane copies) on its edge
 * cases, and batch norm on images whose blocks (one channel of one sample, H·W values) are summed
 * in more than one float piece, on data far from zero; both against the definitions in double. */
#include "../test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- conv2d, same width ------------------------------------------------------------------- */
typedef struct {
    int N, C, H, W, O, kh, kw;
    ct_conv2d_op_opts p;
} conv_case;

/* The definition and its adjoints in double: y[n,o,oh,ow] = b[o] + Σ_{c,i,j} W[o,c,i,j]·x[n, g·C/G + c,
 * oh − ph + i·dh, ow − pw + j·dw] (stride 1), and dx, dW, db for the cotangent dy. */
static void direct_conv_stride1(const conv_case *k, int Ho, int Wo, const ct_real *x, const ct_real *w,
                                const ct_real *b, const ct_real *dy, double *y, double *dx, double *dw, double *db) {
    const ct_conv2d_op_opts *p = &k->p;
    const int Cg = k->C / p->groups, Og = k->O / p->groups;
    for (int n = 0; n < k->N; n++)
        for (int o = 0; o < k->O; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    const size_t yi = (((size_t)n * k->O + o) * Ho + oh) * Wo + ow;
                    double acc = b[o];
                    db[o] += dy[yi];
                    for (int c = 0; c < Cg; c++)
                        for (int i = 0; i < k->kh; i++)
                            for (int j = 0; j < k->kw; j++) {
                                const int ih = oh - p->pad_h + i * p->dilation_h, iw = ow - p->pad_w + j * p->dilation_w;
                                if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W) continue;
                                const size_t xi = (((size_t)n * k->C + o / Og * Cg + c) * k->H + ih) * k->W + iw;
                                const size_t wi = (((size_t)o * Cg + c) * k->kh + i) * k->kw + j;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[wi] += (double)x[xi] * dy[yi];
                            }
                    y[yi] = acc;
                }
}

/* Every case has Wo = W and stride 1, so im2col and col2im copy whole planes: the plain 3x3 pad 1;
 * a 5x5 kernel on a 4x4 input (kernel rows partly or wholly in the padding); a 3x1 kernel (no
 * wrapped columns); dilation with groups; a 5x3 kernel on a 2x3 input (kernel rows with no valid
 * output row at all); a one-column input (kernel columns with no valid output column). */
CT_TEST(conv, conv2d_same_width_matches_direct_loops) {
    const conv_case cases[] = {
        {3, 2, 5, 6, 3, 3, 3, CT_CONV2D_OP(.pad_h = 1, .pad_w = 1)},
        {2, 3, 4, 4, 2, 5, 5, CT_CONV2D_OP(.pad_h = 2, .pad_w = 2)},
        {2, 2, 3, 7, 2, 3, 1, CT_CONV2D_OP(.pad_h = 1)},
        {2, 4, 6, 5, 4, 3, 3, CT_CONV2D_OP(.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2, .groups = 2)},
        {2, 1, 2, 3, 2, 5, 3, CT_CONV2D_OP(.pad_h = 2, .pad_w = 1)},
        {2, 2, 4, 1, 3, 3, 3, CT_CONV2D_OP(.pad_h = 1, .pad_w = 1)},
    };
    const int n_cases = (int)(sizeof cases / sizeof cases[0]), saved_threads = ct_get_threads();
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    double worst = 0;
    for (int k = 0; k < n_cases; k++)
        for (int threads = 1; threads <= 2; threads++) {
            const conv_case *c = &cases[k];
            ct_set_threads(threads);
            ct_tape *tape = ct_tape_new();
            ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(c->N, c->C, c->H, c->W));
            ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(c->O, c->C / c->p.groups, c->kh, c->kw));
            ct_tensor *b = ct_tensor_new_grad(CT_SHAPE(c->O));
            ct_tensor_fill_uniform(x, &rng, -1, 1), ct_tensor_fill_uniform(w, &rng, -1, 1);
            ct_tensor_fill_uniform(b, &rng, -1, 1);
            ct_tensor *y = ct_conv2d(tape, x, w, b, c->p);
            CHECK(y->shape[3] == c->W, "case %d: output width %d, input width %d", k, y->shape[3], c->W);
            ct_real *dy = malloc(y->size * sizeof *dy);
            for (size_t i = 0; i < y->size; i++) dy[i] = (ct_real)ct_rng_uniform_range(&rng, -1, 1);
            ct_backward_with(tape, y, dy);
            double *ref = calloc(y->size + x->size + w->size + b->size, sizeof *ref);
            double *ry = ref, *rdx = ry + y->size, *rdw = rdx + x->size, *rdb = rdw + w->size;
            direct_conv_stride1(c, y->shape[2], y->shape[3], x->data, w->data, b->data, dy, ry, rdx, rdw, rdb);
            const struct { const char *name; const ct_real *got; const double *want; size_t n; } parts[] = {
                {"y", y->data, ry, y->size}, {"dx", x->grad, rdx, x->size},
                {"dW", w->grad, rdw, w->size}, {"db", b->grad, rdb, b->size}};
            char what[160] = "";
            for (int q = 0; q < 4 && !*what; q++)
                for (size_t i = 0; i < parts[q].n && !*what; i++) {
                    const double err = fabs(parts[q].got[i] - parts[q].want[i]) / (1 + fabs(parts[q].want[i]));
                    worst = fmax(worst, err);
#ifdef CT_PRECISION_64
                    if (err > 1e-12)
#else
                    if (err > 1e-5)
#endif
                        snprintf(what, sizeof what, "%s[%zu] = %.8g, direct %.8g", parts[q].name, i,
                                 (double)parts[q].got[i], parts[q].want[i]);
                }
            free(ref), free(dy);
            ct_tensor_free(x), ct_tensor_free(w), ct_tensor_free(b);
            ct_tape_free(tape);
            ct_set_threads(saved_threads);
            CHECK(!*what, "case %d on %d thread(s): %s", k, threads, what);
        }
    ct_test_note("%d same-width cases x {1, 2} threads, worst rel err %.1e", n_cases, worst);
}

/* ---- batch norm on images ------------------------------------------------------------------ */
/* y = γ·(x − μ)/√(σ² + eps) per channel and, for cotangent dy,
 * dx = (γ·r/M)·(M·dy − Σ dy − x̂·Σ dy·x̂), all in double from the very values the op saw. */
static void naive_images(const ct_real *x, const ct_real *dy, const ct_real *gamma, int N, int C, int S, double eps,
                         double *y, double *dx) {
    const double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0, sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) sum += x[((size_t)n * C + c) * S + s];
        const double mu = sum / M;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) sq += pow(x[((size_t)n * C + c) * S + s] - mu, 2);
        const double r = 1 / sqrt(sq / M + eps);
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t i = ((size_t)n * C + c) * S + s;
                y[i] = gamma[c] * (x[i] - mu) * r;
                sdy += dy[i];
                sdyx += dy[i] * (x[i] - mu) * r;
            }
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t i = ((size_t)n * C + c) * S + s;
                dx[i] = gamma[c] * r / M * (M * dy[i] - sdy - (x[i] - mu) * r * sdyx);
            }
    }
}

/* 40x40 blocks: 1600 values, two pieces of the block sums; channel means 1000 and −500 with
 * standard deviation 1, where Σx² − (Σx)²/M would lose every digit in float32. On 1 and 2
 * threads (blocks split between threads, sums added per channel in a fixed order). */
CT_TEST(norm, batch_norm_images_in_pieces_far_from_zero) {
    const int N = 3, C = 2, H = 40, W = 40, S = H * W;
    const size_t len = (size_t)N * C * S;
    const int saved_threads = ct_get_threads();
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    double worst_y = 0, worst_dx = 0;
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_tape *tape = ct_tape_new();
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(N, C, H, W)), *gamma = ct_tensor_new_grad(CT_SHAPE(C));
        for (size_t i = 0; i < len; i++)
            x->data[i] = (ct_real)ct_rng_normal(&rng, (i / S) % C == 0 ? 1000 : -500, 1);
        ct_tensor_fill_uniform(gamma, &rng, 0.5, 1.5);
        ct_tape_requires_grad(tape, x);
        ct_real *dy = malloc(len * sizeof *dy);
        double *y_ref = malloc(len * sizeof *y_ref), *dx_ref = malloc(len * sizeof *dx_ref);
        for (size_t i = 0; i < len; i++) dy[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        ct_tensor *y = ct_batch_norm(tape, x, gamma, NULL, NULL, NULL, 1, 0.1, 1e-5);
        ct_backward_with(tape, y, dy);
        naive_images(x->data, dy, gamma->data, N, C, S, 1e-5, y_ref, dx_ref);
        for (size_t i = 0; i < len; i++) {
            worst_y = fmax(worst_y, fabs(y->data[i] - y_ref[i]));
            worst_dx = fmax(worst_dx, fabs(x->grad[i] - dx_ref[i]));
        }
        free(dy), free(y_ref), free(dx_ref);
        ct_tensor_free(gamma);
        ct_tape_free(tape);
    }
    ct_set_threads(saved_threads);
#ifdef CT_PRECISION_64
    const double tol_y = 1e-9, tol_dx = 1e-9;
#else
    /* x̂ = (x − μ)·r with |x| ~ 1000: float32 keeps x − μ to about 6e-5 (half an ulp of 1000) */
    const double tol_y = 5e-4, tol_dx = 5e-4;
#endif
    CHECK(worst_y <= tol_y, "worst |y error| %.3g", worst_y);
    CHECK(worst_dx <= tol_dx, "worst |dx error| %.3g", worst_dx);
    ct_test_note("worst |error| y %.1e, dx %.1e (1 and 2 threads)", worst_y, worst_dx);
}
