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
/* Pooling layers; stride 0 means stride = kernel. */
ct_module *ct_max_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding);
ct_module *ct_avg_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding);
ct_module *ct_global_avg_pool2d_new(ct_model *m, const char *name);

/* Batch norm for (N, C) or (N, C, H, W) inputs: "<name>.weight"/"<name>.bias" (C, ones/zeros)
 * and buffers "<name>.running_mean" (zeros), "<name>.running_var" (ones) and
 * "<name>.num_batches_tracked" (a one-element count, as in PyTorch's state_dict). */
typedef struct {
    double eps, momentum;
    int affine;
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

/* ---- checkpoints (nn/checkpoint.c) -------------------------------------------------------- */
/* Saves every parameter and buffer as safetensors (8-byte little-endian header length, JSON
 * header with dtype/shape/data_offsets and optional __metadata__, raw little-endian data),
 * atomically: an unnamed file (O_TMPFILE) in the directory of `path`, fsync, then linked to
 * `path` (or to a temporary name renamed over it). A save killed half-way leaves no file behind.
 * Where O_TMPFILE is unsupported, or CTAPE_NO_TMPFILE=1 is in the environment, the data goes to
 * "<path>.tmp-<host>-<pid>-XXXXXX" from the start; each save then removes such files in its
 * directory whose writer (on this host) is gone. A parameter or buffer holding NaN or ±Inf is
 * not saved: CT_ERR_VALUE naming it and its first such index, nothing written (to keep such
 * values for debugging, write them with ct_safetensors_write). Returns CT_OK or an error code
 * with ct_last_error() set; a failed save leaves any previous file intact. */
int ct_model_save(const ct_model *m, const char *path);
/* Loads a safetensors file into the model's parameters and buffers by name. Everything is
 * validated first (header length, JSON, dtypes, shapes against the model, offsets in range and
 * tiling the data exactly as the reference implementation requires: no overlap, no hole, nothing
 * after the last tensor; every tensor present); on any error the model is left unchanged. */
int ct_model_load(ct_model *m, const char *path);

/* Named tensors in safetensors files, for any checkpoint (optimizer state uses it too).
 * Writes n tensors as dtype F32 (F64 in the float64 build), header and data sorted by name, the
 * header padded with spaces to a multiple of 8 bytes, atomically as ct_model_save. names[i] is
 * the name of tensors[i]; names may be NULL to use each tensor's ->name. metadata is NULL or
 * "key", "value", ..., NULL (string pairs; ct_model_save writes format=pt, framework=ctape).
 * Duplicate, empty or NULL names are programmer errors (fatal). Values are written as they are,
 * NaN and Inf included (ct_model_save and the optimizer saves refuse those). */
int ct_safetensors_write(const char *path, int n, const char *const names[], ct_tensor *const tensors[],
                         const char *const metadata[]);
/* CT_OK, or CT_ERR_VALUE naming `path`, the first tensor holding NaN or ±Inf and its first such
 * index (names may be NULL: each tensor's ->name). What ct_model_save checks before writing. */
int ct_safetensors_check_finite(const char *path, int n, const char *const names[], ct_tensor *const tensors[]);
/* A safetensors file read and validated (header, dtypes, shapes, offsets) but not yet copied
 * anywhere. Tensors are listed sorted by name. Readable dtypes: F32, F64, F16, BF16, I64, I32
 * (converted to ct_real on load). NULL with ct_last_error() set on any problem. */
typedef struct ct_safetensors ct_safetensors;
ct_safetensors *ct_safetensors_open(const char *path);
/* The same, returning CT_OK or the error's code (CT_ERR_IO: cannot open or read; CT_ERR_FORMAT:
 * malformed; CT_ERR_MEMORY), with *out the file or NULL. */
int ct_safetensors_try_open(const char *path, ct_safetensors **out);
/* NULL does nothing; every ct_safetensors_* call on NULL or a closed file (a second close
 * included) is fatal with a message naming the function. */
void ct_safetensors_close(ct_safetensors *f);
int ct_safetensors_count(const ct_safetensors *f);
const char *ct_safetensors_name(const ct_safetensors *f, int i);
ct_shape ct_safetensors_shape(const ct_safetensors *f, int i);
const char *ct_safetensors_dtype(const ct_safetensors *f, int i);             /* "F32", ... */
const char *ct_safetensors_metadata(const ct_safetensors *f, const char *key); /* NULL when absent */
/* Numbers in metadata strings, the same in every locale (a program that called
 * setlocale(LC_ALL, "") in a decimal-comma locale still writes and reads "0.002"): the "%.17g"
 * text of x, exact (it parses back to the same double), into buf, which is returned; and the
 * parse of the whole of s (CT_OK, or CT_ERR_FORMAT when s is not one number; no message set). */
const char *ct_safetensors_format_number(double x, char buf[32]);
int ct_safetensors_parse_number(const char *s, double *out);
/* Strict load, as ct_model_load: every name present with exactly the tensor's shape and no other
 * tensor in the file; everything is checked before the first tensor is written. */
int ct_safetensors_load(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[]);
/* As ct_safetensors_load, and before anything is written every tensor's values, converted to
 * ct_real, are handed to check(name, i, x, n, ctx) (i indexes tensors[]), which returns CT_OK or
 * an error code with ct_last_error() set: the first error ends the load with nothing written. */
typedef int (*ct_values_check)(const char *name, int i, const ct_real *x, size_t n, void *ctx);
int ct_safetensors_load_checked(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[],
                                ct_values_check check, void *ctx);

/* The user's call site for error messages (core/tensor.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_model_new(...) CT_SITE_CALL(ct_model_new, __VA_ARGS__)
#define ct_model_free(...) CT_SITE_CALL_VOID(ct_model_free, __VA_ARGS__)
#define ct_model_set_seed(...) CT_SITE_CALL_VOID(ct_model_set_seed, __VA_ARGS__)
#define ct_model_rng(...) CT_SITE_CALL(ct_model_rng, __VA_ARGS__)
#define ct_model_add_buffer(...) CT_SITE_CALL(ct_model_add_buffer, __VA_ARGS__)
#define ct_model_buffer_count(...) CT_SITE_CALL(ct_model_buffer_count, __VA_ARGS__)
#define ct_model_buffer(...) CT_SITE_CALL(ct_model_buffer, __VA_ARGS__)
#define ct_model_find_buffer(...) CT_SITE_CALL(ct_model_find_buffer, __VA_ARGS__)
#define ct_model_add_param(...) CT_SITE_CALL(ct_model_add_param, __VA_ARGS__)
#define ct_model_param_count(...) CT_SITE_CALL(ct_model_param_count, __VA_ARGS__)
#define ct_model_param(...) CT_SITE_CALL(ct_model_param, __VA_ARGS__)
#define ct_model_find_param(...) CT_SITE_CALL(ct_model_find_param, __VA_ARGS__)
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
#define ct_model_save(...) CT_SITE_CALL_CLEARING(ct_model_save, __VA_ARGS__)
#define ct_model_load(...) CT_SITE_CALL_CLEARING(ct_model_load, __VA_ARGS__)
#define ct_safetensors_write(...) CT_SITE_CALL_CLEARING(ct_safetensors_write, __VA_ARGS__)
#define ct_safetensors_open(...) CT_SITE_CALL_CLEARING(ct_safetensors_open, __VA_ARGS__)
#define ct_safetensors_close(...) CT_SITE_CALL_VOID(ct_safetensors_close, __VA_ARGS__)
#define ct_safetensors_count(...) CT_SITE_CALL(ct_safetensors_count, __VA_ARGS__)
#define ct_safetensors_name(...) CT_SITE_CALL(ct_safetensors_name, __VA_ARGS__)
#define ct_safetensors_shape(...) CT_SITE_CALL(ct_safetensors_shape, __VA_ARGS__)
#define ct_safetensors_dtype(...) CT_SITE_CALL(ct_safetensors_dtype, __VA_ARGS__)
#define ct_safetensors_metadata(...) CT_SITE_CALL(ct_safetensors_metadata, __VA_ARGS__)
#define ct_safetensors_load(...) CT_SITE_CALL_CLEARING(ct_safetensors_load, __VA_ARGS__)
#endif

#endif
