/* bench/w1_mlp.c — workload W1: the 784-512-256-10 MLP (SGD momentum 0.9, lr 0.05, batch 128)
 * for one epoch of Fashion-MNIST. Prints one line of key=value figures for bench/run.sh:
 * training samples/s (the epoch's training loop only), peak RSS, and test accuracy as a check
 * that the run was real. With a third argument "trainer" the same epoch runs through ct_fit (the
 * same layers as a sequential, the same initialisation and batches) instead of the hand-written
 * loop: the trainer's overhead is the difference.
 *
 * usage: w1_mlp [DIR [THREADS [hand|trainer]]] */
#include <ctape.h>

#include "../examples/common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    ct_set_threads(argc > 2 ? atoi(argv[2]) : 2);
    ct_dataset *train = ct_idx_load(dir, "train"), *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!test) {
        fprintf(stderr, "w1_mlp: %s\n", ct_last_error());
        return 1;
    }
    ct_model *model = ct_model_new();
    ct_model_set_seed(model, 1);
    mlp net = {ct_linear_new(model, "fc1", 784, 512), ct_linear_new(model, "fc2", 512, 256),
               ct_linear_new(model, "fc3", 256, 10)};
    ct_optim *opt = ct_sgd_new(model, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_loader *batches = ct_loader_new(train, CT_LOADER(.batch = 128, .shuffle = 1, .seed = 1, .flatten = 1));

    const int trainer = argc > 3 && !strcmp(argv[3], "trainer");
    ct_batch b;
    long seen = 0;
    double start = ct_time_now();
    if (trainer) { /* the layers above as one sequential: fc1, relu, fc2, relu, fc3 */
        ct_module *seq = ct_sequential_new(model, "mlp");
        ct_sequential_add(seq, net.fc1), ct_sequential_add(seq, ct_relu_layer_new(model, "relu1"));
        ct_sequential_add(seq, net.fc2), ct_sequential_add(seq, ct_relu_layer_new(model, "relu2"));
        ct_sequential_add(seq, net.fc3);
        start = ct_time_now();
        ct_fit_result r;
        if (ct_fit(model, seq, opt, ct_loader_source(batches), NULL, CT_FIT(.epochs = 1, .progress = 0), &r) != CT_OK) {
            fprintf(stderr, "w1_mlp: %s\n", ct_last_error());
            return 1;
        }
        seen = train->n;
    } else {
        while (ct_loader_next(batches, &b)) {
            ct_tensor *loss = ct_cross_entropy(tape, mlp_forward(tape, &net, b.x), b.y, CT_CE());
            ct_backward(tape, loss);
            ct_optim_step(opt);
            ct_tape_reset(tape);
            seen += b.n;
        }
    }
    double seconds = ct_time_now() - start;

    double acc = ex_accuracy(tape, model, mlp_forward, &net, test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("samples_per_s=%.0f seconds=%.3f peak_rss_mib=%.1f test_accuracy=%.4f threads=%d loop=%s\n",
           seen / seconds, seconds, ru.ru_maxrss / 1024.0, acc, ct_get_threads(), trainer ? "trainer" : "hand");

    ct_loader_free(batches);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
