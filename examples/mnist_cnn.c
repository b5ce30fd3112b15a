/* examples/mnist_cnn.c — a LeNet-style convolutional network on MNIST or Fashion-MNIST.
 *
 *   build/examples/mnist_cnn --data ../shared/data/mnist --train train10k --epochs 3
 *
 *   x (B, 1, 28, 28) -> conv 1->32 3x3 -> ReLU -> maxpool 2   (B, 32, 13, 13)
 *                    -> conv 32->64 3x3 -> ReLU -> maxpool 2  (B, 64, 5, 5)
 *                    -> flatten (B, 1600) -> linear 128 -> ReLU -> linear 10
 *
 * SGD with momentum 0.9, lr 0.05, batch 64, inputs scaled to [0, 1], PyTorch's default init:
 * the same training loop as examples/mnist_mlp.c — forward on the tape, backward, step, reset —
 * with images kept as (B, 1, 28, 28) instead of flattened rows. */
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
                "Trains a LeNet-style CNN (conv 32, pool, conv 64, pool, fc 128, fc 10) with SGD (momentum 0.9)\n"
                "on IDX files.\n"
                "  --data DIR      folder with the IDX files (default /usr/share/datasets/fashion-mnist)\n"
                "  --train NAME    training file prefix: train, train10k, ... (default train)\n"
                "  --test NAME     test file prefix (default t10k)\n"
                "  --epochs N      passes over the training set (default 1)\n"
                "  --batch N       mini-batch size (default 64)\n"
                "  --lr X          learning rate (default 0.05)\n"
                "  --cosine        anneal the learning rate to 0 over the run (cosine schedule)\n"
                "  --seed N        seed for initialisation and shuffling (default 42)\n"
                "  --threads N     threads for BLAS and OpenMP (default: $CTAPE_THREADS, else all cores)\n"
                "  --help          this text\n",
            prog);
}

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){"/usr/share/datasets/fashion-mnist", "train", "t10k", 1, 64, 0, 0, 0.05, 42};
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
    ct_module *conv1, *pool1, *conv2, *pool2, *fc1, *fc2;
} cnn;

/* logits = fc2(relu(fc1(flatten(pool2(relu(conv2(pool1(relu(conv1(x)))))))))) */
static ct_tensor *cnn_forward(ct_tape *tape, const cnn *net, ct_tensor *x) {
    ct_tensor *h = ct_forward(tape, net->pool1, ct_relu(tape, ct_forward(tape, net->conv1, x)));
    h = ct_forward(tape, net->pool2, ct_relu(tape, ct_forward(tape, net->conv2, h)));
    h = ct_reshape(tape, h, CT_SHAPE(h->shape[0], -1)); /* flatten: (B, 64, 5, 5) -> (B, 1600), no copy */
    h = ct_relu(tape, ct_forward(tape, net->fc1, h));
    return ct_forward(tape, net->fc2, h);
}

/* Fraction of the test set whose largest logit is the label; nothing is recorded. */
static double accuracy(ct_tape *tape, const cnn *net, const ct_dataset *test) {
    ct_loader *batches = ct_loader_new(test, CT_LOADER(.batch = 250, .shuffle = 0));
    int was = ct_tape_grad_enabled(tape, 0);
    long correct = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        ct_tensor *logits = cnn_forward(tape, net, b.x);
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
        fprintf(stderr, "mnist_cnn: %s\n", ct_last_error());
        ct_dataset_free(train);
        return 1;
    }
    if (train->channels != 1 || train->height != 28 || train->width != 28) {
        fprintf(stderr, "mnist_cnn: needs 1x28x28 images, %s has %dx%dx%d\n", o.data_dir, train->channels,
                train->height, train->width);
        ct_dataset_free(test);
        ct_dataset_free(train);
        return 1;
    }
    printf("data: %d training and %d test images of %dx%d from %s; %d threads\n", train->n, test->n,
           train->height, train->width, o.data_dir, ct_get_threads());

    ct_model *model = ct_model_new();
    ct_model_set_seed(model, o.seed);
    cnn net = {
        .conv1 = ct_conv2d_new(model, "conv1", 1, 32, 3, CT_CONV2D()),     /* 28 -> 26 */
        .pool1 = ct_max_pool2d_new(model, "pool1", 2, 0, 0),               /* 26 -> 13 */
        .conv2 = ct_conv2d_new(model, "conv2", 32, 64, 3, CT_CONV2D()),    /* 13 -> 11 */
        .pool2 = ct_max_pool2d_new(model, "pool2", 2, 0, 0),               /* 11 -> 5 */
        .fc1 = ct_linear_new(model, "fc1", 64 * 5 * 5, 128),
        .fc2 = ct_linear_new(model, "fc2", 128, 10),
    };
    printf("model: %zu parameters\n", ct_model_num_elements(model));
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = o.lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = o.batch, .shuffle = 1, .seed = o.seed));

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
            ct_tensor *loss = ct_cross_entropy(tape, cnn_forward(tape, &net, b.x), b.y, CT_CE());
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
        ct_model_train(model, 0);
        acc = accuracy(tape, &net, test);
        ct_model_train(model, 1);
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
