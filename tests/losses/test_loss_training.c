/* tests/losses/test_loss_training.c — every loss trains. The same small MLP on ../shared/data/mnist
 * train10k for one epoch reaches at least 90% on the 10k test images with each classification
 * loss of the registry, and a linear probe on the embeddings trained with SupCon, Circle and
 * triplet loss reaches 90% too.
 *
 * Recipe (one for all, tuned only in the lr): MLP 784-256-10 (ReLU), PyTorch's default init, seed
 * 1; SGD momentum 0.9, batch 32, a cosine schedule to 0 over the epoch (313 steps). With a
 * constant lr the last steps' noise spreads one-epoch accuracy over about ±0.6% (tests/examples/test_e2e.c),
 * which would make a 90% bar test luck; annealed, the bar tests the loss. The lr is per loss where
 * the loss's gradient scale demands it: bounded losses (MAE-like: l1, gce, comp_sum, nce_rce) and
 * the focal family have gradients several times smaller than CE's near the end of training.
 *
 * Embedding losses: the same MLP with a 128-d output (784-256-128) is trained one epoch with the
 * loss (batch 64 so that every anchor has positives), then frozen; a linear probe 128 -> 10 is
 * fitted with cross-entropy on the standardised embeddings of the 10k training images (SGD
 * momentum 0.9, batch 64, 5 epochs, cosine) and evaluated on the test embeddings.
 *
 * Measured accuracies (t10k, float32) are next to each row of the tables below. Two losses cannot
 * reach 90% in one epoch with any lr, in ctape or in PyTorch (l1 and nce_rce: see their rows);
 * they keep an explicit, lower bar with the reason rather than a silently lowered one. Embedding
 * probes: supcon 92.31, circle 91.60, triplet 92.92 (lr 0.05 each, batch 64). */
#include "../test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAR 0.90

/* The dataset is loaded once for the whole group. */
static ct_dataset *train_set, *test_set;
static int data_tried;

static int load_data(void) {
    if (!data_tried) {
        data_tried = 1;
        const char *shared = ct_test_shared_data();
        if (!shared) return 0;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/mnist", shared);
        train_set = ct_idx_load(dir, "train10k");
        test_set = train_set ? ct_idx_load(dir, "t10k") : NULL;
    }
    return test_set != NULL;
}

__attribute__((destructor)) static void free_data(void) {
    ct_dataset_free(test_set);
    ct_dataset_free(train_set);
}

typedef struct {
    ct_module *fc1, *fc2;
} mlp;

static ct_tensor *mlp_forward(ct_tape *tape, const mlp *net, ct_tensor *x) {
    return ct_forward(tape, net->fc2, ct_relu(tape, ct_forward(tape, net->fc1, x)));
}

static void set_cosine_lr(ct_optim *opt, double lr, int t, int total) {
    ct_optim_set_lr(opt, 0.5 * lr * (1 + cos(3.141592653589793 * t / total)));
}

/* Trains net for one epoch of the training set with `loss`; returns 0 if a loss value was not
 * finite. log_softmax_first: the loss takes log-probabilities (nll). */
static int train_epoch(ct_model *m, const mlp *net, ct_loss *loss, double lr, int batch, int log_softmax_first) {
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train_set, CT_LOADER(.batch = batch, .shuffle = 1, .seed = 1, .flatten = 1,
                                                            .drop_last = 1));
    const int total = ct_loader_batches_per_epoch(batches);
    int ok = 1, t = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        set_cosine_lr(opt, lr, t++, total);
        ct_tensor *out = mlp_forward(tape, net, b.x);
        if (log_softmax_first) out = ct_log_softmax(tape, out, 1);
        ct_tensor *l = ct_loss_apply(tape, loss, out, b.y);
        ok &= isfinite(l->data[0]) != 0;
        ct_backward(tape, l);
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    return ok;
}

/* The network's outputs on a whole dataset, (n, out) row-major (malloc'd), with no tape records. */
static ct_real *outputs_of(const mlp *net, const ct_dataset *d, int out) {
    ct_real *all = malloc((size_t)d->n * out * sizeof *all);
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_loader *batches = ct_loader_new(d, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    ct_batch b;
    int row = 0;
    while (ct_loader_next(batches, &b)) {
        ct_tensor *y = mlp_forward(tape, net, b.x);
        memcpy(all + (size_t)row * out, y->data, (size_t)b.n * out * sizeof *all);
        row += b.n;
        ct_tape_reset(tape);
    }
    ct_loader_free(batches);
    ct_tape_free(tape);
    return all;
}

static double argmax_accuracy(const ct_real *logits, const int *labels, int n, int classes) {
    ct_tensor view = {.data = (ct_real *)logits, .size = (size_t)n * classes, .ndim = 2, .shape = {n, classes}};
    return (double)ct_count_correct(&view, CT_LABELS(labels, n)) / n;
}

/* ---- classification losses ------------------------------------------------------------------ */
typedef struct {
    const char *spec;
    double lr;
    double bar; /* BAR, except where the loss cannot reach it (said why next to the row) */
} class_case;

/* lr per loss from a sweep over {0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2} (1 thread, seed 1): the best
 * lr, or the smaller of two within 0.3%. The element-wise losses (bce, mse, smooth_l1, huber,
 * sigmoid_focal) average over N·C elements, not N samples: their gradient per logit is C = 10 times
 * smaller than CE's, hence their lrs near 10x CE's. Measured accuracy at that lr after the comma. */
static const class_case class_cases[] = {
    {"cross_entropy", 0.1, BAR},   /* 93.13 */
    {"nll", 0.1, BAR},             /* 93.13 (on log_softmax of the logits: the same as CE) */
    {"bce_with_logits", 1.0, BAR}, /* 92.97 */
    {"mse", 0.5, BAR},             /* 93.29 */
    /* l1 = MAE between logits and one-hot targets cannot reach 90% in one epoch with any lr: best
     * 77.8% (lr 0.5; 62% at 0.1, 30% at 1). PyTorch, same recipe and loss: 50–64% (2 seeds, lr 0.1
     * and 0.5). Its minimiser is the per-class conditional median of the one-hot target (0 unless
     * P(c|x) > ½) and its gradient has a constant magnitude: a regression loss that underfits
     * classification. The row checks that it learns, not that it is good. */
    {"l1", 0.5, 0.70},             /* 77.81 */
    {"smooth_l1", 1.0, BAR},       /* 93.39 */
    {"huber", 1.0, BAR},           /* 93.39 */
    {"focal", 0.1, BAR},           /* 93.02 */
    {"sigmoid_focal", 2.0, BAR},   /* 92.20: α = 0.25 and the mean over N·C shrink its gradient */
    {"poly1", 0.1, BAR},           /* 93.42 */
    {"poly_n", 0.1, BAR},          /* 93.42 */
    {"poly1_focal", 0.1, BAR},     /* 93.46 */
    {"squentropy", 0.1, BAR},      /* 93.14 */
    {"comp_sum", 0.2, BAR},        /* 90.46: GCE q = 0.7 is bounded and slow to fit (90.09 at 0.1, 90.04 at 0.3) */
    {"gce", 0.2, BAR},             /* 90.46: comp_sum's default is GCE q = 0.7; PyTorch 90.35, 90.79 */
    /* nce_rce cannot reach 90% in one epoch either: best 89.23% (α = β = 1, lr 0.1; 88.06 at 0.05,
     * 79.41 at 0.15) and 89.77% with the paper's CIFAR-100 setting α = 10, β = 0.1 (lr 0.15).
     * PyTorch, same recipe: 82.74 and 89.22% (2 seeds, lr 0.1). NCE is bounded and RCE is MAE:
     * both are robust to label noise by fitting slowly (Ma et al. train 120 epochs). */
    {"nce_rce", 0.1, 0.85},        /* 89.23 */
    {"stablemax", 0.3, BAR},       /* 92.38 */
    /* run at CE's lr, not swept: a loop without ct_loss_set_progress keeps tsla in its smoothed phase,
     * and logit_adjusted without counts is CE */
    {"tsla", 0.1, BAR},            /* 93.61 */
    {"logit_adjusted", 0.1, BAR},  /* 93.13 (= cross_entropy) */
};

static int is_embedding_loss(const char *name) {
    return !strcmp(name, "supcon") || !strcmp(name, "ntxent") || !strcmp(name, "circle") ||
           !strcmp(name, "triplet") || !strcmp(name, "circle_class") || !strcmp(name, "center");
}

/* The zoo's own losses: those registered before any test runs (other tests add their own). */
static int zoo_size;
__attribute__((constructor)) static void count_the_zoo(void) { zoo_size = ct_loss_count(); }

CT_TEST(losses_train, every_classification_loss_reaches_90_percent) {
    if (!load_data()) {
        if (!ct_test_shared_data()) CT_SKIP_NO_SHARED_DATA();
        CHECK(0, "%s", ct_last_error());
    }
    const int n_cases = (int)(sizeof class_cases / sizeof class_cases[0]);
    /* every classification loss in the registry has a row */
    for (int i = 0; i < zoo_size; i++) {
        const char *name = ct_loss_name_at(i);
        int found = is_embedding_loss(name);
        for (int k = 0; k < n_cases && !found; k++)
            found = !strncmp(class_cases[k].spec, name, strlen(name)) &&
                    (class_cases[k].spec[strlen(name)] == 0 || class_cases[k].spec[strlen(name)] == ':');
        CHECK(found, "registry loss %s has no row in class_cases", name);
    }
    char summary[2048] = "";
    size_t used = 0;
    double worst = 1;
    const char *worst_name = "";
    for (int k = 0; k < n_cases; k++) {
        ct_loss *loss = ct_loss_parse(class_cases[k].spec);
        CHECK(loss, "%s", ct_last_error());
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 1);
        mlp net = {ct_linear_new(m, "fc1", 784, 256), ct_linear_new(m, "fc2", 256, 10)};
        int finite = train_epoch(m, &net, loss, class_cases[k].lr, 32, !strcmp(class_cases[k].spec, "nll"));
        ct_real *logits = outputs_of(&net, test_set, 10);
        double acc = argmax_accuracy(logits, test_set->labels, test_set->n, 10);
        free(logits);
        ct_model_free(m);
        ct_loss_free(loss);
        if (used < sizeof summary)
            used += (size_t)snprintf(summary + used, sizeof summary - used, "%s%s %.2f", k ? ", " : "",
                                     class_cases[k].spec, 100 * acc);
        CHECK(finite, "%s: a loss value was not finite", class_cases[k].spec);
        CHECK(acc >= class_cases[k].bar, "%s (lr %g): test accuracy %.4f below %.2f", class_cases[k].spec,
              class_cases[k].lr, acc, class_cases[k].bar);
        if (acc < worst) worst = acc, worst_name = class_cases[k].spec;
    }
    ct_test_note("worst %s %.2f%%; %s", worst_name, 100 * worst, summary);
}

/* ---- embedding losses and a linear probe ---------------------------------------------------- */
/* Per-dimension standardisation with the training set's mean and std, applied to both sets. */
static void standardise(ct_real *train, int n_train, ct_real *test, int n_test, int dim) {
    for (int j = 0; j < dim; j++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n_train; i++) s += train[(size_t)i * dim + j];
        const double mean = s / n_train;
        for (int i = 0; i < n_train; i++) s2 += pow(train[(size_t)i * dim + j] - mean, 2);
        const double inv = 1 / sqrt(s2 / n_train + 1e-8);
        for (int i = 0; i < n_train; i++) train[(size_t)i * dim + j] = (ct_real)((train[(size_t)i * dim + j] - mean) * inv);
        for (int i = 0; i < n_test; i++) test[(size_t)i * dim + j] = (ct_real)((test[(size_t)i * dim + j] - mean) * inv);
    }
}

/* Fits a linear layer dim -> classes on (train, labels) with CE and returns its test accuracy. */
static double linear_probe(const ct_real *train, const int *train_y, int n_train, const ct_real *test,
                           const int *test_y, int n_test, int dim, int classes) {
    enum { BATCH = 64, EPOCHS = 5 };
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 2);
    ct_module *probe = ct_linear_new(m, "probe", dim, classes);
    const double lr = 0.05;
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new(CT_SHAPE(BATCH, dim));
    int *perm = malloc((size_t)n_train * sizeof *perm), y[BATCH];
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    const int per_epoch = n_train / BATCH, total = EPOCHS * per_epoch;
    for (int epoch = 0, t = 0; epoch < EPOCHS; epoch++) {
        ct_rng_permutation(&rng, perm, n_train);
        for (int s = 0; s < per_epoch; s++) {
            for (int i = 0; i < BATCH; i++) {
                const int r = perm[s * BATCH + i];
                memcpy(x->data + (size_t)i * dim, train + (size_t)r * dim, (size_t)dim * sizeof *x->data);
                y[i] = train_y[r];
            }
            set_cosine_lr(opt, lr, t++, total);
            ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, probe, x), CT_LABELS(y, BATCH), CT_CE()));
            ct_optim_step(opt);
            ct_tape_reset(tape);
        }
    }
    ct_tensor_free(x);
    x = ct_tensor_new(CT_SHAPE(n_test, dim));
    ct_tensor_copy_from(x, test);
    ct_tape_grad_enabled(tape, 0);
    double acc = argmax_accuracy(ct_forward(tape, probe, x)->data, test_y, n_test, classes);
    ct_tensor_free(x);
    free(perm);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
    return acc;
}

typedef struct {
    const char *spec;
    double lr;
} embed_case;

static const embed_case embed_cases[] = {
    {"supcon", 0.05},
    {"circle", 0.05},
    {"triplet", 0.05},
};

CT_TEST(losses_train, embedding_losses_give_a_90_percent_linear_probe) {
    if (!load_data()) {
        if (!ct_test_shared_data()) CT_SKIP_NO_SHARED_DATA();
        CHECK(0, "%s", ct_last_error());
    }
    enum { DIM = 128 };
    char summary[512] = "";
    size_t used = 0;
    for (int k = 0; k < (int)(sizeof embed_cases / sizeof embed_cases[0]); k++) {
        ct_loss *loss = ct_loss_parse(embed_cases[k].spec);
        CHECK(loss, "%s", ct_last_error());
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 1);
        mlp net = {ct_linear_new(m, "fc1", 784, 256), ct_linear_new(m, "fc2", 256, DIM)};
        int finite = train_epoch(m, &net, loss, embed_cases[k].lr, 64, 0);
        ct_real *train_e = outputs_of(&net, train_set, DIM), *test_e = outputs_of(&net, test_set, DIM);
        standardise(train_e, train_set->n, test_e, test_set->n, DIM);
        double acc = linear_probe(train_e, train_set->labels, train_set->n, test_e, test_set->labels, test_set->n,
                                  DIM, 10);
        free(train_e);
        free(test_e);
        ct_model_free(m);
        ct_loss_free(loss);
        if (used < sizeof summary)
            used += (size_t)snprintf(summary + used, sizeof summary - used, "%s%s %.2f", k ? ", " : "",
                                     embed_cases[k].spec, 100 * acc);
        CHECK(finite, "%s: a loss value was not finite", embed_cases[k].spec);
        CHECK(acc >= BAR, "%s (lr %g): linear-probe accuracy %.4f below %.2f", embed_cases[k].spec,
              embed_cases[k].lr, acc, BAR);
    }
    ct_test_note("probe accuracy: %s", summary);
}
