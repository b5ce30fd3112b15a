/* losses/embedding.c — losses on embeddings: SupCon / NT-Xent, Circle (pair and class forms),
 * triplet margin (explicit, batch-all, batch-hard) and center loss.
 *
 * SupCon and the two Circle forms are fused ops, one tape node each (the shared forward pieces and
 * backward are described above similarity_saved); the mined triplet loss uses two fused ops, the
 * pairwise L2 distances and the batch-all hinge, so that it builds no (N, N, D) or (N, N, N)
 * tensor. tests/test_loss_embedding_fused.c checks all of them against the same losses composed
 * from tape ops. The rest (the explicit triplet loss, batch hard on the distances, cosine
 * distances, center loss) is composed from tape ops and has no backward code of its own. Which
 * pairs or triplets count is decided from the labels:
 *   - in the fused ops, by comparing labels inside the pass over each row;
 *   - in the composed ones, by constant 0/1 masks: a set restricted by a mask enters a max through
 *     where(mask, x, −∞), so the excluded entries get no gradient; an anchor whose set is empty
 *     would make a row of −∞ only, so for such a row the mask is widened to the whole row (finite,
 *     meaningless) and the anchor's loss is multiplied by a constant 0: it is left out of the
 *     value, and 0·(finite gradient) = 0 leaves it out of the gradient too.
 * The mean of a loss is taken over the anchors (or triplets) that count, and a batch where none
 * counts gives 0 with a zero gradient, never 0/0. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/op.h"

#include <math.h>
#include <string.h>

/* ---- shared checks and constants ------------------------------------------------------------ */

static void check_reduction(const char *op, ct_reduction r) {
    CT_CHECK(r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE, op,
             "unknown reduction %d", (int)r);
}

/* 1 when every element of every given tensor (NULLs skipped) is finite. */
static int all_finite(const ct_tensor *a, const ct_tensor *b, const ct_tensor *c) {
    const ct_tensor *t[3] = {a, b, c};
    for (int k = 0; k < 3; k++)
        if (t[k] && !ct_all_finite(t[k]->data, t[k]->size)) return 0;
    return 1;
}

/* The loss of inputs with a NaN or ±inf: NaN (every element for none, of the shape the loss gives:
 * the features' leading dims), with a NaN gradient for every input. A non-finite feature is data,
 * not a programmer error, and an optimizer's guard needs a loss and gradients to look at; in the
 * fused losses it would meet masks and maxima that may drop it, so it is not passed through them.
 * As in PyTorch, where one such row reaches every anchor through the similarities or distances.
 * Composed as NaN·Σ x (+ NaN·Σ of the other inputs): no op of its own. */
static ct_tensor *nonfinite_loss(ct_tape *tape, ct_tensor *features, ct_tensor *b, ct_tensor *c, ct_reduction r) {
    ct_tensor *t = r == CT_REDUCTION_NONE ? ct_sum(tape, features, -1, 0) : ct_sum_all(tape, features);
    if (b) t = ct_add(tape, t, ct_reshape(tape, ct_sum_all(tape, b), CT_SHAPE(1)));
    if (c) t = ct_add(tape, t, ct_reshape(tape, ct_sum_all(tape, c), CT_SHAPE(1)));
    if (r != CT_REDUCTION_NONE && t->ndim) t = ct_reshape(tape, t, (ct_shape){.ndim = 0});
    return ct_mul_scalar(tape, t, NAN);
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

/* ---- fused cosine-similarity losses: shared pieces and one backward ----------------------------
 * SupCon and both Circle forms are functions of one similarity matrix
 *   S = σ·Â·B̂ᵀ  (R, K),   Â (R, D) the anchors, B̂ (K, D) what they are compared with,
 * B̂ = Â for SupCon and the Circle pair form (one input), the class proxies for the class form;
 * rows L2-normalised (SupCon optionally), σ = 1/τ for SupCon and 1 for Circle. The loss ℓ_r of
 * anchor r depends on row r of S only. Composed from tape ops each loss was a dozen nodes with
 * (R, K) masks and as many (R, K) temporaries; fused, each is one node:
 *   forward   normalise the rows (exactly ct_l2_normalize: x / max(‖x‖, 1e-12), the norm summed in
 *             double), S = σ·Â·B̂ᵀ into an (R, K) buffer, and one pass per row that computes ℓ_r
 *             and, when a gradient is wanted, overwrites the row with G_rk = ∂ℓ_r/∂S_rk. Every
 *             exponential is computed once, here.
 *   backward  with w_r the upstream weight of ℓ_r (dℓ/count for mean, dℓ for sum, dℓ_r for none)
 *             and dS = diag(w)·G:
 *               one input:  dÂ = σ·(dS + dSᵀ)·Â            (S = σ·Â·Âᵀ: both factors are Â)
 *               two inputs: dÂ = σ·dS·B̂,   dB̂ = σ·dSᵀ·Â
 *             then the normalisation's backward dx = (dx̂ − x̂·⟨x̂, dx̂⟩) / ‖x‖ per row.
 *             H = dS + dSᵀ is built once into a second (R, R) buffer, so the one-input backward is
 *             one GEMM, not two.
 * G itself is left as it is, so a second ct_backward over the same tape gives the same gradients.
 * Threads: each thread takes a block of rows and does everything for it — its rows of S and
 * their row pass in the forward; its rows of H, its GEMM and its rows of the normalisation's
 * backward in the backward — so a step has two fork/joins and nothing else to wait for; the GEMMs
 * run on the calling thread (blas_on_this_thread). Below PAR_MIN_MACS everything runs on one
 * thread, GEMMs included: W5's (256, 128) takes ~0.5 ms on one thread, and on this 2-core machine
 * with other work running every fork/join (OpenBLAS's own included) can wait a scheduler time
 * slice for the second thread — measured under load: 3–18 ms per step with 2 threads against
 * 0.7–0.9 ms on one, while on a quiet machine 2 threads could at best halve the ~0.5 ms.
 * Which pairs count comes from group numbers, not masks: anchor r's positives are the columns k
 * with col_group[k] = row_group[r] other than r itself, the other columns its negatives (SupCon:
 * the rest of its denominator). */

#define NORM_EPS 1e-12 /* the eps the composed losses gave ct_l2_normalize */
/* R·K·D (the multiply-adds of S) from which the rows are split among the threads (see above):
 * 2^27 is M = 1024 anchors of D = 128, ~10 ms of work on one thread. */
#define PAR_MIN_MACS ((size_t)1 << 27)

/* What the forward keeps for similarity_backward (in the arena). */
typedef struct {
    ct_real *grad_s;                /* (rows, cols): S, then G_rk = ∂ℓ_r/∂S_rk (0 rows: anchors that do not count) */
    const ct_real *a, *b;           /* Â (rows, dim) and B̂ (cols, dim); b == a for the one-input losses */
    const ct_real *a_norm, *b_norm; /* ‖x_r‖ of the inputs' rows, NULL where not normalised */
    int rows, cols, dim;
    double sigma;                   /* S = σ·Â·B̂ᵀ */
    double count;                   /* the mean's divisor: anchors that count (1 when none does) */
    int reduction;
} similarity_saved;

/* y_r = x_r / max(‖x_r‖, eps), norm_r = ‖x_r‖: ct_l2_normalize along the last axis. */
CT_KERNEL
static void normalize_rows(const ct_real *x, int rows, int dim, ct_real *y, ct_real *norm) {
    const ct_real eps = (ct_real)NORM_EPS;
    for (int r = 0; r < rows; r++) {
        const ct_real *restrict xr = x + (size_t)r * dim;
        ct_real *restrict yr = y + (size_t)r * dim;
        double ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int d = 0; d < dim; d++) ss += (double)xr[d] * xr[d];
        const ct_real n = (ct_real)sqrt(ss), rr = n >= eps ? n : eps;
        norm[r] = n;
        for (int d = 0; d < dim; d++) yr[d] = xr[d] / rr;
    }
}

/* dx_r += (dy_r − y_r·⟨y_r, dy_r⟩) / ‖x_r‖ where ‖x_r‖ ≥ eps; dy_r / eps where the clamp holds the
 * divisor constant (ct_l2_normalize's backward). norm == NULL (not normalised): dx += dy. */
CT_KERNEL
static void normalize_rows_backward(const ct_real *y, const ct_real *norm, const ct_real *dy, int rows,
                                    int dim, ct_real *dx) {
    if (!norm) {
        const size_t n = (size_t)rows * dim;
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    const ct_real eps = (ct_real)NORM_EPS;
    for (int r = 0; r < rows; r++) {
        const ct_real *restrict yr = y + (size_t)r * dim, *restrict dyr = dy + (size_t)r * dim;
        ct_real *restrict dxr = dx + (size_t)r * dim;
        const ct_real n = norm[r], rr = n >= eps ? n : eps;
        double dot = 0;
        if (n >= eps)
#pragma omp simd reduction(+ : dot)
            for (int d = 0; d < dim; d++) dot += (double)dyr[d] * yr[d];
        const ct_real dot_r = (ct_real)dot;
        for (int d = 0; d < dim; d++) dxr[d] += (dyr[d] - yr[d] * dot_r) / rr;
    }
}

/* Fills s->a, s->b (normalised copies, or the inputs' own data) and their norms, and allocates
 * the (rows, cols) buffer for S and G. x (rows, dim); y (cols, dim), or NULL for B̂ = Â. */
static void similarity_init(ct_tape *tape, const ct_real *x, int rows, const ct_real *y, int cols, int dim,
                            int normalize, double sigma, similarity_saved *s) {
    ct_arena *arena = ct_tape_arena(tape);
    s->rows = rows, s->cols = cols, s->dim = dim, s->sigma = sigma;
    s->a = x, s->b = y ? y : x, s->a_norm = s->b_norm = NULL;
    if (normalize) {
        ct_real *a = ct_arena_alloc(arena, (size_t)rows * dim * sizeof *a);
        ct_real *a_norm = ct_arena_alloc(arena, (size_t)rows * sizeof *a_norm);
        normalize_rows(x, rows, dim, a, a_norm);
        s->a = s->b = a, s->a_norm = s->b_norm = a_norm;
        if (y) {
            ct_real *b = ct_arena_alloc(arena, (size_t)cols * dim * sizeof *b);
            ct_real *b_norm = ct_arena_alloc(arena, (size_t)cols * sizeof *b_norm);
            normalize_rows(y, cols, dim, b, b_norm);
            s->b = b, s->b_norm = b_norm;
        }
    }
    s->grad_s = ct_arena_alloc(arena, (size_t)rows * cols * sizeof *s->grad_s);
}

static int split_rows(const similarity_saved *s) {
    return (size_t)s->rows * s->cols * s->dim >= PAR_MIN_MACS && ct_max_threads() > 1;
}

/* Inside a parallel region OpenBLAS (the OpenMP build ctape links) runs a GEMM on the calling
 * thread; in the one-thread case (an inactive region) it would start its own team for the GEMM,
 * sized by omp_get_max_threads(). Setting nthreads-var to 1 here keeps it on this thread: the
 * setting belongs to the region's implicit task and ends with the region (OpenMP ICV scoping). */
static void blas_on_this_thread(void) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* This thread's share [lo, hi) of n rows (all of them outside a parallel region). */
static void thread_block(int n, int *lo, int *hi) {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int t = 0, team = 1;
#endif
    *lo = (int)((long long)n * t / team);
    *hi = (int)((long long)n * (t + 1) / team);
}

/* The loss tensor from the per-anchor losses, and the saved reduction. */
static void similarity_output(ct_tensor *out, const double *loss, int rows, ct_reduction r, int counted,
                              similarity_saved *s) {
    double total = 0;
    for (int i = 0; i < rows; i++) {
        if (r == CT_REDUCTION_NONE) out->data[i] = (ct_real)loss[i];
        total += loss[i];
    }
    s->reduction = (int)r;
    s->count = counted > 0 ? counted : 1;
    if (r == CT_REDUCTION_SUM) out->data[0] = (ct_real)total;
    if (r == CT_REDUCTION_MEAN) out->data[0] = (ct_real)(total / s->count);
}

/* Rows [lo, hi) of H = diag(w)·G + (diag(w)·G)ᵀ (n, n): H_ij = w_i·G_ij + w_j·G_ji. Tile by tile,
 * the transposed tile of G is first read row by row into a small buffer, so both terms are then
 * read in memory order (a column walk of G costs a cache line per element). */
CT_KERNEL
static void symmetric_rows(ct_real *h, const ct_real *g, const ct_real *w, int n, int lo, int hi) {
    enum { TILE = 32 };
    ct_real gt[TILE][TILE]; /* gt[i − i0][j − j0] = G_ji */
    for (int i0 = lo; i0 < hi; i0 += TILE)
        for (int j0 = 0; j0 < n; j0 += TILE) {
            const int i1 = i0 + TILE < hi ? i0 + TILE : hi, j1 = j0 + TILE < n ? j0 + TILE : n;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) gt[i - i0][j - j0] = w[j] * g[(size_t)j * n + i];
            for (int i = i0; i < i1; i++) {
                const ct_real wi = w[i], *restrict gi = g + (size_t)i * n, *restrict ti = gt[i - i0] - j0;
                ct_real *restrict hi_row = h + (size_t)i * n;
#pragma omp simd
                for (int j = j0; j < j1; j++) hi_row[j] = wi * gi[j] + ti[j];
            }
        }
}

CT_KERNEL
static void similarity_backward(ct_tape *tape, ct_node *nd) {
    const similarity_saved *s = nd->extra;
    const int one_input = nd->n_in == 1;
    ct_real *dx_a = ct_grad_of(tape, nd->in[0]);
    ct_real *dx_b = one_input ? NULL : ct_grad_of(tape, nd->in[1]);
    if (!dx_a && !dx_b) return;
    const int R = s->rows, K = s->cols, D = s->dim;
    const ct_real *dout = nd->out->grad, *G = s->grad_s;
    const ct_real sigma = (ct_real)s->sigma;
    ct_arena *arena = ct_tape_arena(tape);
    ct_real *w = ct_arena_alloc(arena, (size_t)R * sizeof *w); /* upstream weight of each anchor */
    for (int r = 0; r < R; r++)
        w[r] = s->reduction == CT_REDUCTION_NONE ? dout[r]
               : s->reduction == CT_REDUCTION_SUM ? dout[0]
                                                  : (ct_real)(dout[0] / s->count);
    ct_real *da = dx_a ? ct_arena_alloc(arena, (size_t)R * D * sizeof *da) : NULL;
    ct_real *db = dx_b ? ct_arena_alloc(arena, (size_t)K * D * sizeof *db) : NULL;
    ct_real *h = dx_a && one_input ? ct_arena_alloc(arena, (size_t)R * R * sizeof *h) : NULL;
    ct_real *wa = NULL; /* diag(w)·Â, for dB̂ */
    if (db) {
        wa = ct_arena_alloc(arena, (size_t)R * D * sizeof *wa);
        for (int r = 0; r < R; r++)
            for (int d = 0; d < D; d++) wa[(size_t)r * D + d] = w[r] * s->a[(size_t)r * D + d];
    }
#pragma omp parallel if (split_rows(s)) /* one thread below PAR_MIN_MACS, GEMMs included */
    {
        blas_on_this_thread();
        int lo, hi;
        if (da) {
            thread_block(R, &lo, &hi);
            if (h) {
                symmetric_rows(h, G, w, R, lo, hi);
                ct_gemm(0, 0, hi - lo, D, R, sigma, h + (size_t)lo * R, R, s->a, D, 0, da + (size_t)lo * D, D);
            } else {
                ct_gemm(0, 0, hi - lo, D, K, sigma, G + (size_t)lo * K, K, s->b, D, 0, da + (size_t)lo * D, D);
                for (int r = lo; r < hi; r++)
                    for (int d = 0; d < D; d++) da[(size_t)r * D + d] *= w[r];
            }
            normalize_rows_backward(s->a + (size_t)lo * D, s->a_norm ? s->a_norm + lo : NULL, da + (size_t)lo * D,
                                    hi - lo, D, dx_a + (size_t)lo * D);
        }
        if (db) {
            thread_block(K, &lo, &hi);
            ct_gemm(1, 0, hi - lo, D, R, sigma, G + lo, K, wa, D, 0, db + (size_t)lo * D, D);
            normalize_rows_backward(s->b + (size_t)lo * D, s->b_norm ? s->b_norm + lo : NULL, db + (size_t)lo * D,
                                    hi - lo, D, dx_b + (size_t)lo * D);
        }
    }
}

/* The forward's parallel part: each thread computes its block of rows of S, then runs the loss's
 * row pass over them. Returns the number of anchors that count. */
typedef enum { ROWS_SUPCON, ROWS_CIRCLE } row_kind;
typedef struct {
    row_kind kind;
    const int *row_group, *col_group; /* SupCon: one array for both */
    int pair_form;                    /* Circle: column r is anchor r itself */
    double c;                         /* SupCon: τ/τ_base */
    ct_circle_opts circle;
    int want_grad;
    double *loss;                     /* (rows): ℓ_r */
    ct_real *scratch;                 /* Circle: cols per thread */
} row_job;

static int supcon_row(ct_real *restrict row, int a, int M, const int *restrict group, double c, int want_grad,
                      double *loss);
static int circle_row(ct_real *restrict row, ct_real *restrict e, int K, int self, int row_group,
                      const int *restrict col_group, ct_circle_opts o, int want_grad, double *loss);

CT_KERNEL
static int similarity_rows(similarity_saved *s, const row_job *job) {
    const int R = s->rows, K = s->cols, D = s->dim;
    int counted = 0;
#pragma omp parallel reduction(+ : counted) if (split_rows(s))
    {
        blas_on_this_thread();
        int lo, hi;
        thread_block(R, &lo, &hi);
        ct_gemm(0, 1, hi - lo, K, D, (ct_real)s->sigma, s->a + (size_t)lo * D, D, s->b, D, 0,
                s->grad_s + (size_t)lo * K, K);
        ct_real *e = job->scratch ? job->scratch + (size_t)ct_thread_id() * K : NULL;
        for (int r = lo; r < hi; r++) {
            ct_real *row = s->grad_s + (size_t)r * K;
            if (job->kind == ROWS_SUPCON)
                counted += supcon_row(row, r, K, job->row_group, job->c, job->want_grad, &job->loss[r]) > 0;
            else
                counted += circle_row(row, e, K, job->pair_form ? r : -1, job->row_group[r], job->col_group,
                                      job->circle, job->want_grad, &job->loss[r]);
        }
    }
    return counted;
}

/* ---- SupCon / NT-Xent ------------------------------------------------------------------------
 * features (N, V, D) are viewed as M = N·V anchors f_a, a = i·V + v (sample i, view v) — the
 * authors concatenate the views instead (a = v·N + i), which only permutes the anchors. Then
 *   S = F̂·F̂ᵀ/τ                                  (M, M), F̂ the rows normalised (.normalize)
 *   lse_a = log Σ_{k≠a} e^(S_ak)                 computed as m_a + log Σ_{k≠a} e^(S_ak − m_a),
 *                                                m_a = max_{k≠a} S_ak (the authors' detached max)
 *   ℓ_a = −(τ/τ_base)·(1/|P(a)|)·Σ_{p∈P(a)} (S_ap − lse_a) = −(τ/τ_base)·(mean_{P(a)} S_ap − lse_a)
 * which is the authors' mean_log_prob_pos; P(a) = the other views with a's label (without labels,
 * the other views of a's sample). Its gradient, with p_ak = e^(S_ak − lse_a) the softmax over k ≠ a:
 *   G_ak = ∂ℓ_a/∂S_ak = (τ/τ_base)·(p_ak − [k ∈ P(a)]/|P(a)|)        (0 at k = a)
 * An anchor without a positive has ℓ_a = 0 and G_a = 0 (M = 1 has none). */
CT_KERNEL
static int supcon_row(ct_real *restrict row, int a, int M, const int *restrict group, double c, int want_grad,
                      double *loss) {
    const int ga = group[a];
    row[a] = -INFINITY; /* k = a leaves the max, the sum and the softmax */
    ct_real m = -INFINITY;
    double pos_sum = 0;
    int n_pos = 0;
#pragma omp simd reduction(max : m) reduction(+ : pos_sum, n_pos)
    for (int k = 0; k < M; k++) {
        const int pos = (group[k] == ga) & (k != a);
        m = row[k] > m ? row[k] : m;
        pos_sum += pos ? (double)row[k] : 0.0;
        n_pos += pos;
    }
    if (n_pos == 0) {
        *loss = 0;
        if (want_grad) memset(row, 0, (size_t)M * sizeof *row);
        return 0;
    }
    ct_real z = 0; /* Σ_{k≠a} e^(S_ak − m), every exponent ≤ 0; e^(−∞) = 0 at k = a; each lane
                    * sums M/16 terms ≤ 1 (double accumulators keep GCC from vectorising) */
#pragma omp simd reduction(+ : z)
    for (int k = 0; k < M; k++) {
        const ct_real e = ct_exp_nonpositive(row[k] - m);
        row[k] = e;
        z += e;
    }
    *loss = -c * (pos_sum / n_pos - ((double)m + log(z)));
    if (want_grad) {
        const ct_real p_scale = (ct_real)(c / z), pos_weight = (ct_real)(c / n_pos);
#pragma omp simd
        for (int k = 0; k < M; k++) {
            const int pos = (group[k] == ga) & (k != a);
            row[k] = row[k] * p_scale - (pos ? pos_weight : 0);
        }
    }
    return n_pos;
}

const ct_op ct_op_supcon = {
    "supcon",
    "S = F̂F̂ᵀ/τ; ℓ_a = −(τ/τ_b)(mean_{P(a)} S_ap − lse_{k≠a} S_ak); dS_ak = w_a(τ/τ_b)(p_ak − [k∈P(a)]/|P(a)|)",
    similarity_backward};

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
    if (!all_finite(features, NULL, NULL)) return nonfinite_loss(tape, features, NULL, NULL, opts.reduction);

    ct_shape shape = opts.reduction != CT_REDUCTION_NONE ? (ct_shape){.ndim = 0}
                     : three_d                           ? CT_SHAPE(N, V)
                                                         : CT_SHAPE(N);
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, shape, &ct_op_supcon, &features, 1, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    int *group = ct_arena_alloc(arena, (size_t)M * sizeof *group); /* positives share a group */
    for (int a = 0; a < M; a++) group[a] = labels.data ? labels.data[a / V] : a / V;
    similarity_saved *s = ct_arena_alloc(arena, sizeof *s);
    similarity_init(tape, features->data, M, NULL, M, D, opts.normalize, 1.0 / opts.temperature, s);
    row_job job = {.kind = ROWS_SUPCON, .row_group = group, .col_group = group,
                   .c = opts.temperature / opts.base_temperature, .want_grad = nd != NULL,
                   .loss = ct_arena_alloc(arena, (size_t)M * sizeof *job.loss)};
    const int counted = similarity_rows(s, &job); /* anchors with a positive */
    similarity_output(out, job.loss, M, opts.reduction, counted, s);
    if (nd) nd->extra = s;
    return out;
}

/* ---- Circle loss -----------------------------------------------------------------------------
 * Row r of the cosines S (K columns), positives P and negatives N from the groups:
 *   lp_k = −γ·α_p·(s_k − Δ_p),  α_p = [1 + m − s_k]₊ detached,  Δ_p = 1 − m      (k ∈ P)
 *   ln_k =  γ·α_n·(s_k − Δ_n),  α_n = [s_k + m]₊ detached,      Δ_n = m          (k ∈ N)
 *   z = lse_P(lp) + lse_N(ln),   ℓ_r = softplus(z)   (PyTorch's: β = 1, z itself above 20)
 * The detached α make the weights constants in the backward: with σ(z) the softplus' slope
 * (1 above 20) and softmax_P(lp), softmax_N(ln) the logsumexps' gradients,
 *   G_rk = σ(z)·softmax_P(lp)_k·(−γ·α_p)   (k ∈ P),   σ(z)·softmax_N(ln)_k·(γ·α_n)   (k ∈ N),
 * the paper's eq. (7) with α fixed. With detach_weights = 0 the α are differentiated too (an
 * ablation; it is also the form a finite-difference gradient check can verify, since the detached
 * gradient is not the derivative of the loss value): ∂lp/∂s = −γ·(α_p − (s − Δ_p)·[1 + m − s > 0]),
 * ∂ln/∂s = γ·(α_n + (s − Δ_n)·[s + m > 0]) (relu'(0) = 0, as ct_relu).
 * An anchor without a positive or without a negative: ℓ_r = 0, G_r = 0, and it does not count.
 * e (K) is scratch for the exponentials. Returns 1 when the anchor counts. */
CT_KERNEL
static int circle_row(ct_real *restrict row, ct_real *restrict e, int K, int self, int row_group,
                      const int *restrict col_group, ct_circle_opts o, int want_grad, double *loss) {
    const ct_real m = (ct_real)o.m, gamma = (ct_real)o.gamma, one_plus_m = (ct_real)(1 + o.m);
    const ct_real delta_p = (ct_real)(1 - o.m), delta_n = (ct_real)o.m;
    ct_real max_p = -INFINITY, max_n = -INFINITY;
    int n_pos = 0, n_neg = 0;
#pragma omp simd reduction(max : max_p, max_n) reduction(+ : n_pos, n_neg)
    for (int k = 0; k < K; k++) {
        const ct_real s = row[k], ap = one_plus_m - s > 0 ? one_plus_m - s : 0, an = s + m > 0 ? s + m : 0;
        const ct_real lp = -gamma * ap * (s - delta_p), ln = gamma * an * (s - delta_n);
        const int same = col_group[k] == row_group, pos = same & (k != self), neg = !same;
        max_p = pos && lp > max_p ? lp : max_p;
        max_n = neg && ln > max_n ? ln : max_n;
        n_pos += pos;
        n_neg += neg;
    }
    if (n_pos == 0 || n_neg == 0) {
        *loss = 0;
        if (want_grad) memset(row, 0, (size_t)K * sizeof *row);
        return 0;
    }
    ct_real sum_p = 0, sum_n = 0; /* terms ≤ 1, K/16 per lane: float is plenty (see supcon_row) */
#pragma omp simd reduction(+ : sum_p, sum_n)
    for (int k = 0; k < K; k++) {
        const ct_real s = row[k], ap = one_plus_m - s > 0 ? one_plus_m - s : 0, an = s + m > 0 ? s + m : 0;
        const ct_real lp = -gamma * ap * (s - delta_p), ln = gamma * an * (s - delta_n);
        const int same = col_group[k] == row_group, pos = same & (k != self), neg = !same;
        const ct_real ek = ct_exp_nonpositive(pos ? lp - max_p : neg ? ln - max_n : (ct_real)-INFINITY);
        e[k] = ek;
        sum_p += pos ? ek : 0;
        sum_n += neg ? ek : 0;
    }
    const double z = (double)max_p + log(sum_p) + (double)max_n + log(sum_n);
    *loss = z > 20 ? z : (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
    if (!want_grad) return 1;
    const double slope = z > 20 ? 1 : z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
    const ct_real wp = (ct_real)(slope / sum_p), wn = (ct_real)(slope / sum_n);
    if (o.detach_weights) {
#pragma omp simd
        for (int k = 0; k < K; k++) {
            const ct_real s = row[k], ap = one_plus_m - s > 0 ? one_plus_m - s : 0, an = s + m > 0 ? s + m : 0;
            const int same = col_group[k] == row_group, pos = same & (k != self), neg = !same;
            row[k] = pos ? -wp * e[k] * gamma * ap : neg ? wn * e[k] * gamma * an : 0;
        }
    } else {
        for (int k = 0; k < K; k++) {
            const ct_real s = row[k], ap = one_plus_m - s > 0 ? one_plus_m - s : 0, an = s + m > 0 ? s + m : 0;
            const int same = col_group[k] == row_group, pos = same & (k != self), neg = !same;
            const ct_real dlp = -gamma * (ap - (one_plus_m - s > 0 ? s - delta_p : 0));
            const ct_real dln = gamma * (an + (s + m > 0 ? s - delta_n : 0));
            row[k] = pos ? wp * e[k] * dlp : neg ? wn * e[k] * dln : 0;
        }
    }
    return 1;
}

static void check_circle_opts(const char *op, ct_circle_opts o) {
    check_reduction(op, o.reduction);
    CT_CHECK(o.m >= 0 && o.m <= 1, op, "margin m = %g is outside [0, 1]", o.m);
    CT_CHECK(o.gamma > 0 && isfinite(o.gamma), op, "scale gamma = %g must be > 0", o.gamma);
}

const ct_op ct_op_circle = {
    "circle",
    "S = ÊÊᵀ; ℓ_i = softplus(lse_P(−γα_p(s−Δ_p)) + lse_N(γα_n(s−Δ_n))), α detached; dS = w_i·σ(z)·softmax·∂logit/∂s",
    similarity_backward};

/* Pair form: S = Ê·Êᵀ over the batch; for anchor i the positives are j ≠ i with y_j = y_i and the
 * negatives j with y_j ≠ y_i. */
ct_tensor *ct_circle_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_circle_opts opts) {
    static const char *op = "ct_circle_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    const int N = features->shape[0], D = features->shape[1];
    CT_CHECK(N > 0 && D > 0, op, "features %s are empty", ct_shp(features));
    check_circle_opts(op, opts);
    check_labels(op, labels, N, 0);
    if (!all_finite(features, NULL, NULL)) return nonfinite_loss(tape, features, NULL, NULL, opts.reduction);

    ct_node *nd;
    ct_shape shape = opts.reduction == CT_REDUCTION_NONE ? CT_SHAPE(N) : (ct_shape){.ndim = 0};
    ct_tensor *out = ct_op_output(tape, shape, &ct_op_circle, &features, 1, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    similarity_saved *s = ct_arena_alloc(arena, sizeof *s);
    similarity_init(tape, features->data, N, NULL, N, D, 1, 1.0, s);
    row_job job = {.kind = ROWS_CIRCLE, .row_group = labels.data, .col_group = labels.data, .pair_form = 1,
                   .circle = opts, .want_grad = nd != NULL,
                   .loss = ct_arena_alloc(arena, (size_t)N * sizeof *job.loss),
                   .scratch = ct_arena_alloc(arena, (size_t)ct_max_threads() * N * sizeof *job.scratch)};
    const int counted = similarity_rows(s, &job);
    similarity_output(out, job.loss, N, opts.reduction, counted, s);
    if (nd) nd->extra = s;
    return out;
}

const ct_op ct_op_circle_class = {
    "circle_class",
    "S = ÊP̂ᵀ; ℓ_i = softplus(−γα_p(s_iy−Δ_p) + lse_{c≠y}(γα_n(s_ic−Δ_n))), α detached; dS as circle",
    similarity_backward};

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
    const int N = features->shape[0], C = proxies->shape[0], D = features->shape[1];
    CT_CHECK(N > 0 && D > 0, op, "features %s are empty", ct_shp(features));
    CT_CHECK(C >= 2, op, "needs at least 2 class proxies (a positive and a negative), got %s", ct_shp(proxies));
    check_circle_opts(op, opts);
    check_labels(op, labels, N, C);
    if (!all_finite(features, proxies, NULL)) return nonfinite_loss(tape, features, proxies, NULL, opts.reduction);

    ct_node *nd;
    ct_shape shape = opts.reduction == CT_REDUCTION_NONE ? CT_SHAPE(N) : (ct_shape){.ndim = 0};
    ct_tensor *inputs[2] = {features, proxies};
    ct_tensor *out = ct_op_output(tape, shape, &ct_op_circle_class, inputs, 2, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    int *classes = ct_arena_alloc(arena, (size_t)C * sizeof *classes); /* column c is class c */
    for (int c = 0; c < C; c++) classes[c] = c;
    similarity_saved *s = ct_arena_alloc(arena, sizeof *s);
    similarity_init(tape, features->data, N, proxies->data, C, D, 1, 1.0, s);
    row_job job = {.kind = ROWS_CIRCLE, .row_group = labels.data, .col_group = classes, .pair_form = 0,
                   .circle = opts, .want_grad = nd != NULL,
                   .loss = ct_arena_alloc(arena, (size_t)N * sizeof *job.loss),
                   .scratch = ct_arena_alloc(arena, (size_t)ct_max_threads() * C * sizeof *job.scratch)};
    const int counted = similarity_rows(s, &job);
    similarity_output(out, job.loss, N, opts.reduction, counted, s);
    if (nd) nd->extra = s;
    return out;
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
    if (!all_finite(anchor, positive, negative)) return nonfinite_loss(tape, anchor, positive, negative, opts.reduction);
    const int N = anchor->shape[0];

    ct_tensor *d_ap = distance(tape, anchor, positive, opts);
    ct_tensor *d_an = distance(tape, anchor, negative, opts);
    if (opts.swap) d_an = ct_minimum(tape, d_an, distance(tape, positive, negative, opts));
    ct_tensor *per = ct_relu(tape, ct_add_scalar(tape, ct_sub(tape, d_ap, d_an), opts.margin));
    return reduce_losses(tape, per, opts.reduction, N, CT_SHAPE(N));
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
ct_tensor *ct_triplet_mined_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_triplet_opts opts) {
    static const char *op = "ct_triplet_mined_loss";
    CT_CHECK(features && features->ndim == 2, op, "features must be (N, D), got %s",
             features ? ct_shp(features) : "NULL");
    const int N = features->shape[0], D = features->shape[1];
    CT_CHECK(N > 0 && D > 0, op, "features %s are empty", ct_shp(features));
    check_triplet_opts(op, opts);
    CT_CHECK(!opts.swap, op, "swap applies to the explicit form (ct_triplet_margin_loss) only");
    check_labels(op, labels, N, 0);
    if (!all_finite(features, NULL, NULL)) return nonfinite_loss(tape, features, NULL, NULL, opts.reduction);
    const int *y = labels.data;

    ct_tensor *dist; /* (N, N) */
    if (opts.distance == CT_DISTANCE_L2) dist = pairwise_l2(tape, features, opts.eps);
    else {
        ct_tensor *e = ct_l2_normalize(tape, features, 1, 1e-12);
        dist = ct_add_scalar(tape, ct_neg(tape, ct_matmul_t(tape, e, 0, e, 1)), 1.0);
    }

    if (opts.mining == CT_MINING_BATCH_ALL) {
        size_t positive;
        ct_tensor *per = triplet_batch_all(tape, dist, y, opts.margin, &positive);
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
    check_labels(op, labels, N, C); /* a NaN or ±inf passes through these ops as in PyTorch: row by row */

    ct_tensor *c = ct_index_select(tape, centers, 0, labels.data, N);
    ct_tensor *diff = ct_sub(tape, features, c);
    ct_tensor *per = ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, diff, diff), 1, 0), opts.lambda / 2);
    return reduce_losses(tape, per, opts.reduction, N, CT_SHAPE(N));
}
