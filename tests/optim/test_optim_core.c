/* tests/optim/test_optim_core.c — the optimizer core: parameter groups, named state, save/load and
 * bit-exact resume, the guards (clipping, non-finite check, ⊥Grad), option validation, and the
 * behaviour of every optimizer on a convex quadratic, on Rosenbrock's function and (Adam vs
 * AMSGrad) on Reddi et al.'s counterexample. */
#include "../test.h"
#include "../../optim/optimizer.h" /* the optimizer's internals, as optimizer authors see them */

#include <string.h>

/* ---- the optimizers, by name, for data-driven tests ---------------------------------------- */
typedef enum { SGD, SGD_NESTEROV, ADAM, ADAMW, AMSGRAD, ADAMAX, NADAM, RADAM, RMSPROP, RMSPROP_CENTERED, ADAGRAD, ADADELTA, N_KINDS } kind;
static const char *const kind_name[N_KINDS] = {"sgd", "sgd_nesterov", "adam", "adamw", "amsgrad", "adamax", "nadam",
                                               "radam", "rmsprop", "rmsprop_centered", "adagrad", "adadelta"};

static ct_optim *make(kind k, ct_model *m, double lr) {
    switch (k) {
    case SGD: return ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9));
    case SGD_NESTEROV: return ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9, .nesterov = 1));
    case ADAM: return ct_adam_new(m, CT_ADAM(.lr = lr));
    case ADAMW: return ct_adamw_new(m, CT_ADAMW(.lr = lr, .weight_decay = 0));
    case AMSGRAD: return ct_adam_new(m, CT_ADAM(.lr = lr, .amsgrad = 1));
    case ADAMAX: return ct_adamax_new(m, CT_ADAMAX(.lr = lr));
    case NADAM: return ct_nadam_new(m, CT_NADAM(.lr = lr));
    case RADAM: return ct_radam_new(m, CT_RADAM(.lr = lr));
    case RMSPROP: return ct_rmsprop_new(m, CT_RMSPROP(.lr = lr));
    case RMSPROP_CENTERED: return ct_rmsprop_new(m, CT_RMSPROP(.lr = lr, .centered = 1, .momentum = 0.5));
    case ADAGRAD: return ct_adagrad_new(m, CT_ADAGRAD(.lr = lr));
    case ADADELTA: return ct_adadelta_new(m, CT_ADADELTA(.lr = lr));
    default: return NULL;
    }
}

/* ---- behaviour ----------------------------------------------------------------------------- */
/* f(x) = ½ Σ aᵢxᵢ² with a = (1, 4, 10), from x = (1, −1, 0.5): convex, minimum 0 at 0. */
static double quadratic(const ct_real *x, ct_real *g) {
    static const double a[3] = {1, 4, 10};
    double f = 0;
    for (int i = 0; i < 3; i++) {
        f += 0.5 * a[i] * x[i] * x[i];
        if (g) g[i] = (ct_real)(a[i] * x[i]);
    }
    return f;
}

/* Rosenbrock: f(x, y) = (1 − x)² + 100(y − x²)², minimum 0 at (1, 1), from (−1.2, 1). */
static double rosenbrock(const ct_real *p, ct_real *g) {
    double x = p[0], y = p[1];
    if (g) {
        g[0] = (ct_real)(-2 * (1 - x) - 400 * x * (y - x * x));
        g[1] = (ct_real)(200 * (y - x * x));
    }
    return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
}

typedef struct {
    kind k;
    double quad_lr;
    double rosen_lr;
    int rosen_steps;
} behaviour_case;

/* Rosenbrock learning rates from a scan over 3e-4 .. 3 (float32, 10000 steps): each sits inside a
 * range of working values. RAdam's first steps are SGD with momentum at lr (its variance is not
 * yet rectified), which at Rosenbrock's start (‖∇‖ ≈ 230) diverges above lr ≈ 5e-3. */
static const behaviour_case behaviour[] = {
    {SGD, 0.05, 1e-3, 10000},      {SGD_NESTEROV, 0.05, 1e-3, 10000},    {ADAM, 0.05, 0.02, 10000},
    {ADAMW, 0.05, 0.02, 10000},    {AMSGRAD, 0.05, 0.05, 10000},         {ADAMAX, 0.05, 3e-3, 10000},
    {NADAM, 0.05, 3e-3, 10000},    {RADAM, 0.05, 1e-3, 10000},           {RMSPROP, 0.01, 1e-3, 10000},
    {RMSPROP_CENTERED, 0.01, 3e-4, 10000}, {ADAGRAD, 0.3, 0.3, 10000},   {ADADELTA, 1.0, 0.05, 10000},
};
#define N_BEHAVIOUR ((int)(sizeof behaviour / sizeof behaviour[0]))

/* Runs `steps` steps of the optimizer on f from x0 (n values); returns f at the end. */
static double minimise(kind k, double lr, double (*f)(const ct_real *, ct_real *), const double *x0, int n, int steps,
                       double *x_out) {
    ct_model *m = ct_model_new();
    ct_tensor *p = ct_model_add_param(m, "x", CT_SHAPE(n));
    for (int i = 0; i < n; i++) p->data[i] = (ct_real)x0[i];
    ct_optim *opt = make(k, m, lr);
    for (int t = 0; t < steps; t++) {
        f(p->data, p->grad);
        ct_optim_step(opt);
    }
    double value = f(p->data, NULL);
    for (int i = 0; i < n && x_out; i++) x_out[i] = p->data[i];
    ct_optim_free(opt);
    ct_model_free(m);
    return value;
}

CT_TEST(optim_core, every_optimizer_decreases_a_convex_quadratic) {
    const double x0[3] = {1, -1, 0.5};
    const double f0 = quadratic((ct_real[]){1, -1, 0.5}, NULL);
    char notes[512] = "";
    for (int c = 0; c < N_BEHAVIOUR; c++) {
        double f = minimise(behaviour[c].k, behaviour[c].quad_lr, quadratic, x0, 3, 500, NULL);
        CHECK(f < 1e-2 * f0, "%s: f = %.3g after 500 steps from %.3g", kind_name[behaviour[c].k], f, f0);
        size_t used = strlen(notes);
        if (c < 4) snprintf(notes + used, sizeof notes - used, "%s %.1e ", kind_name[behaviour[c].k], f);
    }
    ct_test_note("f after 500 steps: %s...", notes);
}

CT_TEST(optim_core, every_optimizer_reaches_rosenbrock_minimum) {
    const double x0[2] = {-1.2, 1};
    double worst = 0;
    for (int c = 0; c < N_BEHAVIOUR; c++) {
        double x[2];
        double f = minimise(behaviour[c].k, behaviour[c].rosen_lr, rosenbrock, x0, 2, behaviour[c].rosen_steps, x);
        double dist = hypot(x[0] - 1, x[1] - 1);
        CHECK(dist < 0.1, "%s: (%.4f, %.4f) after %d steps, f = %.3g", kind_name[behaviour[c].k], x[0], x[1],
              behaviour[c].rosen_steps, f);
        worst = fmax(worst, dist);
    }
    ct_test_note("%d optimizers within %.3f of (1, 1)", N_BEHAVIOUR, worst);
}

/* Reddi, Kale & Kumar 2018 ("On the Convergence of Adam and Beyond"), Theorem 1's online problem:
 *   f_t(x) = C·x when t mod 3 = 1, −x otherwise;  x ∈ [−1, 1] (projection by clamping);  C = 3,
 * with β₁ = 0, β₂ = 1/(1 + C²) and α_t = α/√t. Over each period the regret-minimising point is
 * x = −1 (the sum C·x − 2x = x). Adam's rare large gradient C is quickly forgotten by v, so the
 * two small gradients that follow move x up more than C moved it down: it drifts to +1. AMSGrad
 * keeps the largest v, so C's step dominates and it converges to −1. */
static double reddi(int amsgrad, int steps) {
    enum { C = 3 };
    const double alpha = 0.1;
    ct_model *m = ct_model_new();
    ct_tensor *x = ct_model_add_param(m, "x", CT_SHAPE(1));
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = alpha, .beta1 = 0, .beta2 = 1.0 / (1 + C * C), .amsgrad = amsgrad));
    for (int t = 1; t <= steps; t++) {
        ct_optim_set_lr(opt, alpha / sqrt(t));
        x->grad[0] = t % 3 == 1 ? C : -1;
        ct_optim_step(opt);
        x->data[0] = x->data[0] > 1 ? 1 : x->data[0] < -1 ? -1 : x->data[0];
    }
    double end = x->data[0];
    ct_optim_free(opt);
    ct_model_free(m);
    return end;
}

CT_TEST(optim_core, adam_fails_reddi_counterexample_amsgrad_converges) {
    double adam = reddi(0, 6000), ams = reddi(1, 6000);
    CHECK(adam > 0.99, "Adam ends at x = %.4f; Reddi et al. show it drifts to the wrong end, +1", adam);
    CHECK(ams < -0.99, "AMSGrad ends at x = %.4f, want the optimum -1", ams);
    ct_test_note("after 6000 steps: Adam x = %+.4f (wrong), AMSGrad x = %+.4f (optimum -1)", adam, ams);
}

/* ---- parameter groups ------------------------------------------------------------------- */
CT_TEST(optim_core, groups_no_decay_on_vectors_in_one_line) {
    ct_model *m = ct_model_new();
    ct_module *fc = ct_linear_new(m, "fc", 3, 2);
    ct_tensor *w = ct_linear_weight(fc), *b = ct_linear_bias(fc);
    ct_tensor *scale = ct_model_add_param(m, "norm.weight", CT_SHAPE(2));
    ct_optim *opt = ct_adamw_new(m, CT_ADAMW(.lr = 0.1, .weight_decay = 0.5));
    int g = ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0));
    CHECK(g == 1 && ct_optim_group_count(opt) == 2);
    CHECK(ct_optim_group_size(opt, 0) == 1 && ct_optim_group_size(opt, 1) == 2, "weight in group 0, bias and norm in 1");
    CHECK(ct_optim_group_weight_decay(opt, 1) == 0 && ct_optim_group_lr(opt, 1) == 0.1);
    ct_tensor_fill(b, 1);
    ct_tensor_fill(scale, 1);
    double w0 = w->data[0];
    ct_optim_step(opt); /* zero gradients: only decoupled decay moves anything */
    CHECK(b->data[0] == 1 && scale->data[1] == 1, "no decay on vectors");
    CHECK_NEAR(w->data[0], w0 * (1 - 0.1 * 0.5), 1e-7, 1e-6);
    /* a group by name with its own lr; a schedule moves every group together */
    int h = ct_optim_add_group(opt, ct_param_name_contains, "norm.", CT_GROUP(.lr = 0.01));
    CHECK(ct_optim_param_group(opt, 2) == h && ct_optim_group_weight_decay(opt, h) == 0.5,
          "the new group takes the optimizer's weight decay");
    ct_optim_set_lr(opt, 0.05);
    CHECK_NEAR(ct_optim_group_lr(opt, h), 0.005, 1e-15, 1e-12);
    CHECK_NEAR(ct_optim_group_lr(opt, 0), 0.05, 0, 0);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- state save / load -------------------------------------------------------------------- */
static ct_model *small_model(uint64_t seed, ct_module **fc1, ct_module **fc2) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, seed);
    *fc1 = ct_linear_new(m, "fc1", 6, 8);
    *fc2 = ct_linear_new(m, "fc2", 8, 3);
    return m;
}

/* One training step of relu MLP + cross-entropy on a fixed batch that depends on the step. */
static void train_step(ct_tape *tape, ct_module *fc1, ct_module *fc2, ct_optim *opt, int step) {
    enum { N = 16 };
    ct_real xs[N * 6];
    int ys[N];
    ct_rng rng;
    ct_rng_seed(&rng, 100 + (uint64_t)step);
    for (int i = 0; i < N * 6; i++) xs[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    for (int i = 0; i < N; i++) ys[i] = (int)ct_rng_int(&rng, 0, 3);
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(N, 6), xs);
    ct_tensor *h = ct_relu(tape, ct_forward(tape, fc1, x));
    ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, fc2, h), CT_LABELS(ys, N), CT_CE());
    ct_backward(tape, loss);
    ct_optim_step(opt);
    ct_tape_reset(tape);
}

CT_TEST(optim_core, state_names_and_save_load_roundtrip) {
    ct_module *fc1, *fc2;
    ct_model *m = small_model(1, &fc1, &fc2);
    ct_optim *opt = ct_nadam_new(m, CT_NADAM(.lr = 0.01));
    ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0, .lr = 0.02));
    CHECK(ct_optim_find_state(opt, "exp_avg") >= 0 && ct_optim_find_state(opt, "exp_avg_sq") >= 0 &&
          ct_optim_find_state(opt, "momentum_buffer") < 0 && !strcmp(ct_optim_kind(opt), "nadam"));
    ct_tape *tape = ct_tape_new();
    for (int s = 0; s < 3; s++) train_step(tape, fc1, fc2, opt, s);
    char path[600];
    snprintf(path, sizeof path, "%s/nadam.safetensors", ct_test_tmpdir());
    CHECK(ct_optim_save(opt, path) == CT_OK, "%s", ct_last_error());

    ct_safetensors *f = ct_safetensors_open(path);
    CHECK(f, "%s", ct_last_error());
    CHECK(ct_safetensors_count(f) == 8, "4 parameters x 2 states, got %d", ct_safetensors_count(f));
    CHECK(!strcmp(ct_safetensors_name(f, 0), "fc1.bias.exp_avg"), "got %s", ct_safetensors_name(f, 0));
    CHECK(!strcmp(ct_safetensors_metadata(f, "ctape.optimizer"), "nadam") &&
          !strcmp(ct_safetensors_metadata(f, "ctape.step"), "3") && ct_safetensors_metadata(f, "ctape.scalar.mu_product"));
    ct_safetensors_close(f);

    ct_module *g1, *g2;
    ct_model *m2 = small_model(1, &g1, &g2);
    ct_optim *opt2 = ct_nadam_new(m2, CT_NADAM(.lr = 0.5));
    ct_optim_add_group(opt2, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0, .lr = 0.02));
    CHECK(ct_optim_load(opt2, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_optim_steps(opt2) == 3 && ct_optim_lr(opt2) == 0.01 && ct_optim_group_lr(opt2, 1) == ct_optim_group_lr(opt, 1));
    for (int s = 0; s < opt->n_slots; s++)
        for (int k = 0; k < opt->n_params; k++) {
            ct_tensor *a = ct_optim_state_tensor(opt, s, k), *b = ct_optim_state_tensor(opt2, s, k);
            CHECK(!memcmp(a->data, b->data, a->size * sizeof(ct_real)), "state %s of %s differs after load",
                  opt->slots[s].name, opt->params[k]->name);
        }
    /* wrong kind, missing file, wrong groups: errors, optimizer unchanged */
    ct_optim *adam = ct_adam_new(m2, CT_ADAM());
    CHECK(ct_optim_load(adam, path) == CT_ERR_VALUE && strstr(ct_last_error(), "\"nadam\" optimizer cannot be loaded into \"adam\""),
          "%s", ct_last_error());
    CHECK(ct_optim_steps(adam) == 0);
    ct_optim *nadam1 = ct_nadam_new(m2, CT_NADAM());
    CHECK(ct_optim_load(nadam1, path) == CT_ERR_VALUE && strstr(ct_last_error(), "parameter groups"), "%s", ct_last_error());
    char missing[700];
    snprintf(missing, sizeof missing, "%s.missing", path);
    CHECK(ct_optim_load(opt2, missing) == CT_ERR_IO && strstr(ct_last_error(), "cannot open"), "%s", ct_last_error());
    CHECK(ct_optim_load(opt2, path) == CT_OK);
    ct_optim_free(nadam1);
    ct_optim_free(adam);
    ct_optim_free(opt2);
    ct_model_free(m2);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* Training 12 steps straight, and 6 steps + checkpoint + a fresh model and optimizer (different
 * init) loading it + 6 steps, end with the same bits in one thread, for every kind of state. */
CT_TEST(optim_core, resume_from_checkpoint_is_bit_exact) {
    int threads = ct_get_threads();
    ct_set_threads(1);
    const char *dir = ct_test_tmpdir();
    for (int k = 0; k < N_KINDS; k++) {
        ct_tape *tape = ct_tape_new();
        ct_module *a1, *a2, *b1, *b2;
        ct_model *ma = small_model(7, &a1, &a2);
        ct_optim *oa = make((kind)k, ma, 0.01);
        ct_optim_set_guards(oa, CT_GUARDS(.clip_norm = 1.0));
        for (int s = 0; s < 12; s++) train_step(tape, a1, a2, oa, s);

        ct_model *mb = small_model(7, &b1, &b2);
        ct_optim *ob = make((kind)k, mb, 0.01);
        ct_optim_set_guards(ob, CT_GUARDS(.clip_norm = 1.0));
        for (int s = 0; s < 6; s++) train_step(tape, b1, b2, ob, s);
        char path[600];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, kind_name[k]);
        CHECK(ct_checkpoint_save(ob, path) == CT_OK, "%s", ct_last_error());
        ct_optim_free(ob);
        ct_model_free(mb);

        ct_model *mc = small_model(99, &b1, &b2); /* other initial weights: all come from the file */
        ct_optim *oc = make((kind)k, mc, 0.5);
        ct_optim_set_guards(oc, CT_GUARDS(.clip_norm = 1.0));
        CHECK(ct_checkpoint_load(oc, path) == CT_OK, "%s: %s", kind_name[k], ct_last_error());
        for (int s = 6; s < 12; s++) train_step(tape, b1, b2, oc, s);
        for (int i = 0; i < ct_model_param_count(ma); i++) {
            ct_tensor *p = ct_model_param(ma, i), *q = ct_model_param(mc, i);
            CHECK(!memcmp(p->data, q->data, p->size * sizeof(ct_real)), "%s: %s differs after resuming",
                  kind_name[k], p->name);
        }
        CHECK(ct_optim_steps(oc) == 12);
        ct_optim_free(oa);
        ct_optim_free(oc);
        ct_model_free(ma);
        ct_model_free(mc);
        ct_tape_free(tape);
    }
    ct_set_threads(threads);
    ct_test_note("%d optimizers, 6 + 6 steps through a checkpoint == 12 steps, bit for bit", N_KINDS);
}

/* ---- guards ------------------------------------------------------------------------------- */
CT_TEST(optim_core, clip_grad_norm_leaves_exactly_max_norm) {
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(2));
    t->grad[0] = 3;
    t->grad[1] = 4;
    ct_tensor *list[] = {t};
    double before = ct_clip_grad_norm(list, 1, 2.0);
    CHECK(before == 5, "norm before clipping %.17g", before);
    double after = ct_grad_norm(list, 1);
    CHECK_NEAR(after, 2.0, 0, 2 * CT_REAL_EPS);
    CHECK_NEAR(t->grad[0], 1.2, 0, 2 * CT_REAL_EPS);
    CHECK_NEAR(t->grad[1], 1.6, 0, 2 * CT_REAL_EPS);
    /* below the threshold nothing changes */
    CHECK(ct_clip_grad_norm(list, 1, 10.0) == after && t->grad[0] == (ct_real)(3 * (ct_real)(2.0 / 5)));
    /* by value */
    t->grad[0] = -7;
    t->grad[1] = 0.25;
    ct_clip_grad_value(list, 1, 0.5);
    CHECK(t->grad[0] == -0.5 && t->grad[1] == 0.25);
    ct_tensor_free(t);

    /* global over several tensors, through the optimizer's guard */
    ct_model *m = ct_model_new();
    ct_tensor *a = ct_model_add_param(m, "a", CT_SHAPE(1)), *b = ct_model_add_param(m, "b", CT_SHAPE(1));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 1));
    ct_optim_set_guards(opt, CT_GUARDS(.clip_norm = 2));
    a->grad[0] = 3;
    b->grad[0] = 4;
    CHECK(ct_optim_step(opt) == CT_OK && ct_optim_last_grad_norm(opt) == 5);
    CHECK_NEAR(hypot(a->data[0], b->data[0]), 2, 0, 2 * CT_REAL_EPS);
    ct_optim_free(opt);
    ct_model_free(m);
}

CT_TEST(optim_core, nonfinite_gradient_skips_or_stops_and_names_the_parameter) {
    const ct_nonfinite_policy policies[] = {CT_NONFINITE_SKIP, CT_NONFINITE_STOP};
    for (int c = 0; c < 2; c++) {
        ct_model *m = ct_model_new();
        ct_tensor *w = ct_model_add_param(m, "fc1.weight", CT_SHAPE(2, 2));
        ct_tensor *b = ct_model_add_param(m, "fc1.bias", CT_SHAPE(3));
        ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 0.1));
        ct_optim_set_guards(opt, CT_GUARDS(.nonfinite = policies[c], .clip_norm = 1));
        for (int i = 0; i < 4; i++) w->grad[i] = 1;
        b->grad[0] = 1;
        b->grad[2] = c == 0 ? NAN : -INFINITY;
        int rc = ct_optim_step(opt);
        const char *want = c == 0 ? "fc1.bias.grad[2] = nan" : "fc1.bias.grad[2] = -inf";
        CHECK(strstr(ct_last_error(), want), "got \"%s\", want it to contain \"%s\"", ct_last_error(), want);
        CHECK(w->data[0] == 0 && b->data[0] == 0 && ct_optim_steps(opt) == 0, "nothing applied");
        CHECK(ct_optim_state(opt, 0, 0)[0] == 0, "state untouched");
        if (c == 0) {
            CHECK(rc == CT_OPTIM_SKIPPED && ct_optim_skipped_steps(opt) == 1 && strstr(ct_last_error(), "skipped"));
            CHECK(w->grad[0] == 0 && b->grad[0] == 0, "grads zeroed for the next step");
        } else {
            CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "stopped"));
            CHECK(w->grad[0] == 1 && isinf(b->grad[2]), "grads left for inspection");
        }
        /* a finite step afterwards goes through */
        for (int i = 0; i < 4; i++) w->grad[i] = 1;
        for (int i = 0; i < 3; i++) b->grad[i] = 0;
        CHECK(ct_optim_step(opt) == CT_OK && ct_optim_steps(opt) == 1 && w->data[0] < 0);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    /* a huge but finite float gradient is not mistaken for Inf (squares accumulate in double) */
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(2));
    t->grad[0] = (ct_real)1e30;
    ct_tensor *list[] = {t};
    CHECK(ct_grads_check_finite(list, 1) == CT_OK && isfinite(ct_grad_norm(list, 1)));
    ct_tensor_free(t);
}

CT_TEST(optim_core, ortho_grad_projects_out_the_weight_direction) {
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(3));
    const ct_real w[3] = {1, 2, 2}, g[3] = {3, 0, 1};
    ct_tensor_copy_from(t, w);
    for (int i = 0; i < 3; i++) t->grad[i] = g[i];
    ct_tensor *list[] = {t};
    ct_ortho_grad(list, 1);
    /* g·w = 5, w·w = 9: g⊥ = g − (5/9)·w */
    for (int i = 0; i < 3; i++) CHECK_NEAR(t->grad[i], g[i] - 5.0 / 9 * w[i], 1e-6, 0);
    double gw = 0;
    for (int i = 0; i < 3; i++) gw += (double)t->grad[i] * w[i];
    CHECK_NEAR(gw, 0, 1e-6, 0);
    ct_tensor_free(t);

    /* through the guard: rescaled keeps ‖g‖; a zero weight tensor leaves g alone */
    ct_model *m = ct_model_new();
    ct_tensor *p = ct_model_add_param(m, "w", CT_SHAPE(3)), *z = ct_model_add_param(m, "zero", CT_SHAPE(2));
    ct_tensor_copy_from(p, w);
    for (int i = 0; i < 3; i++) p->grad[i] = g[i];
    z->grad[0] = 1;
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 1));
    ct_optim_set_guards(opt, CT_GUARDS(.ortho_grad = CT_ORTHO_GRAD_RESCALED));
    CHECK(ct_optim_step(opt) == CT_OK);
    double d2 = 0, dw = 0;
    for (int i = 0; i < 3; i++) {
        double d = w[i] - p->data[i]; /* the applied gradient */
        d2 += d * d;
        dw += d * w[i];
    }
    CHECK_NEAR(sqrt(d2), sqrt(10.0), 1e-5, 0);
    CHECK_NEAR(dw, 0, 1e-5, 0);
    CHECK(z->data[0] == -1, "zero weights: gradient applied unchanged");
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- multi-threaded path and options ---------------------------------------------------------- */
/* Adam on a parameter large enough to run on several threads matches the formula. */
CT_TEST(optim_core, adam_large_parameter_matches_formula) {
    ct_model *m = ct_model_new();
    ct_tensor *p = ct_model_add_param(m, "big", CT_SHAPE(300, 400));
    ct_optim *opt = ct_adamw_new(m, CT_ADAMW(.lr = 0.01, .weight_decay = 0.1, .amsgrad = 1));
    for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)(i % 7) - 3;
    const double gs[2] = {1, -0.5};
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)(gs[step] * (double)(i % 5));
        ct_optim_step(opt);
    }
    for (size_t i = 0; i < p->size; i += 997) {
        double x = (double)(i % 7) - 3, mm = 0, v = 0, vmax = 0;
        for (int t = 1; t <= 2; t++) {
            double g = gs[t - 1] * (double)(i % 5);
            x *= 1 - 0.01 * 0.1;
            mm = 0.9 * mm + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            vmax = fmax(vmax, v);
            x -= 0.01 / (1 - pow(0.9, t)) * mm / (sqrt(vmax) / sqrt(1 - pow(0.999, t)) + 1e-8);
        }
        CHECK(fabs(p->data[i] - x) <= 1e-5 * (1 + fabs(x)), "big[%zu] = %.8g, want %.8g", i, (double)p->data[i], x);
        CHECK(p->grad[i] == 0);
    }
    ct_optim_free(opt);
    ct_model_free(m);
}

static void bad_option_body(void *arg) {
    int which = *(const int *)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(2));
    switch (which) {
    case 0: ct_adam_new(m, CT_ADAM(.beta1 = 1)); break;
    case 1: ct_adam_new(m, CT_ADAM(.eps = -1)); break;
    case 2: ct_nadam_new(m, CT_NADAM(.amsgrad = 1)); break;
    case 3: ct_radam_new(m, CT_RADAM(.maximize = 1)); break;
    case 4: ct_adam_new(m, CT_ADAM(.momentum_decay = 0.1)); break;
    case 5: ct_rmsprop_new(m, CT_RMSPROP(.alpha = 1.5)); break;
    case 6: ct_adagrad_new(m, CT_ADAGRAD(.lr_decay = -1)); break;
    case 7: ct_adadelta_new(m, CT_ADADELTA(.rho = -0.1)); break;
    case 8: ct_adamw_new(m, CT_ADAMW(.weight_decay = NAN)); break;
    case 9: ct_optim_set_guards(ct_sgd_new(m, CT_SGD()), CT_GUARDS(.clip_norm = -1)); break;
    case 10: ct_optim_add_group(ct_sgd_new(m, CT_SGD()), ct_param_is_vector, NULL, CT_GROUP(.lr = -2)); break;
    case 11: ct_optim_add_group(ct_sgd_new(m, CT_SGD(.lr = 0)), ct_param_is_vector, NULL, CT_GROUP(.lr = 0.1)); break;
    case 12: ct_radam_new(m, CT_RADAM(.beta2 = 0.5)); break;
    }
}

CT_TEST(optim_core, bad_options_are_fatal_and_named) {
    const char *want[] = {
        "ct_adam_new: beta1 1 must be in [0, 1)",
        "ct_adam_new: eps -1 must be finite and >= 0",
        "ct_nadam_new: amsgrad is an option of Adam and AdamW only",
        "ct_radam_new: maximize is an option of Adam, AdamW and Adamax only",
        "ct_adam_new: momentum_decay 0.1 is an option of NAdam only",
        "ct_rmsprop_new: alpha 1.5 must be in [0, 1]",
        "ct_adagrad_new: lr_decay -1 must be finite and >= 0",
        "ct_adadelta_new: rho -0.1 must be in [0, 1]",
        "ct_adamw_new: weight_decay nan must be finite and >= 0",
        "ct_optim_set_guards: clip_norm -1 must be finite and >= 0",
        "ct_optim_add_group: lr -2 must be finite and >= 0",
        "ct_optim_add_group: a group lr (0.1) is kept as a scale of the base lr, which is 0",
        "ct_radam_new: beta2 0.5 gives rho_inf <= 4",
    };
    char got[1024];
    for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++)
        CHECK(ct_test_expect_fatal(bad_option_body, &i, want[i], got, sizeof got), "case %d: want \"%s\", got: %s", i,
              want[i], got);
}
