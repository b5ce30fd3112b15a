/* nn/attention.c — multi-head attention (torch.nn.MultiheadAttention, batch_first) and the
 * pre-LN transformer encoder block, composed from tape ops: no backward code lives here.
 *
 * Multi-head attention, query (B,L,E), key and value (B,S,E), H heads of size D = E/H:
 *     Q = query·W_qᵀ + b_q      K = key·W_kᵀ + b_k      V = value·W_vᵀ + b_v      (·, E)
 * where W_q, W_k, W_v are the row blocks [0,E), [E,2E), [2E,3E) of in_proj_weight (3E,E) and
 * b_q, b_k, b_v those of in_proj_bias (3E). Head h is columns [h·D, (h+1)·D) of each, and
 *     O_h = softmax(Q_h·K_hᵀ/√D + mask)·V_h       (B,L,D), written to columns h·D.. of O (B·L,E)
 *     y   = O·W_outᵀ + b_out                      out_proj, reshaped to (B,L,E)
 * No copy is made to split the projections or the heads:
 *  - self-attention (query = key = value) projects once with all of in_proj: [Q | K | V] =
 *    x·in_proj_weightᵀ + in_proj_bias, (B·L, 3E); when only key = value, [K | V] is one linear;
 *    otherwise each projection is a linear on its block of rows;
 *  - those blocks are views of in_proj_weight's rows that share its data *and* its gradient
 *    buffer (a row block of a row-major matrix is contiguous), so their backward writes straight
 *    into in_proj_weight.grad;
 *  - the attention op reads each head in place from the token-major projections (row stride 3E,
 *    2E or E) and writes O the same way (ct_attention_packed), so the (B,T,H,D) <-> (B,H,T,D)
 *    permutes of the textbook version (four copies forward, four backward) never happen.
 * Self-attention records five nodes: reshape, linear, attention, linear, reshape. */
#define CT_BUILDING_LIBRARY
#include "layer.h"
#include "../autograd/op.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ct_module base;
    int embed_dim, num_heads;
    int self_causal;                          /* ct_forward's mask: set by a causal transformer block */
    ct_tensor *in_proj_weight, *in_proj_bias; /* (3E, E), (3E) */
    ct_module *out_proj;                      /* linear E -> E, "<name>.out_proj" */
    char block_names[2][4][136];              /* "<name>.in_proj_weight[q]" ... for printers */
} mha_module;

/* Names of the in_proj row blocks: q, k, v, and k|v together. */
static const char *const block_suffix[4] = {"q", "k", "v", "kv"};

/* Rows [start, start + rows) of a parameter (any shape, split along dim 0) as a tape tensor that
 * shares the parameter's data and gradient: a zero-copy slice. Parameters always have a heap
 * gradient buffer, so gradients accumulated into the view land in the parameter. */
static ct_tensor *param_rows(ct_tape *tape, ct_tensor *param, int start, int rows, const char *name) {
    ct_shape s = ct_tensor_shape(param);
    size_t row_size = param->size / (size_t)param->shape[0], offset = (size_t)start * row_size;
    s.d[0] = rows;
    ct_tensor *view = ct_op_view(tape, param, s);
    view->data = param->data + offset;
    view->name = name;
    if (ct_requires_grad(param)) {
        CT_CHECK(param->grad, "ct_mha_forward", "parameter %s requires grad but has no grad buffer",
                 param->name ? param->name : ct_shp(param));
        view->grad = param->grad + offset;
        view->flags |= CT_TENSOR_REQUIRES_GRAD;
    }
    return view;
}

/* x2 (N, E) -> `count` projections from `first` (0 q, 1 k, 2 v), side by side: (N, count·E). */
static ct_tensor *project(ct_tape *tape, mha_module *a, ct_tensor *x2, int first, int count) {
    const int E = a->embed_dim, name = count == 2 ? 3 : first;
    if (count == 3) return ct_linear(tape, x2, a->in_proj_weight, a->in_proj_bias);
    ct_tensor *w = param_rows(tape, a->in_proj_weight, first * E, count * E, a->block_names[0][name]);
    ct_tensor *b = param_rows(tape, a->in_proj_bias, first * E, count * E, a->block_names[1][name]);
    return ct_linear(tape, x2, w, b);
}

ct_tensor *ct_mha_forward(ct_tape *tape, ct_module *mha, ct_tensor *query, ct_tensor *key,
                          ct_tensor *value, ct_mha_masks masks) {
    mha_module *a = ct_module_as(mha, "mha", "ct_mha_forward");
    const int E = a->embed_dim;
    CT_CHECK(query && key && value, a->base.name, "multi-head attention: query, key and value must not be NULL");
    CT_CHECK(query->ndim == 3 && query->shape[2] == E, a->base.name,
             "multi-head attention (E = %d): query %s must be (B, L, %d)", E, ct_shp(query), E);
    CT_CHECK(key->ndim == 3 && key->shape[2] == E && value->ndim == 3 && value->shape[2] == E, a->base.name,
             "multi-head attention (E = %d): key %s and value %s must be (B, S, %d)", E, ct_shp(key),
             ct_shp(value), E);
    CT_CHECK(key->shape[0] == query->shape[0] && value->shape[0] == query->shape[0] &&
             key->shape[1] == value->shape[1], a->base.name,
             "multi-head attention: query %s, key %s and value %s need one batch size B and key and "
             "value one length S", ct_shp(query), ct_shp(key), ct_shp(value));
    const int B = query->shape[0], L = query->shape[1], S = key->shape[1], H = a->num_heads, D = E / H;
    ct_tensor *q2 = ct_reshape(tape, query, CT_SHAPE(B * L, E)), *o;
    if (query == key && key == value) { /* [Q | K | V] in one GEMM */
        ct_tensor *qkv = project(tape, a, q2, 0, 3);
        o = ct_attention_packed(tape, qkv, 0, qkv, E, qkv, 2 * E, B, H, D, masks.causal, masks.key_padding);
    } else {
        ct_tensor *q = project(tape, a, q2, 0, 1), *k2 = ct_reshape(tape, key, CT_SHAPE(B * S, E));
        if (key == value) { /* [K | V] in one GEMM */
            ct_tensor *kv = project(tape, a, k2, 1, 2);
            o = ct_attention_packed(tape, q, 0, kv, 0, kv, E, B, H, D, masks.causal, masks.key_padding);
        } else {
            ct_tensor *k = project(tape, a, k2, 1, 1);
            ct_tensor *v = project(tape, a, ct_reshape(tape, value, CT_SHAPE(B * S, E)), 2, 1);
            o = ct_attention_packed(tape, q, 0, k, 0, v, 0, B, H, D, masks.causal, masks.key_padding);
        }
    }
    ct_tensor *y = ct_forward(tape, a->out_proj, o); /* (B·L, E) */
    return ct_reshape(tape, y, CT_SHAPE(B, L, E));
}

/* ct_forward on the module: self-attention, unmasked (causal inside a causal transformer block). */
static ct_tensor *mha_self_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_mha_forward(tape, self, x, x, x, (ct_mha_masks){.causal = ((mha_module *)self)->self_causal});
}

ct_module *ct_mha_new(ct_model *m, const char *name, int embed_dim, int num_heads) {
    static const char *op = "ct_mha_new";
    CT_CHECK(name, op, "the name is NULL");
    CT_CHECK(embed_dim > 0 && num_heads > 0, op, "%s: embed_dim %d and num_heads %d must be positive",
             name, embed_dim, num_heads);
    CT_CHECK(embed_dim % num_heads == 0, op, "%s: embed_dim %d is not divisible by num_heads %d", name,
             embed_dim, num_heads);
    mha_module *a = ct_module_new(m, sizeof *a, "mha", name, mha_self_forward);
    a->embed_dim = embed_dim;
    a->num_heads = num_heads;
    for (int i = 0; i < 4; i++) {
        snprintf(a->block_names[0][i], sizeof a->block_names[0][i], "%s.in_proj_weight[%s]", name, block_suffix[i]);
        snprintf(a->block_names[1][i], sizeof a->block_names[1][i], "%s.in_proj_bias[%s]", name, block_suffix[i]);
    }

    /* PyTorch's order (its state_dict): in_proj_weight, in_proj_bias, out_proj.{weight,bias};
     * _reset_parameters: Xavier-uniform in_proj_weight, zero in_proj_bias and out_proj.bias,
     * out_proj.weight as any Linear (Kaiming-uniform, a = √5). */
    a->in_proj_weight = ct_module_add_param(m, &a->base, "in_proj_weight", CT_SHAPE(3 * embed_dim, embed_dim));
    ct_init_xavier_uniform(a->in_proj_weight, ct_model_rng(m), 1.0);
    a->in_proj_bias = ct_module_add_param(m, &a->base, "in_proj_bias", CT_SHAPE(3 * embed_dim)); /* zeros */
    char pname[160];
    snprintf(pname, sizeof pname, "%s.out_proj", name);
    a->out_proj = ct_linear_new(m, pname, embed_dim, embed_dim);
    ct_init_zeros(ct_linear_bias(a->out_proj));
    return &a->base;
}

/* ---- pre-LN transformer encoder block ---------------------------------------------------------
 *     x = x + attn(ln1(x))
 *     x = x + fc2(gelu(fc1(ln2(x))))        fc1: E -> hidden, fc2: hidden -> E, gelu in erf form
 * on x (B, L, E); the MLP runs on the (B·L, E) view. */
typedef struct {
    ct_module base;
    ct_module *ln1, *attn, *ln2, *fc1, *fc2;
    int embed_dim;
} block_module;

static ct_tensor *block_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    block_module *t = (block_module *)self;
    const int E = t->embed_dim;
    CT_CHECK(x && x->ndim == 3 && x->shape[2] == E, self->name,
             "transformer block (E = %d): input %s must be (B, L, %d)", E, x ? ct_shp(x) : "NULL", E);
    const int B = x->shape[0], L = x->shape[1];
    ct_tensor *h = ct_forward(tape, t->ln1, x);
    x = ct_add(tape, x, ct_forward(tape, t->attn, h)); /* self-attention, causal if the block is */
    h = ct_reshape(tape, ct_forward(tape, t->ln2, x), CT_SHAPE(B * L, E));
    h = ct_forward(tape, t->fc2, ct_gelu(tape, ct_forward(tape, t->fc1, h)));
    return ct_add(tape, x, ct_reshape(tape, h, CT_SHAPE(B, L, E)));
}

ct_module *ct_transformer_block_new(ct_model *m, const char *name, int embed_dim, int num_heads,
                                    int hidden_dim, int causal) {
    static const char *op = "ct_transformer_block_new";
    CT_CHECK(name, op, "the name is NULL");
    CT_CHECK(embed_dim > 0 && num_heads > 0 && hidden_dim > 0, op,
             "%s: embed_dim %d, num_heads %d and hidden_dim %d must be positive", name, embed_dim,
             num_heads, hidden_dim);
    CT_CHECK(embed_dim % num_heads == 0, op, "%s: embed_dim %d is not divisible by num_heads %d", name,
             embed_dim, num_heads);
    block_module *t = ct_module_new(m, sizeof *t, "transformer", name, block_forward);
    t->embed_dim = embed_dim;
    char child[160];
    snprintf(child, sizeof child, "%s.ln1", name);
    t->ln1 = ct_layer_norm_new(m, child, CT_SHAPE(embed_dim), 1e-5);
    snprintf(child, sizeof child, "%s.attn", name);
    t->attn = ct_mha_new(m, child, embed_dim, num_heads);
    ((mha_module *)t->attn)->self_causal = causal != 0;
    snprintf(child, sizeof child, "%s.ln2", name);
    t->ln2 = ct_layer_norm_new(m, child, CT_SHAPE(embed_dim), 1e-5);
    snprintf(child, sizeof child, "%s.fc1", name);
    t->fc1 = ct_linear_new(m, child, embed_dim, hidden_dim);
    snprintf(child, sizeof child, "%s.fc2", name);
    t->fc2 = ct_linear_new(m, child, hidden_dim, embed_dim);
    return &t->base;
}
