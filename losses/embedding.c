/* losses/embedding.c — losses on embeddings: SupCon / NT-Xent, Circle (pair and class forms),
 * triplet margin (explicit, batch-all, batch-hard) and center loss.
 *
 * Every loss here is composed from tape ops (matmul_t for E·Eᵀ without a copy, l2_normalize,
 * logsumexp, where, max, relu, softplus) and so has no backward code of its own: the tape
 * differentiates the composition. Which pairs or triplets count is decided by constant masks
 * built from the labels (0/1 tensors without gradient):
 *   - a set restricted by a mask enters a logsumexp or a max through where(mask, x, −∞), so the
 *     excluded entries contribute exp(−∞) = 0 to the value and nothing to the gradient;
 *   - an anchor whose set is empty (no positive, no negative) would make a row of −∞ only, whose
 *     logsumexp is −∞ and whose gradient is NaN. For such a row the mask is widened to the whole
 *     row (finite, meaningless) and the anchor's loss is multiplied by a constant 0: it is left out
 *     of the value, and 0·(finite gradient) = 0 leaves it out of the gradient too.
 * The mean of a loss is taken over the anchors (or triplets) that count, and a batch where none
 * counts gives 0 with a zero gradient, never 0/0. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/internal.h"

#include <math.h>

/* ---- shared checks and constants ------------------------------------------------------------ */

static void check_reduction(const char *op, ct_reduction r) {
    CT_CHECK(r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE, op,
             "unknown reduction %d", (int)r);
}

/* Every element finite; names the row and column of the first that is not. */
static void check_finite(const char *op, const char *what, const ct_tensor *t) {
    const size_t cols = t->ndim ? (size_t)t->shape[t->ndim - 1] : 1;
    for (size_t i = 0; i < t->size; i++)
        CT_CHECK(isfinite(t->data[i]), op, "%s %s has a non-finite value %g at row %zu, column %zu",
                 what, ct_shp(t), (double)t->data[i], i / cols, i % cols);
}

/* labels.n == n and, when classes > 0, every label in [0, classes). */
static void check_labels(const char *op, ct_labels labels, int n, int classes) {
    CT_CHECK(labels.n == n, op, "%d labels for %d samples", labels.n, n);
    CT_CHECK(labels.data || n == 0, op, "labels are NULL for %d samples", n);
    if (classes > 0)
        for (int i = 0; i < n; i++)
            CT_CHECK(labels.data[i] >= 0 && labels.data[i] < classes, op,
                     "label %d of sample %d is out of range for C = %d classes", labels.data[i], i, classes);
}

static ct_tensor *constant(ct_tape *tape, double value) {
    ct_tensor *t = ct_tape_zeros(tape, CT_SHAPE(1));
    t->data[0] = (ct_real)value;
    return t;
}

/* The reduction of per-anchor losses `per` (zero where an anchor does not count): none gives
 * `per` itself (reshaped to none_shape), sum Σ per, mean Σ per / count (count = 0: Σ per = 0). */
static ct_tensor *reduce_losses(ct_tape *tape, ct_tensor *per, ct_reduction r, double count,
                                ct_shape none_shape) {
    if (r == CT_REDUCTION_NONE) return ct_reshape(tape, per, none_shape);
    ct_tensor *total = ct_sum_all(tape, per);
    if (r == CT_REDUCTION_SUM) return total;
    return ct_mul_scalar(tape, total, 1.0 / (count > 0 ? count : 1));
}

/* ---- SupCon / NT-Xent ------------------------------------------------------------------------
 * features (N, V, D) are viewed as M = N·V anchors f_a, a = i·V + v (sample i, view v) — the
 * authors concatenate the views instead (a = v·N + i), which only permutes the anchors. Then
 *   S = F·Fᵀ/τ                              (M, M): one GEMM, Fᵀ as a GEMM flag
 *   lse_a = logsumexp_{k≠a} S_ak            the self term masked with where(k ≠ a, S, −∞)
 *   log p_ak = S_ak − lse_a                 finite also at k = a (it is multiplied by 0)
 *   ℓ_a = −(τ/τ_base) · Σ_k W_ak·log p_ak,  W_ak = [k ∈ P(a)] / |P(a)|   (0 rows: no positive)
 * which is the authors' mean_log_prob_pos. Their code subtracts the row max (detached) before
 * exp; logsumexp does the same internally. With M = 1 there is no k ≠ a: the loss is 0. */
ct_tensor *ct_supcon_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_supcon_opts opts) {
    static const char *op = "ct_supcon_loss";
    CT_CHECK(features && (features->ndim == 3 || features->ndim == 2), op,
             "features must be (N, V, D) or (N, D), got %s", features ? ct_shp(features) : "NULL");
    const int three_d = features->ndim == 3;
    const int N = features->shape[0], V = three_d ? features->shape[1] : 1;
    const int D = features->shape[features->ndim - 1], M = N * V;
    CT_CHECK(N > 0 && V > 0 && D > 0, op, "features %s are empty", ct_shp(features));
    CT_CHECK(opts.temperature > 0 && isfinite(opts.temperature), op, "temperature τ = %g must be > 0",
             opts.temperature);
    CT_CHECK(opts.base_temperature > 0 && isfinite(opts.base_temperature), op,
             "base_temperature τ_base = %g must be > 0", opts.base_temperature);
    check_reduction(op, opts.reduction);
    if (labels.data) check_labels(op, labels, N, 0);
    else CT_CHECK(labels.n == 0 || labels.n == N, op, "labels are NULL but labels.n = %d", labels.n);
    check_finite(op, "features", features);

    /* W (M, M): the positives of each anchor, weighted 1/|P(a)|; not_self (M, M). */
    ct_tensor *W = ct_tape_zeros(tape, CT_SHAPE(M, M));
    ct_tensor *not_self = ct_tape_zeros(tape, CT_SHAPE(M, M));
    int anchors_with_positive = 0;
    for (int a = 0; a < M; a++) {
        const int ia = a / V;
        int n_pos = 0;
        for (int k = 0; k < M; k++) {
            if (k == a) continue;
            not_self->data[(size_t)a * M + k] = 1;
            const int ik = k / V;
            const int positive = labels.data ? labels.data[ia] == labels.data[ik] : ia == ik;
            if (positive) W->data[(size_t)a * M + k] = 1, n_pos++;
        }
        if (n_pos == 0) continue;
        anchors_with_positive++;
        for (int k = 0; k < M; k++) W->data[(size_t)a * M + k] /= (ct_real)n_pos;
    }
    ct_shape none_shape = three_d ? CT_SHAPE(N, V) : CT_SHAPE(N);

    ct_tensor *f = ct_reshape(tape, features, CT_SHAPE(M, D));
    if (opts.normalize) f = ct_l2_normalize(tape, f, 1, 1e-12);
    if (M == 1) /* no k ≠ a, hence no positive: 0, still connected to the features */
        return reduce_losses(tape, ct_mul_scalar(tape, ct_sum(tape, f, 1, 0), 0.0), opts.reduction, 0,
                             none_shape);
    ct_tensor *S = ct_mul_scalar(tape, ct_matmul_t(tape, f, 0, f, 1), 1.0 / opts.temperature);
    ct_tensor *lse = ct_logsumexp(tape, ct_where(tape, not_self, S, constant(tape, -INFINITY)), 1, 1);
    ct_tensor *log_p = ct_sub(tape, S, lse);
    ct_tensor *per = ct_sum(tape, ct_mul(tape, log_p, W), 1, 0);
    per = ct_mul_scalar(tape, per, -opts.temperature / opts.base_temperature);
    return reduce_losses(tape, per, opts.reduction, anchors_with_positive, none_shape);
}

/* ---- Circle loss -----------------------------------------------------------------------------
 * Given cosines S (N, K) and constant masks pos, neg (N, K) and valid (N):
 *   logit_p = −γ·α_p·(S − Δ_p),  α_p = [1 + m − S]₊ detached,  Δ_p = 1 − m
 *   logit_n =  γ·α_n·(S − Δ_n),  α_n = [S + m]₊ detached,      Δ_n = m
 *   ℓ_i = valid_i · softplus(logsumexp_{pos} logit_p + logsumexp_{neg} logit_n)
 * The detached α make the weights constants in the backward: the gradient of ℓ through s_p is
 * −γ·α_p·softmax(logit_p)·σ(·), as in the paper's eq. (7) with α treated as fixed. With
 * detach_weights = 0 the α are differentiated too (an ablation; it is also the form a finite-
 * difference gradient check can verify, since the detached gradient is not the derivative of
 * the loss value).
 * softplus is PyTorch's (β = 1, linear above 20), as in pytorch-metric-learning. */
static ct_tensor *circle_per_anchor(ct_tape *tape, ct_tensor *S, ct_tensor *pos, ct_tensor *neg,
                                    ct_tensor *valid, ct_circle_opts o) {
    const double m = o.m, gamma = o.gamma;
    ct_tensor *s_fixed = o.detach_weights ? ct_detach(tape, S) : S;
    ct_tensor *alpha_p = ct_relu(tape, ct_add_scalar(tape, ct_neg(tape, s_fixed), 1 + m));
    ct_tensor *alpha_n = ct_relu(tape, ct_add_scalar(tape, s_fixed, m));
    ct_tensor *logit_p = ct_mul(tape, ct_mul_scalar(tape, alpha_p, -gamma), ct_add_scalar(tape, S, -(1 - m)));
    ct_tensor *logit_n = ct_mul(tape, ct_mul_scalar(tape, alpha_n, gamma), ct_add_scalar(tape, S, -m));
    ct_tensor *minus_inf = constant(tape, -INFINITY);
    ct_tensor *lse_p = ct_logsumexp(tape, ct_where(tape, pos, logit_p, minus_inf), 1, 0);
    ct_tensor *lse_n = ct_logsumexp(tape, ct_where(tape, neg, logit_n, minus_inf), 1, 0);
    ct_tensor *per = ct_softplus(tape, ct_add(tape, lse_p, lse_n), 1.0, 20.0);
    return valid ? ct_mul(tape, per, valid) : per;
}

static void check_circle_opts(const char *op, ct_circle_opts o) {
    check_reduction(op, o.reduction);
    CT_CHECK(o.m >= 0 && o.m <= 1, op, "margin m = %g is outside [0, 1]", o.m);
    CT_CHECK(o.gamma > 0 && isfinite(o.gamma), op, "scale gamma = %g must be > 0", o.gamma);
}

/* Pair form: S = Ê·Êᵀ over the batch; for anchor i the positives are j ≠ i with y_j = y_i and the
 * negatives j with y_j ≠ y_i. An anchor without either gets a full row in both masks (finite) and
 * valid_i = 0. */
ct_tensor *ct_circle_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_circle_opts opts) {
    static const char *op = "ct_circle_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    const int N = features->shape[0];
    CT_CHECK(N > 0 && features->shape[1] > 0, op, "features %s are empty", ct_shp(features));
    check_circle_opts(op, opts);
    check_labels(op, labels, N, 0);
    check_finite(op, "features", features);

    ct_tensor *pos = ct_tape_zeros(tape, CT_SHAPE(N, N));
    ct_tensor *neg = ct_tape_zeros(tape, CT_SHAPE(N, N));
    ct_tensor *valid = ct_tape_zeros(tape, CT_SHAPE(N));
    int n_valid = 0;
    for (int i = 0; i < N; i++) {
        int n_pos = 0, n_neg = 0;
        ct_real *p = pos->data + (size_t)i * N, *q = neg->data + (size_t)i * N;
        for (int j = 0; j < N; j++) {
            const int same = labels.data[j] == labels.data[i];
            p[j] = (ct_real)(same && j != i), n_pos += same && j != i;
            q[j] = (ct_real)!same, n_neg += !same;
        }
        if (n_pos > 0 && n_neg > 0) valid->data[i] = 1, n_valid++;
        else
            for (int j = 0; j < N; j++) p[j] = q[j] = 1;
    }
    ct_tensor *e = ct_l2_normalize(tape, features, 1, 1e-12);
    ct_tensor *S = ct_matmul_t(tape, e, 0, e, 1);
    ct_tensor *per = circle_per_anchor(tape, S, pos, neg, valid, opts);
    return reduce_losses(tape, per, opts.reduction, n_valid, CT_SHAPE(N));
}

/* Class form: S = Ê·P̂ᵀ (N, C) against the normalised proxies; the positive of sample i is
 * column y_i, the negatives the other C − 1 columns (so every sample counts). */
ct_tensor *ct_circle_class_loss(ct_tape *tape, ct_tensor *features, ct_tensor *proxies, ct_labels labels,
                                ct_circle_opts opts) {
    static const char *op = "ct_circle_class_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    CT_CHECK(proxies && proxies->ndim == 2 && proxies->shape[1] == features->shape[1], op,
             "proxies must be (C, D) with D = %d as the features %s, got %s", features->shape[1],
             ct_shp(features), proxies ? ct_shp(proxies) : "NULL");
    const int N = features->shape[0], C = proxies->shape[0];
    CT_CHECK(N > 0 && features->shape[1] > 0, op, "features %s are empty", ct_shp(features));
    CT_CHECK(C >= 2, op, "needs at least 2 class proxies (a positive and a negative), got %s", ct_shp(proxies));
    check_circle_opts(op, opts);
    check_labels(op, labels, N, C);
    check_finite(op, "features", features);
    check_finite(op, "proxies", proxies);

    ct_tensor *pos = ct_tape_zeros(tape, CT_SHAPE(N, C));
    ct_tensor *neg = ct_tape_zeros(tape, CT_SHAPE(N, C));
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            const int is_label = c == labels.data[i];
            pos->data[(size_t)i * C + c] = (ct_real)is_label;
            neg->data[(size_t)i * C + c] = (ct_real)!is_label;
        }
    ct_tensor *e = ct_l2_normalize(tape, features, 1, 1e-12);
    ct_tensor *p = ct_l2_normalize(tape, proxies, 1, 1e-12);
    ct_tensor *S = ct_matmul_t(tape, e, 0, p, 1);
    ct_tensor *per = circle_per_anchor(tape, S, pos, neg, NULL, opts);
    return reduce_losses(tape, per, opts.reduction, N, CT_SHAPE(N));
}

/* ---- triplet margin loss ---------------------------------------------------------------------- */

static void check_triplet_opts(const char *op, ct_triplet_opts o) {
    check_reduction(op, o.reduction);
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
    check_finite(op, "anchor", anchor);
    check_finite(op, "positive", positive);
    check_finite(op, "negative", negative);
    const int N = anchor->shape[0];

    ct_tensor *d_ap = distance(tape, anchor, positive, opts);
    ct_tensor *d_an = distance(tape, anchor, negative, opts);
    if (opts.swap) d_an = ct_minimum(tape, d_an, distance(tape, positive, negative, opts));
    ct_tensor *per = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, d_ap, d_an), opts.margin));
    return reduce_losses(tape, per, opts.reduction, N, CT_SHAPE(N));
}

/* Mined forms on the pairwise distances D (N, N), D_ij = d(x_i, x_j).
 *   batch all:  T_apn = [D_ap − D_an + margin]₊ · valid_apn   (N, N, N) by broadcasting
 *               D (N, N, 1) against D (N, 1, N); valid_apn = [a ≠ p, y_p = y_a, y_n ≠ y_a]
 *               mean = Σ T / #(T_apn > 0), counted on the forward values (a constant of the
 *               backward, as in the reference implementations)
 *   batch hard: hp_a = max_{p ∈ P(a)} D_ap, hn_a = min_{n ∈ N(a)} D_an = −max(−D_an),
 *               ℓ_a = valid_a · [hp_a − hn_a + margin]₊, max sending the gradient to the first
 *               maximum, as ct_max does. */
ct_tensor *ct_triplet_mined_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_triplet_opts opts) {
    static const char *op = "ct_triplet_mined_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    const int N = features->shape[0], D = features->shape[1];
    CT_CHECK(N > 0 && D > 0, op, "features %s are empty", ct_shp(features));
    check_triplet_opts(op, opts);
    CT_CHECK(!opts.swap, op, "swap applies to the explicit form (ct_triplet_margin_loss) only");
    check_labels(op, labels, N, 0);
    check_finite(op, "features", features);
    const int *y = labels.data;

    ct_tensor *rows = ct_reshape(tape, features, CT_SHAPE(N, 1, D));
    ct_tensor *cols = ct_reshape(tape, features, CT_SHAPE(1, N, D));
    ct_tensor *dist = distance(tape, rows, cols, opts); /* (N, N) */

    if (opts.mining == CT_MINING_BATCH_ALL) {
        ct_tensor *valid = ct_tape_zeros(tape, CT_SHAPE(N, N, N));
        for (int a = 0; a < N; a++)
            for (int p = 0; p < N; p++) {
                if (p == a || y[p] != y[a]) continue;
                ct_real *v = valid->data + ((size_t)a * N + p) * N;
                for (int n = 0; n < N; n++) v[n] = (ct_real)(y[n] != y[a]);
            }
        ct_tensor *d_ap = ct_reshape(tape, dist, CT_SHAPE(N, N, 1));
        ct_tensor *d_an = ct_reshape(tape, dist, CT_SHAPE(N, 1, N));
        ct_tensor *t = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, d_ap, d_an), opts.margin));
        t = ct_mul(tape, t, valid);
        size_t positive = 0;
        for (size_t i = 0; i < t->size; i++) positive += t->data[i] > 0;
        ct_tensor *per = ct_sum(tape, ct_sum(tape, t, 2, 0), 1, 0); /* (N): each anchor's Σ */
        return reduce_losses(tape, per, opts.reduction, (double)positive, CT_SHAPE(N));
    }

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
    ct_tensor *minus_inf = constant(tape, -INFINITY);
    ct_tensor *hardest_pos = ct_max(tape, ct_where(tape, pos, dist, minus_inf), 1, 0);
    ct_tensor *hardest_neg = ct_neg(tape, ct_max(tape, ct_where(tape, neg, ct_neg(tape, dist), minus_inf), 1, 0));
    ct_tensor *per = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, hardest_pos, hardest_neg), opts.margin));
    per = ct_mul(tape, per, valid);
    return reduce_losses(tape, per, opts.reduction, n_valid, CT_SHAPE(N));
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
    check_reduction(op, opts.reduction);
    CT_CHECK(opts.lambda >= 0 && isfinite(opts.lambda), op, "lambda %g must be >= 0", opts.lambda);
    check_labels(op, labels, N, C);
    check_finite(op, "features", features);
    check_finite(op, "centers", centers);

    ct_tensor *c = ct_index_select(tape, centers, 0, labels.data, N);
    ct_tensor *diff = ct_sub(tape, features, c);
    ct_tensor *per = ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, diff, diff), 1, 0), opts.lambda / 2);
    return reduce_losses(tape, per, opts.reduction, N, CT_SHAPE(N));
}
