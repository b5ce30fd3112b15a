/* tests/nn/test_nn.c — init schemes, composition (sequential, residual, flatten), names that follow
 * the composition, the train/eval switch, and the summary. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static void moments(const ct_tensor *t, double *mean, double *var, double *absmax) {
    double s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < t->size; i++) {
        double v = t->data[i];
        s += v;
        s2 += v * v;
        mx = fabs(v) > mx ? fabs(v) : mx;
    }
    *mean = s / t->size;
    *var = s2 / t->size - *mean * *mean;
    *absmax = mx;
}

CT_TEST(nn, fans_follow_pytorch) {
    ct_tensor *conv = ct_tensor_new(CT_SHAPE(8, 3, 3, 3)), *mat = ct_tensor_new(CT_SHAPE(5, 7));
    int fi, fo;
    ct_init_fans(conv, &fi, &fo);
    CHECK(fi == 27 && fo == 72, "conv fans %d %d", fi, fo);
    ct_init_fans(mat, &fi, &fo);
    CHECK(fi == 7 && fo == 5, "matrix fans %d %d", fi, fo);
    ct_tensor_free(conv);
    ct_tensor_free(mat);
}

/* Each scheme's bound (uniform) or standard deviation (normal) from its formula, checked on
 * 64·1024 draws: the sample variance is within 3% of the target (its standard error is ~0.6%). */
CT_TEST(nn, init_schemes_have_their_published_scale) {
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor *w = ct_tensor_new(CT_SHAPE(64, 256, 2, 2)); /* fan_in 1024, fan_out 256 */
    double mean, var, mx;

    ct_init_kaiming_uniform(w, &rng, 0, CT_FAN_IN); /* bound √(6/1024) */
    moments(w, &mean, &var, &mx);
    CHECK(mx <= sqrt(6.0 / 1024) && fabs(var / (2.0 / 1024) - 1) < 0.03, "kaiming uniform var %g max %g", var, mx);

    ct_init_kaiming_normal(w, &rng, 0, CT_FAN_OUT); /* std √(2/256) */
    moments(w, &mean, &var, &mx);
    CHECK(fabs(var / (2.0 / 256) - 1) < 0.03 && fabs(mean) < 0.003, "kaiming normal var %g", var);

    ct_init_xavier_uniform(w, &rng, 1); /* bound √(6/1280), var 2/1280 */
    moments(w, &mean, &var, &mx);
    CHECK(mx <= sqrt(6.0 / 1280) && fabs(var / (2.0 / 1280) - 1) < 0.03, "xavier uniform var %g", var);

    ct_init_xavier_normal(w, &rng, 2); /* std 2·√(2/1280) */
    moments(w, &mean, &var, &mx);
    CHECK(fabs(var / (4 * 2.0 / 1280) - 1) < 0.03, "xavier normal var %g", var);

    ct_init_kaiming_uniform(w, &rng, sqrt(5.0), CT_FAN_IN); /* PyTorch's layer default: bound 1/√fan_in */
    moments(w, &mean, &var, &mx);
    CHECK(mx <= 1.0 / 32 && mx > 0.99 / 32, "default bound %g", mx);

    ct_init_normal(w, &rng, 1, 0.5);
    moments(w, &mean, &var, &mx);
    CHECK(fabs(mean - 1) < 0.01 && fabs(var / 0.25 - 1) < 0.03);
    ct_init_uniform(w, &rng, -2, 3);
    moments(w, &mean, &var, &mx);
    CHECK(fabs(mean - 0.5) < 0.03 && mx <= 3);
    ct_init_zeros(w);
    moments(w, &mean, &var, &mx);
    CHECK(mx == 0);
    ct_init_ones(w);
    moments(w, &mean, &var, &mx);
    CHECK(mean == 1 && var == 0);
    ct_tensor_free(w);
}

/* Q has orthonormal columns (tall) or rows (wide), scaled by the gain. */
CT_TEST(nn, orthogonal_init_is_orthogonal) {
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    int shapes[2][2] = {{6, 4}, {3, 5}};
    for (int s = 0; s < 2; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        ct_tensor *q = ct_tensor_new(CT_SHAPE(rows, cols));
        ct_init_orthogonal(q, &rng, 2.0);
        int tall = rows >= cols, k = tall ? cols : rows;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                double dot = 0;
                for (int r = 0; r < (tall ? rows : cols); r++)
                    dot += tall ? (double)q->data[r * cols + i] * q->data[r * cols + j]
                                : (double)q->data[i * cols + r] * q->data[j * cols + r];
                CHECK_NEAR(dot, i == j ? 4.0 : 0.0, 1e-5, 1e-5);
            }
        ct_tensor_free(q);
    }
}

/* features = [linear 4->6, relu, linear 6->3]; names follow the composition; the sequential's
 * output equals the layers applied by hand; train/eval reaches every module. */
CT_TEST(nn, sequential_names_and_forward) {
    ct_model *m = ct_model_new();
    ct_module *features = ct_sequential_new(m, "features");
    ct_sequential_add(features, ct_linear_new(m, "features.0", 4, 6));
    ct_sequential_add(features, ct_relu_layer_new(m, "features.1"));
    ct_sequential_add(features, ct_linear_new(m, "features.2", 6, 3));
    CHECK(ct_sequential_size(features) == 3);
    CHECK(ct_model_find_param(m, "features.0.weight") && ct_model_find_param(m, "features.2.bias"));
    CHECK(ct_model_param_count(m) == 4 && ct_model_num_elements(m) == 4 * 6 + 6 + 6 * 3 + 3);

    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 4));
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)i / 7 - 0.5;
    ct_tensor *y = ct_forward(tape, features, x);
    ct_tensor *h = ct_relu(tape, ct_forward(tape, ct_sequential_child(features, 0), x));
    ct_tensor *z = ct_forward(tape, ct_sequential_child(features, 2), h);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3);
    for (size_t i = 0; i < y->size; i++) CHECK(y->data[i] == z->data[i]);

    ct_model_train(m, 0);
    for (int i = 0; i < 3; i++) CHECK(ct_sequential_child(features, i)->training == 0);
    CHECK(features->training == 0);
    ct_model_train(m, 1);
    CHECK(ct_sequential_child(features, 1)->training == 1);
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(nn, residual_and_flatten) {
    ct_model *m = ct_model_new();
    ct_module *inner = ct_linear_new(m, "block.fc", 3, 3);
    ct_module *block = ct_residual_new(m, "block", inner);
    ct_module *flat = ct_flatten_new(m, "flatten");
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3));
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)i;
    ct_tensor *y = ct_forward(tape, block, x), *fx = ct_forward(tape, inner, x);
    for (size_t i = 0; i < y->size; i++) CHECK_NEAR(y->data[i], x->data[i] + fx->data[i], 1e-6, 0);
    ct_tensor *img = ct_tape_zeros(tape, CT_SHAPE(5, 2, 3, 4));
    ct_tensor *f = ct_forward(tape, flat, img);
    CHECK(f->ndim == 2 && f->shape[0] == 5 && f->shape[1] == 24 && f->data == img->data, "flatten is a view");
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(nn, buffers_share_the_namespace) {
    ct_model *m = ct_model_new();
    ct_tensor *b = ct_model_add_buffer(m, "bn.running_mean", CT_SHAPE(4));
    CHECK(ct_model_buffer_count(m) == 1 && ct_model_find_buffer(m, "bn.running_mean") == b);
    CHECK(!b->grad && !ct_requires_grad(b), "a buffer has no gradient");
    CHECK(ct_model_param_count(m) == 0, "optimizers do not see buffers");
    /* many registrations move the registry; names must stay valid */
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "p%d", i);
        ct_model_add_param(m, name, CT_SHAPE(1));
    }
    CHECK(strcmp(ct_model_param(m, 0)->name, "p0") == 0 && strcmp(ct_model_param(m, 39)->name, "p39") == 0);
    ct_model_free(m);
}

static void duplicate_name_body(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "fc.weight", CT_SHAPE(2));
    ct_model_add_buffer(m, "fc.weight", CT_SHAPE(2));
}

CT_TEST(nn, duplicate_names_are_fatal) {
    char got[512];
    CHECK(ct_test_expect_fatal(duplicate_name_body, NULL, "\"fc.weight\" already exists", got, sizeof got), "got: %s", got);
}

CT_TEST(nn, summary_lists_layers_shapes_and_counts) {
    ct_model *m = ct_model_new();
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_flatten_new(m, "net.0"));
    ct_sequential_add(net, ct_linear_new(m, "net.1", 12, 5));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.2"));
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_model_summary(m, net, CT_SHAPE(2, 3, 4), out);
    fclose(out);
    CHECK(strstr(text, "net.1") && strstr(text, "linear") && strstr(text, "(2, 5)") && strstr(text, "65"),
          "summary:\n%s", text);
    CHECK(strstr(text, "net.0") && strstr(text, "(2, 12)"), "summary:\n%s", text);
    CHECK(strstr(text, "Parameters: 65 in 2 tensors"), "summary:\n%s", text);
    free(text);
    ct_model_free(m);
}
