/* losses/analysis.c — temperature scaling, neural collapse, softmax-collapse logit statistics
 * (the definitions are in analysis.h). Everything is computed in double from the ct_real inputs. */
#define CT_BUILDING_LIBRARY
#include "analysis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_logits(const char *op, const ct_tensor *logits, ct_labels labels, int min_classes) {
    CT_CHECK(logits && logits->ndim == 2, op, "logits must be a 2-D tensor (N, C), got %s",
             logits ? "another rank" : "NULL");
    const int N = logits->shape[0], C = logits->shape[1];
    CT_CHECK(C >= min_classes, op, "logits have %d classes; at least %d are needed", C, min_classes);
    CT_CHECK(labels.n == N, op, "%d labels for %d rows of logits", labels.n, N);
    CT_CHECK(labels.data || N == 0, op, "labels are NULL for %d rows", N);
    for (int i = 0; i < N; i++)
        CT_CHECK(labels.data[i] >= 0 && labels.data[i] < C, op,
                 "label %d of sample %d is out of range for C = %d classes", labels.data[i], i, C);
}

/* The first row holding a NaN or infinite value, or −1. */
static int first_nonfinite_row(const ct_real *x, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < cols; c++)
            if (!isfinite(x[(size_t)i * cols + c])) return i;
    return -1;
}

/* ==== temperature scaling ====================================================================
 * With β = 1/T, u_c = z_c − max z (so every e^(βu) <= 1), per row:
 *   log Σ_c e^(β z_c) = β·max z + log Σ_c e^(β u_c)
 *   E_p[z] = max z + Σ_c p_c u_c,   Var_p[z] = Σ_c p_c (u_c − Σ p u)²,   p = softmax(β u)
 * and f, f', f'' are their means (analysis.h). */
typedef struct {
    double f, d1, d2;
} nll_at;

static nll_at nll_beta(const ct_real *z, const int *y, int N, int C, double beta) {
    nll_at r = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        const ct_real *row = z + (size_t)i * C;
        double mx = row[0];
        for (int c = 1; c < C; c++) mx = row[c] > mx ? row[c] : mx;
        double s = 0, mean_u = 0;
        for (int c = 0; c < C; c++) {
            const double u = (double)row[c] - mx, e = exp(beta * u);
            s += e, mean_u += e * u;
        }
        mean_u /= s;
        double var = 0;
        for (int c = 0; c < C; c++) {
            const double u = (double)row[c] - mx;
            var += exp(beta * u) * (u - mean_u) * (u - mean_u);
        }
        const double zy = row[y[i]];
        r.f += beta * mx + log(s) - beta * zy;
        r.d1 += mx + mean_u - zy;
        r.d2 += var / s;
    }
    r.f /= N, r.d1 /= N, r.d2 /= N;
    return r;
}

/* ECE (equal-width, equal-mass) of logits by ct_metrics. */
static int metrics_ece(const ct_tensor *logits, ct_labels labels, int bins, double *ece, double *ece_mass) {
    ct_metrics *m = ct_metrics_new(logits->shape[1], CT_METRICS(.bins = bins));
    if (!m) return CT_ERR_MEMORY;
    const int status = ct_metrics_add(m, logits, labels);
    if (status == CT_OK) {
        const ct_metrics_result r = ct_metrics_compute(m);
        *ece = r.ece, *ece_mass = r.ece_equal_mass;
    }
    ct_metrics_free(m);
    return status;
}

int ct_temperature_fit(const ct_tensor *logits, ct_labels labels, ct_temperature_opts o, ct_temperature_result *out) {
    static const char *op = "ct_temperature_fit";
    check_logits(op, logits, labels, 2);
    CT_CHECK(out, op, "out is NULL");
    CT_CHECK(isfinite(o.t_min) && isfinite(o.t_max) && o.t_min > 0 && o.t_min < o.t_max, op,
             "the range of T must be 0 < t_min < t_max, finite: got t_min %g, t_max %g", o.t_min, o.t_max);
    CT_CHECK(o.tol > 0 && o.max_iter >= 1 && o.bins >= 1, op, "tol %g (> 0), max_iter %d (>= 1), bins %d (>= 1)",
             o.tol, o.max_iter, o.bins);
    const int N = logits->shape[0], C = logits->shape[1];
    const double nan = NAN;
    *out = (ct_temperature_result){nan, 0, 0, nan, nan, nan, nan, nan, nan};
    if (N == 0) return ct_set_error(CT_ERR_VALUE, "%s: no samples to fit on", op);
    const int bad = first_nonfinite_row(logits->data, N, C);
    if (bad >= 0) return ct_set_error(CT_ERR_VALUE, "%s: row %d of the logits holds a NaN or infinite value", op, bad);

    double lo = 1 / o.t_max, hi = 1 / o.t_min, beta;
    const nll_at at_lo = nll_beta(logits->data, labels.data, N, C, lo);
    const nll_at at_hi = nll_beta(logits->data, labels.data, N, C, hi);
    if (at_lo.d1 >= 0) { /* the NLL rises from β = 1/t_max on: the largest T */
        beta = lo, out->at_bound = 1;
    } else if (at_hi.d1 <= 0) { /* still falling at β = 1/t_min: the smallest T */
        beta = hi, out->at_bound = 1;
    } else {
        beta = 1 < lo ? lo : 1 > hi ? hi : 1;
        for (int it = 1; it <= o.max_iter; it++) {
            const nll_at d = nll_beta(logits->data, labels.data, N, C, beta);
            out->iterations = it;
            if (d.d1 == 0) break;
            if (d.d1 < 0) lo = beta;
            else hi = beta;
            /* Newton step on f'(β) = 0, bisection when it leaves the bracket (near the root a step
             * below an ulp lands on its end: that is convergence, not a reason to bisect) */
            double next = beta - d.d1 / d.d2;
            if (!(d.d2 > 0) || !(next >= lo && next <= hi)) next = 0.5 * (lo + hi);
            const double step = fabs(next - beta);
            beta = next;
            if (step <= o.tol * beta) break;
        }
    }
    out->temperature = 1 / beta;
    out->nll_before = nll_beta(logits->data, labels.data, N, C, 1).f;
    out->nll_after = nll_beta(logits->data, labels.data, N, C, beta).f;

    int status = metrics_ece(logits, labels, o.bins, &out->ece_before, &out->ece_equal_mass_before);
    if (status) return status;
    ct_tensor *scaled = ct_tensor_new(ct_tensor_shape(logits));
    for (size_t k = 0; k < scaled->size; k++) scaled->data[k] = (ct_real)((double)logits->data[k] * beta);
    status = metrics_ece(scaled, labels, o.bins, &out->ece_after, &out->ece_equal_mass_after);
    ct_tensor_free(scaled);
    return status;
}

void ct_temperature_apply(ct_tensor *logits, double temperature) {
    static const char *op = "ct_temperature_apply";
    CT_CHECK(logits, op, "logits is NULL");
    CT_CHECK(isfinite(temperature) && temperature > 0, op, "the temperature %g must be finite and > 0", temperature);
    const double beta = 1 / temperature;
    for (size_t k = 0; k < logits->size; k++) logits->data[k] = (ct_real)((double)logits->data[k] * beta);
}

/* ==== neural collapse ======================================================================== */

/* The eigenvalues and eigenvectors of the symmetric n × n matrix a (destroyed: its diagonal ends as
 * the eigenvalues, v's columns as the eigenvectors) by cyclic Jacobi rotations. Each rotation J in
 * the (p, q) plane, J_pp = J_qq = c, J_pq = −J_qp = s, makes (JᵀAJ)_pq = 0 with t = s/c the smaller
 * root of t² + 2θt − 1 = 0, θ = (a_qq − a_pp) / (2 a_pq); sweeps until the off-diagonal is zero to
 * double precision. */
static void jacobi_eigen(double *a, double *v, int n) {
    for (int i = 0; i < n * n; i++) v[i] = 0;
    for (int i = 0; i < n; i++) v[i * n + i] = 1;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < n; p++) {
            diag += a[p * n + p] * a[p * n + p];
            for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
        }
        if (off <= 1e-32 * diag || off == 0) return;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                const double apq = a[p * n + q];
                if (apq == 0) continue;
                const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                const double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                const double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* A ← A J */
                    const double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* A ← Jᵀ A */
                    const double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) { /* V ← V J */
                    const double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq, v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
}

/* Std / Avg of x[0..n) (population std). */
static double spread_over_mean(const double *x, int n) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    return sqrt(var / n) / mean;
}

/* Over the pairs c < c' of the Gram matrix g (C × C): cosines' mean, std, and mean |cos − target|. */
static void pair_cosines(const double *g, int C, double target, double *mean, double *std, double *abs_gap) {
    const double pairs = 0.5 * C * (C - 1);
    double sum = 0, gap = 0;
    for (int c = 0; c < C; c++)
        for (int k = c + 1; k < C; k++) {
            const double cs = g[c * C + k] / sqrt(g[c * C + c] * g[k * C + k]);
            sum += cs, gap += fabs(cs - target);
        }
    *mean = sum / pairs, *abs_gap = gap / pairs;
    double var = 0;
    for (int c = 0; c < C; c++)
        for (int k = c + 1; k < C; k++) {
            const double cs = g[c * C + k] / sqrt(g[c * C + c] * g[k * C + k]);
            var += (cs - *mean) * (cs - *mean);
        }
    *std = sqrt(var / pairs);
}

int ct_neural_collapse(const ct_tensor *features, ct_labels labels, int classes, const ct_tensor *weight,
                       const ct_tensor *bias, ct_collapse_result *out) {
    static const char *op = "ct_neural_collapse";
    CT_CHECK(features && features->ndim == 2, op, "features must be a 2-D tensor (N, D), got %s",
             features ? "another rank" : "NULL");
    CT_CHECK(out, op, "out is NULL");
    const int N = features->shape[0], D = features->shape[1], C = classes;
    CT_CHECK(C >= 2, op, "%d classes: neural collapse needs at least 2", C);
    CT_CHECK(labels.n == N && (labels.data || N == 0), op, "%d labels for %d rows of features", labels.n, N);
    for (int i = 0; i < N; i++)
        CT_CHECK(labels.data[i] >= 0 && labels.data[i] < C, op, "label %d of sample %d is out of range for %d classes",
                 labels.data[i], i, C);
    CT_CHECK(!weight || (weight->ndim == 2 && weight->shape[0] == C && weight->shape[1] == D), op,
             "the classifier's weight must be (%d, %d) for %d classes and features of width %d", C, D, C, D);
    CT_CHECK(!bias || bias->size == (size_t)C, op, "the bias has %zu values for %d classes", bias ? bias->size : 0, C);
    CT_CHECK(!bias || weight, op, "a bias without the weight: pass the classifier's weight too");
    const double nan = NAN;
    *out = (ct_collapse_result){C, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan};

    int bad = first_nonfinite_row(features->data, N, D);
    if (bad >= 0) return ct_set_error(CT_ERR_VALUE, "%s: feature row %d holds a NaN or infinite value", op, bad);
    if (weight && (bad = first_nonfinite_row(weight->data, C, D)) >= 0)
        return ct_set_error(CT_ERR_VALUE, "%s: row %d of the classifier's weight holds a NaN or infinite value", op, bad);
    if (bias && (bad = first_nonfinite_row(bias->data, 1, C)) >= 0)
        return ct_set_error(CT_ERR_VALUE, "%s: the classifier's bias holds a NaN or infinite value", op);
    long *count = calloc((size_t)C, sizeof *count);
    if (!count) return ct_set_error(CT_ERR_MEMORY, "%s: no memory for %d classes", op, C);
    for (int i = 0; i < N; i++) count[labels.data[i]]++;
    for (int c = 0; c < C; c++)
        if (!count[c]) {
            free(count);
            return ct_set_error(CT_ERR_VALUE, "%s: class %d has no sample among the %d rows", op, c, N);
        }

    const size_t cd = (size_t)C * D, cc = (size_t)C * C;
    double *mu = calloc(cd + D + cd + 4 * cc + 2 * (size_t)C, sizeof *mu);
    if (!mu) {
        free(count);
        return ct_set_error(CT_ERR_MEMORY, "%s: no memory for %d class means of width %d", op, C, D);
    }
    double *mu_g = mu + cd, *M = mu_g + D, *G = M + cd, *K = G + cc, *V = K + cc, *WG = V + cc, *r = WG + cc,
           *norms = r + C;
    /* μ_c, μ_G */
    for (int i = 0; i < N; i++) {
        const ct_real *h = features->data + (size_t)i * D;
        double *m = mu + (size_t)labels.data[i] * D;
        for (int d = 0; d < D; d++) m[d] += h[d], mu_g[d] += h[d];
    }
    for (int d = 0; d < D; d++) mu_g[d] /= N;
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) mu[(size_t)c * D + d] /= (double)count[c];
    /* M = [μ_c − μ_G], G = M Mᵀ */
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) M[(size_t)c * D + d] = mu[(size_t)c * D + d] - mu_g[d];
    for (int c = 0; c < C; c++)
        for (int k = 0; k <= c; k++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += M[(size_t)c * D + d] * M[(size_t)k * D + d];
            G[c * C + k] = G[k * C + c] = s;
        }
    /* K = Ave_i r_i r_iᵀ, r_i = M (h_i − μ_{y_i}) */
    for (int i = 0; i < N; i++) {
        const ct_real *h = features->data + (size_t)i * D;
        const double *m = mu + (size_t)labels.data[i] * D;
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += M[(size_t)c * D + d] * ((double)h[d] - m[d]);
            r[c] = s;
        }
        for (int c = 0; c < C; c++)
            for (int k = 0; k <= c; k++) K[c * C + k] += r[c] * r[k];
    }
    for (int c = 0; c < C; c++)
        for (int k = 0; k <= c; k++) K[k * C + c] = K[c * C + k] /= N;

    /* NC2 on the means, from G before the eigen-decomposition destroys a copy of it */
    for (int c = 0; c < C; c++) norms[c] = sqrt(G[c * C + c]);
    out->equinorm = spread_over_mean(norms, C);
    const double etf = -1.0 / (C - 1);
    pair_cosines(G, C, etf, &out->cos_mean, &out->cos_std, &out->max_angle);
    out->cos_gap = fabs(out->cos_mean - etf);
    double m_frob2 = 0;
    for (int c = 0; c < C; c++) m_frob2 += G[c * C + c];

    /* NC1 = Σ_k [λ_k > 1e-10 λ_max] v_kᵀ K v_k / λ_k² */
    memcpy(WG, G, cc * sizeof *G);
    jacobi_eigen(WG, V, C);
    double lmax = 0;
    for (int k = 0; k < C; k++) lmax = WG[k * C + k] > lmax ? WG[k * C + k] : lmax;
    double nc1 = 0;
    for (int k = 0; k < C; k++) {
        const double lambda = WG[k * C + k];
        if (!(lambda > 1e-10 * lmax)) continue;
        double q = 0;
        for (int a = 0; a < C; a++) {
            double kv = 0;
            for (int b = 0; b < C; b++) kv += K[a * C + b] * V[b * C + k];
            q += V[a * C + k] * kv;
        }
        nc1 += q / (lambda * lambda);
    }
    out->nc1 = lmax > 0 ? nc1 : nan;

    if (weight) {
        /* the classifier's rows: norms and cosines; NC3 */
        const ct_real *W = weight->data;
        double w_frob2 = 0;
        for (int c = 0; c < C; c++)
            for (int k = 0; k <= c; k++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)W[(size_t)c * D + d] * W[(size_t)k * D + d];
                WG[c * C + k] = WG[k * C + c] = s;
            }
        for (int c = 0; c < C; c++) norms[c] = sqrt(WG[c * C + c]), w_frob2 += WG[c * C + c];
        out->w_equinorm = spread_over_mean(norms, C);
        double ignore_mean, ignore_gap;
        pair_cosines(WG, C, etf, &ignore_mean, &out->w_cos_std, &ignore_gap);
        const double wn = sqrt(w_frob2), mn = sqrt(m_frob2);
        double nc3 = 0;
        for (size_t k = 0; k < cd; k++) {
            const double e = (double)W[k] / wn - M[k] / mn;
            nc3 += e * e;
        }
        out->nc3 = nc3;
        /* NC4: argmin_c ‖h − μ_c‖ against argmax_c w_c·h + b_c */
        long agree = 0;
        for (int i = 0; i < N; i++) {
            const ct_real *h = features->data + (size_t)i * D;
            int near = 0, pred = 0;
            double best_d = INFINITY, best_z = -INFINITY;
            for (int c = 0; c < C; c++) {
                const double *m = mu + (size_t)c * D;
                const ct_real *w = W + (size_t)c * D;
                double dist = 0, z = bias ? (double)bias->data[c] : 0;
                for (int d = 0; d < D; d++) dist += ((double)h[d] - m[d]) * ((double)h[d] - m[d]), z += (double)w[d] * h[d];
                if (dist < best_d) best_d = dist, near = c;
                if (z > best_z) best_z = z, pred = c;
            }
            agree += near == pred;
        }
        out->nc4 = (double)agree / N;
    }
    free(mu), free(count);
    return CT_OK;
}

/* ==== softmax-collapse logit statistics ====================================================== */

/* p_y == 1 in float32, as analysis.h spells the softmax; *all_zero: and every other p_c == 0. */
static int collapsed_float(const ct_real *z, int C, int y, int *all_zero) {
    float m = (float)z[0];
    for (int c = 1; c < C; c++) m = (float)z[c] > m ? (float)z[c] : m;
    float s = 0, ey = 0;
    int others_zero = 1;
    for (int c = 0; c < C; c++) {
        const float e = expf((float)z[c] - m);
        s += e;
        if (c == y) ey = e;
        else others_zero &= e == 0;
    }
    const int one = ey / s == 1.0f;
    *all_zero = one && others_zero;
    return one;
}

static int collapsed_double(const ct_real *z, int C, int y) {
    double m = z[0];
    for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
    double s = 0, ey = 0;
    for (int c = 0; c < C; c++) {
        const double e = exp((double)z[c] - m);
        s += e;
        if (c == y) ey = e;
    }
    return ey / s == 1.0;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted x[0..n), linear between order statistics (NumPy's "linear"). */
static double quantile(const double *x, long n, double q) {
    const double pos = q * (double)(n - 1);
    const long lo = (long)floor(pos);
    const double frac = pos - (double)lo;
    return lo + 1 < n ? x[lo] + frac * (x[lo + 1] - x[lo]) : x[lo];
}

ct_logit_stats ct_logit_stats_compute(const ct_tensor *logits, ct_labels labels) {
    static const char *op = "ct_logit_stats_compute";
    check_logits(op, logits, labels, 2);
    const int N = logits->shape[0], C = logits->shape[1];
    const double nan = NAN;
    ct_logit_stats s = {N, 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan};
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++)
            if (!isfinite(logits->data[(size_t)i * C + c])) {
                s.nonfinite++;
                break;
            }
    if (N == 0 || s.nonfinite) return s;
    double *margin = malloc((size_t)N * sizeof *margin);
    long f32 = 0, f64 = 0, dead = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < N; i++) {
        const ct_real *z = logits->data + (size_t)i * C;
        const int y = labels.data[i];
        double other = -INFINITY;
        for (int c = 0; c < C; c++)
            if (c != y && z[c] > other) other = z[c];
        /* margin_i = z_y − max_{c≠y} z_c */
        const double mg = (double)z[y] - other;
        if (margin) margin[i] = mg;
        sum += mg, lo = mg < lo ? mg : lo, hi = mg > hi ? mg : hi;
        int all_zero;
        f32 += collapsed_float(z, C, y, &all_zero);
        dead += all_zero;
        f64 += collapsed_double(z, C, y);
    }
    s.margin_mean = sum / N, s.margin_min = lo, s.margin_max = hi;
    s.collapsed_f32 = (double)f32 / N, s.collapsed_f64 = (double)f64 / N, s.zero_gradient_f32 = (double)dead / N;
    if (!margin) {
        ct_set_error(CT_ERR_MEMORY, "%s: no memory for %d margins: their spread and quantiles are NaN", op, N);
        return s;
    }
    double var = 0;
    for (int i = 0; i < N; i++) var += (margin[i] - s.margin_mean) * (margin[i] - s.margin_mean);
    s.margin_std = sqrt(var / N);
    qsort(margin, (size_t)N, sizeof *margin, by_value);
    s.margin_q10 = quantile(margin, N, 0.10), s.margin_q25 = quantile(margin, N, 0.25);
    s.margin_median = quantile(margin, N, 0.5);
    s.margin_q75 = quantile(margin, N, 0.75), s.margin_q90 = quantile(margin, N, 0.90);
    free(margin);
    return s;
}
