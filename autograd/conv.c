/* autograd/conv.c — 2-D convolution and pooling over NCHW tensors.
 *
 * conv2d is lowered to GEMM: im2col unrolls each receptive field of a sample into a column, so
 * the convolution of that sample is one matrix product per group,
 *     y_n[g] (O/G, Ho·Wo) = W[g] (O/G, C/G·kh·kw) · cols_n[g] (C/G·kh·kw, Ho·Wo)
 * and the result lands directly in the NCHW output: no transpose copy, forward or backward.
 *
 * Why per sample and not one GEMM over the whole batch: columns laid out (C·kh·kw, N·Ho·Wo) give
 * one big GEMM, but its output (O, N·Ho·Wo) must be permuted into (N, O, Ho, Wo) (and dy back for
 * the backward), and the whole batch's column buffer no longer fits in cache. Here the batch is
 * split across threads instead: each thread unrolls one sample into its own cache-resident column
 * buffer and runs single-threaded GEMMs on it while it is hot. Per sample measured as fast as or
 * faster than whole-batch and chunked layouts on every layer of the MNIST and CIFAR networks
 * (bench/NOTES.md, "Figures moved out of ... comments"); "same width" layers get their own
 * im2col (same_width below).
 *
 * The backward rebuilds the columns rather than keeping them from the forward: an im2col is a
 * cheap gather next to the GEMMs, keeping them measured no faster, and the tape's memory stays
 * at the size of the activations.
 *
 * Threads: the sample loop is an OpenMP loop; OpenBLAS (built on OpenMP) runs GEMMs called from
 * inside a parallel region on the calling thread. With one sample (or one thread) the loop is
 * serial and each GEMM uses every thread instead.
 *
 * Pooling (max, average, global average) runs one (n, c) plane at a time, planes in parallel. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define PAR_MIN (1 << 15) /* elements of work below which an OpenMP loop costs more than it saves */


/* ceil(a / b) for b > 0 and any sign of a */
static int div_up(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* ==== conv2d ================================================================================ */

/* The geometry of one convolution: input (N, C, H, W), weight (O, C/G, kh, kw), output
 * (N, O, Ho, Wo); K = C/G·kh·kw is the length of one group's receptive field, P = Ho·Wo. */
typedef struct {
    int N, C, H, W, O, kh, kw, Ho, Wo;
    int sh, sw, ph, pw, dh, dw, G;
    int K, P;
    int direct; /* 1x1 kernel, stride 1, no padding: the columns are the input itself */
} conv_geom;

/* The range [lo, hi) of output columns ow whose input column ow·sw + off lies inside [0, W). */
static void valid_range(int off, int stride, int W, int Wo, int *lo, int *hi) {
    int a = off >= 0 ? 0 : div_up(-off, stride);
    int b = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
    if (b > Wo) b = Wo;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* Row kernels for im2col and col2im. Their rows are one output row long (26 and 11 floats in
 * the MNIST CNN): a memcpy call, or a vector loop with its scalar remainder, costs more than the
 * copy itself. With AVX-512 a masked load and store move the tail of a row (up to a whole
 * vector) in one step, with no remainder loop; masked-off lanes are never touched. */
#if defined(__AVX512F__) && !defined(CT_PRECISION_64)
#define ROW_LANES 16
typedef __mmask16 row_mask;
#define ROW_LOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define ROW_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define ROW_ADD(a, b) _mm512_add_ps(a, b)
#elif defined(__AVX512F__)
#define ROW_LANES 8
typedef __mmask8 row_mask;
#define ROW_LOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define ROW_STORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define ROW_ADD(a, b) _mm512_add_pd(a, b)
#endif

/* dst[0, n) = src[0, n), and garbage in dst[n, n + ROW_SLACK): stores are whole vectors, so
 * callers write rows in increasing address order, letting the next row overwrite the spill,
 * and leave ROW_SLACK spare elements after the buffer. Loads stay masked: they never read past
 * the end of src. (Plain stores instead of masked ones: faster on the MNIST CNN's conv layers,
 * forward and backward; bench/NOTES.md.) */
#ifdef ROW_LANES
#define ROW_SLACK ROW_LANES
#else
#define ROW_SLACK 0
#endif
static inline void row_copy_spill(ct_real *restrict dst, const ct_real *restrict src, int n) {
#ifdef ROW_LANES
    for (; n > 0; n -= ROW_LANES, dst += ROW_LANES, src += ROW_LANES) {
        const row_mask m = (row_mask)(n >= ROW_LANES ? ~0u : (1u << n) - 1);
        ROW_STORE(dst, (row_mask)~0u, ROW_LOAD(m, src));
    }
#else
    memcpy(dst, src, (size_t)n * sizeof *dst);
#endif
}

/* dst[0, n) += src[0, n) */
static inline void row_add(ct_real *restrict dst, const ct_real *restrict src, int n) {
#ifdef ROW_LANES
    for (; n > 0; n -= ROW_LANES, dst += ROW_LANES, src += ROW_LANES) {
        const row_mask m = (row_mask)(n >= ROW_LANES ? ~0u : (1u << n) - 1);
        ROW_STORE(dst, m, ROW_ADD(ROW_LOAD(m, dst), ROW_LOAD(m, src)));
    }
#else
#pragma omp simd
    for (int k = 0; k < n; k++) dst[k] += src[k];
#endif
}

/* The rows oh whose input row oh·sh − ph + i·dh lies inside [0, H), as [*lo, *hi). */
static void valid_rows(const conv_geom *g, int i, int *lo, int *hi) {
    valid_range(i * g->dh - g->ph, g->sh, g->H, g->Ho, lo, hi);
}

/* "Same width, stride 1" (3x3 with padding 1, the CIFAR and ResNet layers): Wo = W and sh = sw = 1,
 * so output position q = oh·Wo + ow reads input position q + shift of the same plane, with
 * shift = (i·dh − ph)·W + j·dw − pw, for every q of the valid rows. A column row (c, i, j) is then
 * one contiguous copy of its valid rows, plus zeros in the padding: the rows above and below, and
 * the lo and Wo − hi columns at each end of a row that the shift would wrap into the neighbouring
 * row. One copy of up to Ho·Wo elements instead of Ho copies of Wo (rows of 8 to 32 values in
 * the CIFAR network, where a call and a mask per row cost as much as the copy). */
static int same_width(const conv_geom *g) { return g->sh == 1 && g->sw == 1 && g->Wo == g->W; }

/* im2col of one sample: x (C, H, W) -> cols (C·kh·kw, Ho·Wo), where row (c, i, j) holds
 *     cols[(c·kh + i)·kw + j][oh·Wo + ow] = x[c][oh·sh − ph + i·dh][ow·sw − pw + j·dw]
 * and 0 where that position falls in the padding. Rows are written in address order, so
 * cols needs ROW_SLACK spare elements at its end (see row_copy_spill). */
CT_KERNEL
static void im2col(const conv_geom *g, const ct_real *restrict x, ct_real *restrict cols) {
    const int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw, P = g->P;
    const size_t plane = (size_t)H * W;
    if (same_width(g)) {
        for (int c = 0; c < g->C; c++)
            for (int i = 0; i < g->kh; i++) {
                int r0, r1;
                valid_rows(g, i, &r0, &r1);
                for (int j = 0; j < g->kw; j++) {
                    const int off = j * g->dw - g->pw, shift = (i * g->dh - g->ph) * W + off;
                    int lo, hi;
                    valid_range(off, 1, W, Wo, &lo, &hi);
                    const int empty = r1 <= r0 || hi <= lo;
                    const int q0 = empty ? 0 : r0 * Wo + lo, q1 = empty ? 0 : (r1 - 1) * Wo + hi;
                    ct_real *restrict row = cols + ((size_t)(c * g->kh + i) * g->kw + j) * P;
                    const ct_real *restrict in = x + c * plane;
                    memset(row, 0, (size_t)q0 * sizeof *row);
                    if (q1 > q0) memcpy(row + q0, in + q0 + shift, (size_t)(q1 - q0) * sizeof *row);
                    memset(row + q1, 0, (size_t)(P - q1) * sizeof *row);
                    for (int oh = r0; oh < r1 && !empty; oh++) { /* the wrapped columns */
                        for (int ow = 0; ow < lo; ow++) row[oh * Wo + ow] = 0;
                        for (int ow = hi; ow < Wo; ow++) row[oh * Wo + ow] = 0;
                    }
                }
            }
        return;
    }
    for (int c = 0; c < g->C; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                ct_real *restrict row = cols + ((size_t)(c * g->kh + i) * g->kw + j) * P;
                const int off = j * g->dw - g->pw;
                int lo, hi;
                valid_range(off, sw, W, Wo, &lo, &hi);
                for (int oh = 0; oh < Ho; oh++) {
                    ct_real *restrict out = row + (size_t)oh * Wo;
                    const int ih = oh * g->sh - g->ph + i * g->dh;
                    if (ih < 0 || ih >= H) {
                        memset(out, 0, (size_t)Wo * sizeof *out);
                        continue;
                    }
                    const ct_real *restrict in = x + ((size_t)c * H + ih) * W;
                    for (int ow = 0; ow < lo; ow++) out[ow] = 0;
                    if (sw == 1) row_copy_spill(out + lo, in + lo + off, hi - lo);
                    else
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) out[ow] = in[ow * sw + off];
                    for (int ow = hi; ow < Wo; ow++) out[ow] = 0;
                }
            }
}

/* col2im, the adjoint of im2col, accumulating: every column entry goes back to the input
 * position it was read from, dx[c][ih][iw] += dcols[(c, i, j)][oh·Wo + ow] (padding dropped).
 * Overlapping windows add up, which is exactly the chain rule for a value read several times.
 * The channel loop is innermost: consecutive row updates then land in different planes. With
 * (c, i, j) outermost, as im2col runs, the next update re-reads the dx row just written, shifted
 * by one column, and waits for that store to complete (a failed store-to-load forward), which
 * made col2im several times slower. dcols is scratch: the same-width path zeroes its wrapped
 * columns (entries that belong to the padding) so that each row goes back in one contiguous add. */
CT_KERNEL
static void col2im_add(const conv_geom *g, ct_real *restrict dcols, ct_real *restrict dx) {
    const int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo, sw = g->sw, C = g->C;
    const size_t plane = (size_t)H * W, row_stride = (size_t)g->kh * g->kw * g->P; /* next channel */
    if (same_width(g)) {
        for (int i = 0; i < g->kh; i++) {
            int r0, r1;
            valid_rows(g, i, &r0, &r1);
            for (int j = 0; j < g->kw; j++) {
                const int off = j * g->dw - g->pw, shift = (i * g->dh - g->ph) * W + off;
                int lo, hi;
                valid_range(off, 1, W, Wo, &lo, &hi);
                if (r1 <= r0 || hi <= lo) continue;
                const int q0 = r0 * Wo + lo, q1 = (r1 - 1) * Wo + hi;
                ct_real *rows = dcols + ((size_t)i * g->kw + j) * g->P;
                for (int c = 0; c < C; c++) {
                    ct_real *restrict d = rows + c * row_stride;
                    for (int oh = r0; oh < r1; oh++) {
                        for (int ow = 0; ow < lo; ow++) d[oh * Wo + ow] = 0;
                        for (int ow = hi; ow < Wo; ow++) d[oh * Wo + ow] = 0;
                    }
                    ct_real *restrict out = dx + c * plane + q0 + shift;
                    const ct_real *restrict src = d + q0;
                    const int n = q1 - q0;
#pragma omp simd
                    for (int q = 0; q < n; q++) out[q] += src[q];
                }
            }
        }
        return;
    }
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++) {
            const int off = j * g->dw - g->pw;
            int lo, hi;
            valid_range(off, sw, W, Wo, &lo, &hi);
            const ct_real *restrict rows = dcols + ((size_t)i * g->kw + j) * g->P;
            for (int oh = 0; oh < Ho; oh++) {
                const int ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= H) continue;
                for (int c = 0; c < C; c++) {
                    const ct_real *restrict d = rows + c * row_stride + (size_t)oh * Wo;
                    ct_real *restrict out = dx + c * plane + (size_t)ih * W;
                    if (sw == 1) row_add(out + lo + off, d + lo, hi - lo);
                    else
                        for (int ow = lo; ow < hi; ow++) out[ow * sw + off] += d[ow];
                }
            }
        }
}

/* Sample-parallel loops pay off when there are several samples and several threads. */
static int conv_parallel(const conv_geom *g) { return g->N > 1 && ct_max_threads() > 1; }

/* ---- conv2d: y (N,O,Ho,Wo) = W ⋆ x + b, x (N,C,H,W), W (O,C/G,kh,kw), b (O) ---------------
 * Per sample n and group g, with cols_n = im2col(x_n) (K, P):
 *     forward    y_n[g]    = W[g] · cols_n[g] + b[g]                 (O/G, P)
 *     backward   dW[g]    += Σ_n dy_n[g] · cols_n[g]ᵀ                (O/G, K)
 *                dcols_n[g] = W[g]ᵀ · dy_n[g];  dx_n += col2im(dcols_n)  (K, P) -> (C, H, W)
 *                db[o]    += Σ_n Σ_p dy[n, o, p]
 * dW is summed per thread (thread 0 straight into dW, the others into zeroed partial buffers
 * added at the end), so samples run in parallel without a race.
 * saved: extra = the conv_geom. */
CT_KERNEL
static void conv2d_backward(ct_tape *tape, ct_node *nd) {
    ct_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    const conv_geom *g = nd->extra;
    const int O = g->O, Og = g->O / g->G, K = g->K, P = g->P, G = g->G;
    const ct_real *dy = nd->out->grad;
    ct_real *dx = ct_grad_of(tape, x), *dw = ct_grad_of(tape, w);
    ct_real *restrict db = b ? ct_grad_of(tape, b) : NULL;

    if (db) /* channels in parallel, each summing over samples and positions */
#pragma omp parallel for schedule(static) if ((size_t)g->N * O * P > PAR_MIN)
        for (int o = 0; o < O; o++) {
            ct_real s = 0;
            for (int n = 0; n < g->N; n++) {
                const ct_real *restrict d = dy + ((size_t)n * O + o) * P;
#pragma omp simd reduction(+ : s)
                for (int p = 0; p < P; p++) s += d[p];
            }
            db[o] += s;
        }
    if (!dx && !dw) return;

    const int par = conv_parallel(g), threads = par ? ct_max_threads() : 1;
    const size_t cols_len = (size_t)G * K * P + ROW_SLACK, w_len = (size_t)O * K;
    ct_arena *arena = ct_tape_arena(tape);
    ct_real *cols_all = dw && !g->direct ? ct_arena_alloc(arena, threads * cols_len * sizeof(ct_real)) : NULL;
    ct_real *dcols_all = dx && !g->direct ? ct_arena_alloc(arena, threads * cols_len * sizeof(ct_real)) : NULL;
    ct_real *dw_part = dw && threads > 1 ? ct_arena_calloc(arena, (threads - 1) * w_len * sizeof(ct_real)) : NULL;

#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < g->N; n++) {
        const int t = ct_thread_id();
        const ct_real *x_n = x->data + (size_t)n * g->C * g->H * g->W;
        const ct_real *dy_n = dy + (size_t)n * O * P;
        if (dw) {
            const ct_real *cols = x_n;
            if (!g->direct) {
                ct_real *c = cols_all + t * cols_len;
                im2col(g, x_n, c);
                cols = c;
            }
            ct_real *dw_t = t == 0 ? dw : dw_part + (t - 1) * w_len;
            for (int k = 0; k < G; k++) /* dW[g] += dy_n[g] · cols_n[g]ᵀ */
                ct_gemm(0, 1, Og, K, P, 1, dy_n + (size_t)k * Og * P, P, cols + (size_t)k * K * P, P, 1,
                        dw_t + (size_t)k * Og * K, K);
        }
        if (dx) {
            ct_real *dx_n = dx + (size_t)n * g->C * g->H * g->W;
            if (g->direct) { /* the columns are x_n: accumulate straight into dx */
                for (int k = 0; k < G; k++)
                    ct_gemm(1, 0, K, P, Og, 1, w->data + (size_t)k * Og * K, K, dy_n + (size_t)k * Og * P, P,
                            1, dx_n + (size_t)k * K * P, P);
            } else {
                ct_real *dcols = dcols_all + t * cols_len;
                for (int k = 0; k < G; k++) /* dcols_n[g] = W[g]ᵀ · dy_n[g] */
                    ct_gemm(1, 0, K, P, Og, 1, w->data + (size_t)k * Og * K, K, dy_n + (size_t)k * Og * P, P,
                            0, dcols + (size_t)k * K * P, P);
                col2im_add(g, dcols, dx_n);
            }
        }
    }
    for (int t = 1; t < threads && dw; t++) {
        const ct_real *restrict part = dw_part + (t - 1) * w_len;
        ct_real *restrict acc = dw;
#pragma omp simd
        for (size_t i = 0; i < w_len; i++) acc[i] += part[i];
    }
}
const ct_op ct_op_conv2d = {
    "conv2d",
    "y_n = W·im2col(x_n) + b per group; dW += Σ_n dy_n·im2col(x_n)ᵀ, dx_n += col2im(Wᵀ·dy_n), db += Σ dy",
    conv2d_backward};

CT_KERNEL
ct_tensor *ct_conv2d(ct_tape *tape, ct_tensor *x, ct_tensor *w, ct_tensor *b, ct_conv2d_op_opts p) {
    static const char *op = "ct_conv2d";
    CT_CHECK(x && w, op, "input or weight is NULL");
    CT_CHECK(x->ndim == 4, op, "input must be 4-D (N, C, H, W), got %s", ct_shp(x));
    CT_CHECK(w->ndim == 4, op, "weight must be 4-D (O, C/groups, kh, kw), got %s", ct_shp(w));
    const int G = p.groups;
    CT_CHECK(G >= 1, op, "groups must be >= 1, got %d", G);
    const int C = x->shape[1], O = w->shape[0];
    CT_CHECK(w->shape[1] * G == C && O % G == 0, op, "input %s does not match weight %s (groups %d)%s",
             ct_shp(x), ct_shp(w), G,
             C % G ? ": channels are not divisible by groups"
             : O % G ? ": output channels are not divisible by groups" : "");
    CT_CHECK(!b || (b->ndim == 1 && b->shape[0] == O), op, "bias %s does not match weight %s (need (%d,))",
             b ? ct_shp(b) : "", ct_shp(w), O);
    CT_CHECK(p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_h >= 0 &&
             p.pad_w >= 0, op, "stride (%d, %d) and dilation (%d, %d) must be >= 1 and padding (%d, %d) >= 0",
             p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_h, p.pad_w);
    conv_geom g = {
        .N = x->shape[0], .C = C, .H = x->shape[2], .W = x->shape[3],
        .O = O, .kh = w->shape[2], .kw = w->shape[3],
        .sh = p.stride_h, .sw = p.stride_w, .ph = p.pad_h, .pw = p.pad_w,
        .dh = p.dilation_h, .dw = p.dilation_w, .G = G,
    };
    const int span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1; /* dilated kernel */
    CT_CHECK(g.kh >= 1 && g.kw >= 1 && g.H + 2 * g.ph >= span_h && g.W + 2 * g.pw >= span_w, op,
             "input %s is smaller than weight %s's %dx%d kernel (dilation (%d, %d), padding (%d, %d))",
             ct_shp(x), ct_shp(w), span_h, span_w, g.dh, g.dw, g.ph, g.pw);
    g.Ho = (g.H + 2 * g.ph - span_h) / g.sh + 1;
    g.Wo = (g.W + 2 * g.pw - span_w) / g.sw + 1;
    g.K = C / G * g.kh * g.kw;
    g.P = g.Ho * g.Wo;
    g.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;

    ct_node *nd;
    ct_tensor *in[3] = {x, w, b};
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(g.N, O, g.Ho, g.Wo), &ct_op_conv2d, in, 3, &nd);
    if (nd) {
        conv_geom *saved = ct_arena_alloc(ct_tape_arena(tape), sizeof *saved);
        *saved = g;
        nd->extra = saved;
    }

    const int par = conv_parallel(&g), threads = par ? ct_max_threads() : 1;
    const int Og = O / G, K = g.K, P = g.P;
    const size_t cols_len = (size_t)G * K * P + ROW_SLACK; /* one sample's columns, + im2col's slack */
    ct_real *cols_all = g.direct ? NULL : ct_arena_alloc(ct_tape_arena(tape), threads * cols_len * sizeof(ct_real));
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < g.N; n++) {
        const ct_real *x_n = x->data + (size_t)n * C * g.H * g.W;
        ct_real *y_n = y->data + (size_t)n * O * P;
        const ct_real *cols = x_n;
        if (!g.direct) {
            ct_real *c = cols_all + ct_thread_id() * cols_len;
            im2col(&g, x_n, c);
            cols = c;
        }
        if (b) /* y starts as the bias; the GEMMs add onto it (beta = 1) */
            for (int o = 0; o < O; o++) {
                ct_real *restrict row = y_n + (size_t)o * P;
                const ct_real bias = b->data[o];
#pragma omp simd
                for (int q = 0; q < P; q++) row[q] = bias;
            }
        for (int k = 0; k < G; k++) /* y_n[g] (Og, P) = W[g] (Og, K) · cols_n[g] (K, P) */
            ct_gemm(0, 0, Og, P, K, 1, w->data + (size_t)k * Og * K, K, cols + (size_t)k * K * P, P, b ? 1 : 0,
                    y_n + (size_t)k * Og * P, P);
    }
    return y;
}

/* ==== pooling ================================================================================ */

/* Window geometry, stored in the node's iarg: kh, kw, sh, sw, ph, pw, count_include_pad. */
typedef struct {
    int N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, include_pad;
} pool_geom;

static pool_geom pool_setup(const char *op, const ct_tensor *x, ct_pool2d_opts p) {
    CT_CHECK(x, op, "input is NULL");
    CT_CHECK(x->ndim == 4, op, "input must be 4-D (N, C, H, W), got %s", ct_shp(x));
    pool_geom g = {
        .N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
        .kh = p.kernel_h, .kw = p.kernel_w,
        .sh = p.stride_h ? p.stride_h : p.kernel_h, .sw = p.stride_w ? p.stride_w : p.kernel_w,
        .ph = p.pad_h, .pw = p.pad_w, .include_pad = p.count_include_pad != 0,
    };
    CT_CHECK(g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1 && g.ph >= 0 && g.pw >= 0, op,
             "kernel (%d, %d) must be >= 1, stride (%d, %d) >= 0 (0 = kernel) and padding (%d, %d) >= 0",
             p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w);
    /* PyTorch's rule: then every window holds at least one input element */
    CT_CHECK(2 * g.ph <= g.kh && 2 * g.pw <= g.kw, op,
             "padding (%d, %d) must be at most half the kernel (%d, %d)", g.ph, g.pw, g.kh, g.kw);
    CT_CHECK(g.H + 2 * g.ph >= g.kh && g.W + 2 * g.pw >= g.kw, op,
             "input %s is smaller than the %dx%d window (padding (%d, %d))", ct_shp(x), g.kh, g.kw, g.ph, g.pw);
    g.Ho = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
    g.Wo = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
    return g;
}

static void pool_save(ct_node *nd, const pool_geom *g) {
    int *s = nd->iarg;
    s[0] = g->kh, s[1] = g->kw, s[2] = g->sh, s[3] = g->sw, s[4] = g->ph, s[5] = g->pw, s[6] = g->include_pad;
}

static pool_geom pool_load(const ct_node *nd) {
    const ct_tensor *x = nd->in[0], *y = nd->out;
    const int *s = nd->iarg;
    return (pool_geom){.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
                       .Ho = y->shape[2], .Wo = y->shape[3], .kh = s[0], .kw = s[1], .sh = s[2],
                       .sw = s[3], .ph = s[4], .pw = s[5], .include_pad = s[6]};
}

static size_t pool_work(const pool_geom *g) {
    return (size_t)g->N * g->C * g->Ho * g->Wo * g->kh * g->kw;
}

/* The kernels run one output row at a time and, inside it, one window offset (i, j) at a time:
 *     for each (i, j) of the window, for ow across the row:  acc[ow] ⊕= x[oh·sh − ph + i][ow·sw − pw + j]
 * The inner loop has no branch and no dependence between outputs, so it vectorises (a window of
 * 4 scanned per output with data-dependent branches mispredicts about every other compare).
 * Offsets (i, j) are visited in row-major window order, which keeps "first maximum" meaning
 * the first in the window. Input rows outside [0, H) are skipped, and [lo, hi) is the range of
 * outputs whose column ow·sw − pw + j lies inside [0, W) (valid_range, as for im2col). */

/* Elements of the window of output index o (rows or columns) that fall inside the input. */
static inline int covered(int o, int stride, int pad, int k, int n) {
    int a = o * stride - pad, b = a + k;
    return (b < n ? b : n) - (a > 0 ? a : 0);
}

/* ---- max_pool2d: y[n,c,oh,ow] = max over the window of x (−∞ in the padding) -----------------
 *      dx[n,c, argmax] += dy[n,c,oh,ow]
 * The gradient goes to one element per window: the first maximum in row-major window order
 * (a strict > while scanning), so ties never split or duplicate it. A NaN in the window wins
 * (the output is NaN), as in PyTorch. Since padding is at most half the kernel, every window
 * holds an input element and the −∞ padding never needs to be materialised.
 * saved: extra = the argmax of each output as an offset h·W + w in its plane (int32). */
CT_KERNEL
static void max_pool2d_backward(ct_tape *tape, ct_node *nd) {
    ct_real *dx = ct_grad_of(tape, nd->in[0]);
    if (!dx) return;
    const pool_geom g = pool_load(nd);
    const int *argmax = nd->extra;
    const ct_real *dy = nd->out->grad;
    const size_t planes = (size_t)g.N * g.C, in_plane = (size_t)g.H * g.W, out_plane = (size_t)g.Ho * g.Wo;
#pragma omp parallel for schedule(static) if (planes * out_plane > PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        ct_real *dxq = dx + q * in_plane;
        const ct_real *dyq = dy + q * out_plane;
        const int *aq = argmax + q * out_plane;
        for (size_t o = 0; o < out_plane; o++) dxq[aq[o]] += dyq[o];
    }
}
const ct_op ct_op_max_pool2d = {"max_pool2d", "y = max over each window; dx[argmax] += dy (first maximum on ties)",
                                max_pool2d_backward};

/* The careful scan of one window: only its part inside the input, from −∞, with NaN winning.
 * A window of −∞ values keeps PyTorch's choice, its first input element. */
static void max_pool_window(const pool_geom *g, const ct_real *restrict xq, int oh, int ow, ct_real *y, int *at) {
    const int W = g->W, h0 = oh * g->sh - g->ph, c = ow * g->sw - g->pw;
    const int i0 = h0 < 0 ? -h0 : 0, i1 = h0 + g->kh > g->H ? g->H - h0 : g->kh;
    const int j0 = c < 0 ? -c : 0, j1 = c + g->kw > W ? W - c : g->kw;
    ct_real best = -INFINITY;
    int best_at = (h0 + i0) * W + c + j0;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
            const ct_real v = xq[(h0 + i) * W + c + j];
            if (v > best || v != v) best = v, best_at = (h0 + i) * W + c + j;
        }
    *y = best, *at = best_at;
}

/* One (n, c) plane of max pooling: yq (Ho, Wo) and the argmax of each output, aq.
 * Windows wholly inside the input (all of them without padding) take the fast path: one pass
 * per output over its window with a plain compare and selects, no branch, unrolled for the
 * common 2x2 and vectorised across the row. NaN would need one more compare per element, which
 * turns the loop back into branches, so instead the fast path sums every value it reads into
 * `probe`: a NaN (or ±∞ summing to one) makes the sum NaN, and then the plane is redone window
 * by window with max_pool_window, which also serves the windows clipped by the padding. */
CT_KERNEL
static void max_pool_plane(const pool_geom *g, const ct_real *restrict xq, ct_real *restrict yq, int *restrict aq) {
    const int W = g->W, Wo = g->Wo, sw = g->sw, kh = g->kh, kw = g->kw, pw = g->pw;
    /* outputs ow in [in_lo, in_hi) have their window's columns inside the input */
    int in_lo = div_up(pw, sw), in_hi = W - kw + pw < 0 ? 0 : (W - kw + pw) / sw + 1;
    if (in_hi > Wo) in_hi = Wo;
    if (in_lo > in_hi) in_lo = in_hi;
    ct_real probe = 0;
    for (int oh = 0; oh < g->Ho; oh++) {
        const int h0 = oh * g->sh - g->ph;
        if (h0 < 0 || h0 + kh > g->H) continue; /* rows clipped: the careful pass below */
        ct_real *restrict yr = yq + (size_t)oh * Wo;
        int *restrict ar = aq + (size_t)oh * Wo;
        const ct_real *restrict r0 = xq + (size_t)h0 * W;
        if (kh == 2 && kw == 2) {
            const ct_real *restrict r1 = r0 + W;
            const int base = h0 * W - pw;
#pragma omp simd reduction(+ : probe) simdlen(8)
            for (int ow = in_lo; ow < in_hi; ow++) {
                const int c = ow * sw - pw;
                const ct_real a = r0[c], b = r0[c + 1], d = r1[c], e = r1[c + 1];
                /* select with masks (m = −1 where taken), which compilers never turn into branches */
                ct_real best = a;
                int at = 0, m;
                m = -(b > best), at = (at & ~m) | (1 & m), best = b > best ? b : best;
                m = -(d > best), at = (at & ~m) | (W & m), best = d > best ? d : best;
                m = -(e > best), at = (at & ~m) | ((W + 1) & m), best = e > best ? e : best;
                probe += (a + b) + (d + e);
                yr[ow] = best;
                ar[ow] = base + ow * sw + at;
            }
        } else {
            for (int ow = in_lo; ow < in_hi; ow++) {
                const int c = ow * sw - pw;
                const ct_real *restrict win = r0 + c;
                ct_real best = win[0];
                int at = 0;
                for (int i = 0; i < kh; i++)
#pragma omp simd reduction(+ : probe)
                    for (int j = 0; j < kw; j++) {
                        const ct_real v = win[i * W + j];
                        const int m = -(v > best);
                        at = (at & ~m) | ((i * W + j) & m);
                        best = v > best ? v : best;
                        probe += v;
                    }
                yr[ow] = best;
                ar[ow] = h0 * W + c + at;
            }
        }
    }
    const int nan = probe != probe; /* a NaN somewhere: redo every window with NaN checks */
    for (int oh = 0; oh < g->Ho; oh++) {
        const int h0 = oh * g->sh - g->ph, rows_in = h0 >= 0 && h0 + kh <= g->H;
        for (int ow = 0; ow < Wo; ow++) {
            if (rows_in && !nan && ow == in_lo) ow = in_hi; /* done by the fast path */
            if (ow >= Wo) break;
            max_pool_window(g, xq, oh, ow, &yq[(size_t)oh * Wo + ow], &aq[(size_t)oh * Wo + ow]);
        }
    }
}

CT_KERNEL
ct_tensor *ct_max_pool2d(ct_tape *tape, ct_tensor *x, ct_pool2d_opts p) {
    const pool_geom g = pool_setup("ct_max_pool2d", x, p);
    ct_node *nd;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(g.N, g.C, g.Ho, g.Wo), &ct_op_max_pool2d, &x, 1, &nd);
    const size_t planes = (size_t)g.N * g.C, in_plane = (size_t)g.H * g.W, out_plane = (size_t)g.Ho * g.Wo;
    /* the argmax is kept for the backward; without a node it is scratch (branch-free kernels
     * compute it anyway) and goes with the arena */
    int *argmax = ct_arena_alloc(ct_tape_arena(tape), planes * out_plane * sizeof *argmax);
    if (nd) {
        pool_save(nd, &g);
        nd->extra = argmax;
    }
#pragma omp parallel for schedule(static) if (pool_work(&g) > PAR_MIN)
    for (size_t q = 0; q < planes; q++)
        max_pool_plane(&g, x->data + q * in_plane, y->data + q * out_plane, argmax + q * out_plane);
    return y;
}

/* ---- avg_pool2d: y[n,c,oh,ow] = Σ_window x / D;  dx[window] += dy / D ------------------------
 * D = kh·kw with count_include_pad (PyTorch's default: padding counts as zeros; every window
 * lies inside the padded input here, so it always has kh·kw positions), else the number of
 * input elements the window covers. */
static inline ct_real avg_divisor(const pool_geom *g, int oh, int ow) {
    return g->include_pad ? (ct_real)(g->kh * g->kw)
                          : (ct_real)(covered(oh, g->sh, g->ph, g->kh, g->H) * covered(ow, g->sw, g->pw, g->kw, g->W));
}

CT_KERNEL
static void avg_pool2d_backward(ct_tape *tape, ct_node *nd) {
    ct_real *dx = ct_grad_of(tape, nd->in[0]);
    if (!dx) return;
    const pool_geom g = pool_load(nd);
    const ct_real *dy = nd->out->grad;
    const size_t planes = (size_t)g.N * g.C, in_plane = (size_t)g.H * g.W, out_plane = (size_t)g.Ho * g.Wo;
    const int sw = g.sw;
#pragma omp parallel for schedule(static) if (pool_work(&g) > PAR_MIN)
    for (size_t q = 0; q < planes; q++)
        for (int oh = 0; oh < g.Ho; oh++) {
            const ct_real *restrict dyr = dy + q * out_plane + (size_t)oh * g.Wo;
            for (int i = 0; i < g.kh; i++) {
                const int ih = oh * g.sh - g.ph + i;
                if (ih < 0 || ih >= g.H) continue;
                ct_real *restrict row = dx + q * in_plane + (size_t)ih * g.W;
                for (int j = 0; j < g.kw; j++) {
                    const int off = j - g.pw;
                    int lo, hi;
                    valid_range(off, sw, g.W, g.Wo, &lo, &hi);
                    for (int ow = lo; ow < hi; ow++) row[ow * sw + off] += dyr[ow] / avg_divisor(&g, oh, ow);
                }
            }
        }
}
const ct_op ct_op_avg_pool2d = {"avg_pool2d", "y = Σ_window x / D; dx[window] += dy / D", avg_pool2d_backward};

CT_KERNEL
ct_tensor *ct_avg_pool2d(ct_tape *tape, ct_tensor *x, ct_pool2d_opts p) {
    const pool_geom g = pool_setup("ct_avg_pool2d", x, p);
    ct_node *nd;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(g.N, g.C, g.Ho, g.Wo), &ct_op_avg_pool2d, &x, 1, &nd);
    if (nd) pool_save(nd, &g);
    const size_t planes = (size_t)g.N * g.C, in_plane = (size_t)g.H * g.W, out_plane = (size_t)g.Ho * g.Wo;
    const int sw = g.sw;
#pragma omp parallel for schedule(static) if (pool_work(&g) > PAR_MIN)
    for (size_t q = 0; q < planes; q++)
        for (int oh = 0; oh < g.Ho; oh++) {
            ct_real *restrict yr = y->data + q * out_plane + (size_t)oh * g.Wo;
            for (int ow = 0; ow < g.Wo; ow++) yr[ow] = 0;
            for (int i = 0; i < g.kh; i++) {
                const int ih = oh * g.sh - g.ph + i;
                if (ih < 0 || ih >= g.H) continue;
                const ct_real *restrict row = x->data + q * in_plane + (size_t)ih * g.W;
                for (int j = 0; j < g.kw; j++) {
                    const int off = j - g.pw;
                    int lo, hi;
                    valid_range(off, sw, g.W, g.Wo, &lo, &hi);
#pragma omp simd
                    for (int ow = lo; ow < hi; ow++) yr[ow] += row[ow * sw + off];
                }
            }
            for (int ow = 0; ow < g.Wo; ow++) yr[ow] /= avg_divisor(&g, oh, ow);
        }
    return y;
}

/* ---- global_avg_pool2d: y[n,c] = (1/HW) Σ_{h,w} x[n,c,h,w];  dx[n,c,h,w] += dy[n,c] / HW ---- */
CT_KERNEL
static void global_avg_pool2d_backward(ct_tape *tape, ct_node *nd) {
    ct_tensor *x = nd->in[0];
    ct_real *dx = ct_grad_of(tape, x);
    if (!dx) return;
    const size_t planes = (size_t)x->shape[0] * x->shape[1], hw = (size_t)x->shape[2] * x->shape[3];
    const ct_real *dy = nd->out->grad;
#pragma omp parallel for schedule(static) if (x->size > PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        ct_real *restrict d = dx + q * hw;
        const ct_real v = dy[q] / (ct_real)hw;
#pragma omp simd
        for (size_t i = 0; i < hw; i++) d[i] += v;
    }
}
const ct_op ct_op_global_avg_pool2d = {"global_avg_pool2d", "y[n,c] = mean_{h,w} x[n,c,h,w]; dx = dy / HW",
                                       global_avg_pool2d_backward};

CT_KERNEL
ct_tensor *ct_global_avg_pool2d(ct_tape *tape, ct_tensor *x) {
    CT_CHECK(x, "ct_global_avg_pool2d", "input is NULL");
    CT_CHECK(x->ndim == 4 && x->shape[2] > 0 && x->shape[3] > 0, "ct_global_avg_pool2d",
             "input must be 4-D (N, C, H, W) with H, W >= 1, got %s", ct_shp(x));
    ct_node *nd;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(x->shape[0], x->shape[1]), &ct_op_global_avg_pool2d, &x, 1, &nd);
    const size_t planes = (size_t)x->shape[0] * x->shape[1], hw = (size_t)x->shape[2] * x->shape[3];
#pragma omp parallel for schedule(static) if (x->size > PAR_MIN)
    for (size_t q = 0; q < planes; q++) {
        const ct_real *restrict s = x->data + q * hw;
        ct_real acc = 0;
#pragma omp simd reduction(+ : acc)
        for (size_t i = 0; i < hw; i++) acc += s[i];
        y->data[q] = acc / (ct_real)hw;
    }
    return y;
}
