/* tests/test_loss_fused.c — the zoo's fused losses (losses/classification.c) against the same
 * losses composed from primitive tape ops, written out again here; value and gradient, every
 * reduction, random and extreme inputs, short rows (the blocked path, over several blocks) and
 * long rows. Plus the accuracy of the vectorised float math (autograd/vmath.h) against libm, and
 * float64 gradient checks of the fused ops' paths the reference cases of test_loss_zoo.c do not
 * reach (several blocks, long rows, γ off the special values, weights). */
#include "test.h"
#include "../core/vmath.h"

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

/* ---- the composed versions (the code the fused ops replaced) -------------------------------- */
static ct_tensor *reduce_composed(ct_tape *tape, ct_tensor *per, ct_reduction r) {
    if (r == CT_REDUCTION_NONE) return per;
    return r == CT_REDUCTION_SUM ? ct_sum_all(tape, per) : ct_mean_all(tape, per);
}

static ct_tensor *constant(ct_tape *tape, ct_shape shape, double value) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    ct_tensor_fill(t, (ct_real)value);
    return t;
}

static ct_tensor *one_minus_p(ct_tape *tape, ct_tensor *ce) {
    return ct_add_scalar(tape, ct_neg(tape, ct_exp(tape, ct_neg(tape, ce))), 1.0);
}

static ct_tensor *modulator(ct_tape *tape, ct_tensor *one_minus, double gamma) {
    if (gamma == 0) return NULL;
    if (gamma == 1) return one_minus;
    if (gamma == 2) return ct_mul(tape, one_minus, one_minus);
    if (gamma < 1) one_minus = ct_clamp(tape, one_minus, 1e-30, 1.0);
    return ct_pow_scalar(tape, one_minus, gamma);
}

typedef struct {
    int kind;                   /* which loss: the enum below */
    ct_reduction reduction;
    ct_labels y;
    ct_tensor *target;          /* element-wise losses */
    double a, b, c;             /* the loss's parameters */
    const ct_real *w1, *w2;     /* per-class vectors (weights, pos_weight, alpha) or NULL */
    const double *eps;
    int n_eps;
} loss_case;

enum {
    L_NLL, L_BCE, L_MSE, L_L1, L_SMOOTH_L1, L_HUBER, L_KL, L_SIGMOID_FOCAL, L_FOCAL, L_POLY1, L_POLY_N, L_POLY1_FOCAL,
    L_SQUENTROPY, L_COMP_SUM, L_NCE_RCE, L_STABLEMAX
};
static const char *const loss_names[] = {"nll", "bce", "mse", "l1", "smooth_l1", "huber", "kl_div", "sigmoid_focal",
                                         "focal", "poly1", "poly_n", "poly1_focal", "squentropy", "comp_sum",
                                         "nce_rce", "stablemax"};

static ct_tensor *composed(ct_tape *tape, ct_tensor *z, const loss_case *lc) {
    const ct_reduction r = lc->reduction;
    ct_tensor *t = lc->target;
    const int N = z->shape[0], C = z->shape[z->ndim - 1];
    switch (lc->kind) {
    case L_NLL: {
        int *index = ct_arena_alloc(ct_tape_arena(tape), (size_t)N * sizeof *index);
        ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(N));
        double denom = 0;
        for (int i = 0; i < N; i++) {
            const int kept = lc->y.data[i] != -100;
            index[i] = kept ? lc->y.data[i] : 0;
            w->data[i] = kept ? (lc->w1 ? lc->w1[lc->y.data[i]] : 1) : 0;
            denom += w->data[i];
        }
        ct_tensor *per = ct_neg(tape, ct_mul(tape, ct_gather_rows(tape, z, index, N), w));
        if (r == CT_REDUCTION_NONE) return per;
        return r == CT_REDUCTION_SUM ? ct_sum_all(tape, per) : ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / denom);
    }
    case L_BCE: {
        ct_tensor *per = ct_mul(tape, ct_add_scalar(tape, ct_neg(tape, t), 1.0), z);
        ct_tensor *sp = ct_softplus(tape, ct_neg(tape, z), 1.0, INFINITY);
        if (lc->w2) {
            ct_tensor *pw1 = ct_tape_zeros(tape, CT_SHAPE(C));
            for (int c = 0; c < C; c++) pw1->data[c] = lc->w2[c] - 1;
            sp = ct_mul(tape, ct_add_scalar(tape, ct_mul(tape, t, pw1), 1.0), sp);
        }
        per = ct_add(tape, per, sp);
        if (lc->w1) per = ct_mul(tape, per, ct_tape_tensor_from(tape, CT_SHAPE(C), lc->w1));
        return reduce_composed(tape, per, r);
    }
    case L_MSE: {
        ct_tensor *d = ct_sub(tape, z, t);
        return reduce_composed(tape, ct_mul(tape, d, d), r);
    }
    case L_L1: return reduce_composed(tape, ct_abs(tape, ct_sub(tape, z, t)), r);
    case L_SMOOTH_L1:
    case L_HUBER: {
        const int huber = lc->kind == L_HUBER;
        const double knee = lc->a, quad_scale = huber ? 1.0 : 1.0 / knee, lin_scale = huber ? knee : 1.0;
        ct_tensor *d = ct_sub(tape, z, t), *a = ct_abs(tape, d);
        ct_tensor *inside = ct_tape_zeros(tape, ct_tensor_shape(d));
        for (size_t k = 0; k < d->size; k++) {
            const double v = fabs((double)d->data[k]);
            inside->data[k] = huber ? v <= knee : v < knee;
        }
        ct_tensor *quad = ct_mul_scalar(tape, ct_mul(tape, d, d), 0.5 * quad_scale);
        ct_tensor *lin = ct_mul_scalar(tape, ct_add_scalar(tape, a, -0.5 * knee), lin_scale);
        return reduce_composed(tape, ct_where(tape, inside, quad, lin), r);
    }
    case L_KL: {
        ct_tensor *per;
        if (lc->a != 0) { /* log_target */
            per = ct_mul(tape, ct_exp(tape, t), ct_sub(tape, t, z));
        } else {
            ct_tensor *positive = ct_tape_zeros(tape, ct_tensor_shape(t));
            for (size_t k = 0; k < t->size; k++) positive->data[k] = t->data[k] > 0;
            ct_tensor *safe = ct_where(tape, positive, t, constant(tape, CT_SHAPE(1), 1.0));
            per = ct_mul(tape, t, ct_sub(tape, ct_log(tape, safe), z));
        }
        if (r == CT_REDUCTION_BATCHMEAN) return ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / N);
        return reduce_composed(tape, per, r);
    }
    case L_SIGMOID_FOCAL: {
        ct_tensor *ce = ct_add(tape, ct_mul(tape, ct_add_scalar(tape, ct_neg(tape, t), 1.0), z),
                               ct_softplus(tape, ct_neg(tape, z), 1.0, INFINITY));
        ct_tensor *p = ct_sigmoid(tape, z);
        ct_tensor *q = ct_sub(tape, ct_add(tape, p, t), ct_mul_scalar(tape, ct_mul(tape, p, t), 2.0));
        ct_tensor *mod = modulator(tape, q, lc->b);
        ct_tensor *per = mod ? ct_mul(tape, ce, mod) : ce;
        if (lc->a >= 0) per = ct_mul(tape, per, ct_add_scalar(tape, ct_mul_scalar(tape, t, 2 * lc->a - 1), 1 - lc->a));
        return reduce_composed(tape, per, r);
    }
    case L_STABLEMAX: {
        ct_tensor *nonneg = ct_tape_zeros(tape, ct_tensor_shape(z));
        for (size_t k = 0; k < z->size; k++) nonneg->data[k] = z->data[k] >= 0;
        ct_tensor *pos = ct_add_scalar(tape, z, 1.0);
        ct_tensor *neg_part = ct_minimum(tape, z, constant(tape, CT_SHAPE(1), 0.0));
        ct_tensor *negb = ct_pow_scalar(tape, ct_add_scalar(tape, ct_neg(tape, neg_part), 1.0), -1.0);
        ct_tensor *s = ct_where(tape, nonneg, pos, negb);
        ct_tensor *per = ct_sub(tape, ct_log(tape, ct_sum(tape, s, 1, 0)), ct_log(tape, ct_gather_rows(tape, s, lc->y.data, N)));
        return reduce_composed(tape, per, r);
    }
    default: break;
    }
    /* the softmax losses, from the fused per-sample cross-entropy */
    ct_tensor *ce = ct_cross_entropy(tape, z, lc->y, CT_CE(.reduction = CT_REDUCTION_NONE)), *per = ce;
    switch (lc->kind) {
    case L_FOCAL:
    case L_POLY1_FOCAL: {
        ct_tensor *one_minus = one_minus_p(tape, ce), *mod = modulator(tape, one_minus, lc->b);
        per = mod ? ct_mul(tape, mod, ce) : ce;
        if (lc->w1 || lc->a != 1) {
            ct_tensor *alpha = constant(tape, CT_SHAPE(N), lc->a);
            if (lc->w1)
                for (int i = 0; i < N; i++) alpha->data[i] = lc->w1[lc->y.data[i]];
            per = ct_mul(tape, per, alpha);
        }
        if (lc->kind == L_POLY1_FOCAL)
            per = ct_add(tape, per, ct_mul_scalar(tape, modulator(tape, one_minus, lc->b + 1), lc->c));
        break;
    }
    case L_POLY1: per = ct_add(tape, ce, ct_mul_scalar(tape, one_minus_p(tape, ce), lc->c)); break;
    case L_POLY_N: {
        ct_tensor *one_minus = one_minus_p(tape, ce), *power = one_minus;
        for (int j = 0; j < lc->n_eps; j++) {
            if (j) power = ct_mul(tape, power, one_minus);
            if (lc->eps[j] != 0) per = ct_add(tape, per, ct_mul_scalar(tape, power, lc->eps[j]));
        }
        break;
    }
    case L_SQUENTROPY: {
        ct_tensor *others = constant(tape, CT_SHAPE(N, C), 1.0);
        for (int i = 0; i < N; i++) others->data[(size_t)i * C + lc->y.data[i]] = 0;
        ct_tensor *masked = ct_mul(tape, z, others);
        per = ct_add(tape, ce, ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, masked, masked), 1, 0), 1.0 / (C - 1)));
        break;
    }
    case L_COMP_SUM: {
        const double k = 1 - lc->a;
        if (k == 0) break; /* τ = 1: CE */
        per = ct_mul_scalar(tape, ct_add_scalar(tape, ct_exp(tape, ct_mul_scalar(tape, ce, k)), -1.0), 1.0 / k);
        break;
    }
    case L_NCE_RCE: {
        ct_tensor *log_p = ct_log_softmax(tape, z, 1);
        ct_tensor *nce = ct_div(tape, ce, ct_neg(tape, ct_sum(tape, log_p, 1, 0)));
        ct_tensor *rce = ct_mul_scalar(tape, one_minus_p(tape, ce), -lc->c);
        per = ct_add(tape, ct_mul_scalar(tape, nce, lc->a), ct_mul_scalar(tape, rce, lc->b));
        break;
    }
    default: break;
    }
    return reduce_composed(tape, per, r);
}

static ct_tensor *fused(ct_tape *tape, ct_tensor *z, const loss_case *lc) {
    const ct_reduction r = lc->reduction;
    ct_tensor *t = lc->target;
    switch (lc->kind) {
    case L_NLL: return ct_nll_loss(tape, z, lc->y, CT_NLL(.reduction = r, .weight = lc->w1));
    case L_BCE: return ct_bce_with_logits(tape, z, t, CT_BCE(.reduction = r, .weight = lc->w1, .pos_weight = lc->w2));
    case L_MSE: return ct_mse_loss(tape, z, t, CT_REGRESSION(.reduction = r));
    case L_L1: return ct_l1_loss(tape, z, t, CT_REGRESSION(.reduction = r));
    case L_SMOOTH_L1: return ct_smooth_l1_loss(tape, z, t, CT_REGRESSION(.reduction = r, .beta = lc->a));
    case L_HUBER: return ct_huber_loss(tape, z, t, CT_REGRESSION(.reduction = r, .delta = lc->a));
    case L_KL: return ct_kl_div(tape, z, t, CT_KL_DIV(.reduction = r, .log_target = lc->a != 0));
    case L_SIGMOID_FOCAL:
        return ct_sigmoid_focal_loss(tape, z, t, CT_SIGMOID_FOCAL(.reduction = r, .alpha = lc->a, .gamma = lc->b));
    case L_FOCAL:
        return ct_focal_loss(tape, z, lc->y, CT_FOCAL(.reduction = r, .alpha = lc->a, .gamma = lc->b, .alpha_per_class = lc->w1));
    case L_POLY1: return ct_poly1_loss(tape, z, lc->y, CT_POLY(.reduction = r, .epsilon = lc->c));
    case L_POLY_N: return ct_poly_n_loss(tape, z, lc->y, CT_POLY(.reduction = r, .epsilons = lc->eps, .n_epsilons = lc->n_eps));
    case L_POLY1_FOCAL:
        return ct_poly1_focal_loss(tape, z, lc->y, CT_POLY(.reduction = r, .alpha = lc->a, .gamma = lc->b, .epsilon = lc->c));
    case L_SQUENTROPY: return ct_squentropy_loss(tape, z, lc->y, CT_SQUENTROPY(.reduction = r));
    case L_COMP_SUM: return ct_comp_sum_loss(tape, z, lc->y, CT_COMP_SUM(.reduction = r, .tau = lc->a));
    case L_NCE_RCE:
        return ct_nce_rce_loss(tape, z, lc->y, CT_NCE_RCE(.reduction = r, .alpha = lc->a, .beta = lc->b, .log_zero = lc->c));
    default: return ct_stablemax_cross_entropy(tape, z, lc->y, CT_STABLEMAX(.reduction = r));
    }
}

/* ---- inputs ------------------------------------------------------------------------------------ */
enum { IN_RANDOM, IN_STAIRCASE, IN_EXTREME };

/* Logits (N, C): normal(0, 2); a staircase, row i lowered by i mod 60 (short rows share their
 * block's maximum as the shift down to about 42 below it and take their own below that: both
 * sides, see losses/rows.h); or extreme rows — ±1e4 mixed, all equal, one large (1e4) among
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

/* Fused == composed on one input, for every reduction the loss has; updates *worst (relative to
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
        run_loss(composed, &lc, z, v2, g2, 7);
        double vscale = 0, gscale = 0;
        for (size_t k = 0; k < n; k++) vscale = fmax(vscale, fabs((double)v2[k]));
        for (size_t k = 0; k < z->size; k++) gscale = fmax(gscale, fabs((double)g2[k]));
        for (size_t k = 0; k < n && ok; k++) {
            const double err = fabs((double)v1[k] - v2[k]) / fmax(vscale, 1e-30);
            *worst = fmax(*worst, err);
            if (!(err <= VALUE_RTOL) || !isfinite((double)v1[k])) {
                ct_test_fail(__FILE__, __LINE__, "%s reduction %d: value[%zu] fused %.9g, composed %.9g",
                             loss_names[lc.kind], (int)lc.reduction, k, (double)v1[k], (double)v2[k]);
                ok = 0;
            }
        }
        for (size_t k = 0; k < z->size && ok; k++) {
            const double err = fabs((double)g1[k] - g2[k]) / fmax(gscale, 1e-30);
            *worst = fmax(*worst, err);
            if (!(err <= GRAD_RTOL) || !isfinite((double)g1[k])) {
                ct_test_fail(__FILE__, __LINE__, "%s reduction %d: grad[%zu] fused %.9g, composed %.9g (scale %.3g)",
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
        if (lc.kind == L_NLL) labels[N - 1] = -100; /* one ignored sample */
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

CT_TEST(loss_fused, nll_matches_composed) {
    compare_loss((loss_case){.kind = L_NLL}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_NLL, .w1 = PER_CLASS(0.5)}, 1);
}
CT_TEST(loss_fused, bce_with_logits_matches_composed) {
    compare_loss((loss_case){.kind = L_BCE}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_BCE, .w2 = PER_CLASS(0.5)}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_BCE, .w1 = PER_CLASS(0.25), .w2 = PER_CLASS(1.5)}, 1);
}
CT_TEST(loss_fused, mse_matches_composed) { compare_loss((loss_case){.kind = L_MSE}, 1); }
CT_TEST(loss_fused, l1_matches_composed) { compare_loss((loss_case){.kind = L_L1}, 1); }
CT_TEST(loss_fused, smooth_l1_matches_composed) {
    compare_loss((loss_case){.kind = L_SMOOTH_L1, .a = 1.0}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_SMOOTH_L1, .a = 0.25}, 1);
}
CT_TEST(loss_fused, huber_matches_composed) {
    compare_loss((loss_case){.kind = L_HUBER, .a = 1.0}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_HUBER, .a = 2.5}, 1);
}
CT_TEST(loss_fused, kl_div_matches_composed) {
    compare_loss((loss_case){.kind = L_KL, .a = 0}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_KL, .a = 1}, 0);
}
CT_TEST(loss_fused, sigmoid_focal_matches_composed) {
    const double gammas[] = {2, 0, 1, 0.5, 3, 1.5};
    for (int k = 0; k < 6 && !ct_test_stopped(); k++)
        compare_loss((loss_case){.kind = L_SIGMOID_FOCAL, .a = k % 2 ? 0.25 : -1, .b = gammas[k]}, 1);
}
CT_TEST(loss_fused, focal_matches_composed) {
    const double gammas[] = {2, 0, 1, 0.5, 3, 1.5};
    for (int k = 0; k < 6 && !ct_test_stopped(); k++)
        compare_loss((loss_case){.kind = L_FOCAL, .a = k % 2 ? 0.25 : 1, .b = gammas[k]}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_FOCAL, .a = 1, .b = 2, .w1 = PER_CLASS(0.25)}, 1);
}
CT_TEST(loss_fused, poly1_matches_composed) {
    compare_loss((loss_case){.kind = L_POLY1, .c = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1, .c = -1}, 1);
}
CT_TEST(loss_fused, poly_n_matches_composed) {
    static const double eps[] = {1, 0, -0.5, 2};
    compare_loss((loss_case){.kind = L_POLY_N, .eps = eps, .n_eps = 4}, 1);
}
CT_TEST(loss_fused, poly1_focal_matches_composed) {
    compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 1, .b = 2, .c = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 0.25, .b = 0.5, .c = -1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_POLY1_FOCAL, .a = 0.5, .b = 0, .c = 2}, 1);
}
CT_TEST(loss_fused, squentropy_matches_composed) { compare_loss((loss_case){.kind = L_SQUENTROPY}, 1); }
CT_TEST(loss_fused, comp_sum_matches_composed) {
    /* τ < 1 grows like e^((1−τ)·CE): the extreme rows overflow both versions, so random inputs only */
    compare_loss((loss_case){.kind = L_COMP_SUM, .a = 0}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 1}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 0.5}, 0);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 1.7}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_COMP_SUM, .a = 2}, 1);
}
CT_TEST(loss_fused, nce_rce_matches_composed) {
    compare_loss((loss_case){.kind = L_NCE_RCE, .a = 1, .b = 1, .c = -4}, 1);
    if (!ct_test_stopped()) compare_loss((loss_case){.kind = L_NCE_RCE, .a = 0.5, .b = 2, .c = -2}, 1);
}
CT_TEST(loss_fused, stablemax_matches_composed) { compare_loss((loss_case){.kind = L_STABLEMAX}, 1); }

/* A target that requires grad takes the composed path: its gradient arrives (mse: −2d/n). */
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
    return fused(tape, inputs[0], ctx);
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
    CHECK(passed, "%s: %s", loss_names[lc.kind], msg);
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
