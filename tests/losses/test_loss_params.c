/* tests/losses/test_loss_params.c — registered losses on a par with the zoo's: vector parameters
 * (per-class weights, a registered loss's counts) parsed, range-checked per value, checked against C
 * at apply and bind, described and parsed back; a registered loss with learnable state (a bind hook)
 * that trains and goes through a checkpoint; the eval transform of every loss family; ct_loss_list
 * showing lists and transforms; every bad definition or spec refused with a message naming it. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* 1 when spec parses (the loss is freed) */
static int ct_loss_parse_ok(const char *spec) {
    ct_loss *l = ct_loss_parse(spec);
    ct_loss_free(l);
    return l != NULL;
}
/* the parse gives NULL with a message containing `part` */
#define EXPECT_MESSAGE(parsed, part)                                                                      \
    do {                                                                                                  \
        ct_loss *l_ = (parsed);                                                                           \
        ct_loss_free(l_);                                                                                 \
        CHECK(!l_ && strstr(ct_last_error(), part), "%s: got \"%s\"", #parsed, l_ ? "(parsed)" : ct_last_error()); \
    } while (0)

/* ---- a registered loss with a per-class list, a choice and learnable state -----------------------
 * LDAM (Cao et al. 2019) with a learnable scale: per class a margin Δ_c = max_m·(n_c^(−1/4) /
 * max_k n_k^(−1/4)) from the training counts n_c, taken off the label's logit, and the logits scaled
 * by s = e^t with t a parameter of the model ("<name>.log_scale", starting at 0):
 *   ℓ_i = CE(s·(z_i − Δ_{y_i}·one_hot(y_i)), y_i).
 * Without counts (the default) Δ = 0: cross-entropy of s·z. */
static ct_tensor *ldam_apply(ct_tape *tape, ct_tensor *z, ct_labels y, const ct_loss_args *a) {
    const int C = z->shape[1], n = a->length[0];
    ct_tensor *shifted = z;
    if (n) {
        ct_tensor *delta = ct_tape_zeros(tape, CT_SHAPE(y.n, C));
        double most = 0;
        for (int c = 0; c < n; c++) most = fmax(most, pow(a->list[0][c], -0.25));
        for (int i = 0; i < y.n; i++)
            delta->data[(size_t)i * C + y.data[i]] = (ct_real)(a->value[1] * pow(a->list[0][y.data[i]], -0.25) / most);
        shifted = ct_sub(tape, z, delta);
    }
    ct_tensor *s = ct_exp(tape, a->state[0]); /* (1): broadcast over (N, C) */
    return ct_cross_entropy(tape, ct_mul(tape, shifted, s), y,
                            CT_CE(.reduction = a->value[2] == 0 ? CT_REDUCTION_MEAN : CT_REDUCTION_SUM));
}

static int ldam_bind(ct_model *m, const char *name, ct_loss_args *a) {
    char full[128];
    snprintf(full, sizeof full, "%s.log_scale", name);
    a->state[0] = ct_model_add_param(m, full, CT_SHAPE(1));
    ct_init_zeros(a->state[0]);
    return CT_OK;
}

static const ct_loss_def ldam_def = {
    .name = "params_ldam",
    .formula = "CE(e^t·(z − Δ_y·one_hot(y))), Δ_c ∝ n_c^(−1/4), t learnable",
    .input = "logits (N, C)",
    .params = {{"counts", "", "per class [1, inf)", "training samples of each class"},
               {"max_m", "0.5", "(0, inf)", "the largest margin (the rarest class's)"},
               {"reduction", "mean", "mean|sum", "over the batch"}},
    .apply = ldam_apply,
    .bind = ldam_bind,
};

/* one-vs-rest: binary cross-entropy against one_hot(y), read with a sigmoid */
static ct_tensor *ovr_fn(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    ct_tensor *t = ct_one_hot(tape, y.data, y.n, z->shape[1]);
    return ct_mul_scalar(tape, ct_bce_with_logits(tape, z, t, CT_BCE()), params[0]);
}

static const ct_loss_def ovr_def = {
    .name = "params_ovr",
    .formula = "s·bce(z, one_hot(y))",
    .input = "logits (N, C)",
    .params = {{"s", "1", "(0, inf)", "scale"}},
    .fn = ovr_fn,
    .transform = CT_EVAL_SIGMOID,
};

static void register_ours(void) {
    if (!ct_loss_parse_ok("params_ldam")) CHECK(ct_loss_register(&ldam_def) == CT_OK, "%s", ct_last_error());
    if (!ct_loss_parse_ok("params_ovr")) CHECK(ct_loss_register(&ovr_def) == CT_OK, "%s", ct_last_error());
}

/* ---- vector parameters of the zoo ------------------------------------------------------------ */
CT_TEST(loss_params, vectors_parse_in_both_forms_and_round_trip) {
    const struct {
        const char *spec, *described;
    } cases[] = {
        {"cross_entropy:weight=1,0.5,2,reduction=sum", "cross_entropy:reduction=sum,label_smoothing=0,ignore_index=-100,weight=[1,0.5,2]"},
        {"bce_with_logits:weight=[0.25,4],pos_weight=3,1",
         "bce_with_logits:reduction=mean,pos_weight=[3,1],weight=[0.25,4]"},
        {"focal:alpha=0.5,0.25,gamma=1", "focal:reduction=mean,gamma=1,alpha=[0.5,0.25]"},
        {"poly_n:epsilon=[1, -0.5 ,0.25]", "poly_n:reduction=mean,epsilon=[1,-0.5,0.25]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ct_loss *l = ct_loss_parse(cases[i].spec);
        CHECK(l, "%s: %s", cases[i].spec, ct_last_error());
        char text[512], again[512];
        ct_loss_describe(l, text, sizeof text);
        CHECK(!strcmp(text, cases[i].described), "%s described as %s", cases[i].spec, text);
        ct_loss *back = ct_loss_parse(text);
        CHECK(back, "%s: %s", text, ct_last_error());
        ct_loss_describe(back, again, sizeof again);
        CHECK(!strcmp(text, again), "%s -> %s", text, again);
        ct_loss_free(back);
        ct_loss_free(l);
    }
    /* CIFAR-100 sized: 100 class weights, and the most a vector takes */
    char spec[16384];
    size_t used = (size_t)snprintf(spec, sizeof spec, "cross_entropy:weight=[");
    for (int c = 0; c < 100; c++) used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%.10g", c ? "," : "", 0.5 + c / 64.0);
    snprintf(spec + used, sizeof spec - used, "]");
    ct_loss *l = ct_loss_parse(spec);
    CHECK(l, "%s", ct_last_error());
    char text[16384];
    ct_loss_describe(l, text, sizeof text);
    CHECK(strstr(text, "weight=[0.5,0.515625,") && strstr(text, ",2.046875]"), "described as %s", text);
    ct_loss_free(l);
    used = (size_t)snprintf(spec, sizeof spec, "cross_entropy:weight=[");
    for (int c = 0; c < CT_LOSS_MAX_VALUES + 1; c++) used += (size_t)snprintf(spec + used, sizeof spec - used, "%s1", c ? "," : "");
    snprintf(spec + used, sizeof spec - used, "]");
    CHECK(!ct_loss_parse(spec) && strstr(ct_last_error(), "weight has more than 1024 values"), "%s", ct_last_error());
}

/* A by-name bce_with_logits with class weights computes what the function computes. */
CT_TEST(loss_params, bce_class_weights_by_name_match_the_function) {
    enum { N = 3, C = 4 };
    const int y[N] = {2, 0, 3};
    ct_real w[C] = {0.5, 2, 1, 0.25}, pw[C] = {1, 3, 0.5, 2};
    ct_loss *l = ct_loss_parse("bce_with_logits:weight=[0.5,2,1,0.25],pos_weight=[1,3,0.5,2]");
    CHECK(l, "%s", ct_last_error());
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(N, C));
    for (int k = 0; k < N * C; k++) z->data[k] = (ct_real)(0.4 * k - 2);
    ct_tensor *got = ct_loss_apply(tape, l, z, CT_LABELS(y, N));
    ct_tensor *want = ct_bce_with_logits(tape, z, ct_one_hot(tape, y, N, C), CT_BCE(.weight = w, .pos_weight = pw));
    CHECK(got->data[0] == want->data[0], "%g vs %g", (double)got->data[0], (double)want->data[0]);
    ct_tape_free(tape);
    ct_loss_free(l);
}

/* ---- lengths against the classes ------------------------------------------------------------- */
typedef struct {
    const char *spec;
    int classes;
} apply_case;

static void apply_to_logits(void *arg) {
    const apply_case *c = arg;
    ct_loss *l = ct_loss_parse(c->spec);
    CT_CHECK(l, "test", "%s", ct_last_error());
    ct_tape *tape = ct_tape_new();
    const int y[2] = {0, 1};
    ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(2, c->classes)), CT_LABELS(y, 2));
}

CT_TEST(loss_params, a_vector_of_the_wrong_length_is_refused_naming_the_loss_and_both_lengths) {
    register_ours();
    const struct {
        const char *spec;
        const char *parts[3];
    } cases[] = {
        {"cross_entropy:weight=[1,2,3]", {"cross_entropy: weight has 3 values", "C = 10 classes", "one value per class"}},
        {"nll:weight=[1,2]", {"nll: weight has 2 values", "C = 10 classes", "(2, 10)"}},
        {"bce_with_logits:pos_weight=[1,2,3,4,5,6,7,8,9,10,11]", {"bce_with_logits: pos_weight has 11 values", "C = 10", ""}},
        {"focal:alpha=[0.5,0.5]", {"focal: alpha has 2 values", "C = 10", "give one value, or one per class"}},
        {"params_ldam:counts=[5,4,3]", {"params_ldam: counts has 3 values", "the 10 classes given to ct_loss_bind", ""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char got[1024];
        /* ct_loss_bind checks first, as data: CT_ERR_VALUE naming the loss, the key, both lengths */
        ct_loss *l = ct_loss_parse(cases[i].spec);
        ct_model *m = ct_model_new();
        CHECK(l, "%s: %s", cases[i].spec, ct_last_error());
        CHECK(ct_loss_bind(l, m, "loss", 10, 10) == CT_ERR_VALUE, "%s was bound to 10 classes", cases[i].spec);
        CHECK(strstr(ct_last_error(), "for 10 classes") && strstr(ct_last_error(), ct_loss_name(l)), "%s: %s",
              cases[i].spec, ct_last_error());
        ct_model_free(m);
        ct_loss_free(l);
        if (strstr(cases[i].spec, "params_ldam")) { /* bound to 10, the counts for 3: apply refuses */
            continue;
        }
        apply_case c = {cases[i].spec, 10};
        CHECK(ct_test_expect_fatal(apply_to_logits, &c, cases[i].parts[0], got, sizeof got), "%s: got %s",
              cases[i].spec, got);
        for (int k = 1; k < 3; k++) CHECK(strstr(got, cases[i].parts[k]), "%s: got %s", cases[i].spec, got);
    }
    /* the right lengths go through; focal's one α for every class too */
    const char *fine[] = {"cross_entropy:weight=[1,2,3,4]", "focal:alpha=[0.5]", "focal:alpha=[1,2,3,4]",
                          "params_ldam:counts=[9,5,2,1]"};
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        ct_loss *l = ct_loss_parse(fine[i]);
        ct_model *m = ct_model_new();
        CHECK(l && ct_loss_bind(l, m, "loss", 4, 4) == CT_OK, "%s: %s", fine[i], ct_last_error());
        ct_tape *tape = ct_tape_new();
        const int y[2] = {0, 3};
        ct_tensor *out = ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(2, 4)), CT_LABELS(y, 2));
        CHECK(isfinite(out->data[0]), "%s gave %g", fine[i], (double)out->data[0]);
        ct_tape_free(tape);
        ct_model_free(m);
        ct_loss_free(l);
    }
}

/* A bound loss checks its per-class lists against the classes it was bound to. */
static void apply_bound_mismatch(void *arg) {
    (void)arg;
    ct_loss *l = ct_loss_parse("params_ldam:counts=[5,4,3]");
    ct_model *m = ct_model_new();
    CT_CHECK(ct_loss_bind(l, m, "loss", 3, 3) == CT_OK, "test", "%s", ct_last_error());
    /* the list is checked against the bound classes (3): fine; now logits of 5 columns */
    ct_tape *tape = ct_tape_new();
    const int y[2] = {0, 1};
    ct_tensor *out = ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(2, 3)), CT_LABELS(y, 2));
    CT_CHECK(isfinite(out->data[0]), "test", "3 classes gave %g", (double)out->data[0]);
    ct_fatal("test", "reached the end");
}

CT_TEST(loss_params, a_bound_loss_checks_its_lists_against_the_bound_classes) {
    register_ours();
    char got[1024];
    CHECK(ct_test_expect_fatal(apply_bound_mismatch, NULL, "reached the end", got, sizeof got), "got %s", got);
}

/* ---- registered losses: lists, choices, state ------------------------------------------------- */
CT_TEST(loss_params, a_registered_list_is_range_checked_per_value_and_round_trips) {
    register_ours();
    EXPECT_MESSAGE(ct_loss_parse("params_ldam:counts=[5,0,2]"), "params_ldam: counts: value 1 = 0 is out of range [1, inf)");
    EXPECT_MESSAGE(ct_loss_parse("params_ldam:counts=[5,x]"), "counts: value 1 'x' is not a number");
    EXPECT_MESSAGE(ct_loss_parse("params_ldam:reduction=none"), "reduction=none is not one of mean|sum");
    EXPECT_MESSAGE(ct_loss_parse("params_ldam:max_m=0"), "max_m=0 is out of range (0, inf)");
    EXPECT_MESSAGE(ct_loss_parse("params_ldam:count=[1]"), "params_ldam has no parameter 'count' (did you mean counts?)");
    EXPECT_MESSAGE(ct_loss_parse("params_ladm"), "unknown loss 'params_ladm' (did you mean params_ldam?)");
    ct_loss *l = ct_loss_parse("params_ldam:counts=5000,2997,1796,1077,645,387,232,139,83,50,reduction=sum");
    CHECK(l, "%s", ct_last_error());
    char text[512];
    ct_loss_describe(l, text, sizeof text);
    CHECK(!strcmp(text, "params_ldam:counts=[5000,2997,1796,1077,645,387,232,139,83,50],max_m=0.5,reduction=sum"),
          "described as %s", text);
    ct_loss_free(l);
    l = ct_loss_parse("params_ldam:counts=[]");
    CHECK(l, "an empty list is the default: %s", ct_last_error());
    ct_loss_describe(l, text, sizeof text);
    CHECK(!strcmp(text, "params_ldam:counts=[],max_m=0.5,reduction=mean"), "described as %s", text);
    ct_loss_free(l);
}

/* The counts reach apply: with t = 0 the loss is CE of the logits minus the label's margin. */
CT_TEST(loss_params, a_registered_list_reaches_the_loss) {
    register_ours();
    enum { N = 4, C = 3 };
    const int y[N] = {0, 2, 1, 2};
    const double counts[C] = {100, 10, 1}, max_m = 0.75;
    ct_loss *l = ct_loss_parse("params_ldam:counts=[100,10,1],max_m=0.75");
    ct_model *m = ct_model_new();
    CHECK(l && ct_loss_bind(l, m, "head", C, 8) == CT_OK, "%s", ct_last_error());
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(N, C)), *shifted = ct_tape_zeros(tape, CT_SHAPE(N, C));
    for (int k = 0; k < N * C; k++) z->data[k] = shifted->data[k] = (ct_real)(0.3 * k - 1);
    for (int i = 0; i < N; i++) shifted->data[i * C + y[i]] -= (ct_real)(max_m * pow(counts[y[i]], -0.25));
    ct_tensor *got = ct_loss_apply(tape, l, z, CT_LABELS(y, N));
    ct_tensor *want = ct_cross_entropy(tape, shifted, CT_LABELS(y, N), CT_CE());
    CHECK_NEAR(got->data[0], want->data[0], 1e-6, 1e-6);
    ct_tape_free(tape);
    ct_model_free(m);
    ct_loss_free(l);
}

static void apply_before_bind(void *arg) {
    (void)arg;
    ct_loss *l = ct_loss_parse("params_ldam");
    ct_tape *tape = ct_tape_new();
    const int y[2] = {0, 1};
    ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(2, 3)), CT_LABELS(y, 2));
}

/* `steps` SGD steps over a 5 -> 3 linear layer and the loss's scale on one batch; the loss after them. */
static double train_steps(ct_model *m, ct_module *fc, ct_loss *l, int steps, double *scale_grad) {
    enum { N = 12, D = 5 };
    int y[N];
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.2));
    ct_tape *tape = ct_tape_new();
    double value = 0;
    for (int s = 0; s <= steps; s++) {
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(N, D));
        ct_rng_seed(&rng, 5);
        for (int i = 0; i < N; i++) {
            y[i] = i % 3;
            for (int d = 0; d < D; d++) x->data[i * D + d] = (ct_real)ct_rng_normal(&rng, d == y[i] ? 1.5 : 0, 0.5);
        }
        ct_tensor *loss = ct_loss_apply(tape, l, ct_forward(tape, fc, x), CT_LABELS(y, N));
        value = loss->data[0];
        if (s == steps) break;
        ct_backward(tape, loss);
        if (s == 0 && scale_grad) *scale_grad = ct_model_find_param(m, "loss.log_scale")->grad[0];
        CT_CHECK(ct_optim_step(opt) == CT_OK, "test", "%s", ct_last_error());
        ct_tape_reset(tape);
    }
    ct_tape_free(tape);
    ct_optim_free(opt);
    return value;
}

CT_TEST(loss_params, a_registered_loss_with_state_trains_and_checkpoints) {
    register_ours();
    char got[1024];
    CHECK(ct_test_expect_fatal(apply_before_bind, NULL, "call ct_loss_bind", got, sizeof got) &&
              strstr(got, "params_ldam"),
          "got %s", got);
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *fc = ct_linear_new(m, "fc", 5, 3);
    ct_loss *l = ct_loss_parse("params_ldam:counts=[40,12,3]");
    CHECK(l && ct_loss_bind(l, m, "loss", 3, 5) == CT_OK, "%s", ct_last_error());
    CHECK(ct_loss_bind(l, m, "loss", 3, 5) == CT_ERR_VALUE && strstr(ct_last_error(), "params_ldam is bound already"),
          "%s", ct_last_error());
    ct_tensor *t = ct_model_find_param(m, "loss.log_scale");
    CHECK(t && t->size == 1 && t->data[0] == 0, "no loss.log_scale = 0 in the model");
    /* the optimizer sees it: its gradient is not 0 and the steps move it, and the loss falls */
    double grad = 0;
    const double before = train_steps(m, fc, l, 0, NULL), after = train_steps(m, fc, l, 30, &grad);
    CHECK(grad != 0, "no gradient reached loss.log_scale");
    CHECK(t->data[0] != 0, "the optimizer did not update loss.log_scale");
    CHECK(after < before, "loss %g -> %g after 30 steps", before, after);
    /* a checkpoint holds it: a new model of the same shape, bound the same way, loads it */
    char path[512];
    snprintf(path, sizeof path, "%s/ldam_state.safetensors", ct_test_tmpdir());
    CHECK(ct_model_save(m, path) == CT_OK, "%s", ct_last_error());
    ct_model *m2 = ct_model_new();
    ct_module *fc2 = ct_linear_new(m2, "fc", 5, 3);
    ct_loss *l2 = ct_loss_parse("params_ldam:counts=[40,12,3]");
    CHECK(l2 && ct_loss_bind(l2, m2, "loss", 3, 5) == CT_OK, "%s", ct_last_error());
    CHECK(ct_model_load(m2, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_model_find_param(m2, "loss.log_scale")->data[0] == t->data[0], "loaded %g, saved %g",
          (double)ct_model_find_param(m2, "loss.log_scale")->data[0], (double)t->data[0]);
    CHECK(train_steps(m2, fc2, l2, 0, NULL) == train_steps(m, fc, l, 0, NULL), "the loaded model's loss differs");
    /* a loss on logits needs no feature dimension; center loss does; every loss with state needs classes */
    ct_model *m4 = ct_model_new();
    ct_loss *l4 = ct_loss_parse("params_ldam"), *center = ct_loss_parse("center");
    CHECK(ct_loss_bind(l4, m4, "loss", 3, 0) == CT_OK, "%s", ct_last_error());
    CHECK(ct_loss_bind(center, m4, "c", 3, 0) == CT_ERR_VALUE && strstr(ct_last_error(), "center: needs dim >= 1"), "%s",
          ct_last_error());
    CHECK(ct_loss_bind(center, m4, "c", 0, 4) == CT_ERR_VALUE && strstr(ct_last_error(), "center: classes = 0 must be positive"),
          "%s", ct_last_error());
    ct_loss_free(center), ct_loss_free(l4), ct_model_free(m4);
    /* a model without the loss's parameter does not take the checkpoint silently */
    ct_model *m3 = ct_model_new();
    ct_linear_new(m3, "fc", 5, 3);
    CHECK(ct_model_load(m3, path) != CT_OK, "a checkpoint with loss.log_scale loaded into a model without it");
    ct_model_free(m3);
    ct_loss_free(l2);
    ct_model_free(m2);
    ct_loss_free(l);
    ct_model_free(m);
}

/* ---- eval transforms ----------------------------------------------------------------------- */
CT_TEST(loss_params, each_loss_family_has_its_eval_transform) {
    register_ours();
    const struct {
        const char *spec;
        ct_eval_transform want;
    } cases[] = {
        {"cross_entropy", CT_EVAL_SOFTMAX}, {"nll", CT_EVAL_SOFTMAX},          {"focal", CT_EVAL_SOFTMAX},
        {"poly1", CT_EVAL_SOFTMAX},         {"poly_n", CT_EVAL_SOFTMAX},       {"poly1_focal", CT_EVAL_SOFTMAX},
        {"squentropy", CT_EVAL_SOFTMAX},    {"comp_sum", CT_EVAL_SOFTMAX},     {"gce", CT_EVAL_SOFTMAX},
        {"nce_rce", CT_EVAL_SOFTMAX},       {"mse", CT_EVAL_SOFTMAX},          {"huber", CT_EVAL_SOFTMAX},
        {"bce_with_logits", CT_EVAL_SIGMOID}, {"sigmoid_focal", CT_EVAL_SIGMOID}, {"stablemax", CT_EVAL_STABLEMAX},
        {"params_ovr", CT_EVAL_SIGMOID},    {"params_ldam", CT_EVAL_SOFTMAX}, /* declared; AUTO is softmax */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ct_loss *l = ct_loss_parse(cases[i].spec);
        CHECK(l, "%s", ct_last_error());
        CHECK(ct_loss_eval_transform(l) == cases[i].want, "%s: transform %d, want %d", cases[i].spec,
              (int)ct_loss_eval_transform(l), (int)cases[i].want);
        ct_loss_free(l);
    }
    for (int i = 0; i < ct_loss_count(); i++) {
        ct_loss *l = ct_loss_parse(ct_loss_name_at(i));
        CHECK(ct_loss_eval_transform(l) != CT_EVAL_AUTO, "%s says AUTO", ct_loss_name_at(i));
        ct_loss_free(l);
    }
    /* ct_metrics without a loss to ask: AUTO is softmax */
    const ct_real z[3] = {2, 0, -1};
    const int y[1] = {0};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(1, 3));
    memcpy(t->data, z, sizeof z);
    ct_metrics *a = ct_metrics_new(3, CT_METRICS()), *b = ct_metrics_new(3, CT_METRICS(.transform = CT_EVAL_SOFTMAX));
    CHECK(ct_metrics_add(a, t, CT_LABELS(y, 1)) == CT_OK && ct_metrics_add(b, t, CT_LABELS(y, 1)) == CT_OK);
    CHECK(ct_metrics_compute(a).nll == ct_metrics_compute(b).nll, "AUTO %g, softmax %g", ct_metrics_compute(a).nll,
          ct_metrics_compute(b).nll);
    CHECK_NEAR(ct_metrics_compute(a).nll, log(exp(2.0) + 1 + exp(-1.0)) - 2, 1e-12, 0);
    ct_metrics_free(a), ct_metrics_free(b);
    ct_tensor_free(t);
}

/* ---- ct_loss_list ----------------------------------------------------------------------------- */
CT_TEST(loss_params, list_shows_vectors_transforms_and_state) {
    register_ours();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f);
    ct_loss_list(f);
    fclose(f);
    const char *want[] = {
        "bce_with_logits\n", "probabilities: sigmoid", "probabilities: stablemax", "outputs features",
        "weight           per class        = []",
        "alpha            one or per class = 1",
        "epsilon          list             = [1]",
        "params_ldam  (learnable state: ct_loss_bind)",
        "counts           per class        = []       [1, inf)",
        "reduction        choice           = mean     mean|sum",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const int found = strstr(text, want[i]) != NULL;
        if (!found) fprintf(stderr, "%s", text);
        CHECK(found, "ct_loss_list does not show \"%s\"", want[i]);
    }
    free(text);
}

/* ---- bad definitions ------------------------------------------------------------------------ */
static ct_tensor *apply_never(ct_tape *tape, ct_tensor *z, ct_labels y, const ct_loss_args *a) {
    (void)tape, (void)y, (void)a;
    return z;
}
static ct_tensor *fn_never(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    (void)tape, (void)y, (void)params;
    return z;
}

CT_TEST(loss_params, bad_definitions_are_refused_naming_the_mistake) {
    const struct {
        ct_loss_def def;
        const char *expect;
    } cases[] = {
        {{.name = "params_bad", .params = {{"w", "", "list [0, inf)", "a list"}}, .fn = fn_never},
         "ct_loss_register: params_bad: w is a list: give apply"},
        {{.name = "params_bad", .fn = fn_never, .apply = apply_never}, "give fn (numbers only) or apply"},
        {{.name = "params_bad"}, "it has neither"},
        {{.name = "params_bad", .params = {{"w", "", "per klass [0, 1]", "?"}}, .apply = apply_never},
         "params_bad: w: malformed range \"per klass [0, 1]\""},
        {{.name = "params_bad", .params = {{"w", "", "list [1, 0]", "?"}}, .apply = apply_never},
         "params_bad: w: malformed range \"[1, 0]\""},
        {{.name = "params_bad", .params = {{"w", "[1,-1]", "list [0, inf)", "?"}}, .apply = apply_never},
         "ct_loss_register: default of w: params_bad: w: value 1 = -1 is out of range [0, inf)"},
        {{.name = "params_bad2", .params = {{"r", "avg", "mean|sum", "?"}}, .fn = fn_never},
         "ct_loss_register: default of r: params_bad2: r=avg is not one of mean|sum"},
        {{.name = "params_bad3", .params = {{"r", "mean", "mean||sum", "?"}}, .fn = fn_never},
         "params_bad3: r: malformed choices \"mean||sum\""},
        {{.name = "params_bad4", .params = {{"n", "1.5", "integer [0, 9]", "?"}}, .fn = fn_never},
         "default of n: params_bad4: n=1.5 is not an integer"},
        {{.name = "params_bad5", .params = {{"a=b", "1", "[0, 9]", "?"}}, .fn = fn_never},
         "params_bad5: parameter name \"a=b\""},
        {{.name = "params_bad6", .fn = fn_never, .transform = (ct_eval_transform)9},
         "params_bad6: transform 9 is not a ct_eval_transform"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int before = ct_loss_count(), status = ct_loss_register(&cases[i].def);
        CHECK(status == CT_ERR_VALUE && strstr(ct_last_error(), cases[i].expect), "case %zu: got \"%s\", want \"%s\"",
              i, status == CT_OK ? "(registered)" : ct_last_error(), cases[i].expect);
        CHECK(ct_loss_count() == before, "case %zu: a refused definition was added", i);
    }
}
