/* tests/nn/test_layer.c — writing a layer with nn/layer.h, as a user would: ct_module_new, named
 * parameters and buffers, ct_module_as, and the mistakes each one names. */
#include "../test.h"
#include "../../nn/layer.h"

#include <string.h>

/* y = s·x·Wᵀ, the example of nn/layer.h */
typedef struct {
    ct_module base;
    ct_tensor *weight, *count;
    double scale;
} scaled_module;

static ct_tensor *scaled_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    scaled_module *s = (scaled_module *)self;
    return ct_mul_scalar(tape, ct_linear(tape, x, s->weight, NULL), s->scale);
}

static ct_module *scaled_new(ct_model *m, const char *name, int in, int out, double scale) {
    scaled_module *s = ct_module_new(m, sizeof *s, "scaled", name, scaled_forward);
    s->weight = ct_module_add_param(m, &s->base, "weight", CT_SHAPE(out, in));
    s->count = ct_module_add_buffer(m, &s->base, "count", CT_SHAPE_SCALAR);
    s->scale = scale;
    return &s->base;
}

CT_TEST(layer, a_user_layer_is_named_registered_and_trained) {
    ct_model *m = ct_model_new();
    ct_module *seq = ct_sequential_new(m, "net");
    ct_module *lay = scaled_new(m, "net.0", 3, 2, 0.5);
    ct_sequential_add(seq, lay);
    CHECK(!strcmp(lay->kind, "scaled") && !strcmp(lay->name, "net.0") && lay->training == 1);
    CHECK(ct_model_find_param(m, "net.0.weight") && ct_model_find_buffer(m, "net.0.count"));
    CHECK(ct_model_param_count(m) == 1 && ct_model_buffer_count(m) == 1);
    ct_model_train(m, 0);
    CHECK(lay->training == 0, "ct_model_train reaches a layer made with ct_module_new");

    ct_tensor *w = ct_model_find_param(m, "net.0.weight");
    for (int i = 0; i < 6; i++) w->data[i] = (ct_real)(i + 1); /* W = [[1 2 3] [4 5 6]] */
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(1, 3), (const ct_real[]){1, 0, -1});
    ct_tensor *y = ct_forward(tape, seq, x); /* 0.5·(x·Wᵀ) = 0.5·(−2, −2) */
    CHECK_NEAR(y->data[0], -1, 1e-6, 0);
    CHECK_NEAR(y->data[1], -1, 1e-6, 0);
    ct_backward(tape, ct_sum_all(tape, y)); /* dW = 0.5·1ᵀx */
    CHECK_NEAR(w->grad[0], 0.5, 1e-6, 0);
    CHECK_NEAR(w->grad[2], -0.5, 1e-6, 0);
    CHECK(ct_module_as(lay, "scaled", "test") == (void *)lay);

    char path[512];
    snprintf(path, sizeof path, "%s/summary.txt", ct_test_tmpdir());
    FILE *f = fopen(path, "w+");
    CHECK(f);
    ct_model_summary(m, seq, CT_SHAPE(4, 3), f);
    rewind(f);
    char text[4096] = {0};
    CHECK(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    CHECK(strstr(text, "net.0") && strstr(text, "scaled") && strstr(text, "(4, 2)"), "%s", text);
    ct_tape_free(tape);
    ct_model_free(m); /* frees the layer: ASan reports a leak otherwise */
}

static void null_model(void *arg) {
    (void)arg;
    ct_module_new(NULL, sizeof(scaled_module), "scaled", "s", scaled_forward);
}

static void long_name(void *arg) {
    (void)arg;
    char name[97];
    memset(name, 'a', 96);
    name[96] = 0;
    ct_module_new(ct_model_new(), sizeof(scaled_module), "scaled", name, scaled_forward);
}

static void small_size(void *arg) {
    (void)arg;
    ct_module_new(ct_model_new(), sizeof(int), "scaled", "s", scaled_forward);
}

static void wrong_kind(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_linear_weight(ct_relu_layer_new(m, "act"));
}

static void embedding_through_forward(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_embedding_forward(ct_tape_new(), ct_dropout_new(m, "drop", 0.1), (const int[]){0}, CT_SHAPE(1));
}

CT_TEST(layer, mistakes_are_named) {
    char got[1024];
    CHECK(ct_test_expect_fatal(null_model, NULL, "scaled layer s: the model is NULL", got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(long_name, NULL, "is missing or too long (at most 95 characters)", got, sizeof got),
          "%s", got);
    CHECK(ct_test_expect_fatal(small_size, NULL, "smaller than a ct_module", got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(wrong_kind, NULL, "ct_linear_weight: module act (kind relu) is not a layer of kind linear",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(embedding_through_forward, NULL,
                               "module drop (kind dropout) is not a layer of kind embedding", got, sizeof got), "%s", got);
}

/* Every layer of nn/ is made by the one constructor: no layer file allocates a module itself. */
CT_TEST(layer, every_nn_layer_uses_ct_module_new) {
    const char *repo = ct_test_repository();
    if (!*repo) CT_SKIP("no repository beside the test binary");
    static const char *const files[] = {"attention.c", "compose.c", "conv.c", "dropout.c", "embedding.c",
                                        "linear.c", "norm.c", "zoo.c"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024], text[65536];
        snprintf(path, sizeof path, "%s/nn/%s", repo, files[i]);
        FILE *f = fopen(path, "r");
        CHECK(f, "%s", path);
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        CHECK(strstr(text, "ct_module_new("), "%s makes no layer with ct_module_new", path);
        CHECK(!strstr(text, "calloc(") && !strstr(text, "ct_model_add_module("),
              "%s allocates or registers a module itself instead of ct_module_new", path);
    }
}
