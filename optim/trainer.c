/* optim/trainer.c — ct_fit and ct_evaluate (optim/trainer.h). */
#define CT_BUILDING_LIBRARY
#include "trainer.h"
#include "registry.h"
#include "dist.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Ctrl-C: a flag the loop reads at each step boundary ------------------------------------- */
static volatile sig_atomic_t interrupt_requested;
static void on_sigint(int sig) { (void)sig, interrupt_requested = 1; }

/* ---- evaluation ------------------------------------------------------------------------------ */
/* ct_evaluate with a parsed loss (ct_fit's own, which may hold learnable state and progress). */
static int evaluate_with(ct_model *m, ct_module *net, ct_batch_source source, ct_loss *loss, ct_metrics_opts mo,
                         ct_metrics_result *out, double *mean_loss) {
    if (mo.transform == CT_EVAL_AUTO) mo.transform = ct_loss_eval_transform(loss); /* the loss's own */
    ct_metrics *metrics = NULL;
    ct_tape *tape = ct_tape_new();
    const int was = net->training;
    ct_model_train(m, 0);
    ct_tape_grad_enabled(tape, 0);
    double total = 0;
    long seen = 0;
    int status = CT_OK;
    ct_tensor *x;
    ct_labels y;
    while (source.next(source.state, &x, &y)) {
        ct_tensor *logits = ct_forward(tape, net, x);
        CT_CHECK(logits->ndim == 2, "ct_evaluate", "the net's output must be logits (N, C), got %d dimensions", logits->ndim);
        if (!metrics && status == CT_OK && !(metrics = ct_metrics_new(logits->shape[1], mo))) status = CT_ERR_MEMORY;
        if (status == CT_OK) status = ct_metrics_add(metrics, logits, y);
        total += ct_loss_apply(tape, loss, logits, y)->data[0] * y.n;
        seen += y.n;
        ct_tape_reset(tape);
    }
    ct_model_train(m, was);
    if (metrics) *out = ct_metrics_compute(metrics);
    else memset(out, 0, sizeof *out);
    if (mean_loss) *mean_loss = seen ? total / (double)seen : NAN;
    ct_metrics_free(metrics);
    ct_tape_free(tape);
    return status;
}

int ct_evaluate(ct_model *m, ct_module *net, ct_batch_source source, const char *loss_spec, ct_metrics_opts mo,
                ct_metrics_result *out, double *mean_loss) {
    CT_CHECK(m && net && source.next && out, "ct_evaluate", "model, net, a source and out must be given");
    ct_loss *loss = ct_loss_parse(loss_spec ? loss_spec : "cross_entropy");
    if (!loss) return CT_ERR_VALUE;
    if (ct_loss_needs_counts(loss)) {
        ct_loss_free(loss);
        return ct_set_error(CT_ERR_VALUE, "ct_evaluate: loss \"%s\" has counts=auto, which a spec alone cannot fill in: "
                            "give the counts", loss_spec);
    }
    const int status = evaluate_with(m, net, source, loss, mo, out, mean_loss);
    ct_loss_free(loss);
    return status;
}

/* ---- logs -------------------------------------------------------------------------------------- */
typedef struct {
    FILE *csv, *jsonl;
    const char *csv_path, *jsonl_path;
    double start; /* ct_time_now() at the start of this call, less the seconds of the run before it */
    int collapse; /* the neural-collapse columns are there */
} logs;

static const char *const columns[] = {"epoch", "step", "seconds", "lr", "train_loss", "train_accuracy", "val_loss",
                                      "val_accuracy", "val_top_k", "val_f1", "val_nll", "val_brier", "val_ece",
                                      "samples_per_second", "row"};
enum { N_COLUMNS = sizeof columns / sizeof *columns, N_NUMBERS = N_COLUMNS - 1 };
enum { ROW_EPOCH, ROW_STEP, ROW_EVAL };
/* with .collapse_every, between samples_per_second and row */
static const char *const collapse_columns[] = {"nc1", "nc2_equinorm", "nc2_cos_std", "nc2_max_angle", "nc3", "nc4"};
enum { N_COLLAPSE = sizeof collapse_columns / sizeof *collapse_columns };
static const char *const row_kinds[] = {"epoch", "step", "eval"};

/* The step of a log line: CSV's second field, JSON Lines' "step"; -1 for a header or a line without one. */
static long line_step(const char *line, int jsonl) {
    const char *p = jsonl ? strstr(line, "\"step\": ") : strchr(line, ',');
    if (!p) return -1;
    p += jsonl ? 8 : 1;
    char *end;
    const double v = strtod(p, &end);
    return end == p ? -1 : (long)v;
}

/* A resumed run's log: the lines of the run up to its checkpoint (step <= steps) are kept, the
 * ones written after it (by a run killed later) dropped, so the log reads as one run. The kept
 * text goes to a temporary file renamed over the log. 1 when a log with its header was kept. */
static int keep_log_until(const char *path, long steps, int jsonl) {
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.resume-tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return 0;
    }
    char line[4096];
    int header = 0, lineno = 0;
    while (fgets(line, sizeof line, in)) {
        const long step = line_step(line, jsonl);
        if (!jsonl && lineno++ == 0) header = !strncmp(line, "epoch,step,", 11);
        if ((!jsonl && lineno == 1) || (step >= 0 && step <= steps)) fputs(line, out);
    }
    fclose(in);
    if (fclose(out) || rename(tmp, path)) {
        remove(tmp);
        return 0;
    }
    return jsonl || header;
}

static int open_logs(logs *l, const ct_fit_opts *o, int resuming, long steps) {
    memset(l, 0, sizeof *l);
    l->csv_path = o->log_csv, l->jsonl_path = o->log_jsonl, l->start = ct_time_now();
    l->collapse = o->collapse_every > 0;
    const int csv_kept = resuming && o->log_csv && keep_log_until(o->log_csv, steps, 0);
    if (resuming && o->log_jsonl) keep_log_until(o->log_jsonl, steps, 1);
    if (o->log_csv && !(l->csv = fopen(o->log_csv, resuming ? "a" : "w")))
        return ct_set_error(CT_ERR_IO, "ct_fit: cannot write the log %s", o->log_csv);
    if (o->log_jsonl && !(l->jsonl = fopen(o->log_jsonl, resuming ? "a" : "w"))) {
        if (l->csv) fclose(l->csv);
        return ct_set_error(CT_ERR_IO, "ct_fit: cannot write the log %s", o->log_jsonl);
    }
    for (int k = 0; l->csv && !csv_kept && k < N_NUMBERS; k++) fprintf(l->csv, "%s,", columns[k]);
    for (int k = 0; l->csv && !csv_kept && l->collapse && k < N_COLLAPSE; k++) fprintf(l->csv, "%s,", collapse_columns[k]);
    if (l->csv && !csv_kept) fprintf(l->csv, "%s\n", columns[N_NUMBERS]);
    return CT_OK;
}

/* One row: an epoch's summary, the running training figures mid-epoch (ROW_STEP), or those with a
 * mid-epoch evaluation (ROW_EVAL); numbers in the C locale whatever the program's. A field without
 * a value is empty (CSV) or null (JSON). */
static int log_row(logs *l, const ct_fit_epoch *e, double epoch, int kind) {
    if (!l->csv && !l->jsonl) return CT_OK;
    const double v[N_NUMBERS] = {epoch, (double)e->steps, ct_time_now() - l->start, e->lr, e->train_loss,
                                 e->train_accuracy, e->evaluated ? e->val_loss : NAN,
                                 e->evaluated ? e->val.accuracy : NAN, e->evaluated ? e->val.top_k_accuracy : NAN,
                                 e->evaluated ? e->val.f1 : NAN, e->evaluated ? e->val.nll : NAN,
                                 e->evaluated ? e->val.brier : NAN, e->evaluated ? e->val.ece : NAN,
                                 e->samples_per_second};
    const ct_collapse_result *c = &e->collapse;
    const double nc[N_COLLAPSE] = {c->nc1, c->equinorm, c->cos_std, c->max_angle, c->nc3, c->nc4};
    const int n = N_NUMBERS + (l->collapse ? N_COLLAPSE : 0);
    const ct_c_numbers numbers = ct_c_numbers_begin();
    for (int k = 0; l->csv && k < n; k++) {
        const double x = k < N_NUMBERS ? v[k] : e->collapsed ? nc[k - N_NUMBERS] : NAN;
        if (isfinite(x)) fprintf(l->csv, "%.8g", x);
        fputs(",", l->csv);
    }
    if (l->csv) fprintf(l->csv, "%s\n", row_kinds[kind]);
    for (int k = 0; l->jsonl && k < n; k++) {
        const double x = k < N_NUMBERS ? v[k] : e->collapsed ? nc[k - N_NUMBERS] : NAN;
        fprintf(l->jsonl, "%s\"%s\": ", k ? ", " : "{", k < N_NUMBERS ? columns[k] : collapse_columns[k - N_NUMBERS]);
        if (isfinite(x)) fprintf(l->jsonl, "%.8g", x);
        else fputs("null", l->jsonl);
    }
    if (l->jsonl) fprintf(l->jsonl, ", \"row\": \"%s\"}\n", row_kinds[kind]);
    ct_c_numbers_end(numbers);
    if ((l->csv && fflush(l->csv)) || (l->jsonl && fflush(l->jsonl)))
        return ct_set_error(CT_ERR_IO, "ct_fit: cannot write the log %s", l->csv ? l->csv_path : l->jsonl_path);
    return CT_OK;
}

static void close_logs(logs *l) {
    if (l->csv) fclose(l->csv);
    if (l->jsonl) fclose(l->jsonl);
}

/* ---- keep-best ---------------------------------------------------------------------------------- */
/* The metric's value and whether higher is better; fatal on an unknown name (a programmer error). */
static double metric_of(const char *name, const ct_fit_epoch *e, int *higher) {
    *higher = 1;
    if (!name || !strcmp(name, "accuracy")) return e->val.accuracy;
    if (!strcmp(name, "f1")) return e->val.f1;
    if (!strcmp(name, "balanced_accuracy")) return e->val.balanced_accuracy;
    *higher = 0;
    if (!strcmp(name, "nll")) return e->val.nll;
    if (!strcmp(name, "ece")) return e->val.ece;
    if (!strcmp(name, "brier")) return e->val.brier;
    if (!strcmp(name, "val_loss")) return e->val_loss;
    ct_fatal("ct_fit", ".best_metric \"%s\": give accuracy, f1, balanced_accuracy, nll, ece, brier or val_loss", name);
}

static int better(const ct_fit_opts *o, const ct_fit_epoch *now, const ct_fit_epoch *best, int have_best) {
    int higher;
    const double v = metric_of(o->best_metric, now, &higher), b = have_best ? metric_of(o->best_metric, best, &higher) : NAN;
    if (!isfinite(v)) return 0;
    return !have_best || !isfinite(b) || (higher ? v > b : v < b);
}

/* ---- the run's state, and its place in a checkpoint ---------------------------------------------- */
/* Where the run is and what it has summed so far: everything besides the model, the optimizer and
 * the EMA that a resumed run needs to continue exactly. */
typedef struct {
    int epoch, batch;        /* batches done in epoch `epoch` (0-based) */
    double loss_sum;         /* this epoch's running sums */
    double correct, samples;
    double val_passes;       /* evaluations run (each one epoch of the validation source) */
    int have_best, since_best;
    ct_fit_epoch best;
    double seconds;          /* wall time of the run so far */
    double ema_updates;
} fit_position;

/* The numbers a checkpoint holds as "ctape.fit.<name>", each read and written exactly. */
typedef struct {
    const char *name;
    size_t offset;
    char type; /* 'i' int, 'd' double, 'l' long */
} position_field;

#define FIELD(name, member, type) {name, offsetof(fit_position, member), type}
static const position_field position_fields[] = {
    FIELD("epoch", epoch, 'i'), FIELD("batch", batch, 'i'), FIELD("loss_sum", loss_sum, 'd'),
    FIELD("correct", correct, 'd'), FIELD("samples", samples, 'd'), FIELD("val_passes", val_passes, 'd'),
    FIELD("have_best", have_best, 'i'), FIELD("since_best", since_best, 'i'), FIELD("seconds", seconds, 'd'),
    FIELD("ema_updates", ema_updates, 'd'),
    FIELD("best.epoch", best.epoch, 'i'), FIELD("best.steps", best.steps, 'l'),
    FIELD("best.train_loss", best.train_loss, 'd'), FIELD("best.train_accuracy", best.train_accuracy, 'd'),
    FIELD("best.lr", best.lr, 'd'), FIELD("best.val_loss", best.val_loss, 'd'),
    FIELD("best.val.n", best.val.n, 'l'), FIELD("best.val.nonfinite", best.val.nonfinite, 'l'),
    FIELD("best.val.top_k", best.val.top_k, 'i'), FIELD("best.val.accuracy", best.val.accuracy, 'd'),
    FIELD("best.val.top_k_accuracy", best.val.top_k_accuracy, 'd'),
    FIELD("best.val.balanced_accuracy", best.val.balanced_accuracy, 'd'),
    FIELD("best.val.precision", best.val.precision, 'd'), FIELD("best.val.recall", best.val.recall, 'd'),
    FIELD("best.val.f1", best.val.f1, 'd'), FIELD("best.val.nll", best.val.nll, 'd'),
    FIELD("best.val.brier", best.val.brier, 'd'), FIELD("best.val.ece", best.val.ece, 'd'),
    FIELD("best.val.ece_equal_mass", best.val.ece_equal_mass, 'd'),
};
#undef FIELD
enum { N_FIELDS = sizeof position_fields / sizeof *position_fields };

/* What must match between the run that wrote a checkpoint and the one resuming from it. */
typedef struct {
    char loss[256], schedule[256];
    int epochs, batches;
} fit_identity;

enum { N_META = N_FIELDS + 4 };

typedef struct {
    char keys[N_META][48], values[N_META][300];
    const char *pairs[2 * N_META + 1];
} fit_metadata;

static void build_metadata(const fit_position *p, const fit_identity *id, fit_metadata *md) {
    char num[32];
    int n = 0;
    for (int k = 0; k < N_FIELDS; k++, n++) {
        const char *at = (const char *)p + position_fields[k].offset;
        const double v = position_fields[k].type == 'i'   ? *(const int *)at
                         : position_fields[k].type == 'l' ? (double)*(const long *)at
                                                          : *(const double *)at;
        snprintf(md->keys[n], sizeof md->keys[n], "ctape.fit.%s", position_fields[k].name);
        /* NaN and ±Inf (a best epoch's NaN ECE) as text: the checkpoint's own number format has none */
        snprintf(md->values[n], sizeof md->values[n], "%s",
                 isnan(v) ? "nan" : isinf(v) ? (v > 0 ? "inf" : "-inf") : ct_safetensors_format_number(v, num));
    }
    snprintf(md->keys[n], sizeof md->keys[n], "ctape.fit.loss"), snprintf(md->values[n++], 300, "%s", id->loss);
    snprintf(md->keys[n], sizeof md->keys[n], "ctape.fit.schedule"), snprintf(md->values[n++], 300, "%s", id->schedule);
    snprintf(md->keys[n], sizeof md->keys[n], "ctape.fit.epochs"), snprintf(md->values[n++], 300, "%d", id->epochs);
    snprintf(md->keys[n], sizeof md->keys[n], "ctape.fit.batches"), snprintf(md->values[n++], 300, "%d", id->batches);
    for (int k = 0; k < n; k++) md->pairs[2 * k] = md->keys[k], md->pairs[2 * k + 1] = md->values[k];
    md->pairs[2 * n] = NULL;
}

typedef struct {
    const fit_identity *id;
    fit_position *out;
} resume_check;

static int read_number(const ct_safetensors *f, const char *path, const char *key, double *out) {
    const char *v = ct_safetensors_metadata(f, key);
    if (!v) return ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"%s\" (a checkpoint of ct_fit is needed to resume)", path, key);
    if (!strcmp(v, "nan") || !strcmp(v, "inf") || !strcmp(v, "-inf")) {
        *out = !strcmp(v, "nan") ? NAN : v[0] == '-' ? -INFINITY : INFINITY;
        return CT_OK;
    }
    if (ct_safetensors_parse_number(v, out) != CT_OK)
        return ct_set_error(CT_ERR_FORMAT, "%s: metadata \"%s\" = \"%s\" is not a number", path, key, v);
    return CT_OK;
}

/* The checkpoint's run against this one (the same loss, schedule, epochs and batches per epoch, or
 * the resumed run would not be the one that was interrupted), then its position, range-checked. */
static int check_resume(const ct_safetensors *f, const char *path, void *user) {
    resume_check *c = user;
    const char *loss = ct_safetensors_metadata(f, "ctape.fit.loss"), *sched = ct_safetensors_metadata(f, "ctape.fit.schedule");
    double epochs, batches;
    int rc;
    if (!loss || !sched)
        return ct_set_error(CT_ERR_FORMAT, "%s: not a checkpoint written by ct_fit (no \"ctape.fit.*\" metadata)", path);
    if ((rc = read_number(f, path, "ctape.fit.epochs", &epochs)) || (rc = read_number(f, path, "ctape.fit.batches", &batches)))
        return rc;
    if (strcmp(loss, c->id->loss) || strcmp(sched, c->id->schedule) || epochs != c->id->epochs || batches != c->id->batches)
        return ct_set_error(CT_ERR_VALUE, "%s: written by a run with loss \"%s\", schedule \"%s\", %g epochs of %g batches; "
                            "this one has \"%s\", \"%s\", %d epochs of %d batches (resume with the same settings)",
                            path, loss, sched, epochs, batches, c->id->loss, c->id->schedule, c->id->epochs, c->id->batches);
    fit_position p = {0};
    for (int k = 0; k < N_FIELDS; k++) {
        char key[64];
        double v;
        snprintf(key, sizeof key, "ctape.fit.%s", position_fields[k].name);
        if ((rc = read_number(f, path, key, &v))) return rc;
        const int is_count = position_fields[k].type != 'd' || !strcmp(position_fields[k].name, "correct") ||
                             !strcmp(position_fields[k].name, "samples") || !strcmp(position_fields[k].name, "val_passes") ||
                             !strcmp(position_fields[k].name, "ema_updates");
        if (is_count && !(v >= 0 && v <= 2e9 && v == floor(v)) && strncmp(position_fields[k].name, "best.", 5))
            return ct_set_error(CT_ERR_VALUE, "%s: metadata \"%s\" = %g must be a whole number in [0, 2e9]", path, key, v);
        char *at = (char *)&p + position_fields[k].offset;
        if (position_fields[k].type == 'i') *(int *)at = (int)v;
        else if (position_fields[k].type == 'l') *(long *)at = (long)v;
        else *(double *)at = v;
    }
    if (p.epoch > c->id->epochs || p.batch > c->id->batches || p.samples < p.correct)
        return ct_set_error(CT_ERR_VALUE, "%s: position epoch %d, batch %d is outside the run (%d epochs of %d batches)",
                            path, p.epoch, p.batch, c->id->epochs, c->id->batches);
    *c->out = p;
    return CT_OK;
}

/* ---- the loop ----------------------------------------------------------------------------------- */
typedef struct {
    ct_model *m;
    ct_module *net;
    ct_optim *opt;
    ct_loss *loss;
    int owns_loss;          /* parsed from .loss (freed at the end), not the caller's .bound_loss */
    ct_module *features, *classifier; /* the split of .collapse_every (features NULL: net's children but the last) */
    ct_schedule schedule;
    int scheduled;
    ct_ema *ema;
    ct_tape *tape;
    logs log;
    fit_identity id;
    fit_position pos;
    ct_batch_source train;
    const ct_batch_source *val;
    const ct_fit_opts *o;
    char **ema_names;       /* "ema.<parameter>", the EMA's averages in a checkpoint */
    ct_tensor **ema_tensors;
    int world;              /* ranks (core/dist.h); 1 in one process */
    ct_grad_sync *sync;     /* on several ranks or with .dist_shards: the gradients' average */
    int interrupted;        /* a Ctrl-C on any rank, as all ranks agreed at the last step boundary */
} fit_state;

/* Whether to stop for Ctrl-C: on several ranks, the ranks agree (a signal on any rank stops them
 * all at the same step), so every rank must call this at the same points. */
static int interrupt_agreed(fit_state *f) {
    if (f->world == 1) return f->interrupted = interrupt_requested != 0;
    double any = interrupt_requested != 0;
    if (ct_dist_allreduce_sum_f64(&any, 1) == CT_OK && any > 0) f->interrupted = 1;
    return f->interrupted;
}

/* Forward, loss and backward of one batch; with .dist_shards, of each of this rank's virtual shards in
 * turn (its rows of x and y), each gradient kept aside (optim/dist.h). Then the gradient averaged over
 * the ranks. The loss's value (the shards' mean) in *value, the correct predictions in *correct. */
static int forward_backward(fit_state *f, ct_tensor *x, ct_labels y, double *value, double *correct) {
    const int J = f->sync ? ct_grad_sync_local_shards(f->sync) : 1;
    const int deterministic = f->o->dist_shards > 0;
    CT_CHECK(!deterministic || (y.n % J == 0 && x->shape[0] % J == 0), "ct_fit",
             ".dist_shards %d over %d ranks cuts each rank's batch into %d shards: its %d samples do not split evenly "
             "(give a global batch that is a multiple of .dist_shards)", f->o->dist_shards, f->world, J, y.n);
    *value = 0, *correct = 0;
    for (int j = 0; j < (deterministic ? J : 1); j++) {
        ct_tensor part = *x; /* rows [j·n/J, (j+1)·n/J) of x: a borrowed view */
        ct_labels py = y;
        if (deterministic) {
            const int rows = x->shape[0] / J, n = y.n / J;
            const size_t row = x->size / (size_t)x->shape[0];
            part.data = x->data + (size_t)j * rows * row;
            part.shape[0] = rows, part.size = (size_t)rows * row;
            py = CT_LABELS(y.data + (size_t)j * n, n);
        }
        ct_tensor *logits = ct_forward(f->tape, f->net, &part);
        ct_tensor *loss = ct_loss_apply(f->tape, f->loss, logits, py);
        *value += loss->data[0];
        *correct += ct_count_correct(logits, py);
        ct_backward(f->tape, loss);
        if (deterministic) {
            ct_grad_sync_keep(f->sync, j);
            ct_tape_reset(f->tape);
        }
    }
    if (deterministic) *value /= J;
    return f->sync ? ct_grad_sync_average(f->sync) : CT_OK;
}

static int save_checkpoint(fit_state *f) {
    if (!f->o->checkpoint) return CT_OK;
    fit_metadata md;
    f->pos.seconds = ct_time_now() - f->log.start;
    f->pos.ema_updates = f->ema ? (double)ct_ema_updates(f->ema) : 0;
    build_metadata(&f->pos, &f->id, &md);
    const ct_checkpoint_extra extra = {.n_tensors = f->ema ? ct_model_param_count(f->m) : 0,
                                       .names = (const char *const *)f->ema_names,
                                       .tensors = f->ema_tensors,
                                       .metadata = md.pairs};
    return ct_checkpoint_save_extra(f->opt, f->o->checkpoint, extra);
}

/* Model, optimizer, random streams, EMA and position from o->resume; the sources moved to where the
 * interrupted run left them. */
static int resume(fit_state *f) {
    if (!f->train.seek || (f->val && !f->val->seek))
        return ct_set_error(CT_ERR_VALUE, "ct_fit: resuming needs sources that can seek (ct_loader_source gives one)");
    resume_check c = {&f->id, &f->pos};
    const ct_checkpoint_extra extra = {.n_tensors = f->ema ? ct_model_param_count(f->m) : 0,
                                       .names = (const char *const *)f->ema_names,
                                       .tensors = f->ema_tensors,
                                       .check = check_resume,
                                       .user = &c};
    int rc = ct_checkpoint_load_extra(f->opt, f->o->resume, extra);
    if (rc) return rc;
    if (f->ema) ct_ema_set_updates(f->ema, (long)f->pos.ema_updates);
    if ((rc = f->train.seek(f->train.state, f->pos.epoch, f->pos.batch))) return rc;
    if (f->val && (rc = f->val->seek(f->val->state, (int)f->pos.val_passes, 0))) return rc;
    return CT_OK;
}

/* One evaluation on the validation source (with the EMA's weights when there is one). */
static int evaluate(fit_state *f, ct_fit_epoch *e) {
    if (f->ema) ct_ema_swap(f->ema);
    const int status = evaluate_with(f->m, f->net, *f->val, f->loss, CT_METRICS(.transform = f->o->transform), &e->val,
                                     &e->val_loss);
    if (f->ema) ct_ema_swap(f->ema);
    f->pos.val_passes++;
    e->evaluated = status == CT_OK;
    return status;
}

/* After each step: the callback, the step log row, the mid-epoch evaluation. */
static int after_step(fit_state *f, int epoch, int batches, const ct_tensor *x, ct_labels y, double value, double rate) {
    const ct_fit_opts *o = f->o;
    const long steps = ct_optim_steps(f->opt);
    const double lr = ct_optim_lr(f->opt);
    if (o->on_step) {
        const ct_fit_step s = {steps, epoch, f->pos.batch - 1, x, y, value, lr};
        o->on_step(&s, o->user);
    }
    const int eval_now = o->eval_every > 0 && f->val && steps % o->eval_every == 0 && f->pos.batch < batches;
    if (!(o->log_every > 0 && steps % o->log_every == 0) && !eval_now) return CT_OK;
    ct_fit_epoch row = {.steps = steps, .lr = lr, .train_loss = f->pos.loss_sum / f->pos.batch,
                        .train_accuracy = f->pos.correct / f->pos.samples, .samples_per_second = rate};
    int status = eval_now ? evaluate(f, &row) : CT_OK;
    if (status == CT_OK)
        status = log_row(&f->log, &row, epoch + (batches ? (double)f->pos.batch / batches : 0), eval_now ? ROW_EVAL : ROW_STEP);
    return status;
}

/* The rest of epoch `epoch` from f->pos.batch on (all of it unless resuming mid-epoch); fills e's
 * training figures. */
static int train_epoch(fit_state *f, int epoch, ct_fit_epoch *e) {
    const ct_fit_opts *o = f->o;
    const int batches = f->id.batches;
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o->epochs);
    ct_progress *bar = o->progress ? ct_progress_new(label, batches) : NULL;
    const double started = ct_time_now(), samples_before = f->pos.samples;
    int status = CT_OK;
    ct_tensor *x;
    ct_labels y;
    ct_model_train(f->m, 1);
    while (status == CT_OK && !interrupt_agreed(f) && f->train.next(f->train.state, &x, &y)) {
        if (f->scheduled) ct_optim_schedule(f->opt, &f->schedule);
        /* the fraction of the run done before this step, for losses that change over training */
        const double total = (double)o->epochs * batches;
        ct_loss_set_progress(f->loss, total > 0 ? fmin(1, ((double)epoch * batches + f->pos.batch) / total)
                                                : (double)epoch / o->epochs);
        double value, stats[2] = {0, y.n};
        status = forward_backward(f, x, y, &value, &stats[0]);
        /* the figures of the global batch: the mean of the ranks' losses, the sums of their counts */
        if (status == CT_OK && f->world > 1) {
            double all[3] = {value, stats[0], stats[1]};
            status = ct_dist_allreduce_sum_f64(all, 3);
            value = all[0] / f->world, stats[0] = all[1], stats[1] = all[2];
        }
        f->pos.correct += stats[0];
        f->pos.samples += stats[1];
        const int stepped = status == CT_OK ? ct_optim_step(f->opt) : status;
        ct_tape_reset(f->tape);
        if (stepped != CT_OK && stepped != CT_OPTIM_SKIPPED) status = stepped;
        if (f->ema && stepped == CT_OK) ct_ema_update(f->ema);
        f->pos.loss_sum += value;
        f->pos.batch++;
        const double rate = (f->pos.samples - samples_before) / fmax(ct_time_now() - started, 1e-9);
        if (bar)
            ct_progress_update(bar, f->pos.batch, "loss %.4f  acc %.2f%%  lr %.3g  %.0f samples/s",
                               f->pos.loss_sum / f->pos.batch, 100.0 * f->pos.correct / f->pos.samples,
                               ct_optim_lr(f->opt), rate);
        if (status == CT_OK) status = after_step(f, epoch, batches, x, y, value, rate);
        if (f->world > 1) status = ct_dist_check(status);
    }
    e->epoch = epoch + 1;
    e->steps = ct_optim_steps(f->opt);
    e->train_loss = f->pos.batch ? f->pos.loss_sum / f->pos.batch : NAN;
    e->train_accuracy = f->pos.samples ? f->pos.correct / f->pos.samples : NAN;
    e->lr = ct_optim_lr(f->opt);
    e->seconds = ct_time_now() - started;
    e->samples_per_second = (f->pos.samples - samples_before) / fmax(e->seconds, 1e-9);
    if (bar) ct_progress_done(bar, "loss %.4f  acc %.2f%%  %.0f samples/s", e->train_loss, 100 * e->train_accuracy,
                              e->samples_per_second);
    return status;
}

/* ---- neural collapse after an epoch ------------------------------------------------------------ */
/* The split of net into features and classifier (trainer.h, .collapse_every); fatal when there is none. */
static void resolve_collapse_split(fit_state *f) {
    const ct_fit_opts *o = f->o;
    CT_CHECK(!o->features == !o->classifier, "ct_fit", ".features and .classifier go together: give both or neither");
    if (o->features) {
        f->features = o->features, f->classifier = o->classifier;
    } else {
        const int n = !strcmp(f->net->kind, "sequential") ? ct_sequential_size(f->net) : 0;
        f->classifier = n >= 2 ? ct_sequential_child(f->net, n - 1) : NULL;
        CT_CHECK(f->classifier, "ct_fit",
                 ".collapse_every: net \"%s\" (%s) is not a sequential ending in a linear layer: give .features (the "
                 "network up to the penultimate features) and .classifier (the last linear layer)", f->net->name,
                 f->net->kind);
    }
    CT_CHECK(!strcmp(f->classifier->kind, "linear"), "ct_fit",
             ".collapse_every: the classifier \"%s\" is a %s, not a linear layer (ct_linear_new)", f->classifier->name,
             f->classifier->kind);
}

/* The penultimate features of a batch: .features, or the net's children before the last. */
static ct_tensor *penultimate(fit_state *f, ct_tape *tape, ct_tensor *x) {
    if (f->features) return ct_forward(tape, f->features, x);
    const int n = ct_sequential_size(f->net);
    for (int i = 0; i < n - 1; i++) x = ct_forward(tape, ct_sequential_child(f->net, i), x);
    return x;
}

/* NC1–NC4 of up to collapse_samples samples of the collapse source (trainer.h) into e->collapse. */
static int measure_collapse(fit_state *f, ct_fit_epoch *e) {
    const ct_fit_opts *o = f->o;
    const ct_batch_source src = o->collapse_source ? *o->collapse_source : f->train;
    const int limit = o->collapse_samples > 0 ? o->collapse_samples : 1000;
    int status = src.seek ? src.seek(src.state, 0, 0) : CT_OK;
    if (status) return status;
    if (f->ema) ct_ema_swap(f->ema);
    const int was = f->net->training;
    ct_model_train(f->m, 0);
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_real *h = NULL;
    int *labels = malloc((size_t)limit * sizeof *labels), n = 0, dim = 0;
    if (!labels) status = ct_set_error(CT_ERR_MEMORY, "ct_fit: out of memory measuring neural collapse");
    ct_tensor *x;
    ct_labels y;
    while (status == CT_OK && n < limit && src.next(src.state, &x, &y)) {
        const ct_tensor *feat = penultimate(f, tape, x);
        CT_CHECK(feat->ndim >= 1 && feat->shape[0] == y.n, "ct_fit", "the penultimate features (%d dimensions, %d "
                 "rows) do not have a row for each of the %d samples", feat->ndim, feat->ndim ? feat->shape[0] : 0, y.n);
        const int d = y.n ? (int)(feat->size / (size_t)y.n) : dim;
        if (!h && !(h = malloc((size_t)limit * (size_t)(dim = d) * sizeof *h)))
            status = ct_set_error(CT_ERR_MEMORY, "ct_fit: out of memory measuring neural collapse");
        CT_CHECK(d == dim, "ct_fit", "the penultimate features changed width from %d to %d", dim, d);
        const int take = y.n < limit - n ? y.n : limit - n;
        if (status == CT_OK) {
            memcpy(h + (size_t)n * dim, feat->data, (size_t)take * dim * sizeof *h);
            memcpy(labels + n, y.data, (size_t)take * sizeof *labels);
            n += take;
        }
        ct_tape_reset(tape);
    }
    if (!src.seek) /* read to the end, so the source's next pass starts an epoch */
        while (src.next(src.state, &x, &y)) {}
    ct_tape_free(tape);
    ct_model_train(f->m, was);
    if (status == CT_OK && n && dim) {
        ct_tensor *features = ct_tensor_new(CT_SHAPE(n, dim));
        memcpy(features->data, h, (size_t)n * dim * sizeof *h);
        const ct_tensor *w = ct_linear_weight(f->classifier), *b = ct_linear_bias(f->classifier);
        const int rc = ct_neural_collapse(features, CT_LABELS(labels, n), w->shape[0], w, b, &e->collapse);
        if (rc == CT_ERR_MEMORY) status = rc;
        e->collapsed = rc == CT_OK;
        ct_tensor_free(features);
    }
    if (f->ema) ct_ema_swap(f->ema);
    free(h), free(labels);
    /* the training source back where the next epoch starts */
    if (status == CT_OK && !o->collapse_source) status = f->train.seek(f->train.state, f->pos.epoch + 1, 0);
    return status;
}

static int setup(fit_state *f) {
    const ct_fit_opts *o = f->o;
    if (o->bound_loss && o->loss)
        return ct_set_error(CT_ERR_VALUE, "ct_fit: .loss \"%s\" and .bound_loss %s are both given: give one (a spec, or "
                            "a loss you parsed and bound)", o->loss, ct_loss_name(o->bound_loss));
    f->loss = o->bound_loss, f->owns_loss = !o->bound_loss;
    if (!f->loss && !(f->loss = ct_loss_parse(o->loss ? o->loss : "cross_entropy"))) return CT_ERR_VALUE;
    if (ct_loss_needs_counts(f->loss))
        return ct_set_error(CT_ERR_VALUE, "ct_fit: loss %s has counts=auto: parse it, fill the counts in with "
                            "ct_loss_set_counts(loss, the training set's class counts, classes) and give it as "
                            ".bound_loss", ct_loss_name(f->loss));
    if (o->collapse_every > 0) {
        if (!o->collapse_source && !f->train.seek)
            return ct_set_error(CT_ERR_VALUE, "ct_fit: .collapse_every measures on the training source, which cannot "
                                              "seek: give .collapse_source");
        resolve_collapse_split(f);
    }
    ct_loss_describe(f->loss, f->id.loss, sizeof f->id.loss);
    snprintf(f->id.schedule, sizeof f->id.schedule, "%s", o->schedule ? o->schedule : "");
    f->id.epochs = o->epochs;
    f->id.batches = f->train.batches ? f->train.batches(f->train.state) : 0;
    if (o->schedule) {
        const long total = (long)o->epochs * f->id.batches;
        if (total < 1)
            return ct_set_error(CT_ERR_VALUE, "ct_fit: a schedule needs the number of batches per epoch (the source "
                                              "gives none)");
        const int status = ct_schedule_parse(o->schedule, ct_optim_lr(f->opt), total, &f->schedule);
        if (status) return status;
        f->scheduled = 1;
    }
    if (o->ema_decay > 0) {
        f->ema = ct_ema_new(f->m, CT_EMA(.decay = o->ema_decay));
        const int n = ct_model_param_count(f->m);
        f->ema_names = calloc((size_t)n, sizeof *f->ema_names);
        f->ema_tensors = calloc((size_t)n, sizeof *f->ema_tensors);
        CT_CHECK(f->ema_names && f->ema_tensors, "ct_fit", "out of memory");
        for (int k = 0; k < n; k++) {
            const char *name = ct_model_param(f->m, k)->name;
            f->ema_names[k] = malloc(strlen(name ? name : "") + 16);
            CT_CHECK(f->ema_names[k], "ct_fit", "out of memory");
            sprintf(f->ema_names[k], "ema.%s", name ? name : "");
            f->ema_tensors[k] = ct_ema_average(f->ema, k);
        }
    }
    f->tape = ct_tape_new();
    if (o->resume) {
        const int status = resume(f);
        if (status) return status;
    }
    const int status = open_logs(&f->log, o, o->resume != NULL, ct_optim_steps(f->opt));
    f->log.start -= f->pos.seconds;
    return status;
}

static void teardown(fit_state *f) {
    close_logs(&f->log);
    ct_tape_free(f->tape);
    for (int k = 0; f->ema_names && k < ct_model_param_count(f->m); k++) free(f->ema_names[k]);
    free(f->ema_names), free(f->ema_tensors);
    ct_ema_free(f->ema);
    if (f->owns_loss) ct_loss_free(f->loss);
}

/* After an epoch's training: evaluation, keep-best, the log row, the checkpoint, the callback.
 * Returns the status; *stop is set when patience ran out. */
static int end_epoch(fit_state *f, ct_fit_epoch *e, ct_fit_result *r, int *stop) {
    const ct_fit_opts *o = f->o;
    int status = f->val ? evaluate(f, e) : CT_OK;
    if (status == CT_OK && o->collapse_every > 0 && e->epoch % o->collapse_every == 0) status = measure_collapse(f, e);
    if (status == CT_OK && e->evaluated && better(o, e, &f->pos.best, f->pos.have_best)) {
        e->best = 1, f->pos.have_best = 1, f->pos.since_best = 0;
        f->pos.best = *e;
        if (o->best_model) {
            if (f->ema) ct_ema_swap(f->ema);
            status = ct_model_save(f->m, o->best_model);
            if (f->ema) ct_ema_swap(f->ema);
        }
    } else if (e->evaluated) {
        f->pos.since_best++;
    }
    r->last = *e, r->epochs_run = e->epoch;
    if (status == CT_OK) status = log_row(&f->log, e, e->epoch, ROW_EPOCH);
    f->pos.epoch++, f->pos.batch = 0, f->pos.loss_sum = f->pos.correct = f->pos.samples = 0;
    if (status == CT_OK) status = save_checkpoint(f);
    if (status == CT_OK && o->on_epoch) o->on_epoch(e, o->user);
    *stop = o->patience && f->pos.since_best >= o->patience;
    return status;
}

int ct_fit(ct_model *m, ct_module *net, ct_optim *opt, ct_batch_source train, const ct_batch_source *val,
           ct_fit_opts o, ct_fit_result *result) {
    CT_CHECK(m && net && opt && train.next && o.epochs >= 1 && o.patience >= 0 && o.ema_decay >= 0 && o.ema_decay < 1 &&
                 o.eval_every >= 0 && o.log_every >= 0 && o.collapse_every >= 0 && o.collapse_samples >= 0,
             "ct_fit", "model, net, optimizer, a train source, epochs >= 1 (got %d), patience, eval_every, "
             "log_every, collapse_every and collapse_samples >= 0, ema_decay in [0, 1)", o.epochs);
    ct_fit_result r = {0};
    fit_state f = {.m = m, .net = net, .opt = opt, .train = train, .val = val, .o = &o, .world = ct_dist_world_size()};
    if (ct_dist_rank() != 0) /* rank 0 reports and writes the files */
        o.progress = 0, o.log_csv = o.log_jsonl = o.checkpoint = o.best_model = NULL;
    if (f.world > 1 || o.dist_shards > 0) f.sync = ct_grad_sync_new(m, CT_GRAD_SYNC(.shards = o.dist_shards));
    int status = setup(&f);
    if (f.sync && !o.dist_shards && f.tape) ct_grad_sync_attach(f.sync, f.tape); /* all-reduces during the backward */
    if (f.world > 1) { /* every rank from rank 0's weights, optimizer state and EMA */
        int batches = f.id.batches; /* and as many steps: else a rank would wait for one that has stopped */
        const int sent = ct_dist_broadcast(&batches, sizeof batches);
        if (status == CT_OK) status = sent;
        if (status == CT_OK && batches != f.id.batches)
            status = ct_set_error(CT_ERR_VALUE, "ct_fit: the training source has %d batches per epoch on rank %d, %d on "
                                  "rank 0: give every rank a loader with the same .batch and .shard = rank, .shards = "
                                  "ranks", f.id.batches, ct_dist_rank(), batches);
        status = ct_dist_check(status);
        if (status == CT_OK) status = ct_dist_broadcast_optim(opt);
        for (int k = 0; status == CT_OK && f.ema && k < ct_model_param_count(m); k++)
            status = ct_dist_broadcast(f.ema_tensors[k]->data, f.ema_tensors[k]->size * sizeof(ct_real));
    }
    struct sigaction handler = {.sa_handler = on_sigint}, previous;
    sigemptyset(&handler.sa_mask);
    interrupt_requested = 0;
    sigaction(SIGINT, &handler, &previous);
    r.epochs_run = f.pos.epoch;
    while (status == CT_OK && f.pos.epoch < o.epochs) {
        ct_fit_epoch e = {0};
        status = train_epoch(&f, f.pos.epoch, &e);
        if (status) break;
        if (f.interrupted) { /* mid-epoch: the checkpoint holds the position to resume from */
            r.interrupted = 1;
            status = save_checkpoint(&f);
            break;
        }
        int stop = 0;
        /* batch norm's running statistics saw this rank's samples: rank 0's for all, so that every
         * rank evaluates, keeps the best and stops early alike */
        if (f.world > 1 && (status = ct_dist_broadcast_buffers(m))) break;
        status = end_epoch(&f, &e, &r, &stop);
        if (f.world > 1) {
            status = ct_dist_check(status);
            const int sent = ct_dist_broadcast(&stop, sizeof stop); /* rank 0's early stop for all */
            if (status == CT_OK) status = sent;
        }
        if (status == CT_OK && interrupt_agreed(&f)) r.interrupted = 1;
        if (r.interrupted) break;
        if (stop) {
            r.stopped_early = 1;
            break;
        }
    }
    sigaction(SIGINT, &previous, NULL);
    r.best = f.pos.best;
    if (status == CT_OK && !r.interrupted && f.ema && o.end_with_ema) ct_ema_swap(f.ema);
    teardown(&f);
    ct_grad_sync_free(f.sync);
    if (result) *result = r;
    return status ? status : r.interrupted ? CT_FIT_INTERRUPTED : CT_OK;
}
