/* bench/w3_cifar.c — workload W3: the CIFAR-10 network of examples/cifar10_cnn.c (3 x [conv 3x3
 * pad 1, batch norm, ReLU, maxpool 2] with 32/64/128 channels, linear 2048->10; SGD momentum 0.9,
 * weight decay 5e-4, lr 0.01, batch 128) for one epoch over a CIFAR-10 binary file, fed by the
 * loader with random crop (padding 4) + horizontal flip + normalisation. Prints one line of
 * key=value figures, the shape bench/run.sh reads: training samples/s, the fraction of the
 * epoch the training loop spent waiting in ct_loader_next (wait_fraction), peak RSS, and the
 * test accuracy as a check that the run was real. bench/w3_cifar_torch.py is the same program in
 * PyTorch with torchvision's transforms and a DataLoader; bench/cifar.sh runs both.
 *
 * With a fifth argument "trainer" the same epoch runs through ct_fit instead of the hand-written
 * loop (the same net, initialisation and batches): the trainer's overhead is the difference.
 *
 * usage: w3_cifar TRAIN.bin TEST.bin [THREADS [PREFETCH [hand|trainer]]]   (defaults 2 threads,
 * prefetch 0, hand) */
#include <ctape.h>

#include "../examples/common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void add_stage(ct_model *model, ct_module *net, int index, int in, int out) {
    char name[32];
    snprintf(name, sizeof name, "conv%d", index);
    ct_sequential_add(net, ct_conv2d_new(model, name, in, out, 3, CT_CONV2D(.padding = 1, .bias = 0)));
    snprintf(name, sizeof name, "bn%d", index);
    ct_sequential_add(net, ct_batch_norm_new(model, name, out, CT_BATCH_NORM()));
    snprintf(name, sizeof name, "relu%d", index);
    ct_sequential_add(net, ct_relu_layer_new(model, name));
    snprintf(name, sizeof name, "pool%d", index);
    ct_sequential_add(net, ct_max_pool2d_new(model, name, 2, 0, 0));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TRAIN.bin TEST.bin [THREADS [PREFETCH]]\n", argv[0]);
        return 2;
    }
    ct_set_threads(argc > 3 ? atoi(argv[3]) : 2);
    int prefetch = argc > 4 ? atoi(argv[4]) : 0;
    ct_dataset *train = ct_cifar10_load(argv[1], NULL), *test = train ? ct_cifar10_load(argv[2], NULL) : NULL;
    if (!test) {
        fprintf(stderr, "w3_cifar: %s\n", ct_last_error());
        ct_dataset_free(train);
        return 1;
    }
    /* CIFAR-10's usual per-channel statistics of the full training set (the same numbers
     * bench/w3_cifar_torch.py uses). */
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};

    ct_model *model = ct_model_new();
    ct_model_set_seed(model, 1);
    ct_module *net = ct_sequential_new(model, "net");
    add_stage(model, net, 1, 3, 32);
    add_stage(model, net, 2, 32, 64);
    add_stage(model, net, 3, 64, 128);
    ct_sequential_add(net, ct_flatten_new(model, "flatten"));
    ct_sequential_add(net, ct_linear_new(model, "fc", 128 * 4 * 4, 10));
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4));
    ct_tape *tape = ct_tape_new();
    ct_loader_opts lo = CT_LOADER(.batch = 128, .shuffle = 1, .seed = 1, .crop_padding = 4, .hflip = 1,
                                  .normalize = 1, .prefetch = prefetch);
    memcpy(lo.mean, mean, sizeof mean);
    memcpy(lo.std, std, sizeof std);
    ct_loader *batches = ct_loader_new(train, lo);

    const int trainer = argc > 5 && !strcmp(argv[5], "trainer");
    ct_batch b;
    long seen = 0;
    double start = ct_time_now();
    if (trainer) {
        ct_fit_result r;
        if (ct_fit(model, net, opt, ct_loader_source(batches), NULL, CT_FIT(.epochs = 1, .progress = 0), &r) != CT_OK) {
            fprintf(stderr, "w3_cifar: %s\n", ct_last_error());
            return 1;
        }
        seen = train->n;
    } else {
        while (ct_loader_next(batches, &b)) {
            ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            ct_optim_step(opt);
            ct_tape_reset(tape);
            seen += b.n;
        }
    }
    double seconds = ct_time_now() - start;
    double waited = ct_loader_wait_seconds(batches);

    ct_loader_opts eo = CT_LOADER(.batch = 200, .shuffle = 0, .normalize = 1);
    memcpy(eo.mean, mean, sizeof mean);
    memcpy(eo.std, std, sizeof std);
    double acc = ex_accuracy(tape, model, ex_module_forward, net, test, eo);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("samples_per_s=%.0f seconds=%.3f wait_fraction=%.4f prefetch=%d peak_rss_mib=%.1f test_accuracy=%.4f "
           "threads=%d loop=%s\n",
           seen / seconds, seconds, waited / seconds, prefetch, ru.ru_maxrss / 1024.0, acc,
           ct_get_threads(), trainer ? "trainer" : "hand");

    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
