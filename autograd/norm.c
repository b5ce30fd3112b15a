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
 * Statistics are accumulated in double (a batch-norm channel can hold 10⁵ values; on images only
 * pieces of at most 1024 values are summed in ct_real first), the element loops run in ct_real.
 * The mean is split as μ = μ_hi + μ_lo (μ_hi = μ rounded to ct_real) and x̂ computed as
 *     x̂ = (x − μ_hi)·r + c,   c = −μ_lo·r   (one multiply-add)
 * Near μ, x − μ_hi is exact, so x̂ is (x − μ)·r rounded about once, as if centred in double, where
 * (x − (float)μ)·r is off by half an ulp of μ times r (4.9e-4 at μ = 1e4; 1.3e-5 of the output at
 * 1e3, measured) — for no more operations than before. What the forward saves for the backward:
 * μ_hi, c and r per group (in the arena); x̂ is recomputed from x, so nothing of the input's size
 * is kept. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>
#include <string.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* What both norms save: per group, μ_hi, c = −μ_lo·r and r = 1/√(σ² + eps) (see the top). */
typedef struct {
    ct_real *mean, *offset, *rstd;
} norm_saved;

/* x̂ = (x − μ_hi)·r + c */
#define XHAT(x, hi, r, c) (((x) - (hi)) * (r) + (c))

/* μ_hi and c of mean μ and r = rstd (in double) */
static inline void split_mean(double mu, double rstd, ct_real *hi, ct_real *offset) {
    *hi = (ct_real)mu;
    *offset = (ct_real)(-(mu - (double)*hi) * rstd);
}

/* μ and r of one contiguous group of n values: two passes (mean, then centred squares), which
 * stays exact for data far from zero where Σx² − (Σx)²/n would cancel. */
static void group_stats(const ct_real *restrict x, size_t n, double eps, ct_real *mean, ct_real *offset,
                        ct_real *rstd) {
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
    const double r = 1 / sqrt(sq / (double)n + eps);
    split_mean(mu, r, mean, offset);
    *rstd = (ct_real)r;
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
CT_KERNEL
static void layer_norm_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const norm_saved *s = n->extra;
    const size_t D = trailing_size(x, n->iarg[0]), rows = x->size / D;
    const ct_real *dy_all = n->out->grad, *x_all = x->data;
    const ct_real *g_scale = gamma ? gamma->data : NULL;
    ct_real *dx_all = ct_grad_of(tape, x);
    ct_real *dgamma = gamma ? ct_grad_of(tape, gamma) : NULL;
    ct_real *dbeta = beta ? ct_grad_of(tape, beta) : NULL;

    /* One pass over the rows does dx and dγ, dβ while the row is in cache. Rows are split over
     * threads, so each thread sums dγ, dβ into its own (2, D) slice; the slices are added at the
     * end, in thread order (the same result for the same thread count). */
    const int parallel = rows * D > PAR_MIN;
    const int threads = parallel ? ct_max_threads() : 1;
    ct_real *partial = NULL;
    if (dgamma || dbeta) partial = ct_arena_calloc(ct_tape_arena(tape), (size_t)threads * 2 * D * sizeof(ct_real));
#pragma omp parallel num_threads(threads) if (parallel)
    {
        ct_real *restrict pg = partial ? partial + (size_t)ct_thread_id() * 2 * D : NULL;
        ct_real *restrict pb = pg ? pg + D : NULL;
#pragma omp for
        for (size_t i = 0; i < rows; i++) {
            const ct_real *restrict xi = x_all + i * D, *restrict dy = dy_all + i * D;
            const ct_real mu = s->mean[i], off = s->offset[i], r = s->rstd[i];
            if (dx_all) {
                ct_real *restrict dx = dx_all + i * D;
                /* the two row sums: Σ g and Σ g·x̂ */
                double sum_g = 0, sum_gx = 0;
                if (g_scale) {
#pragma omp simd reduction(+ : sum_g, sum_gx)
                    for (size_t j = 0; j < D; j++) {
                        const ct_real g = g_scale[j] * dy[j];
                        sum_g += g;
                        sum_gx += g * XHAT(xi[j], mu, r, off);
                    }
                } else {
#pragma omp simd reduction(+ : sum_g, sum_gx)
                    for (size_t j = 0; j < D; j++) {
                        sum_g += dy[j];
                        sum_gx += dy[j] * XHAT(xi[j], mu, r, off);
                    }
                }
                const ct_real mean_g = (ct_real)(sum_g / (double)D), mean_gx = (ct_real)(sum_gx / (double)D);
                if (g_scale) {
#pragma omp simd
                    for (size_t j = 0; j < D; j++)
                        dx[j] += r * (g_scale[j] * dy[j] - mean_g - XHAT(xi[j], mu, r, off) * mean_gx);
                } else {
#pragma omp simd
                    for (size_t j = 0; j < D; j++)
                        dx[j] += r * (dy[j] - mean_g - XHAT(xi[j], mu, r, off) * mean_gx);
                }
            }
            if (pg) {
#pragma omp simd
                for (size_t j = 0; j < D; j++) {
                    pg[j] += dy[j] * XHAT(xi[j], mu, r, off);
                    pb[j] += dy[j];
                }
            }
        }
    }
    for (int t = 0; partial && t < threads; t++) {
        const ct_real *pg = partial + (size_t)t * 2 * D, *pb = pg + D;
        for (size_t j = 0; j < D; j++) {
            if (dgamma) dgamma[j] += pg[j];
            if (dbeta) dbeta[j] += pb[j];
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
        .offset = ct_arena_alloc(arena, (rows ? rows : 1) * sizeof(ct_real)),
        .rstd = ct_arena_alloc(arena, (rows ? rows : 1) * sizeof(ct_real)),
    };
    const ct_real *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
#pragma omp parallel for if (x->size > PAR_MIN)
    for (size_t i = 0; i < rows; i++) {
        const ct_real *restrict xi = x->data + i * D;
        ct_real *restrict yi = y->data + i * D;
        group_stats(xi, D, eps, &s.mean[i], &s.offset[i], &s.rstd[i]);
        const ct_real mu = s.mean[i], off = s.offset[i], r = s.rstd[i];
        if (g && b) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = g[j] * XHAT(xi[j], mu, r, off) + b[j];
        } else if (g) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = g[j] * XHAT(xi[j], mu, r, off);
        } else if (b) {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = XHAT(xi[j], mu, r, off) + b[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < D; j++) yi[j] = XHAT(xi[j], mu, r, off);
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

/* ---- batch_norm: x (N, C, S) with S = H·W — (N, C) is S = 1, (N, C, L) S = L --------------
 * Per channel c, over its M = N·S values:
 *   training: μ_c, σ²_c the batch mean and biased variance; the running statistics follow
 *             PyTorch: running ← (1 − momentum)·running + momentum·stat, with the UNBIASED
 *             variance σ²_c·M/(M − 1) (the normalisation itself uses the biased one);
 *   eval:     μ_c, σ²_c = running_mean_c, running_var_c, no update;
 *   both:     y = γ_c·x̂ + β_c,  x̂ = (x − μ_c)·r_c,  r_c = 1/√(σ²_c + eps)   (γ ≡ 1, β ≡ 0 without affine)
 * Backward, with Σ_c the sum over channel c's M values:
 *   training: dx += (γ_c·r_c/M)·(M·dy − Σ_c dy − x̂·Σ_c dy·x̂)      (μ_c, σ²_c depend on x; see top)
 *   eval:     dx += γ_c·r_c·dy                                      (μ_c, σ²_c are constants)
 *   dγ_c += Σ_c dy·x̂,   dβ_c += Σ_c dy
 * Two ops, so the tape shows which one ran; eval's is the cheaper one (no reductions for dx).
 * saved: extra = norm_saved (μ_c, r_c per channel); the running buffers are not read again.
 *
 * Two loop layouts. Channel c of sample n is the contiguous block x[(n·C + c)·S ..][S]:
 *  - S > 1 (images): every pass runs through the blocks in memory order, threads taking blocks:
 *    per-block sums first (kept per block, then added up per channel in a fixed order, so the
 *    result does not depend on the thread count), then normalising or dx. Taking a channel at a
 *    time instead (all its passes back to back while it is in cache) reads x with a jump of C·S
 *    values between blocks, and measured slower on every batch-norm layer of the CIFAR network
 *    (bench/NOTES.md);
 *  - S = 1 ((N, C) features): a block is one value, so the loops run along the rows instead,
 *    vectorised across the channels, with per-channel sums in arrays. */
typedef struct {
    size_t N, C, S;
} bn_dims;

static bn_dims bn_dims_of(const ct_tensor *x) {
    bn_dims d = {(size_t)x->shape[0], (size_t)x->shape[1], 1};
    for (int i = 2; i < x->ndim; i++) d.S *= (size_t)x->shape[i];
    return d;
}

/* Per-channel constants of the backward: k = γ·r, and in training m1 = mean dy, m2 = mean dy·x̂,
 * so that dx += k·(dy − m1 − x̂·m2)  (eval: dx += k·dy). */
typedef struct {
    ct_real k, m1, m2;
} bn_coef;

/* ---- the S > 1 layout: blocks in memory order ---- */

/* Sums over a block run in ct_real, in the vector lanes, over pieces of at most PIECE values (so
 * at most 64 values per float32 lane), and the pieces and blocks add up in double: the long sums,
 * where rounding error would grow, stay in double, while a float32 reduction runs twice as many
 * lanes per instruction as a double one and converts nothing. */
#define PIECE 1024

/* Σ b and, centred on m, Σ (b − m)² over one block of S values. The sum is S·b₀ + Σ (b − b₀): a
 * float sum of values far from zero (1e3 ± 1) loses their spread to rounding (μ off by 5e-5 at
 * S = 81), while b − b₀ is exact near b₀ and its sum rounds at the size of the spread. */
static double block_sum(const ct_real *restrict b, size_t S) {
    const ct_real b0 = S ? b[0] : 0;
    double sum = (double)S * b0;
    for (size_t p = 0; p < S; p += PIECE) {
        const size_t e = p + PIECE < S ? p + PIECE : S;
        ct_real piece = 0;
#pragma omp simd reduction(+ : piece)
        for (size_t s = p; s < e; s++) piece += b[s] - b0;
        sum += piece;
    }
    return sum;
}

static double block_centred_squares(const ct_real *restrict b, size_t S, ct_real m) {
    double sum = 0;
    for (size_t p = 0; p < S; p += PIECE) {
        const size_t e = p + PIECE < S ? p + PIECE : S;
        ct_real piece = 0;
#pragma omp simd reduction(+ : piece)
        for (size_t s = p; s < e; s++) piece += (b[s] - m) * (b[s] - m);
        sum += piece;
    }
    return sum;
}

/* μ and σ² (biased) of every channel, in two steps. First each block q = n·C + c on its own, in
 * memory order: its sum and its centred squares M2_q = Σ (x − mean_q)² (two passes over the block
 * while it is in L1; centred on mean_q rounded to ct_real, m, with Σ(x − mean_q)² = Σ(x − m)² −
 * S·(mean_q − m)² exactly). Then per channel, over its N blocks in order, in double:
 *     μ = Σ_q sum_q / M,   M·σ² = Σ_q (M2_q + S·(mean_q − μ)²)
 * (the within-block and between-block parts of the squares about μ: exact, and no cancellation
 * however far the data lies from zero). Reading x in memory order lets the hardware prefetcher
 * stream it; a channel at a time jumps C·S values between blocks, a new page for each 32x32 block,
 * and the statistics of the CIFAR network's first layer (128 x 32 x 32 x 32) waited on memory at
 * every one of them. */
CT_KERNEL
static void blocks_moments(const ct_real *x, bn_dims d, double *bsum, double *bm2, double *mean, double *var) {
    const size_t N = d.N, C = d.C, S = d.S;
#pragma omp parallel for if (N * C * S > PAR_MIN)
    for (size_t q = 0; q < N * C; q++) {
        const ct_real *restrict b = x + q * S;
        const double sum = block_sum(b, S), mean_q = sum / (double)S;
        const ct_real m = (ct_real)mean_q;
        const double shift = mean_q - (double)m;
        bsum[q] = sum;
        bm2[q] = fmax(block_centred_squares(b, S, m) - (double)S * shift * shift, 0);
    }
    const double M = (double)(N * S);
    for (size_t c = 0; c < C; c++) {
        double sum = 0, m2 = 0;
        for (size_t n = 0; n < N; n++) sum += bsum[n * C + c];
        const double mu = sum / M;
        for (size_t n = 0; n < N; n++) {
            const double dev = bsum[n * C + c] / (double)S - mu;
            m2 += bm2[n * C + c] + (double)S * dev * dev;
        }
        mean[c] = mu;
        var[c] = m2 / M;
    }
}

/* y = (x − μ_hi)·scale + shift, block by block in memory order. Centred first, as the math reads:
 * scale·x + (β − μ·scale) would cancel when |μ| ≫ σ. */
CT_KERNEL
static void blocks_normalize(const ct_real *x, ct_real *y, bn_dims d, const ct_real *mean,
                             const ct_real *scale, const ct_real *shift) {
    const size_t N = d.N, C = d.C, S = d.S;
#pragma omp parallel for collapse(2) if (N * C * S > PAR_MIN)
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) {
            const ct_real *restrict xb = x + (n * C + c) * S;
            ct_real *restrict yb = y + (n * C + c) * S;
            const ct_real mu = mean[c], a = scale[c], b = shift[c];
#pragma omp simd
            for (size_t s = 0; s < S; s++) yb[s] = (xb[s] - mu) * a + b;
        }
}

/* Σ dy and Σ dy·x̂ of every channel: per block in memory order (pieces in ct_real, as above), then
 * over each channel's blocks in order, in double. bsum holds 2·N·C scratch values. */
CT_KERNEL
static void blocks_grad_sums(const ct_real *x, const ct_real *dy, bn_dims d, const norm_saved *st, double *bsum,
                             double *sum_dy, double *sum_dyx) {
    const size_t N = d.N, C = d.C, S = d.S;
#pragma omp parallel for if (N * C * S > PAR_MIN)
    for (size_t q = 0; q < N * C; q++) {
        const ct_real *restrict xb = x + q * S, *restrict g = dy + q * S;
        const ct_real mu = st->mean[q % C], off = st->offset[q % C], r = st->rstd[q % C];
        double a = 0, b = 0;
        for (size_t p = 0; p < S; p += PIECE) {
            const size_t e = p + PIECE < S ? p + PIECE : S;
            ct_real pa = 0, pb = 0;
#pragma omp simd reduction(+ : pa, pb)
            for (size_t s = p; s < e; s++) {
                pa += g[s];
                pb += g[s] * XHAT(xb[s], mu, r, off);
            }
            a += pa, b += pb;
        }
        bsum[2 * q] = a, bsum[2 * q + 1] = b;
    }
    for (size_t c = 0; c < C; c++) {
        double a = 0, b = 0;
        for (size_t n = 0; n < N; n++) a += bsum[2 * (n * C + c)], b += bsum[2 * (n * C + c) + 1];
        sum_dy[c] = a, sum_dyx[c] = b;
    }
}

/* dx += k·(dy − m1 − x̂·m2) (training), or dx += k·dy (eval: x is not read), block by block in
 * memory order with channel c's constants. */
/* overwrite: dx has just been allocated without a zero fill (ct_grad_for_write): assign. */
CT_KERNEL
static void blocks_dx(const ct_real *x, const ct_real *dy, ct_real *dx, bn_dims d, const norm_saved *st,
                      const ct_real *k, const ct_real *m1, const ct_real *m2, int training, int overwrite) {
    const size_t N = d.N, C = d.C, S = d.S;
#pragma omp parallel for if (N * C * S > PAR_MIN)
    for (size_t q = 0; q < N * C; q++) {
        const size_t c = q % C;
        const ct_real *restrict xb = x + q * S, *restrict g = dy + q * S;
        ct_real *restrict out = dx + q * S;
        const ct_real kc = k[c], a = m1[c], b = m2[c], mu = st->mean[c], off = st->offset[c], r = st->rstd[c];
        if (training && overwrite) {
#pragma omp simd
            for (size_t s = 0; s < S; s++) out[s] = kc * (g[s] - a - XHAT(xb[s], mu, r, off) * b);
        } else if (training) {
#pragma omp simd
            for (size_t s = 0; s < S; s++) out[s] += kc * (g[s] - a - XHAT(xb[s], mu, r, off) * b);
        } else if (overwrite) {
#pragma omp simd
            for (size_t s = 0; s < S; s++) out[s] = kc * g[s];
        } else {
#pragma omp simd
            for (size_t s = 0; s < S; s++) out[s] += kc * g[s];
        }
    }
}

/* ---- the S = 1 layout: rows of C features ---- */

CT_KERNEL
static void rows_moments(const ct_real *x, bn_dims d, double *restrict mean, double *restrict var) {
    const size_t N = d.N, C = d.C;
    for (size_t c = 0; c < C; c++) mean[c] = var[c] = 0;
    for (size_t n = 0; n < N; n++) {
        const ct_real *restrict row = x + n * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++) mean[c] += row[c];
    }
    for (size_t c = 0; c < C; c++) mean[c] /= (double)N;
    for (size_t n = 0; n < N; n++) {
        const ct_real *restrict row = x + n * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++) var[c] += (row[c] - mean[c]) * (row[c] - mean[c]);
    }
    for (size_t c = 0; c < C; c++) var[c] /= (double)N;
}

CT_KERNEL
static void rows_normalize(const ct_real *x, ct_real *y, bn_dims d, const ct_real *restrict mean,
                           const ct_real *restrict scale, const ct_real *restrict shift) {
    const size_t N = d.N, C = d.C;
#pragma omp parallel for if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const ct_real *restrict xr = x + n * C;
        ct_real *restrict yr = y + n * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
    }
}

CT_KERNEL
static void rows_grad_sums(const ct_real *x, const ct_real *dy, bn_dims d, const norm_saved *st,
                           double *restrict sum_dy, double *restrict sum_dyx) {
    const size_t N = d.N, C = d.C;
    const ct_real *restrict mu = st->mean, *restrict off = st->offset, *restrict r = st->rstd;
    for (size_t c = 0; c < C; c++) sum_dy[c] = sum_dyx[c] = 0;
    for (size_t n = 0; n < N; n++) {
        const ct_real *restrict xr = x + n * C, *restrict g = dy + n * C;
#pragma omp simd
        for (size_t c = 0; c < C; c++) {
            sum_dy[c] += g[c];
            sum_dyx[c] += g[c] * XHAT(xr[c], mu[c], r[c], off[c]);
        }
    }
}

CT_KERNEL
static void rows_dx(const ct_real *x, const ct_real *dy, ct_real *dx, bn_dims d, const norm_saved *st,
                    const ct_real *restrict k, const ct_real *restrict m1, const ct_real *restrict m2,
                    int training, int overwrite) {
    const size_t N = d.N, C = d.C;
    const ct_real *restrict mu = st->mean, *restrict off = st->offset, *restrict r = st->rstd;
#pragma omp parallel for if (N * C > PAR_MIN)
    for (size_t n = 0; n < N; n++) {
        const ct_real *restrict xr = x + n * C, *restrict g = dy + n * C;
        ct_real *restrict out = dx + n * C;
        if (overwrite) /* a fresh buffer (ct_grad_for_write): start it at 0 */
            for (size_t c = 0; c < C; c++) out[c] = 0;
        if (training) {
#pragma omp simd
            for (size_t c = 0; c < C; c++) out[c] += k[c] * (g[c] - m1[c] - XHAT(xr[c], mu[c], r[c], off[c]) * m2[c]);
        } else {
#pragma omp simd
            for (size_t c = 0; c < C; c++) out[c] += k[c] * g[c];
        }
    }
}

/* ---- the op ---- */

/* Channel c's backward constants (bn_coef) from its two sums. */
static inline bn_coef coef_of(const ct_tensor *gamma, const norm_saved *st, const double *sum_dy,
                              const double *sum_dyx, double M, size_t c) {
    return (bn_coef){.k = (gamma ? gamma->data[c] : 1) * st->rstd[c], .m1 = (ct_real)(sum_dy[c] / M),
                     .m2 = (ct_real)(sum_dyx[c] / M)};
}

/* Channel c's μ and r: from this batch's mean and var in training, from the running statistics
 * in eval. */
static inline void stats_of(norm_saved *st, size_t c, int training, const double *mean, const double *var,
                            const ct_tensor *running_mean, const ct_tensor *running_var, double eps) {
    const double r = 1 / sqrt((training ? var[c] : (double)running_var->data[c]) + eps);
    if (training) split_mean(mean[c], r, &st->mean[c], &st->offset[c]);
    else st->mean[c] = running_mean->data[c], st->offset[c] = 0;
    st->rstd[c] = (ct_real)r;
}

static void batch_norm_backward_common(ct_tape *tape, ct_node *n, int training) {
    ct_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const norm_saved *st = n->extra;
    const bn_dims d = bn_dims_of(x);
    const size_t C = d.C;
    const double M = (double)(d.N * d.S);
    const ct_real *dy = n->out->grad;
    int overwrite;
    ct_real *dx = ct_grad_for_write(tape, x, &overwrite); /* every element written below */
    ct_real *dgamma = gamma ? ct_grad_of(tape, gamma) : NULL;
    ct_real *dbeta = beta ? ct_grad_of(tape, beta) : NULL;
    /* Σ dy and Σ dy·x̂ per channel: for dγ, dβ, and for dx in training */
    const int need_sums = dgamma || dbeta || (dx && training);
    ct_arena *arena = ct_tape_arena(tape);
    double *sum_dy = ct_arena_calloc(arena, 2 * C * sizeof(double)), *sum_dyx = sum_dy + C;

    if (need_sums) {
        if (d.S > 1) {
            double *bsum = ct_arena_alloc(arena, 2 * d.N * C * sizeof(double));
            blocks_grad_sums(x->data, dy, d, st, bsum, sum_dy, sum_dyx);
        } else {
            rows_grad_sums(x->data, dy, d, st, sum_dy, sum_dyx);
        }
    }
    if (dx) {
        ct_real *k = ct_arena_alloc(arena, 3 * C * sizeof(ct_real)), *m1 = k + C, *m2 = k + 2 * C;
        for (size_t c = 0; c < C; c++) {
            const bn_coef f = coef_of(gamma, st, sum_dy, sum_dyx, M, c);
            k[c] = f.k, m1[c] = f.m1, m2[c] = f.m2;
        }
        if (d.S > 1) blocks_dx(x->data, dy, dx, d, st, k, m1, m2, training, overwrite);
        else rows_dx(x->data, dy, dx, d, st, k, m1, m2, training, overwrite);
    }
    for (size_t c = 0; c < C; c++) {
        if (dgamma) dgamma[c] += (ct_real)sum_dyx[c];
        if (dbeta) dbeta[c] += (ct_real)sum_dy[c];
    }
}

static void batch_norm_backward(ct_tape *tape, ct_node *n) { batch_norm_backward_common(tape, n, 1); }
static void batch_norm_eval_backward(ct_tape *tape, ct_node *n) { batch_norm_backward_common(tape, n, 0); }

const ct_op ct_op_batch_norm = {
    "batch_norm",
    "y = γ·(x − μ_B)/√(σ²_B + eps) + β per channel; dx = (γr/M)·(M·dy − Σdy − x̂·Σdy·x̂)",
    batch_norm_backward};
const ct_op ct_op_batch_norm_eval = {
    "batch_norm_eval",
    "y = γ·(x − running_mean)/√(running_var + eps) + β per channel; dx = γr·dy",
    batch_norm_eval_backward};

static void check_channel_vector(const char *op, const ct_tensor *x, const ct_tensor *t, const char *what) {
    if (!t) return;
    CT_CHECK(t->ndim == 1 && t->shape[0] == x->shape[1], op,
             "%s %s does not match the %d channels of input %s (need (%d,))", what, ct_shp(t),
             x->shape[1], ct_shp(x), x->shape[1]);
}

ct_tensor *ct_batch_norm(ct_tape *tape, ct_tensor *x, ct_tensor *gamma, ct_tensor *beta,
                         ct_tensor *running_mean, ct_tensor *running_var, int training,
                         double momentum, double eps) {
    static const char *op = "ct_batch_norm";
    CT_CHECK(x, op, "input is NULL");
    CT_CHECK(x->ndim >= 2 && x->ndim <= 4, op, "input %s must be (N, C), (N, C, L) or (N, C, H, W)", ct_shp(x));
    CT_CHECK(x->shape[1] > 0, op, "input %s has no channels", ct_shp(x));
    check_channel_vector(op, x, gamma, "gamma");
    check_channel_vector(op, x, beta, "beta");
    check_channel_vector(op, x, running_mean, "running_mean");
    check_channel_vector(op, x, running_var, "running_var");
    CT_CHECK(!running_mean == !running_var, op, "pass both running_mean and running_var, or neither");
    CT_CHECK(training || running_mean, op, "eval mode needs running_mean and running_var (input %s)", ct_shp(x));
    CT_CHECK(eps >= 0, op, "eps %g is negative", eps);
    CT_CHECK(momentum >= 0 && momentum <= 1, op, "momentum %g is outside [0, 1]", momentum);
    const bn_dims d = bn_dims_of(x);
    const size_t C = d.C, M = d.N * d.S;
    CT_CHECK(!training || M > 1, op, "training needs more than 1 value per channel, got input %s", ct_shp(x));

    ct_node *n;
    ct_tensor *inputs[3] = {x, gamma, beta};
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x),
                                training ? &ct_op_batch_norm : &ct_op_batch_norm_eval, inputs, 3, &n);
    ct_arena *arena = ct_tape_arena(tape);
    norm_saved st = {
        .mean = ct_arena_alloc(arena, C * sizeof(ct_real)),
        .offset = ct_arena_alloc(arena, C * sizeof(ct_real)),
        .rstd = ct_arena_alloc(arena, C * sizeof(ct_real)),
    };
    double *mean = ct_arena_alloc(arena, 2 * C * sizeof(double)), *var = mean + C; /* this batch's */
    /* y = (x − μ_hi)·scale + shift with scale = γ·r, shift = β + γ·c */
    const ct_real *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
    if (training) {
        if (d.S > 1) {
            double *bsum = ct_arena_alloc(arena, 2 * d.N * C * sizeof(double)), *bm2 = bsum + d.N * C;
            blocks_moments(x->data, d, bsum, bm2, mean, var);
        } else {
            rows_moments(x->data, d, mean, var);
        }
    }
    ct_real *scale = ct_arena_alloc(arena, 2 * C * sizeof(ct_real)), *shift = scale + C;
    for (size_t c = 0; c < C; c++) {
        stats_of(&st, c, training, mean, var, running_mean, running_var, eps);
        /* y = γ·x̂ + β = (x − μ_hi)·γr + (β + γ·c) */
        scale[c] = (g ? g[c] : 1) * st.rstd[c];
        shift[c] = (ct_real)((b ? (double)b[c] : 0) + (g ? (double)g[c] : 1) * st.offset[c]);
    }
    if (d.S == 1) rows_normalize(x->data, y->data, d, st.mean, scale, shift);
    else blocks_normalize(x->data, y->data, d, st.mean, scale, shift);
    if (training && running_mean) {
        const double unbias = (double)M / (double)(M - 1);
        for (size_t c = 0; c < C; c++) {
            running_mean->data[c] = (ct_real)((1 - momentum) * running_mean->data[c] + momentum * mean[c]);
            running_var->data[c] = (ct_real)((1 - momentum) * running_var->data[c] + momentum * var[c] * unbias);
        }
    }
    if (n) {
        norm_saved *saved = ct_arena_alloc(arena, sizeof *saved);
        *saved = st;
        n->extra = saved;
    }
    return y;
}
