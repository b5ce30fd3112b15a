/* examples/mnist_mlp.c — a 784-512-256-10 ReLU MLP on MNIST or Fashion-MNIST.
 *
 *   build/examples/mnist_mlp --data /usr/share/datasets/fashion-mnist --epochs 1
 *   build/examples/mnist_mlp --show-tape      (prints the first step's tape, then trains on)
 *
 * SGD with momentum 0.9, lr 0.05, batch 128, inputs scaled to [0, 1]: the recipe PyTorch users
 * know, in the shape every ctape training loop has — forward on the tape, backward, step, reset. */
#include <ctape.h>

#include "common.h"

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [options]\n"
                "Trains a 784-512-256-10 ReLU MLP with SGD (momentum 0.9) on IDX files.\n", prog);
    ex_idx_usage(to, 128);
    fprintf(to, "  --show-tape     print the first training step's tape (every node: op, inputs, shape, math)\n"
                "                  after its backward, then train on\n");
}

typedef struct {
    ct_module *fc1, *fc2, *fc3;
} mlp;

/* logits = fc3(relu(fc2(relu(fc1(x))))) */
static ct_tensor *mlp_forward(ct_tape *tape, const void *net, ct_tensor *x) {
    const mlp *m = net;
    ct_tensor *h = ct_relu(tape, ct_forward(tape, m->fc1, x));
    h = ct_relu(tape, ct_forward(tape, m->fc2, h));
    return ct_forward(tape, m->fc3, h);
}

int main(int argc, char **argv) {
    ex_idx_options o = EX_IDX_OPTIONS();
    int show_tape = 0;
    const opt_spec extra[] = {{"--show-tape", OPT_FLAG, &show_tape, 1, NULL}};
    if (!ex_idx_parse(argc, argv, &o, extra, 1, usage)) return 2;
    ct_dataset *train, *test;
    if (!ex_idx_load("mnist_mlp", &o, &train, &test)) return 1;

    ct_model *model = ct_model_new();
    ct_model_set_seed(model, o.seed);
    mlp net = {
        .fc1 = ct_linear_new(model, "fc1", train->channels * train->height * train->width, 512),
        .fc2 = ct_linear_new(model, "fc2", 512, 256),
        .fc3 = ct_linear_new(model, "fc3", 256, 10),
    };
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = o.lr, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = o.batch, .shuffle = 1, .seed = o.seed, .flatten = 1));
    const int steps_per_epoch = ct_loader_batches_per_epoch(batches);
    ct_schedule schedule = o.cosine ? ct_schedule_cosine(o.lr, (long)o.epochs * steps_per_epoch, 0)
                                    : ct_schedule_constant(o.lr);

    double acc = 0;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        ex_epoch e = ex_epoch_begin(epoch, o.epochs, steps_per_epoch);
        ct_batch b;
        while (ct_loader_next(batches, &b)) {
            ct_optim_schedule(opt, &schedule); /* the lr of this step */
            ct_tensor *loss = ct_cross_entropy(tape, mlp_forward(tape, &net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            if (show_tape) { /* every node of one step, with the gradients in place */
                ct_tape_print(tape, stdout);
                show_tape = 0;
            }
            if (ct_optim_step(opt) != CT_OK) { /* a NaN or Inf gradient: nothing applied */
                fprintf(stderr, "%s\n", ct_last_error());
                return 1;
            }
            ex_epoch_step(&e, loss, &b, NULL);
            ct_tape_reset(tape);
        }
        double seconds = ex_epoch_seconds(&e);
        acc = ex_accuracy(tape, model, mlp_forward, &net, test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
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
