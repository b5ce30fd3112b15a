/* losses/metrics.c — what training loops report beside the loss. */
#define CT_BUILDING_LIBRARY
#include "losses.h"

int ct_count_correct(const ct_tensor *logits, ct_labels labels) {
    CT_CHECK(logits && logits->ndim == 2, "ct_count_correct", "logits must be 2-D (N, C)");
    const int N = logits->shape[0], C = logits->shape[1];
    CT_CHECK(labels.n == N, "ct_count_correct", "%d labels for %d rows of logits", labels.n, N);
    int correct = 0;
    for (int i = 0; i < N; i++) {
        const ct_real *row = logits->data + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++) best = row[c] > row[best] ? c : best;
        correct += best == labels.data[i];
    }
    return correct;
}

/* ---- ct_metrics ------------------------------------------------------------------------------ */
#include "metrics.h"
#include "../core/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAGIC 0x6d657472u

struct ct_metrics {
    unsigned magic;
    int classes;
    ct_metrics_opts o;
    long *confusion;      /* C × C, row = true */
    long n, nonfinite, top_k_correct;
    double nll_sum, brier_sum;
    double *confidence;   /* per sample p_ŷ, for the equal-mass bins */
    unsigned char *correct;
    long capacity;
    double *p;            /* one row's probabilities */
};

static void check_handle(const char *op, const ct_metrics *m) {
    CT_CHECK(m && m->magic == METRICS_MAGIC, op, "not a live ct_metrics (NULL, freed, or never made by ct_metrics_new)");
}

ct_metrics *ct_metrics_new(int classes, ct_metrics_opts o) {
    static const char *op = "ct_metrics_new";
    CT_CHECK(classes >= 1 && o.bins >= 1 && o.top_k >= 1 && (unsigned)o.transform <= CT_EVAL_STABLEMAX, op,
             "classes %d, bins %d, top_k %d (each >= 1), transform %d", classes, o.bins, o.top_k, (int)o.transform);
    ct_metrics *m = calloc(1, sizeof *m);
    long *confusion = calloc((size_t)classes * (size_t)classes, sizeof *confusion);
    double *p = malloc((size_t)classes * sizeof *p);
    if (!m || !confusion || !p) {
        free(m), free(confusion), free(p);
        ct_set_error(CT_ERR_MEMORY, "%s: no memory for %d classes", op, classes);
        return NULL;
    }
    if (o.transform == CT_EVAL_AUTO) o.transform = CT_EVAL_SOFTMAX; /* no loss here to ask */
    m->magic = METRICS_MAGIC, m->classes = classes, m->o = o, m->confusion = confusion, m->p = p;
    return m;
}

void ct_metrics_free(ct_metrics *m) {
    if (!m) return;
    check_handle("ct_metrics_free", m);
    m->magic = 0;
    free(m->confusion), free(m->confidence), free(m->correct), free(m->p), free(m);
}

void ct_metrics_reset(ct_metrics *m) {
    check_handle("ct_metrics_reset", m);
    memset(m->confusion, 0, (size_t)m->classes * (size_t)m->classes * sizeof *m->confusion);
    m->n = m->nonfinite = m->top_k_correct = 0;
    m->nll_sum = m->brier_sum = 0;
}

int ct_metrics_classes(const ct_metrics *m) {
    check_handle("ct_metrics_classes", m);
    return m->classes;
}

static int reserve(ct_metrics *m, long more) {
    if (m->n + more <= m->capacity) return CT_OK;
    long cap = m->capacity ? m->capacity : 1024;
    while (cap < m->n + more) cap *= 2;
    double *conf = realloc(m->confidence, (size_t)cap * sizeof *conf);
    if (conf) m->confidence = conf;
    unsigned char *correct = conf ? realloc(m->correct, (size_t)cap) : NULL;
    if (correct) m->correct = correct;
    if (!conf || !correct) return ct_set_error(CT_ERR_MEMORY, "ct_metrics_add: no memory for %ld samples", cap);
    m->capacity = cap;
    return CT_OK;
}

/* One sample from its scores (logits or probabilities: any order-preserving form) and m->p. */
static void add_sample(ct_metrics *m, const ct_real *score, int y, int finite, double log_p_y) {
    const int C = m->classes;
    int pred = 0, above = 0;
    for (int c = 0; c < C; c++) {
        if (isnan(score[c])) { /* torch.argmax: the first NaN wins */
            if (!isnan(score[pred])) pred = c;
        } else if (!isnan(score[pred]) && score[c] > score[pred]) pred = c;
        above += score[c] > score[y];
    }
    const int k = m->o.top_k < C ? m->o.top_k : C;
    m->top_k_correct += !isnan(score[y]) && above < k;
    m->confusion[(size_t)y * C + pred]++;
    double brier = 0;
    for (int c = 0; c < C; c++) brier += (m->p[c] - (c == y)) * (m->p[c] - (c == y));
    m->nll_sum += finite ? -log_p_y : NAN;
    m->brier_sum += finite ? brier : NAN;
    m->confidence[m->n] = finite ? m->p[pred] : NAN;
    m->correct[m->n] = pred == y;
    m->nonfinite += !finite;
    m->n++;
}

/* p = transform(z) for one row of C logits; returns log p_y (finite rows only). */
static double transform_row(ct_eval_transform t, const ct_real *z, int C, int y, double *p) {
    double sum = 0;
    if (t == CT_EVAL_SOFTMAX) {
        double mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < C; c++) sum += p[c] = exp((double)z[c] - mx);
        for (int c = 0; c < C; c++) p[c] /= sum;
        return ((double)z[y] - mx) - log(sum);
    }
    for (int c = 0; c < C; c++) {
        const double x = z[c];
        if (t == CT_EVAL_SIGMOID) p[c] = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
        else p[c] = x >= 0 ? x + 1 : 1 / (1 - x);
        sum += p[c];
    }
    for (int c = 0; c < C; c++) p[c] /= sum;
    return log(p[y]);
}

static void check_labels(const char *op, const ct_metrics *m, const int *labels, int n) {
    CT_CHECK(n >= 0 && (labels || n == 0), op, "%d labels at %p", n, (const void *)labels);
    for (int i = 0; i < n; i++)
        CT_CHECK(labels[i] >= 0 && labels[i] < m->classes, op, "label %d of sample %d is out of range for C = %d classes",
                 labels[i], i, m->classes);
}

int ct_metrics_add(ct_metrics *m, const ct_tensor *logits, ct_labels labels) {
    static const char *op = "ct_metrics_add";
    check_handle(op, m);
    CT_CHECK(logits && logits->ndim == 2 && logits->shape[1] == m->classes, op,
             "logits must be (N, %d) for %d classes, got %s", m->classes, m->classes,
             logits ? (logits->ndim == 2 ? "another width" : "not 2-D") : "NULL");
    const int N = logits->shape[0], C = m->classes;
    CT_CHECK(labels.n == N, op, "%d labels for %d rows of logits", labels.n, N);
    check_labels(op, m, labels.data, N);
    const int status = reserve(m, N);
    if (status) return status;
    for (int i = 0; i < N; i++) {
        const ct_real *z = logits->data + (size_t)i * C;
        int finite = 1;
        for (int c = 0; c < C; c++) finite &= isfinite(z[c]) != 0;
        const double log_p = finite ? transform_row(m->o.transform, z, C, labels.data[i], m->p) : NAN;
        if (!finite)
            for (int c = 0; c < C; c++) m->p[c] = NAN;
        add_sample(m, z, labels.data[i], finite, log_p);
    }
    return CT_OK;
}

int ct_metrics_add_probs(ct_metrics *m, const ct_real *probs, const int *labels, int n) {
    static const char *op = "ct_metrics_add_probs";
    check_handle(op, m);
    CT_CHECK(probs || n == 0, op, "probs is NULL for %d samples", n);
    check_labels(op, m, labels, n);
    const int status = reserve(m, n);
    if (status) return status;
    const int C = m->classes;
    for (int i = 0; i < n; i++) {
        const ct_real *q = probs + (size_t)i * C;
        int finite = 1;
        for (int c = 0; c < C; c++) finite &= isfinite(q[c]) != 0, m->p[c] = q[c];
        add_sample(m, q, labels[i], finite, log((double)q[labels[i]]));
    }
    return CT_OK;
}

const long *ct_metrics_confusion(const ct_metrics *m) {
    check_handle("ct_metrics_confusion", m);
    return m->confusion;
}

void ct_metrics_per_class(const ct_metrics *m, double *precision, double *recall, double *f1, long *support) {
    check_handle("ct_metrics_per_class", m);
    const int C = m->classes;
    for (int c = 0; c < C; c++) {
        long tp = m->confusion[(size_t)c * C + c], in_row = 0, in_col = 0;
        for (int k = 0; k < C; k++) in_row += m->confusion[(size_t)c * C + k], in_col += m->confusion[(size_t)k * C + c];
        const double P = in_col ? (double)tp / (double)in_col : 0, R = in_row ? (double)tp / (double)in_row : 0;
        if (precision) precision[c] = P;
        if (recall) recall[c] = R;
        if (f1) f1[c] = P + R > 0 ? 2 * P * R / (P + R) : 0;
        if (support) support[c] = in_row;
    }
}

/* Equal-width bin of a confidence: (b/B, (b+1)/B], with 0 in the first. */
static int width_bin(double conf, int B) {
    const int b = (int)ceil(conf * B) - 1;
    return b < 0 ? 0 : b >= B ? B - 1 : b;
}

void ct_metrics_reliability(const ct_metrics *m, double *accuracy, double *confidence, long *count) {
    check_handle("ct_metrics_reliability", m);
    const int B = m->o.bins;
    for (int b = 0; b < B; b++) accuracy[b] = confidence[b] = 0, count[b] = 0;
    for (long i = 0; i < m->n; i++) {
        if (isnan(m->confidence[i])) continue;
        const int b = width_bin(m->confidence[i], B);
        accuracy[b] += m->correct[i], confidence[b] += m->confidence[i], count[b]++;
    }
    for (int b = 0; b < B; b++)
        if (count[b]) accuracy[b] /= (double)count[b], confidence[b] /= (double)count[b];
}

typedef struct {
    double conf;
    unsigned char correct;
} scored;

static int by_confidence(const void *a, const void *b) {
    const double x = ((const scored *)a)->conf, y = ((const scored *)b)->conf;
    return (x > y) - (x < y);
}

/* ECE over equal-mass bins: the samples in order of confidence, bin b = samples [b·N/B, (b+1)·N/B). */
static double ece_equal_mass(const ct_metrics *m) {
    scored *s = malloc((size_t)(m->n ? m->n : 1) * sizeof *s);
    if (!s) return NAN;
    for (long i = 0; i < m->n; i++) s[i] = (scored){m->confidence[i], m->correct[i]};
    qsort(s, (size_t)m->n, sizeof *s, by_confidence);
    const int B = m->o.bins;
    double ece = 0;
    for (int b = 0; b < B; b++) {
        const long lo = (long)((double)b * (double)m->n / B), hi = (long)((double)(b + 1) * (double)m->n / B);
        if (hi <= lo) continue;
        double acc = 0, conf = 0;
        for (long i = lo; i < hi; i++) acc += s[i].correct, conf += s[i].conf;
        ece += fabs(acc - conf) / (double)m->n;
    }
    free(s);
    return ece;
}

ct_metrics_result ct_metrics_compute(const ct_metrics *m) {
    check_handle("ct_metrics_compute", m);
    const int C = m->classes;
    ct_metrics_result r = {.n = m->n, .nonfinite = m->nonfinite, .top_k = m->o.top_k < C ? m->o.top_k : C};
    if (!m->n) {
        r.accuracy = r.top_k_accuracy = r.balanced_accuracy = r.precision = r.recall = r.f1 = NAN;
        r.nll = r.brier = r.ece = r.ece_equal_mass = NAN;
        return r;
    }
    const double n = (double)m->n;
    long correct = 0;
    for (int c = 0; c < C; c++) correct += m->confusion[(size_t)c * C + c];
    r.accuracy = (double)correct / n;
    r.top_k_accuracy = (double)m->top_k_correct / n;
    double *P = malloc(3 * (size_t)C * sizeof *P);
    long *support = malloc((size_t)C * sizeof *support);
    if (P && support) {
        ct_metrics_per_class(m, P, P + C, P + 2 * C, support);
        int present = 0, occurring = 0;
        for (int c = 0; c < C; c++) {
            long predicted = 0;
            for (int k = 0; k < C; k++) predicted += m->confusion[(size_t)k * C + c];
            if (support[c]) occurring++, r.balanced_accuracy += P[C + c];
            if (!support[c] && !predicted) continue; /* scikit-learn averages over the labels that occur */
            present++, r.precision += P[c], r.recall += P[C + c], r.f1 += P[2 * C + c];
        }
        r.precision /= present, r.recall /= present, r.f1 /= present;
        r.balanced_accuracy /= occurring;
    } else {
        r.precision = r.recall = r.f1 = r.balanced_accuracy = NAN;
    }
    free(P), free(support);
    r.nll = m->nll_sum / n;
    r.brier = m->brier_sum / n;
    double ece = 0;
    const int B = m->o.bins;
    double *acc = calloc((size_t)B * 2, sizeof *acc);
    long *count = calloc((size_t)B, sizeof *count);
    if (acc && count && !m->nonfinite) {
        ct_metrics_reliability(m, acc, acc + B, count);
        for (int b = 0; b < B; b++) ece += (double)count[b] / n * fabs(acc[b] - acc[B + b]);
        r.ece = ece;
        r.ece_equal_mass = ece_equal_mass(m);
    } else {
        r.ece = r.ece_equal_mass = NAN;
    }
    free(acc), free(count);
    return r;
}

/* ---- kNN accuracy ----------------------------------------------------------------------------- */
double ct_knn_accuracy(const ct_tensor *reference, const int *reference_labels, const ct_tensor *queries,
                       const int *query_labels, int k, int classes) {
    static const char *op = "ct_knn_accuracy";
    CT_CHECK(reference && queries && reference->ndim == 2 && queries->ndim == 2 &&
                 reference->shape[1] == queries->shape[1] && reference_labels && query_labels,
             op, "reference (N, D) and queries (M, D) with labels for both");
    const int N = reference->shape[0], M = queries->shape[0], D = reference->shape[1];
    CT_CHECK(k >= 1 && k <= N && classes >= 1, op, "k = %d for %d reference rows (1..N), %d classes", k, N, classes);
    for (int i = 0; i < N; i++)
        CT_CHECK(reference_labels[i] >= 0 && reference_labels[i] < classes, op, "reference label %d of row %d",
                 reference_labels[i], i);
    for (int i = 0; i < M; i++)
        CT_CHECK(query_labels[i] >= 0 && query_labels[i] < classes, op, "query label %d of row %d", query_labels[i], i);
    if (!ct_all_finite(reference->data, reference->size) || !ct_all_finite(queries->data, queries->size))
        return NAN;
    /* unit rows, then one GEMM for every cosine similarity */
    ct_real *a = malloc((size_t)N * D * sizeof *a), *b = malloc((size_t)M * D * sizeof *b),
            *sim = malloc((size_t)M * N * sizeof *sim);
    int *best = malloc((size_t)k * sizeof *best);
    double *votes = malloc((size_t)classes * 2 * sizeof *votes);
    if (!a || !b || !sim || !best || !votes) {
        free(a), free(b), free(sim), free(best), free(votes);
        ct_set_error(CT_ERR_MEMORY, "%s: no memory for %d x %d similarities", op, M, N);
        return NAN;
    }
    for (int pass = 0; pass < 2; pass++) {
        const ct_tensor *x = pass ? queries : reference;
        ct_real *out = pass ? b : a;
        for (int i = 0; i < x->shape[0]; i++) {
            double ss = 0;
            for (int d = 0; d < D; d++) ss += (double)x->data[(size_t)i * D + d] * x->data[(size_t)i * D + d];
            const double inv = ss > 0 ? 1 / sqrt(ss) : 0;
            for (int d = 0; d < D; d++) out[(size_t)i * D + d] = (ct_real)(x->data[(size_t)i * D + d] * inv);
        }
    }
    ct_gemm(0, 1, M, N, D, 1, b, D, a, D, 0, sim, N);
    long right = 0;
    for (int q = 0; q < M; q++) {
        const ct_real *s = sim + (size_t)q * N;
        int have = 0; /* best[0..have) sorted by decreasing similarity */
        for (int j = 0; j < N; j++) {
            if (have == k && s[j] <= s[best[k - 1]]) continue;
            int at = have < k ? have++ : k - 1;
            while (at > 0 && s[best[at - 1]] < s[j]) best[at] = best[at - 1], at--;
            best[at] = j;
        }
        memset(votes, 0, (size_t)classes * 2 * sizeof *votes);
        for (int t = 0; t < have; t++) votes[reference_labels[best[t]]] += 1, votes[classes + reference_labels[best[t]]] += s[best[t]];
        int win = 0;
        for (int c = 1; c < classes; c++)
            if (votes[c] > votes[win] || (votes[c] == votes[win] && votes[classes + c] > votes[classes + win])) win = c;
        right += win == query_labels[q];
    }
    free(a), free(b), free(sim), free(best), free(votes);
    return (double)right / (M ? M : 1);
}

/* ---- linear probe ------------------------------------------------------------------------------ */
/* Softmax regression in double on standardised features:
 *   P = softmax(X·W + b),  J = −(1/N)·Σ log P_iy + λ/2·‖W‖²
 *   ∂J/∂W = Xᵀ(P − Y)/N + λW,  ∂J/∂b = Σ_i (P − Y)_i / N
 * with step 1/L for L = (the largest eigenvalue of XᵀX/N, at most D on standardised columns)/2 + λ,
 * a bound on the curvature of the softmax loss, and Nesterov's momentum. */
static void probe_scores(const double *X, int N, int D, const double *W, const double *b, int C, double *S) {
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            double z = b[c];
            for (int d = 0; d < D; d++) z += X[(size_t)i * D + d] * W[(size_t)d * C + c];
            S[(size_t)i * C + c] = z;
        }
}

double ct_linear_probe_accuracy(const ct_tensor *train, const int *train_labels, const ct_tensor *test,
                                const int *test_labels, int classes, int iterations, double l2) {
    static const char *op = "ct_linear_probe_accuracy";
    CT_CHECK(train && test && train->ndim == 2 && test->ndim == 2 && train->shape[1] == test->shape[1] &&
                 train_labels && test_labels && classes >= 2 && iterations >= 0 && l2 >= 0,
             op, "train (N, D) and test (M, D) with labels, classes >= 2, iterations >= 0, l2 >= 0");
    const int N = train->shape[0], M = test->shape[0], D = train->shape[1], C = classes;
    for (int i = 0; i < N; i++)
        CT_CHECK(train_labels[i] >= 0 && train_labels[i] < C, op, "train label %d of row %d", train_labels[i], i);
    for (int i = 0; i < M; i++)
        CT_CHECK(test_labels[i] >= 0 && test_labels[i] < C, op, "test label %d of row %d", test_labels[i], i);
    if (!ct_all_finite(train->data, train->size) || !ct_all_finite(test->data, test->size) || N == 0) return NAN;
    if (!iterations) iterations = 300;
    if (l2 == 0) l2 = 1e-4;
    double *X = malloc(((size_t)N + (size_t)M) * D * sizeof *X), *mu = calloc((size_t)D, sizeof *mu),
           *sd = calloc((size_t)D, sizeof *sd), *W = calloc((size_t)D * C, sizeof *W), *V = calloc((size_t)D * C, sizeof *V),
           *b = calloc((size_t)C, sizeof *b), *vb = calloc((size_t)C, sizeof *vb), *G = malloc((size_t)D * C * sizeof *G),
           *gb = malloc((size_t)C * sizeof *gb), *S = malloc(((size_t)N > (size_t)M ? (size_t)N : (size_t)M) * C * sizeof *S),
           *Wl = malloc((size_t)D * C * sizeof *Wl), *bl = malloc((size_t)C * sizeof *bl);
    double accuracy = NAN;
    if (!X || !mu || !sd || !W || !V || !b || !vb || !G || !gb || !S || !Wl || !bl) goto done;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mu[d] += train->data[(size_t)i * D + d] / (double)N;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) {
            const double e = train->data[(size_t)i * D + d] - mu[d];
            sd[d] += e * e / (double)N;
        }
    for (int d = 0; d < D; d++) sd[d] = sd[d] > 1e-24 ? sqrt(sd[d]) : 1;
    for (int i = 0; i < N + M; i++) {
        const ct_real *row = i < N ? train->data + (size_t)i * D : test->data + (size_t)(i - N) * D;
        for (int d = 0; d < D; d++) X[(size_t)i * D + d] = (row[d] - mu[d]) / sd[d];
    }
    const double step = 1 / (0.5 * D + l2);
    for (int t = 0; t < iterations; t++) {
        /* look-ahead point W + μ·V (Nesterov), μ = t/(t + 3) */
        const double momentum = (double)t / (t + 3);
        for (size_t k = 0; k < (size_t)D * C; k++) Wl[k] = W[k] + momentum * V[k];
        for (int c = 0; c < C; c++) bl[c] = b[c] + momentum * vb[c];
        probe_scores(X, N, D, Wl, bl, C, S);
        memset(G, 0, (size_t)D * C * sizeof *G), memset(gb, 0, (size_t)C * sizeof *gb);
        for (int i = 0; i < N; i++) {
            double *s = S + (size_t)i * C, mx = s[0], sum = 0;
            for (int c = 1; c < C; c++) mx = s[c] > mx ? s[c] : mx;
            for (int c = 0; c < C; c++) sum += s[c] = exp(s[c] - mx);
            for (int c = 0; c < C; c++) {
                const double r = (s[c] / sum - (c == train_labels[i])) / N;
                gb[c] += r;
                for (int d = 0; d < D; d++) G[(size_t)d * C + c] += X[(size_t)i * D + d] * r;
            }
        }
        for (size_t k = 0; k < (size_t)D * C; k++) {
            const double g = G[k] + l2 * Wl[k], next = Wl[k] - step * g;
            V[k] = next - W[k], W[k] = next;
        }
        for (int c = 0; c < C; c++) {
            const double next = bl[c] - step * gb[c];
            vb[c] = next - b[c], b[c] = next;
        }
    }
    probe_scores(X + (size_t)N * D, M, D, W, b, C, S);
    long right = 0;
    for (int i = 0; i < M; i++) {
        int best = 0;
        for (int c = 1; c < C; c++) best = S[(size_t)i * C + c] > S[(size_t)i * C + best] ? c : best;
        right += best == test_labels[i];
    }
    accuracy = M ? (double)right / M : NAN;
done:
    free(X), free(mu), free(sd), free(W), free(V), free(b), free(vb), free(G), free(gb), free(S), free(Wl), free(bl);
    return accuracy;
}
