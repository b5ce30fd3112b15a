/* optim/trainer.h — ct_fit: the training loop every example writes, once, with what PyTorch +
 * Keras + tqdm users expect around it: a progress bar, evaluation every epoch, logs (CSV and JSON
 * Lines), checkpoints, keep-best, early stopping, EMA evaluation, callbacks, and Ctrl-C.
 *
 *     ct_loader *train = ct_loader_new(d, CT_LOADER(.batch = 128, .seed = 1)), *test = ...;
 *     ct_batch_source tr = ct_loader_source(train), te = ct_loader_source(test);
 *     ct_fit_result r;
 *     ct_fit(model, net, opt, tr, &te, CT_FIT(.epochs = 5, .schedule = "cosine", .log_csv = "run.csv"), &r);
 *
 * One step is what a hand-written loop does: forward, the loss, ct_backward, ct_optim_step (whose
 * guards clip and check for NaN), the schedule, ct_tape_reset. Before it the loss is told how far the
 * run is (ct_loss_set_progress): p = (epoch·B + batch) / (epochs·B) for B batches per epoch (epoch /
 * epochs when the source does not say B), 0 at the first step; a loss that changes over training
 * (tsla) reads it. The evaluation after each epoch runs
 * the model in evaluation mode without gradients and fills a ct_metrics (losses/metrics.h). A step
 * the non-finite guard refuses stops the run (CT_ERR_VALUE, the guard's message) unless the
 * optimizer's guard is CT_NONFINITE_SKIP. Ctrl-C (SIGINT) stops at the next step boundary: the
 * checkpoint is written and ct_fit returns CT_FIT_INTERRUPTED.
 *
 * Resuming: the checkpoint (.checkpoint, written after every epoch and at an interrupt) holds the
 * model, the optimizer, the model's random streams (dropout), the EMA, and the run's position
 * (epoch, batch, the epoch's running sums, the best epoch, the patience count). A new process that
 * builds the same model, optimizer and sources and calls ct_fit with the same options and
 * .resume = that file continues the run: at the same thread count its weights, logs and results
 * are those of the run that was never stopped. The sources must be able to seek (ct_loader_source
 * can) and start where they stood when the interrupted run started. A checkpoint of a run with
 * another loss, schedule, number of epochs or batches per epoch is refused (CT_ERR_VALUE naming
 * both). The logs are continued: lines written after the checkpoint (by a run killed later) are
 * dropped first.
 *
 * On several ranks (core/dist.h, after ct_dist_init under mpirun) every rank calls ct_fit with the
 * same model, options and a sharded training source (ct_loader's .shard = rank, .shards = ranks):
 * rank 0's weights and optimizer state go to every rank at the start (and after a resume, where
 * every rank reads the checkpoint, so it must be on a file system they share); the gradients are
 * averaged over the ranks between the backward and the step (optim/dist.h; .dist_shards for the
 * deterministic order), so the weights are the same on every rank; only rank 0 draws the progress
 * line and writes logs, checkpoints and the best model; the training figures are over the global
 * batch; batch norm's statistics are per rank during an epoch, rank 0's for all after it; every rank
 * evaluates the whole validation source, and rank 0's early stop holds for all. An error on one rank (a log rank 0
 * cannot write) stops every rank with that error, "rank R of N: ..."; so does Ctrl-C on any. */
#ifndef CTAPE_OPTIM_TRAINER_H
#define CTAPE_OPTIM_TRAINER_H

#include "optim.h"
#include "../losses/losses.h"
#include "../losses/metrics.h"
#include "../losses/analysis.h"

#define CT_FIT_INTERRUPTED 2

/* What a step callback sees. */
typedef struct {
    long step;            /* optimizer steps so far, this one included */
    int epoch, batch;     /* 0-based */
    const ct_tensor *x;
    ct_labels y;
    double loss, lr;
} ct_fit_step;

/* One epoch's summary (also what the logs hold). */
typedef struct {
    int epoch;                 /* 1-based once finished */
    long steps;
    double train_loss, train_accuracy; /* means over the epoch's batches */
    double lr;                 /* at the end of the epoch */
    int evaluated;             /* 1 when there was a validation source */
    ct_metrics_result val;     /* its metrics */
    double val_loss;           /* the training loss on the validation data */
    double seconds, samples_per_second;
    int best;                  /* 1 when this epoch was the best so far by best_metric */
    int collapsed;             /* 1 when neural collapse was measured after this epoch (.collapse_every) */
    ct_collapse_result collapse; /* its figures (NaN where they could not be computed) */
} ct_fit_epoch;

typedef struct {
    ct_fit_epoch last, best;
    int epochs_run;
    int stopped_early, interrupted;
} ct_fit_result;

typedef struct {
    int epochs;
    const char *loss;          /* a loss spec ("cross_entropy", "focal:gamma=2"); NULL: cross_entropy */
    ct_loss *bound_loss;       /* or a loss the caller parsed (ct_loss_parse), with its counts=auto filled in
                                  (ct_loss_set_counts), and, for a loss with learnable state (center loss's
                                  centres, a registered loss's bind hook), bound to m (ct_loss_bind) BEFORE the
                                  optimizer was made, so that the optimizer trains the state and checkpoints hold
                                  it (it is m's parameters). ct_fit borrows it (and sets its progress); a resume
                                  compares its ct_loss_describe with the checkpoint's. Giving .loss too, or a
                                  loss whose counts=auto is not filled in, is refused (CT_ERR_VALUE). */
    const char *schedule;      /* a schedule spec (optim/registry.h) over the whole run; NULL: constant lr */
    int progress;              /* 1: a live bar on a terminal, lines in a log; 0: silent */
    const char *log_csv;       /* one row per epoch, log_every and eval_every steps: epoch (fractional within
                                  one), step, seconds, lr, the training and validation figures, samples/s,
                                  and the row's kind: epoch, step or eval */
    const char *log_jsonl;
    int log_every;             /* also log every this many steps (0: epochs only) */
    int eval_every;            /* also evaluate every this many steps (a log row "eval"; 0: epochs only) */
    const char *checkpoint;    /* everything to resume from, after every epoch and at an interrupt */
    const char *resume;        /* a checkpoint to continue from (NULL: start) */
    const char *best_model;    /* the model of the best epoch so far (ct_model_save) */
    const char *best_metric;   /* "accuracy" (the default), "f1", "balanced_accuracy" (higher is better),
                                  "nll", "ece", "brier", "val_loss" (lower is better) */
    int patience;              /* stop after this many epochs without a new best (0: never) */
    double ema_decay;          /* > 0: keep an EMA of the weights and evaluate with it */
    int end_with_ema;          /* with ema_decay: a run that completes leaves the averaged weights (the
                                  ones evaluated) in the model, not the last training weights */
    ct_eval_transform transform; /* how logits become probabilities for the metrics; CT_EVAL_AUTO (the
                                    default): the loss's own (ct_loss_eval_transform) */
    /* Neural collapse per epoch (losses/analysis.h, ct_neural_collapse): every collapse_every epochs
     * (0: never) NC1–NC4 of the penultimate features of up to collapse_samples samples (0: 1000) are
     * measured, in evaluation mode without gradients (with the EMA's weights when there is one, as the
     * evaluation), into ct_fit_epoch.collapse and the log's columns nc1, nc2_equinorm, nc2_cos_std,
     * nc2_max_angle, nc3, nc4 (the columns are there only when collapse_every > 0; empty in the other
     * rows). The samples are the first batches of collapse_source (rewound with its seek before each
     * measure, so every epoch measures the same ones; a source without seek is read to its epoch's
     * end), or, when it is NULL, of the training source: rewound to its first batches and put back
     * where it stood after, so the training is the same as without the measure (the training source
     * must seek then). The features and the classifier: `features` maps an input batch to the
     * penultimate features (N, D) (more dimensions are flattened) and `classifier` is the last linear
     * layer (ct_linear_new; its weight (C, D) and bias are W, b), where net(x) = classifier(features(x));
     * when both are NULL and net is a sequential whose last child is a linear (every zoo network but
     * vit_tiny, nn/zoo.h), features are its children before the last and the last is the classifier;
     * anything else is fatal at the call. A class without a sample in the subset, or non-finite
     * features, leaves the figures NaN (the columns empty) and training goes on. */
    int collapse_every;
    int collapse_samples;
    const ct_batch_source *collapse_source;
    ct_module *features, *classifier;
    int dist_shards;           /* deterministic gradient order (optim/dist.h): the global batch cut into this
                                  many virtual shards (a multiple of the number of ranks, dividing the batch),
                                  each one's gradient computed alone and summed in shard order, so the weights
                                  are bit-identical on 1 or N ranks; 0 (the default): one backward per batch,
                                  a plain all-reduce on several ranks */
    void (*on_step)(const ct_fit_step *step, void *user);
    void (*on_epoch)(const ct_fit_epoch *epoch, void *user);
    void *user;
} ct_fit_opts;
#define CT_FIT(...) CT_WITH_DEFAULTS(ct_fit_opts, (.epochs = 1, .progress = 1), __VA_ARGS__)

/* Trains net (whose parameters are m's, updated by opt) on `train` for opts.epochs epochs,
 * evaluating on *val after each (val may be NULL). CT_OK, CT_FIT_INTERRUPTED, or an error code with
 * ct_last_error() (a bad spec, a file that cannot be written, a refused step). *result (may be NULL)
 * holds the last and the best epoch. */
int ct_fit(ct_model *m, ct_module *net, ct_optim *opt, ct_batch_source train, const ct_batch_source *val,
           ct_fit_opts opts, ct_fit_result *result);

/* Evaluates net (m's) on one epoch of a source: the metrics of its logits (as many classes as the
 * logits have columns; metrics.transform CT_EVAL_AUTO: the loss's transform), and the mean loss under
 * `loss` (a spec; NULL: cross_entropy; one with counts=auto is refused, CT_ERR_VALUE) in *mean_loss
 * (may be NULL). Evaluation mode and no gradients while it runs; m's mode is restored after. */
int ct_evaluate(ct_model *m, ct_module *net, ct_batch_source source, const char *loss, ct_metrics_opts metrics,
                ct_metrics_result *out, double *mean_loss);

/* Lookahead-style weight averaging (optim/literature.h) as a ct_fit step callback: .on_step =
 * ct_lookahead_ema_on_step, .user = the ct_lookahead_ema. */
void ct_lookahead_ema_on_step(const ct_fit_step *step, void *lookahead_ema);

#ifndef CT_BUILDING_LIBRARY
#define ct_fit(...) CT_SITE_CALL_CLEARING(ct_fit, __VA_ARGS__)
#define ct_evaluate(...) CT_SITE_CALL_CLEARING(ct_evaluate, __VA_ARGS__)
#endif

#endif
