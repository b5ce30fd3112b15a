/* tests/optim/test_optim_torch.c — every optimizer and option against torch.optim (1.13) trajectories
 * (tests/reference/optim_torch_ref.h, from gen_optim_torch.py), and each optimizer training the
 * MNIST MLP (784-512-256-10) for one epoch of train10k to >= 90% test accuracy. */
#include "../test.h"
#include "../reference/optim_torch_ref.h"

#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-11
#define REF_ATOL 1e-12
#else
#define REF_RTOL 2e-5
#define REF_ATOL 1e-5
#endif

static ct_model *reference_model(void) {
    ct_model *m = ct_model_new();
    size_t at = 0;
    for (int k = 0; k < OPT_REF_PARAMS; k++) {
        ct_shape s = {.ndim = opt_ref_ndim[k]};
        for (int d = 0; d < s.ndim; d++) s.d[d] = opt_ref_shape[k][d];
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        ct_tensor *p = ct_model_add_param(m, name, s);
        for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)opt_ref_initial[at + i];
        at += p->size;
    }
    return m;
}

/* The ctape optimizer for a reference case: same class, same options. */
static ct_optim *optimizer_for(ct_model *m, const opt_ref_case *c) {
    const char *k = c->torch_class;
    ct_adam_opts a = {.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .weight_decay = c->weight_decay,
                      .amsgrad = c->amsgrad, .maximize = c->maximize, .momentum_decay = c->momentum_decay};
    ct_optim *opt = NULL;
    if (!strcmp(k, "Adam")) opt = ct_adam_new(m, a);
    else if (!strcmp(k, "AdamW")) opt = ct_adamw_new(m, a);
    else if (!strcmp(k, "Adamax")) opt = ct_adamax_new(m, a);
    else if (!strcmp(k, "NAdam")) opt = ct_nadam_new(m, a);
    else if (!strcmp(k, "RAdam")) opt = ct_radam_new(m, a);
    else if (!strcmp(k, "RMSprop"))
        opt = ct_rmsprop_new(m, CT_RMSPROP(.lr = c->lr, .alpha = c->alpha, .eps = c->eps, .weight_decay = c->weight_decay,
                                           .momentum = c->momentum, .centered = c->centered, .maximize = c->maximize));
    else if (!strcmp(k, "Adagrad"))
        opt = ct_adagrad_new(m, CT_ADAGRAD(.lr = c->lr, .lr_decay = c->lr_decay, .weight_decay = c->weight_decay,
                                           .initial_accumulator_value = c->initial_accumulator_value, .eps = c->eps,
                                           .maximize = c->maximize));
    else if (!strcmp(k, "Adadelta"))
        opt = ct_adadelta_new(m, CT_ADADELTA(.lr = c->lr, .rho = c->rho, .eps = c->eps, .weight_decay = c->weight_decay,
                                             .maximize = c->maximize));
    else if (!strcmp(k, "SGD"))
        opt = ct_sgd_new(m, CT_SGD(.lr = c->lr, .momentum = c->momentum, .dampening = c->dampening,
                                   .weight_decay = c->weight_decay, .maximize = c->maximize));
    if (opt && c->groups)
        ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.lr = c->group_lr, .weight_decay = c->group_weight_decay));
    return opt;
}

CT_TEST(optim_torch, every_optimizer_matches_pytorch) {
    double worst = 0;
    for (int c = 0; c < OPT_REF_COUNT; c++) {
        const opt_ref_case *rc = &opt_ref_cases[c];
        ct_model *m = reference_model();
        ct_optim *opt = optimizer_for(m, rc);
        CHECK(opt, "%s: no ctape optimizer for torch.optim.%s", rc->name, rc->torch_class);
        for (int step = 0; step < OPT_REF_STEPS; step++) {
            size_t at = 0;
            for (int k = 0; k < OPT_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)opt_ref_grads[step][at + i];
                at += p->size;
            }
            CHECK(ct_optim_step(opt) == CT_OK);
            at = 0;
            for (int k = 0; k < OPT_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++, at++) {
                    double got = p->data[i], want = rc->after[step][at];
                    CHECK(fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want),
                          "%s step %d: %s[%zu] = %.12g, PyTorch %.12g", rc->name, step + 1, p->name, i, got, want);
                    CHECK(p->grad[i] == 0, "%s step %d: %s.grad[%zu] not zeroed", rc->name, step + 1, p->name, i);
                    worst = fmax(worst, fabs(got - want));
                }
            }
        }
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("%d settings x %d steps, worst abs err %.1e", OPT_REF_COUNT, OPT_REF_STEPS, worst);
}

/* ---- MNIST: each optimizer, its usual learning rate, one epoch of train10k --------------- */
typedef struct {
    ct_module *fc1, *fc2, *fc3;
} mlp;

static ct_tensor *mlp_forward(ct_tape *tape, const mlp *net, ct_tensor *x) {
    ct_tensor *h = ct_relu(tape, ct_forward(tape, net->fc1, x));
    h = ct_relu(tape, ct_forward(tape, net->fc2, h));
    return ct_forward(tape, net->fc3, h);
}

/* PyTorch's MNIST example normalisation: (x − 0.1307)/0.3081, the training set's mean and std. */
static void normalise(ct_tensor *x) {
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)((x->data[i] - 0.1307) / 0.3081);
}

static double test_accuracy(ct_tape *tape, const mlp *net, const ct_dataset *test) {
    ct_loader *batches = ct_loader_new(test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    int was = ct_tape_grad_enabled(tape, 0);
    long correct = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        normalise(b.x);
        ct_tensor *logits = mlp_forward(tape, net, b.x);
        correct += ct_count_correct(logits, b.y);
        ct_tape_reset(tape);
    }
    ct_tape_grad_enabled(tape, was);
    ct_loader_free(batches);
    return (double)correct / test->n;
}

/* One epoch = 313 steps of batch 32, inputs normalised as PyTorch's MNIST example, the usual lr
 * annealed to 0 by a cosine over the epoch (so the last iterate is not the noisiest). RAdam gets
 * 3e-3: its rectifier r(t) is a built-in warmup over ~2/(1−β₂) = 2000 steps (r ≈ 0.2 at step 100,
 * 0.4 at step 300), so inside one short epoch it moves at a fraction of Adam's pace; at 1e-3 it
 * ends near 90%, at 3e-3 near 92%. */
CT_TEST(optim_torch, every_optimizer_trains_mnist_mlp_one_epoch) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/mnist", shared);
    ct_dataset *train = ct_idx_load(dir, "train10k");
    ct_dataset *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!test) {
        ct_dataset_free(train);
        CT_SKIP("MNIST train10k/t10k not loadable: %s", ct_last_error());
    }
    static const char *const names[] = {"sgd", "adam", "adamw", "adamax", "nadam", "radam", "rmsprop", "adagrad", "adadelta"};
    enum { N_OPT = sizeof names / sizeof names[0] };
    double acc[N_OPT];
    char notes[512] = "";
    double start = ct_time_now();
    for (int o = 0; o < N_OPT; o++) {
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 1);
        mlp net = {ct_linear_new(m, "fc1", 784, 512), ct_linear_new(m, "fc2", 512, 256), ct_linear_new(m, "fc3", 256, 10)};
        ct_optim *opt = NULL; /* the learning rates users start from */
        switch (o) {
        case 0: opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9)); break;
        case 1: opt = ct_adam_new(m, CT_ADAM(.lr = 1e-3)); break;
        case 2: opt = ct_adamw_new(m, CT_ADAMW(.lr = 1e-3)); break;
        case 3: opt = ct_adamax_new(m, CT_ADAMAX(.lr = 2e-3)); break;
        case 4: opt = ct_nadam_new(m, CT_NADAM(.lr = 2e-3)); break;
        case 5: opt = ct_radam_new(m, CT_RADAM(.lr = 3e-3)); break; /* see above */
        case 6: opt = ct_rmsprop_new(m, CT_RMSPROP(.lr = 1e-3)); break;
        case 7: opt = ct_adagrad_new(m, CT_ADAGRAD(.lr = 1e-2)); break;
        case 8: opt = ct_adadelta_new(m, CT_ADADELTA(.lr = 1.0)); break;
        }
        ct_tape *tape = ct_tape_new();
        ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = 32, .shuffle = 1, .seed = 1, .flatten = 1));
        const double lr = ct_optim_lr(opt);
        const int total = ct_loader_batches_per_epoch(batches);
        ct_batch b;
        for (int t = 0; ct_loader_next(batches, &b); t++) {
            ct_optim_set_lr(opt, 0.5 * lr * (1 + cos(3.141592653589793 * t / total))); /* cosine to 0 */
            normalise(b.x);
            ct_tensor *loss = ct_cross_entropy(tape, mlp_forward(tape, &net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            ct_optim_step(opt);
            ct_tape_reset(tape);
        }
        acc[o] = test_accuracy(tape, &net, test);
        size_t used = strlen(notes);
        snprintf(notes + used, sizeof notes - used, "%s%s %.1f%%", o ? ", " : "", names[o], 100 * acc[o]);
        ct_loader_free(batches);
        ct_tape_free(tape);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_dataset_free(train);
    ct_dataset_free(test);
    for (int o = 0; o < N_OPT; o++)
        CHECK(acc[o] >= 0.90, "%s: test accuracy %.2f%% after one epoch (all: %s)", names[o], 100 * acc[o], notes);
    ct_test_note("%s (%.1fs)", notes, ct_time_now() - start);
}
