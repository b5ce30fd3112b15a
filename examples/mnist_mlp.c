/* examples/mnist_mlp.c — a 784-512-256-10 ReLU MLP on MNIST or Fashion-MNIST.
 *
 *   build/examples/mnist_mlp --data /usr/share/datasets/fashion-mnist --epochs 1
 *
 * SGD with momentum 0.9, lr 0.05, batch 128, inputs scaled to [0, 1]: the recipe PyTorch users
 * know, in the shape every ctape training loop has — forward on the tape, backward, step, reset. */
#include <ctape.h>

#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *data_dir, *train_split, *test_split;
    int epochs, batch, threads, cosine;
    double lr;
    uint64_t seed;
} options;

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [options]\n"
                "Trains a 784-512-256-10 ReLU MLP with SGD (momentum 0.9) on IDX files.\n"
                "  --data DIR      folder with the IDX files (default /usr/share/datasets/fashion-mnist)\n"
                "  --train NAME    training file prefix: train, train10k, ... (default train)\n"
                "  --test NAME     test file prefix (default t10k)\n"
                "  --epochs N      passes over the training set (default 1)\n"
                "  --batch N       mini-batch size (default 128)\n"
                "  --lr X          learning rate (default 0.05)\n"
                "  --cosine        anneal the learning rate to 0 over the run (cosine schedule)\n"
                "  --seed N        seed for initialisation and shuffling (default 42)\n"
                "  --threads N     threads for BLAS and OpenMP (default: $CTAPE_THREADS, else all cores)\n"
                "  --help          this text\n",
            prog);
}

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){"/usr/share/datasets/fashion-mnist", "train", "t10k", 1, 128, 0, 0, 0.05, 42};
    const opt_spec specs[] = {
        {"--data", OPT_STRING, &o->data_dir, 0},    {"--train", OPT_STRING, &o->train_split, 0},
        {"--test", OPT_STRING, &o->test_split, 0},  {"--epochs", OPT_INT, &o->epochs, 1},
        {"--batch", OPT_INT, &o->batch, 1},         {"--threads", OPT_INT, &o->threads, 0},
        {"--seed", OPT_U64, &o->seed, 0},           {"--lr", OPT_REAL, &o->lr, 0},
        {"--cosine", OPT_FLAG, &o->cosine, 1},
    };
    return opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage);
}

typedef struct {
    ct_module *fc1, *fc2, *fc3;
} mlp;

/* logits = fc3(relu(fc2(relu(fc1(x))))) */
static ct_tensor *mlp_forward(ct_tape *tape, const mlp *net, ct_tensor *x) {
    ct_tensor *h = ct_relu(tape, ct_forward(tape, net->fc1, x));
    h = ct_relu(tape, ct_forward(tape, net->fc2, h));
    return ct_forward(tape, net->fc3, h);
}

/* Fraction of the test set whose largest logit is the label; nothing is recorded. */
static double accuracy(ct_tape *tape, const mlp *net, const ct_dataset *test) {
    ct_loader *batches = ct_loader_new(test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    int was = ct_tape_grad_enabled(tape, 0);
    long correct = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        ct_tensor *logits = mlp_forward(tape, net, b.x);
        correct += ct_count_correct(logits, b.y);
        ct_tape_reset(tape);
    }
    ct_tape_grad_enabled(tape, was);
    ct_loader_free(batches);
    return (double)correct / test->n;
}

int main(int argc, char **argv) {
    options o;
    if (!parse_options(argc, argv, &o)) return 2;
    if (o.threads > 0) ct_set_threads(o.threads); /* else $CTAPE_THREADS, else all cores */

    ct_dataset *train = ct_idx_load(o.data_dir, o.train_split);
    ct_dataset *test = train ? ct_idx_load(o.data_dir, o.test_split) : NULL;
    if (!train || !test) {
        fprintf(stderr, "mnist_mlp: %s\n", ct_last_error());
        ct_dataset_free(train);
        return 1;
    }
    int inputs = train->channels * train->height * train->width;
    printf("data: %d training and %d test images of %dx%d from %s; %d threads\n", train->n, test->n,
           train->height, train->width, o.data_dir, ct_get_threads());

    ct_model *model = ct_model_new();
    ct_model_set_seed(model, o.seed);
    mlp net = {
        .fc1 = ct_linear_new(model, "fc1", inputs, 512),
        .fc2 = ct_linear_new(model, "fc2", 512, 256),
        .fc3 = ct_linear_new(model, "fc3", 256, 10),
    };
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = o.lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = o.batch, .shuffle = 1, .seed = o.seed, .flatten = 1));

    double acc = 0;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, o.epochs);
        ct_progress *progress = ct_progress_new(label, ct_loader_batches_per_epoch(batches));
        double start = ct_time_now(), loss_sum = 0;
        long seen = 0;
        int steps = 0;
        ct_batch b;
        while (ct_loader_next(batches, &b)) {
            if (o.cosine) { /* lr_t = lr · (1 + cos(π t / T)) / 2 over all T steps of the run */
                int total = o.epochs * ct_loader_batches_per_epoch(batches);
                int t = (epoch - 1) * ct_loader_batches_per_epoch(batches) + steps;
                ct_optim_set_lr(opt, 0.5 * o.lr * (1 + cos(3.141592653589793 * t / total)));
            }
            ct_tensor *loss = ct_cross_entropy(tape, mlp_forward(tape, &net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            if (ct_optim_step(opt) != CT_OK) { /* a NaN or Inf gradient: nothing applied */
                fprintf(stderr, "%s\n", ct_last_error());
                return 1;
            }
            loss_sum += loss->data[0];
            ct_tape_reset(tape);
            seen += b.n;
            steps++;
            ct_progress_update(progress, steps, "loss %.4f  %.0f samples/s", loss_sum / steps,
                               seen / (ct_time_now() - start));
        }
        double seconds = ct_time_now() - start;
        acc = accuracy(tape, &net, test);
        ct_progress_done(progress, "loss %.4f  %.0f samples/s  %.1fs  test accuracy %.2f%%",
                         loss_sum / steps, seen / seconds, seconds, 100 * acc);
    }
    printf("test accuracy: %.4f\n", acc);

    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
