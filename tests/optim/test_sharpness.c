/* tests/optim/test_sharpness.c — optim/sharpness.h on quadratics ½θᵀAθ with a known spectrum (the
 * accuracy of the finite-difference Hessian-vector products in this build's precision: group
 * sharpness runs in the float32 suite, the same tests under group gradcheck in the float64 one),
 * and on a tiny MLP against a dense Hessian built by finite differences and LAPACK (float64). */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (OpenBLAS ships it), as an independent reference; the trailing
 * lengths are gfortran's hidden string arguments. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

/* ---- a model whose loss is ½θᵀAθ --------------------------------------------------------------- */
enum { QN = 8 };

typedef struct {
    ct_tape *tape;
    ct_model *model;
    ct_tensor *theta;
    ct_real A[QN * QN];
    int n, calls;
} quadratic;

/* L = ½ θᵀAθ,  ∇L = Aθ (A symmetric),  ∇²L = A */
static double quadratic_closure(void *p) {
    quadratic *q = p;
    ct_tape_reset(q->tape);
    ct_tensor *a = ct_tape_tensor_from(q->tape, CT_SHAPE(q->n, q->n), q->A);
    ct_tensor *t = ct_reshape(q->tape, q->theta, CT_SHAPE(q->n, 1));
    ct_tensor *loss = ct_mul_scalar(q->tape, ct_sum_all(q->tape, ct_mul(q->tape, t, ct_matmul(q->tape, a, t))), 0.5);
    const double value = loss->data[0];
    ct_backward(q->tape, loss);
    q->calls++;
    return value;
}

/* A = Q diag(λ) Q with Q = I − (2/n)·11ᵀ (a Householder reflection, orthogonal and symmetric), or
 * diag(λ) itself; for n = 8 every entry is exact in float32. θ random normal. */
static void quadratic_open(quadratic *q, int n, const double *lambda, int rotate, uint64_t seed) {
    memset(q, 0, sizeof *q);
    q->n = n;
    q->tape = ct_tape_new();
    q->model = ct_model_new();
    q->theta = ct_model_add_param(q->model, "theta", CT_SHAPE(n));
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_tensor_fill_normal(q->theta, &rng, 0, 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) {
                const double qik = rotate ? (i == k) - 2.0 / n : i == k, qjk = rotate ? (j == k) - 2.0 / n : j == k;
                s += qik * lambda[k] * qjk;
            }
            q->A[i * n + j] = (ct_real)s;
        }
}

static void quadratic_close(quadratic *q) {
    ct_model_free(q->model);
    ct_tape_free(q->tape);
}

/* Relative tolerances this build meets (measured figures in the commit message), and the power
 * iteration's stopping tolerance: in float32 the products' rounding moves λ_k by about 1e-6. */
static double fd_tolerance(void) { return sizeof(ct_real) == 4 ? 2e-4 : 1e-9; }
static double power_tol(void) { return sizeof(ct_real) == 4 ? 1e-5 : 1e-10; }

/* The diagonal quadratic: λ_max = 10, and zᵀAz = Tr(A) = 16.25 for every Rademacher z, so the trace
 * estimate is exact up to the finite differences whatever the number of probes. */
static void diagonal_quadratic(void) {
    const double lambda[QN] = {10, 4, 2, 1, 0.5, 0.25, -0.5, -1};
    quadratic q;
    quadratic_open(&q, QN, lambda, 0, 1);
    ct_hessian_eigen_result e;
    CHECK(ct_hessian_top_eigenvalue(q.model, quadratic_closure, &q, CT_HESSIAN(.tol = power_tol(), .max_iter = 300), &e) == CT_OK,
          "%s", ct_last_error());
    const double tol = fd_tolerance();
    CHECK(e.converged, "power iteration did not converge in %d iterations", e.iterations);
    CHECK_NEAR(e.lambda_max, 10, 0, tol);
    CHECK_NEAR(e.lambda_dominant, 10, 0, tol);
    CHECK(q.calls == 2 * e.iterations, "%d closure calls for %d products", q.calls, e.iterations);
    ct_hessian_trace_result t;
    CHECK(ct_hessian_trace(q.model, quadratic_closure, &q, CT_HESSIAN(.samples = 20), &t) == CT_OK, "%s", ct_last_error());
    CHECK(t.samples == 20);
    CHECK_NEAR(t.trace, 16.25, 0, tol);
    CHECK(t.std_error <= tol * 16.25, "the probes disagree by %g on a diagonal Hessian", t.std_error);
    ct_test_note("λ_max error %.1e, trace error %.1e", fabs(e.lambda_max - 10) / 10, fabs(t.trace - 16.25) / 16.25);
    quadratic_close(&q);
}
CT_TEST(sharpness, diagonal_quadratic) { diagonal_quadratic(); }
CT_TEST(gradcheck, sharpness_diagonal_quadratic) { diagonal_quadratic(); }

/* The rotated quadratic A = Q diag(12, 5, 3, 2, 1, 0.5, −1, −4) Q: λ_max = 12, Tr = 18.5; a product
 * against A·v directly, and the trace within four standard errors (Var zᵀAz = 2 Σ_{i≠j} A_ij² > 0). */
static void rotated_quadratic(void) {
    const double lambda[QN] = {12, 5, 3, 2, 1, 0.5, -1, -4};
    quadratic q;
    quadratic_open(&q, QN, lambda, 1, 2);
    const double tol = fd_tolerance();
    /* Hv against Av */
    ct_rng rng;
    ct_rng_seed(&rng, 9);
    double worst = 0;
    for (int trial = 0; trial < 5; trial++) {
        double v[QN], hv[QN], av[QN], err = 0, norm = 0;
        for (int i = 0; i < QN; i++) v[i] = ct_rng_normal(&rng, 0, 1);
        CHECK(ct_hessian_vector_product(q.model, quadratic_closure, &q, v, hv, 0) == CT_OK, "%s", ct_last_error());
        for (int i = 0; i < QN; i++) {
            av[i] = 0;
            for (int j = 0; j < QN; j++) av[i] += (double)q.A[i * QN + j] * v[j];
            err += (hv[i] - av[i]) * (hv[i] - av[i]), norm += av[i] * av[i];
        }
        worst = fmax(worst, sqrt(err / norm));
    }
    CHECK(worst <= tol, "‖Hv − Av‖/‖Av‖ = %.3g", worst);
    ct_hessian_eigen_result e;
    CHECK(ct_hessian_top_eigenvalue(q.model, quadratic_closure, &q, CT_HESSIAN(.tol = power_tol(), .max_iter = 300), &e) == CT_OK,
          "%s", ct_last_error());
    CHECK(e.converged, "power iteration did not converge in %d iterations", e.iterations);
    CHECK_NEAR(e.lambda_max, 12, 0, tol);
    ct_hessian_trace_result t;
    CHECK(ct_hessian_trace(q.model, quadratic_closure, &q, CT_HESSIAN(.samples = 400, .seed = 3), &t) == CT_OK, "%s",
          ct_last_error());
    double off = 0; /* the estimator's standard deviation: √(2 Σ_{i≠j} A_ij²) */
    for (int i = 0; i < QN; i++)
        for (int j = 0; j < QN; j++) off += i != j ? 2.0 * q.A[i * QN + j] * q.A[i * QN + j] : 0;
    const double se = sqrt(off / 400);
    CHECK(t.std_error > 0.7 * se && t.std_error < 1.3 * se, "standard error %g, expected about %g", t.std_error, se);
    CHECK(fabs(t.trace - 18.5) <= 4 * t.std_error, "trace %g ± %g, want 18.5", t.trace, t.std_error);
    ct_test_note("‖Hv − Av‖/‖Av‖ <= %.1e, λ_max error %.1e, trace %.3f ± %.3f", worst, fabs(e.lambda_max - 12) / 12,
                 t.trace, t.std_error);
    quadratic_close(&q);
}
CT_TEST(sharpness, rotated_quadratic) { rotated_quadratic(); }
CT_TEST(gradcheck, sharpness_rotated_quadratic) { rotated_quadratic(); }

/* λ = (−10, 3, 1, 0.5): the power iteration finds −10 (the largest magnitude), and the shifted pass
 * on H + 10·I finds 13, so λ_max = 3. */
static void negative_dominant(void) {
    const double lambda[4] = {-10, 3, 1, 0.5};
    quadratic q;
    quadratic_open(&q, 4, lambda, 0, 4);
    ct_hessian_eigen_result e;
    CHECK(ct_hessian_top_eigenvalue(q.model, quadratic_closure, &q, CT_HESSIAN(.tol = power_tol(), .max_iter = 300), &e) == CT_OK,
          "%s", ct_last_error());
    const double tol = fd_tolerance();
    CHECK(e.converged);
    CHECK_NEAR(e.lambda_dominant, -10, 0, tol);
    CHECK_NEAR(e.lambda_max, 3, 0, 4 * tol); /* 3 = 13 − 10: the error of 13 and of 10 */
    quadratic_close(&q);
}
CT_TEST(sharpness, negative_dominant_eigenvalue) { negative_dominant(); }
CT_TEST(gradcheck, sharpness_negative_dominant_eigenvalue) { negative_dominant(); }

CT_TEST(sharpness, parameters_restored_bit_for_bit_and_grads_zero) {
    const double lambda[QN] = {3, 2, 1, 1, 1, 1, 1, 1};
    quadratic q;
    quadratic_open(&q, QN, lambda, 1, 5);
    ct_real before[QN];
    memcpy(before, q.theta->data, sizeof before);
    ct_hessian_eigen_result e;
    ct_hessian_trace_result t;
    CHECK(ct_hessian_top_eigenvalue(q.model, quadratic_closure, &q, CT_HESSIAN(.max_iter = 7), &e) == CT_OK);
    CHECK(ct_hessian_trace(q.model, quadratic_closure, &q, CT_HESSIAN(.samples = 3), &t) == CT_OK);
    CHECK(memcmp(before, q.theta->data, sizeof before) == 0, "θ moved");
    for (int i = 0; i < QN; i++) CHECK(q.theta->grad[i] == 0, "grad[%d] = %g", i, (double)q.theta->grad[i]);
    quadratic_close(&q);
}

/* L = Σ log θ_i near θ = 1e-7: θ ± εv leaves the domain, the loss is NaN. */
static double log_closure(void *p) {
    quadratic *q = p;
    ct_tape_reset(q->tape);
    ct_tensor *loss = ct_sum_all(q->tape, ct_log(q->tape, q->theta));
    const double value = loss->data[0];
    ct_backward(q->tape, loss);
    return value;
}

CT_TEST(sharpness, nonfinite_loss_is_an_error_and_restores_theta) {
    const double lambda[2] = {1, 1};
    quadratic q;
    quadratic_open(&q, 2, lambda, 0, 6);
    q.theta->data[0] = 1e-7f, q.theta->data[1] = 2e-7f;
    ct_real before[2] = {q.theta->data[0], q.theta->data[1]};
    ct_hessian_eigen_result e;
    CHECK(ct_hessian_top_eigenvalue(q.model, log_closure, &q, CT_HESSIAN(), &e) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "ct_hessian_top_eigenvalue: the loss at θ ") != NULL, "%s", ct_last_error());
    CHECK(isnan(e.lambda_max) && !e.converged);
    CHECK(q.theta->data[0] == before[0] && q.theta->data[1] == before[1], "θ not restored");
    ct_hessian_trace_result t;
    CHECK(ct_hessian_trace(q.model, log_closure, &q, CT_HESSIAN(), &t) == CT_ERR_VALUE);
    CHECK(isnan(t.trace));
    quadratic_close(&q);
}

static void eigen_without_closure(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(2));
    ct_hessian_eigen_result e;
    ct_hessian_top_eigenvalue(m, NULL, NULL, CT_HESSIAN(), &e);
}
static void trace_without_samples(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(2));
    ct_hessian_trace_result t;
    ct_hessian_trace(m, quadratic_closure, NULL, CT_HESSIAN(.samples = 0), &t);
}

CT_TEST(sharpness, programmer_errors_are_named) {
    char got[512];
    CHECK(ct_test_expect_fatal(eigen_without_closure, NULL, "ct_hessian_top_eigenvalue: the closure is NULL", got,
                               sizeof got),
          "got: %s", got);
    CHECK(ct_test_expect_fatal(trace_without_samples, NULL, "samples 0 (>= 1)", got, sizeof got), "got: %s", got);
}

/* ---- a tiny MLP against its dense Hessian (float64) ---------------------------------------------- */
enum { MLP_IN = 3, MLP_HIDDEN = 4, MLP_OUT = 3, MLP_N = 6 };

typedef struct {
    ct_tape *tape;
    ct_model *model;
    ct_module *fc1, *fc2;
    ct_real x[MLP_N * MLP_IN];
    int y[MLP_N];
} mlp;

/* L = CE(fc2(tanh(fc1(x))), y), mean over the 6 samples: smooth, so its Hessian exists everywhere */
static double mlp_closure(void *p) {
    mlp *m = p;
    ct_tape_reset(m->tape);
    ct_tensor *x = ct_tape_tensor_from(m->tape, CT_SHAPE(MLP_N, MLP_IN), m->x);
    ct_tensor *logits = ct_forward(m->tape, m->fc2, ct_tanh(m->tape, ct_forward(m->tape, m->fc1, x)));
    ct_tensor *loss = ct_cross_entropy(m->tape, logits, CT_LABELS(m->y, MLP_N), CT_CE());
    const double value = loss->data[0];
    ct_backward(m->tape, loss);
    return value;
}

/* The flat gradient at the model's parameters. */
static void mlp_gradient(mlp *m, double *g) {
    ct_model_zero_grad(m->model);
    mlp_closure(m);
    size_t at = 0;
    for (int k = 0; k < ct_model_param_count(m->model); k++) {
        const ct_tensor *p = ct_model_param(m->model, k);
        for (size_t i = 0; i < p->size; i++) g[at++] = p->grad[i];
    }
}

static ct_real *mlp_param_at(mlp *m, size_t j) {
    for (int k = 0; k < ct_model_param_count(m->model); k++) {
        ct_tensor *p = ct_model_param(m->model, k);
        if (j < p->size) return p->data + j;
        j -= p->size;
    }
    return NULL;
}

CT_TEST(gradcheck, sharpness_mlp_against_dense_hessian) {
    if (sizeof(ct_real) != 8) CT_SKIP("the dense finite-difference Hessian needs the float64 build");
    mlp m = {.tape = ct_tape_new(), .model = ct_model_new()};
    ct_model_set_seed(m.model, 11);
    m.fc1 = ct_linear_new(m.model, "fc1", MLP_IN, MLP_HIDDEN);
    m.fc2 = ct_linear_new(m.model, "fc2", MLP_HIDDEN, MLP_OUT);
    ct_rng rng;
    ct_rng_seed(&rng, 12);
    for (int i = 0; i < MLP_N * MLP_IN; i++) m.x[i] = (ct_real)ct_rng_normal(&rng, 0, 1.5);
    for (int i = 0; i < MLP_N; i++) m.y[i] = i % MLP_OUT;
    const int P = (int)ct_model_num_elements(m.model);
    double *H = calloc((size_t)P * P, sizeof *H), *gp = malloc(P * sizeof *gp), *gm = malloc(P * sizeof *gm);
    /* column j: (g(θ + h e_j) − g(θ − h e_j)) / 2h, then symmetrised */
    const double h = 1e-5;
    for (int j = 0; j < P; j++) {
        ct_real *theta = mlp_param_at(&m, (size_t)j), keep = *theta;
        *theta = keep + h;
        mlp_gradient(&m, gp);
        *theta = keep - h;
        mlp_gradient(&m, gm);
        *theta = keep;
        for (int i = 0; i < P; i++) H[(size_t)i * P + j] = (gp[i] - gm[i]) / (2 * h);
    }
    double trace = 0, asym = 0;
    for (int i = 0; i < P; i++) {
        trace += H[(size_t)i * P + i];
        for (int j = 0; j < i; j++) {
            const double a = H[(size_t)i * P + j], b = H[(size_t)j * P + i];
            asym = fmax(asym, fabs(a - b));
            H[(size_t)i * P + j] = H[(size_t)j * P + i] = 0.5 * (a + b);
        }
    }
    CHECK(asym < 1e-8, "the dense Hessian is asymmetric by %g", asym);
    /* H·v from the library against the dense product */
    double *v = malloc(P * sizeof *v), *hv = malloc(P * sizeof *hv);
    for (int i = 0; i < P; i++) v[i] = ct_rng_normal(&rng, 0, 1);
    CHECK(ct_hessian_vector_product(m.model, mlp_closure, &m, v, hv, 0) == CT_OK, "%s", ct_last_error());
    double err = 0, norm = 0;
    for (int i = 0; i < P; i++) {
        double d = 0;
        for (int j = 0; j < P; j++) d += H[(size_t)i * P + j] * v[j];
        err += (hv[i] - d) * (hv[i] - d), norm += d * d;
    }
    CHECK(sqrt(err / norm) < 1e-7, "‖Hv − H_dense·v‖/‖H_dense·v‖ = %g", sqrt(err / norm));
    /* eigenvalues by LAPACK */
    double *a = malloc((size_t)P * P * sizeof *a), *w = malloc(P * sizeof *w), work[2048];
    memcpy(a, H, (size_t)P * P * sizeof *a);
    const int lwork = 2048;
    int info = 0;
    dsyev_("N", "U", &P, a, &P, w, work, &lwork, &info, 1, 1);
    CHECK(info == 0, "dsyev info %d", info);
    const double top = w[P - 1]; /* ascending */
    double offdiag = 0;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) offdiag += i != j ? 2 * H[(size_t)i * P + j] * H[(size_t)i * P + j] : 0;
    ct_hessian_eigen_result e;
    CHECK(ct_hessian_top_eigenvalue(m.model, mlp_closure, &m, CT_HESSIAN(.tol = 1e-12, .max_iter = 3000), &e) == CT_OK,
          "%s", ct_last_error());
    CHECK(e.converged, "no convergence in %d iterations (λ %g, want %g)", e.iterations, e.lambda_max, top);
    CHECK_NEAR(e.lambda_max, top, 0, 1e-6);
    ct_hessian_trace_result t;
    CHECK(ct_hessian_trace(m.model, mlp_closure, &m, CT_HESSIAN(.samples = 1000, .seed = 8), &t) == CT_OK, "%s",
          ct_last_error());
    const double se = sqrt(offdiag / 1000);
    CHECK(fabs(t.trace - trace) <= 4 * t.std_error, "trace %g ± %g, dense %g", t.trace, t.std_error, trace);
    CHECK(t.std_error > 0.8 * se && t.std_error < 1.2 * se, "standard error %g, expected about %g", t.std_error, se);
    ct_test_note("P = %d, ‖Hv − H_dense·v‖/‖H_dense·v‖ %.1e, λ_max %.6g (error %.1e) in %d iterations, trace %.4g ± %.2g "
                 "(dense %.4g)", P, sqrt(err / norm), e.lambda_max, fabs(e.lambda_max - top) / top, e.iterations, t.trace,
                 t.std_error, trace);
    free(H), free(gp), free(gm), free(v), free(hv), free(a), free(w);
    ct_model_free(m.model);
    ct_tape_free(m.tape);
}
