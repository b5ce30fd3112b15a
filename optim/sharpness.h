/* optim/sharpness.h — the curvature of the loss at the current parameters: the largest eigenvalue
 * of the Hessian (power iteration) and its trace (Hutchinson's estimator), the sharpness measures of
 * the flat-minima and edge-of-stability literature (Keskar et al. 2017; Cohen et al. 2021; Yao et
 * al. 2020, PyHessian).
 *
 * θ is every parameter of the model (ct_model_param, in order, flattened: P numbers), L(θ) the loss
 * the closure computes on a fixed batch, g(θ) = ∇L(θ), H = ∇²L(θ) (P × P, never formed).
 *
 * The closure is SAM's (optim/optim.h, ct_closure): it runs the forward and backward pass from
 * the current parameters (grads are zero when it is called; it leaves ∇L on them) and returns the
 * loss. It is called twice per Hessian-vector product, so it should ct_tape_reset first, and it
 * must be a deterministic function of θ: a fixed batch, dropout off, batch norm in evaluation mode
 * (ct_model_train(m, 0)) or its running statistics would move with every call.
 *
 * Hessian-vector products by central differences of gradients:
 *   Hv ≈ (g(θ + εv) − g(θ − εv)) / (2ε),   ε = h·(1 + ‖θ‖) / ‖v‖
 * exact for a quadratic loss up to rounding, O(ε²) off otherwise. h is the relative step:
 * by default the cube root of the precision's epsilon (4.9e-3 in float32, 6.1e-6 in float64), which
 * balances the O(h²) truncation against the rounding of the gradients, O(eps/h). θ is restored
 * bit for bit after each product and the grads are zero on return. On quadratics with a known
 * spectrum the tests (tests/optim/test_sharpness.c) hold the products, λ_max and the trace to 2e-4
 * relative in float32 and 1e-9 in float64: use the float64 build (make PRECISION=64) for careful
 * work, and a power-iteration tol no finer than about 1e-5 in float32, where rounding moves λ_k.
 *
 * Errors: NULL, a model without parameters or options out of range are programmer errors (fatal);
 * a non-finite loss or gradient is CT_ERR_VALUE with ct_last_error() naming the parameter (θ
 * restored, the figures NaN); CT_ERR_MEMORY when the work vectors (a few × P doubles) do not fit. */
#ifndef CTAPE_OPTIM_SHARPNESS_H
#define CTAPE_OPTIM_SHARPNESS_H

#include "optim.h"

typedef struct {
    int max_iter;     /* power iterations per pass (100) */
    double tol;       /* power iteration stops when |λ_k − λ_{k−1}| <= tol·|λ_k| (1e-4) */
    int samples;      /* Hutchinson's probes (100) */
    double fd_step;   /* h above; 0 for the precision's default */
    uint64_t seed;    /* the start vector and the probes (0) */
} ct_hessian_opts;
#define CT_HESSIAN(...) CT_WITH_DEFAULTS(ct_hessian_opts, (.max_iter = 100, .tol = 1e-4, .samples = 100, \
                                                           .fd_step = 0, .seed = 0), __VA_ARGS__)

/* Power iteration: v₀ random normal, then  λ_k = v_kᵀHv_k (‖v_k‖ = 1),  v_{k+1} = Hv_k / ‖Hv_k‖,
 * which converges to the eigenvalue of largest magnitude, λ_dom, at the rate (|λ₂|/|λ_dom|)^(2k).
 * When λ_dom < 0 a second pass runs on H − λ_dom·I, whose eigenvalues are >= 0 with the largest at
 * λ_max − λ_dom, so lambda_max is the largest (most positive) eigenvalue either way. */
typedef struct {
    double lambda_max;      /* the largest eigenvalue of H */
    double lambda_dominant; /* the eigenvalue of largest magnitude (= lambda_max unless negative) */
    int iterations;         /* power iterations, both passes */
    int converged;          /* 0 when a pass ran max_iter iterations without meeting tol */
} ct_hessian_eigen_result;
int ct_hessian_top_eigenvalue(ct_model *m, ct_closure closure, void *ctx, ct_hessian_opts opts,
                              ct_hessian_eigen_result *out);

/* Hutchinson (1990): for z with independent Rademacher entries (±1, each with probability ½),
 * E[zᵀHz] = Tr(H), so  Tr(H) ≈ (1/S) Σ_s z_sᵀ H z_s  over S = opts.samples probes, with the standard
 * error sd/√S (sd of the S values, ddof = 1; 0 when S = 1). Var[zᵀHz] = 2 Σ_{i≠j} H_ij²: exact
 * for a diagonal H. */
typedef struct {
    double trace;
    double std_error;
    int samples;
} ct_hessian_trace_result;
int ct_hessian_trace(ct_model *m, ct_closure closure, void *ctx, ct_hessian_opts opts, ct_hessian_trace_result *out);

/* One product: hv ≈ H·v for v of P = ct_model_num_elements(m) doubles (not all zero), by the
 * central difference above with step h (0: the default). */
int ct_hessian_vector_product(ct_model *m, ct_closure closure, void *ctx, const double *v, double *hv, double h);

#ifndef CT_BUILDING_LIBRARY
#define ct_hessian_top_eigenvalue(...) CT_SITE_CALL_CLEARING(ct_hessian_top_eigenvalue, __VA_ARGS__)
#define ct_hessian_trace(...) CT_SITE_CALL_CLEARING(ct_hessian_trace, __VA_ARGS__)
#define ct_hessian_vector_product(...) CT_SITE_CALL_CLEARING(ct_hessian_vector_product, __VA_ARGS__)
#endif

#endif
