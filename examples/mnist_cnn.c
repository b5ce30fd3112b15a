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

#include "common.h"

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [options]\n"
                "Trains a LeNet-style CNN (conv 32, pool, conv 64, pool, fc 128, fc 10) with SGD (momentum 0.9)\n"
                "on IDX files.\n", prog);
    ex_idx_usage(to, 64);
}

typedef struct {
    ct_module *conv1, *pool1, *conv2, *pool2, *fc1, *fc2;
} cnn;

/* logits = fc2(relu(fc1(flatten(pool2(relu(conv2(pool1(relu(conv1(x)))))))))) */
static ct_tensor *cnn_forward(ct_tape *tape, const void *net, ct_tensor *x) {
    const cnn *c = net;
    ct_tensor *h = ct_forward(tape, c->pool1, ct_relu(tape, ct_forward(tape, c->conv1, x)));
    h = ct_forward(tape, c->pool2, ct_relu(tape, ct_forward(tape, c->conv2, h)));
    h = ct_reshape(tape, h, CT_SHAPE(h->shape[0], -1)); /* flatten: (B, 64, 5, 5) -> (B, 1600), no copy */
    h = ct_relu(tape, ct_forward(tape, c->fc1, h));
    return ct_forward(tape, c->fc2, h);
}

int main(int argc, char **argv) {
    ex_idx_options o = EX_IDX_OPTIONS(.batch = 64);
    if (!ex_idx_parse(argc, argv, &o, NULL, 0, usage)) return 2;
    ct_dataset *train, *test;
    if (!ex_idx_load("mnist_cnn", &o, &train, &test)) return 1;
    if (train->channels != 1 || train->height != 28 || train->width != 28) {
        fprintf(stderr, "mnist_cnn: needs 1x28x28 images, %s has %dx%dx%d\n", o.data_dir, train->channels,
                train->height, train->width);
        ct_dataset_free(test);
        ct_dataset_free(train);
        return 1;
    }

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
    const int steps_per_epoch = ct_loader_batches_per_epoch(batches);
    ct_schedule schedule = o.cosine ? ct_schedule_cosine(o.lr, (long)o.epochs * steps_per_epoch, 0)
                                    : ct_schedule_constant(o.lr);

    double acc = 0;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        ex_epoch e = ex_epoch_begin(epoch, o.epochs, steps_per_epoch);
        ct_batch b;
        while (ct_loader_next(batches, &b)) {
            ct_optim_schedule(opt, &schedule); /* the lr of this step */
            ct_tensor *loss = ct_cross_entropy(tape, cnn_forward(tape, &net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            if (ct_optim_step(opt) != CT_OK) { /* a NaN or Inf gradient: nothing applied */
                fprintf(stderr, "%s\n", ct_last_error());
                return 1;
            }
            ex_epoch_step(&e, loss, &b, NULL);
            ct_tape_reset(tape);
        }
        double seconds = ex_epoch_seconds(&e);
        acc = ex_accuracy(tape, model, cnn_forward, &net, test, CT_LOADER(.batch = 250, .shuffle = 0));
        ex_epoch_end(&e, seconds, acc, NULL);
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
