/* tests/optim/test_muon.c — Muon (optim/muon.c): the Newton–Schulz orthogonalisation against an SVD
 * (LAPACK's dgesvd, which OpenBLAS ships) and against PyTorch, four steps on a conv weight, a tall
 * matrix and a bias (with an SGD aux) against PyTorch transcriptions of the Muon repository's and
 * airbench94_muon's updates (tests/reference/gen_muon.py), state save/load, the spec registry, and
 * the refusals. */
#include "../test.h"
#include "../reference/muon_ref.h"
#include "../../optim/optimizer.h" /* the state slots, to see which parameters have a buffer */

#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS): the SVD of a column-major m × n matrix. */
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda,
                    double *s, double *u, const int *ldu, double *vt, const int *ldvt, double *work,
                    const int *lwork, int *info);

/* Thin SVD of a row-major rows × cols matrix g = U·diag(s)·Vᵀ: u (rows × k), v (cols × k) row-major,
 * k = min(rows, cols). Returns LAPACK's info (0: converged). */
static int svd(const double *g, int rows, int cols, double *s, double *u, double *v) {
    /* the row-major data is the column-major cols × rows matrix gᵀ = V·S·Uᵀ */
    const int m = cols, n = rows, k = rows < cols ? rows : cols;
    double *a = malloc(sizeof(double) * (size_t)(m * n)), *uu = malloc(sizeof(double) * (size_t)(m * k)),
           *vt = malloc(sizeof(double) * (size_t)(k * n)), query;
    memcpy(a, g, sizeof(double) * (size_t)(m * n));
    int info, lwork = -1;
    dgesvd_("S", "S", &m, &n, a, &m, s, uu, &m, vt, &k, &query, &lwork, &info);
    lwork = (int)query;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    dgesvd_("S", "S", &m, &n, a, &m, s, uu, &m, vt, &k, work, &lwork, &info);
    for (int i = 0; i < k; i++) {
        for (int r = 0; r < rows; r++) u[r * k + i] = vt[i + r * k]; /* U of g = (Vᵀ of gᵀ)ᵀ */
        for (int c = 0; c < cols; c++) v[c * k + i] = uu[c + i * m]; /* V of g = U of gᵀ */
    }
    free(a), free(uu), free(vt), free(work);
    return info;
}

/* NS5 of a random rows × cols matrix, in U's and V's basis: D = Uᵀ·O·V is diagonal with the quintic
 * p(x) = a·x + b·x³ + c·x⁵ applied 5 times to each normalised singular value σᵢ/‖G‖_F, which for
 * σᵢ/‖G‖_F >= 0.01 lands in [0.6818, 1.1344] (the scalar map's band after 5 steps), and O has
 * nothing outside span(U)·span(V). */
static double quintic5(double x) {
    for (int i = 0; i < 5; i++) x = 3.4445 * x - 4.7750 * x * x * x + 2.0315 * x * x * x * x * x;
    return x;
}

static void check_against_svd(int rows, int cols, uint64_t seed, const char *what, char *notes, size_t len) {
    const int k = rows < cols ? rows : cols;
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_real *g = malloc(sizeof(ct_real) * (size_t)(rows * cols)), *o = malloc(sizeof(ct_real) * (size_t)(rows * cols));
    double *gd = malloc(sizeof(double) * (size_t)(rows * cols)), *s = malloc(sizeof(double) * (size_t)k),
           *u = malloc(sizeof(double) * (size_t)(rows * k)), *v = malloc(sizeof(double) * (size_t)(cols * k));
    double norm2 = 0;
    for (int i = 0; i < rows * cols; i++) {
        g[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        gd[i] = g[i];
        norm2 += gd[i] * gd[i];
    }
    CHECK(svd(gd, rows, cols, s, u, v) == 0, "%s: dgesvd did not converge", what);
    ct_muon_orthogonalise(g, rows, cols, 5, 1e-7, o);
    double diag_lo = 1e9, diag_hi = -1e9, off = 0, d2 = 0, o2 = 0, dot = 0, predicted = 0;
    for (int i = 0; i < rows * cols; i++) o2 += (double)o[i] * o[i];
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            double d = 0; /* (Uᵀ O V)_ij */
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) d += u[r * k + i] * (double)o[r * cols + c] * v[c * k + j];
            d2 += d * d;
            if (i == j) {
                if (s[i] / sqrt(norm2) >= 0.01) diag_lo = fmin(diag_lo, d), diag_hi = fmax(diag_hi, d);
                predicted = fmax(predicted, fabs(d - quintic5(s[i] / (sqrt(norm2) + 1e-7))));
                dot += d; /* ⟨O, U·Vᵀ⟩ = trace(Uᵀ O V) */
            } else {
                off = fmax(off, fabs(d));
            }
        }
    CHECK(diag_lo >= 0.68 && diag_hi <= 1.135, "%s: singular values of NS5 in [%g, %g], want within [0.68, 1.135]",
          what, diag_lo, diag_hi);
    CHECK(predicted < 1e-4, "%s: a singular value of NS5 is %g away from p⁵(σ/‖G‖)", what, predicted);
    CHECK(off < 1e-4, "%s: Uᵀ·O·V has an off-diagonal %g: O's singular vectors are not G's", what, off);
    CHECK(fabs(o2 - d2) < 1e-4 * o2, "%s: %g of ‖O‖² lies outside G's singular subspaces", what, (o2 - d2) / o2);
    int small = 0; /* singular values too small for 5 steps to lift into the band (p⁵ still predicts them) */
    for (int i = 0; i < k; i++) small += s[i] / sqrt(norm2) < 0.01;
    CHECK(small <= 1, "%s: %d singular values below 0.01·‖G‖_F: pick another test matrix", what, small);
    const double cosine = dot / (sqrt(o2) * sqrt((double)k)); /* ‖U·Vᵀ‖_F = √k */
    CHECK(cosine > 0.98, "%s: cos(O, U·Vᵀ) = %g", what, cosine);
    const size_t used = strlen(notes);
    snprintf(notes + used, len - used, "%s%s: σ [%.3f, %.3f]%s, cos %.4f", used ? "; " : "", what, diag_lo, diag_hi,
             small ? " (one σ < 0.01‖G‖ outside, as p⁵ predicts)" : "", cosine);
    free(g), free(o), free(gd), free(s), free(u), free(v);
}

CT_TEST(muon, orthogonalise_matches_svd) {
    char notes[512] = "";
    const struct {
        int rows, cols;
        const char *what;
    } cases[] = {{40, 12, "tall 40x12"}, {10, 50, "wide 10x50"}, {16, 16, "square 16x16"},
                 {8, 3 * 3 * 3, "conv (8, 3, 3, 3) as 8x27"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases && !ct_test_stopped(); i++)
        check_against_svd(cases[i].rows, cases[i].cols, i + 1, cases[i].what, notes, sizeof notes);
    if (!ct_test_stopped()) ct_test_note("%s", notes);
}

#ifdef CT_PRECISION_64
#define NS_TOL 1e-12
#define REF_RTOL 1e-11
#define REF_ATOL 1e-12
#else
#define NS_TOL 2e-5
#define REF_RTOL 2e-5
#define REF_ATOL 2e-5
#endif

CT_TEST(muon, orthogonalise_matches_pytorch) {
    int at = 0;
    double worst = 0;
    for (int c = 0; c < MUON_REF_NS; c++) {
        const int rows = muon_ref_ns_shape[c][0], cols = muon_ref_ns_shape[c][1], n = rows * cols;
        ct_real *g = malloc(sizeof(ct_real) * (size_t)n);
        for (int i = 0; i < n; i++) g[i] = (ct_real)muon_ref_ns_in[at + i];
        ct_muon_orthogonalise(g, rows, cols, 5, 1e-7, g); /* in place */
        for (int i = 0; i < n; i++) {
            const double d = fabs(g[i] - muon_ref_ns_out[at + i]);
            worst = fmax(worst, d);
            CHECK(d <= NS_TOL, "%dx%d [%d]: %.10g, PyTorch %.10g", rows, cols, i, (double)g[i], muon_ref_ns_out[at + i]);
        }
        at += n;
        free(g);
    }
    ct_test_note("largest difference %.2g", worst);
}

/* The reference's three parameters at their initial values. */
static ct_model *reference_model(void) {
    ct_model *m = ct_model_new();
    size_t at = 0;
    for (int k = 0; k < MUON_REF_PARAMS; k++) {
        ct_shape s = {.ndim = muon_ref_ndim[k]};
        for (int d = 0; d < s.ndim; d++) s.d[d] = muon_ref_shape[k][d];
        ct_tensor *p = ct_model_add_param(m, muon_ref_names[k], s);
        for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)muon_ref_initial[at + i];
        at += p->size;
    }
    return m;
}

static void feed_grads(ct_model *m, int step) {
    size_t at = 0;
    for (int k = 0; k < MUON_REF_PARAMS; k++) {
        ct_tensor *p = ct_model_param(m, k);
        for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)muon_ref_grads[step][at + i];
        at += p->size;
    }
}

/* Muon (matrices) + an SGD aux (the bias) as each reference case was generated. */
static ct_optim *reference_optimizer(ct_model *m, const muon_ref_case *rc) {
    if (!strcmp(rc->name, "repo")) {
        ct_optim *aux = ct_sgd_new(m, CT_SGD(.lr = rc->aux_lr, .momentum = 0.9, .nesterov = 1));
        return ct_muon_new(m, CT_MUON(.lr = rc->lr, .momentum = rc->momentum, .weight_decay = rc->weight_decay,
                                      .select = ct_param_is_matrix, .aux = aux));
    }
    if (!strcmp(rc->name, "airbench")) {
        ct_optim *aux = ct_sgd_new(m, CT_SGD(.lr = rc->aux_lr, .momentum = 0.85, .nesterov = 1,
                                             .weight_decay = rc->aux_weight_decay));
        return ct_muon_new(m, CT_MUON_AIRBENCH(.select = ct_param_is_matrix, .aux = aux));
    }
    ct_optim *aux = ct_sgd_new(m, CT_SGD(.lr = rc->aux_lr));
    return ct_muon_new(m, CT_MUON(.lr = rc->lr, .momentum = rc->momentum, .nesterov = 0, .select = ct_param_is_matrix,
                                  .aux = aux));
}

CT_TEST(muon, steps_match_pytorch) {
    for (int c = 0; c < MUON_REF_COUNT; c++) {
        const muon_ref_case *rc = &muon_ref_cases[c];
        /* The Muon repository keeps (1 − μ) times ctape's buffer; the ε added to ‖u‖_F then weighs
         * 1/(1 − μ) = 20 times more there, a relative 1e-7/‖u‖: seen in float64 only. */
        const double atol = !strcmp(rc->name, "repo") ? fmax(REF_ATOL, 1e-7) : REF_ATOL;
        ct_model *m = reference_model();
        ct_optim *opt = reference_optimizer(m, rc);
        double worst = 0;
        for (int step = 0; step < MUON_REF_STEPS; step++) {
            if (!strcmp(rc->name, "airbench")) ct_optim_set_lr(opt, rc->lr * (1 - step / 8.0)); /* its schedule */
            feed_grads(m, step);
            CHECK(ct_optim_step(opt) == CT_OK, "%s", ct_last_error());
            size_t at = 0;
            for (int k = 0; k < MUON_REF_PARAMS; k++) {
                const ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++, at++) {
                    const double got = p->data[i], want = rc->after[step][at];
                    CHECK(fabs(got - want) <= atol + REF_RTOL * fabs(want), "%s step %d: %s[%zu] = %.10g, PyTorch %.10g",
                          rc->name, step + 1, p->name, i, got, want);
                    CHECK(p->grad[i] == 0, "%s step %d: %s.grad[%zu] not zeroed", rc->name, step + 1, p->name, i);
                    worst = fmax(worst, fabs(got - want));
                }
            }
        }
        CHECK(ct_optim_steps(opt) == MUON_REF_STEPS && ct_optim_steps(ct_muon_aux(opt)) == MUON_REF_STEPS);
        ct_test_note("%s: largest difference %.2g", rc->name, worst);
        ct_optim_free(opt);
        ct_model_free(m);
    }
}

/* Two steps, save Muon's and the aux's state, two more; a fresh pair that loads the files and takes
 * the same two steps ends with the same bits. */
CT_TEST(muon, state_save_load_resumes_exactly) {
    const muon_ref_case *rc = &muon_ref_cases[0];
    char path[512], aux_path[512];
    snprintf(path, sizeof path, "%s/muon.safetensors", ct_test_tmpdir());
    snprintf(aux_path, sizeof aux_path, "%s/muon_aux.safetensors", ct_test_tmpdir());
    ct_model *a = reference_model(), *b = reference_model();
    ct_optim *oa = reference_optimizer(a, rc), *ob = reference_optimizer(b, rc);
    for (int step = 0; step < 2; step++) {
        feed_grads(a, step);
        CHECK(ct_optim_step(oa) == CT_OK);
    }
    CHECK(ct_checkpoint_save(oa, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_optim_save(ct_muon_aux(oa), aux_path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_checkpoint_load(ob, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_optim_load(ct_muon_aux(ob), aux_path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_optim_steps(ob) == 2);
    CHECK(ct_optim_find_state(oa, "momentum_buffer") >= 0);
    CHECK(ct_optim_state_tensor(oa, ct_optim_find_state(oa, "momentum_buffer"), 2) == NULL,
          "the bias (trained by the aux) has no Muon buffer");
    for (int step = 2; step < 4; step++) {
        feed_grads(a, step), feed_grads(b, step);
        CHECK(ct_optim_step(oa) == CT_OK && ct_optim_step(ob) == CT_OK);
    }
    for (int k = 0; k < MUON_REF_PARAMS; k++)
        CHECK(!memcmp(ct_model_param(a, k)->data, ct_model_param(b, k)->data, ct_model_param(a, k)->size * sizeof(ct_real)),
              "%s differs after resuming", ct_model_param(a, k)->name);
    /* a Muon state is not an SGD's */
    ct_model *c = reference_model();
    ct_optim *sgd = ct_sgd_new(c, CT_SGD(.lr = 0.1, .momentum = 0.9));
    CHECK(ct_optim_load(sgd, path) == CT_ERR_VALUE && strstr(ct_last_error(), "\"muon\""), "%s", ct_last_error());
    ct_optim_free(sgd), ct_optim_free(oa), ct_optim_free(ob);
    ct_model_free(a), ct_model_free(b), ct_model_free(c);
}

/* ---- refusals ---------------------------------------------------------------------------------- */

static void muon_on_a_bias(void *arg) {
    (void)arg;
    ct_model *m = reference_model();
    ct_muon_new(m, CT_MUON());
}

static void unselected_without_aux(void *arg) {
    (void)arg;
    ct_model *m = reference_model();
    ct_muon_new(m, CT_MUON(.select = ct_param_is_matrix));
}

static void aux_of_another_model(void *arg) {
    (void)arg;
    ct_model *m = reference_model(), *other = reference_model();
    ct_muon_new(m, CT_MUON(.select = ct_param_is_matrix, .aux = ct_sgd_new(other, CT_SGD())));
}

static void bad_momentum(void *arg) {
    (void)arg;
    ct_muon_new(reference_model(), CT_MUON(.momentum = 1, .select = ct_param_is_matrix));
}

static void bad_ns_steps(void *arg) {
    (void)arg;
    ct_model *m = reference_model();
    ct_muon_new(m, CT_MUON(.ns_steps = 0, .select = ct_param_is_matrix, .aux = ct_sgd_new(m, CT_SGD())));
}

CT_TEST(muon, refuses_what_it_cannot_train) {
    const struct {
        void (*body)(void *);
        const char *want;
    } cases[] = {
        {muon_on_a_bias, "parameter \"fc.bias\" (6,) is not a matrix"},
        {unselected_without_aux, "parameter \"fc.bias\" (6,) is not selected for Muon and there is no .aux"},
        {aux_of_another_model, "aux optimizer (sgd) was made for another model"},
        {bad_momentum, "momentum 1 must be in [0, 1)"},
        {bad_ns_steps, "ns_steps 0 must be in [1, 100]"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(ct_test_expect_fatal(cases[i].body, NULL, cases[i].want, got, sizeof got), "want \"%s\", got: %s",
              cases[i].want, got);
}

/* Only the selected parameters get Muon: a 4-D filter is orthogonalised, a 2-D head (not selected
 * by ct_param_is_filter) gets the aux's plain SGD step, a frozen parameter (no grad) nothing, and
 * Muon's once it is given a grad again (its scratch was sized for it though it was frozen). */
CT_TEST(muon, select_sends_the_rest_to_the_aux) {
    ct_model *m = ct_model_new();
    ct_tensor *filter = ct_model_add_param(m, "conv.weight", CT_SHAPE(2, 1, 2, 2));
    ct_tensor *head = ct_model_add_param(m, "head.weight", CT_SHAPE(2, 3));
    ct_tensor *frozen = ct_model_add_param(m, "whiten.weight", CT_SHAPE(4, 1, 3, 3));
    ct_real *frozen_grad = frozen->grad; /* put back before the model frees it */
    frozen->grad = NULL;
    ct_tensor_fill(frozen, 0.5f);
    ct_optim *opt = ct_muon_new(m, CT_MUON(.lr = 0.1, .momentum = 0, .nesterov = 0, .select = ct_param_is_filter,
                                           .aux = ct_sgd_new(m, CT_SGD(.lr = 0.5))));
    for (int i = 0; i < 8; i++) filter->grad[i] = (ct_real)(i % 3) - 1;
    for (int i = 0; i < 6; i++) head->grad[i] = (ct_real)i;
    ct_real want_filter[8];
    ct_muon_orthogonalise(filter->grad, 2, 4, 5, 1e-7, want_filter);
    CHECK(ct_optim_step(opt) == CT_OK, "%s", ct_last_error());
    for (int i = 0; i < 8; i++)
        CHECK(fabs(filter->data[i] + 0.1 * want_filter[i]) < 1e-6, "filter[%d] = %g, want %g", i, (double)filter->data[i],
              -0.1 * want_filter[i]);
    for (int i = 0; i < 6; i++) CHECK(head->data[i] == (ct_real)(-0.5 * i), "head[%d] = %g", i, (double)head->data[i]);
    for (int i = 0; i < 36; i++) CHECK(frozen->data[i] == 0.5f, "the frozen parameter moved");
    /* the aux's lr follows Muon's: half Muon's lr, half the aux's step */
    ct_optim_set_lr(opt, 0.05);
    for (int i = 0; i < 6; i++) head->grad[i] = 1;
    const ct_real before = head->data[0];
    CHECK(ct_optim_step(opt) == CT_OK);
    CHECK(fabs(head->data[0] - (before - 0.25)) < 1e-6, "aux step %g, want -0.25", (double)(head->data[0] - before));
    CHECK(ct_optim_lr(ct_muon_aux(opt)) == 0.25);
    /* unfrozen: a 4x9 Muon update */
    frozen->grad = frozen_grad;
    for (int i = 0; i < 36; i++) frozen->grad[i] = (ct_real)((i * 7) % 5) - 2;
    ct_real want_frozen[36];
    ct_muon_orthogonalise(frozen->grad, 4, 9, 5, 1e-7, want_frozen);
    CHECK(ct_optim_step(opt) == CT_OK);
    for (int i = 0; i < 36; i++)
        CHECK(fabs(frozen->data[i] - (0.5 - 0.05 * want_frozen[i])) < 1e-6, "unfrozen [%d] = %g, want %g", i,
              (double)frozen->data[i], 0.5 - 0.05 * want_frozen[i]);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- by name ----------------------------------------------------------------------------------- */

CT_TEST(muon, spec_matches_the_macro_and_names_mistakes) {
    ct_model *a = reference_model(), *b = reference_model();
    ct_optim *by_name = ct_optim_parse(a, "muon:lr=0.03,momentum=0.9,select=matrices,aux_lr=0.1,aux_momentum=0.85");
    CHECK(by_name, "%s", ct_last_error());
    ct_optim *by_macro = ct_muon_new(b, CT_MUON(.lr = 0.03, .momentum = 0.9, .select = ct_param_is_matrix,
                                                .aux = ct_sgd_new(b, CT_SGD(.lr = 0.1, .momentum = 0.85, .nesterov = 1))));
    for (int step = 0; step < 3; step++) {
        feed_grads(a, step), feed_grads(b, step);
        CHECK(ct_optim_step(by_name) == CT_OK && ct_optim_step(by_macro) == CT_OK);
    }
    for (int k = 0; k < MUON_REF_PARAMS; k++)
        CHECK(!memcmp(ct_model_param(a, k)->data, ct_model_param(b, k)->data, ct_model_param(a, k)->size * sizeof(ct_real)),
              "%s: the spec and the macro give different weights", ct_model_param(a, k)->name);
    CHECK(!strcmp(ct_optim_kind(by_name), "muon"));
    ct_optim_free(by_name), ct_optim_free(by_macro);
    const struct {
        const char *spec, *expect;
    } bad[] = {
        {"muon", "parameter \"fc.bias\" (6,) is not a matrix"},
        {"muon:select=filters", "parameter \"fc.weight\" (6, 3) is not selected (select=filters) and aux_lr=0"},
        {"muon:momentum=0,select=matrices,aux_lr=0.1", "nesterov=1 needs momentum > 0"},
        {"muon:scale=spectral", "scale"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(ct_optim_parse(a, bad[i].spec) == NULL, "%s was accepted", bad[i].spec);
        CHECK(strstr(ct_last_error(), bad[i].expect), "%s: \"%s\", want \"%s\"", bad[i].spec, ct_last_error(),
              bad[i].expect);
    }
    ct_model_free(a), ct_model_free(b);
}
