/* nn/conv.c — convolution and pooling layers on the fused ops of autograd/conv.c. */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- conv2d --------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_tensor *weight, *bias; /* (out, in/groups, k, k), (out) or NULL */
    int in, out, kernel;
    ct_conv2d_op_opts p;
} conv2d_module;

static ct_tensor *conv2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    conv2d_module *c = (conv2d_module *)self;
    CT_CHECK(x && x->ndim == 4 && x->shape[1] == c->in, c->base.name,
             "conv2d %d->%d (%dx%d kernel) got input %s (need (N, %d, H, W))", c->in, c->out, c->kernel,
             c->kernel, x ? ct_tensor_shape_str(x, (char[96]){0}, 96) : "NULL", c->in);
    return ct_conv2d(tape, x, c->weight, c->bias, c->p);
}

ct_module *ct_conv2d_new(ct_model *m, const char *name, int in_channels, int out_channels, int kernel,
                         ct_conv2d_opts opts) {
    static const char *ctor = "ct_conv2d_new";
    CT_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0, ctor,
             "%s: channels and kernel must be positive, got %d->%d, kernel %d", name, in_channels, out_channels,
             kernel);
    CT_CHECK(opts.groups >= 1 && in_channels % opts.groups == 0 && out_channels % opts.groups == 0, ctor,
             "%s: groups %d must divide both in_channels %d and out_channels %d", name, opts.groups,
             in_channels, out_channels);
    CT_CHECK(opts.stride >= 1 && opts.dilation >= 1 && opts.padding >= 0, ctor,
             "%s: stride %d and dilation %d must be >= 1 and padding %d >= 0", name, opts.stride,
             opts.dilation, opts.padding);
    conv2d_module *c = ct_module_new(m, sizeof *c, "conv2d", name, conv2d_forward);
    c->in = in_channels, c->out = out_channels, c->kernel = kernel;
    c->p = CT_CONV2D_OP(.stride_h = opts.stride, .stride_w = opts.stride, .pad_h = opts.padding,
                            .pad_w = opts.padding, .dilation_h = opts.dilation, .dilation_w = opts.dilation,
                            .groups = opts.groups);
    c->weight = ct_module_add_param(m, &c->base, "weight", CT_SHAPE(out_channels, in_channels / opts.groups, kernel, kernel));
    /* PyTorch's reset_parameters: kaiming_uniform_(a=√5) on fan_in = in/groups·k·k, which is
     * U(±1/√fan_in), and the bias U(±1/√fan_in) with the same fan. */
    ct_init_kaiming_uniform(c->weight, ct_model_rng(m), sqrt(5.0), CT_FAN_IN);
    if (opts.bias) {
        int fan_in, fan_out;
        ct_init_fans(c->weight, &fan_in, &fan_out);
        const double bound = 1.0 / sqrt((double)fan_in);
        c->bias = ct_module_add_param(m, &c->base, "bias", CT_SHAPE(out_channels));
        ct_init_uniform(c->bias, ct_model_rng(m), -bound, bound);
    }
    return &c->base;
}

ct_tensor *ct_conv2d_weight(ct_module *conv) {
    return ((conv2d_module *)ct_module_as(conv, "conv2d", "ct_conv2d_weight"))->weight;
}
ct_tensor *ct_conv2d_bias(ct_module *conv) {
    return ((conv2d_module *)ct_module_as(conv, "conv2d", "ct_conv2d_bias"))->bias;
}

/* ---- patch-whitening initialisation ------------------------------------------------------------- */
/* LAPACK's symmetric eigensolver (divide and conquer), from OpenBLAS: eigenvalues ascending in w,
 * eigenvectors (jobz 'V') as the columns of a, column-major. The two trailing lengths are the
 * hidden lengths gfortran passes with the character arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
                    size_t uplo_len);

/* Eigenpairs of the symmetric D×D matrix a (replaced by the eigenvectors, column j for w[j],
 * ascending). 0, or LAPACK's info (> 0: no convergence), or −1 when out of memory. */
static int symmetric_eigen(double *a, double *w, int D) {
    int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
    double work_size = 0;
    dsyevd_("V", "U", &D, a, &D, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1); /* sizes */
    if (info != 0) return info;
    lwork = (int)work_size, liwork = iwork_size;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) info = -1;
    else dsyevd_("V", "U", &D, a, &D, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info;
}

/* Σ += Pᵀ·P for `rows` patch vectors P (rows, D) (the upper triangle, row-major). */
static void add_moments(double *sigma, const double *P, int rows, int D) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, rows, 1.0, P, D, 1.0, sigma, D);
}

int ct_conv2d_init_whitening(ct_module *conv, const ct_tensor *images, int n, double eps) {
    static const char *op = "ct_conv2d_init_whitening";
    conv2d_module *c = ct_module_as(conv, "conv2d", op);
    const int k = c->kernel, C = c->in, D = C * k * k;
    char xs[96];
    CT_CHECK(c->p.groups == 1 && c->p.dilation_h == 1 && c->p.dilation_w == 1, op,
             "%s: whitening needs groups 1 and dilation 1 (got groups %d, dilation %d)", conv->name, c->p.groups,
             c->p.dilation_h);
    CT_CHECK(c->out == 2 * D, op,
             "%s has %d output channels; whitening %dx%d patches of %d channels needs 2*%d*%d*%d = %d "
             "(the eigenvectors and their negatives)", conv->name, c->out, k, k, C, C, k, k, 2 * D);
    CT_CHECK(images && images->ndim == 4 && images->shape[1] == C && images->shape[2] >= k && images->shape[3] >= k, op,
             "%s: images %s must be (N, %d, H, W) with H, W >= %d", conv->name,
             images ? ct_tensor_shape_str(images, xs, sizeof xs) : "NULL", C, k);
    CT_CHECK(n >= 1 && n <= images->shape[0], op, "%s: n %d must be in 1..%d (the images given)", conv->name, n,
             images->shape[0]);
    CT_CHECK(eps >= 0 && isfinite(eps), op, "%s: eps %g must be finite and >= 0", conv->name, eps);
    const int H = images->shape[2], W = images->shape[3], OH = H - k + 1, OW = W - k + 1;
    const size_t image_size = (size_t)C * H * W;
    for (size_t q = 0; q < (size_t)n * image_size; q++)
        if (!isfinite(images->data[q]))
            return ct_set_error(CT_ERR_VALUE, "%s: %s: image %zu holds a non-finite value (%g at index %zu)", op,
                                conv->name, q / image_size, (double)images->data[q], q % image_size);

    enum { CHUNK = 4096 }; /* patches per Σ update */
    double *sigma = malloc((size_t)D * D * sizeof *sigma), *lambda = malloc((size_t)D * sizeof *lambda);
    double *P = malloc((size_t)CHUNK * D * sizeof *P);
    if (!sigma || !lambda || !P) {
        free(sigma), free(lambda), free(P);
        return ct_set_error(CT_ERR_MEMORY, "%s: %s: out of memory for a %dx%d covariance", op, conv->name, D, D);
    }
    memset(sigma, 0, (size_t)D * D * sizeof *sigma);
    /* Σ = (1/patches)·Σ p·pᵀ, p[(ch·k + ky)·k + kx] = image[ch, y + ky, x + kx] */
    int rows = 0;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                double *p = P + (size_t)rows * D;
                for (int ch = 0; ch < C; ch++)
                    for (int ky = 0; ky < k; ky++) {
                        const ct_real *src = images->data + (size_t)i * image_size + ((size_t)ch * H + y + ky) * W + x;
                        for (int kx = 0; kx < k; kx++) *p++ = (double)src[kx];
                    }
                if (++rows == CHUNK) add_moments(sigma, P, rows, D), rows = 0;
            }
    if (rows) add_moments(sigma, P, rows, D);
    free(P);
    const double patches = (double)n * OH * OW;
    for (int a = 0; a < D; a++)
        for (int b = a; b < D; b++) sigma[(size_t)b * D + a] = sigma[(size_t)a * D + b] /= patches;

    int status = CT_OK;
    const int info = symmetric_eigen(sigma, lambda, D);
    if (info < 0) status = ct_set_error(CT_ERR_MEMORY, "%s: %s: out of memory for LAPACK's workspace", op, conv->name);
    else if (info > 0)
        status = ct_set_error(CT_ERR_VALUE, "%s: %s: LAPACK dsyevd did not converge on the %dx%d patch covariance "
                              "(info %d)", op, conv->name, D, D, info);
    /* an eigenvalue within rounding of 0 (relative to the largest) counts as 0 */
    const double zero = status == CT_OK ? (double)D * DBL_EPSILON * fabs(lambda[D - 1]) : 0;
    for (int j = 0; status == CT_OK && j < D; j++)
        if (!(lambda[j] + eps > zero))
            status = ct_set_error(CT_ERR_VALUE, "%s: %s: the patch covariance has eigenvalue %g, and %g + eps %g is "
                                  "not positive (within rounding): the patches span fewer than %d dimensions (pass "
                                  "eps > 0)", op, conv->name, lambda[j], lambda[j], eps, D);
    if (status == CT_OK) {
        ct_real *w = c->weight->data;
        for (int i = 0; i < D; i++) { /* filter i: the eigenvector of the i-th largest eigenvalue */
            const int j = D - 1 - i;
            const double s = 1.0 / sqrt(lambda[j] + eps);
            for (int q = 0; q < D; q++) {
                w[(size_t)i * D + q] = (ct_real)(sigma[(size_t)j * D + q] * s);
                w[(size_t)(D + i) * D + q] = -w[(size_t)i * D + q];
            }
        }
    }
    free(sigma), free(lambda);
    return status;
}

/* ---- pooling ---------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_pool2d_opts p;
} pool_module;

static ct_tensor *max_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_max_pool2d(tape, x, ((pool_module *)self)->p);
}

static ct_tensor *avg_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_avg_pool2d(tape, x, ((pool_module *)self)->p);
}

static ct_module *pool_new(ct_model *m, const char *name, const char *kind, const char *ctor, int kernel,
                           int stride, int padding, ct_forward_fn forward) {
    CT_CHECK(kernel >= 1 && stride >= 0 && padding >= 0 && 2 * padding <= kernel, ctor,
             "%s: kernel %d must be >= 1, stride %d >= 0 (0 = kernel), padding %d in [0, kernel/2]",
             name ? name : "(null)", kernel, stride, padding);
    pool_module *pm = ct_module_new(m, sizeof *pm, kind, name, forward);
    pm->p = CT_POOL2D(.kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride,
                             .pad_h = padding, .pad_w = padding);
    return &pm->base;
}

ct_module *ct_max_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding) {
    return pool_new(m, name, "max_pool2d", "ct_max_pool2d_new", kernel, stride, padding, max_pool2d_forward);
}

ct_module *ct_avg_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding) {
    return pool_new(m, name, "avg_pool2d", "ct_avg_pool2d_new", kernel, stride, padding, avg_pool2d_forward);
}

static ct_tensor *global_avg_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    (void)self;
    return ct_global_avg_pool2d(tape, x);
}

ct_module *ct_global_avg_pool2d_new(ct_model *m, const char *name) {
    return ct_module_new(m, sizeof(ct_module), "global_avg_pool2d", name, global_avg_pool2d_forward);
}
