/* autograd/ops.h — the tape and every differentiable op.
 *
 * The mental model (micrograd's, in C): every op computes its output now and appends one node
 * {op, out, inputs, saved} to the tape. ct_backward() seeds d(loss) = 1 and walks the nodes in
 * reverse, and each op's backward *adds* into its inputs' gradients. The tape is already in
 * execution order, so no topological sort is needed.
 *
 * Memory: every tensor an op returns lives in the tape's arena and disappears at
 * ct_tape_reset(). Parameters and other heap tensors (ct_tensor_new*) outlive the tape.
 *
 * Broadcasting follows NumPy: shapes are aligned on the right; a dimension of 1 stretches.
 * Axes may be negative (-1 is the last). Gradients at kinks follow PyTorch: relu'(0) = 0,
 * |x|'(0) = 0, clamp passes the gradient on the closed interval [lo, hi], maximum/minimum split
 * it evenly on ties, max along an axis sends it to the first maximum. */
#ifndef CTAPE_AUTOGRAD_OPS_H
#define CTAPE_AUTOGRAD_OPS_H

#include "../core/core.h"

typedef struct ct_tape ct_tape;
typedef struct ct_node ct_node; /* one recorded op application (autograd/op.h) */
typedef struct ct_op ct_op; /* defined in autograd/op.h, for op authors */

/* ---- the tape ---------------------------------------------------------------------------- */
/* The life of a tape, one training step at a time:
 *     forward (ops record nodes) -> ct_backward -> optimizer step -> ct_tape_reset
 * Rules the tape enforces (each breach stops with a message naming it and the fix):
 *  - A tape tensor lives until the next ct_tape_reset of its tape. Passing one to an op or to
 *    ct_backward after that (or to another tape) is refused. Its memory is reused by the next step:
 *    reading x->data after the reset reads another tensor (the SANITIZE=1 build reports it). Copy
 *    what must outlive the step first (a loss value into a double, a tensor with ct_tensor_new +
 *    ct_tensor_copy_from).
 *  - ct_backward can run more than once on one tape (PyTorch's retain_graph=True): each pass starts
 *    from fresh gradients on the intermediate tensors and adds into the leaves (parameters and
 *    ct_tape_requires_grad tensors), so a second backward of the same loss doubles the parameters'
 *    gradients, and a backward of a second loss adds its gradient alone. A forward, backward,
 *    forward, backward without a reset in between (SAM's closure, gradient accumulation) therefore
 *    gives the same gradients as with one; the reset only frees the memory. A tape that is never
 *    reset grows every step: ct_backward says so on stderr after many passes.
 *  - A freed tape (ct_tape_free) is refused where it can be recognised. */
ct_tape *ct_tape_new(void);
void ct_tape_free(ct_tape *tape);
/* Drops every node and every tape tensor in O(1); parameters keep their data and grads. */
void ct_tape_reset(ct_tape *tape);
/* Evaluation mode: while `enabled` is 0, ops compute but record nothing and their outputs do
 * not require grad. Returns the previous setting, so regions nest:
 *   int was = ct_tape_grad_enabled(tape, 0); ...; ct_tape_grad_enabled(tape, was); */
int ct_tape_grad_enabled(ct_tape *tape, int enabled);
/* A hook ct_backward calls with each parameter (a ct_model parameter) as soon as its gradient is final
 * in this pass: right after the backward of the parameter's first use in the forward, the last node
 * of the reverse walk that adds to it. Data-parallel training starts a parameter's all-reduce there
 * while the backward goes on (optim/dist.h). Called once per parameter per ct_backward; NULL removes
 * it. */
typedef void (*ct_grad_ready_fn)(ct_tensor *param, void *user);
void ct_tape_on_grad_ready(ct_tape *tape, ct_grad_ready_fn fn, void *user);
int ct_tape_node_count(const ct_tape *tape);
const ct_node *ct_tape_node(const ct_tape *tape, int i);

/* Anomaly mode (torch.autograd.detect_anomaly): every op's output is checked for NaN/Inf when the
 * next op starts (and at ct_backward and ct_tape_reset), every op's inputs that no op produced
 * (parameters, data) when it starts, and every gradient right after the backward that wrote it.
 * The first non-finite value stops the program with the op, its call site, the shapes and the
 * index of the value. Off by default (one untaken branch per op); CTAPE_ANOMALY=1 in the
 * environment turns it on at start-up. Returns the previous setting. Process-wide. */
int ct_set_anomaly(int enabled);

/* Arena tensors: zero-filled, or copied from `data` (shape-size elements). No grad. */
ct_tensor *ct_tape_zeros(ct_tape *tape, ct_shape shape);
ct_tensor *ct_tape_tensor_from(ct_tape *tape, ct_shape shape, const ct_real *data);
/* Marks an arena tensor as a leaf that collects a gradient (its grad is allocated on first
 * use, in the arena). Heap leaves use ct_tensor_new_grad instead. */
void ct_tape_requires_grad(ct_tape *tape, ct_tensor *t);

/* Backward from a scalar (one-element) tensor: d(out) = 1. */
void ct_backward(ct_tape *tape, ct_tensor *out);
/* Backward from any tensor with a given cotangent (out->size elements): d(out) = cotangent. */
void ct_backward_with(ct_tape *tape, ct_tensor *out, const ct_real *cotangent);
/* Learners: one line per node ("  3 relu        (128, 512) -> (128, 512)" and its math), and
 * Graphviz (`dot -Tpng`), where each tensor is one node: a shared input has an edge to every op
 * that reads it (its gradient is the sum over those uses), parameters blue, inputs grey, ops pale yellow. */
void ct_tape_print(const ct_tape *tape, FILE *out);
void ct_tape_write_dot(const ct_tape *tape, FILE *out);
/* The same with what the tensors hold: .values and .grads (after a backward) print the first
 * .max_elements elements (default 4; 3 in Graphviz) and, for longer tensors, their mean and range;
 * the leaves (parameters and inputs) are listed first. .compact leaves out the math. */
typedef struct {
    int values, grads, max_elements, compact;
} ct_print_opts;
#define CT_PRINT(...) CT_WITH_DEFAULTS(ct_print_opts, (.values = 0, .grads = 0, .max_elements = 4, .compact = 0), __VA_ARGS__)
void ct_tape_print_with(const ct_tape *tape, FILE *out, ct_print_opts opts);
void ct_tape_write_dot_with(const ct_tape *tape, FILE *out, ct_print_opts opts);

/* ---- ops --------------------------------------------------------------------------------- */
/* Stop-gradient: the same values, no gradient flows back through the result. */
ct_tensor *ct_detach(ct_tape *tape, ct_tensor *x);

/* Element-wise binary, broadcasting. */
ct_tensor *ct_add(ct_tape *tape, ct_tensor *a, ct_tensor *b);     /* a + b */
ct_tensor *ct_sub(ct_tape *tape, ct_tensor *a, ct_tensor *b);     /* a − b */
ct_tensor *ct_mul(ct_tape *tape, ct_tensor *a, ct_tensor *b);     /* a · b */
ct_tensor *ct_div(ct_tape *tape, ct_tensor *a, ct_tensor *b);     /* a / b */
ct_tensor *ct_pow(ct_tape *tape, ct_tensor *a, ct_tensor *b);     /* a^b, a > 0 where b varies */
ct_tensor *ct_maximum(ct_tape *tape, ct_tensor *a, ct_tensor *b); /* max(a, b) */
ct_tensor *ct_minimum(ct_tape *tape, ct_tensor *a, ct_tensor *b); /* min(a, b) */
/* cond ≠ 0 ? a : b; no gradient to cond. */
ct_tensor *ct_where(ct_tape *tape, ct_tensor *cond, ct_tensor *a, ct_tensor *b);

/* Element-wise unary. */
ct_tensor *ct_neg(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_add_scalar(ct_tape *tape, ct_tensor *x, double c);  /* x + c */
ct_tensor *ct_mul_scalar(ct_tape *tape, ct_tensor *x, double c);  /* c · x */
ct_tensor *ct_pow_scalar(ct_tape *tape, ct_tensor *x, double p);  /* x^p */
ct_tensor *ct_exp(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_log(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_sqrt(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_abs(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_clamp(ct_tape *tape, ct_tensor *x, double lo, double hi);
ct_tensor *ct_relu(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_leaky_relu(ct_tape *tape, ct_tensor *x, double slope); /* PyTorch: 0.01 */
ct_tensor *ct_gelu(ct_tape *tape, ct_tensor *x);       /* x·Φ(x), the erf form */
ct_tensor *ct_gelu_tanh(ct_tape *tape, ct_tensor *x);  /* the tanh approximation */
ct_tensor *ct_silu(ct_tape *tape, ct_tensor *x);       /* x·σ(x) */
ct_tensor *ct_sigmoid(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_tanh(ct_tape *tape, ct_tensor *x);
/* log(1 + e^(βx))/β, linear above x·β > threshold (PyTorch: β = 1, threshold = 20). */
ct_tensor *ct_softplus(ct_tape *tape, ct_tensor *x, double beta, double threshold);

/* Reductions along one axis (keepdim keeps it as size 1) and over everything (scalar, shape ()). */
ct_tensor *ct_sum(ct_tape *tape, ct_tensor *x, int axis, int keepdim);
ct_tensor *ct_mean(ct_tape *tape, ct_tensor *x, int axis, int keepdim);
ct_tensor *ct_max(ct_tape *tape, ct_tensor *x, int axis, int keepdim);
ct_tensor *ct_logsumexp(ct_tape *tape, ct_tensor *x, int axis, int keepdim);
ct_tensor *ct_sum_all(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_mean_all(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_max_all(ct_tape *tape, ct_tensor *x);
ct_tensor *ct_logsumexp_all(ct_tape *tape, ct_tensor *x);

/* Matrix products through OpenBLAS; transposes are GEMM flags, never copies.
 * matmul: (M,K)·(K,N) -> (M,N); with trans_a, a is given as (K,M); with trans_b, b as (N,K).
 * bmm: (B,M,K)·(B,K,N) -> (B,M,N), leading batch dims flattened; a batch of 1 broadcasts. */
ct_tensor *ct_matmul(ct_tape *tape, ct_tensor *a, ct_tensor *b);
ct_tensor *ct_matmul_t(ct_tape *tape, ct_tensor *a, int trans_a, ct_tensor *b, int trans_b);
ct_tensor *ct_bmm(ct_tape *tape, ct_tensor *a, ct_tensor *b);
ct_tensor *ct_bmm_t(ct_tape *tape, ct_tensor *a, int trans_a, ct_tensor *b, int trans_b);
/* x·Wᵀ + b, fused: x (N, in), W (out, in), b (out) or NULL -> (N, out). */
ct_tensor *ct_linear(ct_tape *tape, ct_tensor *x, ct_tensor *w, ct_tensor *b);

/* Shape ops. reshape takes one -1 to infer; it shares the data (no copy). */
ct_tensor *ct_reshape(ct_tape *tape, ct_tensor *x, ct_shape shape);
ct_tensor *ct_permute(ct_tape *tape, ct_tensor *x, const int *perm);
ct_tensor *ct_transpose(ct_tape *tape, ct_tensor *x, int axis0, int axis1);
/* Elements start..end-1 along axis (negative start/end count from the end, as in Python). */
ct_tensor *ct_slice(ct_tape *tape, ct_tensor *x, int axis, int start, int end);
ct_tensor *ct_concat(ct_tape *tape, ct_tensor *const *xs, int n, int axis);
/* out[.., i, ..] = x[.., index[i], ..] along axis: PyTorch index_select. Backward accumulates
 * into repeated indices. */
ct_tensor *ct_index_select(ct_tape *tape, ct_tensor *x, int axis, const int *index, int n);
/* x (N, C), index (N): out[i] = x[i, index[i]] -> (N): gather of one element per row
 * (picking the logit of each label). */
ct_tensor *ct_gather_rows(ct_tape *tape, ct_tensor *x, const int *index, int n);
/* (n, classes) of 0/1; a constant (no gradient). Fatal on a label outside [0, classes). */
ct_tensor *ct_one_hot(ct_tape *tape, const int *labels, int n, int classes);

/* Normalisations along an axis. */
ct_tensor *ct_softmax(ct_tape *tape, ct_tensor *x, int axis);
ct_tensor *ct_log_softmax(ct_tape *tape, ct_tensor *x, int axis);
/* x / max(‖x‖₂, eps) along axis (PyTorch F.normalize; eps 1e-12 there). */
ct_tensor *ct_l2_normalize(ct_tape *tape, ct_tensor *x, int axis, double eps);

/* ---- fused nn ops ------------------------------------------------------------------------ */
/* conv2d: x (N, C, H, W), w (O, C/groups, kh, kw), b (O) or NULL -> (N, O, Ho, Wo) with
 *   Ho = (H + 2·pad_h − dilation_h·(kh − 1) − 1) / stride_h + 1   (and the same for W).
 * Lowered to GEMM over the whole batch (autograd/conv.c). */
typedef struct {
    int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
} ct_conv2d_op_opts;
#define CT_CONV2D_OP(...) CT_WITH_DEFAULTS(ct_conv2d_op_opts, (.stride_h = 1, .stride_w = 1, .pad_h = 0, \
    .pad_w = 0, .dilation_h = 1, .dilation_w = 1, .groups = 1), __VA_ARGS__)
ct_tensor *ct_conv2d(ct_tape *tape, ct_tensor *x, ct_tensor *w, ct_tensor *b, ct_conv2d_op_opts p);

/* Pooling over (N, C, H, W). stride 0 means stride = kernel (PyTorch's default). max_pool2d pads
 * with −∞ and sends the gradient to the first maximum of each window; avg_pool2d counts the
 * padding in the divisor unless count_include_pad is 0 (PyTorch: included). */
typedef struct {
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    int count_include_pad;
} ct_pool2d_opts;
#define CT_POOL2D(...) CT_WITH_DEFAULTS(ct_pool2d_opts, (.kernel_h = 2, .kernel_w = 2, .stride_h = 0, \
    .stride_w = 0, .pad_h = 0, .pad_w = 0, .count_include_pad = 1), __VA_ARGS__)
ct_tensor *ct_max_pool2d(ct_tape *tape, ct_tensor *x, ct_pool2d_opts p);
ct_tensor *ct_avg_pool2d(ct_tape *tape, ct_tensor *x, ct_pool2d_opts p);
/* (N, C, H, W) -> (N, C): the mean over H·W. */
ct_tensor *ct_global_avg_pool2d(ct_tape *tape, ct_tensor *x);

/* Batch norm over (N, C) or (N, C, H, W), per channel c:
 *   training: y = γ·(x − μ_B)/√(σ²_B + eps) + β with the batch's biased variance, and
 *             running ← (1 − momentum)·running + momentum·batch stat (variance unbiased), as PyTorch;
 *   eval:     the same with the running mean and variance (no update).
 * gamma/beta (C) may be NULL (no affine); running_mean/var (C) are plain buffers (no grad). */
ct_tensor *ct_batch_norm(ct_tape *tape, ct_tensor *x, ct_tensor *gamma, ct_tensor *beta,
                         ct_tensor *running_mean, ct_tensor *running_var, int training,
                         double momentum, double eps);
/* Layer norm over the trailing norm_dims dimensions: y = γ·(x − μ)/√(σ² + eps) + β, biased σ²;
 * gamma/beta have the shape of those dimensions, or are NULL. */
ct_tensor *ct_layer_norm(ct_tape *tape, ct_tensor *x, int norm_dims, ct_tensor *gamma,
                         ct_tensor *beta, double eps);
/* Inverted dropout: each element is zeroed with probability p and the rest scaled by 1/(1 − p),
 * drawn from rng; the identity (no node) when training is 0 or p is 0. */
ct_tensor *ct_dropout(ct_tape *tape, ct_tensor *x, double p, int training, ct_rng *rng);
/* Embedding lookup: weight (V, D), indices of shape index_shape -> (index_shape..., D). The
 * backward accumulates into repeated indices. Fatal on an index outside [0, V). */
ct_tensor *ct_embedding(ct_tape *tape, ct_tensor *weight, const int *indices, ct_shape index_shape);
/* Scaled dot-product attention: q (B, H, L, d), k (B, H, S, d), v (B, H, S, dv) -> (B, H, L, dv),
 *   softmax(q·kᵀ/√d + mask)·v
 * where the mask is −∞ at j > i when causal, and at keys with key_padding[b·S + j] ≠ 0 (a B×S
 * byte array, or NULL). A query whose keys are all masked gets an output of NaN, as PyTorch 1.13
 * (Debian's; MultiheadAttention and the composed softmax) gives it, and gradients as PyTorch ≥ 2.5's
 * scaled_dot_product_attention (whose output there is 0): the row's probabilities count as 0, so it
 * adds nothing to the gradients of q, k and v, which stay finite. */
ct_tensor *ct_attention(ct_tape *tape, ct_tensor *q, ct_tensor *k, ct_tensor *v, int causal,
                        const uint8_t *key_padding);
/* The same op on heads packed side by side in token-major matrices, the layout of multi-head
 * attention's projections: q (B·L, ≥ col_q + H·D), k and v (B·S, ≥ col + H·D), head h of q in
 * columns col_q + h·D .. + D -> o (B·L, H·D). q, k and v may be one (B·L, 3·H·D) tensor at columns
 * 0, H·D and 2·H·D (self-attention's fused projection); no head permutes are needed. */
ct_tensor *ct_attention_packed(ct_tape *tape, ct_tensor *q, int col_q, ct_tensor *k, int col_k, ct_tensor *v,
                               int col_v, int batch, int heads, int head_dim, int causal,
                               const uint8_t *key_padding);

/* Record the caller's file and line so a fatal error points at user code. The library itself
 * is compiled with CT_BUILDING_LIBRARY, so internal calls keep the user's site. */
#ifndef CT_BUILDING_LIBRARY
#define ct_detach(...) CT_SITE_CALL(ct_detach, __VA_ARGS__)
#define ct_add(...) CT_SITE_CALL(ct_add, __VA_ARGS__)
#define ct_sub(...) CT_SITE_CALL(ct_sub, __VA_ARGS__)
#define ct_mul(...) CT_SITE_CALL(ct_mul, __VA_ARGS__)
#define ct_div(...) CT_SITE_CALL(ct_div, __VA_ARGS__)
#define ct_pow(...) CT_SITE_CALL(ct_pow, __VA_ARGS__)
#define ct_maximum(...) CT_SITE_CALL(ct_maximum, __VA_ARGS__)
#define ct_minimum(...) CT_SITE_CALL(ct_minimum, __VA_ARGS__)
#define ct_where(...) CT_SITE_CALL(ct_where, __VA_ARGS__)
#define ct_neg(...) CT_SITE_CALL(ct_neg, __VA_ARGS__)
#define ct_add_scalar(...) CT_SITE_CALL(ct_add_scalar, __VA_ARGS__)
#define ct_mul_scalar(...) CT_SITE_CALL(ct_mul_scalar, __VA_ARGS__)
#define ct_pow_scalar(...) CT_SITE_CALL(ct_pow_scalar, __VA_ARGS__)
#define ct_exp(...) CT_SITE_CALL(ct_exp, __VA_ARGS__)
#define ct_log(...) CT_SITE_CALL(ct_log, __VA_ARGS__)
#define ct_sqrt(...) CT_SITE_CALL(ct_sqrt, __VA_ARGS__)
#define ct_abs(...) CT_SITE_CALL(ct_abs, __VA_ARGS__)
#define ct_clamp(...) CT_SITE_CALL(ct_clamp, __VA_ARGS__)
#define ct_relu(...) CT_SITE_CALL(ct_relu, __VA_ARGS__)
#define ct_leaky_relu(...) CT_SITE_CALL(ct_leaky_relu, __VA_ARGS__)
#define ct_gelu(...) CT_SITE_CALL(ct_gelu, __VA_ARGS__)
#define ct_gelu_tanh(...) CT_SITE_CALL(ct_gelu_tanh, __VA_ARGS__)
#define ct_silu(...) CT_SITE_CALL(ct_silu, __VA_ARGS__)
#define ct_sigmoid(...) CT_SITE_CALL(ct_sigmoid, __VA_ARGS__)
#define ct_tanh(...) CT_SITE_CALL(ct_tanh, __VA_ARGS__)
#define ct_softplus(...) CT_SITE_CALL(ct_softplus, __VA_ARGS__)
#define ct_sum(...) CT_SITE_CALL(ct_sum, __VA_ARGS__)
#define ct_mean(...) CT_SITE_CALL(ct_mean, __VA_ARGS__)
#define ct_max(...) CT_SITE_CALL(ct_max, __VA_ARGS__)
#define ct_logsumexp(...) CT_SITE_CALL(ct_logsumexp, __VA_ARGS__)
#define ct_sum_all(...) CT_SITE_CALL(ct_sum_all, __VA_ARGS__)
#define ct_mean_all(...) CT_SITE_CALL(ct_mean_all, __VA_ARGS__)
#define ct_max_all(...) CT_SITE_CALL(ct_max_all, __VA_ARGS__)
#define ct_logsumexp_all(...) CT_SITE_CALL(ct_logsumexp_all, __VA_ARGS__)
#define ct_matmul(...) CT_SITE_CALL(ct_matmul, __VA_ARGS__)
#define ct_matmul_t(...) CT_SITE_CALL(ct_matmul_t, __VA_ARGS__)
#define ct_bmm(...) CT_SITE_CALL(ct_bmm, __VA_ARGS__)
#define ct_bmm_t(...) CT_SITE_CALL(ct_bmm_t, __VA_ARGS__)
#define ct_linear(...) CT_SITE_CALL(ct_linear, __VA_ARGS__)
#define ct_reshape(...) CT_SITE_CALL(ct_reshape, __VA_ARGS__)
#define ct_permute(...) CT_SITE_CALL(ct_permute, __VA_ARGS__)
#define ct_transpose(...) CT_SITE_CALL(ct_transpose, __VA_ARGS__)
#define ct_slice(...) CT_SITE_CALL(ct_slice, __VA_ARGS__)
#define ct_concat(...) CT_SITE_CALL(ct_concat, __VA_ARGS__)
#define ct_index_select(...) CT_SITE_CALL(ct_index_select, __VA_ARGS__)
#define ct_gather_rows(...) CT_SITE_CALL(ct_gather_rows, __VA_ARGS__)
#define ct_one_hot(...) CT_SITE_CALL(ct_one_hot, __VA_ARGS__)
#define ct_softmax(...) CT_SITE_CALL(ct_softmax, __VA_ARGS__)
#define ct_log_softmax(...) CT_SITE_CALL(ct_log_softmax, __VA_ARGS__)
#define ct_l2_normalize(...) CT_SITE_CALL(ct_l2_normalize, __VA_ARGS__)
#define ct_conv2d(...) CT_SITE_CALL(ct_conv2d, __VA_ARGS__)
#define ct_max_pool2d(...) CT_SITE_CALL(ct_max_pool2d, __VA_ARGS__)
#define ct_avg_pool2d(...) CT_SITE_CALL(ct_avg_pool2d, __VA_ARGS__)
#define ct_global_avg_pool2d(...) CT_SITE_CALL(ct_global_avg_pool2d, __VA_ARGS__)
#define ct_batch_norm(...) CT_SITE_CALL(ct_batch_norm, __VA_ARGS__)
#define ct_layer_norm(...) CT_SITE_CALL(ct_layer_norm, __VA_ARGS__)
#define ct_dropout(...) CT_SITE_CALL(ct_dropout, __VA_ARGS__)
#define ct_embedding(...) CT_SITE_CALL(ct_embedding, __VA_ARGS__)
#define ct_attention(...) CT_SITE_CALL(ct_attention, __VA_ARGS__)
#define ct_attention_packed(...) CT_SITE_CALL(ct_attention_packed, __VA_ARGS__)
#define ct_backward(...) CT_SITE_CALL_VOID(ct_backward, __VA_ARGS__)
#define ct_backward_with(...) CT_SITE_CALL_VOID(ct_backward_with, __VA_ARGS__)
#endif

/* ---- gradient checking ------------------------------------------------------------------- */
/* Builds the function under test from its inputs on a tape. */
typedef ct_tensor *(*ct_gradcheck_fn)(ct_tape *tape, ct_tensor *const *inputs, void *ctx);

typedef struct {
    double step;      /* central-difference step h */
    double rtol, atol;/* pass when |analytic − numeric| <= atol + rtol·|numeric| */
    uint64_t seed;    /* for the random cotangent */
} ct_gradcheck_opts;

/* Defaults suited to the build: tight in float64, loose in float32. */
#ifdef CT_PRECISION_64
#define CT_GRADCHECK(...) CT_WITH_DEFAULTS(ct_gradcheck_opts, (.step = 1e-6, .rtol = 1e-5, .atol = 1e-7, .seed = 1), __VA_ARGS__)
#else
#define CT_GRADCHECK(...) CT_WITH_DEFAULTS(ct_gradcheck_opts, (.step = 1e-2, .rtol = 5e-2, .atol = 5e-3, .seed = 1), __VA_ARGS__)
#endif

typedef struct {
    int passed;
    double max_abs_err, max_rel_err; /* at the worst element; max_rel_err is NaN where |numeric|
                                        is too small for a relative error to mean anything */
    int worst_input;                 /* which input, -1 when every element passed */
    size_t worst_index;              /* flat index inside that input */
    double analytic, numeric;        /* the two values there */
    size_t checked;                  /* elements compared */
    int repeat_ok;                   /* a second backward doubled every gradient */
    double repeat_err;               /* its worst deviation, relative to the largest gradient */
} ct_gradcheck_result;

/* Checks d<c, f(inputs)>/d inputs for a random cotangent c against central differences over
 * every element of every input that requires grad, and that a second backward on the same tape
 * adds the same gradient again. Inputs are heap tensors (ct_tensor_new_grad)
 * or tape tensors; the function is re-run on a private tape, so `fn` must be deterministic. */
ct_gradcheck_result ct_gradcheck(ct_gradcheck_fn fn, void *ctx, ct_tensor *const *inputs,
                                 int n_inputs, ct_gradcheck_opts opts);
/* One line: "ok (max abs 1.2e-09 rel 3.4e-08)" or "FAIL at input 1 [17]: analytic .. numeric ..". */
void ct_gradcheck_describe(const ct_gradcheck_result *r, char *buf, size_t len);

#endif
