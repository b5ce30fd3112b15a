/* bench/w2_cnn.c — workload W2: the LeNet-style CNN of examples/mnist_cnn.c (conv 1->32 3x3, ReLU,
 * maxpool 2, conv 32->64 3x3, ReLU, maxpool 2, linear 1600->128, ReLU, linear 128->10; SGD
 * momentum 0.9, lr 0.05, batch 64) for one epoch of MNIST train10k. Prints one line of key=value
 * figures, the shape bench/run.sh reads: training samples/s (the epoch's training loop only),
 * peak RSS, and test accuracy as a check that the run was real. bench/cnn_torch.py is the same
 * program in PyTorch; bench/cnn.sh runs both.
 *
 * usage: w2_cnn [DATA_DIR [THREADS [TRAIN_SPLIT]]]   (default ../shared/data/mnist 2 train10k) */
#include <ctape.h>

#include "../examples/common.h"

#include <stdlib.h>
#include <sys/resource.h>

typedef struct {
    ct_module *conv1, *conv2, *fc1, *fc2;
} cnn;

static ct_tensor *forward(ct_tape *tape, const void *arg, ct_tensor *x) {
    const cnn *net = arg;
    ct_pool2d_opts pool = CT_POOL2D(.kernel_h = 2, .kernel_w = 2);
    ct_tensor *h = ct_max_pool2d(tape, ct_relu(tape, ct_forward(tape, net->conv1, x)), pool);
    h = ct_max_pool2d(tape, ct_relu(tape, ct_forward(tape, net->conv2, h)), pool);
    h = ct_reshape(tape, h, CT_SHAPE(h->shape[0], -1));
    return ct_forward(tape, net->fc2, ct_relu(tape, ct_forward(tape, net->fc1, h)));
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "../shared/data/mnist";
    ct_set_threads(argc > 2 ? atoi(argv[2]) : 2);
    const char *split = argc > 3 ? argv[3] : "train10k";
    ct_dataset *train = ct_idx_load(dir, split), *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!test) {
        fprintf(stderr, "w2_cnn: %s\n", ct_last_error());
        return 1;
    }
    ct_model *model = ct_model_new();
    ct_model_set_seed(model, 1);
    cnn net = {ct_conv2d_new(model, "conv1", 1, 32, 3, CT_CONV2D()), ct_conv2d_new(model, "conv2", 32, 64, 3, CT_CONV2D()),
               ct_linear_new(model, "fc1", 1600, 128), ct_linear_new(model, "fc2", 128, 10)};
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = 64, .shuffle = 1, .seed = 1));

    ct_batch b;
    long seen = 0;
    double start = ct_time_now();
    while (ct_loader_next(batches, &b)) {
        ct_tensor *loss = ct_cross_entropy(tape, forward(tape, &net, b.x), b.y, CT_CE());
        ct_backward(tape, loss);
        ct_optim_step(opt);
        ct_tape_reset(tape);
        seen += b.n;
    }
    double seconds = ct_time_now() - start;

    double acc = ex_accuracy(tape, model, forward, &net, test, CT_LOADER(.batch = 250, .shuffle = 0));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("samples_per_s=%.0f seconds=%.3f peak_rss_mib=%.1f test_accuracy=%.4f threads=%d\n",
           seen / seconds, seconds, ru.ru_maxrss / 1024.0, acc, ct_get_threads());

    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
