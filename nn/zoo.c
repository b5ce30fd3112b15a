/* nn/zoo.c — networks by name (nn/zoo.h): the spec table, the checks an input must pass, and one
 * builder per family. Every check runs before the first layer is made, so a refused spec leaves the
 * model as it was. The torch module each builder follows is in tests/reference/gen_zoo.py. */
#define CT_BUILDING_LIBRARY
#include "zoo.h"
#include "layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESNET(depth) \
    {"resnet" #depth, "CIFAR ResNet-" #depth " (He et al. 2016), option A shortcuts", \
     {{"width", CT_SPEC_INT, "16", "[1, 1024]", "channels of the first stage (then 2x, 4x)"}}}

static const ct_spec_entry models[] = {
    {"mlp", "flatten, [linear, activation, dropout] per hidden width, linear (fc1..fcK)",
     {{"hidden", CT_SPEC_LIST, "[512,256]", "[1, 1048576]", "hidden widths"},
      {"activation", CT_SPEC_CHOICE, "relu", "relu|gelu|tanh", "after each hidden linear"},
      {"dropout", CT_SPEC_REAL, "0", "[0, 1)", "dropout probability after each activation"}}},
    {"lenet5", "LeNet-5 with ReLU and max pooling by default (images >= 12x12)",
     {{"activation", CT_SPEC_CHOICE, "relu", "relu|tanh", "tanh: the 1998 choice"},
      {"pool", CT_SPEC_CHOICE, "max", "max|avg", "avg: the 1998 choice"},
      {"padding", CT_SPEC_INT, "2", "[0, 2]", "conv1's padding (0 with 32x32 images: the original)"}}},
    {"vgg_small", "3 x [conv 3x3, batch norm, ReLU, max pool 2], linear (bench W3)",
     {{"width", CT_SPEC_INT, "32", "[1, 1024]", "channels of conv1 (then 2x, 4x)"}}},
    RESNET(20), RESNET(32), RESNET(44), RESNET(56), RESNET(110),
    {"vit_tiny", "Vision Transformer: patches, class token or mean pool, pre-LN encoder",
     {{"patch", CT_SPEC_INT, "4", "[1, 1024]", "patch side (kernel = stride of the embedding)"},
      {"dim", CT_SPEC_INT, "192", "[1, 8192]", "embedding width"},
      {"depth", CT_SPEC_INT, "6", "[1, 128]", "encoder layers"},
      {"heads", CT_SPEC_INT, "3", "[1, 1024]", "attention heads (must divide dim)"},
      {"mlp_ratio", CT_SPEC_REAL, "4", "(0, 64]", "MLP width / dim"},
      {"pool", CT_SPEC_CHOICE, "cls", "cls|mean", "class token, or the mean of the tokens"}}},
};
enum { N_MODELS = sizeof models / sizeof *models };

#define V(key) ct_spec_num(s, key)

/* ---- checks that need no input ------------------------------------------------------------------- */
static int check_spec(const ct_spec *s) {
    const char *name = s->entry->name;
    if (!strcmp(name, "mlp")) {
        const double *hidden;
        const int n = ct_spec_list(s, "hidden", &hidden);
        for (int i = 0; i < n; i++)
            if (hidden[i] != floor(hidden[i]))
                return ct_set_error(CT_ERR_VALUE, "model mlp: hidden: value %d = %g is not an integer", i, hidden[i]);
    }
    if (!strcmp(name, "vit_tiny")) {
        const int dim = (int)V("dim"), heads = (int)V("heads");
        if (dim % heads)
            return ct_set_error(CT_ERR_VALUE, "model vit_tiny: dim=%d is not divisible by heads=%d", dim, heads);
        if ((int)(dim * V("mlp_ratio")) < 1)
            return ct_set_error(CT_ERR_VALUE, "model vit_tiny: mlp_ratio=%g gives an MLP of width 0 at dim=%d",
                                V("mlp_ratio"), dim);
    }
    return CT_OK;
}

/* "3x8x8" or "784" */
static const char *input_str(ct_shape in, char *buf, size_t len) {
    if (in.ndim == 3) snprintf(buf, len, "%dx%dx%d", in.d[0], in.d[1], in.d[2]);
    else ct_shape_str(in, buf, len);
    return buf;
}

/* The input's shape against what the network takes (before anything is built). */
static int check_input(const ct_spec *s, ct_shape in, int classes) {
    const char *name = s->entry->name;
    char shown[96];
    if (classes < 1) return ct_set_error(CT_ERR_VALUE, "model %s: classes=%d, need at least 1", name, classes);
    int ok = in.ndim == 1 || in.ndim == 3;
    for (int i = 0; ok && i < in.ndim; i++) ok = in.d[i] >= 1;
    if (!ok)
        return ct_set_error(CT_ERR_VALUE, "model %s: input shape %s is neither an image (C, H, W) nor a vector (D) "
                                          "of positive sizes", name, ct_shape_str(in, shown, sizeof shown));
    if (!strcmp(name, "mlp")) return CT_OK;
    if (in.ndim != 3)
        return ct_set_error(CT_ERR_VALUE, "model %s takes images (C, H, W), not vectors %s: give the image shape, "
                                          "e.g. (1, 28, 28) for MNIST", name, ct_shape_str(in, shown, sizeof shown));
    const int H = in.d[1], W = in.d[2], side = H < W ? H : W;
    input_str(in, shown, sizeof shown);
    if (!strcmp(name, "lenet5")) {
        /* conv1 5x5 (padding p) -> pool 2 -> conv2 5x5 -> pool 2: the second pool needs a 2x2 map */
        const int p = (int)V("padding"), c1 = side + 2 * p - 4, c2 = c1 / 2 - 4, least = 16 - 2 * p;
        if (c1 < 1 || c2 < 2)
            return ct_set_error(CT_ERR_VALUE, "model lenet5: a %s input is too small: conv2 and the second pool need "
                                              "images of at least %dx%d with padding=%d", shown, least, least, p);
    } else if (!strcmp(name, "vgg_small")) {
        if (side < 8)
            return ct_set_error(CT_ERR_VALUE, "model vgg_small: a %s input is too small: its three 2x2 pools need "
                                              "images of at least 8x8", shown);
    } else if (!strcmp(name, "vit_tiny")) {
        const int patch = (int)V("patch");
        if (H % patch || W % patch)
            return ct_set_error(CT_ERR_VALUE, "model vit_tiny: patch=%d does not divide the %dx%d image of a %s input",
                                patch, H, W, shown);
    }
    return CT_OK; /* the ResNets take any size: each stride-2 stage rounds up */
}

/* ---- helpers --------------------------------------------------------------------------------------- */
/* snprintf into a name buffer of the caller's. */
#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static ct_module *activation_layer(ct_model *m, const char *name, int choice) {
    return choice == 0 ? ct_relu_layer_new(m, name) : choice == 1 ? ct_gelu_layer_new(m, name)
                                                                  : ct_tanh_layer_new(m, name);
}

/* ---- mlp ------------------------------------------------------------------------------------------- */
static ct_module *build_mlp(ct_model *m, const ct_spec *s, ct_shape in, int classes) {
    const double *hidden;
    const int n = ct_spec_list(s, "hidden", &hidden), act = (int)V("activation");
    const char *const act_names[] = {"relu", "gelu", "tanh"};
    const double p = V("dropout");
    char name[64];
    ct_module *net = ct_sequential_new(m, "mlp");
    ct_sequential_add(net, ct_flatten_new(m, "flatten"));
    int width = (int)ct_shape_size(in);
    for (int i = 0; i < n; i++) {
        ct_sequential_add(net, ct_linear_new(m, NAME(name, "fc%d", i + 1), width, (int)hidden[i]));
        ct_sequential_add(net, activation_layer(m, NAME(name, "%s%d", act_names[act], i + 1), act));
        if (p > 0) ct_sequential_add(net, ct_dropout_new(m, NAME(name, "dropout%d", i + 1), p));
        width = (int)hidden[i];
    }
    return ct_sequential_add(net, ct_linear_new(m, NAME(name, "fc%d", n + 1), width, classes));
}

/* ---- lenet5 ---------------------------------------------------------------------------------------- */
static ct_module *build_lenet5(ct_model *m, const ct_spec *s, ct_shape in, int classes) {
    const int tanh_act = (int)V("activation") == 1, avg = (int)V("pool") == 1, p = (int)V("padding");
    const int h = ((in.d[1] + 2 * p - 4) / 2 - 4) / 2, w = ((in.d[2] + 2 * p - 4) / 2 - 4) / 2;
    ct_module *net = ct_sequential_new(m, "lenet5");
    char name[64];
    for (int i = 1; i <= 2; i++) {
        ct_sequential_add(net, ct_conv2d_new(m, NAME(name, "conv%d", i), i == 1 ? in.d[0] : 6, i == 1 ? 6 : 16, 5,
                                             CT_CONV2D(.padding = i == 1 ? p : 0)));
        ct_sequential_add(net, activation_layer(m, NAME(name, "act%d", i), tanh_act ? 2 : 0));
        NAME(name, "pool%d", i);
        ct_sequential_add(net, avg ? ct_avg_pool2d_new(m, name, 2, 0, 0) : ct_max_pool2d_new(m, name, 2, 0, 0));
    }
    ct_sequential_add(net, ct_flatten_new(m, "flatten"));
    const int widths[4] = {16 * h * w, 120, 84, classes};
    for (int i = 1; i <= 3; i++) {
        ct_sequential_add(net, ct_linear_new(m, NAME(name, "fc%d", i), widths[i - 1], widths[i]));
        if (i < 3) ct_sequential_add(net, activation_layer(m, NAME(name, "act%d", i + 2), tanh_act ? 2 : 0));
    }
    return net;
}

/* ---- vgg_small --------------------------------------------------------------------------------------- */
static ct_module *build_vgg_small(ct_model *m, const ct_spec *s, ct_shape in, int classes) {
    const int w = (int)V("width");
    ct_module *net = ct_sequential_new(m, "vgg_small");
    char name[64];
    int channels = in.d[0], h = in.d[1], wd = in.d[2];
    for (int i = 1; i <= 3; i++) {
        const int out = w << (i - 1);
        /* no conv bias: batch norm's shift replaces it */
        ct_sequential_add(net, ct_conv2d_new(m, NAME(name, "conv%d", i), channels, out, 3,
                                             CT_CONV2D(.padding = 1, .bias = 0)));
        ct_sequential_add(net, ct_batch_norm_new(m, NAME(name, "bn%d", i), out, CT_BATCH_NORM()));
        ct_sequential_add(net, ct_relu_layer_new(m, NAME(name, "relu%d", i)));
        ct_sequential_add(net, ct_max_pool2d_new(m, NAME(name, "pool%d", i), 2, 0, 0));
        channels = out, h /= 2, wd /= 2;
    }
    ct_sequential_add(net, ct_flatten_new(m, "flatten"));
    return ct_sequential_add(net, ct_linear_new(m, "fc", channels * h * wd, classes));
}

/* ---- resnet: the basic block ------------------------------------------------------------------------
 *     y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 * conv1 3x3 with the block's stride, conv2 3x3, both without bias. The shortcut is x itself, or,
 * where the block changes the size (stride 2, in -> out channels), option A of the paper:
 *     x[:, :, ::2, ::2] with (out − in)/2 zero channels in front and the rest behind,
 * which has no parameters (the subsampling is a 1x1 max pool of stride 2). */
typedef struct {
    ct_module base;
    ct_module *conv1, *bn1, *conv2, *bn2;
    int in, out, stride;
} basic_block;

static ct_tensor *basic_block_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    basic_block *b = (basic_block *)self;
    ct_tensor *h = ct_relu(tape, ct_forward(tape, b->bn1, ct_forward(tape, b->conv1, x)));
    h = ct_forward(tape, b->bn2, ct_forward(tape, b->conv2, h));
    ct_tensor *shortcut = x;
    if (b->stride != 1 || b->in != b->out) {
        if (b->stride != 1)
            shortcut = ct_max_pool2d(tape, x, CT_POOL2D(.kernel_h = 1, .kernel_w = 1, .stride_h = b->stride,
                                                        .stride_w = b->stride));
        const int N = shortcut->shape[0], Hs = shortcut->shape[2], Ws = shortcut->shape[3];
        const int front = (b->out - b->in) / 2, back = b->out - b->in - front;
        ct_tensor *parts[3];
        int n = 0;
        if (front) parts[n++] = ct_tape_zeros(tape, CT_SHAPE(N, front, Hs, Ws));
        parts[n++] = shortcut;
        if (back) parts[n++] = ct_tape_zeros(tape, CT_SHAPE(N, back, Hs, Ws));
        shortcut = ct_concat(tape, parts, n, 1);
    }
    return ct_relu(tape, ct_add(tape, h, shortcut));
}

static ct_module *basic_block_new(ct_model *m, const char *name, int in, int out, int stride) {
    basic_block *b = ct_module_new(m, sizeof *b, "basic_block", name, basic_block_forward);
    b->in = in, b->out = out, b->stride = stride;
    char child[128];
    b->conv1 = ct_conv2d_new(m, NAME(child, "%s.conv1", name), in, out, 3,
                             CT_CONV2D(.stride = stride, .padding = 1, .bias = 0));
    b->bn1 = ct_batch_norm_new(m, NAME(child, "%s.bn1", name), out, CT_BATCH_NORM());
    b->conv2 = ct_conv2d_new(m, NAME(child, "%s.conv2", name), out, out, 3, CT_CONV2D(.padding = 1, .bias = 0));
    b->bn2 = ct_batch_norm_new(m, NAME(child, "%s.bn2", name), out, CT_BATCH_NORM());
    return &b->base;
}

/* conv1, bn1, relu, layer1..3 (n blocks each), global average pool, linear; convs and the linear
 * weight Kaiming-normal (fan in, gain √2), as the PyTorch version's _weights_init. */
static ct_module *build_resnet(ct_model *m, const ct_spec *s, ct_shape in, int classes) {
    const int w = (int)V("width"), depth = atoi(s->entry->name + strlen("resnet")), blocks = (depth - 2) / 6;
    const int first = ct_model_param_count(m);
    ct_module *net = ct_sequential_new(m, s->entry->name);
    ct_sequential_add(net, ct_conv2d_new(m, "conv1", in.d[0], w, 3, CT_CONV2D(.padding = 1, .bias = 0)));
    ct_sequential_add(net, ct_batch_norm_new(m, "bn1", w, CT_BATCH_NORM()));
    ct_sequential_add(net, ct_relu_layer_new(m, "relu"));
    char name[64];
    int channels = w;
    for (int stage = 1; stage <= 3; stage++) {
        const int out = w << (stage - 1);
        ct_module *layer = ct_sequential_add(net, ct_sequential_new(m, NAME(name, "layer%d", stage)));
        for (int i = 0; i < blocks; i++) {
            ct_sequential_add(layer, basic_block_new(m, NAME(name, "layer%d.%d", stage, i), channels, out,
                                                     i == 0 && stage > 1 ? 2 : 1));
            channels = out;
        }
    }
    ct_sequential_add(net, ct_global_avg_pool2d_new(m, "avgpool"));
    ct_sequential_add(net, ct_linear_new(m, "linear", channels, classes));
    for (int i = first; i < ct_model_param_count(m); i++) { /* the conv and linear weights: not vectors */
        ct_tensor *p = ct_model_param(m, i);
        if (p->ndim >= 2) ct_init_kaiming_normal(p, ct_model_rng(m), 0, CT_FAN_IN);
    }
    return net;
}

/* ---- vit: the encoder layer --------------------------------------------------------------------------
 * torch.nn.TransformerEncoderLayer(norm_first=True, batch_first=True, activation="gelu", dropout=0):
 *     x = x + self_attn(norm1(x))
 *     x = x + linear2(gelu(linear1(norm2(x))))
 * on x (B, L, E); the MLP runs on the (B·L, E) view. */
typedef struct {
    ct_module base;
    ct_module *norm1, *self_attn, *norm2, *linear1, *linear2;
    int dim;
} encoder_layer;

static ct_tensor *encoder_layer_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    encoder_layer *t = (encoder_layer *)self;
    const int B = x->shape[0], L = x->shape[1], E = t->dim;
    x = ct_add(tape, x, ct_forward(tape, t->self_attn, ct_forward(tape, t->norm1, x)));
    ct_tensor *h = ct_reshape(tape, ct_forward(tape, t->norm2, x), CT_SHAPE(B * L, E));
    h = ct_forward(tape, t->linear2, ct_gelu(tape, ct_forward(tape, t->linear1, h)));
    return ct_add(tape, x, ct_reshape(tape, h, CT_SHAPE(B, L, E)));
}

static ct_module *encoder_layer_new(ct_model *m, const char *name, int dim, int heads, int hidden) {
    encoder_layer *t = ct_module_new(m, sizeof *t, "encoder_layer", name, encoder_layer_forward);
    t->dim = dim;
    char child[128];
    t->self_attn = ct_mha_new(m, NAME(child, "%s.self_attn", name), dim, heads);
    t->linear1 = ct_linear_new(m, NAME(child, "%s.linear1", name), dim, hidden);
    t->linear2 = ct_linear_new(m, NAME(child, "%s.linear2", name), hidden, dim);
    t->norm1 = ct_layer_norm_new(m, NAME(child, "%s.norm1", name), CT_SHAPE(dim), 1e-5);
    t->norm2 = ct_layer_norm_new(m, NAME(child, "%s.norm2", name), CT_SHAPE(dim), 1e-5);
    return &t->base;
}

/* ---- vit ------------------------------------------------------------------------------------------------
 * x (N, C, H, W) -> patch_embed (N, E, h, w) -> tokens (N, L = h·w, E) -> [cls_token | tokens]
 * -> + pos_embed -> layers -> norm -> token 0 (pool=cls) or the mean over tokens -> head. */
typedef struct {
    ct_module base;
    ct_module *patch_embed, **layers, *norm, *head;
    ct_tensor *cls_token, *pos_embed; /* (1, 1, E) or NULL, (1, L (+ 1), E) */
    int depth, dim;
} vit_module;

static ct_tensor *vit_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    vit_module *v = (vit_module *)self;
    const int E = v->dim;
    ct_tensor *p = ct_forward(tape, v->patch_embed, x); /* (N, E, h, w) */
    const int N = p->shape[0], L = p->shape[2] * p->shape[3];
    CT_CHECK(L + (v->cls_token != NULL) == v->pos_embed->shape[1], self->name,
             "built for %d patches (pos_embed %s), input %s gives %d: build the model for this image size",
             v->pos_embed->shape[1] - (v->cls_token != NULL), ct_tensor_shape_str(v->pos_embed, (char[96]){0}, 96),
             ct_tensor_shape_str(x, (char[96]){0}, 96), L);
    ct_tensor *t = ct_transpose(tape, ct_reshape(tape, p, CT_SHAPE(N, E, L)), 1, 2);
    if (v->cls_token) {
        /* the class token broadcast to every sample; its gradient is the sum over the batch */
        ct_tensor *cls = ct_add(tape, ct_tape_zeros(tape, CT_SHAPE(N, 1, E)), v->cls_token);
        t = ct_concat(tape, (ct_tensor *[]){cls, t}, 2, 1);
    }
    t = ct_add(tape, t, v->pos_embed);
    for (int i = 0; i < v->depth; i++) t = ct_forward(tape, v->layers[i], t);
    t = ct_forward(tape, v->norm, t);
    t = v->cls_token ? ct_reshape(tape, ct_slice(tape, t, 1, 0, 1), CT_SHAPE(N, E)) : ct_mean(tape, t, 1, 0);
    return ct_forward(tape, v->head, t);
}

static void vit_destroy(ct_module *self) {
    free(((vit_module *)self)->layers);
    free(self);
}

static ct_module *build_vit(ct_model *m, const ct_spec *s, ct_shape in, int classes) {
    const int patch = (int)V("patch"), E = (int)V("dim"), depth = (int)V("depth"), cls = (int)V("pool") == 0;
    const int tokens = (in.d[1] / patch) * (in.d[2] / patch) + cls;
    ct_module **layers = malloc((size_t)depth * sizeof *layers);
    if (!layers) ct_fatal("ct_model_parse", "out of memory");
    vit_module *v = ct_module_new(m, sizeof *v, "vit", s->entry->name, vit_forward);
    v->base.destroy = vit_destroy;
    v->layers = layers, v->depth = depth, v->dim = E;
    v->patch_embed = ct_conv2d_new(m, "patch_embed", in.d[0], E, patch, CT_CONV2D(.stride = patch));
    /* the original ViT's init: class token zeros, position embedding N(0, 0.02²) */
    if (cls) v->cls_token = ct_model_add_param(m, "cls_token", CT_SHAPE(1, 1, E));
    v->pos_embed = ct_model_add_param(m, "pos_embed", CT_SHAPE(1, tokens, E));
    ct_init_normal(v->pos_embed, ct_model_rng(m), 0, 0.02);
    char name[64];
    for (int i = 0; i < depth; i++)
        layers[i] = encoder_layer_new(m, NAME(name, "layers.%d", i), E, (int)V("heads"), (int)(E * V("mlp_ratio")));
    v->norm = ct_layer_norm_new(m, "norm", CT_SHAPE(E), 1e-5);
    v->head = ct_linear_new(m, "head", E, classes);
    return &v->base;
}

/* ---- the registry ------------------------------------------------------------------------------------- */
ct_module *ct_model_parse(ct_model *m, const char *spec, ct_shape input, int classes) {
    CT_CHECK(m, "ct_model_parse", "model is NULL");
    ct_spec parsed, *s = &parsed;
    if (ct_spec_parse("model", spec, models, N_MODELS, s) || check_spec(s) || check_input(s, input, classes))
        return NULL;
    const char *name = s->entry->name;
    if (!strcmp(name, "mlp")) return build_mlp(m, s, input, classes);
    if (!strcmp(name, "lenet5")) return build_lenet5(m, s, input, classes);
    if (!strcmp(name, "vgg_small")) return build_vgg_small(m, s, input, classes);
    if (!strncmp(name, "resnet", 6)) return build_resnet(m, s, input, classes);
    return build_vit(m, s, input, classes);
}

void ct_model_list(FILE *out) { ct_spec_print_table("model", models, N_MODELS, out); }

int ct_model_describe(const char *spec, char *buf, size_t len) {
    CT_CHECK(buf && len, "ct_model_describe", "buf is NULL or len is 0");
    buf[0] = 0;
    ct_spec s;
    const int status = ct_spec_parse("model", spec, models, N_MODELS, &s);
    if (status) return status;
    if (check_spec(&s)) return CT_ERR_VALUE;
    ct_spec_describe(&s, buf, len);
    if (strlen(buf) + 1 >= len) {
        buf[0] = 0;
        return ct_set_error(CT_ERR_VALUE, "ct_model_describe: %s needs a buffer of more than %zu bytes", s.entry->name,
                            len);
    }
    return CT_OK;
}
