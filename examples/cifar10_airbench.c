/* examples/cifar10_airbench.c — Keller Jordan's airbench94 recipe for CIFAR-10 (arXiv 2404.00498,
 * airbench94.py: 94.01% mean test accuracy in 9.9 epochs), written with ctape's pieces.
 *
 *   build/examples/cifar10_airbench                        the full run (9.9 epochs, 50,000 images)
 *   build/examples/cifar10_airbench --time-steps 3         the seconds of one training step of 1024
 *   build/examples/cifar10_airbench --subset 512 --test-subset 200 --batch 64 --epochs 1   (seconds)
 *   build/examples/cifar10_airbench --muon                 the airbench94_muon variant
 *
 * The network (about 0.71 GFLOP of training per image):
 *   x (B, 3, 32, 32) -> whiten: conv 2x2, 24 channels, bias (B, 24, 31, 31) -> GELU
 *     -> 3 groups of [conv 3x3 -> maxpool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU], widths 64, 256, 256
 *     -> maxpool 3 (B, 256, 1, 1) -> flatten -> linear 256 -> 10 without bias -> logits x 1/9
 * The whitening conv's filters are the eigenvectors v of the 2x2x3 patch second-moment matrix of
 * the first 5,000 training images, v/sqrt(lambda + 5e-4) and their negatives (ct_conv2d_init_whitening);
 * its weight is frozen for the whole run and its bias for the epochs from the third on
 * (ct_model_freeze). The 3x3 convs have no bias and pass their first in-channels through at the
 * start (ct_init_dirac on top of the default init). Batch norm has its scale fixed at 1 (only the
 * bias trains), eps 1e-12 and PyTorch momentum 0.4.
 * Training: batch 1024, cross-entropy with label smoothing 0.2 summed over the batch; SGD Nesterov
 * with airbench's decoupled hyper-parameters (lr 11.5 and weight decay 0.0153 per 1024 examples,
 * momentum 0.85; the batch-norm biases at 64x the lr: ct_sgd_decoupled_new); the lr follows a
 * triangle, 0.2 at step 0 up to 1 at 23% of the steps and down to 0.07 at the last; from epoch 3 the
 * weights are averaged every 5 steps and the average copied back into the network, and once more
 * after each epoch (ct_lookahead_ema). Data: per-channel normalisation with CIFAR-10's mean and
 * std, a random translation by up to 2 pixels with reflect padding, and the alternating flip
 * (each image flipped in every other epoch, from one coin per image). The test accuracy at the end
 * is also measured with test-time augmentation (mirror + one-pixel translations, ct_tta_logits
 * level 2).
 *
 * --muon (airbench94_muon.py): batch 2000, 8 epochs; Muon (lr 0.24, momentum 0.6, Nesterov, 3
 * Newton-Schulz steps, weights renormalised) on the 3x3 convs; SGD Nesterov 0.85 on the rest
 * (batch-norm and whitening biases at lr 0.053, the head at 0.67, weight decay 2e-6 per example
 * decoupled); the lr decays linearly to 0; no weight averaging; the head starts at unit standard
 * deviation and the logits are scaled by 1/256. One difference from the reference: its whitening
 * bias has an lr schedule of its own (to 0 at the end of epoch 3); here it follows the others and
 * is frozen after epoch 3.
 *
 * The end of the run prints the test accuracy with and without TTA, the time (airbench's: the
 * whitening, the training steps and the TTA evaluation; and the wall time) and whether 94% was
 * reached. */
#include <ctape.h>
#include <nn/layer.h>

#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f}, cifar_std[3] = {0.2470f, 0.2435f, 0.2616f};
static const int widths[3] = {64, 256, 256};

typedef struct {
    const char *data_dir;
    double epochs;
    int batch, threads, subset, test_subset, muon, time_steps;
    uint64_t seed;
} options;

static const char *prog = "cifar10_airbench";

static void usage(FILE *to, const char *name) {
    fprintf(to, "usage: %s [options]\n"
                "Trains airbench94 (Jordan 2024) on CIFAR-10: whitening conv, 3 conv groups, SGD Nesterov with\n"
                "decoupled hyper-parameters, weight averaging, alternating flip; test-time augmentation at the end.\n"
                "  --data DIR        the official binary CIFAR-10 (default ../shared/data/cifar-10-batches-bin)\n"
                "  --epochs X        passes over the training set (default 9.9; 8 with --muon)\n"
                "  --batch N         mini-batch size (default 1024; 2000 with --muon)\n"
                "  --subset N        train on the first N training images (default all)\n"
                "  --test-subset N   evaluate on the first N test images (default all)\n"
                "  --muon            the airbench94_muon variant (Muon on the 3x3 convs)\n"
                "  --time-steps N    time N training steps on one batch (after one untimed step) and stop\n"
                "  --seed N          seed for initialisation, shuffling and augmentation (default 0)\n"
                "  --threads N       threads for BLAS and OpenMP (default: $CTAPE_THREADS, else all cores)\n"
                "  --help            this text\n",
            name);
}

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.data_dir = "../shared/data/cifar-10-batches-bin", .epochs = 0, .batch = 0};
    const opt_spec specs[] = {
        {"--data", OPT_STRING, &o->data_dir, 0, NULL},   {"--epochs", OPT_REAL, &o->epochs, 0, NULL},
        {"--batch", OPT_INT, &o->batch, 1, NULL},        {"--subset", OPT_INT, &o->subset, 1, NULL},
        {"--test-subset", OPT_INT, &o->test_subset, 1, NULL},
        {"--muon", OPT_FLAG, &o->muon, 1, NULL},         {"--time-steps", OPT_INT, &o->time_steps, 1, NULL},
        {"--seed", OPT_U64, &o->seed, 0, NULL},          {"--threads", OPT_INT, &o->threads, 0, NULL},
    };
    if (!opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage)) return 0;
    if (o->epochs == 0) o->epochs = o->muon ? 8 : 9.9;
    if (o->batch == 0) o->batch = o->muon ? 2000 : 1024;
    return 1;
}

/* ---- the network ------------------------------------------------------------------------------ */
/* y = s·x: the logits' scale, as a layer so the whole network is one module (ct_tta_logits runs it). */
typedef struct {
    ct_module base;
    double scale;
} scale_module;

static ct_tensor *scale_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_mul_scalar(tape, x, ((scale_module *)self)->scale);
}

static ct_module *scale_new(ct_model *m, const char *name, double scale) {
    scale_module *s = ct_module_new(m, sizeof *s, "scale", name, scale_forward);
    s->scale = scale;
    return &s->base;
}

/* A 3x3 conv without bias ("same" padding) whose first min(in, out) filters pass their input
 * channel through: the default init, then Dirac on those filters (airbench's Conv). */
static ct_module *dirac_conv(ct_model *m, const char *name, int in, int out) {
    ct_module *c = ct_conv2d_new(m, name, in, out, 3, CT_CONV2D(.padding = 1, .bias = 0));
    ct_init_dirac(ct_conv2d_weight(c), in < out ? in : out);
    return c;
}

static void add_group(ct_model *m, ct_module *net, int g, int in, int out) {
    char name[64];
    const ct_batch_norm_opts bn = CT_BATCH_NORM(.eps = 1e-12, .momentum = 0.4, .fixed_scale = 1);
#define NAMED(fmt) (snprintf(name, sizeof name, "groups.%d." fmt, g), name)
    ct_sequential_add(net, dirac_conv(m, NAMED("conv1"), in, out));
    ct_sequential_add(net, ct_max_pool2d_new(m, NAMED("pool"), 2, 0, 0));
    ct_sequential_add(net, ct_batch_norm_new(m, NAMED("norm1"), out, bn));
    ct_sequential_add(net, ct_gelu_layer_new(m, NAMED("gelu1")));
    ct_sequential_add(net, dirac_conv(m, NAMED("conv2"), out, out));
    ct_sequential_add(net, ct_batch_norm_new(m, NAMED("norm2"), out, bn));
    ct_sequential_add(net, ct_gelu_layer_new(m, NAMED("gelu2")));
#undef NAMED
}

/* The whole network as one sequential; *whiten is its first conv. */
static ct_module *build_net(ct_model *m, int muon, ct_module **whiten) {
    ct_module *net = ct_sequential_new(m, "net");
    *whiten = ct_conv2d_new(m, "whiten", 3, 24, 2, CT_CONV2D(.padding = 0, .bias = 1));
    ct_init_zeros(ct_conv2d_bias(*whiten));
    ct_sequential_add(net, *whiten);
    ct_sequential_add(net, ct_gelu_layer_new(m, "gelu"));
    for (int g = 0, in = 24; g < 3; in = widths[g], g++) add_group(m, net, g, in, widths[g]);
    ct_sequential_add(net, ct_max_pool2d_new(m, "pool", 3, 0, 0));
    ct_sequential_add(net, ct_flatten_new(m, "flatten"));
    ct_module *head = ct_linear_new_nobias(m, "head", widths[2], 10);
    ct_sequential_add(net, head);
    if (muon) { /* the head at unit standard deviation (its mean is ~0: the sample std) */
        ct_tensor *w = ct_linear_weight(head);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < w->size; i++) s += w->data[i], s2 += (double)w->data[i] * w->data[i];
        const double n = (double)w->size, sd = sqrt((s2 - s * s / n) / (n - 1));
        for (size_t i = 0; i < w->size; i++) w->data[i] = (ct_real)(w->data[i] / sd);
    }
    ct_sequential_add(net, scale_new(m, "scale", muon ? 1.0 / widths[2] : 1.0 / 9));
    return net;
}

/* Multiply-adds of one image's forward pass: the convolutions at their resolutions and the head. */
static double forward_macs(void) {
    double macs = 3.0 * 24 * 4 * 31 * 31;
    int hw = 31, in = 24;
    for (int g = 0; g < 3; g++) {
        macs += (double)hw * hw * in * widths[g] * 9; /* conv1, before its pool */
        hw /= 2;
        macs += (double)hw * hw * widths[g] * widths[g] * 9;
        in = widths[g];
    }
    return macs + widths[2] * 10.0;
}

/* ---- data ------------------------------------------------------------------------------------- */
/* The first n images of d, scaled to [0, 1] and normalised, as a (n, 3, 32, 32) tensor. */
static ct_tensor *normalised_images(const ct_dataset *d, int n) {
    ct_tensor *x = ct_tensor_new(CT_SHAPE(n, 3, 32, 32));
    const size_t plane = 32 * 32;
    for (size_t i = 0; i < (size_t)n * 3; i++) {
        const int c = (int)(i % 3);
        const uint8_t *src = d->images + i * plane;
        for (size_t k = 0; k < plane; k++)
            x->data[i * plane + k] = (ct_real)((src[k] / 255.0f - cifar_mean[c]) / cifar_std[c]);
    }
    return x;
}

static ct_dataset *first_n(ct_dataset *d, int n) {
    if (n <= 0 || n >= d->n) return d;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return NULL;
    for (int i = 0; i < n; i++) idx[i] = i;
    ct_dataset *s = ct_dataset_subset(d, idx, n);
    free(idx);
    ct_dataset_free(d);
    return s;
}

static ct_loader_opts normalising(ct_loader_opts o) {
    o.normalize = 1;
    memcpy(o.mean, cifar_mean, sizeof cifar_mean);
    memcpy(o.std, cifar_std, sizeof cifar_std);
    return o;
}

/* The fraction of `test` classified right by the TTA logits of the given level. */
static double tta_accuracy(ct_model *m, ct_module *net, const ct_dataset *test, int level) {
    ct_loader *batches = ct_loader_new(test, normalising(CT_LOADER(.batch = 500, .shuffle = 0)));
    long correct = 0;
    ct_batch b;
    while (ct_loader_next(batches, &b)) {
        ct_tensor *logits = ct_tta_logits(m, net, b.x, level);
        correct += ct_count_correct(logits, b.y);
        ct_tensor_free(logits);
    }
    ct_loader_free(batches);
    return (double)correct / test->n;
}

/* ---- the optimizers --------------------------------------------------------------------------- */
static int is_norm_or_whiten_bias(const ct_tensor *p, void *ctx) {
    (void)ctx;
    return p->name && (strstr(p->name, "norm") || !strcmp(p->name, "whiten.bias"));
}

/* airbench94: SGD Nesterov with the decoupled hyper-parameters, the batch-norm biases at 64x the lr.
 * airbench94_muon: Muon on the 3x3 convs, SGD on the rest. */
static ct_optim *make_optimizer(ct_model *m, const options *o) {
    if (!o->muon)
        return ct_sgd_decoupled_new(m, CT_DECOUPLED_AIRBENCH94(.batch = o->batch), ct_param_name_contains, "norm");
    const double wd = 2e-6 * o->batch, head_lr = 0.67, bias_lr = 0.053;
    ct_optim *aux = ct_sgd_new(m, CT_SGD(.lr = head_lr, .momentum = 0.85, .nesterov = 1, .weight_decay = wd / head_lr));
    ct_optim_add_group(aux, is_norm_or_whiten_bias, NULL, CT_GROUP(.lr = bias_lr, .weight_decay = wd / bias_lr));
    return ct_muon_new(m, CT_MUON_AIRBENCH(.aux = aux));
}

/* The lr factor at step t of T: airbench94's triangle 0.2 -> 1 at 23% -> 0.07, or airbench94_muon's
 * linear decay 1 -> 0. */
static double lr_factor(int muon, long t, long total) {
    if (muon) return 1 - (double)t / (double)total;
    const long peak = (long)(0.23 * (double)total);
    if (t < peak) return 0.2 + 0.8 * (double)t / (double)peak;
    return 1 + (0.07 - 1) * (double)(t - peak) / (double)(total - peak);
}

int main(int argc, char **argv) {
    options o;
    if (!parse_options(argc, argv, &o)) return 2;
    if (o.threads > 0) ct_set_threads(o.threads);
    const double wall_start = ct_time_now();

    ct_dataset *train = ct_cifar10_load(o.data_dir, "train");
    ct_dataset *test = train ? ct_cifar10_load(o.data_dir, "test") : NULL;
    if (!train || !test) {
        fprintf(stderr, "%s: %s\n(the official binary CIFAR-10: data_batch_1.bin ... data_batch_5.bin and "
                        "test_batch.bin; give their folder with --data, or fetch them with make data "
                        "DATASETS=cifar10 and use --data data/cifar10)\n",
                prog, ct_last_error());
        ct_dataset_free(train);
        return 1;
    }
    train = first_n(train, o.subset);
    test = train ? first_n(test, o.test_subset) : test;
    if (!train || !test) {
        fprintf(stderr, "%s: %s\n", prog, ct_last_error());
        return 1;
    }
    if (train->n < o.batch) {
        fprintf(stderr, "%s: %d training images make no batch of %d (--batch smaller, or --subset larger)\n", prog,
                train->n, o.batch);
        return 2;
    }
    printf("data: %d training and %d test images from %s; %d threads\n", train->n, test->n, o.data_dir,
           ct_get_threads());

    ct_model *m = ct_model_new();
    ct_model_set_seed(m, o.seed);
    ct_module *whiten;
    ct_module *net = build_net(m, o.muon, &whiten);
    ct_model_freeze(m, "whiten.weight");
    ct_optim *opt = make_optimizer(m, &o);
    const double base_lr = ct_optim_lr(opt);

    ct_loader *batches = ct_loader_new(
        train, normalising(CT_LOADER(.batch = o.batch, .shuffle = 1, .seed = o.seed, .drop_last = 1, .crop_padding = 2,
                                     .pad_mode = CT_PAD_REFLECT, .alternating_flip = 1)));
    const long per_epoch = ct_loader_batches_per_epoch(batches);
    const long total = (long)ceil((double)per_epoch * o.epochs);
    const int epochs = (int)((total + per_epoch - 1) / per_epoch);
    const ct_ce_opts ce = CT_CE(.label_smoothing = 0.2, .reduction = CT_REDUCTION_SUM);
    ct_tape *tape = ct_tape_new();

    /* the whitening filters from the first 5,000 training images, as the network sees them */
    double train_seconds = 0, t0 = ct_time_now();
    const int n_whiten = train->n < 5000 ? train->n : 5000;
    ct_tensor *whiten_images = normalised_images(train, n_whiten);
    if (ct_conv2d_init_whitening(whiten, whiten_images, n_whiten, 5e-4) != CT_OK) {
        fprintf(stderr, "%s: whitening: %s\n", prog, ct_last_error());
        return 1;
    }
    ct_tensor_free(whiten_images);
    train_seconds += ct_time_now() - t0;

    if (o.time_steps) { /* one untimed step, then the fastest of N on the same batch */
        ct_batch b;
        ct_loader_next(batches, &b);
        double best = INFINITY;
        for (int s = 0; s <= o.time_steps; s++) {
            const double t = ct_time_now();
            ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, net, b.x), b.y, ce));
            ct_optim_step(opt);
            ct_tape_reset(tape);
            if (s && ct_time_now() - t < best) best = ct_time_now() - t;
        }
        const double flops = forward_macs() * 6;
        printf("step_seconds=%.3f images_per_s=%.0f train_gflop_per_s=%.1f train_gflop_per_image=%.3f threads=%d\n",
               best, b.n / best, flops * b.n / best / 1e9, flops / 1e9, ct_get_threads());
        return 0;
    }

    printf("airbench94%s: %ld steps of %d (%d epochs of %ld), %.2f GFLOP of training per image\n",
           o.muon ? "_muon" : "", total, o.batch, epochs, per_epoch, forward_macs() * 6 / 1e9);
    ct_lookahead_ema *la = o.muon ? NULL
                                  : ct_lookahead_ema_new(m, CT_LOOKAHEAD_EMA(.start_step = 3 * per_epoch,
                                                                             .total_steps = total));
    const ct_loader_opts test_opts = normalising(CT_LOADER(.batch = 500, .shuffle = 0));
    long step = 0;
    double accuracy = 0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        if (epoch == 3) ct_model_freeze(m, "whiten.bias"); /* trained for the first 3 epochs */
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, epochs);
        const long steps = total - step < per_epoch ? total - step : per_epoch;
        ct_progress *bar = ct_progress_new(label, (int)steps);
        double loss_sum = 0, first_loss = NAN, last_loss = NAN;
        long seen = 0, correct = 0;
        int done = 0;
        t0 = ct_time_now();
        ct_batch b;
        while (step < total && ct_loader_next(batches, &b)) {
            ct_optim_set_lr(opt, base_lr * lr_factor(o.muon, step, total));
            ct_tensor *logits = ct_forward(tape, net, b.x);
            ct_tensor *loss = ct_cross_entropy(tape, logits, b.y, ce);
            ct_backward(tape, loss);
            if (ct_optim_step(opt) != CT_OK) { /* a NaN or Inf gradient: nothing applied */
                fprintf(stderr, "\n%s: step %ld: %s\n", prog, step + 1, ct_last_error());
                return 1;
            }
            step++;
            last_loss = loss->data[0] / b.n; /* per image */
            if (isnan(first_loss)) first_loss = last_loss;
            loss_sum += loss->data[0];
            seen += b.n;
            correct += ct_count_correct(logits, b.y);
            ct_tape_reset(tape);
            if (la) ct_lookahead_ema_update(la, step);
            ct_progress_update(bar, ++done, "loss %.4f  train acc %.1f%%  %.0f images/s", loss_sum / seen,
                               100.0 * correct / seen, seen / (ct_time_now() - t0));
        }
        if (la) ct_lookahead_ema_finish(la);           /* the average back into the network */
        const double seconds = ct_time_now() - t0;
        train_seconds += seconds;
        accuracy = ex_accuracy(tape, m, ex_module_forward, net, test, test_opts);
        ct_progress_done(bar, "train loss %.4f (first batch %.4f, last %.4f)  train acc %.2f%%  test acc %.2f%%  "
                              "%.1f s  (%.1f s in all)",
                         loss_sum / seen, first_loss, last_loss, 100.0 * correct / seen, 100 * accuracy, seconds,
                         ct_time_now() - wall_start);
    }
    t0 = ct_time_now();
    const double tta = tta_accuracy(m, net, test, 2);
    train_seconds += ct_time_now() - t0;
    printf("test accuracy: %.4f\n", accuracy);
    printf("test accuracy with TTA: %.4f\n", tta);
    printf("time: %.1f s (whitening, training and TTA evaluation, as airbench counts it); wall time %.1f s\n",
           train_seconds, ct_time_now() - wall_start);
    printf("94%% reached: %s (%.2f%% with TTA, %d training images, %.3g epochs)\n", tta >= 0.94 ? "yes" : "no",
           100 * tta, train->n, o.epochs);

    ct_lookahead_ema_free(la);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_loader_free(batches);
    ct_model_free(m);
    ct_dataset_free(test);
    ct_dataset_free(train);
    return 0;
}
