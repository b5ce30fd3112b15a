/* examples/ctape/run.c — `ctape train`, `ctape resume` and `ctape eval`.
 *
 * A run lives in its folder (--out): args.txt (the train flags, one a line: what resume and eval
 * read back), log.csv and log.jsonl, checkpoint.safetensors (everything to resume from, after every
 * epoch and at Ctrl-C), best.safetensors (the best epoch's weights), model.safetensors (the final
 * weights), the pictures and summary.md (report.c). */
#include "command.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const train_usage =
    "usage: ctape train --data SPEC [--model SPEC] [--loss SPEC] [--optim SPEC] [--sched SPEC] [--epochs N] [--out DIR] ...\n"
    "Trains a model from the zoo on a dataset and writes the log, checkpoints, pictures and summary.md into --out.\n"
    "Specs: ctape list models|losses|optimizers|schedules|datasets. Example:\n"
    "  ctape train --model lenet5 --data fashion-mnist --optim sgd:lr=0.05,momentum=0.9 --sched cosine --epochs 5";

static run_settings default_settings(void) {
    return (run_settings){.model = "lenet5", .loss = "cross_entropy", .optim = "sgd:lr=0.05,momentum=0.9",
                          .sched = "cosine", .best_metric = "accuracy", .epochs = 5, .batch = 128, .seed = 0,
                          .log_every = -1};
}

/* The train flags over *s. */
static int train_flags(run_settings *s, opt_spec *f) {
    const opt_spec flags[] = {
        {"--data", OPT_STRING, &s->data, 0, "SPEC  the dataset: mnist:DIR, fashion-mnist, cifar10:DIR, folder:DIR (required)"},
        {"--model", OPT_STRING, &s->model, 0, "SPEC  the network (default lenet5; ctape list models)"},
        {"--loss", OPT_STRING, &s->loss, 0, "SPEC  the loss (default cross_entropy; ctape list losses)"},
        {"--optim", OPT_STRING, &s->optim, 0, "SPEC  the optimizer (default sgd:lr=0.05,momentum=0.9)"},
        {"--sched", OPT_STRING, &s->sched, 0, "SPEC  the learning-rate schedule over the run (default cosine; none)"},
        {"--epochs", OPT_INT, &s->epochs, 1, "N  passes over the training set (default 5)"},
        {"--batch", OPT_INT, &s->batch, 1, "N  mini-batch size (default 128)"},
        {"--seed", OPT_INT, &s->seed, 0, "N  seed of the initialisation, the order and the augmentation (default 0)"},
        {"--threads", OPT_INT, &s->threads, 0, "N  threads (default: $CTAPE_THREADS, else all cores)"},
        {"--out", OPT_STRING, &s->out, 0, "DIR  the run's folder (default runs/MODEL-DATASET)"},
        {"--crop", OPT_INT, &s->crop, 0, "P  random crop after padding every side by P pixels (default 0: none)"},
        {"--flip", OPT_FLAG, &s->flip, 1, "random horizontal flips"},
        {"--cutout", OPT_INT, &s->cutout, 0, "S  cutout of an SxS square (default 0: none)"},
        {"--no-normalize", OPT_FLAG, &s->no_normalize, 1, "inputs in [0, 1] (default: per-channel mean 0, std 1)"},
        {"--ema", OPT_REAL_MIN, &s->ema, 0, "D  evaluate an exponential moving average of the weights (decay D)"},
        {"--clip", OPT_REAL_MIN, &s->clip, 0, "C  clip the gradient's global norm to C"},
        {"--eval-every", OPT_INT, &s->eval_every, 0, "K  also evaluate every K steps"},
        {"--log-every", OPT_INT, &s->log_every, 0, "K  a log row every K steps (default: 20 per epoch)"},
        {"--patience", OPT_INT, &s->patience, 0, "P  stop after P epochs without a better evaluation"},
        {"--collapse-every", OPT_INT, &s->collapse_every, 0,
         "K  neural collapse NC1-NC4 of the penultimate features every K epochs, in the log (default 0: never)"},
        {"--best-metric", OPT_STRING, &s->best_metric, 0, "M  accuracy, f1, balanced_accuracy, nll, ece, brier, val_loss"},
        {"--force", OPT_FLAG, &s->force, 1, "start over in a folder that holds a run"},
        {"--quiet", OPT_FLAG, &s->quiet, 1, "no progress bar"},
    };
    memcpy(f, flags, sizeof flags);
    return (int)(sizeof flags / sizeof *flags);
}

static int parse_train(int argc, char **argv, int first, run_settings *s) {
    opt_spec f[32];
    const int n = train_flags(s, f);
    if (!opt_parse_from("ctape train", argc, argv, first, f, n, NULL, train_usage, NULL)) return 0;
    if (!s->data) {
        fprintf(stderr, "ctape train: --data is required (e.g. --data fashion-mnist; ctape list datasets)\n");
        return 0;
    }
    return 1;
}

static int make_dirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the final evaluation --------------------------------------------------------------------- */
enum { MAX_WRONG = 40 };

/* Metrics, confusion, reliability bins, per-class figures and the first misclassified samples of
 * one pass over `test` (a loader without shuffle: batch b, row r is sample b·batch + r). */
static int final_evaluate(ct_model *m, ct_module *net, ct_loader *test, int batch, int classes, const char *loss_spec,
                          ct_metrics **keep, final_evaluation *ev) {
    memset(ev, 0, sizeof *ev);
    ct_loss *loss = ct_loss_parse(loss_spec); /* its eval transform: how its logits become probabilities */
    if (!loss) return CT_ERR_VALUE;
    const ct_eval_transform transform = ct_loss_eval_transform(loss);
    ct_loss_free(loss);
    ct_metrics *metrics = ct_metrics_new(classes, CT_METRICS(.transform = transform));
    if (!metrics) return CT_ERR_MEMORY;
    ev->wrong = malloc(MAX_WRONG * sizeof *ev->wrong);
    ev->wrong_predicted = malloc(MAX_WRONG * sizeof *ev->wrong_predicted);
    ev->precision = calloc((size_t)classes, sizeof(double));
    ev->recall = calloc((size_t)classes, sizeof(double));
    ev->f1 = calloc((size_t)classes, sizeof(double));
    ev->support = calloc((size_t)classes, sizeof(long));
    *keep = metrics; /* freed by final_evaluation_free; the confusion matrix points into it */
    if (!ev->wrong || !ev->wrong_predicted || !ev->precision || !ev->recall || !ev->f1 || !ev->support)
        return ct_set_error(CT_ERR_MEMORY, "out of memory for the final evaluation");
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_model_train(m, 0);
    int status = CT_OK;
    ct_batch b;
    while (ct_loader_next(test, &b)) {
        ct_tensor *logits = ct_forward(tape, net, b.x);
        if (status == CT_OK) status = ct_metrics_add(metrics, logits, b.y);
        for (int r = 0; r < b.n && ev->n_wrong < MAX_WRONG; r++) {
            const ct_real *z = logits->data + (size_t)r * classes;
            int best = 0;
            for (int c = 1; c < classes; c++)
                if (z[c] > z[best]) best = c;
            if (best != b.y.data[r]) {
                ev->wrong[ev->n_wrong] = b.index * batch + r;
                ev->wrong_predicted[ev->n_wrong++] = best;
            }
        }
        ct_tape_reset(tape);
    }
    ct_tape_free(tape);
    ev->result = ct_metrics_compute(metrics);
    ev->classes = classes;
    ev->confusion = ct_metrics_confusion(metrics);
    ct_metrics_reliability(metrics, ev->reliability_accuracy, ev->reliability_confidence, ev->reliability_count);
    ct_metrics_per_class(metrics, ev->precision, ev->recall, ev->f1, ev->support);
    return status;
}

static void final_evaluation_free(final_evaluation *ev, ct_metrics *metrics) {
    free(ev->wrong), free(ev->wrong_predicted);
    free(ev->precision), free(ev->recall), free(ev->f1), free(ev->support);
    ct_metrics_free(metrics);
}

/* ---- a run ------------------------------------------------------------------------------------ */
typedef struct {
    dataset_pair data;
    ct_model *m;
    ct_module *net;
    ct_loader *train, *val, *test;
    ct_loader_opts eval_opts;
} run_parts;

static void parts_free(run_parts *p) {
    ct_loader_free(p->train), ct_loader_free(p->val), ct_loader_free(p->test);
    ct_model_free(p->m);
    datasets_free(&p->data);
}

/* The data, the loaders and the model of a run's settings; 0 after the message. */
static int build(const char *command, const run_settings *s, run_parts *p) {
    memset(p, 0, sizeof *p);
    if (s->threads > 0 && ct_set_threads(s->threads) != CT_OK) {
        fprintf(stderr, "ctape %s: %s\n", command, ct_last_error());
        return 0;
    }
    if (datasets_load(s->data, (uint64_t)s->seed, &p->data) != CT_OK) {
        fprintf(stderr, "ctape %s: %s\n", command, ct_last_error());
        return 0;
    }
    const ct_dataset *d = p->data.train;
    ct_loader_opts train = CT_LOADER(.batch = s->batch, .seed = (uint64_t)s->seed, .crop_padding = s->crop,
                                     .hflip = s->flip, .cutout = s->cutout, .prefetch = 1);
    if (!s->no_normalize && d->channels <= CT_LOADER_MAX_CHANNELS) {
        train.normalize = 1;
        ct_dataset_channel_stats(d, train.mean, train.std);
        for (int c = 0; c < d->channels; c++)
            if (!(train.std[c] > 0)) train.std[c] = 1;
    }
    p->eval_opts = CT_LOADER(.batch = 500, .shuffle = 0, .normalize = train.normalize);
    memcpy(p->eval_opts.mean, train.mean, sizeof train.mean), memcpy(p->eval_opts.std, train.std, sizeof train.std);
    p->train = ct_loader_new(d, train);
    p->val = p->data.val ? ct_loader_new(p->data.val, p->eval_opts) : NULL;
    p->test = ct_loader_new(p->data.test, p->eval_opts);
    p->m = ct_model_new();
    ct_model_set_seed(p->m, (uint64_t)s->seed);
    p->net = ct_model_parse(p->m, s->model, CT_SHAPE(d->channels, d->height, d->width), d->classes);
    if (!p->net) {
        fprintf(stderr, "ctape %s: %s\n", command, ct_last_error());
        parts_free(p);
        return 0;
    }
    return 1;
}

static int write_args(const char *dir, int argc, char **argv, int first) {
    char path[1200];
    FILE *f = fopen(path_join(path, sizeof path, dir, "args.txt"), "w");
    if (!f) return 0;
    for (int i = first; i < argc; i++) fprintf(f, "%s\n", argv[i]);
    return fclose(f) == 0;
}

/* args.txt back into an argument vector (owned by *store, freed by the caller). */
static int read_args(const char *dir, char ***argv_out, char **store) {
    char path[1200];
    FILE *f = fopen(path_join(path, sizeof path, dir, "args.txt"), "r");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *store = calloc((size_t)len + 2, 1);
    char **argv = calloc((size_t)len + 2, sizeof *argv);
    const size_t got = *store ? fread(*store, 1, (size_t)len, f) : 0;
    fclose(f);
    int argc = 1;
    argv[0] = "ctape";
    for (char *save = NULL, *line = strtok_r(*store, "\n", &save); line && got; line = strtok_r(NULL, "\n", &save))
        argv[argc++] = line;
    *argv_out = argv;
    return argc;
}

/* The run's loss, made before the optimizer: a loss with learnable state is bound to m (the optimizer
 * then trains it and the checkpoint holds it), counts=auto becomes the training set's class counts.
 * NULL after the message. */
static ct_loss *prepare_loss(const char *command, const char *spec, ct_model *m, const ct_dataset *train) {
    ct_loss *loss = ct_loss_parse(spec);
    long *n = loss ? calloc((size_t)train->classes, sizeof *n) : NULL;
    double *counts = n ? calloc((size_t)train->classes, sizeof *counts) : NULL;
    int ok = counts != NULL;
    if (ok) {
        ct_dataset_class_counts(train, n);
        for (int c = 0; c < train->classes; c++) counts[c] = (double)n[c];
        ok = ct_loss_set_counts(loss, counts, train->classes) == CT_OK &&
             ct_loss_bind(loss, m, "loss", train->classes, train->classes) == CT_OK;
    }
    if (!ok) fprintf(stderr, "ctape %s: %s\n", command, loss && !counts ? "out of memory" : ct_last_error());
    free(n), free(counts);
    if (!ok) ct_loss_free(loss), loss = NULL;
    return loss;
}

/* Trains (or resumes) the run of s in s->out, then evaluates and reports. The exit status. */
static int train_and_report(const run_settings *s, int resuming) {
    const char *command = resuming ? "resume" : "train";
    run_parts p;
    if (!build(command, s, &p)) return 1;
    const int collapse_ok = !s->collapse_every || (!strcmp(p.net->kind, "sequential") && ct_sequential_size(p.net) >= 2 &&
                                                   !strcmp(ct_sequential_child(p.net, ct_sequential_size(p.net) - 1)->kind, "linear"));
    if (!collapse_ok) {
        fprintf(stderr, "ctape %s: --collapse-every needs a network that ends in a linear layer (%s does not)\n", command,
                s->model);
        parts_free(&p);
        return 1;
    }
    ct_loss *loss = prepare_loss(command, s->loss, p.m, p.data.train);
    ct_optim *opt = loss ? ct_optim_parse(p.m, s->optim) : NULL;
    if (!opt) {
        if (loss) fprintf(stderr, "ctape %s: %s\n", command, ct_last_error());
        ct_loss_free(loss);
        parts_free(&p);
        return 1;
    }
    if (s->clip > 0) ct_optim_set_guards(opt, CT_GUARDS(.clip_norm = s->clip));
    char csv[1200], jsonl[1200], ckpt[1200], best[1200], final[1200];
    path_join(csv, sizeof csv, s->out, "log.csv"), path_join(jsonl, sizeof jsonl, s->out, "log.jsonl");
    path_join(ckpt, sizeof ckpt, s->out, "checkpoint.safetensors"), path_join(best, sizeof best, s->out, "best.safetensors");
    path_join(final, sizeof final, s->out, "model.safetensors");
    const int batches = ct_loader_batches_per_epoch(p.train);
    printf("%s\nmodel: %s, %zu parameters; %d threads\n", p.data.describe, s->model, ct_model_num_elements(p.m),
           ct_get_threads());
    const ct_batch_source val = ct_loader_source(p.val ? p.val : p.test);
    const int no_schedule = !strcmp(s->sched, "none") || !strcmp(s->sched, "constant");
    ct_fit_result r;
    const double started = ct_time_now();
    int status = ct_fit(p.m, p.net, opt, ct_loader_source(p.train), &val,
                        CT_FIT(.epochs = s->epochs, .bound_loss = loss, .schedule = no_schedule ? NULL : s->sched,
                               .progress = !s->quiet, .log_csv = csv, .log_jsonl = jsonl,
                               .log_every = s->log_every >= 0 ? s->log_every : (batches >= 20 ? batches / 20 : 1),
                               .eval_every = s->eval_every, .checkpoint = ckpt, .resume = resuming ? ckpt : NULL,
                               .best_model = best, .best_metric = s->best_metric, .patience = s->patience,
                               .ema_decay = s->ema, .end_with_ema = 1, .collapse_every = s->collapse_every),
                        &r);
    const double seconds = ct_time_now() - started;
    if (status == CT_FIT_INTERRUPTED) {
        printf("interrupted after step %ld; the checkpoint is in %s: ctape resume %s continues the run\n",
               ct_optim_steps(opt), ckpt, s->out);
        ct_optim_free(opt);
        ct_loss_free(loss);
        parts_free(&p);
        return 130;
    }
    if (status == CT_OK) status = ct_model_save(p.m, final);
    ct_metrics *metrics = NULL;
    final_evaluation ev;
    if (status == CT_OK)
        status = final_evaluate(p.m, p.net, p.test, p.eval_opts.batch, p.data.test->classes, s->loss, &metrics, &ev);
    if (status == CT_OK) status = report_pictures(s->out, &p.data, &ev);
    if (status == CT_OK)
        status = report_summary(s->out, s, &p.data, &ev, s->model, (long)ct_model_num_elements(p.m), seconds);
    if (status == CT_OK)
        printf("test accuracy %.2f%%  macro F1 %.4f  NLL %.4f  ECE %.4f  (%.0f s; %s/summary.md)\n",
               100 * ev.result.accuracy, ev.result.f1, ev.result.nll, ev.result.ece, seconds, s->out);
    else
        fprintf(stderr, "ctape %s: %s\n", command, ct_last_error());
    if (metrics) final_evaluation_free(&ev, metrics);
    ct_optim_free(opt);
    ct_loss_free(loss);
    parts_free(&p);
    return status == CT_OK ? 0 : 1;
}

/* Every spec checked before the data is read and the folder made: a typo costs nothing. 0 after
 * the message. */
static int check_specs(const run_settings *s) {
    char canonical[512];
    int ok = ct_model_describe(s->model, canonical, sizeof canonical) == CT_OK;
    ct_loss *loss = ok ? ct_loss_parse(s->loss) : NULL;
    ok = ok && loss;
    ct_loss_free(loss);
    ct_schedule sched;
    if (ok && strcmp(s->sched, "none") && strcmp(s->sched, "constant"))
        ok = ct_schedule_parse(s->sched, 0.1, 1000, &sched) == CT_OK;
    if (ok) { /* an optimizer needs parameters: a model of one */
        ct_model *m = ct_model_new();
        ct_model_add_param(m, "w", CT_SHAPE(1));
        ct_optim *opt = ct_optim_parse(m, s->optim);
        ok = opt != NULL;
        ct_optim_free(opt);
        ct_model_free(m);
    }
    if (!ok) fprintf(stderr, "ctape train: %s\n", ct_last_error());
    return ok;
}

int command_train(int argc, char **argv) {
    run_settings s = default_settings();
    if (!parse_train(argc, argv, 2, &s)) return 2;
    if (!check_specs(&s)) return 2;
    char out[1024], ckpt[1200];
    if (!s.out) {
        const char *colon = strchr(s.model, ':'), *dcolon = strchr(s.data, ':');
        snprintf(out, sizeof out, "runs/%.*s-%.*s", (int)(colon ? colon - s.model : (long)strlen(s.model)), s.model,
                 (int)(dcolon ? dcolon - s.data : (long)strlen(s.data)), s.data);
        s.out = out;
    }
    if (file_exists(path_join(ckpt, sizeof ckpt, s.out, "checkpoint.safetensors")) && !s.force) {
        fprintf(stderr, "ctape train: %s holds a run already: ctape resume %s continues it, --force starts over\n", s.out,
                s.out);
        return 1;
    }
    if (make_dirs(s.out) || !write_args(s.out, argc, argv, 2)) {
        fprintf(stderr, "ctape train: cannot write into %s: %s\n", s.out, strerror(errno));
        return 1;
    }
    if (s.force) remove(ckpt);
    return train_and_report(&s, 0);
}

int command_resume(int argc, char **argv) {
    const char *pos[1];
    int n_pos;
    opt_positional given = {pos, 1, 0};
    static const char *const usage = "usage: ctape resume DIR\nContinues the run in DIR (ctape train --out DIR) from "
                                     "its last checkpoint, with the settings it was started with.";
    if (!command_flags("resume", argc, argv, NULL, 0, usage, &given)) return 2;
    n_pos = given.n;
    if (n_pos != 1) {
        fprintf(stderr, "ctape resume: give the run's folder (ctape resume runs/lenet5-mnist)\n");
        return 2;
    }
    char **args, *store = NULL;
    const int n = read_args(pos[0], &args, &store);
    if (n < 0) {
        fprintf(stderr, "ctape resume: %s/args.txt: %s (not a run folder of ctape train?)\n", pos[0], strerror(errno));
        return 1;
    }
    run_settings s = default_settings();
    int status = parse_train(n, args, 1, &s) == 1 ? 0 : 1;
    s.out = pos[0], s.force = 0;
    char ckpt[1200];
    if (status == 0 && !file_exists(path_join(ckpt, sizeof ckpt, s.out, "checkpoint.safetensors"))) {
        fprintf(stderr, "ctape resume: %s has no checkpoint yet (the run stopped before its first epoch ended or "
                        "Ctrl-C): start it again with ctape train --force\n", s.out);
        status = 1;
    }
    if (status == 0) status = train_and_report(&s, 1);
    free(args), free(store);
    return status;
}

int command_eval(int argc, char **argv) {
    const char *weights = NULL, *data = NULL, *pos[1];
    const opt_spec flags[] = {
        {"--weights", OPT_STRING, &weights, 0, "FILE  the weights to evaluate (default DIR/model.safetensors)"},
        {"--data", OPT_STRING, &data, 0, "SPEC  another dataset of the same shape (default: the run's)"},
    };
    int n_pos;
    opt_positional given = {pos, 1, 0};
    static const char *const usage = "usage: ctape eval DIR [--weights FILE] [--data SPEC]\nEvaluates a run's model on "
                                     "the test set: accuracy, top-5, macro F1, NLL, Brier, ECE, and each class.";
    if (!command_flags("eval", argc, argv, flags, 2, usage, &given)) return 2;
    n_pos = given.n;
    if (n_pos != 1) {
        fprintf(stderr, "ctape eval: give the run's folder (ctape eval runs/lenet5-mnist)\n");
        return 2;
    }
    char **args, *store = NULL;
    const int n = read_args(pos[0], &args, &store);
    if (n < 0) {
        fprintf(stderr, "ctape eval: %s/args.txt: %s (not a run folder of ctape train?)\n", pos[0], strerror(errno));
        return 1;
    }
    run_settings s = default_settings();
    int status = parse_train(n, args, 1, &s) == 1 ? 0 : 1;
    if (data) s.data = data;
    run_parts p;
    if (status == 0 && !build("eval", &s, &p)) status = 1;
    if (status == 0) {
        char path[1200];
        if (!weights) weights = path_join(path, sizeof path, pos[0], "model.safetensors");
        ct_metrics *metrics = NULL;
        final_evaluation ev;
        int st = ct_model_load(p.m, weights);
        if (st == CT_OK)
            st = final_evaluate(p.m, p.net, p.test, p.eval_opts.batch, p.data.test->classes, s.loss, &metrics, &ev);
        if (st == CT_OK) {
            printf("%s\n%s on %d test images: accuracy %.2f%%  top-%d %.2f%%  macro F1 %.4f  NLL %.4f  Brier %.4f  "
                   "ECE %.4f\n", p.data.describe, weights, p.data.test->n, 100 * ev.result.accuracy, ev.result.top_k,
                   100 * ev.result.top_k_accuracy, ev.result.f1, ev.result.nll, ev.result.brier, ev.result.ece);
            printf("%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "F1", "support");
            for (int c = 0; c < ev.classes; c++)
                printf("%-14s %9.4f %9.4f %9.4f %8ld\n", p.data.class_names ? p.data.class_names[c] : "", ev.precision[c],
                       ev.recall[c], ev.f1[c], ev.support[c]);
        } else {
            fprintf(stderr, "ctape eval: %s\n", ct_last_error());
            status = 1;
        }
        if (metrics) final_evaluation_free(&ev, metrics);
        parts_free(&p);
    }
    free(args), free(store);
    return status;
}

/* ---- ctape arena ------------------------------------------------------------------------------- */
int command_arena(int argc, char **argv) {
    const char *losses = NULL, *data = NULL, *model = "lenet5", *optim = NULL, *sched = NULL, *out = NULL,
               *conditions = NULL, *imbalance = NULL, *noise = NULL, *baseline = NULL;
    int seeds = 3, epochs = 5, batch = 128, threads = 0, crop = 0, flip = 0, no_normalize = 0, quiet = 0;
    int embedding_dim = 128, knn_k = 20, probe_iterations = 300;
    const opt_spec flags[] = {
        {"--losses", OPT_STRING, &losses, 0, "LIST  loss specs, e.g. \"cross_entropy,focal:gamma=2,poly1:epsilon=1\" or "
                                             "\"cross_entropy;supcon:temperature=0.1\" (required)"},
        {"--data", OPT_STRING, &data, 0, "SPEC  the dataset (required; ctape list datasets)"},
        {"--seeds", OPT_INT, &seeds, 1, "N  seeds 0..N-1 per loss and condition (default 3)"},
        {"--imbalance", OPT_STRING, &imbalance, 0, "P:R  a long-tailed training set: exp:100, step:10"},
        {"--noise", OPT_STRING, &noise, 0, "K:P  label noise: sym:0.4, asym:0.4 (the dataset's class pairs)"},
        {"--conditions", OPT_STRING, &conditions, 0, "LIST  several conditions: \"clean;exp:100;sym:0.4;exp:100+sym:0.2\""},
        {"--model", OPT_STRING, &model, 0, "SPEC  the network (default lenet5)"},
        {"--optim", OPT_STRING, &optim, 0, "SPEC  the optimizer (default sgd:lr=0.05,momentum=0.9)"},
        {"--sched", OPT_STRING, &sched, 0, "SPEC  the schedule (default cosine)"},
        {"--epochs", OPT_INT, &epochs, 1, "N  epochs per run (default 5)"},
        {"--batch", OPT_INT, &batch, 1, "N  mini-batch size (default 128)"},
        {"--crop", OPT_INT, &crop, 0, "P  random crop after padding by P"},
        {"--flip", OPT_FLAG, &flip, 1, "random horizontal flips"},
        {"--no-normalize", OPT_FLAG, &no_normalize, 1, "inputs in [0, 1]"},
        {"--baseline", OPT_STRING, &baseline, 0, "SPEC  the loss the others are compared with (default: the first)"},
        {"--embedding-dim", OPT_INT, &embedding_dim, 1, "D  the network's output width for embedding losses (default 128)"},
        {"--knn-k", OPT_INT, &knn_k, 1, "K  neighbours of the kNN accuracy of embedding losses (default 20)"},
        {"--probe-iterations", OPT_INT, &probe_iterations, 1, "N  gradient steps of their linear probe (default 300)"},
        {"--threads", OPT_INT, &threads, 0, "N  threads (default: $CTAPE_THREADS, else all cores)"},
        {"--out", OPT_STRING, &out, 0, "DIR  runs.csv and table.md (required; an arena there continues)"},
        {"--quiet", OPT_FLAG, &quiet, 1, "one line per run, no progress bar"},
    };
    static const char *const usage =
        "usage: ctape arena --losses LIST --data SPEC --out DIR [--seeds N] [--imbalance exp:100] [--noise sym:0.4] "
        "[--model SPEC] [--epochs N] ...\nRaces losses over seeds and data conditions: one training run each, runs.csv "
        "and a table of means with 95% intervals and paired differences from the baseline in DIR/table.md.\n"
        "Embedding losses (supcon, ntxent, circle, circle_class, triplet, center) train a network of --embedding-dim "
        "outputs and are judged by kNN and linear-probe accuracy on its frozen features (optim/arena.h).";
    if (!command_flags("arena", argc, argv, flags, (int)(sizeof flags / sizeof *flags), usage, NULL)) return 2;
    if (!losses || !data || !out) {
        fprintf(stderr, "ctape arena: --losses, --data and --out are required (ctape arena --help)\n");
        return 2;
    }
    if (threads > 0 && ct_set_threads(threads) != CT_OK) {
        fprintf(stderr, "ctape arena: %s\n", ct_last_error());
        return 2;
    }
    char condition[256];
    if (!conditions) {
        snprintf(condition, sizeof condition, "%s%s%s", imbalance ? imbalance : "", imbalance && noise ? "+" : "",
                 noise ? noise : "");
        conditions = imbalance || noise ? condition : "clean";
    }
    dataset_pair d;
    if (datasets_load(data, 0, &d) != CT_OK) {
        fprintf(stderr, "ctape arena: %s\n", ct_last_error());
        return 1;
    }
    const int cifar = !strcmp(d.name, "cifar10"), digits = !strcmp(d.name, "mnist");
    if (make_dirs(out)) {
        fprintf(stderr, "ctape arena: cannot make %s: %s\n", out, strerror(errno));
        datasets_free(&d);
        return 1;
    }
    const int status = ct_arena_run(d.train, d.test,
                                    CT_ARENA(.losses = losses, .conditions = conditions, .seeds = seeds, .model = model,
                                             .optim = optim, .schedule = sched, .epochs = epochs, .batch = batch,
                                             .crop_padding = crop, .hflip = flip, .normalize = !no_normalize,
                                             .flips = cifar ? ct_cifar10_flips : digits ? ct_mnist_flips : NULL,
                                             .n_flips = cifar || digits ? 5 : 0, .baseline = baseline, .out = out,
                                             .progress = quiet ? 2 : 1, .embedding_dim = embedding_dim, .knn_k = knn_k,
                                             .probe_iterations = probe_iterations));
    datasets_free(&d);
    if (status != CT_OK) {
        fprintf(stderr, "ctape arena: %s\n", ct_last_error());
        return 1;
    }
    printf("ctape arena: %s/runs.csv, %s/table.md and its pictures\n", out, out);
    return 0;
}
