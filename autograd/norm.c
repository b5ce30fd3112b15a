/* autograd/norm.c — layer norm and batch norm, each fused into one op with a closed-form backward.
 *
 * Both normalise a group of values to zero mean and unit variance and then apply a learned
 * per-feature scale γ and shift β:
 *     x̂ = (x − μ)·r,   r = 1/√(σ² + eps)  (σ² the biased variance of the group),   y = γ·x̂ + β.
 * Layer norm's group is one sample's trailing dimensions; batch norm's is one channel across the
 * batch (and across H·W for images). The two share one backward, derived here once.
 *
 * Backward of a normalisation over a group of M values (γ constant within the group here; layer
 * norm's per-feature γ enters as g = γ·dy below, batch norm's per-channel γ simply factors out).
 * With g = ∂L/∂x̂ = γ·dy:
 *     ∂x̂_j/∂x_i = r·([i = j] − 1/M) − r·x̂_i·x̂_j/M
 * (the second term from ∂r/∂x_i = −r³·(x_i − μ)/M = −r²·x̂_i/M), so
 *     dx_i = Σ_j g_j·∂x̂_j/∂x_i = r·(g_i − mean_j g_j − x̂_i·mean_j(g_j·x̂_j))
 *          = (r/M)·(M·g_i − Σ g − x̂_i·Σ g·x̂).
 * The parameters get dγ = Σ dy·x̂ and dβ = Σ dy, summed over everything that shares them.
 *
 * Statistics are accumulated in double (a batch-norm channel can hold 10⁵ values), the element
 * loops run in ct_real. What the forward saves for the backward: μ and r per group (in the
 * arena); x̂ is recomputed from x, so nothing of the input's size is kept. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>
#include <string.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* What both norms save: per group, the mean and r = 1/√(σ² + eps). */
typedef struct {
    ct_real *mean, *rstd;
} norm_saved;

/* μ and r of one contiguous group of n values: two passes (mean, then centred squares), which
 * stays exact for data far from zero where Σx² − (Σx)²/n would cancel. */
static void group_stats(const ct_real *restrict x, size_t n, double eps, ct_real *mean, ct_real *rstd) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += x[i];
    const double mu = sum / (double)n;
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (size_t i = 0; i < n; i++) {
        const double d = x[i] - mu;
        sq += d * d;
    }
    *mean = (ct_real)mu;
    *rstd = (ct_real)(1 / sqrt(sq / (double)n + eps));
}

/* The number of elements in the trailing k dims of x. */
static size_t trailing_size(const ct_tensor *x, int k) {
    size_t D = 1;
    for (int i = x->ndim - k; i < x->ndim; i++) D *= (size_t)x->shape[i];
    return D;
}

/* ---- layer_norm: x (..., D₁..D_k) normalised over its trailing k = norm_dims dims ----------
 * With rows = the product of the leading dims and D = D₁·…·D_k, row i is one group of D values:
 *     y_i = γ ⊙ x̂_i + β,        x̂_i = (x_i − μ_i)·r_i                      γ, β (D₁..D_k) or NULL
 *     dx_i += (r_i/D)·(D·g_i − Σ g_i − x̂_i·Σ g_i ⊙ x̂_i),   g_i = γ ⊙ dy_i   (g_i = dy_i without γ)
 *     dγ += Σ_i dy_i ⊙ x̂_i,      dβ += Σ_i dy_i
 * saved: extra = norm_saved (μ_i, r_i per row); iarg[0] = k (norm_dims). */
static void layer_norm_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const norm_saved *s = n->extra;
    const size_t D = trailing_size(x, n->iarg[0]), rows = x->size / D;
    const ct_real *dy_all = n->out->grad, *x_all = x->data;
    const ct_real *g_scale = gamma ? gamma->data : NULL;
    ct_real *dx_all = ct_grad_of(tape, x);
    ct_real *restrict dgamma = gamma ? ct_grad_of(tape, gamma) : NULL;
    ct_real *restrict dbeta = beta ? ct_grad_of(tape, beta) : NULL;

    if (dx_all) {
#pragma omp parallel for if (rows * D > PAR_MIN)
        for (size_t i = 0; i < rows; i++) {
            const ct_real *restrict xi = x_all + i * D, *restrict dy = dy_all + i * D;
            ct_real *restrict dx = dx_all + i * D;
            const ct_real mu = s->mean[i], r = s->rstd[i];
            /* the two row sums: Σ g and Σ g·x̂ */
            double sum_g = 0, sum_gx = 0;
            if (g_scale) {
#pragma omp simd reduction(+ : sum_g, sum_gx)
                for (size_t j = 0; j < D; j++) {
                    const ct_real g = g_scale[j] * dy[j];
                    sum_g += g;
                    sum_gx += g * ((xi[j] - mu) * r);
                }
            } else {
#pragma omp simd reduction(+ : sum_g, sum_gx)
                for (size_t j = 0; j < D; j++) {
                    sum_g += dy[j];
                    sum_gx += dy[j] * ((xi[j] - mu) * r);
                }
            }
            const ct_real mean_g = (ct_real)(sum_g / (double)D), mean_gx = (ct_real)(sum_gx / (double)D);
            if (g_scale) {
#pragma omp simd
                for (size_t j = 0; j < D; j++)
                    dx[j] += r * (g_scale[j] * dy[j] - mean_g - (xi[j] - mu) * r * mean_gx);
            } else {
#pragma omp simd
                for (size_t j = 0; j < D; j++)
                    dx[j] += r * (dy[j] - mean_g - (xi[j] - mu) * r * mean_gx);
            }
        }
    }
    /* dγ, dβ: sums over the rows, vectorised along D (rows run in order: no races) */
    if (dgamma || dbeta)
        for (size_t i = 0; i < rows; i++) {
            const ct_real *restrict xi = x_all + i * D, *restrict dy = dy_all + i * D;
            const ct_real mu = s->mean[i], r = s->rstd[i];
            if (dgamma) {
#pragma omp simd
                for (size_t j = 0; j < D; j++) dgamma[j] += dy[j] * ((xi[j] - mu) * r);
            }
            if (dbeta) {
#pragma omp simd
                for (size_t j = 0; j < D; j++) dbeta[j] += dy[j];
            }
        }
}
const ct_op ct_op_layer_norm = {
    "layer_norm",
    "y = γ·(x − μ)/√(σ² + eps) + β over the trailing dims; dx = (r/D)·(D·g − Σg − x̂·Σg·x̂), g = γ·dy",
    layer_norm_backward};

/* "(3, 4)" of the trailing k dims of x, for error messages. */
static const char *trailing_str(const ct_tensor *x, int k, char *buf, size_t len) {
    ct_shape s = {.ndim = k};
    for (int i = 0; i < k; i++) s.d[i] = x->shape[x->ndim - k + i];
    return ct_shape_str(s, buf, len);
}

static void check_affine(const char *op, const ct_tensor *x, int k, const ct_tensor *p, const char *what) {
    if (!p) return;
    int ok = p->ndim == k;
    for (int i = 0; ok && i < k; i++) ok = p->shape[i] == x->shape[x->ndim - k + i];
    char buf[96];
    CT_CHECK(ok, op, "%s %s does not match the normalised dims %s of input %s", what, ct_shp(p),
             trailing_str(x, k, buf, sizeof buf), ct_shp(x));
}

ct_tensor *ct_layer_norm(ct_tape *tape, ct_tensor *x, int norm_dims, ct_tensor *gamma,
                         ct_tensor *beta, double eps) {
    static const char *op = "ct_layer_norm";
    CT_CHECK(x, op, "input is NULL");
    CT_CHECK(norm_dims >= 1 && norm_dims <= x->ndim, op,
             "norm_dims %d must be in [1, %d] for input %s", norm_dims, x->ndim, ct_shp(x));
    CT_CHECK(eps >= 0, op, "eps %g is negative", eps);
    check_affine(op, x, norm_dims, gamma, "gamma");
    check_affine(op, x, norm_dims, beta, "beta");
    const size_t D = trailing_size(x, norm_dims);
    CT_CHECK(D > 0, op, "input %s has an empty normalised group", ct_shp(x));
    const size_t rows = x->size / D;

    ct_node *n;
    ct_tensor *inputs[3] = {x, gamma, beta};
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), &ct_op_layer_norm, inputs, 3, &n);
    ct_arena *arena = ct_tape_arena(tape);
    norm_saved s = {
        .mean = ct_arena_alloc(arena, (rows ? rows : 1) * sizeof(ct_real)),
        .rstd = ct_arena_alloc(arena, (rows ? rows : 1) * sizeof(ct_real)),
    };
    const ct_real *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
#pragma omp parallel for if (x->size > PAR_MIN)
    for (size_t i = 0; i < rows; i++) {
        const ct_real *restrict xi = x->data + i * D;
        ct_real *restrict yi = y->data + i * D;
        group_stats(xi, D, eps, &s.mean[i], &s.rstd[i]);
        const ct_real mu = s.mean[i], r = s.rstd[i];
        if (g && b) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = g[j] * ((xi[j] - mu) * r) + b[j];
        } else if (g) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = g[j] * ((xi[j] - mu) * r);
        } else if (b) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = (xi[j] - mu) * r + b[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = (xi[j] - mu) * r;
        }
    }
    if (n) {
        norm_saved *saved = ct_arena_alloc(arena, sizeof *saved);
        *saved = s;
        n->extra = saved;
        n->iarg[0] = norm_dims;
    }
    return y;
}
