/* losses/embedding_distance.c — the losses of distances between embeddings: the triplet margin
 * loss (explicit and mined: batch all, batch hard) and center loss. The mined loss's L2 distances
 * and its batch-all hinge are fused ops (pairwise_l2, triplet_batch_all), so that it builds no
 * (N, N, D) or (N, N, N) tensor; ct_triplet_mined_loss_reference is the composed form they are
 * checked against. The rest is composed from tape ops and has no backward code of its own. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"

#include <string.h>

/* ---- triplet margin loss ---------------------------------------------------------------------- */

static void check_triplet_opts(const char *op, ct_triplet_opts o) {
    check_reduction(op, o.reduction, 0);
    CT_CHECK(o.margin >= 0 && isfinite(o.margin), op, "margin %g must be >= 0", o.margin);
    CT_CHECK(o.distance == CT_DISTANCE_L2 || o.distance == CT_DISTANCE_COSINE, op, "unknown distance %d",
             (int)o.distance);
    CT_CHECK(o.eps >= 0 && isfinite(o.eps), op, "eps %g must be >= 0", o.eps);
    CT_CHECK(o.mining == CT_MINING_BATCH_ALL || o.mining == CT_MINING_BATCH_HARD, op, "unknown mining %d",
             (int)o.mining);
}

/* Distances between matching rows of x and y (N, D) -> (N), or, when x is (N, 1, D) and y is
 * (1, N, D), between every pair -> (N, N) by broadcasting (D_ij = d(x_i, y_j)):
 *   L2:     ‖x − y + eps‖₂ = sqrt(Σ_d (x_d − y_d + eps)²)      F.pairwise_distance's form; the eps
 *           keeps the sqrt away from 0, so d(x, x) = eps·√D has a finite gradient
 *   cosine: 1 − ⟨x̂, ŷ⟩, x̂ = x / max(‖x‖, 1e-12) */
static ct_tensor *distance(ct_tape *tape, ct_tensor *x, ct_tensor *y, ct_triplet_opts o) {
    const int axis = x->ndim - 1;
    if (o.distance == CT_DISTANCE_L2) {
        ct_tensor *diff = ct_add_scalar(tape, ct_sub(tape, x, y), o.eps);
        return ct_sqrt(tape, ct_sum(tape, ct_mul(tape, diff, diff), -1, 0));
    }
    ct_tensor *xh = ct_l2_normalize(tape, x, axis, 1e-12), *yh = ct_l2_normalize(tape, y, y->ndim - 1, 1e-12);
    return ct_add_scalar(tape, ct_neg(tape, ct_sum(tape, ct_mul(tape, xh, yh), -1, 0)), 1.0);
}

/* Explicit form, torch.nn.TripletMarginLoss: ℓ_i = [d(a_i, p_i) − d(a_i, n_i) + margin]₊,
 * with swap d(a_i, n_i) ← min(d(a_i, n_i), d(p_i, n_i)); mean over N, sum, or none (N). */
ct_tensor *ct_triplet_margin_loss(ct_tape *tape, ct_tensor *anchor, ct_tensor *positive, ct_tensor *negative,
                                  ct_triplet_opts opts) {
    static const char *op = "ct_triplet_margin_loss";
    CT_CHECK(anchor && positive && negative, op, "anchor, positive and negative must not be NULL");
    CT_CHECK(anchor->ndim == 2 && anchor->shape[0] > 0 && anchor->shape[1] > 0, op,
             "anchor must be (N, D) with N, D > 0, got %s", ct_shp(anchor));
    CT_CHECK(positive->ndim == 2 && positive->shape[0] == anchor->shape[0] &&
             positive->shape[1] == anchor->shape[1], op, "positive %s does not match anchor %s",
             ct_shp(positive), ct_shp(anchor));
    CT_CHECK(negative->ndim == 2 && negative->shape[0] == anchor->shape[0] &&
             negative->shape[1] == anchor->shape[1], op, "negative %s does not match anchor %s",
             ct_shp(negative), ct_shp(anchor));
    check_triplet_opts(op, opts);
    if (!inputs_finite(anchor, positive, negative)) return nonfinite_loss(tape, anchor, positive, negative, opts.reduction);
    const int N = anchor->shape[0];

    ct_tensor *d_ap = distance(tape, anchor, positive, opts);
    ct_tensor *d_an = distance(tape, anchor, negative, opts);
    if (opts.swap) d_an = ct_minimum(tape, d_an, distance(tape, positive, negative, opts));
    ct_tensor *per = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, d_ap, d_an), opts.margin));
    return reduce_counted(tape, per, opts.reduction, N, CT_SHAPE(N));
}

/* ---- pairwise L2 distances, fused: x (N, D) -> D (N, N) ---------------------------------------------
 *   D_ij = ‖x_i − x_j + eps‖₂ = sqrt(Σ_d u_ijd²),  u_ij = x_i − x_j + eps   (F.pairwise_distance's
 *   form for every pair; not symmetric: the eps has a sign)
 * Composed by broadcasting (N, 1, D) against (1, N, D) it built (N, N, D) tensors; this keeps D.
 * The differences are summed directly, not as ‖x_i‖² + ‖x_j‖² − 2⟨x_i, x_j⟩ (a GEMM), which for
 * close rows cancels to noise in float32 (D_ii = eps·√D ≈ 1e-5 against ‖x‖² ≈ 1e2).
 * Backward, ∂D_ij/∂x_i = u_ij/D_ij = −∂D_ij/∂x_j:  dx_i += g_ij·u_ij/D_ij,  dx_j −= g_ij·u_ij/D_ij,
 * skipping g_ij = 0 and D_ij = 0 (the composed sqrt gave 0·∞ = NaN there; 0 is PyTorch's norm
 * gradient at 0). arg[0] = eps. */
CT_KERNEL
static void pairwise_l2_backward(ct_tape *tape, ct_node *nd) {
    ct_tensor *x = nd->in[0];
    ct_real *dx = ct_grad_of(tape, x);
    if (!dx) return;
    const int N = x->shape[0], D = x->shape[1];
    const ct_real eps = (ct_real)nd->arg[0], *g = nd->out->grad, *dist = nd->out->data;
    for (int i = 0; i < N; i++) {
        const ct_real *restrict xi = x->data + (size_t)i * D;
        ct_real *restrict dxi = dx + (size_t)i * D;
        for (int j = 0; j < N; j++) {
            const ct_real gij = g[(size_t)i * N + j], dij = dist[(size_t)i * N + j];
            if (gij == 0 || dij == 0 || j == i) continue; /* j = i: u = eps, and the two terms cancel */
            const ct_real c = gij / dij, *restrict xj = x->data + (size_t)j * D;
            ct_real *restrict dxj = dx + (size_t)j * D;
#pragma omp simd
            for (int d = 0; d < D; d++) {
                const ct_real u = (xi[d] - xj[d]) + eps;
                dxi[d] += c * u;
                dxj[d] -= c * u;
            }
        }
    }
}
const ct_op ct_op_pairwise_l2 = {"pairwise_l2", "D_ij = ‖x_i − x_j + eps‖₂; dx_i += g_ij·u_ij/D_ij, dx_j −= g_ij·u_ij/D_ij",
                                 pairwise_l2_backward};

CT_KERNEL
static ct_tensor *pairwise_l2(ct_tape *tape, ct_tensor *x, double eps) {
    const int N = x->shape[0], D = x->shape[1];
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, CT_SHAPE(N, N), &ct_op_pairwise_l2, &x, 1, &nd);
    const ct_real e = (ct_real)eps;
    for (int i = 0; i < N; i++) {
        const ct_real *restrict xi = x->data + (size_t)i * D;
        for (int j = 0; j < N; j++) {
            const ct_real *restrict xj = x->data + (size_t)j * D;
            ct_real ss = 0;
#pragma omp simd reduction(+ : ss)
            for (int d = 0; d < D; d++) {
                const ct_real u = (xi[d] - xj[d]) + e;
                ss += u * u;
            }
            out->data[(size_t)i * N + j] = (ct_real)sqrt(ss);
        }
    }
    if (nd) nd->arg[0] = eps;
    return out;
}

/* ---- batch-all triplet hinge, fused: D (N, N) -> per-anchor sums (N) ------------------------------
 *   t_apn = [D_ap − D_an + margin]₊   for p ≠ a with y_p = y_a and n with y_n ≠ y_a
 *   ℓ_a = Σ_p Σ_n t_apn;  *positive = #(t_apn > 0) over the batch
 * Composed it was (N, N, N) tensors (T, its mask and the intermediate sums: 67 MB each at N = 256);
 * fused the triplets are visited and only D is kept. Backward (relu'(0) = 0, as ct_relu):
 *   dD_ap += g_a·#{n: t_apn > 0},   dD_an −= g_a·#{p: t_apn > 0}.
 * extra = the labels, copied (the caller's array may change before ct_backward); arg[0] = margin. */
CT_KERNEL
static void triplet_batch_all_backward(ct_tape *tape, ct_node *nd) {
    ct_tensor *dist = nd->in[0];
    ct_real *dd = ct_grad_of(tape, dist);
    if (!dd) return;
    const int N = dist->shape[0], *y = nd->extra;
    const ct_real margin = (ct_real)nd->arg[0], *g = nd->out->grad;
    for (int a = 0; a < N; a++) {
        const ct_real *restrict da = dist->data + (size_t)a * N;
        ct_real *restrict dda = dd + (size_t)a * N;
        const ct_real ga = g[a];
        for (int p = 0; p < N; p++) {
            if (p == a || y[p] != y[a]) continue;
            const ct_real dap = da[p];
            int active = 0;
#pragma omp simd reduction(+ : active)
            for (int n = 0; n < N; n++) {
                const int on = (y[n] != y[a]) & ((dap - da[n]) + margin > 0);
                dda[n] -= on ? ga : 0;
                active += on;
            }
            dda[p] += ga * (ct_real)active;
        }
    }
}
const ct_op ct_op_triplet_batch_all = {
    "triplet_batch_all", "ℓ_a = Σ_{p∈P(a), n∈N(a)} [D_ap − D_an + m]₊; dD_ap += g_a·#active n, dD_an −= g_a·#active p",
    triplet_batch_all_backward};

static ct_tensor *triplet_batch_all(ct_tape *tape, ct_tensor *dist, const int *y, double margin, size_t *positive) {
    const int N = dist->shape[0];
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, CT_SHAPE(N), &ct_op_triplet_batch_all, &dist, 1, &nd);
    const ct_real m = (ct_real)margin;
    size_t count = 0;
    for (int a = 0; a < N; a++) {
        const ct_real *restrict da = dist->data + (size_t)a * N;
        double sum = 0;
        for (int p = 0; p < N; p++) {
            if (p == a || y[p] != y[a]) continue;
            const ct_real dap = da[p];
            ct_real s = 0;
            int active = 0;
#pragma omp simd reduction(+ : s, active)
            for (int n = 0; n < N; n++) {
                const ct_real v = (dap - da[n]) + m;
                const int on = (y[n] != y[a]) & (v > 0);
                s += on ? v : 0;
                active += on;
            }
            sum += s;
            count += (size_t)active;
        }
        out->data[a] = (ct_real)sum;
    }
    *positive = count;
    if (nd) {
        int *labels = ct_arena_alloc(ct_tape_arena(tape), (size_t)N * sizeof *labels);
        memcpy(labels, y, (size_t)N * sizeof *labels);
        nd->extra = labels;
        nd->arg[0] = margin;
    }
    return out;
}

/* Mined forms on the pairwise distances D (N, N), D_ij = d(x_i, x_j): L2 by the fused
 * pairwise_l2, cosine as 1 − Ê·Êᵀ (a GEMM; no cancellation problem there).
 *   batch all:  ℓ_a = Σ_{p,n} [D_ap − D_an + margin]₊ over valid (a, p, n) (triplet_batch_all)
 *               mean = Σ_a ℓ_a / #(t_apn > 0), counted on the forward values (a constant of the
 *               backward, as in the reference implementations)
 *   batch hard: hp_a = max_{p ∈ P(a)} D_ap, hn_a = min_{n ∈ N(a)} D_an = −max(−D_an),
 *               ℓ_a = valid_a · [hp_a − hn_a + margin]₊, max sending the gradient to the first
 *               maximum, as ct_max does. */
/* Batch hard on the distances D (N, N): per anchor the farthest positive and the nearest negative
 * through where(mask, ·, −∞) and ct_max; an anchor without a positive or a negative gets its masks
 * widened to the whole row and its loss times a constant 0. */
static ct_tensor *batch_hard(ct_tape *tape, ct_tensor *dist, const int *y, ct_triplet_opts opts) {
    const int N = dist->shape[0];
    ct_tensor *pos = ct_tape_zeros(tape, CT_SHAPE(N, N));
    ct_tensor *neg = ct_tape_zeros(tape, CT_SHAPE(N, N));
    ct_tensor *valid = ct_tape_zeros(tape, CT_SHAPE(N));
    int n_valid = 0;
    for (int a = 0; a < N; a++) {
        int n_pos = 0, n_neg = 0;
        ct_real *p = pos->data + (size_t)a * N, *q = neg->data + (size_t)a * N;
        for (int j = 0; j < N; j++) {
            const int same = y[j] == y[a];
            p[j] = (ct_real)(same && j != a), n_pos += same && j != a;
            q[j] = (ct_real)!same, n_neg += !same;
        }
        if (n_pos > 0 && n_neg > 0) valid->data[a] = 1, n_valid++;
        else
            for (int j = 0; j < N; j++) p[j] = q[j] = 1;
    }
    ct_tensor *minus_inf = constant(tape, CT_SHAPE(1), -INFINITY);
    ct_tensor *hardest_pos = ct_max(tape, ct_where(tape, pos, dist, minus_inf), 1, 0);
    ct_tensor *hardest_neg = ct_neg(tape, ct_max(tape, ct_where(tape, neg, ct_neg(tape, dist), minus_inf), 1, 0));
    ct_tensor *per = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, hardest_pos, hardest_neg), opts.margin));
    per = ct_mul(tape, per, valid);
    return reduce_counted(tape, per, opts.reduction, n_valid, CT_SHAPE(N));
}

static void check_triplet_mined(const char *op, ct_tensor *features, ct_labels labels, ct_triplet_opts opts) {
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    CT_CHECK(features->shape[0] > 0 && features->shape[1] > 0, op, "features %s are empty", ct_shp(features));
    check_triplet_opts(op, opts);
    CT_CHECK(!opts.swap, op, "swap applies to the explicit form (ct_triplet_margin_loss) only");
    check_labels(op, labels, features->shape[0], 0);
}

/* Mined forms on the pairwise distances D (N, N), D_ij = d(x_i, x_j): L2 by the fused
 * pairwise_l2, cosine as 1 − Ê·Êᵀ (a GEMM; no cancellation problem there).
 *   batch all:  ℓ_a = Σ_{p,n} [D_ap − D_an + margin]₊ over valid (a, p, n) (triplet_batch_all)
 *               mean = Σ_a ℓ_a / #(t_apn > 0), counted on the forward values (a constant of the
 *               backward, as in the reference implementations)
 *   batch hard: hp_a = max_{p ∈ P(a)} D_ap, hn_a = min_{n ∈ N(a)} D_an = −max(−D_an),
 *               ℓ_a = valid_a · [hp_a − hn_a + margin]₊, max sending the gradient to the first
 *               maximum, as ct_max does. */
ct_tensor *ct_triplet_mined_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_triplet_opts opts) {
    check_triplet_mined("ct_triplet_mined_loss", features, labels, opts);
    if (!inputs_finite(features, NULL, NULL)) return nonfinite_loss(tape, features, NULL, NULL, opts.reduction);
    const int N = features->shape[0];
    ct_tensor *dist; /* (N, N) */
    if (opts.distance == CT_DISTANCE_L2) dist = pairwise_l2(tape, features, opts.eps);
    else {
        ct_tensor *e = ct_l2_normalize(tape, features, 1, 1e-12);
        dist = ct_add_scalar(tape, ct_neg(tape, ct_matmul_t(tape, e, 0, e, 1)), 1.0);
    }
    if (opts.mining == CT_MINING_BATCH_HARD) return batch_hard(tape, dist, labels.data, opts);
    size_t positive;
    ct_tensor *per = triplet_batch_all(tape, dist, labels.data, opts.margin, &positive);
    return reduce_counted(tape, per, opts.reduction, (double)positive, CT_SHAPE(N));
}

/* The reference: D by broadcasting (N, 1, D) against (1, N, D) with the explicit form's distance;
 * batch all on (N, N, N) tensors: t_apn = valid_apn·[D_ap − D_an + margin]₊, ℓ_a = Σ_{p,n} t_apn,
 * mean over #(t_apn > 0); batch hard as the fused path (it is composed there too). */
ct_tensor *ct_triplet_mined_loss_reference(ct_tape *tape, ct_tensor *features, ct_labels labels,
                                           ct_triplet_opts opts) {
    check_triplet_mined("ct_triplet_mined_loss_reference", features, labels, opts);
    const int N = features->shape[0], D = features->shape[1];
    const int *y = labels.data;
    ct_tensor *rows = ct_reshape(tape, features, CT_SHAPE(N, 1, D));
    ct_tensor *cols = ct_reshape(tape, features, CT_SHAPE(1, N, D));
    ct_tensor *dist = distance(tape, rows, cols, opts);
    if (opts.mining == CT_MINING_BATCH_HARD) return batch_hard(tape, dist, y, opts);
    ct_tensor *valid = ct_tape_zeros(tape, CT_SHAPE(N, N, N));
    for (int a = 0; a < N; a++)
        for (int p = 0; p < N; p++) {
            if (p == a || y[p] != y[a]) continue;
            ct_real *v = valid->data + ((size_t)a * N + p) * N;
            for (int n = 0; n < N; n++) v[n] = (ct_real)(y[n] != y[a]);
        }
    ct_tensor *d_ap = ct_reshape(tape, dist, CT_SHAPE(N, N, 1));
    ct_tensor *d_an = ct_reshape(tape, dist, CT_SHAPE(N, 1, N));
    ct_tensor *t = ct_mul(tape, ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, d_ap, d_an), opts.margin)), valid);
    size_t positive = 0;
    for (size_t i = 0; i < t->size; i++) positive += t->data[i] > 0;
    ct_tensor *per = ct_sum(tape, ct_sum(tape, t, 2, 0), 1, 0);
    return reduce_counted(tape, per, opts.reduction, (double)positive, CT_SHAPE(N));
}

/* ---- center loss ------------------------------------------------------------------------------
 *   ℓ_i = (λ/2)·‖x_i − c_{y_i}‖²
 * c_{y_i} is gathered with index_select (its backward accumulates over repeated labels), so
 *   ∂ℓ_i/∂x_i = λ·(x_i − c_{y_i}),   ∂ℓ/∂c_j = −λ·Σ_{i: y_i = j} (x_i − c_j)   (then / N for mean). */
ct_tensor *ct_center_loss(ct_tape *tape, ct_tensor *features, ct_tensor *centers, ct_labels labels,
                          ct_center_opts opts) {
    static const char *op = "ct_center_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    CT_CHECK(centers && centers->ndim == 2 && centers->shape[1] == features->shape[1], op,
             "centers must be (C, D) with D = %d as the features %s, got %s", features->shape[1],
             ct_shp(features), centers ? ct_shp(centers) : "NULL");
    const int N = features->shape[0], C = centers->shape[0];
    CT_CHECK(N > 0 && C > 0 && features->shape[1] > 0, op, "features %s or centers %s are empty",
             ct_shp(features), ct_shp(centers));
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.lambda >= 0 && isfinite(opts.lambda), op, "lambda %g must be >= 0", opts.lambda);
    check_labels(op, labels, N, C); /* a NaN or ±inf passes through these ops as in PyTorch: row by row */

    ct_tensor *c = ct_index_select(tape, centers, 0, labels.data, N);
    ct_tensor *diff = ct_sub(tape, features, c);
    ct_tensor *per = ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, diff, diff), 1, 0), opts.lambda / 2);
    return reduce_counted(tape, per, opts.reduction, N, CT_SHAPE(N));
}

