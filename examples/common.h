/* examples/common.h — what the example programs share, small enough to read in one go: the option
 * parser (options.h), the flags of the MNIST-family trainers and their data loading, test
 * accuracy over a loader, and one epoch's progress line. The training loop itself stays in each
 * example, where a reader looks for it. (bench/w1_mlp.c, w2_cnn.c and w3_cifar.c use
 * ex_accuracy too.) */
#ifndef CTAPE_EXAMPLES_COMMON_H
#define CTAPE_EXAMPLES_COMMON_H

#include <ctape.h>

#include "options.h"

/* ---- accuracy ------------------------------------------------------------------------------ */
/* The logits of a network for a batch x: how ex_accuracy runs any model. */
typedef ct_tensor *(*ex_forward_fn)(ct_tape *tape, const void *net, ct_tensor *x);

/* For a network that is one module (a sequential): ex_accuracy(..., ex_module_forward, module, ...). */
static inline ct_tensor *ex_module_forward(ct_tape *tape, const void *net, ct_tensor *x) {
    return ct_forward(tape, (ct_module *)net, x);
}

/* The fraction of `test` whose largest logit is the label, batches drawn with `opts` (no shuffle,
 * no augmentation: the loader's test-time options). Nothing is recorded on the tape, and the
 * model is in evaluation mode meanwhile (batch norm uses its running statistics, dropout is off),
 * back in training mode afterwards. */
static inline double ex_accuracy(ct_tape *tape, ct_model *model, ex_forward_fn forward, const void *net,
                                 const ct_dataset *test, ct_loader_opts opts) {
    ct_loader *batches = ct_loader_new(test, opts);
    int was = ct_tape_grad_enabled(tape, 0);
    ct_model_train(model, 0);
    long correct = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        correct += ct_count_correct(forward(tape, net, b.x), b.y);
        ct_tape_reset(tape);
    }
    ct_model_train(model, 1);
    ct_tape_grad_enabled(tape, was);
    ct_loader_free(batches);
    return (double)correct / test->n;
}

/* ---- one epoch's progress line ------------------------------------------------------------- */
/*   epoch 2/5 [=========>   ] 300/469 loss 0.3127  train acc 88.9%  41234 samples/s  1.2s
 * then, at the end of the epoch,
 *   epoch 2/5 loss 0.3090  41802 samples/s  1.5s  test accuracy 87.95% */
typedef struct {
    ct_progress *progress;
    double start, loss_sum;
    long seen, correct;
    int steps;
} ex_epoch;

static inline ex_epoch ex_epoch_begin(int epoch, int epochs, int steps_per_epoch) {
    char label[32];
    snprintf(label, sizeof label, "epoch %d/%d", epoch, epochs);
    return (ex_epoch){.progress = ct_progress_new(label, steps_per_epoch), .start = ct_time_now()};
}

/* After a step on batch b with this loss; with the step's logits (or NULL) the line shows the
 * running training accuracy too. */
static inline void ex_epoch_step(ex_epoch *e, const ct_tensor *loss, const ct_batch *b, const ct_tensor *logits) {
    e->loss_sum += loss->data[0];
    e->seen += b->n;
    e->steps++;
    const double rate = e->seen / (ct_time_now() - e->start);
    if (!logits) {
        ct_progress_update(e->progress, e->steps, "loss %.4f  %.0f samples/s", e->loss_sum / e->steps, rate);
        return;
    }
    e->correct += ct_count_correct(logits, b->y);
    ct_progress_update(e->progress, e->steps, "loss %.4f  train acc %.1f%%  %.0f samples/s", e->loss_sum / e->steps,
                       100.0 * e->correct / e->seen, rate);
}

/* The training loop's seconds, for figures of its own (time spent waiting for data); call before
 * evaluating. */
static inline double ex_epoch_seconds(const ex_epoch *e) { return ct_time_now() - e->start; }

/* Ends the line with the test accuracy; `note` (or NULL) goes after the seconds. */
static inline void ex_epoch_end(ex_epoch *e, double seconds, double test_accuracy, const char *note) {
    ct_progress_done(e->progress, "loss %.4f  %.0f samples/s  %.1fs%s  test accuracy %.2f%%", e->loss_sum / e->steps,
                     e->seen / seconds, seconds, note ? note : "", 100 * test_accuracy);
}

/* ---- the MNIST-family trainers (mnist_mlp, mnist_cnn) --------------------------------------- */
typedef struct {
    const char *data_dir, *train_split, *test_split;
    int epochs, batch, threads, cosine;
    double lr;
    uint64_t seed;
} ex_idx_options;

#define EX_IDX_OPTIONS(...)                                                                              \
    CT_WITH_DEFAULTS(ex_idx_options, (.data_dir = "/usr/share/datasets/fashion-mnist", .train_split = "train", \
                     .test_split = "t10k", .epochs = 1, .batch = 128, .lr = 0.05, .seed = 42), __VA_ARGS__)

/* The flags every such trainer takes, for its usage text (batch: its default). */
static inline void ex_idx_usage(FILE *to, int batch) {
    fprintf(to, "  --data DIR      folder with the IDX files (default /usr/share/datasets/fashion-mnist)\n"
                "  --train NAME    training file prefix: train, train10k, ... (default train)\n"
                "  --test NAME     test file prefix (default t10k)\n"
                "  --epochs N      passes over the training set (default 1)\n"
                "  --batch N       mini-batch size (default %d)\n"
                "  --lr X          learning rate (default 0.05)\n"
                "  --cosine        anneal the learning rate to 0 over the run (cosine schedule)\n"
                "  --seed N        seed for initialisation and shuffling (default 42)\n"
                "  --threads N     threads for BLAS and OpenMP (default: $CTAPE_THREADS, else all cores)\n"
                "  --help          this text\n",
            batch);
}

/* Parses those flags and the program's own (`extra`, up to 8) into *o, which holds the defaults;
 * sets the thread count when --threads is given (else $CTAPE_THREADS, else all cores). */
static inline int ex_idx_parse(int argc, char **argv, ex_idx_options *o, const opt_spec *extra, int n_extra,
                               void (*usage)(FILE *, const char *)) {
    opt_spec specs[9 + 8] = {
        {"--data", OPT_STRING, &o->data_dir, 0, NULL},    {"--train", OPT_STRING, &o->train_split, 0, NULL},
        {"--test", OPT_STRING, &o->test_split, 0, NULL},  {"--epochs", OPT_INT, &o->epochs, 1, NULL},
        {"--batch", OPT_INT, &o->batch, 1, NULL},         {"--threads", OPT_INT, &o->threads, 0, NULL},
        {"--seed", OPT_U64, &o->seed, 0, NULL},           {"--lr", OPT_REAL, &o->lr, 0, NULL},
        {"--cosine", OPT_FLAG, &o->cosine, 1, NULL},
    };
    int n = 9;
    for (int i = 0; i < n_extra && n < (int)(sizeof specs / sizeof specs[0]); i++) specs[n++] = extra[i];
    if (!opt_parse(argc, argv, specs, n, usage)) return 0;
    if (o->threads > 0) ct_set_threads(o->threads);
    return 1;
}

/* The training and test splits of o's IDX folder, and a line saying what was loaded; 0 after
 * the error on stderr (nothing left to free). */
static inline int ex_idx_load(const char *prog, const ex_idx_options *o, ct_dataset **train, ct_dataset **test) {
    *train = ct_idx_load(o->data_dir, o->train_split);
    *test = *train ? ct_idx_load(o->data_dir, o->test_split) : NULL;
    if (!*train || !*test) {
        fprintf(stderr, "%s: %s\n", prog, ct_last_error());
        ct_dataset_free(*train);
        return 0;
    }
    printf("data: %d training and %d test images of %dx%d from %s; %d threads\n", (*train)->n, (*test)->n,
           (*train)->height, (*train)->width, o->data_dir, ct_get_threads());
    return 1;
}

#endif
