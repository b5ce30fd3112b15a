/* examples/grokking.c — softmax collapse on modular addition (Prieto, Barsbey, Mediano & Birdal
 * 2025, "Grokking at the Edge of Numerical Stability"), the loss lab's reproduction 6.
 *
 *   build/examples/grokking --out runs/grokking                 softmax and StableMax CE, float32
 *   build/f64/examples/grokking --out runs/grokking             the same in float64 (make PRECISION=64)
 *   -> runs/grokking/<loss>-f32.csv (or -f64)   step, train loss and accuracy, test accuracy,
 *                                               collapsed fraction, median margin, weight norm
 *      runs/grokking/test_accuracy.png          the test accuracy of every CSV in the folder
 *      runs/grokking/collapsed.png              the fraction of the training set whose probability
 *                                               of its label is exactly 1 (under the run's own
 *                                               loss and precision), every CSV overlaid
 *      runs/grokking/train_loss.png             the training loss (log scale), every CSV overlaid
 *
 * The task: y = (a + b) mod p for all p² pairs (a, b), a random `--train-fraction` of them to
 * train on, the rest to test; the input is one-hot(a) ++ one-hot(b), the network a ReLU MLP
 * 2p → h → h → p, trained full-batch with Adam and no weight decay, so nothing but the loss
 * pulls the weights. Once the training set is fitted, cross-entropy keeps shrinking by scaling
 * the logits; in float32 a sample's softmax gives p_y == 1 exactly once every other class trails
 * by about 16.6, its loss and gradient become exactly zero (softmax collapse), and learning from
 * it stops. StableMax's s(x) = x + 1 (x >= 0), 1/(1 − x) (x < 0) grows linearly, so its
 * probabilities never round to 1. What to look for: softmax CE in float32 stalls with most of
 * the training set collapsed; StableMax CE (and float64, later) lets the test accuracy rise. */
#include <ctape.h>

#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PRECISION_NAME (sizeof(ct_real) == 8 ? "f64" : "f32")

typedef struct {
    int modulus, hidden, steps, log_every;
    double train_fraction, lr, adam_eps;
    unsigned long long seed;
    const char *losses, *out;
} grok_options;

typedef struct {
    ct_module *fc1, *fc2, *fc3;
} grok_net;

typedef struct {
    ct_tensor *x; /* (n, 2p) one-hot pairs */
    int *y;
    int n;
} grok_split;

/* logits = fc3(relu(fc2(relu(fc1(x))))) */
static ct_tensor *grok_forward(ct_tape *tape, const grok_net *net, ct_tensor *x) {
    ct_tensor *h = ct_relu(tape, ct_forward(tape, net->fc1, x));
    h = ct_relu(tape, ct_forward(tape, net->fc2, h));
    return ct_forward(tape, net->fc3, h);
}

/* Every pair (a, b) once, shuffled by the seed; the first round(fraction·p²) are the training set. */
static int grok_make_splits(int p, double fraction, unsigned long long seed, grok_split *train, grok_split *test) {
    const int total = p * p;
    int *order = malloc(sizeof(int) * (size_t)total);
    if (!order) return 0;
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_rng_permutation(&rng, order, total);
    train->n = (int)lround(fraction * total);
    test->n = total - train->n;
    grok_split *splits[2] = {train, test};
    int at = 0;
    for (int s = 0; s < 2; s++) {
        grok_split *sp = splits[s];
        sp->x = ct_tensor_new(CT_SHAPE(sp->n, 2 * p));
        sp->y = malloc(sizeof(int) * (size_t)sp->n);
        if (!sp->y) {
            free(order);
            return 0;
        }
        for (int i = 0; i < sp->n; i++, at++) {
            const int a = order[at] / p, b = order[at] % p;
            sp->x->data[(size_t)i * 2 * p + a] = 1;
            sp->x->data[(size_t)i * 2 * p + p + b] = 1;
            sp->y[i] = (a + b) % p;
        }
    }
    free(order);
    return 1;
}

static double grok_accuracy(const ct_tensor *logits, const int *y) {
    const int n = logits->shape[0], c = logits->shape[1];
    long right = 0;
    for (int i = 0; i < n; i++) {
        const ct_real *row = logits->data + (size_t)i * c;
        int best = 0;
        for (int k = 1; k < c; k++)
            if (row[k] > row[best]) best = k;
        right += best == y[i];
    }
    return n ? (double)right / n : NAN;
}

/* The fraction of rows whose StableMax probability of the label, s(z_y) / Σ_c s(z_c) with
 * s(x) = x + 1 (x >= 0), 1 / (1 − x) (x < 0), is exactly 1 in this build's precision. */
static double grok_stablemax_collapsed(const ct_tensor *logits, const int *y) {
    const int n = logits->shape[0], c = logits->shape[1];
    long collapsed = 0;
    for (int i = 0; i < n; i++) {
        const ct_real *row = logits->data + (size_t)i * c;
        ct_real sum = 0;
        for (int k = 0; k < c; k++) sum += row[k] >= 0 ? row[k] + 1 : 1 / (1 - row[k]);
        const ct_real zy = row[y[i]], sy = zy >= 0 ? zy + 1 : 1 / (1 - zy);
        collapsed += sy / sum == 1;
    }
    return n ? (double)collapsed / n : NAN;
}

static double grok_weight_norm(ct_model *m) {
    double sum = 0;
    for (int i = 0; i < ct_model_param_count(m); i++) {
        const ct_tensor *t = ct_model_param(m, i);
        for (size_t k = 0; k < t->size; k++) sum += (double)t->data[k] * t->data[k];
    }
    return sqrt(sum);
}

/* Trains one loss ("softmax" or "stablemax") and writes OUT/<loss>-<precision>.csv. */
static int grok_run(const grok_options *o, const char *loss, const grok_split *train, const grok_split *test) {
    const int stable = strcmp(loss, "stablemax") == 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%s.csv", o->out, loss, PRECISION_NAME);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "grokking: cannot write %s: %s\n", path, strerror(errno));
        return 0;
    }
    fprintf(csv, "step,train_loss,train_accuracy,test_accuracy,collapsed,softmax_collapsed_f32,softmax_collapsed_f64,"
                 "median_margin,weight_norm\n");
    ct_model *model = ct_model_new();
    ct_model_set_seed(model, o->seed);
    const int p = o->modulus;
    grok_net net = {ct_linear_new(model, "fc1", 2 * p, o->hidden), ct_linear_new(model, "fc2", o->hidden, o->hidden),
                    ct_linear_new(model, "fc3", o->hidden, p)};
    ct_optim *opt = ct_adam_new(model, CT_ADAM(.lr = o->lr, .eps = o->adam_eps));
    ct_tape *tape = ct_tape_new();
    const ct_labels ytrain = CT_LABELS(train->y, train->n);
    int ok = 1;
    double test_acc = 0, collapsed = 0;
    for (int step = 0; step <= o->steps && ok; step++) {
        ct_tensor *logits = grok_forward(tape, &net, train->x);
        ct_tensor *l = stable ? ct_stablemax_cross_entropy(tape, logits, ytrain, CT_STABLEMAX())
                              : ct_cross_entropy(tape, logits, ytrain, CT_CE());
        if (step % o->log_every == 0 || step == o->steps) {
            const ct_logit_stats s = ct_logit_stats_compute(logits, ytrain);
            const double train_acc = grok_accuracy(logits, train->y);
            const int was = ct_tape_grad_enabled(tape, 0);
            ct_tensor *test_logits = grok_forward(tape, &net, test->x);
            test_acc = grok_accuracy(test_logits, test->y);
            ct_tape_grad_enabled(tape, was);
            collapsed = stable ? grok_stablemax_collapsed(logits, train->y)
                               : sizeof(ct_real) == 8 ? s.collapsed_f64 : s.collapsed_f32;
            fprintf(csv, "%d,%.9g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%.6g\n", step, (double)l->data[0], train_acc, test_acc,
                    collapsed, s.collapsed_f32, s.collapsed_f64, s.margin_median, grok_weight_norm(model));
            fflush(csv); /* a long run stopped early keeps its rows */
            printf("\r%-9s %s step %6d  loss %.3e  train %.3f  test %.3f  collapsed %.3f   ", loss, PRECISION_NAME,
                   step, (double)l->data[0], train_acc, test_acc, collapsed);
            fflush(stdout);
        }
        if (step == o->steps) break;
        ct_backward(tape, l);
        if (ct_optim_step(opt) != CT_OK) { /* a non-finite gradient: the run stops here, its rows kept */
            fprintf(stderr, "\ngrokking: %s at step %d: %s\n", loss, step, ct_last_error());
            break;
        }
        ct_tape_reset(tape);
    }
    printf("\n%s %s: test accuracy %.4f, collapsed %.3f of the training set after %d steps\n", loss, PRECISION_NAME,
           test_acc, collapsed, o->steps);
    if (fclose(csv) != 0) {
        fprintf(stderr, "grokking: cannot write %s: %s\n", path, strerror(errno));
        ok = 0;
    }
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    return ok;
}

/* Reads column `col` (0-based) of a CSV this program wrote, with its step column, into x and y. */
static int grok_read_column(const char *path, int col, double **x, double **y) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int n = 0, cap = 0;
    *x = *y = NULL;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            double *nx = realloc(*x, sizeof(double) * (size_t)cap), *ny = nx ? realloc(*y, sizeof(double) * (size_t)cap) : NULL;
            if (nx) *x = nx;
            if (!nx || !ny) break;
            *y = ny;
        }
        char *at = line;
        double step = strtod(at, &at), value = NAN;
        for (int c = 1; c <= col && at; c++) {
            at = strchr(at, ',');
            if (at) value = strtod(++at, &at);
        }
        (*x)[n] = step;
        (*y)[n] = value;
        n++;
    }
    fclose(f);
    return n;
}

/* Test accuracy and collapsed fraction of every run in OUT, each loss one colour, float64 dashed. */
static int grok_plot(const char *out) {
    static const char *const losses[] = {"softmax", "stablemax"}, *const precisions[] = {"f32", "f64"};
    static const char *const what[] = {"test accuracy", "collapsed fraction of the training set", "training loss"};
    static const char *const axis[] = {"test accuracy", "collapsed fraction", "training loss"};
    static const char *const file[] = {"test_accuracy", "collapsed", "train_loss"};
    static const int column[] = {3, 4, 1};
    char labels[3][4][64], path[1024];
    int ok = 1;
    for (int w = 0; w < 3; w++) {
        ct_plot_series series[4];
        double *xs[4] = {0}, *ys[4] = {0};
        int n = 0;
        for (int l = 0; l < 2; l++)
            for (int q = 0; q < 2; q++) {
                snprintf(path, sizeof path, "%s/%s-%s.csv", out, losses[l], precisions[q]);
                const int points = grok_read_column(path, column[w], &xs[n], &ys[n]);
                if (points < 1) {
                    free(xs[n]);
                    free(ys[n]);
                    continue;
                }
                snprintf(labels[w][n], sizeof labels[w][n], "%s CE, %s", losses[l], precisions[q]);
                series[n] = (ct_plot_series){labels[w][n], xs[n], ys[n], points, q == 1, l};
                n++;
            }
        snprintf(path, sizeof path, "%s/%s.png", out, file[w]);
        const ct_plot_opts po = w == 2 ? CT_PLOT(.title = what[w], .x_label = "step", .y_label = axis[w], .log_y = 1)
                                       : CT_PLOT(.title = what[w], .x_label = "step", .y_label = axis[w], .y_min = 0,
                                                 .y_max = 1);
        if (n && ct_plot_lines(path, series, n, po) != CT_OK) {
            fprintf(stderr, "grokking: %s\n", ct_last_error());
            ok = 0;
        } else if (n) {
            printf("wrote %s\n", path);
        }
        for (int i = 0; i < n; i++) {
            free(xs[i]);
            free(ys[i]);
        }
    }
    return ok;
}

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [options]\n"
                "Modular addition with a ReLU MLP, full-batch Adam without weight decay, trained with\n"
                "softmax and StableMax cross-entropy; logs the test accuracy and the fraction of the\n"
                "training set whose softmax has collapsed (p_y == 1 in this build's precision).\n", prog);
}

int main(int argc, char **argv) {
    grok_options o = {.modulus = 113, .hidden = 200, .steps = 3000, .log_every = 20, .train_fraction = 0.4,
                      .lr = 3e-3, .adam_eps = 1e-8, .seed = 0, .losses = "softmax,stablemax", .out = "runs/grokking"};
    int plot_only = 0;
    const opt_spec specs[] = {
        {"--modulus", OPT_INT, &o.modulus, 2, "P  the modulus p (default 113)"},
        {"--hidden", OPT_INT, &o.hidden, 1, "H  hidden width (default 200)"},
        {"--steps", OPT_INT, &o.steps, 1, "N  full-batch Adam steps (default 3000)"},
        {"--log-every", OPT_INT, &o.log_every, 1, "K  a CSV row every K steps (default 20)"},
        {"--train-fraction", OPT_REAL, &o.train_fraction, 0, "F  share of the p² pairs to train on (default 0.4)"},
        {"--lr", OPT_REAL, &o.lr, 0, "LR Adam's learning rate (default 0.003)"},
        {"--adam-eps", OPT_REAL_MIN, &o.adam_eps, 0,
         "E  Adam's ε (default 1e-8; a tiny one such as 1e-30 keeps the steps lr-sized as the gradients vanish)"},
        {"--seed", OPT_U64, &o.seed, 0, "S  the split's and the initialisation's seed (default 0)"},
        {"--losses", OPT_STRING, &o.losses, 0, "L  softmax, stablemax or both (default softmax,stablemax)"},
        {"--out", OPT_STRING, &o.out, 0, "DIR  where the CSVs and PNGs go (default runs/grokking)"},
        {"--plot-only", OPT_FLAG, &plot_only, 1, "   redraw the PNGs from the CSVs in --out"},
    };
    if (!opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage)) return 2;
    if (o.train_fraction >= 1) {
        fprintf(stderr, "grokking: --train-fraction must be below 1 (the rest is the test set), got %g\n",
                o.train_fraction);
        return 2;
    }
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "grokking: cannot make %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    if (plot_only) return grok_plot(o.out) ? 0 : 1;
    int want_softmax = 0, want_stable = 0;
    char list[64];
    snprintf(list, sizeof list, "%s", o.losses);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (strcmp(name, "softmax") == 0) {
            want_softmax = 1;
        } else if (strcmp(name, "stablemax") == 0) {
            want_stable = 1;
        } else {
            fprintf(stderr, "grokking: --losses takes softmax, stablemax or both (\"softmax,stablemax\"), not \"%s\"\n",
                    name);
            return 2;
        }
    }
    grok_split train = {0}, test = {0};
    if (!grok_make_splits(o.modulus, o.train_fraction, o.seed, &train, &test) || train.n < 1 || test.n < 1) {
        fprintf(stderr, "grokking: a split of %d pairs at fraction %g leaves an empty set or no memory\n",
                o.modulus * o.modulus, o.train_fraction);
        return 1;
    }
    printf("p = %d: %d training pairs, %d test pairs; MLP %d-%d-%d-%d; Adam lr %g, eps %g, full batch, %s\n",
           o.modulus, train.n, test.n, 2 * o.modulus, o.hidden, o.hidden, o.modulus, o.lr, o.adam_eps, PRECISION_NAME);
    int ok = 1;
    if (want_softmax) ok = grok_run(&o, "softmax", &train, &test) && ok;
    if (want_stable) ok = grok_run(&o, "stablemax", &train, &test) && ok;
    ok = grok_plot(o.out) && ok;
    ct_tensor_free(train.x);
    ct_tensor_free(test.x);
    free(train.y);
    free(test.y);
    return ok ? 0 : 1;
}
