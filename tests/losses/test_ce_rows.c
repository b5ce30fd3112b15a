/* tests/losses/test_ce_rows.c — ct_cross_entropy's two row paths (short rows, C < 64, through blocks of
 * 2048 elements; long rows one at a time) against the definition computed here in double:
 *     α_ic = (1−ε)·w_{y_i}·[c = y_i] + (ε/C)·w_c,  ℓ_i = −Σ_c α_ic·log p_ic,
 *     ∂ℓ_i/∂z_ic = (Σ_c α_ic)·p_ic − α_ic,
 * for class counts on both sides of the switch, batches spanning several blocks, every
 * reduction, weights, smoothing, with and without ignored samples, and rows whose maxima lie
 * 0 to 59 below the largest of their block (short rows share the block's maximum as their shift
 * down to about 42 below it, and use their own below that). */
#include "../test.h"

#include <stdlib.h>

/* Loss (mean/sum: one value; none: out[i]) and dz for upstream gradient g (one value, or N). */
static void reference_ce(const ct_real *z, const int *y, int N, int C, ct_ce_opts o, const double *g,
                         double *loss, double *dz) {
    double total = 0, denom = 0;
    for (int i = 0; i < N; i++) {
        const ct_real *zr = z + (size_t)i * C;
        double m = zr[0], s = 0;
        for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
        for (int c = 0; c < C; c++) s += exp(zr[c] - m);
        double li = 0;
        for (int c = 0; c < C; c++) dz[(size_t)i * C + c] = 0;
        if (y[i] != o.ignore_index) {
            const double wy = o.weight ? o.weight[y[i]] : 1;
            double A = 0;
            for (int c = 0; c < C; c++) {
                const double alpha = (1 - o.label_smoothing) * wy * (c == y[i]) +
                                     o.label_smoothing / C * (o.weight ? o.weight[c] : 1);
                li -= alpha * ((zr[c] - m) - log(s));
                A += alpha;
            }
            for (int c = 0; c < C; c++) {
                const double alpha = (1 - o.label_smoothing) * wy * (c == y[i]) +
                                     o.label_smoothing / C * (o.weight ? o.weight[c] : 1);
                dz[(size_t)i * C + c] = A * exp((zr[c] - m) - log(s)) - alpha;
            }
            denom += wy;
        }
        if (o.reduction == CT_REDUCTION_NONE) loss[i] = li;
        total += li;
    }
    if (o.reduction == CT_REDUCTION_SUM) loss[0] = total;
    if (o.reduction == CT_REDUCTION_MEAN) loss[0] = total / denom;
    for (int i = 0; i < N; i++) {
        const double gi = o.reduction == CT_REDUCTION_NONE ? g[i] : o.reduction == CT_REDUCTION_SUM ? g[0] : g[0] / denom;
        for (int c = 0; c < C; c++) dz[(size_t)i * C + c] *= gi;
    }
}

CT_TEST(losses, cross_entropy_short_and_long_rows_match_definition) {
    const int classes[] = {1, 3, 10, 63, 64, 100};
    const int N = 450; /* 450 x 10 = 4,500 elements: three blocks, the last one partial */
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_real weight[100];
    for (int c = 0; c < 100; c++) weight[c] = (ct_real)ct_rng_uniform_range(&rng, 0.2, 2.0);
    double worst_loss = 0, worst_grad = 0, worst_staircase = 0;
    int cases = 0;
    for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
        const int C = classes[k];
        for (int variant = 0; variant < 10; variant++) {
            ct_ce_opts o = CT_CE();
            if (variant == 1) o.reduction = CT_REDUCTION_SUM;
            if (variant == 2) o.reduction = CT_REDUCTION_NONE;
            if (variant == 3) o.label_smoothing = 0.1;
            if (variant == 4) o.weight = weight;
            if (variant == 5) o.reduction = CT_REDUCTION_NONE, o.label_smoothing = 0.2, o.weight = weight;
            if (variant == 7) o.reduction = CT_REDUCTION_SUM, o.label_smoothing = 0.3;
            if (variant == 8) o.reduction = CT_REDUCTION_NONE;
            const int ignore_some = variant < 6; /* 6, 7: every row counts (one scale for all rows) */
            const int staircase = variant >= 8;  /* 8, 9: row maxima 0..59 below the block's */
            ct_tape *tape = ct_tape_new();
            ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
            /* mostly N(0, 3), every 7th row with one logit 1e4 above the rest; or (staircase) row i
             * lowered by i mod 60, its label's logit 8 above the rest: losses ~1e-3 whose absolute
             * error shows a log s_i rounded at its own magnitude (~40) */
            ct_tensor_fill_normal(z, &rng, 0, staircase ? 1 : 3);
            int *y = malloc((size_t)N * sizeof *y);
            for (int i = 0; i < N; i++) y[i] = ignore_some && i % 11 == 3 ? o.ignore_index : (int)ct_rng_int(&rng, 0, C);
            for (int i = 0; i < N; i++) {
                if (staircase) {
                    for (int c = 0; c < C; c++) z->data[(size_t)i * C + c] -= (ct_real)(i % 60);
                    z->data[(size_t)i * C + y[i]] += 8;
                } else if (i % 7 == 0) {
                    z->data[(size_t)i * C + i % C] += (ct_real)1e4;
                }
            }
            double *g = malloc((size_t)N * sizeof *g), *ref_loss = malloc((size_t)N * sizeof *ref_loss);
            double *ref_dz = malloc((size_t)N * C * sizeof *ref_dz);
            ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, N), o);
            ct_tensor *seed = ct_tensor_new(loss->ndim ? CT_SHAPE(N) : (ct_shape){.ndim = 0});
            ct_tensor_fill_uniform(seed, &rng, 0.5, 1.5);
            for (size_t i = 0; i < seed->size; i++) g[i] = seed->data[i];
            ct_backward_with(tape, loss, seed->data);
            reference_ce(z->data, y, N, C, o, g, ref_loss, ref_dz);
            double max_grad = 1; /* an absolute floor: with C = 1 every gradient is 0 up to rounding */
            for (size_t j = 0; j < (size_t)N * C; j++) max_grad = fmax(max_grad, fabs(ref_dz[j]));
            double loss_err = 0, grad_err = 0;
            for (size_t i = 0; i < loss->size; i++)
                loss_err = fmax(loss_err, fabs(loss->data[i] - ref_loss[i]) / fmax(1, fabs(ref_loss[i])));
            for (size_t j = 0; j < (size_t)N * C; j++)
                grad_err = fmax(grad_err, fabs(z->grad[j] - ref_dz[j]) / max_grad);
            worst_loss = fmax(worst_loss, loss_err), worst_grad = fmax(worst_grad, grad_err);
            free(y), free(g), free(ref_loss), free(ref_dz);
            ct_tensor_free(seed);
            ct_tensor_free(z);
            ct_tape_free(tape);
            cases++;
#ifdef CT_PRECISION_64
            const double tol = 1e-12, staircase_loss_tol = 1e-12;
#else
            /* staircase losses ~1e-3: an absolute error of a few float ulps of log s_i (measured
             * 1e-7 at C = 1 to 6.4e-7 at C = 63, the float sum of 63 terms, as with each row's
             * own maximum); an e^(z − M) or log s_i rounded at the magnitude of z − M (up to 42)
             * gave 1.0e-6 at C = 1 */
            const double tol = 2e-6, staircase_loss_tol = 8e-7;
#endif
            CHECK(loss_err <= (staircase ? staircase_loss_tol : tol) && grad_err <= tol,
                  "C = %d, variant %d: loss rel err %.2e, grad err %.2e of the largest", C, variant, loss_err, grad_err);
            if (staircase) worst_staircase = fmax(worst_staircase, loss_err);
        }
    }
    ct_test_note("%d cases, worst loss rel err %.1e (staircase rows: abs %.1e), gradient err %.1e of the largest",
                 cases, worst_loss, worst_staircase, worst_grad);
}

/* A non-finite logit (NaN, +inf, −inf) in a short-row batch past the first block: its row is
 * redone with its own maximum and gives NaN (NaN, +inf: loss and gradient) or masks the class
 * (−inf); the block's other rows, which shared the shift, are as without it. */
CT_TEST(losses, cross_entropy_short_rows_keep_a_non_finite_logit_in_its_row) {
    const ct_real values[3] = {NAN, INFINITY, -INFINITY};
    for (int v = 0; v < 3; v++) {
        ct_tape *tape = ct_tape_new(), *clean_tape = ct_tape_new();
        ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(300, 10)), *clean = ct_tensor_new_grad(CT_SHAPE(300, 10));
        for (size_t k = 0; k < z->size; k++) z->data[k] = clean->data[k] = (ct_real)((k * 7) % 11) * (ct_real)0.3;
        int y[300] = {0};
        z->data[257 * 10 + 4] = values[v];
        ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 300), CT_CE(.reduction = CT_REDUCTION_NONE));
        ct_tensor *want = ct_cross_entropy(clean_tape, clean, CT_LABELS(y, 300), CT_CE(.reduction = CT_REDUCTION_NONE));
        ct_backward_with(tape, loss, want->data); /* any finite cotangent */
        for (int i = 0; i < 300; i++) {
            if (i == 257) {
                CHECK(v == 2 ? isfinite(loss->data[i]) && loss->data[i] < want->data[i] : isnan(loss->data[i]),
                      "value %g: row 257 loss %g", (double)values[v], (double)loss->data[i]);
                CHECK(v == 2 ? z->grad[257 * 10 + 4] == 0 : isnan(z->grad[257 * 10]), "value %g: row 257 gradient",
                      (double)values[v]);
                continue;
            }
            CHECK(loss->data[i] == want->data[i], "value %g: row %d loss %g, want %g", (double)values[v], i,
                  (double)loss->data[i], (double)want->data[i]);
            CHECK(isfinite(z->grad[(size_t)i * 10]), "value %g: row %d gradient", (double)values[v], i);
        }
        ct_tensor_free(z), ct_tensor_free(clean);
        ct_tape_free(tape), ct_tape_free(clean_tape);
    }
}

/* The softmax losses of losses/softmax_family.c take the same shared block shift on short rows.
 * Focal with γ = 0 is cross-entropy, and Poly-1 adds ε·(1 − p_y): both against the definition in
 * double on staircase rows (row i lowered by i mod 60, the label's logit 8 above the rest:
 * losses ~1e-3), per sample, with the same absolute bound as cross_entropy above. */
CT_TEST(losses, softmax_losses_short_rows_staircase_match_definition) {
    const int classes[] = {3, 10, 63};
    const int N = 450;
    ct_rng rng;
    ct_rng_seed(&rng, 8);
    double worst_loss = 0, worst_grad = 0;
    for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
        const int C = classes[k];
        for (int poly = 0; poly < 2; poly++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
            ct_tensor_fill_normal(z, &rng, 0, 1);
            int *y = malloc((size_t)N * sizeof *y);
            for (int i = 0; i < N; i++) {
                y[i] = (int)ct_rng_int(&rng, 0, C);
                for (int c = 0; c < C; c++) z->data[(size_t)i * C + c] -= (ct_real)(i % 60);
                z->data[(size_t)i * C + y[i]] += 8;
            }
            ct_tensor *loss = poly ? ct_poly1_loss(tape, z, CT_LABELS(y, N), CT_POLY(.reduction = CT_REDUCTION_NONE))
                                   : ct_focal_loss(tape, z, CT_LABELS(y, N), CT_FOCAL(.gamma = 0, .reduction = CT_REDUCTION_NONE));
            ct_tensor *seed = ct_tensor_new(CT_SHAPE(N));
            ct_tensor_fill_uniform(seed, &rng, 0.5, 1.5);
            ct_backward_with(tape, loss, seed->data);
            double *g = malloc((size_t)N * sizeof *g), *ref_loss = malloc((size_t)N * sizeof *ref_loss);
            double *ref_dz = malloc((size_t)N * C * sizeof *ref_dz);
            for (int i = 0; i < N; i++) g[i] = seed->data[i];
            ct_ce_opts o = CT_CE(.reduction = CT_REDUCTION_NONE);
            reference_ce(z->data, y, N, C, o, g, ref_loss, ref_dz);
            double loss_err = 0, grad_err = 0, max_grad = 1;
            for (int i = 0; i < N; i++) {
                const ct_real *zr = z->data + (size_t)i * C;
                double m = zr[0], s = 0;
                for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
                for (int c = 0; c < C; c++) s += exp(zr[c] - m);
                const double p_y = exp((zr[y[i]] - m) - log(s));
                if (poly) { /* ℓ = u + (1 − p_y); dℓ/dz_c = (p_c − [c = y])·(1 + p_y) */
                    ref_loss[i] += 1 - p_y;
                    for (int c = 0; c < C; c++) ref_dz[(size_t)i * C + c] *= 1 + p_y;
                }
                loss_err = fmax(loss_err, fabs(loss->data[i] - ref_loss[i]));
            }
            for (size_t j = 0; j < (size_t)N * C; j++) max_grad = fmax(max_grad, fabs(ref_dz[j]));
            for (size_t j = 0; j < (size_t)N * C; j++) grad_err = fmax(grad_err, fabs(z->grad[j] - ref_dz[j]) / max_grad);
            worst_loss = fmax(worst_loss, loss_err), worst_grad = fmax(worst_grad, grad_err);
            CHECK(loss_err <= 8e-7 && grad_err <= 2e-6, "C = %d, %s: loss abs err %.2e, grad err %.2e of the largest", C,
                  poly ? "poly1" : "focal gamma 0", loss_err, grad_err);
            free(y), free(g), free(ref_loss), free(ref_dz);
            ct_tensor_free(seed);
            ct_tensor_free(z);
            ct_tape_free(tape);
        }
    }
    ct_test_note("worst loss abs err %.1e, gradient err %.1e of the largest", worst_loss, worst_grad);
}

/* Short rows past PARALLEL_WORK (16,000 x 10 = 160,000 elements) are split over the threads:
 * the same values as the definition on 1 and 2 threads; and a NaN in a batch that size named
 * with its row (on one thread: ct_test_expect_fatal's child runs on one). */
/* A NaN past the first thread's rows: NaN in that row only. */
static int ce_large_with_nan_stays_in_its_row(void) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(16000, 10));
    int *y = calloc(16000, sizeof *y);
    z->data[12345 * 10 + 6] = NAN;
    ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 16000), CT_CE(.reduction = CT_REDUCTION_NONE));
    int ok = 1;
    for (int i = 0; i < 16000; i++) ok &= i == 12345 ? isnan(loss->data[i]) : isfinite(loss->data[i]);
    free(y);
    ct_tensor_free(z);
    ct_tape_free(tape);
    return ok;
}

CT_TEST(losses, cross_entropy_short_rows_split_over_threads) {
    const int N = 16000, C = 10;
    const int saved_threads = ct_get_threads();
    ct_rng rng;
    ct_rng_seed(&rng, 9);
    double worst = 0;
    for (int threads = 1; threads <= 2; threads++)
        for (int none = 0; none < 2; none++) {
            ct_set_threads(threads);
            ct_tape *tape = ct_tape_new();
            ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
            ct_tensor_fill_normal(z, &rng, 0, 3);
            int *y = malloc((size_t)N * sizeof *y);
            for (int i = 0; i < N; i++) y[i] = (int)ct_rng_int(&rng, 0, C);
            ct_ce_opts o = CT_CE(.reduction = none ? CT_REDUCTION_NONE : CT_REDUCTION_MEAN);
            ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, N), o);
            ct_tensor *seed = ct_tensor_new(loss->ndim ? CT_SHAPE(N) : (ct_shape){.ndim = 0});
            ct_tensor_fill_uniform(seed, &rng, 0.5, 1.5);
            ct_backward_with(tape, loss, seed->data);
            double *g = malloc((size_t)N * sizeof *g), *ref_loss = malloc((size_t)N * sizeof *ref_loss);
            double *ref_dz = malloc((size_t)N * C * sizeof *ref_dz);
            for (size_t i = 0; i < seed->size; i++) g[i] = seed->data[i];
            reference_ce(z->data, y, N, C, o, g, ref_loss, ref_dz);
            double err = 0;
            for (size_t i = 0; i < loss->size; i++) err = fmax(err, fabs(loss->data[i] - ref_loss[i]) / fmax(1, fabs(ref_loss[i])));
            for (size_t j = 0; j < (size_t)N * C; j++) err = fmax(err, fabs(z->grad[j] - ref_dz[j]));
            worst = fmax(worst, err);
            CHECK(err <= 2e-6, "%d thread(s), %s: worst error %.2e", threads, none ? "none" : "mean", err);
            free(y), free(g), free(ref_loss), free(ref_dz);
            ct_tensor_free(seed);
            ct_tensor_free(z);
            ct_tape_free(tape);
        }
    ct_set_threads(2);
    const int nan_ok = ce_large_with_nan_stays_in_its_row();
    ct_set_threads(saved_threads);
    CHECK(nan_ok, "a NaN at row 12345 of (16000, 10) is not NaN in that row alone");
    ct_test_note("1 and 2 threads, mean and none: worst error %.1e", worst);
}

/* PolyLoss at ε = 0 and focal loss at γ = 0, α = 1 are cross-entropy (Leng et al. 2022; Lin et al.
 * 2017): the same value and gradient to the last bit, for every reduction, so a race of poly1:epsilon=0
 * against cross_entropy trains the same weights (a last-bit difference grows into ±0.5% of test
 * accuracy over three epochs). */
CT_TEST(losses, poly1_at_epsilon_0_and_focal_at_gamma_0_are_cross_entropy_bit_for_bit) {
    const int N = 37, C = 10;
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    int y[37];
    for (int i = 0; i < N; i++) y[i] = (int)ct_rng_int(&rng, 0, C);
    const ct_reduction reductions[] = {CT_REDUCTION_MEAN, CT_REDUCTION_SUM, CT_REDUCTION_NONE};
    for (int r = 0; r < 3; r++)
        for (int which = 0; which < 2; which++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *za = ct_tensor_new_grad(CT_SHAPE(N, C)), *zb = ct_tensor_new_grad(CT_SHAPE(N, C));
            ct_rng_seed(&rng, 7);
            ct_tensor_fill_normal(za, &rng, 0, 3);
            memcpy(zb->data, za->data, za->size * sizeof(ct_real));
            ct_tensor *a = ct_cross_entropy(tape, za, CT_LABELS(y, N), CT_CE(.reduction = reductions[r]));
            ct_tensor *b = which ? ct_focal_loss(tape, zb, CT_LABELS(y, N), CT_FOCAL(.reduction = reductions[r], .gamma = 0))
                                 : ct_poly1_loss(tape, zb, CT_LABELS(y, N), CT_POLY(.reduction = reductions[r], .epsilon = 0));
            ct_backward(tape, ct_sum_all(tape, ct_add(tape, a, b)));
            CHECK(!memcmp(a->data, b->data, a->size * sizeof(ct_real)), "%s, reduction %d: the value differs from CE's",
                  which ? "focal gamma=0" : "poly1 epsilon=0", r);
            CHECK(!memcmp(za->grad, zb->grad, za->size * sizeof(ct_real)),
                  "%s, reduction %d: the gradient differs from CE's", which ? "focal gamma=0" : "poly1 epsilon=0", r);
            ct_tape_free(tape);
            ct_tensor_free(za), ct_tensor_free(zb);
        }
}
