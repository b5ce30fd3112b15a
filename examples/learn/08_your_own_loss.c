/* examples/learn/08_your_own_loss.c — lesson 8: a loss of your own, from tape ops, registered by name and
 * raced against cross-entropy on MNIST.
 *
 *     build/examples/learn/08_your_own_loss [MNIST_DIR]      (default ../shared/data/mnist)
 *
 * The loss: the Brier score (Brier 1950, "Verification of forecasts expressed in terms of
 * probability"), used as a training loss. With p = softmax(z) and y one-hot,
 *
 *     ℓ = Σ_c (p_c − y_c)²          (per sample; mean over the batch; times a scale s, default 1)
 *
 * It is a proper scoring rule like cross-entropy (−log p_y): both are minimised in expectation by the
 * true class probabilities. They differ in how hard they push. Through the softmax
 * (∂p_c/∂z_k = p_c·([c = k] − p_k), lesson 4) the gradient of ℓ is
 *
 *     ∂ℓ/∂z_k = Σ_c 2(p_c − y_c)·p_c·([c = k] − p_k) = 2·p_k·((p_k − y_k) − Σ_c p_c·(p_c − y_c))
 *
 * against cross-entropy's p_k − y_k. On a sample the model gets confidently wrong (p_y → 0) the
 * cross-entropy gradient of the true logit stays near −1, while Brier's carries the factor p_y and
 * vanishes: Brier is bounded (ℓ ≤ 2) and gives up on such samples, which makes it robust to wrong
 * labels and slow to fix real mistakes. The program prints both gradients on such a sample.
 *
 * The steps, one section each:
 *   1. the loss from tape ops (seven lines, no backward code), checked on a small example against the
 *      value and the gradient formula above, and on the confidently wrong sample;
 *   2. its gradient checked with ct_gradcheck (central differences);
 *   3. registered by name with ct_loss_register: "brier" and "brier:scale=2" now parse like
 *      "focal:gamma=2", and a value outside the declared range is refused with a message;
 *   4. a race with ct_fit: the same MLP (784-128-10), optimizer (SGD, momentum 0.9, lr 0.05), batches
 *      and epoch of 10,000 MNIST images, with each loss, three seeds each; test accuracy, NLL and ECE
 *      on the 10,000 test images (losses/metrics.h), mean ± standard deviation over the seeds.
 * Without the MNIST files (make data, or ../shared/data/mnist) step 4 is skipped with a message.
 * examples/custom_loss.c does the same for a margin loss and trains with a hand-written loop; the
 * fused losses of the zoo keep a composed twin like this one (ct_<loss>_reference, losses/losses.h). */
#include <ctape.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. the loss, from tape ops -------------------------------------------------------------
 * logits z (N, C), labels y (N), params[0] = the scale s. */
static ct_tensor *brier_loss(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    CT_CHECK(z->ndim == 2 && y.n == z->shape[0], "brier", "%d-dimensional logits and %d labels: want (N, C) and N", z->ndim, y.n);
    ct_tensor *p = ct_softmax(tape, z, 1);                                   /* (N, C) */
    ct_tensor *d = ct_sub(tape, p, ct_one_hot(tape, y.data, y.n, z->shape[1])); /* p − y */
    ct_tensor *per_sample = ct_sum(tape, ct_mul(tape, d, d), 1, 0);            /* (N): Σ_c (p_c − y_c)² */
    return ct_mul_scalar(tape, ct_mean_all(tape, per_sample), params[0]);
}

/* The gradient formula above, in double, for one sample: g_k = 2·p_k·((p_k − y_k) − Σ_c p_c·(p_c − y_c)). */
static void brier_gradient_by_hand(const double *z, int label, int C, double *g) {
    double m = z[0], s = 0, p[16], dot = 0;
    for (int c = 1; c < C; c++) m = fmax(m, z[c]);
    for (int c = 0; c < C; c++) s += exp(z[c] - m);
    for (int c = 0; c < C; c++) p[c] = exp(z[c] - m) / s;
    for (int c = 0; c < C; c++) dot += p[c] * (p[c] - (c == label));
    for (int k = 0; k < C; k++) g[k] = 2 * p[k] * ((p[k] - (k == label)) - dot);
}

/* One sample through a loss on the tape: the loss and its gradient with respect to the logits. */
static double one_sample(const double *z3, int label, int brier, ct_real grad[3]) {
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(1, 3));
    for (int c = 0; c < 3; c++) z->data[c] = (ct_real)z3[c];
    ct_tape *tape = ct_tape_new();
    const double scale = 1;
    ct_tensor *l = brier ? brier_loss(tape, z, CT_LABELS(&label, 1), &scale)
                         : ct_cross_entropy(tape, z, CT_LABELS(&label, 1), CT_CE());
    ct_backward(tape, l);
    const double value = l->data[0];
    memcpy(grad, z->grad, 3 * sizeof(ct_real));
    ct_tape_free(tape);
    ct_tensor_free(z);
    return value;
}

/* ---- 2. the gradient check --------------------------------------------------------------------- */
static ct_tensor *check_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    static const double scale[1] = {1};
    return brier_loss(tape, in[0], *(const ct_labels *)ctx, scale);
}

/* ---- 3. the registry entry: name, formula, input, parameters with default and range ------------- */
static const ct_loss_def brier_def = {
    .name = "brier",
    .formula = "s·Σ_c (softmax(z)_c − [c = y])² (Brier 1950)",
    .input = "logits (N, C)",
    .params = {{"scale", "1", "(0, inf)", "s: multiplies the loss (Brier's gradients are smaller than CE's)"}},
    .fn = brier_loss,
};

/* ---- 4. the race --------------------------------------------------------------------------------- */
enum { SEEDS = 3, LOSSES = 2 };
static const char *const race_losses[LOSSES] = {"cross_entropy", "brier"};

/* Trains a fresh 784-128-10 MLP with `loss` for one epoch; the test metrics in *out. */
static int race_one(const ct_dataset *train, const ct_dataset *test, const char *loss, uint64_t seed, ct_metrics_result *out) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, seed);
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "fc1", 784, 128));
    ct_sequential_add(net, ct_relu_layer_new(m, "relu"));
    ct_sequential_add(net, ct_linear_new(m, "fc2", 128, 10));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_loader *lt = ct_loader_new(train, CT_LOADER(.batch = 64, .seed = seed, .flatten = 1)),
              *lv = ct_loader_new(test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    const ct_batch_source val = ct_loader_source(lv);
    ct_fit_result r;
    const int status = ct_fit(m, net, opt, ct_loader_source(lt), &val, CT_FIT(.epochs = 1, .loss = loss, .progress = 0), &r);
    if (status == CT_OK) *out = r.last.val;
    ct_loader_free(lt), ct_loader_free(lv);
    ct_optim_free(opt);
    ct_model_free(m);
    return status;
}

static void mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0; /* the sample standard deviation */
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "../shared/data/mnist";
    if (!getenv("CTAPE_THREADS")) ct_set_threads(1); /* this MLP is too small to gain from more threads */
    int wrong = 0;

    /* 1. a small example: z = (2, 1, 0.1), label 0 */
    const double z[3] = {2, 1, 0.1};
    ct_real tape_grad[3];
    double by_hand[3];
    const double value = one_sample(z, 0, 1, tape_grad);
    brier_gradient_by_hand(z, 0, 3, by_hand);
    printf("1. z = (2, 1, 0.1), label 0: p = softmax(z) = (0.6590, 0.2424, 0.0986)\n"
           "   Brier = (0.6590 − 1)² + 0.2424² + 0.0986² = %.4f\n", value);
    printf("   tape ∂ℓ/∂z    = (%.4f, %.4f, %.4f)\n", (double)tape_grad[0], (double)tape_grad[1], (double)tape_grad[2]);
    printf("   formula ∂ℓ/∂z = (%.4f, %.4f, %.4f)\n", by_hand[0], by_hand[1], by_hand[2]);
    for (int k = 0; k < 3; k++) wrong += fabs(tape_grad[k] - by_hand[k]) > 1e-5;
    wrong += fabs(value - 0.18477) > 1e-4;

    /* the confidently wrong sample: z = (0, 8, 0), label 0 */
    const double zw[3] = {0, 8, 0};
    ct_real ce_grad[3], brier_grad[3];
    const double ce = one_sample(zw, 0, 0, ce_grad), brier = one_sample(zw, 0, 1, brier_grad);
    printf("\n   z = (0, 8, 0), label 0 (confidently wrong: p_0 = %.2e):\n", exp(0.0) / (2 + exp(8.0)));
    printf("   cross-entropy %7.4f, ∂/∂z_0 = %.4f\n   Brier         %7.4f, ∂/∂z_0 = %.5f  (%.0f times weaker)\n", ce,
           (double)ce_grad[0], brier, (double)brier_grad[0], (double)ce_grad[0] / brier_grad[0]);
    wrong += !(fabs(ce_grad[0]) > 100 * fabs(brier_grad[0]));

    /* 2. the gradient check on 6 samples of 10 classes */
    ct_tensor *zc = ct_tensor_new_grad(CT_SHAPE(6, 10));
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor_fill_normal(zc, &rng, 0, 2);
    static const int labels[6] = {0, 3, 9, 3, 5, 1};
    ct_labels y = CT_LABELS(labels, 6);
    const ct_gradcheck_result check = ct_gradcheck(check_fn, &y, &zc, 1, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&check, line, sizeof line);
    printf("\n2. ct_gradcheck of brier (%s, logits (6, 10)): %s\n", CT_REAL_NAME, line);
    wrong += !check.passed;
    ct_tensor_free(zc);

    /* 3. registered by name */
    if (ct_loss_register(&brier_def) != CT_OK) {
        fprintf(stderr, "08_your_own_loss: %s\n", ct_last_error());
        return 1;
    }
    ct_loss *parsed = ct_loss_parse("brier:scale=2");
    char described[256];
    if (parsed) ct_loss_describe(parsed, described, sizeof described);
    printf("\n3. ct_loss_register(&brier_def): ct_loss_parse(\"brier:scale=2\") -> %s\n", parsed ? described : ct_last_error());
    wrong += !parsed;
    ct_loss_free(parsed);
    ct_loss *refused = ct_loss_parse("brier:scale=-1");
    printf("   ct_loss_parse(\"brier:scale=-1\") -> %s\n", refused ? "accepted (WRONG)" : ct_last_error());
    wrong += refused != NULL;
    ct_loss_free(refused);

    /* 4. the race */
    ct_dataset *train = ct_idx_load(dir, "train10k"), *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!test) {
        printf("\n4. skipped: the race needs MNIST (train10k and t10k) in %s: %s\n", dir, ct_last_error());
        ct_dataset_free(train);
        printf("\n%s\n", wrong ? "MISMATCH" : "The loss, its gradient and its registration check out (race skipped).");
        return wrong != 0;
    }
    printf("\n4. One epoch of %d MNIST images, MLP 784-128-10, SGD lr 0.05 momentum 0.9, batch 64; %d test images;\n"
           "   %d seeds (weights and batch order) per loss, mean ± std:\n\n",
           train->n, test->n, SEEDS);
    printf("   %-14s %-17s %-17s %s\n", "loss", "accuracy", "NLL", "ECE (15 bins)");
    double start = ct_time_now(), m[LOSSES][3], s[LOSSES][3];
    for (int l = 0; l < LOSSES; l++) {
        double acc[SEEDS], nll[SEEDS], ece[SEEDS];
        for (int seed = 0; seed < SEEDS; seed++) {
            ct_metrics_result r;
            if (race_one(train, test, race_losses[l], (uint64_t)seed + 1, &r) != CT_OK) {
                fprintf(stderr, "08_your_own_loss: %s\n", ct_last_error());
                ct_dataset_free(test), ct_dataset_free(train);
                return 1;
            }
            acc[seed] = r.accuracy, nll[seed] = r.nll, ece[seed] = r.ece;
        }
        mean_std(acc, SEEDS, &m[l][0], &s[l][0]), mean_std(nll, SEEDS, &m[l][1], &s[l][1]);
        mean_std(ece, SEEDS, &m[l][2], &s[l][2]);
        printf("   %-14s %.4f ± %.4f   %.4f ± %.4f   %.4f ± %.4f\n", race_losses[l], m[l][0], s[l][0], m[l][1], s[l][1],
               m[l][2], s[l][2]);
        wrong += !(m[l][0] > 0.8);
    }
    printf("\n   (%.1f s for %d runs)\n\n", ct_time_now() - start, SEEDS * LOSSES);
    /* What the table says, read from the numbers (a difference counts when it exceeds twice the larger
     * standard deviation: a rough rule with three seeds; more seeds narrow it). */
    static const char *const metric[3] = {"accuracy", "NLL", "ECE"};
    for (int k = 0; k < 3; k++) {
        const int better = k == 0 ? m[1][k] > m[0][k] : m[1][k] < m[0][k]; /* 1: brier better */
        const double gap = fabs(m[1][k] - m[0][k]), noise = 2 * fmax(s[0][k], s[1][k]);
        printf("   %-8s %s is better by %.4f: %s\n", metric[k], race_losses[better], gap,
               gap > noise ? "more than the seeds' noise" : "within the seeds' noise");
    }
    ct_dataset_free(test), ct_dataset_free(train);
    printf("\n%s\n", wrong ? "MISMATCH" : "The loss, its gradient and its registration check out, and it has raced cross-entropy.");
    return wrong != 0;
}
