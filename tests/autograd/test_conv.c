/* tests/autograd/test_conv.c — conv2d and pooling: PyTorch reference values and gradients
 * (tests/reference/conv_ref.h), a direct seven-loop convolution on larger random configurations
 * (batch split across threads), tie and NaN rules of max pooling, gradient accumulation, error
 * messages, the layers, and the gradient checks (group gradcheck, float64 build). */
#include "../test.h"
#include "../reference/conv_ref.h"

#include <stdlib.h>
#include <string.h>

/* Tolerances for comparing with float64 PyTorch: float32 sums of a few hundred products keep
 * about six digits. */
#ifdef CT_PRECISION_64
#define REF_RTOL 1e-10
#define REF_ATOL 1e-12
#else
#define REF_RTOL 1e-4
#define REF_ATOL 2e-5
#endif

static int near(double got, double want, double atol, double rtol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* The reference inputs are float32 values written with 9 digits, which identify them exactly:
 * reading them through float gives the very numbers PyTorch saw, in either build. */
static ct_real ref_value(double v) { return (ct_real)(float)v; }

static ct_tensor *tape_input(ct_tape *tape, ct_shape shape, const double *values) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    for (size_t i = 0; i < t->size; i++) t->data[i] = ref_value(values[i]);
    ct_tape_requires_grad(tape, t);
    return t;
}

/* First index where got and want differ beyond the tolerance, or -1. */
static long first_mismatch(const ct_real *got, const double *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!near(got[i], want[i], REF_ATOL, REF_RTOL)) return (long)i;
    return -1;
}

static ct_conv2d_op_opts ref_conv_params(const conv_ref_case *rc) {
    const int *d = rc->dims;
    return CT_CONV2D_OP(.stride_h = d[7], .stride_w = d[8], .pad_h = d[9], .pad_w = d[10],
                            .dilation_h = d[11], .dilation_w = d[12], .groups = d[13]);
}

/* ---- PyTorch references ---------------------------------------------------------------------- */
CT_TEST(conv, conv2d_matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < CONV_REF_COUNT; k++) {
        const conv_ref_case *rc = &conv_ref_cases[k];
        const int *d = rc->dims, N = d[0], C = d[1], O = d[4], G = d[13];
        ct_tape_reset(tape);
        ct_tensor *x = tape_input(tape, CT_SHAPE(N, C, d[2], d[3]), rc->x);
        ct_tensor *w = tape_input(tape, CT_SHAPE(O, C / G, d[5], d[6]), rc->w);
        ct_tensor *b = rc->b ? tape_input(tape, CT_SHAPE(O), rc->b) : NULL;
        ct_tensor *y = ct_conv2d(tape, x, w, b, ref_conv_params(rc));
        CHECK(y->ndim == 4 && y->shape[0] == N && y->shape[1] == O && y->shape[2] == rc->Ho && y->shape[3] == rc->Wo,
              "%s: output %s, PyTorch (%d, %d, %d, %d)", rc->name, ct_tensor_shape_str(y, (char[96]){0}, 96), N, O,
              rc->Ho, rc->Wo);
        long i = first_mismatch(y->data, rc->y, y->size);
        CHECK(i < 0, "%s: y[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)y->data[i], rc->y[i]);
        ct_real *cot = ct_arena_alloc(ct_tape_arena(tape), y->size * sizeof *cot);
        for (size_t j = 0; j < y->size; j++) cot[j] = ref_value(rc->cotangent[j]);
        ct_backward_with(tape, y, cot);
        i = first_mismatch(x->grad, rc->dx, x->size);
        CHECK(i < 0, "%s: dx[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)x->grad[i], rc->dx[i]);
        i = first_mismatch(w->grad, rc->dw, w->size);
        CHECK(i < 0, "%s: dw[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)w->grad[i], rc->dw[i]);
        if (b) {
            i = first_mismatch(b->grad, rc->db, b->size);
            CHECK(i < 0, "%s: db[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)b->grad[i], rc->db[i]);
        }
    }
    ct_tape_free(tape);
    ct_test_note("%d configurations: y, dx, dW, db", CONV_REF_COUNT);
}

CT_TEST(conv, pooling_matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < POOL_REF_COUNT; k++) {
        const pool_ref_case *rc = &pool_ref_cases[k];
        const int *d = rc->dims;
        ct_tape_reset(tape);
        ct_tensor *x = tape_input(tape, CT_SHAPE(d[0], d[1], d[2], d[3]), rc->x);
        ct_pool2d_opts p = CT_POOL2D(.kernel_h = d[4], .kernel_w = d[5], .stride_h = d[6], .stride_w = d[7],
                                              .pad_h = d[8], .pad_w = d[9], .count_include_pad = d[10]);
        ct_tensor *y = rc->kind == 0 ? ct_max_pool2d(tape, x, p)
                       : rc->kind == 1 ? ct_avg_pool2d(tape, x, p)
                                       : ct_global_avg_pool2d(tape, x);
        const size_t want_size = (size_t)d[0] * d[1] * rc->Ho * rc->Wo;
        CHECK(y->size == want_size && y->ndim == (rc->kind == 2 ? 2 : 4) &&
              (rc->kind == 2 || (y->shape[2] == rc->Ho && y->shape[3] == rc->Wo)),
              "%s: output %s, PyTorch %dx%d per plane", rc->name, ct_tensor_shape_str(y, (char[96]){0}, 96), rc->Ho,
              rc->Wo);
        long i = first_mismatch(y->data, rc->y, y->size);
        CHECK(i < 0, "%s: y[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)y->data[i], rc->y[i]);
        ct_real *cot = ct_arena_alloc(ct_tape_arena(tape), y->size * sizeof *cot);
        for (size_t j = 0; j < y->size; j++) cot[j] = ref_value(rc->cotangent[j]);
        ct_backward_with(tape, y, cot);
        i = first_mismatch(x->grad, rc->dx, x->size);
        CHECK(i < 0, "%s: dx[%ld] = %.10g, PyTorch %.10g", rc->name, i, (double)x->grad[i], rc->dx[i]);
    }
    ct_tape_free(tape);
    ct_test_note("%d configurations: y, dx", POOL_REF_COUNT);
}

/* ---- against a direct convolution ------------------------------------------------------------ */
/* The definition, in seven loops, in double: y[n,o,oh,ow] = b[o] + Σ_{c,i,j} W[o,c,i,j]·x[n, g·C/G + c,
 * oh·sh − ph + i·dh, ow·sw − pw + j·dw], and the adjoint loops for dx, dW, db with cotangent dy. */
typedef struct {
    int N, C, H, W, O, kh, kw;
    ct_conv2d_op_opts p;
} conv_cfg;

static void direct_conv(const conv_cfg *c, int Ho, int Wo, const ct_real *x, const ct_real *w, const ct_real *b,
                        const ct_real *dy, double *y, double *dx, double *dw, double *db) {
    const ct_conv2d_op_opts *p = &c->p;
    const int Cg = c->C / p->groups, Og = c->O / p->groups;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    const size_t yi = (((size_t)n * c->O + o) * Ho + oh) * Wo + ow;
                    double acc = b ? b[o] : 0;
                    if (db) db[o] += dy[yi];
                    for (int ci = 0; ci < Cg; ci++)
                        for (int i = 0; i < c->kh; i++)
                            for (int j = 0; j < c->kw; j++) {
                                const int ih = oh * p->stride_h - p->pad_h + i * p->dilation_h;
                                const int iw = ow * p->stride_w - p->pad_w + j * p->dilation_w;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                const int ch = o / Og * Cg + ci;
                                const size_t xi = (((size_t)n * c->C + ch) * c->H + ih) * c->W + iw;
                                const size_t wi = (((size_t)o * Cg + ci) * c->kh + i) * c->kw + j;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[wi] += (double)x[xi] * dy[yi];
                            }
                    y[yi] = acc;
                }
}

static void fill_uniform(ct_tensor *t, ct_rng *rng) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)ct_rng_uniform_range(rng, -1, 1);
}

/* Larger than the references, with batches that split across threads: the per-thread column
 * buffers and weight-gradient partials must add up to the direct loops, on 1 and 2 threads. */
CT_TEST(conv, conv2d_matches_direct_loops) {
    const conv_cfg cfgs[] = {
        {7, 3, 12, 11, 8, 3, 3, CT_CONV2D_OP(.pad_h = 1, .pad_w = 1)},
        {5, 6, 9, 10, 4, 3, 3, CT_CONV2D_OP(.stride_h = 2, .stride_w = 2, .groups = 2)},
        {4, 4, 10, 10, 8, 3, 3, CT_CONV2D_OP(.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2, .groups = 4)},
        {6, 8, 5, 7, 6, 1, 1, CT_CONV2D_OP()},
        {3, 2, 11, 6, 5, 4, 2, CT_CONV2D_OP(.stride_h = 3, .stride_w = 1, .pad_h = 2, .pad_w = 1)},
        {9, 1, 28, 28, 4, 3, 3, CT_CONV2D_OP()},
    };
    const int saved_threads = ct_get_threads();
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    double worst = 0;
    for (int k = 0; k < (int)(sizeof cfgs / sizeof cfgs[0]); k++)
        for (int threads = 1; threads <= 2; threads++) {
            const conv_cfg *c = &cfgs[k];
            ct_set_threads(threads);
            ct_tape *tape = ct_tape_new();
            ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(c->N, c->C, c->H, c->W));
            ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(c->O, c->C / c->p.groups, c->kh, c->kw));
            ct_tensor *b = ct_tensor_new_grad(CT_SHAPE(c->O));
            fill_uniform(x, &rng), fill_uniform(w, &rng), fill_uniform(b, &rng);
            ct_tensor *y = ct_conv2d(tape, x, w, b, c->p);
            ct_real *dy = malloc(y->size * sizeof *dy);
            for (size_t i = 0; i < y->size; i++) dy[i] = (ct_real)ct_rng_uniform_range(&rng, -1, 1);
            ct_backward_with(tape, y, dy);
            double *ref = calloc(y->size + x->size + w->size + b->size, sizeof *ref);
            double *ry = ref, *rdx = ry + y->size, *rdw = rdx + x->size, *rdb = rdw + w->size;
            direct_conv(c, y->shape[2], y->shape[3], x->data, w->data, b->data, dy, ry, rdx, rdw, rdb);
            const struct { const char *name; const ct_real *got; const double *want; size_t n; } parts[] = {
                {"y", y->data, ry, y->size}, {"dx", x->grad, rdx, x->size},
                {"dW", w->grad, rdw, w->size}, {"db", b->grad, rdb, b->size}};
            int bad = 0;
            char what[160] = "";
            for (int q = 0; q < 4 && !bad; q++)
                for (size_t i = 0; i < parts[q].n && !bad; i++) {
                    double err = fabs(parts[q].got[i] - parts[q].want[i]);
                    worst = fmax(worst, err / (1 + fabs(parts[q].want[i])));
                    if (!near(parts[q].got[i], parts[q].want[i], 1e-4, 1e-4)) {
                        bad = 1;
                        snprintf(what, sizeof what, "%s[%zu] = %.8g, direct %.8g", parts[q].name, i,
                                 (double)parts[q].got[i], parts[q].want[i]);
                    }
                }
            free(ref), free(dy);
            ct_tensor_free(x), ct_tensor_free(w), ct_tensor_free(b);
            ct_tape_free(tape);
            ct_set_threads(saved_threads);
            CHECK(!bad, "config %d on %d thread(s): %s", k, threads, what);
        }
    ct_test_note("6 configurations x {1, 2} threads, worst rel err %.1e", worst);
}

/* ---- shapes ------------------------------------------------------------------------------------ */
CT_TEST(conv, output_shapes) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 4, 28, 28));
    ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(6, 4, 3, 3));
    const struct { ct_conv2d_op_opts p; int ho, wo; } cases[] = {
        {CT_CONV2D_OP(), 26, 26},
        {CT_CONV2D_OP(.pad_h = 1, .pad_w = 1), 28, 28},
        {CT_CONV2D_OP(.stride_h = 2, .stride_w = 2), 13, 13},
        {CT_CONV2D_OP(.stride_h = 2, .stride_w = 3, .pad_h = 1), 14, 9},
        {CT_CONV2D_OP(.dilation_h = 2, .dilation_w = 3), 24, 22},
    };
    for (int k = 0; k < 5; k++) {
        ct_tensor *y = ct_conv2d(tape, x, w, NULL, cases[k].p);
        CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 6 && y->shape[2] == cases[k].ho &&
              y->shape[3] == cases[k].wo, "case %d: got %s, want (2, 6, %d, %d)", k,
              ct_tensor_shape_str(y, (char[96]){0}, 96), cases[k].ho, cases[k].wo);
    }
    ct_tensor *m = ct_max_pool2d(tape, x, CT_POOL2D());
    CHECK(m->shape[2] == 14 && m->shape[3] == 14);
    m = ct_max_pool2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 1, 13, 13)), CT_POOL2D()); /* floor: 6 */
    CHECK(m->shape[2] == 6 && m->shape[3] == 6);
    m = ct_avg_pool2d(tape, x, CT_POOL2D(.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                                                .pad_w = 1));
    CHECK(m->shape[2] == 14 && m->shape[3] == 14);
    ct_tensor *g = ct_global_avg_pool2d(tape, x);
    CHECK(g->ndim == 2 && g->shape[0] == 2 && g->shape[1] == 4);
    ct_tape_free(tape);
}

/* ---- max pooling's rules ------------------------------------------------------------------------ */
/* Ties: the whole gradient of a window goes to its first maximum in row-major order. With
 * overlapping windows (stride 1) an element that is the first maximum of several windows
 * collects all their gradients. */
CT_TEST(conv, max_pool2d_ties_go_to_the_first_maximum) {
    ct_tape *tape = ct_tape_new();
    /* one 3x4 plane of equal values; 2x2 windows, stride 1 -> 2x3 outputs */
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1, 1, 3, 4));
    ct_tensor_fill(x, 0.5);
    ct_tape_requires_grad(tape, x);
    ct_tensor *y = ct_max_pool2d(tape, x, CT_POOL2D(.stride_h = 1, .stride_w = 1));
    const ct_real dy[6] = {1, 10, 100, 1000, 10000, 100000};
    ct_backward_with(tape, y, dy);
    /* window (oh, ow) starts at (oh, ow), its first element: dx[oh, ow] = dy[oh, ow] */
    const double want[12] = {1, 10, 100, 0, 1000, 10000, 100000, 0, 0, 0, 0, 0};
    for (int i = 0; i < 12; i++)
        CHECK(x->grad[i] == want[i], "dx[%d] = %g, want %g", i, (double)x->grad[i], want[i]);

    /* a tie across two windows' border with a later, larger maximum elsewhere */
    ct_tape_reset(tape);
    const double v[8] = {3, 3, 1, 7, 2, 3, 7, 0}; /* (1,1,2,4): windows [3 3|2 3] and [1 7|7 0] */
    ct_tensor *x2 = ct_tape_zeros(tape, CT_SHAPE(1, 1, 2, 4));
    for (int i = 0; i < 8; i++) x2->data[i] = (ct_real)v[i];
    ct_tape_requires_grad(tape, x2);
    ct_tensor *y2 = ct_max_pool2d(tape, x2, CT_POOL2D());
    CHECK(y2->data[0] == 3 && y2->data[1] == 7);
    ct_backward(tape, ct_sum_all(tape, y2));
    const double want2[8] = {1, 0, 0, 1, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        CHECK(x2->grad[i] == want2[i], "dx[%d] = %g, want %g", i, (double)x2->grad[i], want2[i]);
    ct_tape_free(tape);
}

/* −∞ padding: a window over the border of all-negative values takes the largest real value,
 * never the padding (a zero padding would give 0). A NaN in a window wins, as in PyTorch. */
CT_TEST(conv, max_pool2d_padding_is_minus_infinity_and_nan_wins) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1, 1, 3, 3));
    for (int i = 0; i < 9; i++) x->data[i] = (ct_real)(-1 - i);
    ct_tensor *y = ct_max_pool2d(tape, x, CT_POOL2D(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
    CHECK(y->shape[2] == 2 && y->shape[3] == 2);
    const double want[4] = {-1, -2, -4, -5};
    for (int i = 0; i < 4; i++) CHECK(y->data[i] == want[i], "y[%d] = %g, want %g", i, (double)y->data[i], want[i]);
    x->data[4] = NAN;
    y = ct_max_pool2d(tape, x, CT_POOL2D(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
    /* 2x2 windows, stride 2, padding 1: only window (1, 1) = {x4, x5, x7, x8} holds x4 */
    for (int i = 0; i < 3; i++) CHECK(y->data[i] == want[i], "y[%d] = %g, want %g", i, (double)y->data[i], want[i]);
    CHECK(isnan(y->data[3]), "the window holding the NaN: y = %g", (double)y->data[3]);
    ct_tape_free(tape);
}

/* count_include_pad on a corner window: 1 of its 4 positions is an input element. */
CT_TEST(conv, avg_pool2d_count_include_pad) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1, 1, 2, 2));
    ct_tensor_fill(x, 8);
    ct_pool2d_opts p = CT_POOL2D(.pad_h = 1, .pad_w = 1);
    ct_tensor *with = ct_avg_pool2d(tape, x, p);
    p.count_include_pad = 0;
    ct_tensor *without = ct_avg_pool2d(tape, x, p);
    for (int i = 0; i < 4; i++) {
        CHECK(with->data[i] == 2, "included: y[%d] = %g, want 8/4", i, (double)with->data[i]);
        CHECK(without->data[i] == 8, "excluded: y[%d] = %g, want 8/1", i, (double)without->data[i]);
    }
    ct_tape_free(tape);
}

/* ---- the tape ------------------------------------------------------------------------------------- */
/* Backward accumulates: two steps without zeroing give twice the gradient of one, and a tensor
 * used by two convolutions gets the sum of both. */
static void two_step_grads(int steps, int reuse, ct_tensor *x, ct_tensor *w, ct_tensor *b) {
    ct_tensor_zero_grad(x), ct_tensor_zero_grad(w), ct_tensor_zero_grad(b);
    ct_tape *tape = ct_tape_new();
    for (int s = 0; s < steps; s++) {
        ct_conv2d_op_opts p = CT_CONV2D_OP(.pad_h = 1, .pad_w = 1);
        ct_tensor *y = ct_conv2d(tape, x, w, b, p);
        if (reuse) y = ct_add(tape, y, ct_conv2d(tape, x, w, b, p));
        y = ct_max_pool2d(tape, ct_relu(tape, y), CT_POOL2D());
        ct_backward(tape, ct_sum_all(tape, ct_global_avg_pool2d(tape, y)));
        ct_tape_reset(tape);
    }
    ct_tape_free(tape);
}

CT_TEST(conv, backward_accumulates) {
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3, 2, 6, 6)), *w = ct_tensor_new_grad(CT_SHAPE(4, 2, 3, 3));
    ct_tensor *b = ct_tensor_new_grad(CT_SHAPE(4));
    fill_uniform(x, &rng), fill_uniform(w, &rng), fill_uniform(b, &rng);
    ct_tensor *grads[3] = {x, w, b};
    ct_real *once[3];
    two_step_grads(1, 0, x, w, b);
    for (int k = 0; k < 3; k++) {
        once[k] = malloc(grads[k]->size * sizeof(ct_real));
        memcpy(once[k], grads[k]->grad, grads[k]->size * sizeof(ct_real));
    }
    int ok = 1;
    for (int mode = 0; mode < 2 && ok; mode++) {
        if (mode == 0) two_step_grads(2, 0, x, w, b); /* two steps */
        else two_step_grads(1, 1, x, w, b);           /* one step, x, w and b used twice */
        for (int k = 0; k < 3 && ok; k++)
            for (size_t i = 0; i < grads[k]->size && ok; i++)
                ok = near(grads[k]->grad[i], 2 * once[k][i], 1e-6, 1e-5);
    }
    for (int k = 0; k < 3; k++) free(once[k]);
    ct_tensor_free(x), ct_tensor_free(w), ct_tensor_free(b);
    CHECK(ok, "gradients double when the graph is run twice or its inputs are used twice");
}

CT_TEST(conv, no_grad_records_nothing) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2, 1, 3, 3));
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 1, 8, 8));
    int was = ct_tape_grad_enabled(tape, 0);
    ct_tensor *y = ct_conv2d(tape, x, w, NULL, CT_CONV2D_OP());
    y = ct_avg_pool2d(tape, ct_max_pool2d(tape, y, CT_POOL2D()), CT_POOL2D(.kernel_h = 1, .kernel_w = 1));
    y = ct_global_avg_pool2d(tape, y);
    CHECK(ct_tape_node_count(tape) == 0 && !ct_requires_grad(y));
    ct_tape_grad_enabled(tape, was);
    y = ct_conv2d(tape, x, w, NULL, CT_CONV2D_OP());
    CHECK(ct_tape_node_count(tape) == 1 && strcmp(ct_tape_node(tape, 0)->op->name, "conv2d") == 0);
    ct_tensor_free(w);
    ct_tape_free(tape);
}

/* ---- errors ------------------------------------------------------------------------------------------ */
static void bad_channels(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3, 32, 32)), ct_tape_zeros(tape, CT_SHAPE(8, 1, 3, 3)), NULL,
              CT_CONV2D_OP());
}
static void bad_groups(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 4, 8, 8)), ct_tape_zeros(tape, CT_SHAPE(6, 1, 3, 3)), NULL,
              CT_CONV2D_OP(.groups = 4));
}
static void bad_bias(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 3, 8, 8)), ct_tape_zeros(tape, CT_SHAPE(8, 3, 3, 3)),
              ct_tape_zeros(tape, CT_SHAPE(7)), CT_CONV2D_OP());
}
static void bad_rank(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(3, 32, 32)), ct_tape_zeros(tape, CT_SHAPE(8, 3, 3, 3)), NULL,
              CT_CONV2D_OP());
}
static void too_small(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 3, 4, 4)), ct_tape_zeros(tape, CT_SHAPE(8, 3, 3, 3)), NULL,
              CT_CONV2D_OP(.dilation_h = 2, .dilation_w = 2));
}
static void bad_stride(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_conv2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 3, 8, 8)), ct_tape_zeros(tape, CT_SHAPE(8, 3, 3, 3)), NULL,
              CT_CONV2D_OP(.stride_w = 0));
}
static void pool_pad_too_big(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_max_pool2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 1, 8, 8)), CT_POOL2D(.pad_h = 2, .pad_w = 2));
}
static void pool_rank(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_avg_pool2d(tape, ct_tape_zeros(tape, CT_SHAPE(8, 8)), CT_POOL2D());
}
static void pool_too_small(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_max_pool2d(tape, ct_tape_zeros(tape, CT_SHAPE(1, 2, 1, 5)), CT_POOL2D());
}
static void global_rank(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_global_avg_pool2d(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3, 4)));
}
static void layer_wrong_channels(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *conv = ct_conv2d_new(m, "features.0", 3, 16, 3, CT_CONV2D());
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, conv, ct_tape_zeros(tape, CT_SHAPE(4, 1, 28, 28)));
}
static void layer_bad_groups(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_conv2d_new(m, "conv", 6, 4, 3, CT_CONV2D(.groups = 3));
}

CT_TEST(conv, fatal_messages_name_op_and_shapes) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_channels, NULL,
                               "ct_conv2d: input (2, 3, 32, 32) does not match weight (8, 1, 3, 3) (groups 1)", got,
                               sizeof got), "got: %s", got);
    CHECK(strstr(got, "test_conv.c") != NULL, "the message points at the caller's line: %s", got);
    CHECK(ct_test_expect_fatal(bad_groups, NULL,
                               "ct_conv2d: input (1, 4, 8, 8) does not match weight (6, 1, 3, 3) (groups 4): output "
                               "channels are not divisible by groups", got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(bad_bias, NULL, "ct_conv2d: bias (7,) does not match weight (8, 3, 3, 3) (need (8,))",
                               got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(bad_rank, NULL, "ct_conv2d: input must be 4-D (N, C, H, W), got (3, 32, 32)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(too_small, NULL, "ct_conv2d: input (1, 3, 4, 4) is smaller than weight (8, 3, 3, 3)'s "
                               "5x5 kernel (dilation (2, 2), padding (0, 0))", got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(bad_stride, NULL, "ct_conv2d: stride (1, 0) and dilation (1, 1) must be >= 1", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(pool_pad_too_big, NULL,
                               "ct_max_pool2d: padding (2, 2) must be at most half the kernel (2, 2)", got, sizeof got),
          "got: %s", got);
    CHECK(ct_test_expect_fatal(pool_rank, NULL, "ct_avg_pool2d: input must be 4-D (N, C, H, W), got (8, 8)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(pool_too_small, NULL, "ct_max_pool2d: input (1, 2, 1, 5) is smaller than the 2x2 window",
                               got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(global_rank, NULL, "ct_global_avg_pool2d: input must be 4-D (N, C, H, W)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(layer_wrong_channels, NULL,
                               "features.0: conv2d 3->16 (3x3 kernel) got input (4, 1, 28, 28) (need (N, 3, H, W))",
                               got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(layer_bad_groups, NULL,
                               "ct_conv2d_new: conv: groups 3 must divide both in_channels 6 and out_channels 4", got,
                               sizeof got), "got: %s", got);
}

/* ---- layers ------------------------------------------------------------------------------------------- */
/* Names and shapes as PyTorch's state_dict; init within PyTorch's bounds 1/√fan_in and filling
 * them (the largest |value| close to the bound). */
CT_TEST(conv, conv2d_layer_parameters_and_init) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 5);
    ct_module *c1 = ct_conv2d_new(m, "conv1", 8, 32, 3, CT_CONV2D(.padding = 1));
    ct_module *c2 = ct_conv2d_new(m, "conv2", 32, 64, 5, CT_CONV2D(.groups = 4, .bias = 0, .stride = 2));
    CHECK(strcmp(c1->kind, "conv2d") == 0 && strcmp(c1->name, "conv1") == 0);
    ct_tensor *w1 = ct_model_find_param(m, "conv1.weight"), *b1 = ct_model_find_param(m, "conv1.bias");
    ct_tensor *w2 = ct_model_find_param(m, "conv2.weight");
    CHECK(w1 && b1 && w2 && !ct_model_find_param(m, "conv2.bias"));
    CHECK(w1->ndim == 4 && w1->shape[0] == 32 && w1->shape[1] == 8 && w1->shape[2] == 3 && w1->shape[3] == 3);
    CHECK(b1->ndim == 1 && b1->shape[0] == 32);
    CHECK(w2->shape[0] == 64 && w2->shape[1] == 8 && w2->shape[2] == 5 && w2->shape[3] == 5);
    CHECK(ct_model_num_elements(m) == 32 * 8 * 9 + 32 + 64 * 8 * 25);
    const struct { ct_tensor *t; double bound; } inits[] = {
        {w1, 1 / sqrt(8 * 9.0)}, {b1, 1 / sqrt(8 * 9.0)}, {w2, 1 / sqrt(8 * 25.0)}};
    for (int k = 0; k < 3; k++) {
        double biggest = 0, mean = 0;
        for (size_t i = 0; i < inits[k].t->size; i++) {
            biggest = fmax(biggest, fabs(inits[k].t->data[i]));
            mean += inits[k].t->data[i] / (double)inits[k].t->size;
        }
        CHECK(biggest <= inits[k].bound && biggest > 0.85 * inits[k].bound && fabs(mean) < 0.2 * inits[k].bound,
              "%s: max |v| %g, mean %g, bound %g", inits[k].t->name, biggest, mean, inits[k].bound);
    }
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 8, 9, 9));
    ct_tensor *y = ct_forward(tape, c2, ct_forward(tape, c1, x));
    CHECK(y->shape[0] == 2 && y->shape[1] == 64 && y->shape[2] == 3 && y->shape[3] == 3,
          "got %s", ct_tensor_shape_str(y, (char[96]){0}, 96));
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(conv, pooling_layers) {
    ct_model *m = ct_model_new();
    ct_module *mp = ct_max_pool2d_new(m, "pool", 2, 0, 0);
    ct_module *ap = ct_avg_pool2d_new(m, "avg", 3, 1, 1);
    ct_module *gp = ct_global_avg_pool2d_new(m, "gap");
    CHECK(strcmp(mp->kind, "max_pool2d") == 0 && strcmp(ap->kind, "avg_pool2d") == 0 &&
          strcmp(gp->kind, "global_avg_pool2d") == 0 && strcmp(gp->name, "gap") == 0);
    CHECK(ct_model_param_count(m) == 0);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 8, 6));
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)(i % 7);
    ct_tensor *y = ct_forward(tape, mp, x);
    CHECK(y->shape[2] == 4 && y->shape[3] == 3);
    ct_tensor *a = ct_forward(tape, ap, x);
    CHECK(a->shape[2] == 8 && a->shape[3] == 6);
    ct_tensor *g = ct_forward(tape, gp, x);
    CHECK(g->ndim == 2 && g->shape[0] == 2 && g->shape[1] == 3);
    double mean = 0;
    for (int i = 0; i < 48; i++) mean += x->data[48 + i] / 48.0;
    CHECK_NEAR(g->data[1], mean, 1e-5, 1e-5);
    ct_tape_free(tape);
    ct_model_free(m);
}

/* ---- gradient checks (float64) ------------------------------------------------------------------------ */
typedef struct {
    const char *label;
    int N, C, H, W, O, kh, kw, bias;
    ct_conv2d_op_opts p;
} conv_gc;

#ifdef CT_PRECISION_64
static ct_tensor *gc_conv(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const conv_gc *c = ctx;
    return ct_conv2d(tape, in[0], in[1], c->bias ? in[2] : NULL, c->p);
}

/* Inputs of distinct values (a shuffled grid with spacing 0.01 in [−2, 2)): no two elements are
 * within the difference step of each other, so max pooling never meets a tie or a kink. */
static void fill_distinct(ct_tensor *t, ct_rng *rng) {
    int *perm = malloc(t->size * sizeof *perm);
    ct_rng_permutation(rng, perm, (int)t->size);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)(-2 + 4.0 * perm[i] / (double)t->size);
    free(perm);
}

#endif

CT_GRADCHECK_COVERS(conv2d)
CT_TEST(gradcheck, conv2d) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    const conv_gc cases[] = {
        {"3x3", 2, 2, 5, 5, 3, 3, 3, 1, CT_CONV2D_OP()},
        {"stride 2, padding 1", 2, 2, 6, 6, 3, 3, 3, 1, CT_CONV2D_OP(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
        {"dilation 2, padding 2", 1, 2, 6, 6, 2, 3, 3, 1, CT_CONV2D_OP(.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2)},
        {"groups 2", 2, 4, 4, 4, 4, 3, 3, 1, CT_CONV2D_OP(.groups = 2, .pad_h = 1, .pad_w = 1)},
        {"depthwise, multiplier 2", 2, 3, 5, 5, 6, 3, 3, 1, CT_CONV2D_OP(.groups = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
        {"no bias, non-square input and kernel", 2, 2, 4, 7, 3, 2, 3, 0,
         CT_CONV2D_OP(.stride_h = 2, .pad_h = 1, .dilation_w = 2)},
        {"1x1 (direct path)", 3, 4, 3, 5, 2, 1, 1, 1, CT_CONV2D_OP()},
        {"1x1 stride 2 padding 1", 2, 3, 4, 4, 2, 1, 1, 1, CT_CONV2D_OP(.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
    };
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    size_t checked = 0;
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        const conv_gc *c = &cases[k];
        ct_tensor *in[3] = {ct_tensor_new_grad(CT_SHAPE(c->N, c->C, c->H, c->W)),
                            ct_tensor_new_grad(CT_SHAPE(c->O, c->C / c->p.groups, c->kh, c->kw)),
                            ct_tensor_new_grad(CT_SHAPE(c->O))};
        for (int i = 0; i < 3; i++) fill_uniform(in[i], &rng);
        int n = c->bias ? 3 : 2;
        ct_gradcheck_result r = ct_gradcheck(gc_conv, (void *)c, in, n, CT_GRADCHECK());
        for (int i = 0; i < 3; i++) ct_tensor_free(in[i]);
        char line[256];
        ct_gradcheck_describe(&r, line, sizeof line);
        CHECK(r.passed && r.checked > 0, "conv2d [%s]: %s", c->label, line);
        checked += r.checked;
    }
    ct_test_note("%d configurations, %zu elements", (int)(sizeof cases / sizeof cases[0]), checked);
#endif
}

typedef struct {
    const char *label;
    int kind; /* 0 max, 1 avg, 2 global */
    int N, C, H, W;
    ct_pool2d_opts p;
} pool_gc;

#ifdef CT_PRECISION_64
static ct_tensor *gc_pool(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const pool_gc *c = ctx;
    return c->kind == 0 ? ct_max_pool2d(tape, in[0], c->p)
           : c->kind == 1 ? ct_avg_pool2d(tape, in[0], c->p)
                          : ct_global_avg_pool2d(tape, in[0]);
}
#endif

static int check_pools(const pool_gc *cases, int n_cases, size_t *checked) {
#ifdef CT_PRECISION_64
    ct_rng rng;
    ct_rng_seed(&rng, 12);
    for (int k = 0; k < n_cases; k++) {
        const pool_gc *c = &cases[k];
        ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(c->N, c->C, c->H, c->W));
        fill_distinct(x, &rng);
        ct_gradcheck_result r = ct_gradcheck(gc_pool, (void *)c, &x, 1, CT_GRADCHECK());
        ct_tensor_free(x);
        *checked += r.checked;
        if (!r.passed || !r.checked) {
            char line[256];
            ct_gradcheck_describe(&r, line, sizeof line);
            ct_test_fail(__FILE__, __LINE__, "%s: %s", c->label, line);
            return 0;
        }
    }
#else
    (void)cases, (void)n_cases, (void)checked;
#endif
    return 1;
}

CT_GRADCHECK_COVERS(max_pool2d)
CT_TEST(gradcheck, max_pool2d) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    const pool_gc cases[] = {
        {"max 2x2", 0, 2, 2, 4, 6, CT_POOL2D()},
        {"max 3x3 stride 2 padding 1", 0, 2, 2, 7, 7,
         CT_POOL2D(.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
        {"max 2x2 stride 1 (overlapping)", 0, 1, 2, 5, 5, CT_POOL2D(.stride_h = 1, .stride_w = 1)},
        {"max 3x2 stride (1, 2) padding (1, 0)", 0, 1, 2, 6, 7,
         CT_POOL2D(.kernel_h = 3, .kernel_w = 2, .stride_h = 1, .stride_w = 2, .pad_h = 1)},
    };
    size_t checked = 0;
    if (!check_pools(cases, 4, &checked)) return;
    ct_test_note("4 configurations, %zu elements", checked);
}

CT_GRADCHECK_COVERS(avg_pool2d)
CT_TEST(gradcheck, avg_pool2d) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    const pool_gc cases[] = {
        {"avg 2x2", 1, 2, 2, 4, 6, CT_POOL2D()},
        {"avg 3x3 stride 2 padding 1, count_include_pad 1", 1, 2, 2, 7, 7,
         CT_POOL2D(.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1)},
        {"avg 3x3 stride 2 padding 1, count_include_pad 0", 1, 2, 2, 7, 7,
         CT_POOL2D(.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                          .count_include_pad = 0)},
        {"avg 2x3 stride 1 padding 1, count_include_pad 0", 1, 1, 2, 5, 6,
         CT_POOL2D(.kernel_h = 2, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                          .count_include_pad = 0)},
    };
    size_t checked = 0;
    if (!check_pools(cases, 4, &checked)) return;
    ct_test_note("4 configurations, %zu elements", checked);
}

CT_GRADCHECK_COVERS(global_avg_pool2d)
CT_TEST(gradcheck, global_avg_pool2d) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    const pool_gc cases[] = {{"global avg", 2, 2, 3, 4, 5, CT_POOL2D()}, {"global avg 1x1", 2, 3, 2, 1, 1, CT_POOL2D()}};
    size_t checked = 0;
    if (!check_pools(cases, 2, &checked)) return;
    ct_test_note("2 configurations, %zu elements", checked);
}
