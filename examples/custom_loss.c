/* examples/custom_loss.c — a tutorial: your own loss in a few lines of tape ops, gradient-checked,
 * registered by name next to the zoo, and raced against it on MNIST.
 *
 *   build/examples/custom_loss                          # soft-margin softmax, 1 epoch of train10k
 *   build/examples/custom_loss --loss focal:gamma=2     # the same run with a zoo loss
 *   build/examples/custom_loss --loss soft_margin:m=2 --epochs 2
 *
 * The loss: soft-margin softmax (Liang, Wang, Lei, Liao, Li, "Soft-Margin Softmax for Deep
 * Classification", ICONIP 2017). Cross-entropy after subtracting a margin m from the true logit,
 *   ℓ_i = −log( e^(z_iy − m) / (e^(z_iy − m) + Σ_{k≠y} e^(z_ik)) ),
 * so a sample stops contributing only once its true logit leads the others by about m rather than
 * by 0: a margin that CE lacks. m = 0 is plain CE. (The paper tunes m per dataset; m = 1 here is
 * our choice, not the paper's.)
 *
 * The steps, each one a section below:
 *   1. write the loss from primitive tape ops: no backward code, the tape differentiates it;
 *   2. check its gradient with the public ct_gradcheck (central differences);
 *   3. register it, so ct_loss_parse("soft_margin:m=0.5") finds it like "focal:gamma=2";
 *   4. train the same MLP with it, or with any zoo loss picked by name, and print test accuracy. */
#include <ctape.h>

#include "common.h"

/* ---- 1. the loss, from primitives (8 lines) -------------------------------------------------
 * logits z (N, C), labels y, params[0] = m. ct_one_hot fails with the index on a bad label. */
static ct_tensor *soft_margin_loss(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    CT_CHECK(z->ndim == 2 && y.n == z->shape[0], "soft_margin", "want logits (N, C) and N labels");
    ct_tensor *margin = ct_mul_scalar(tape, ct_one_hot(tape, y.data, y.n, z->shape[1]), params[0]);
    ct_tensor *logp = ct_log_softmax(tape, ct_sub(tape, z, margin), 1);  /* log softmax(z − m·onehot) */
    ct_tensor *logp_y = ct_gather_rows(tape, logp, y.data, y.n);          /* (N): the true class */
    return ct_neg(tape, ct_mean_all(tape, logp_y));                        /* mean over the batch */
}

/* ---- 2. its gradient, checked ----------------------------------------------------------------
 * ct_gradcheck re-runs the function with each input element nudged by ±h and compares the
 * central difference with what backward gave, contracted with a random cotangent. In this
 * float32 build the differences carry ~1e-7/h of rounding, so CT_GRADCHECK()'s float32 defaults
 * are loose (h = 1e-2, rtol 5e-2, atol 5e-3); a `make PRECISION=64` build checks to ~1e-7. */
typedef struct {
    ct_labels labels;
    double m;
} check_ctx;

static ct_tensor *check_fn(ct_tape *tape, ct_tensor *const *inputs, void *ctx) {
    const check_ctx *c = ctx;
    return soft_margin_loss(tape, inputs[0], c->labels, &c->m);
}

static int check_gradient(void) {
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(6, 10));
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor_fill_normal(z, &rng, 0, 3);
    int labels[6] = {0, 3, 9, 3, 5, 1};
    check_ctx ctx = {CT_LABELS(labels, 6), 1.0};
    ct_gradcheck_result r = ct_gradcheck(check_fn, &ctx, &z, 1, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    printf("gradient check of soft_margin (%s, %zu elements): %s\n", CT_REAL_NAME, r.checked, line);
    ct_tensor_free(z);
    return r.passed;
}

/* ---- 3. registered by name -------------------------------------------------------------------
 * Parameters are declared like the zoo's: key, default, range, help. ct_loss_parse then checks
 * "soft_margin:m=-1" against the range and rejects unknown keys, as for every built-in loss. */
static const ct_loss_def soft_margin_def = {
    .name = "soft_margin",
    .formula = "−log(e^(z_y−m) / (e^(z_y−m) + Σ_{k≠y} e^(z_k))) (Liang et al. 2017)",
    .input = "logits (N, C)",
    .params = {{"m", "1", "[0, inf)", "margin subtracted from the true logit (0: CE)"}},
    .fn = soft_margin_loss,
};

/* ---- 4. training: the MLP, a loss chosen by name, test accuracy ----------------------------- */
typedef struct {
    ct_module *fc1, *fc2;
} mlp;

static ct_tensor *mlp_forward(ct_tape *tape, const void *net, ct_tensor *x) {
    const mlp *m = net;
    return ct_forward(tape, m->fc2, ct_relu(tape, ct_forward(tape, m->fc1, x)));
}

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [options]\n"
                "Gradient-checks and registers the soft-margin softmax loss, then trains a 784-256-10 MLP\n"
                "(SGD momentum 0.9, batch 32, cosine schedule) with a loss chosen by name.\n"
                "  --loss SPEC     soft_margin[:m=X] or any zoo loss on logits, e.g. focal:gamma=2\n"
                "                  (default soft_margin; --list prints them all)\n"
                "  --data DIR      IDX folder (default ../shared/data/mnist)\n"
                "  --train NAME    training file prefix (default train10k)\n"
                "  --epochs N      (default 1)    --lr X (default 0.05)    --seed N (default 1)\n"
                "  --threads N     (default 2)    --list   --help\n",
            prog);
}

int main(int argc, char **argv) {
    const char *spec = "soft_margin", *dir = "../shared/data/mnist", *split = "train10k";
    int epochs = 1, threads = 2, list = 0;
    double lr = 0.05;
    uint64_t seed = 1;
    const opt_spec specs[] = {
        {"--loss", OPT_STRING, &spec, 0, NULL},   {"--data", OPT_STRING, &dir, 0, NULL},
        {"--train", OPT_STRING, &split, 0, NULL}, {"--epochs", OPT_INT, &epochs, 1, NULL},
        {"--lr", OPT_REAL, &lr, 0, NULL},         {"--seed", OPT_U64, &seed, 0, NULL},
        {"--threads", OPT_INT, &threads, 0, NULL}, {"--list", OPT_FLAG, &list, 1, NULL},
    };
    if (!opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage)) return 2;
    ct_set_threads(threads);

    if (!check_gradient()) return 1;                      /* step 2 */
    if (ct_loss_register(&soft_margin_def) != CT_OK) {    /* step 3 */
        fprintf(stderr, "custom_loss: %s\n", ct_last_error());
        return 1;
    }
    if (list) { ct_loss_list(stdout); return 0; }
    ct_loss *loss = ct_loss_parse(spec);                  /* ours or the zoo's, the same way */
    if (!loss) { fprintf(stderr, "custom_loss: %s\n", ct_last_error()); return 2; }
    char described[512];
    ct_loss_describe(loss, described, sizeof described);

    ct_dataset *train = ct_idx_load(dir, split), *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!test) {
        fprintf(stderr, "custom_loss: %s\n", ct_last_error());
        ct_dataset_free(train), ct_loss_free(loss);
        return 1;
    }
    ct_model *model = ct_model_new();
    ct_model_set_seed(model, seed);
    mlp net = {ct_linear_new(model, "fc1", 784, 256), ct_linear_new(model, "fc2", 256, 10)};
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = 32, .shuffle = 1, .seed = seed, .flatten = 1));
    printf("training with %s: %d images of %s, %d epoch(s), lr %g\n", described, train->n, dir, epochs, lr);

    const int steps_per_epoch = ct_loader_batches_per_epoch(batches);
    /* cosine schedule: lr_t = lr·(1 + cos(πt/T))/2 over all T steps, so the last steps are small */
    const ct_schedule schedule = ct_schedule_cosine(lr, (long)epochs * steps_per_epoch, 0);
    double start = ct_time_now();
    for (int epoch = 0; epoch < epochs; epoch++) {
        double loss_sum = 0;
        ct_batch b;
        while (ct_loader_next(batches, &b)) {
            ct_optim_schedule(opt, &schedule);
            ct_tensor *l = ct_loss_apply(tape, loss, mlp_forward(tape, &net, b.x), b.y);
            ct_backward(tape, l);
            if (ct_optim_step(opt) != CT_OK) { /* a NaN or Inf gradient: nothing applied */
                fprintf(stderr, "%s\n", ct_last_error());
                return 1;
            }
            loss_sum += l->data[0];
            ct_tape_reset(tape);
        }
        printf("epoch %d: mean loss %.4f\n", epoch + 1, loss_sum / steps_per_epoch);
    }
    double acc = ex_accuracy(tape, model, mlp_forward, &net, test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    printf("%.1fs; test accuracy: %.4f\n", ct_time_now() - start, acc);

    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_loss_free(loss);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
