/* nn/nn.h — layers as modules, and the model that names and owns their parameters.
 *
 * A ct_model is the parameter registry: every parameter is a heap tensor with a persistent grad
 * and a name that follows the composition ("fc1.weight"), so optimizers walk one flat list and
 * checkpoints are addressed by name. Layers are ct_modules owned by the model. */
#ifndef CTAPE_NN_NN_H
#define CTAPE_NN_NN_H

#include "../autograd/ops.h"

typedef struct ct_model ct_model;
typedef struct ct_module ct_module;

/* A layer: a name, a forward on the tape, and its parameters (registered on the model under
 * "<name>.weight" and so on). Names follow the composition: the first layer of a sequential
 * called "features" is named "features.0" by whoever creates it, as in PyTorch's state_dict.
 * A layer implementation embeds ct_module as its first member. */
struct ct_module {
    const char *kind;          /* "linear", "conv2d", "sequential", ... */
    char name[96];             /* "fc1", "features.0" */
    ct_tensor *(*forward)(ct_tape *tape, ct_module *self, ct_tensor *x);
    void (*destroy)(ct_module *self);
    int training;              /* 1 in training mode, 0 in evaluation */
};

/* The model starts with seed 0 for initialisation; set another before adding layers. */
ct_model *ct_model_new(void);
void ct_model_free(ct_model *m);
void ct_model_set_seed(ct_model *m, uint64_t seed);
ct_rng *ct_model_rng(ct_model *m);
/* The random streams a training run draws from, which a checkpoint saves so that a resumed run
 * draws the same numbers (ct_checkpoint_save): stream 0 is the model's own ("model"), then one per
 * module that registered its stream (dropout: "<name>.rng"). The model borrows rng, which must live
 * as long as the model (a module's own struct). */
void ct_model_add_rng(ct_model *m, const char *name, ct_rng *rng);
int ct_model_rng_count(const ct_model *m);
ct_rng *ct_model_rng_stream(ct_model *m, int i, const char **name);

/* Buffers: persistent tensors without gradients (batch norm's running statistics). They are
 * saved and loaded with the parameters but optimizers never see them. */
ct_tensor *ct_model_add_buffer(ct_model *m, const char *name, ct_shape shape);
int ct_model_buffer_count(const ct_model *m);
ct_tensor *ct_model_buffer(const ct_model *m, int i);
ct_tensor *ct_model_find_buffer(const ct_model *m, const char *name); /* NULL when absent */

/* Registers a zero-filled parameter with a grad buffer under `name`; fatal on a duplicate. */
ct_tensor *ct_model_add_param(ct_model *m, const char *name, ct_shape shape);
int ct_model_param_count(const ct_model *m);
ct_tensor *ct_model_param(const ct_model *m, int i);
ct_tensor *ct_model_find_param(const ct_model *m, const char *name); /* NULL when absent */
size_t ct_model_num_elements(const ct_model *m);                   /* total parameter count */
/* Freezing a parameter by name ("whiten.weight"): it gets no gradient (its grad buffer is freed and
 * the tape sends it none) and every optimizer leaves it exactly as it is while frozen: no update,
 * no momentum, no weight decay (a zeroed gradient is not enough: momentum and decay still move
 * the weight). Its optimizer state is kept; ct_model_unfreeze gives it a zeroed grad again and
 * training resumes from that state (PyTorch's requires_grad = False with zero_grad(set_to_none)).
 * Call between steps, not between a forward and its backward. An unknown name is fatal. */
void ct_model_freeze(ct_model *m, const char *name);
void ct_model_unfreeze(ct_model *m, const char *name);
int ct_model_frozen(const ct_model *m, const char *name);

void ct_model_zero_grad(ct_model *m);
/* Takes ownership of a module (freed with the model). */
ct_module *ct_model_add_module(ct_model *m, ct_module *mod);
void ct_model_train(ct_model *m, int training); /* reaches every module */

/* Runs a module's forward. */
ct_tensor *ct_forward(ct_tape *tape, ct_module *mod, ct_tensor *x);

/* Linear layer y = x·Wᵀ + b, W (out, in), b (out), PyTorch's default init:
 * W ~ U(−1/√in, 1/√in) (Kaiming-uniform with a = √5), b ~ U(−1/√in, 1/√in).
 * Parameters "<name>.weight" and "<name>.bias". */
ct_module *ct_linear_new(ct_model *m, const char *name, int in, int out);
ct_module *ct_linear_new_nobias(ct_model *m, const char *name, int in, int out);
ct_tensor *ct_linear_weight(ct_module *linear);
ct_tensor *ct_linear_bias(ct_module *linear); /* NULL without bias */

/* ---- init schemes (PyTorch's torch.nn.init, seeded) --------------------------------------- */
/* fan_in = size(1)·receptive field, fan_out = size(0)·receptive field, where the receptive field
 * is the product of dims 2.. (1 for a matrix); a vector has fan_in = fan_out = its size. */
typedef enum { CT_FAN_IN, CT_FAN_OUT } ct_fan_mode;
void ct_init_fans(const ct_tensor *t, int *fan_in, int *fan_out);
void ct_init_zeros(ct_tensor *t);
void ct_init_ones(ct_tensor *t);
void ct_init_constant(ct_tensor *t, double value);
void ct_init_uniform(ct_tensor *t, ct_rng *rng, double lo, double hi);
void ct_init_normal(ct_tensor *t, ct_rng *rng, double mean, double std);
/* Kaiming (He): gain = √(2/(1 + a²)) (leaky-relu slope a; a = 0 for relu);
 * uniform bound = gain·√(3/fan), normal std = gain/√fan. PyTorch's layer default is uniform, a = √5. */
void ct_init_kaiming_uniform(ct_tensor *t, ct_rng *rng, double a, ct_fan_mode mode);
void ct_init_kaiming_normal(ct_tensor *t, ct_rng *rng, double a, ct_fan_mode mode);
/* Xavier (Glorot): uniform bound = gain·√(6/(fan_in + fan_out)), normal std = gain·√(2/(fan_in + fan_out)). */
void ct_init_xavier_uniform(ct_tensor *t, ct_rng *rng, double gain);
void ct_init_xavier_normal(ct_tensor *t, ct_rng *rng, double gain);
/* A (semi-)orthogonal matrix from the QR decomposition of a normal one (sign-corrected), times
 * gain; the tensor is viewed as (size(0), rest). */
void ct_init_orthogonal(ct_tensor *t, ct_rng *rng, double gain);
/* Dirac (identity) on the first `filters` filters of a conv weight (out, in, k1, ...): filter i
 * becomes 1 at (input channel i, the centre k/2 of every spatial dim) and 0 elsewhere, replacing
 * its values; filters from `filters` on keep theirs. 0 <= filters <= min(out, in). With an odd
 * kernel and "same" padding such a filter passes input channel i through unchanged.
 * torch.nn.init.dirac_(w) is ct_init_zeros(w) then ct_init_dirac(w, min(out, in)); airbench's
 * convs (dirac_ on w[:in] after the default init) are ct_init_dirac(w, min(out, in)) alone. */
void ct_init_dirac(ct_tensor *t, int filters);

/* ---- composition ------------------------------------------------------------------------- */
/* Runs its children in order. Children are created (and owned) by the model as usual. */
ct_module *ct_sequential_new(ct_model *m, const char *name);
ct_module *ct_sequential_add(ct_module *seq, ct_module *child); /* returns seq */
int ct_sequential_size(const ct_module *seq);
ct_module *ct_sequential_child(const ct_module *seq, int i);
/* y = x + inner(x) (shapes must agree). */
ct_module *ct_residual_new(ct_model *m, const char *name, ct_module *inner);
/* (N, d1, d2, ...) -> (N, d1·d2·...), sharing the data. */
ct_module *ct_flatten_new(ct_model *m, const char *name);
/* Activations as layers, for sequentials. */
ct_module *ct_relu_layer_new(ct_model *m, const char *name);
ct_module *ct_gelu_layer_new(ct_model *m, const char *name);
ct_module *ct_tanh_layer_new(ct_model *m, const char *name);
ct_module *ct_sigmoid_layer_new(ct_model *m, const char *name);

/* Keras-style summary: runs `top` once on zeros of input_shape (no gradients recorded) and
 * prints each module's name, kind, output shape and parameter count, then the totals. */
void ct_model_summary(ct_model *m, ct_module *top, ct_shape input_shape, FILE *out);

/* ---- layers (nn/conv.c, norm.c, dropout.c, embedding.c, attention.c) --------------------- */
/* Conv2d with a square kernel; PyTorch's default init (Kaiming-uniform a = √5, bias
 * U(±1/√fan_in)). Parameters "<name>.weight" (out, in/groups, k, k) and "<name>.bias" (out). */
typedef struct {
    int stride, padding, dilation, groups, bias;
} ct_conv2d_opts;
#define CT_CONV2D(...) CT_WITH_DEFAULTS(ct_conv2d_opts, (.stride = 1, .padding = 0, .dilation = 1, \
    .groups = 1, .bias = 1), __VA_ARGS__)
ct_module *ct_conv2d_new(ct_model *m, const char *name, int in_channels, int out_channels,
                         int kernel, ct_conv2d_opts opts);
ct_tensor *ct_conv2d_weight(ct_module *conv);
ct_tensor *ct_conv2d_bias(ct_module *conv); /* NULL without bias */
/* Patch-whitening initialisation (Page 2018, as airbench94 sets its first conv): over every k×k
 * patch (stride 1) of the first n images (N, C, H, W) — normalised as the network will see them —
 * the second-moment matrix Σ = (1/P)·Σ_p p·pᵀ of the patch vectors p (C·k·k, laid out as the
 * weight's (c, ky, kx); not centred, as airbench), its eigenpairs (λ_i, v_i) by LAPACK's dsyevd,
 * sorted by λ descending, and
 *     weight[i] = v_i/√(λ_i + eps),   weight[D + i] = −v_i/√(λ_i + eps),   D = C·k·k,
 * so the conv needs 2·C·k·k output channels (24 for 2×2 over RGB), groups 1 and dilation 1. Its
 * first D outputs over the fitted patches then have second moments λ_i/(λ_i + eps) on the
 * diagonal and 0 off it (the identity as eps → 0). airbench: n = 5000, eps = 5e-4, weights frozen
 * afterwards. The bias is left as it is (airbench's starts at 0). Σ and the eigenproblem are in
 * double in both builds (P runs to millions of patches). A shape that does not fit is fatal; bad
 * data (a non-finite pixel, λ_i + eps <= 0, LAPACK failing) returns CT_ERR_VALUE with
 * ct_last_error() set and the weight unchanged; CT_OK otherwise. */
int ct_conv2d_init_whitening(ct_module *conv, const ct_tensor *images, int n, double eps);
/* Pooling layers; stride 0 means stride = kernel. */
ct_module *ct_max_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding);
ct_module *ct_avg_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding);
ct_module *ct_global_avg_pool2d_new(ct_model *m, const char *name);

/* Batch norm for (N, C) or (N, C, H, W) inputs: "<name>.weight"/"<name>.bias" (C, ones/zeros)
 * and buffers "<name>.running_mean" (zeros), "<name>.running_var" (ones) and
 * "<name>.num_batches_tracked" (a one-element count, as in PyTorch's state_dict).
 * momentum is PyTorch's: running ← (1 − momentum)·running + momentum·batch statistic (airbench's
 * "momentum 0.6" is 0.4 here). .fixed_scale = 1 (airbench's BN: eps 1e-12, momentum 0.4): the scale
 * is fixed at 1 and only the bias trains; "<name>.weight" is then a buffer of ones, not a
 * parameter, so optimizers never see it and files keep PyTorch's names. */
typedef struct {
    double eps, momentum;
    int affine;
    int fixed_scale;
} ct_batch_norm_opts;
#define CT_BATCH_NORM(...) CT_WITH_DEFAULTS(ct_batch_norm_opts, (.eps = 1e-5, .momentum = 0.1, .affine = 1), __VA_ARGS__)
ct_module *ct_batch_norm_new(ct_model *m, const char *name, int channels, ct_batch_norm_opts opts);
/* Layer norm over the trailing dimensions normalized_shape (eps 1e-5, affine: ones/zeros). */
ct_module *ct_layer_norm_new(ct_model *m, const char *name, ct_shape normalized_shape, double eps);
/* Dropout with probability p; seeded from the model's RNG at creation; identity in eval. */
ct_module *ct_dropout_new(ct_model *m, const char *name, double p);
/* Embedding table "<name>.weight" (num, dim) ~ N(0, 1) as PyTorch. Its input is integer
 * indices, so it has its own forward (ct_forward on it is a fatal error). */
ct_module *ct_embedding_new(ct_model *m, const char *name, int num, int dim);
ct_tensor *ct_embedding_forward(ct_tape *tape, ct_module *emb, const int *indices, ct_shape index_shape);

/* Multi-head attention with torch.nn.MultiheadAttention's semantics (batch_first):
 * "<name>.in_proj_weight" (3E, E), "<name>.in_proj_bias" (3E), "<name>.out_proj.weight" (E, E),
 * "<name>.out_proj.bias" (E); Xavier-uniform in_proj, zero biases. ct_forward runs
 * self-attention; ct_mha_forward takes query (B, L, E), key and value (B, S, E). */
typedef struct {
    int causal;                 /* mask keys after each query position */
    const uint8_t *key_padding; /* B×S bytes, nonzero = ignore that key; or NULL */
} ct_mha_masks;
ct_module *ct_mha_new(ct_model *m, const char *name, int embed_dim, int num_heads);
ct_tensor *ct_mha_forward(ct_tape *tape, ct_module *mha, ct_tensor *query, ct_tensor *key,
                          ct_tensor *value, ct_mha_masks masks);
/* Pre-LN transformer encoder block on (B, L, E):
 *   x = x + attn(ln1(x));  x = x + fc2(gelu(fc1(ln2(x))))
 * children "<name>.ln1", "<name>.attn", "<name>.ln2", "<name>.fc1" (E -> hidden), "<name>.fc2". */
ct_module *ct_transformer_block_new(ct_model *m, const char *name, int embed_dim, int num_heads,
                                    int hidden_dim, int causal);

/* ---- test-time augmentation (nn/tta.c) ---------------------------------------------------- */
/* The logits of a batch averaged over views of it, airbench94's tta_level:
 *   level 0: net(x);
 *   level 1 (mirror): ½·net(x) + ½·net(flip x), flip mirroring left to right;
 *   level 2 (mirror + translate): ½·mirror(x) + ¼·mirror(t₊x) + ¼·mirror(t₋x), where
 *     mirror(v) = ½·net(v) + ½·net(flip v) and t± moves the image one pixel along both axes with
 *     reflect padding: (t₊x)(y, x) = x(r(y − 1), r(x − 1)), (t₋x)(y, x) = x(r(y + 1), r(x + 1)),
 *     r torch's 'reflect' (−1 → 1, n → n − 2); six views weighted ¼, ¼, ⅛, ⅛, ⅛, ⅛.
 * x is (N, C, H, W) (H, W >= 2 for level 2) and net's output (N, K). The model m is in evaluation
 * mode while the views run (its mode restored after) and no gradients are recorded; the views run
 * on a tape of the call's own, reset after each, so memory is one view's. Returns a new heap
 * tensor (N, K) (free it with ct_tensor_free). */
ct_tensor *ct_tta_logits(ct_model *m, ct_module *net, const ct_tensor *x, int level);

/* ---- checkpoints (nn/save.c) --------------------------------------------------------------- */
/* Model files are safetensors (core/safetensors.h: the format, the checks a load makes, the
 * atomic write), readable and writable by PyTorch's safetensors.torch. */
#include "../core/safetensors.h"
/* Saves every parameter and buffer under its name, with the metadata of ct_model_metadata,
 * atomically (ct_safetensors_write): a save killed half-way leaves no file behind, and a failed
 * one any previous file intact. A parameter or buffer holding NaN or ±Inf is not saved:
 * CT_ERR_VALUE naming it and its first such index, nothing written (to keep such values for
 * debugging, write them with ct_safetensors_write). Returns CT_OK or an error code with
 * ct_last_error() set. */
int ct_model_save(const ct_model *m, const char *path);
/* Loads a safetensors file into the model's parameters and buffers by name. Everything is
 * validated first (header length, JSON, dtypes, shapes against the model, offsets in range and
 * tiling the data exactly as the reference implementation requires: no overlap, no hole, nothing
 * after the last tensor; every tensor present and no other); on any error the model is left
 * unchanged. */
int ct_model_load(ct_model *m, const char *path);
/* The model's tensors as the files holding a model list them (ct_model_save/load here,
 * ct_checkpoint_save/load in optim/): every parameter, then every buffer, each under its ->name.
 * ct_model_tensors writes them into out[0 .. ct_model_tensor_count(m)). */
int ct_model_tensor_count(const ct_model *m);
void ct_model_tensors(const ct_model *m, ct_tensor **out);
/* The metadata of those files and of ct_ema_save's (averaged weights ct_model_load reads):
 * "format" "pt" (what safetensors.torch's loader looks for), "framework" "ctape"; key, value,
 * ..., NULL as ct_safetensors_write takes it. */
const char *const *ct_model_metadata(void);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_model_new(...) CT_SITE_CALL(ct_model_new, __VA_ARGS__)
#define ct_model_free(...) CT_SITE_CALL_VOID(ct_model_free, __VA_ARGS__)
#define ct_model_set_seed(...) CT_SITE_CALL_VOID(ct_model_set_seed, __VA_ARGS__)
#define ct_model_rng(...) CT_SITE_CALL(ct_model_rng, __VA_ARGS__)
#define ct_model_add_rng(...) CT_SITE_CALL_VOID(ct_model_add_rng, __VA_ARGS__)
#define ct_model_rng_count(...) CT_SITE_CALL(ct_model_rng_count, __VA_ARGS__)
#define ct_model_rng_stream(...) CT_SITE_CALL(ct_model_rng_stream, __VA_ARGS__)
#define ct_model_add_buffer(...) CT_SITE_CALL(ct_model_add_buffer, __VA_ARGS__)
#define ct_model_buffer_count(...) CT_SITE_CALL(ct_model_buffer_count, __VA_ARGS__)
#define ct_model_buffer(...) CT_SITE_CALL(ct_model_buffer, __VA_ARGS__)
#define ct_model_find_buffer(...) CT_SITE_CALL(ct_model_find_buffer, __VA_ARGS__)
#define ct_model_add_param(...) CT_SITE_CALL(ct_model_add_param, __VA_ARGS__)
#define ct_model_param_count(...) CT_SITE_CALL(ct_model_param_count, __VA_ARGS__)
#define ct_model_param(...) CT_SITE_CALL(ct_model_param, __VA_ARGS__)
#define ct_model_find_param(...) CT_SITE_CALL(ct_model_find_param, __VA_ARGS__)
#define ct_model_freeze(...) CT_SITE_CALL_VOID(ct_model_freeze, __VA_ARGS__)
#define ct_model_unfreeze(...) CT_SITE_CALL_VOID(ct_model_unfreeze, __VA_ARGS__)
#define ct_model_frozen(...) CT_SITE_CALL(ct_model_frozen, __VA_ARGS__)
#define ct_model_num_elements(...) CT_SITE_CALL(ct_model_num_elements, __VA_ARGS__)
#define ct_model_zero_grad(...) CT_SITE_CALL_VOID(ct_model_zero_grad, __VA_ARGS__)
#define ct_model_add_module(...) CT_SITE_CALL(ct_model_add_module, __VA_ARGS__)
#define ct_model_train(...) CT_SITE_CALL_VOID(ct_model_train, __VA_ARGS__)
#define ct_forward(...) CT_SITE_CALL(ct_forward, __VA_ARGS__)
#define ct_linear_new(...) CT_SITE_CALL(ct_linear_new, __VA_ARGS__)
#define ct_linear_new_nobias(...) CT_SITE_CALL(ct_linear_new_nobias, __VA_ARGS__)
#define ct_linear_weight(...) CT_SITE_CALL(ct_linear_weight, __VA_ARGS__)
#define ct_linear_bias(...) CT_SITE_CALL(ct_linear_bias, __VA_ARGS__)
#define ct_init_fans(...) CT_SITE_CALL_VOID(ct_init_fans, __VA_ARGS__)
#define ct_init_zeros(...) CT_SITE_CALL_VOID(ct_init_zeros, __VA_ARGS__)
#define ct_init_ones(...) CT_SITE_CALL_VOID(ct_init_ones, __VA_ARGS__)
#define ct_init_constant(...) CT_SITE_CALL_VOID(ct_init_constant, __VA_ARGS__)
#define ct_init_uniform(...) CT_SITE_CALL_VOID(ct_init_uniform, __VA_ARGS__)
#define ct_init_normal(...) CT_SITE_CALL_VOID(ct_init_normal, __VA_ARGS__)
#define ct_init_kaiming_uniform(...) CT_SITE_CALL_VOID(ct_init_kaiming_uniform, __VA_ARGS__)
#define ct_init_kaiming_normal(...) CT_SITE_CALL_VOID(ct_init_kaiming_normal, __VA_ARGS__)
#define ct_init_xavier_uniform(...) CT_SITE_CALL_VOID(ct_init_xavier_uniform, __VA_ARGS__)
#define ct_init_xavier_normal(...) CT_SITE_CALL_VOID(ct_init_xavier_normal, __VA_ARGS__)
#define ct_init_orthogonal(...) CT_SITE_CALL_VOID(ct_init_orthogonal, __VA_ARGS__)
#define ct_init_dirac(...) CT_SITE_CALL_VOID(ct_init_dirac, __VA_ARGS__)
#define ct_sequential_new(...) CT_SITE_CALL(ct_sequential_new, __VA_ARGS__)
#define ct_sequential_add(...) CT_SITE_CALL(ct_sequential_add, __VA_ARGS__)
#define ct_sequential_size(...) CT_SITE_CALL(ct_sequential_size, __VA_ARGS__)
#define ct_sequential_child(...) CT_SITE_CALL(ct_sequential_child, __VA_ARGS__)
#define ct_residual_new(...) CT_SITE_CALL(ct_residual_new, __VA_ARGS__)
#define ct_flatten_new(...) CT_SITE_CALL(ct_flatten_new, __VA_ARGS__)
#define ct_relu_layer_new(...) CT_SITE_CALL(ct_relu_layer_new, __VA_ARGS__)
#define ct_gelu_layer_new(...) CT_SITE_CALL(ct_gelu_layer_new, __VA_ARGS__)
#define ct_tanh_layer_new(...) CT_SITE_CALL(ct_tanh_layer_new, __VA_ARGS__)
#define ct_sigmoid_layer_new(...) CT_SITE_CALL(ct_sigmoid_layer_new, __VA_ARGS__)
#define ct_model_summary(...) CT_SITE_CALL_VOID(ct_model_summary, __VA_ARGS__)
#define ct_conv2d_new(...) CT_SITE_CALL(ct_conv2d_new, __VA_ARGS__)
#define ct_conv2d_weight(...) CT_SITE_CALL(ct_conv2d_weight, __VA_ARGS__)
#define ct_conv2d_bias(...) CT_SITE_CALL(ct_conv2d_bias, __VA_ARGS__)
#define ct_conv2d_init_whitening(...) CT_SITE_CALL_CLEARING(ct_conv2d_init_whitening, __VA_ARGS__)
#define ct_max_pool2d_new(...) CT_SITE_CALL(ct_max_pool2d_new, __VA_ARGS__)
#define ct_avg_pool2d_new(...) CT_SITE_CALL(ct_avg_pool2d_new, __VA_ARGS__)
#define ct_global_avg_pool2d_new(...) CT_SITE_CALL(ct_global_avg_pool2d_new, __VA_ARGS__)
#define ct_batch_norm_new(...) CT_SITE_CALL(ct_batch_norm_new, __VA_ARGS__)
#define ct_layer_norm_new(...) CT_SITE_CALL(ct_layer_norm_new, __VA_ARGS__)
#define ct_dropout_new(...) CT_SITE_CALL(ct_dropout_new, __VA_ARGS__)
#define ct_embedding_new(...) CT_SITE_CALL(ct_embedding_new, __VA_ARGS__)
#define ct_embedding_forward(...) CT_SITE_CALL(ct_embedding_forward, __VA_ARGS__)
#define ct_mha_new(...) CT_SITE_CALL(ct_mha_new, __VA_ARGS__)
#define ct_mha_forward(...) CT_SITE_CALL(ct_mha_forward, __VA_ARGS__)
#define ct_transformer_block_new(...) CT_SITE_CALL(ct_transformer_block_new, __VA_ARGS__)
#define ct_tta_logits(...) CT_SITE_CALL(ct_tta_logits, __VA_ARGS__)
#define ct_model_save(...) CT_SITE_CALL_CLEARING(ct_model_save, __VA_ARGS__)
#define ct_model_load(...) CT_SITE_CALL_CLEARING(ct_model_load, __VA_ARGS__)
#define ct_model_tensor_count(...) CT_SITE_CALL(ct_model_tensor_count, __VA_ARGS__)
#define ct_model_tensors(...) CT_SITE_CALL_VOID(ct_model_tensors, __VA_ARGS__)
#endif

#endif
