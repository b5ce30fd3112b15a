/* optim/sharpness.c — Hessian-vector products by central differences of gradients, the top
 * eigenvalue by power iteration and Hutchinson's trace (the math is in sharpness.h). */
#define CT_BUILDING_LIBRARY
#include "sharpness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What one run keeps: θ as it was (restored after every product) and the two gradients. */
typedef struct {
    const char *op;
    ct_model *m;
    ct_closure closure;
    void *ctx;
    size_t P;
    double h, theta_norm;
    ct_real *theta0;
    double *g_plus, *g_minus;
} hvp_work;

static void check_args(const char *op, ct_model *m, ct_closure closure, const void *out) {
    CT_CHECK(m, op, "the model is NULL");
    CT_CHECK(closure, op, "the closure is NULL");
    CT_CHECK(out, op, "out is NULL");
    CT_CHECK(ct_model_num_elements(m) > 0, op, "the model has no parameters");
}

static int work_open(hvp_work *w, const char *op, ct_model *m, ct_closure closure, void *ctx, double h) {
    CT_CHECK(isfinite(h) && h >= 0, op, "the finite-difference step %g must be finite and >= 0 (0: the default)", h);
    *w = (hvp_work){.op = op, .m = m, .closure = closure, .ctx = ctx, .P = ct_model_num_elements(m)};
    /* the default balances the O(h²) truncation against the O(eps/h) rounding */
    w->h = h > 0 ? h : cbrt(CT_REAL_EPS);
    w->theta0 = malloc(w->P * sizeof *w->theta0);
    w->g_plus = malloc(w->P * sizeof *w->g_plus);
    w->g_minus = malloc(w->P * sizeof *w->g_minus);
    if (!w->theta0 || !w->g_plus || !w->g_minus) {
        free(w->theta0), free(w->g_plus), free(w->g_minus);
        return ct_set_error(CT_ERR_MEMORY, "%s: no memory for %zu parameters", op, w->P);
    }
    double sq = 0;
    size_t at = 0;
    for (int k = 0; k < ct_model_param_count(m); k++) {
        const ct_tensor *p = ct_model_param(m, k);
        memcpy(w->theta0 + at, p->data, p->size * sizeof(ct_real));
        for (size_t i = 0; i < p->size; i++) sq += (double)p->data[i] * p->data[i];
        at += p->size;
    }
    w->theta_norm = sqrt(sq);
    return CT_OK;
}

static void work_close(hvp_work *w) {
    free(w->theta0), free(w->g_plus), free(w->g_minus);
}

/* θ ← θ0 + step·v (rounded to ct_real); step = 0 puts θ0 back bit for bit. */
static void set_params(hvp_work *w, const double *v, double step) {
    size_t at = 0;
    for (int k = 0; k < ct_model_param_count(w->m); k++) {
        ct_tensor *p = ct_model_param(w->m, k);
        if (step == 0) memcpy(p->data, w->theta0 + at, p->size * sizeof(ct_real));
        else
            for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)((double)w->theta0[at + i] + step * v[at + i]);
        at += p->size;
    }
}

/* g ← ∇L at the current θ, through the closure (grads zeroed before). */
static int gradient(hvp_work *w, double *g, const char *where) {
    ct_model_zero_grad(w->m);
    const double loss = w->closure(w->ctx);
    if (!isfinite(loss)) return ct_set_error(CT_ERR_VALUE, "%s: the loss at %s is %g", w->op, where, loss);
    size_t at = 0;
    for (int k = 0; k < ct_model_param_count(w->m); k++) {
        const ct_tensor *p = ct_model_param(w->m, k);
        for (size_t i = 0; i < p->size; i++) {
            const double gi = p->grad ? p->grad[i] : 0;
            if (!isfinite(gi))
                return ct_set_error(CT_ERR_VALUE, "%s: the gradient of %s at %s is %g at index %zu", w->op,
                                    p->name ? p->name : "a parameter", where, gi, i);
            g[at + i] = gi;
        }
        at += p->size;
    }
    return CT_OK;
}

/* Hv ≈ (g(θ0 + εv) − g(θ0 − εv)) / (2ε),  ε = h·(1 + ‖θ0‖)/‖v‖;  θ0 restored, grads zeroed. */
static int hvp(hvp_work *w, const double *v, double *hv) {
    double vv = 0;
    for (size_t i = 0; i < w->P; i++) vv += v[i] * v[i];
    CT_CHECK(vv > 0 && isfinite(vv), w->op, "the vector v is zero or not finite");
    const double eps = w->h * (1 + w->theta_norm) / sqrt(vv);
    set_params(w, v, eps);
    int status = gradient(w, w->g_plus, "θ + εv");
    if (status == CT_OK) {
        set_params(w, v, -eps);
        status = gradient(w, w->g_minus, "θ − εv");
    }
    set_params(w, v, 0);
    ct_model_zero_grad(w->m);
    if (status) return status;
    for (size_t i = 0; i < w->P; i++) hv[i] = (w->g_plus[i] - w->g_minus[i]) / (2 * eps);
    return CT_OK;
}

int ct_hessian_vector_product(ct_model *m, ct_closure closure, void *ctx, const double *v, double *hv, double h) {
    static const char *op = "ct_hessian_vector_product";
    check_args(op, m, closure, hv);
    CT_CHECK(v, op, "v is NULL");
    hvp_work w;
    int status = work_open(&w, op, m, closure, ctx, h);
    if (status) return status;
    status = hvp(&w, v, hv);
    work_close(&w);
    return status;
}

static void check_opts(const char *op, ct_hessian_opts o) {
    CT_CHECK(o.max_iter >= 1 && o.tol >= 0 && isfinite(o.tol) && o.samples >= 1, op,
             "max_iter %d (>= 1), tol %g (finite, >= 0), samples %d (>= 1)", o.max_iter, o.tol, o.samples);
}

/* v ← v / ‖v‖ */
static void normalise(double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i] * v[i];
    s = sqrt(s);
    for (size_t i = 0; i < n; i++) v[i] /= s;
}

/* One power-iteration pass on H − shift·I from the unit vector v:
 *   λ_k = v_kᵀ(H − shift)v_k,  v_{k+1} = (H − shift)v_k / ‖(H − shift)v_k‖ */
static int power_pass(hvp_work *w, double *v, double *hv, double shift, ct_hessian_opts o, double *lambda, int *iters,
                      int *converged) {
    double prev = NAN;
    *converged = 0;
    for (int k = 0; k < o.max_iter; k++) {
        const int status = hvp(w, v, hv);
        if (status) return status;
        double l = 0, norm = 0;
        for (size_t i = 0; i < w->P; i++) hv[i] -= shift * v[i], l += v[i] * hv[i], norm += hv[i] * hv[i];
        *lambda = l, ++*iters;
        if (fabs(l - prev) <= o.tol * fabs(l) || norm == 0) {
            *converged = 1;
            break;
        }
        prev = l;
        norm = sqrt(norm);
        for (size_t i = 0; i < w->P; i++) v[i] = hv[i] / norm;
    }
    return CT_OK;
}

static void random_unit(ct_rng *rng, double *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = ct_rng_normal(rng, 0, 1);
    normalise(v, n);
}

int ct_hessian_top_eigenvalue(ct_model *m, ct_closure closure, void *ctx, ct_hessian_opts o, ct_hessian_eigen_result *out) {
    static const char *op = "ct_hessian_top_eigenvalue";
    check_args(op, m, closure, out);
    check_opts(op, o);
    *out = (ct_hessian_eigen_result){NAN, NAN, 0, 0};
    hvp_work w;
    int status = work_open(&w, op, m, closure, ctx, o.fd_step);
    if (status) return status;
    double *v = malloc(w.P * sizeof *v), *hv = malloc(w.P * sizeof *hv);
    if (!v || !hv) {
        status = ct_set_error(CT_ERR_MEMORY, "%s: no memory for %zu parameters", op, w.P);
    } else {
        ct_rng rng;
        ct_rng_seed(&rng, o.seed);
        random_unit(&rng, v, w.P);
        double dominant;
        int converged;
        status = power_pass(&w, v, hv, 0, o, &dominant, &out->iterations, &converged);
        if (status == CT_OK) {
            out->lambda_dominant = dominant, out->lambda_max = dominant, out->converged = converged;
            if (dominant < 0) { /* the top of H − λ_dom·I is λ_max − λ_dom */
                double top;
                random_unit(&rng, v, w.P);
                status = power_pass(&w, v, hv, dominant, o, &top, &out->iterations, &converged);
                out->lambda_max = status == CT_OK ? dominant + top : NAN;
                out->converged &= converged;
            }
        }
        if (status) out->lambda_max = out->lambda_dominant = NAN, out->converged = 0;
    }
    free(v), free(hv);
    work_close(&w);
    return status;
}

int ct_hessian_trace(ct_model *m, ct_closure closure, void *ctx, ct_hessian_opts o, ct_hessian_trace_result *out) {
    static const char *op = "ct_hessian_trace";
    check_args(op, m, closure, out);
    check_opts(op, o);
    *out = (ct_hessian_trace_result){NAN, NAN, 0};
    hvp_work w;
    int status = work_open(&w, op, m, closure, ctx, o.fd_step);
    if (status) return status;
    double *z = malloc(w.P * sizeof *z), *hz = malloc(w.P * sizeof *hz);
    if (!z || !hz) {
        status = ct_set_error(CT_ERR_MEMORY, "%s: no memory for %zu parameters", op, w.P);
    } else {
        ct_rng rng;
        ct_rng_seed(&rng, o.seed);
        double mean = 0, m2 = 0; /* Welford's running mean and sum of squared deviations */
        for (int s = 0; s < o.samples && status == CT_OK; s++) {
            for (size_t i = 0; i < w.P; i++) z[i] = ct_rng_u64(&rng) >> 63 ? 1.0 : -1.0;
            status = hvp(&w, z, hz);
            if (status) break;
            /* zᵀHz */
            double q = 0;
            for (size_t i = 0; i < w.P; i++) q += z[i] * hz[i];
            const double delta = q - mean;
            mean += delta / (s + 1);
            m2 += delta * (q - mean);
        }
        if (status == CT_OK) {
            out->trace = mean, out->samples = o.samples;
            out->std_error = o.samples > 1 ? sqrt(m2 / (o.samples - 1) / o.samples) : 0;
        }
    }
    free(z), free(hz);
    work_close(&w);
    return status;
}
