/* tests/optim/test_freeze.c — ct_model_freeze / ct_model_unfreeze: a frozen parameter gets no
 * gradient and every optimizer of the registry leaves it bit for bit as it is (no update, no
 * momentum, no weight decay) while the others train; unfrozen, it trains again. */
#include "../test.h"

#include <string.h>

/* loss = Σ (b·(a·x))² over a fixed batch: two weight matrices (every optimizer, Muon included,
 * takes them), no bias. */
typedef struct {
    ct_model *m;
    ct_module *a, *b;
    ct_tensor *x;
} two_layers;

static two_layers two_layers_new(void) {
    two_layers t;
    t.m = ct_model_new();
    ct_model_set_seed(t.m, 3);
    t.a = ct_linear_new_nobias(t.m, "a", 4, 3);
    t.b = ct_linear_new_nobias(t.m, "b", 3, 2);
    t.x = ct_tensor_new(CT_SHAPE(5, 4));
    for (size_t i = 0; i < t.x->size; i++) t.x->data[i] = (ct_real)(0.3 * sin(1.7 * (double)i + 0.2));
    return t;
}

static void two_layers_free(two_layers *t) {
    ct_tensor_free(t->x);
    ct_model_free(t->m);
}

static void loss_backward(ct_tape *tape, two_layers *t) {
    ct_tensor *y = ct_forward(tape, t->b, ct_forward(tape, t->a, t->x));
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, y)));
}

static int all_params(const ct_tensor *p, void *ctx) {
    (void)p, (void)ctx;
    return 1;
}

/* One step with both trained (the momentum and moment buffers fill), then a.weight frozen for three
 * steps: it must not move by a bit while b.weight does; then unfrozen, it moves again. */
static void check_freeze(const char *spec) {
    two_layers t = two_layers_new();
    ct_optim *opt = ct_optim_parse(t.m, spec);
    CHECK(opt, "%s: %s", spec, ct_last_error());
    /* weight decay on every parameter, for the optimizers that have it in their group */
    ct_optim_add_group(opt, all_params, NULL, CT_GROUP(.weight_decay = 0.1));
    ct_tape *tape = ct_tape_new();
    ct_tensor *wa = ct_linear_weight(t.a), *wb = ct_linear_weight(t.b);
    loss_backward(tape, &t);
    CHECK(ct_optim_step(opt) == CT_OK, "%s: %s", spec, ct_last_error());
    ct_tape_reset(tape);

    ct_model_freeze(t.m, "a.weight");
    CHECK(ct_model_frozen(t.m, "a.weight") && !ct_model_frozen(t.m, "b.weight"), "%s", spec);
    ct_real before_a[12], before_b[6];
    memcpy(before_a, wa->data, sizeof before_a);
    memcpy(before_b, wb->data, sizeof before_b);
    for (int s = 0; s < 3; s++) {
        loss_backward(tape, &t);
        CHECK(wa->grad == NULL, "%s: the tape gave the frozen weight a gradient", spec);
        CHECK(ct_optim_step(opt) == CT_OK, "%s: %s", spec, ct_last_error());
        ct_tape_reset(tape);
    }
    CHECK(memcmp(before_a, wa->data, sizeof before_a) == 0, "%s: the frozen a.weight moved (a[0] %g -> %g)", spec,
          (double)before_a[0], (double)wa->data[0]);
    CHECK(memcmp(before_b, wb->data, sizeof before_b) != 0, "%s: b.weight did not train beside it", spec);

    ct_model_unfreeze(t.m, "a.weight");
    CHECK(!ct_model_frozen(t.m, "a.weight") && wa->grad != NULL, "%s", spec);
    for (int i = 0; i < 12; i++) CHECK(wa->grad[i] == 0, "%s: unfrozen grad[%d] = %g", spec, i, (double)wa->grad[i]);
    loss_backward(tape, &t);
    CHECK(ct_optim_step(opt) == CT_OK, "%s: %s", spec, ct_last_error());
    ct_tape_reset(tape);
    CHECK(memcmp(before_a, wa->data, sizeof before_a) != 0, "%s: the unfrozen a.weight did not train", spec);
    ct_tape_free(tape);
    ct_optim_free(opt);
    two_layers_free(&t);
}

CT_TEST(optim, freeze_sgd_momentum_and_decay_leave_a_frozen_weight) {
    check_freeze("sgd:lr=0.1,momentum=0.9,nesterov=1");
}
CT_TEST(optim, freeze_adam_leaves_a_frozen_weight) { check_freeze("adam:lr=0.01"); }
CT_TEST(optim, freeze_adamw_leaves_a_frozen_weight) { check_freeze("adamw:lr=0.01"); }
CT_TEST(optim, freeze_muon_leaves_a_frozen_weight) { check_freeze("muon"); }

/* Every optimizer the registry makes, with its defaults. */
CT_TEST(optim, freeze_every_registry_optimizer_leaves_a_frozen_weight) {
    static const char *const names[] = {"sgd:momentum=0.9", "adam", "adamw", "adamax", "nadam", "radam",
                                        "rmsprop:momentum=0.9", "adagrad", "adadelta", "adabelief", "lion",
                                        "lamb", "lars", "adafactor", "adopt", "muon"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !ct_test_stopped(); i++) check_freeze(names[i]);
}

/* The recipe's case: a conv whose weight is frozen and bias trained; the bias gradient is the same as
 * with the weight trained, and the weight gets none. */
CT_TEST(optim, freeze_conv_weight_keeps_the_bias_gradient) {
    ct_real bias_grad[2][4];
    for (int frozen = 0; frozen < 2; frozen++) {
        ct_model *m = ct_model_new();
        ct_module *conv = ct_conv2d_new(m, "whiten", 3, 4, 2, CT_CONV2D());
        if (frozen) ct_model_freeze(m, "whiten.weight");
        ct_tensor *x = ct_tensor_new(CT_SHAPE(2, 3, 5, 5));
        for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)cos(0.37 * (double)i);
        ct_tape *tape = ct_tape_new();
        ct_tensor *y = ct_forward(tape, conv, x);
        ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, y)));
        CHECK((ct_conv2d_weight(conv)->grad == NULL) == frozen, "frozen %d", frozen);
        memcpy(bias_grad[frozen], ct_conv2d_bias(conv)->grad, sizeof bias_grad[frozen]);
        ct_tape_free(tape);
        ct_tensor_free(x);
        ct_model_free(m);
    }
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(bias_grad[1][i], bias_grad[0][i], 1e-5, 1e-5);
}

static void freeze_unknown(void *arg) {
    ct_model *m = ct_model_new();
    ct_linear_new(m, "fc", 2, 2);
    ct_model_freeze(m, (const char *)arg);
}

CT_TEST(optim, freeze_unknown_name_is_fatal) {
    char got[512];
    CHECK(ct_test_expect_fatal(freeze_unknown, "fc.wieght", "no parameter named \"fc.wieght\"", got, sizeof got),
          "%s", got);
}
