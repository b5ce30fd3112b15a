/* tests/losses/test_loss_fused.c — the zoo's fused losses (cross_entropy.c, softmax_family.c,
 * nll_stablemax.c, pointwise.c) against their composed forms in the library (ct_*_reference);
 * value and gradient, every reduction, random and extreme inputs, short rows (the blocked path,
 * over several blocks) and long rows. Plus the accuracy of the vectorised float math
 * (core/vmath.h) against libm, float64 gradient checks of the fused ops' paths the reference cases
 * of test_loss_zoo.c do not reach (several blocks, long rows, γ off the special values, weights),
 * and float64 gradient checks of the references themselves. */
#include "../test.h"
#include "../../core/vmath.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- vectorised math against libm --------------------------------------------------------- */
/* |got − want| in units of the float spacing at want (double reference). */
static double ulps(double got, double want) {
    const float w = (float)fabs(want);
    const double spacing = (double)nextafterf(w, INFINITY) - (double)w;
    return fabs(got - want) / spacing;
}

CT_TEST(vmath, log_within_one_ulp_of_libm) {
    double worst = 0, at = 0;
    size_t n = 0;
    /* every 251st float bit pattern from the smallest subnormal to the largest finite */
    for (uint32_t bits = 1; bits < 0x7f800000u; bits += 251, n++) {
        float x;
        memcpy(&x, &bits, sizeof x);
        const double e = ulps((double)ct_vlog((ct_real)x), log((double)x));
        if (e > worst) worst = e, at = x;
    }
    CHECK(worst <= 1.0, "worst %.3f ulp at %g", worst, at);
    CHECK(ct_vlog(0) == -INFINITY && ct_vlog(INFINITY) == INFINITY && isnan(ct_vlog(-1)) && isnan(ct_vlog(NAN)));
    CHECK(ct_vlog(1) == 0);
    ct_test_note("%zu values, worst %.2f ulp at %g", n, worst, at);
}

/* log1p (both forms) and softplus within 2 ulp; σ within 3 (e^−|x|, then a division and a product) */
CT_TEST(vmath, log1p_softplus_within_two_ulp_sigmoid_three) {
    double worst_log1p = 0, worst_sig = 0, worst_sp = 0;
    /* log1p on (−1, 1e6]: geometric steps through the small values, where log1p matters */
    for (double u = -0.999; u < 1e6; u = u < 0 ? (u > -1e-30 ? 1e-30 : u * 0.999) : u * 1.001) {
        const float f = (float)u;
        worst_log1p = fmax(worst_log1p, ulps((double)ct_vlog1p(f), log1p((double)f)));
    }
    /* σ and softplus on [−80, 80] in steps of 1e-3 (below −87 e^x is under FLT_MIN and flushes to 0) */
    for (int k = -80000; k <= 80000; k++) {
        const float x = (float)(k * 1e-3);
        const double sig = 1 / (1 + exp(-(double)x)), sp = log1p(exp((double)x));
        worst_sig = fmax(worst_sig, ulps((double)ct_vsigmoid(x), sig));
        worst_sp = fmax(worst_sp, ulps((double)ct_vsoftplus(x), sp));
    }
    /* log1p on [0, 1] given 1/(1 + u) (softplus's e^−|x|): every 97th float */
    double worst_unit = 0;
    for (uint32_t bits = 0; bits <= 0x3f800000u; bits += 97) {
        float u;
        memcpy(&u, &bits, sizeof u);
        const ct_real r = 1 / (1 + (ct_real)u);
        worst_unit = fmax(worst_unit, ulps((double)ct_vlog1p_unit((ct_real)u, r), log1p((double)u)));
    }
    CHECK(worst_unit <= 2.0, "log1p on [0, 1] worst %.3f ulp", worst_unit);
    CHECK(worst_log1p <= 2.0, "log1p worst %.3f ulp", worst_log1p);
    CHECK(worst_sig <= 3.0, "sigmoid worst %.3f ulp", worst_sig);
    CHECK(worst_sp <= 2.0, "softplus worst %.3f ulp", worst_sp);
    CHECK(ct_vsoftplus(-1e4) == 0 && ct_vsoftplus(1e4) == (ct_real)1e4 && ct_vsigmoid(-1e4) == 0 && ct_vsigmoid(1e4) == 1);
    ct_test_note("worst: log1p %.2f (on [0, 1] with 1/(1 + u): %.2f), sigmoid %.2f, softplus %.2f ulp", worst_log1p,
                 worst_unit, worst_sig, worst_sp);
}

/* ct_vlog_wide: log x in double to an absolute 6e-8 for every positive normal float (ct_vlog
 * rounds to float: 2e-6 at log x ≈ −40); ct_exp_difference: e^(a − b) as if a − b were exact,
 * within 2 float ulps where e^(a − b) of the rounded difference is off by up to ulp(a − b)/2. */
CT_TEST(vmath, wide_log_and_exact_difference_exp) {
    double worst_log = 0, worst_exp = 0, worst_plain = 0;
    for (uint32_t bits = 0x00800000u; bits < 0x7f800000u; bits += 251) {
        float x;
        memcpy(&x, &bits, sizeof x);
        worst_log = fmax(worst_log, fabs(ct_vlog_wide((ct_real)x) - log((double)x)));
    }
    /* b the shift (a block maximum), a from b down to b − 80 in steps that are not round */
    const float shifts[] = {0.0f, 3.3f, -17.25f, 1234.5f, -1e4f};
    for (size_t j = 0; j < sizeof shifts / sizeof shifts[0]; j++)
        for (int k = 0; k <= 80000; k++) {
            const float b = shifts[j], a = b - (float)(k * 1.0007e-3);
            const double exact = exp((double)a - (double)b);
            if (exact < 1e-37) continue;
            worst_exp = fmax(worst_exp, fabs(ct_exp_difference((ct_real)a, (ct_real)b) / exact - 1) / FLT_EPSILON);
            worst_plain = fmax(worst_plain, fabs(ct_exp_nonpositive((ct_real)(a - b)) / exact - 1) / FLT_EPSILON);
        }
#ifdef CT_PRECISION_64
    (void)worst_plain;
    CHECK(worst_log <= 1e-12 && worst_exp <= 1e-6, "log %.2e, exp %.2e", worst_log, worst_exp);
#else
    CHECK(worst_log <= 6e-8, "log abs err %.2e", worst_log);
    CHECK(worst_exp <= 2.0, "e^(a - b) worst %.2f ulp (of the rounded difference: %.2f)", worst_exp, worst_plain);
#endif
    ct_test_note("log abs err %.1e; e^(a - b) %.2f ulp (of the rounded difference: %.1f ulp)", worst_log, worst_exp, worst_plain);
}

/* ---- the cases: one loss, its options, fused or its library reference ---------------------------- */
typedef struct {
    int kind;                   /* which loss: the enum below */
    ct_reduction reduction;
    ct_labels y;
    ct_tensor *target;          /* element-wise losses */
    double a, b, c;             /* the loss's parameters */
    const ct_real *w1, *w2;     /* per-class vectors (weights, pos_weight, alpha) or NULL */
    const double *eps;
    int n_eps;
    int use_reference;          /* gradient checks: of the reference instead of the fused loss */
} loss_case;

enum {
    L_NLL, L_BCE, L_MSE, L_L1, L_SMOOTH_L1, L_HUBER, L_KL, L_SIGMOID_FOCAL, L_FOCAL, L_POLY1, L_POLY_N, L_POLY1_FOCAL,
    L_SQUENTROPY, L_COMP_SUM, L_NCE_RCE, L_STABLEMAX, L_CE
};
static const char *const loss_names[] = {"nll", "bce", "mse", "l1", "smooth_l1", "huber", "kl_div", "sigmoid_focal",
                                         "focal", "poly1", "poly_n", "poly1_focal", "squentropy", "comp_sum",
                                         "nce_rce", "stablemax", "cross_entropy"};

/* The loss of the case, fused (ct_focal_loss, ...) or as the library's composed reference
 * (ct_focal_loss_reference, ...): the same call with the same options. */
#define LOSS_CALL(fn, ...) (reference ? fn##_reference(__VA_ARGS__) : fn(__VA_ARGS__))
static ct_tensor *loss_of(ct_tape *tape, ct_tensor *z, const loss_case *lc, int reference) {
    const ct_reduction r = lc->reduction;
    ct_tensor *t = lc->target;
    switch (lc->kind) {
    case L_CE:
        return LOSS_CALL(ct_cross_entropy, tape, z, lc->y,
                         CT_CE(.reduction = r, .weight = lc->w1, .label_smoothing = lc->a));
    case L_NLL: return LOSS_CALL(ct_nll_loss, tape, z, lc->y, CT_NLL(.reduction = r, .weight = lc->w1));
    case L_BCE:
        return LOSS_CALL(ct_bce_with_logits, tape, z, t, CT_BCE(.reduction = r, .weight = lc->w1, .pos_weight = lc->w2));
    case L_MSE: return LOSS_CALL(ct_mse_loss, tape, z, t, CT_REGRESSION(.reduction = r));
    case L_L1: return LOSS_CALL(ct_l1_loss, tape, z, t, CT_REGRESSION(.reduction = r));
    case L_SMOOTH_L1: return LOSS_CALL(ct_smooth_l1_loss, tape, z, t, CT_REGRESSION(.reduction = r, .beta = lc->a));
    case L_HUBER: return LOSS_CALL(ct_huber_loss, tape, z, t, CT_REGRESSION(.reduction = r, .delta = lc->a));
    case L_KL: return LOSS_CALL(ct_kl_div, tape, z, t, CT_KL_DIV(.reduction = r, .log_target = lc->a != 0));
    case L_SIGMOID_FOCAL:
        return LOSS_CALL(ct_sigmoid_focal_loss, tape, z, t, CT_SIGMOID_FOCAL(.reduction = r, .alpha = lc->a, .gamma = lc->b));
    case L_FOCAL:
        return LOSS_CALL(ct_focal_loss, tape, z, lc->y,
                         CT_FOCAL(.reduction = r, .alpha = lc->a, .gamma = lc->b, .alpha_per_class = lc->w1));
    case L_POLY1: return LOSS_CALL(ct_poly1_loss, tape, z, lc->y, CT_POLY(.reduction = r, .epsilon = lc->c));
    case L_POLY_N:
        return LOSS_CALL(ct_poly_n_loss, tape, z, lc->y, CT_POLY(.reduction = r, .epsilons = lc->eps, .n_epsilons = lc->n_eps));
    case L_POLY1_FOCAL:
        return LOSS_CALL(ct_poly1_focal_loss, tape, z, lc->y,
                         CT_POLY(.reduction = r, .alpha = lc->a, .gamma = lc->b, .epsilon = lc->c));
    case L_SQUENTROPY: return LOSS_CALL(ct_squentropy_loss, tape, z, lc->y, CT_SQUENTROPY(.reduction = r));
    case L_COMP_SUM: return LOSS_CALL(ct_comp_sum_loss, tape, z, lc->y, CT_COMP_SUM(.reduction = r, .tau = lc->a));
    case L_NCE_RCE:
        return LOSS_CALL(ct_nce_rce_loss, tape, z, lc->y,
                         CT_NCE_RCE(.reduction = r, .alpha = lc->a, .beta = lc->b, .log_zero = lc->c));
    default: return LOSS_CALL(ct_stablemax_cross_entropy, tape, z, lc->y, CT_STABLEMAX(.reduction = r));
    }
}
#undef LOSS_CALL

static ct_tensor *fused(ct_tape *tape, ct_tensor *z, const loss_case *lc) { return loss_of(tape, z, lc, 0); }
static ct_tensor *reference(ct_tape *tape, ct_tensor *z, const loss_case *lc) { return loss_of(tape, z, lc, 1); }

/* ---- inputs ------------------------------------------------------------------------------------ */
enum { IN_RANDOM, IN_STAIRCASE, IN_EXTREME };

/* Logits (N, C): normal(0, 2); a staircase, row i lowered by i mod 60 (short rows share their
 * block's maximum as the shift down to about 42 below it and take their own below that: both
 * sides, see losses/softmax_rows.h); or extreme rows — ±1e4 mixed, all equal, one large (1e4) among
 * zeros, the label's logit far below the rest, 30 and −30 — cycled over the rows. */
static void fill_logits(ct_tensor *z, int how, ct_rng *rng) {
    const int N = z->shape[0], C = z->shape[1];
    ct_tensor_fill_normal(z, rng, 0, 2);
    if (how == IN_STAIRCASE)
        for (size_t k = 0; k < z->size; k++) z->data[k] -= (ct_real)((k / (size_t)C) % 60);
    if (how != IN_EXTREME) return;
    for (int i = 0; i < N; i++) {
        ct_real *row = z->data + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            switch (i % 5) {
            case 0: row[c] = (ct_real)((c % 2 ? 1e4 : -1e4) * (1 + 0.01 * c)); break;
            case 1: row[c] = (ct_real)3.25; break;
            case 2: row[c] = c == i % C ? (ct_real)1e4 : 0; break;
            case 3: row[c] = (ct_real)(c % 3 ? 5e3 : -5e3); break;
            default: row[c] = (ct_real)(c % 2 ? 30 : -30); break;
            }
        }
    }
}

/* Targets for the element-wise losses. */
static void fill_target(const loss_case *lc, ct_tensor *t, ct_rng *rng) {
    const int C = t->shape[t->ndim - 1];
    switch (lc->kind) {
    case L_BCE:
    case L_SIGMOID_FOCAL: /* probabilities, with exact 0 and 1 (one-hot rows) every other row */
        for (size_t k = 0; k < t->size; k++) {
            const size_t row = k / (size_t)C;
            t->data[k] = row % 2 ? (ct_real)ct_rng_uniform(rng) : (ct_real)(k % (size_t)C == row % (size_t)C);
        }
        break;
    case L_KL:
        if (lc->a != 0) { /* log-targets */
            ct_tensor_fill_normal(t, rng, -2, 1);
        } else { /* probabilities with zeros */
            for (size_t k = 0; k < t->size; k++) t->data[k] = k % 3 == 0 ? 0 : (ct_real)ct_rng_uniform(rng);
        }
        break;
    default: /* regression: values around the inputs, some exactly equal (d = 0), some at the knee */
        ct_tensor_fill_normal(t, rng, 0, 2);
        break;
    }
}

/* Runs one builder: the value (copied into value, out->size numbers) and dz into grad. */
static size_t run_loss(ct_tensor *(*build)(ct_tape *, ct_tensor *, const loss_case *), const loss_case *lc,
                       ct_tensor *z, ct_real *value, ct_real *grad, uint64_t seed) {
    ct_tape *tape = ct_tape_new();
    ct_tensor_zero_grad(z);
    ct_tensor *out = build(tape, z, lc);
    const size_t n = out->size;
    memcpy(value, out->data, n * sizeof *value);
    ct_real *cot = malloc(n * sizeof *cot);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (size_t k = 0; k < n; k++) cot[k] = n == 1 ? 1 : (ct_real)(ct_rng_uniform(&rng) + 0.5);
    ct_backward_with(tape, out, cot);
    memcpy(grad, z->grad, z->size * sizeof *grad);
    free(cot);
    ct_tape_free(tape);
    return n;
}

#ifdef CT_PRECISION_64
#define VALUE_RTOL 1e-12
#define GRAD_RTOL 1e-10
#else
#define VALUE_RTOL 2e-5
#define GRAD_RTOL 2e-4
#endif

/* Fused == reference on one input, for every reduction the loss has; updates *worst (relative to
 * the largest magnitude, so tiny entries next to big ones compare at the big one's precision). */
static int compare_on(loss_case lc, ct_tensor *z, double *worst) {
    const ct_reduction reductions[] = {CT_REDUCTION_MEAN, CT_REDUCTION_SUM, CT_REDUCTION_NONE, CT_REDUCTION_BATCHMEAN};
    const int n_red = lc.kind == L_KL ? 4 : 3;
    const size_t n_max = z->size;
    ct_real *v1 = malloc(n_max * sizeof *v1), *v2 = malloc(n_max * sizeof *v2);
    ct_real *g1 = malloc(n_max * sizeof *g1), *g2 = malloc(n_max * sizeof *g2);
    int ok = 1;
    for (int ri = 0; ri < n_red && ok; ri++) {
        lc.reduction = reductions[ri];
        const size_t n = run_loss(fused, &lc, z, v1, g1, 7);
        run_loss(reference, &lc, z, v2, g2, 7);
        double vscale = 0, gscale = 0;
        for (size_t k = 0; k < n; k++) vscale = fmax(vscale, fabs((double)v2[k]));
        for (size_t k = 0; k < z->size; k++) gscale = fmax(gscale, fabs((double)g2[k]));
        for (size_t k = 0; k < n && ok; k++) {
            const double err = fabs((double)v1[k] - v2[k]) / fmax(vscale, 1e-30);
            *worst = fmax(*worst, err);
            if (!(err <= VALUE_RTOL) || !isfinite((double)v1[k])) {
                ct_test_fail(__FILE__, __LINE__, "%s reduction %d: value[%zu] fused %.9g, reference %.9g",
                             loss_names[lc.kind], (int)lc.reduction, k, (double)v1[k], (double)v2[k]);
                ok = 0;
            }
        }
        for (size_t k = 0; k < z->size && ok; k++) {
            const double err = fabs((double)g1[k] - g2[k]) / fmax(gscale, 1e-30);
            *worst = fmax(*worst, err);
            if (!(err <= GRAD_RTOL) || !isfinite((double)g1[k])) {
                ct_test_fail(__FILE__, __LINE__, "%s reduction %d: grad[%zu] fused %.9g, reference %.9g (scale %.3g)",
                             loss_names[lc.kind], (int)lc.reduction, k, (double)g1[k], (double)g2[k], gscale);
                ok = 0;
            }
        }
    }
    free(v1), free(v2), free(g1), free(g2);
    return ok;
}

/* Shapes: short rows (C = 5), short rows over several scratch blocks (300 × 10), long rows (C = 70). */
static const int shapes[][2] = {{6, 5}, {300, 10}, {9, 70}};

static void compare_loss(loss_case lc, int extreme_ok) {
    ct_rng rng;
    ct_rng_seed(&rng, 11 + (uint64_t)lc.kind);
    double worst = 0;
    int cases = 0;
    for (int s = 0; s < 3; s++) {
        const int N = shapes[s][0], C = shapes[s][1];
        int *labels = malloc((size_t)N * sizeof *labels);
        for (int i = 0; i < N; i++) labels[i] = (int)ct_rng_int(&rng, 0, C);
        if (lc.kind == L_NLL || lc.kind == L_CE) labels[N - 1] = -100; /* one ignored sample */
        lc.y = CT_LABELS(labels, N);
        for (int how = IN_RANDOM; how <= (extreme_ok ? IN_EXTREME : IN_STAIRCASE); how++) {
            ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
            fill_logits(z, how, &rng);
            if (lc.kind == L_NLL) /* log-probabilities */
                for (size_t k = 0; k < z->size; k++) z->data[k] = -(ct_real)fabs((double)z->data[k]);
            ct_tensor *t = NULL;
            if (lc.kind >= L_BCE && lc.kind <= L_SIGMOID_FOCAL) {
                t = ct_tensor_new(CT_SHAPE(N, C));
                fill_target(&lc, t, &rng);
                if (lc.kind >= L_MSE && lc.kind <= L_HUBER) /* exact ties and points at the knee */
                    for (int k = 0; k < N; k++) {
                        t->data[(size_t)k * C] = z->data[(size_t)k * C];
                        t->data[(size_t)k * C + 1] = z->data[(size_t)k * C + 1] - (ct_real)lc.a;
                    }
            }
            lc.target = t;
            const int ok = compare_on(lc, z, &worst);
            ct_tensor_free(z);
            if (t) ct_tensor_free(t);
            cases++;
            if (!ok) {
                static const char *const inputs[] = {"random", "staircase", "extreme"};
                ct_test_note("on (%d, %d) %s logits", N, C, inputs[how]);
                free(labels);
                return;
            }
        }
        free(labels);
    }
    ct_test_note("%d inputs × reductions, worst relative difference %.1e", cases, worst);
}

/* A per-class vector of 70 entries (enough for every shape), base + 0.37·(c mod 7); four
 * rotating buffers, so one case can hold two of them. */
static ct_real *per_class(double base) {
    static ct_real v[4][70];
    static int next;
    ct_real *out = v[next++ % 4];
    for (int c = 0; c < 70; c++) out[c] = (ct_real)(base + 0.37 * (c % 7));
    return out;
}
#define PER_CLASS(base) per_class(base)

CT_TEST(loss_fused, cross_entropy_matches_reference) {
    compare_loss((loss_case){.kind = L_CE}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_CE, .w1 = PER_CLASS(0.5)}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_CE, .a = 0.1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_CE, .a = 0.25, .w1 = PER_CLASS(0.25)}, 1);
}
CT_TEST(loss_fused, nll_matches_reference) {
    compare_loss((loss_case){.kind = L_NLL}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_NLL, .w1 = PER_CLASS(0.5)}, 1);
}
CT_TEST(loss_fused, bce_with_logits_matches_reference) {
    compare_loss((loss_case){.kind = L_BCE}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_BCE, .w2 = PER_CLASS(0.5)}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_BCE, .w1 = PER_CLASS(0.25), .w2 = PER_CLASS(1.5)}, 1);
}
CT_TEST(loss_fused, mse_matches_reference) { compare_loss((loss_case){.kind = L_MSE}, 1); }
CT_TEST(loss_fused, l1_matches_reference) { compare_loss((loss_case){.kind = L_L1}, 1); }
CT_TEST(loss_fused, smooth_l1_matches_reference) {
    compare_loss((loss_case){.kind = L_SMOOTH_L1, .a = 1.0}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_SMOOTH_L1, .a = 0.25}, 1);
}
CT_TEST(loss_fused, huber_matches_reference) {
    compare_loss((loss_case){.kind = L_HUBER, .a = 1.0}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_HUBER, .a = 2.5}, 1);
}
CT_TEST(loss_fused, kl_div_matches_reference) {
    compare_loss((loss_case){.kind = L_KL, .a = 0}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_KL, .a = 1}, 0);
}
CT_TEST(loss_fused, sigmoid_focal_matches_reference) {
    const double gammas[] = {2, 0, 1, 0.5, 3, 1.5};
    for (int k = 0; k < 6 && !ct_test_stopped(); k++)
        compare_loss((loss_case){.kind = L_SIGMOID_FOCAL, .a = k % 2 ? 0.25 : -1, .b = gammas[k]}, 1);
}
CT_TEST(loss_fused, focal_matches_reference) {
    const double gammas[] = {2, 0, 1, 0.5, 3, 1.5};
    for (int k = 0; k < 6 && !ct_test_stopped(); k++)
        compare_loss((loss_case){.kind = L_FOCAL, .a = k % 2 ? 0.25 : 1, .b = gammas[k]}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_FOCAL, .a = 1, .b = 2, .w1 = PER_CLASS(0.25)}, 1);
}
CT_TEST(loss_fused, poly1_matches_reference) {
    compare_loss((loss_case){.kind = L_POLY1, .c = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1, .c = -1}, 1);
}
CT_TEST(loss_fused, poly_n_matches_reference) {
    static const double eps[] = {1, 0, -0.5, 2};
    compare_loss((loss_case){.kind = L_POLY_N, .eps = eps, .n_eps = 4}, 1);
}
CT_TEST(loss_fused, poly1_focal_matches_reference) {
    compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 1, .b = 2, .c = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 0.25, .b = 0.5, .c = -1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 0.5, .b = 0, .c = 2}, 1);
}
CT_TEST(loss_fused, squentropy_matches_reference) { compare_loss((loss_case){.kind = L_SQUENTROPY}, 1); }
CT_TEST(loss_fused, comp_sum_matches_reference) {
    /* τ < 1 grows like e^((1−τ)·CE): the extreme rows overflow both versions, so random inputs only */
    compare_loss((loss_case){.kind = L_COMP_SUM, .a = 0}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 0.5}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 1.7}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 2}, 1);
}
CT_TEST(loss_fused, nce_rce_matches_reference) {
    compare_loss((loss_case){.kind = L_NCE_RCE, .a = 1, .b = 1, .c = -4}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_NCE_RCE, .a = 0.5, .b = 2, .c = -2}, 1);
}
CT_TEST(loss_fused, stablemax_matches_reference) { compare_loss((loss_case){.kind = L_STABLEMAX}, 1); }

/* A target that requires grad takes the reference path: its gradient arrives (mse: −2d/n). */
CT_TEST(loss_fused, target_with_grad_gets_its_gradient) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(2, 3)), *t = ct_tensor_new_grad(CT_SHAPE(2, 3));
    for (int k = 0; k < 6; k++) x->data[k] = (ct_real)k, t->data[k] = (ct_real)(k * k) / 4;
    ct_tape *tape = ct_tape_new();
    ct_backward(tape, ct_mse_loss(tape, x, t, CT_REGRESSION()));
    for (int k = 0; k < 6; k++) {
        const double d = (double)x->data[k] - t->data[k];
        CHECK_NEAR(x->grad[k], 2 * d / 6, 1e-6, 1e-6);
        CHECK_NEAR(t->grad[k], -2 * d / 6, 1e-6, 1e-6);
    }
    ct_tape_free(tape);
    ct_tensor_free(x), ct_tensor_free(t);
}

/* ---- float64 gradient checks of the fused paths ------------------------------------------------ */
#ifdef CT_PRECISION_64
static ct_tensor *gradcheck_fn(ct_tape *tape, ct_tensor *const *inputs, void *ctx) {
    const loss_case *lc = ctx;
    return loss_of(tape, inputs[0], lc, lc->use_reference);
}
#endif

static void gradcheck_loss(loss_case lc, int N, int C) {
#ifndef CT_PRECISION_64
    (void)lc, (void)N, (void)C;
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    int *labels = malloc((size_t)N * sizeof *labels);
    for (int i = 0; i < N; i++) labels[i] = (int)ct_rng_int(&rng, 0, C);
    lc.y = CT_LABELS(labels, N);
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
    fill_logits(z, IN_RANDOM, &rng);
    ct_tensor *t = NULL;
    if (lc.kind >= L_BCE && lc.kind <= L_SIGMOID_FOCAL) {
        t = ct_tensor_new(CT_SHAPE(N, C));
        fill_target(&lc, t, &rng);
    }
    lc.target = t;
    char msg[256] = "";
    int passed = 1;
    const ct_reduction reductions[] = {CT_REDUCTION_MEAN, CT_REDUCTION_SUM, CT_REDUCTION_NONE};
    for (int r = 0; r < 3 && passed; r++) {
        lc.reduction = reductions[r];
        /* the sums run over 490–3000 elements: central differences carry ≈ ε·|f|/h ≈ 1e-16·3000/1e-6
         * = 3e-7 of rounding noise, above the default atol (1e-7) */
        ct_gradcheck_result res = ct_gradcheck(gradcheck_fn, &lc, &z, 1, CT_GRADCHECK(.atol = 2e-6));
        ct_gradcheck_describe(&res, msg, sizeof msg);
        passed = res.passed && res.checked == z->size;
    }
    free(labels);
    ct_tensor_free(z);
    if (t) ct_tensor_free(t);
    CHECK(passed, "%s%s: %s", loss_names[lc.kind], lc.use_reference ? " reference" : "", msg);
#endif
}

/* The four fused ops are checked here (and through every loss in test_loss_zoo.c's gradchecks);
 * declared so gradcheck/every_op_has_an_entry counts them once autograd/op_table.c lists them. */
CT_GRADCHECK_COVERS(loss_pointwise)
CT_GRADCHECK_COVERS(loss_softmax)
CT_GRADCHECK_COVERS(loss_nll)
CT_GRADCHECK_COVERS(loss_stablemax)

/* 300 × 10 runs over two scratch blocks of the short-row path; C = 70 is the long-row path. */
CT_TEST(gradcheck, loss_fused_softmax_blocks_and_long_rows) {
    static const double eps[] = {1, 0.5};
    const loss_case cases[] = {
        {.kind = L_FOCAL, .a = 0.25, .b = 1.5},         {.kind = L_POLY_N, .eps = eps, .n_eps = 2},
        {.kind = L_POLY1_FOCAL, .a = 1, .b = 3, .c = 1}, {.kind = L_SQUENTROPY},
        {.kind = L_COMP_SUM, .a = 1.7},                 {.kind = L_NCE_RCE, .a = 1, .b = 1, .c = -4},
    };
    for (int k = 0; k < 6 && !ct_test_stopped(); k++) gradcheck_loss(cases[k], k % 2 ? 9 : 300, k % 2 ? 70 : 10);
}
CT_TEST(gradcheck, loss_fused_pointwise) {
    const loss_case cases[] = {
        {.kind = L_BCE, .w1 = PER_CLASS(0.5), .w2 = PER_CLASS(2)}, {.kind = L_SIGMOID_FOCAL, .a = 0.25, .b = 0.5},
        {.kind = L_SIGMOID_FOCAL, .a = -1, .b = 3},                 {.kind = L_HUBER, .a = 0.5},
        {.kind = L_SMOOTH_L1, .a = 2},                              {.kind = L_KL, .a = 1},
    };
    for (int k = 0; k < 6 && !ct_test_stopped(); k++) gradcheck_loss(cases[k], 7, 70);
}
CT_TEST(gradcheck, loss_fused_stablemax_nll) {
    gradcheck_loss((loss_case){.kind = L_STABLEMAX}, 300, 10);
    if (!ct_test_stopped()) gradcheck_loss((loss_case){.kind = L_NLL, .w1 = PER_CLASS(0.5)}, 9, 70);
}

/* The references themselves (composed from tape ops, differentiated by the tape): one case per
 * fused loss, short and long rows, with its options off the defaults. */
CT_TEST(gradcheck, loss_references) {
    static const double eps[] = {1, 0.5};
    const loss_case cases[] = {
        {.kind = L_CE, .a = 0.1, .w1 = PER_CLASS(0.5)}, {.kind = L_NLL, .w1 = PER_CLASS(0.5)},
        {.kind = L_BCE, .w1 = PER_CLASS(0.5), .w2 = PER_CLASS(2)}, {.kind = L_MSE},
        {.kind = L_L1},                                  {.kind = L_SMOOTH_L1, .a = 2},
        {.kind = L_HUBER, .a = 0.5},                     {.kind = L_KL, .a = 0},
        {.kind = L_KL, .a = 1},                          {.kind = L_SIGMOID_FOCAL, .a = 0.25, .b = 1.5},
        {.kind = L_FOCAL, .a = 0.25, .b = 1.5},          {.kind = L_POLY1, .c = 1},
        {.kind = L_POLY_N, .eps = eps, .n_eps = 2},      {.kind = L_POLY1_FOCAL, .a = 1, .b = 3, .c = 1},
        {.kind = L_SQUENTROPY},                          {.kind = L_COMP_SUM, .a = 1.7},
        {.kind = L_NCE_RCE, .a = 1, .b = 1, .c = -4},    {.kind = L_STABLEMAX},
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    for (int k = 0; k < n && !ct_test_stopped(); k++) {
        loss_case lc = cases[k];
        lc.use_reference = 1;
        gradcheck_loss(lc, k % 2 ? 7 : 5, k % 2 ? 70 : 10);
    }
}
