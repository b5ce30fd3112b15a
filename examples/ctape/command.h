/* examples/ctape/command.h — the `ctape` command: train, evaluate, resume, compare and list without
 * writing C. What its parts share: the examples' flag parser (examples/options.h), datasets by spec (datasets.c), a
 * run's settings and files (run.c), and the pictures and summary of a run (report.c). */
#ifndef CTAPE_COMMAND_H
#define CTAPE_COMMAND_H

#include "ctape.h"
#include "../options.h"

#include <stdio.h>

/* ---- flags: the examples' option parser (examples/options.h) ------------------------------------ */
/* Parses the flags of `ctape COMMAND` (argv[2..]) with positional arguments into *positional (NULL:
 * none); --help prints usage_text and the flags. 1, or 0 after the message. */
static inline int command_flags(const char *command, int argc, char **argv, const opt_spec *flags, int n,
                                const char *usage_text, opt_positional *positional) {
    char prog[64];
    snprintf(prog, sizeof prog, "ctape %s", command);
    return opt_parse_from(prog, argc, argv, 2, flags, n, NULL, usage_text, positional);
}

/* "DIR/name" into buf. */
static inline const char *path_join(char *buf, size_t len, const char *dir, const char *name) {
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* ---- datasets (datasets.c) ------------------------------------------------------------------- */
/* "mnist:DIR", "fashion-mnist", "cifar10:DIR", "folder:DIR", each with ":subset=N,val=F,size=S". */
typedef struct {
    ct_dataset *train, *val, *test; /* val: the held-out part of train with val=F, else NULL */
    char name[64];            /* "mnist" */
    char describe[600];       /* what was loaded, for the summary */
    const char *const *class_names; /* NULL: 0, 1, ... */
} dataset_pair;

int datasets_load(const char *spec, uint64_t seed, dataset_pair *out); /* CT_OK or an error (message set) */
void datasets_free(dataset_pair *d);
void datasets_list(FILE *out);

/* ---- a training run (run.c) ------------------------------------------------------------------ */
typedef struct {
    const char *model, *data, *loss, *optim, *sched, *out, *best_metric;
    int epochs, batch, threads, crop, flip, cutout, no_normalize, eval_every, log_every, patience, force, quiet;
    int seed, collapse_every;
    double ema, clip;
} run_settings;

int command_train(int argc, char **argv);
int command_resume(int argc, char **argv);
int command_eval(int argc, char **argv);
int command_arena(int argc, char **argv);

/* ---- pictures and summary (report.c) ---------------------------------------------------------- */
/* What the final evaluation of a run found, for the pictures and the summary. */
typedef struct {
    ct_metrics_result result;
    const long *confusion;     /* classes × classes */
    int classes;
    double reliability_accuracy[15], reliability_confidence[15];
    long reliability_count[15];
    double *precision, *recall, *f1;
    long *support;
    int *wrong;                /* indices into the test set of misclassified samples, with their predictions */
    int *wrong_predicted;
    int n_wrong;
} final_evaluation;

int report_pictures(const char *dir, const dataset_pair *data, const final_evaluation *ev);
int report_summary(const char *dir, const run_settings *s, const dataset_pair *data, const final_evaluation *ev,
                   const char *model_spec, long parameters, double seconds);
int command_plot(int argc, char **argv);

#endif
