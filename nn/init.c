/* nn/init.c — initialisation schemes with torch.nn.init's formulas, drawn from a seeded ct_rng.
 *
 * Fans follow PyTorch's _calculate_fan_in_and_fan_out: for a weight (out, in, k1, k2, ...)
 *     fan_in = in · k1·k2·...,   fan_out = out · k1·k2·...
 * A matrix has receptive field 1; a vector is its own fan in and out (PyTorch refuses fans for
 * fewer than 2 dimensions; we allow it so biases can use these schemes too). */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <math.h>
#include <stdlib.h>

void ct_init_fans(const ct_tensor *t, int *fan_in, int *fan_out) {
    if (t->ndim < 2) {
        *fan_in = *fan_out = t->ndim == 1 ? t->shape[0] : 1;
        return;
    }
    int receptive = 1;
    for (int i = 2; i < t->ndim; i++) receptive *= t->shape[i];
    *fan_in = t->shape[1] * receptive;
    *fan_out = t->shape[0] * receptive;
}

void ct_init_constant(ct_tensor *t, double value) { ct_tensor_fill(t, (ct_real)value); }
void ct_init_zeros(ct_tensor *t) { ct_tensor_fill(t, 0); }
void ct_init_ones(ct_tensor *t) { ct_tensor_fill(t, 1); }

void ct_init_uniform(ct_tensor *t, ct_rng *rng, double lo, double hi) {
    CT_CHECK(lo <= hi, "ct_init_uniform", "empty range [%g, %g]", lo, hi);
    ct_tensor_fill_uniform(t, rng, lo, hi);
}

void ct_init_normal(ct_tensor *t, ct_rng *rng, double mean, double std) {
    CT_CHECK(std >= 0, "ct_init_normal", "negative standard deviation %g", std);
    ct_tensor_fill_normal(t, rng, mean, std);
}

static int chosen_fan(const ct_tensor *t, ct_fan_mode mode) {
    int fan_in, fan_out;
    ct_init_fans(t, &fan_in, &fan_out);
    int fan = mode == CT_FAN_IN ? fan_in : fan_out;
    CT_CHECK(fan > 0, "ct_init_kaiming", "tensor has a zero fan");
    return fan;
}

/* gain = √(2/(1 + a²)); bound = gain·√(3/fan) so that the variance is gain²/fan */
void ct_init_kaiming_uniform(ct_tensor *t, ct_rng *rng, double a, ct_fan_mode mode) {
    double gain = sqrt(2.0 / (1.0 + a * a));
    double bound = gain * sqrt(3.0 / chosen_fan(t, mode));
    ct_tensor_fill_uniform(t, rng, -bound, bound);
}

/* std = gain/√fan */
void ct_init_kaiming_normal(ct_tensor *t, ct_rng *rng, double a, ct_fan_mode mode) {
    double gain = sqrt(2.0 / (1.0 + a * a));
    ct_tensor_fill_normal(t, rng, 0, gain / sqrt((double)chosen_fan(t, mode)));
}

/* bound = gain·√(6/(fan_in + fan_out)) */
void ct_init_xavier_uniform(ct_tensor *t, ct_rng *rng, double gain) {
    int fan_in, fan_out;
    ct_init_fans(t, &fan_in, &fan_out);
    double bound = gain * sqrt(6.0 / (fan_in + fan_out));
    ct_tensor_fill_uniform(t, rng, -bound, bound);
}

/* std = gain·√(2/(fan_in + fan_out)) */
void ct_init_xavier_normal(ct_tensor *t, ct_rng *rng, double gain) {
    int fan_in, fan_out;
    ct_init_fans(t, &fan_in, &fan_out);
    ct_tensor_fill_normal(t, rng, 0, gain * sqrt(2.0 / (fan_in + fan_out)));
}

/* Orthogonal (Saxe et al. 2013), as torch.nn.init.orthogonal_: view t as (rows, cols) with
 * rows = size(0); draw a normal matrix A of shape (max, min) (transposed when rows < cols),
 * orthonormalise its columns (modified Gram–Schmidt, i.e. Q of A = QR with diag(R) > 0, the sign
 * convention PyTorch enforces), transpose back if needed, and scale by gain. */
void ct_init_orthogonal(ct_tensor *t, ct_rng *rng, double gain) {
    CT_CHECK(t->ndim >= 2, "ct_init_orthogonal", "needs at least 2 dimensions, got %d", t->ndim);
    int rows = t->shape[0], cols = (int)(t->size / (size_t)rows);
    int tall = rows >= cols;
    int m = tall ? rows : cols, n = tall ? cols : rows; /* A is (m, n), m >= n */
    double *a = malloc((size_t)m * n * sizeof *a);
    if (!a) ct_fatal("ct_init_orthogonal", "out of memory for a %dx%d matrix", m, n);
    for (size_t i = 0; i < (size_t)m * n; i++) a[i] = ct_rng_normal(rng, 0, 1);
    for (int j = 0; j < n; j++) {
        for (int k = 0; k < j; k++) { /* remove the component along column k */
            double dot = 0;
            for (int i = 0; i < m; i++) dot += a[(size_t)i * n + k] * a[(size_t)i * n + j];
            for (int i = 0; i < m; i++) a[(size_t)i * n + j] -= dot * a[(size_t)i * n + k];
        }
        double norm = 0;
        for (int i = 0; i < m; i++) norm += a[(size_t)i * n + j] * a[(size_t)i * n + j];
        norm = sqrt(norm);
        CT_CHECK(norm > 0, "ct_init_orthogonal", "degenerate random matrix");
        for (int i = 0; i < m; i++) a[(size_t)i * n + j] /= norm;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            t->data[(size_t)r * cols + c] = (ct_real)(gain * (tall ? a[(size_t)r * n + c] : a[(size_t)c * n + r]));
    free(a);
}

/* Dirac: w[i, j, c1, c2, ...] = [j = i and every c_d = k_d/2] for i < filters (torch's dirac_,
 * groups 1); the filters after them are not touched. */
void ct_init_dirac(ct_tensor *t, int filters) {
    static const char *op = "ct_init_dirac";
    CT_CHECK(t && t->ndim >= 3 && t->ndim <= 5, op, "needs a conv weight (out, in, k...) of 3 to 5 dimensions, got %s",
             t ? ct_tensor_shape_str(t, (char[96]){0}, 96) : "NULL");
    const int out = t->shape[0], in = t->shape[1];
    CT_CHECK(filters >= 0 && filters <= out && filters <= in, op,
             "filters %d must be in 0..min(out %d, in %d): an identity filter i reads input channel i", filters, out,
             in);
    size_t receptive = 1, centre = 0; /* the centre's offset inside one (k1, k2, ...) kernel */
    for (int d = 2; d < t->ndim; d++) {
        centre = centre * (size_t)t->shape[d] + (size_t)(t->shape[d] / 2);
        receptive *= (size_t)t->shape[d];
    }
    const size_t per_filter = (size_t)in * receptive;
    for (int i = 0; i < filters; i++) {
        ct_real *f = t->data + (size_t)i * per_filter;
        for (size_t k = 0; k < per_filter; k++) f[k] = 0;
        f[(size_t)i * receptive + centre] = 1;
    }
}
