/* optim/arena.h — the loss lab's arena: losses × seeds × data conditions, each a training run of the
 * same network and recipe (ct_fit), summarised the way loss papers report results.
 *
 *     ct_arena_run(train, test, CT_ARENA(.losses = "cross_entropy; focal:gamma=2; poly1:epsilon=1",
 *                                         .conditions = "clean; exp:100", .seeds = 5, .model = "resnet20",
 *                                         .epochs = 30, .out = "runs/lt"));
 *
 * Conditions (applied to the training set only; the test set stays balanced and clean), separated
 * by ';', combined with '+': clean, exp:R and step:R (long-tailed subsets of imbalance ratio R,
 * data/conditions.h), sym:P and asym:P (label noise at rate P; asym flips the class pairs of
 * .flips). Every run of seed s draws the same subset, noise, initialisation and batches whatever
 * the loss, so the losses are compared on the same data (paired by seed).
 *
 * Each finished run appends a row to OUT/runs.csv: loss, condition, seed, the test metrics after the
 * last epoch (accuracy, balanced accuracy, the accuracy of the rarest third of the classes, macro F1,
 * NLL, Brier, ECE), the best test accuracy over the epochs, seconds, kNN and linear-probe accuracy,
 * each class's accuracy, and the test accuracy after each epoch (the first 1,000). A field that does not apply to the loss is empty. A run already in
 * runs.csv is not run again, so an interrupted arena continues where it stopped (a runs.csv written
 * before a column was added is rewritten with it, empty, on the next call).
 * Then OUT/table.md: per condition and loss the mean ± the half-width of the 95% confidence interval
 * over the seeds (Student's t), and each loss's paired difference from the baseline (the same seeds)
 * with its interval. Beside it, per condition, PNGs of the classifier losses' mean test accuracy per
 * epoch (test_accuracy-COND.png, COND the condition with ':' and '+' as '_') and mean accuracy per
 * class (per_class-COND.png), and over several conditions each loss's mean accuracy by condition
 * (conditions.png; an embedding loss's probe accuracy); table.md shows them.
 *
 * Embedding losses (supcon, ntxent, circle, circle_class, triplet, center: their input is features)
 * are judged as their papers judge them, on frozen features (optim/probe.h): the zoo network is built
 * with .embedding_dim outputs, trained on the loss (its learnable state, center loss's centres or
 * circle_class's proxies, bound with ct_loss_bind so the optimizer trains it), then its outputs for the
 * condition's training set (plain images, the labels it was trained on) and the test set give the kNN
 * accuracy (k = .knn_k, cosine) and the linear-probe accuracy. SupCon and NT-Xent train on two views
 * of each sample (the loader's .views = 2, each view augmented by .crop_padding and .hflip); NT-Xent
 * is SupCon whose positives are the other view of the same sample (run as supcon with the sample's
 * index in the batch as its label, the same loss), so it needs augmentation (refused without). Their
 * network's output is both what the loss sees and what is probed (no separate projection head).
 * Center loss alone has a collapsed minimum (every feature on one centre); the paper adds it to a
 * cross-entropy: the arena trains the spec as given.
 * ct_fit evaluates no validation set for them (its metrics need logits), the classifier columns of
 * their rows are empty, and a classifier loss's kNN and probe columns are empty. In table.md a
 * metric is compared only between losses that both have it; when the list mixes classifiers and
 * embedding losses, one more paired column, "Δ linear top-1", sets a classifier's test accuracy (its
 * own last layer) against an embedding loss's probe accuracy (a linear layer fitted on its frozen
 * features): the comparison the SupCon paper makes against cross-entropy, labelled as such, not one
 * measurement taken twice. */
#ifndef CTAPE_OPTIM_ARENA_H
#define CTAPE_OPTIM_ARENA_H

#include "trainer.h"
#include "probe.h"
#include "../data/conditions.h"

typedef struct {
    const char *losses;     /* loss specs separated by ';' (ct_arena_split also takes ',' between specs) */
    const char *conditions; /* see above; NULL: "clean" */
    int seeds;              /* seeds 0 .. seeds − 1 */
    const char *model;      /* a zoo spec (nn/zoo.h) */
    const char *optim;      /* an optimizer spec; NULL: sgd:lr=0.05,momentum=0.9 */
    const char *schedule;   /* NULL: cosine */
    int epochs, batch;
    int crop_padding, hflip, normalize; /* the loader's augmentation and normalisation (training set) */
    const ct_label_flip *flips;         /* asym noise pairs (ct_cifar10_flips, ct_mnist_flips) */
    int n_flips;
    const char *baseline;   /* a loss of .losses the others are compared with; NULL: the first */
    const char *out;        /* the folder of runs.csv and table.md (made if missing) */
    int progress;           /* 1: a line per run and ct_fit's progress; 2: the lines only; 0: silent */
    int embedding_dim;      /* the network's output width for an embedding loss (128) */
    int knn_k;              /* neighbours of the kNN accuracy (20) */
    int probe_iterations;   /* gradient steps of the linear probe (300) */
} ct_arena_opts;
#define CT_ARENA(...) CT_WITH_DEFAULTS(ct_arena_opts, (.seeds = 3, .epochs = 1, .batch = 128, .normalize = 1, \
                                                       .progress = 1, .embedding_dim = 128, .knn_k = 20,   \
                                                       .probe_iterations = 300), __VA_ARGS__)

/* Runs every (condition, loss, seed) not yet in OUT/runs.csv, then writes OUT/table.md. CT_OK, or an
 * error code with ct_last_error() (a bad spec; with an embedding loss, embedding_dim, knn_k or
 * probe_iterations below 1, or ntxent without augmentation; a file that cannot be written; a failed
 * run: its loss, condition and seed named; the rows of the runs before it stay in runs.csv). */
int ct_arena_run(const ct_dataset *train, const ct_dataset *test, ct_arena_opts opts);

/* Splits a list of specs at ';', or at ',' where the next piece starts a new spec (a piece with no
 * '=' before any ':' or '['), outside brackets: "focal:gamma=2,alpha=0.25,cross_entropy" is two
 * specs. Writes at most max pointers into `specs` (into buf, which is overwritten); returns the count. */
int ct_arena_split(const char *list, char *buf, size_t len, char **specs, int max);

/* The half-width of the two-sided 95% confidence interval of the mean of n values with sample standard
 * deviation sd: t(0.975, n − 1)·sd/√n (NaN for n < 2). */
double ct_ci95_half_width(int n, double sd);
/* Student's t quantile: the t with P(T <= t) = p for `df` degrees of freedom (df >= 1, 0 < p < 1). */
double ct_student_t_quantile(double p, double df);

#ifndef CT_BUILDING_LIBRARY
#define ct_arena_run(...) CT_SITE_CALL_CLEARING(ct_arena_run, __VA_ARGS__)
#endif

#endif
