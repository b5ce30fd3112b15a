/* optim/trainer.c — ct_fit and ct_evaluate (optim/trainer.h). */
#define CT_BUILDING_LIBRARY
#include "trainer.h"
#include "registry.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Ctrl-C: a flag the loop reads at each step boundary ------------------------------------- */
static volatile sig_atomic_t interrupt_requested;
static void on_sigint(int sig) { (void)sig, interrupt_requested = 1; }

/* ---- evaluation ------------------------------------------------------------------------------ */
int ct_evaluate(ct_model *m, ct_module *net, ct_batch_source source, const char *loss_spec, ct_metrics_opts mo,
                ct_metrics_result *out, double *mean_loss) {
    CT_CHECK(m && net && source.next && out, "ct_evaluate", "model, net, a source and out must be given");
    ct_loss *loss = ct_loss_parse(loss_spec ? loss_spec : "cross_entropy");
    if (!loss) return CT_ERR_VALUE;
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
    ct_loss_free(loss);
    return status;
}

/* ---- logs -------------------------------------------------------------------------------------- */
typedef struct {
    FILE *csv, *jsonl;
    const char *csv_path, *jsonl_path;
    double start;
} logs;

static const char *const columns[] = {"epoch", "step", "seconds", "lr", "train_loss", "train_accuracy", "val_loss",
                                      "val_accuracy", "val_top_k", "val_f1", "val_nll", "val_brier", "val_ece",
                                      "samples_per_second"};
enum { N_COLUMNS = sizeof columns / sizeof *columns };

static int open_logs(logs *l, const ct_fit_opts *o) {
    memset(l, 0, sizeof *l);
    l->csv_path = o->log_csv, l->jsonl_path = o->log_jsonl, l->start = ct_time_now();
    if (o->log_csv && !(l->csv = fopen(o->log_csv, "w")))
        return ct_set_error(CT_ERR_IO, "ct_fit: cannot write the log %s", o->log_csv);
    if (o->log_jsonl && !(l->jsonl = fopen(o->log_jsonl, "w"))) {
        if (l->csv) fclose(l->csv);
        return ct_set_error(CT_ERR_IO, "ct_fit: cannot write the log %s", o->log_jsonl);
    }
    for (int k = 0; l->csv && k < N_COLUMNS; k++) fprintf(l->csv, "%s%s", columns[k], k + 1 < N_COLUMNS ? "," : "\n");
    return CT_OK;
}

/* One row: an epoch's summary (or, mid-epoch, the running training figures), numbers in the C
 * locale whatever the program's. A field without a value is empty (CSV) or null (JSON). */
static int log_row(logs *l, const ct_fit_epoch *e) {
    if (!l->csv && !l->jsonl) return CT_OK;
    const double v[N_COLUMNS] = {e->epoch, (double)e->steps, ct_time_now() - l->start, e->lr, e->train_loss,
                                 e->train_accuracy, e->evaluated ? e->val_loss : NAN,
                                 e->evaluated ? e->val.accuracy : NAN, e->evaluated ? e->val.top_k_accuracy : NAN,
                                 e->evaluated ? e->val.f1 : NAN, e->evaluated ? e->val.nll : NAN,
                                 e->evaluated ? e->val.brier : NAN, e->evaluated ? e->val.ece : NAN,
                                 e->samples_per_second};
    const ct_c_numbers numbers = ct_c_numbers_begin();
    for (int k = 0; l->csv && k < N_COLUMNS; k++) {
        if (isfinite(v[k])) fprintf(l->csv, "%.8g", v[k]);
        fputs(k + 1 < N_COLUMNS ? "," : "\n", l->csv);
    }
    for (int k = 0; l->jsonl && k < N_COLUMNS; k++) {
        fprintf(l->jsonl, "%s\"%s\": ", k ? ", " : "{", columns[k]);
        if (isfinite(v[k])) fprintf(l->jsonl, "%.8g", v[k]);
        else fputs("null", l->jsonl);
        if (k + 1 == N_COLUMNS) fputs("}\n", l->jsonl);
    }
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

/* ---- the loop ----------------------------------------------------------------------------------- */
typedef struct {
    ct_model *m;
    ct_module *net;
    ct_optim *opt;
    ct_loss *loss;
    ct_schedule schedule;
    int scheduled;
    ct_ema *ema;
    ct_tape *tape;
    logs log;
} fit_state;

/* One epoch of training; fills e's training figures. */
static int train_epoch(fit_state *f, ct_batch_source train, const ct_fit_opts *o, int epoch, ct_fit_epoch *e) {
    const int batches = train.batches ? train.batches(train.state) : 0;
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o->epochs);
    ct_progress *bar = o->progress ? ct_progress_new(label, batches) : NULL;
    double loss_sum = 0, started = ct_time_now();
    long correct = 0, samples = 0;
    int batch = 0, status = CT_OK;
    ct_tensor *x;
    ct_labels y;
    ct_model_train(f->m, 1);
    while (status == CT_OK && !interrupt_requested && train.next(train.state, &x, &y)) {
        if (f->scheduled) ct_optim_schedule(f->opt, &f->schedule);
        ct_tensor *logits = ct_forward(f->tape, f->net, x);
        ct_tensor *loss = ct_loss_apply(f->tape, f->loss, logits, y);
        const double value = loss->data[0];
        correct += ct_count_correct(logits, y);
        samples += y.n;
        ct_backward(f->tape, loss);
        const int stepped = ct_optim_step(f->opt);
        ct_tape_reset(f->tape);
        if (stepped != CT_OK && stepped != CT_OPTIM_SKIPPED) status = stepped;
        if (f->ema && stepped == CT_OK) ct_ema_update(f->ema);
        loss_sum += value;
        batch++;
        const double lr = ct_optim_lr(f->opt), rate = samples / fmax(ct_time_now() - started, 1e-9);
        if (bar)
            ct_progress_update(bar, batch, "loss %.4f  acc %.2f%%  lr %.3g  %.0f samples/s", loss_sum / batch,
                               100.0 * (double)correct / (double)samples, lr, rate);
        if (o->on_step) {
            const ct_fit_step s = {ct_optim_steps(f->opt), epoch, batch - 1, x, y, value, lr};
            o->on_step(&s, o->user);
        }
        if (o->log_every > 0 && ct_optim_steps(f->opt) % o->log_every == 0 && status == CT_OK) {
            const ct_fit_epoch row = {.epoch = epoch, .steps = ct_optim_steps(f->opt), .lr = lr,
                                      .train_loss = loss_sum / batch, .train_accuracy = (double)correct / (double)samples,
                                      .samples_per_second = rate};
            status = log_row(&f->log, &row);
        }
    }
    if (interrupt_requested) /* the rest of the epoch is not drawn: leave the source at its end */
        while (train.next(train.state, &x, &y)) {}
    e->epoch = epoch + 1;
    e->steps = ct_optim_steps(f->opt);
    e->train_loss = batch ? loss_sum / batch : NAN;
    e->train_accuracy = samples ? (double)correct / (double)samples : NAN;
    e->lr = ct_optim_lr(f->opt);
    e->seconds = ct_time_now() - started;
    e->samples_per_second = samples / fmax(e->seconds, 1e-9);
    if (bar) ct_progress_done(bar, "loss %.4f  acc %.2f%%  %.0f samples/s", e->train_loss, 100 * e->train_accuracy,
                              e->samples_per_second);
    return status;
}

static int setup(fit_state *f, ct_batch_source train, const ct_fit_opts *o) {
    f->loss = ct_loss_parse(o->loss ? o->loss : "cross_entropy");
    if (!f->loss) return CT_ERR_VALUE;
    if (o->schedule) {
        const long total = (long)o->epochs * (train.batches ? train.batches(train.state) : 0);
        if (total < 1)
            return ct_set_error(CT_ERR_VALUE, "ct_fit: a schedule needs the number of batches per epoch (the source "
                                              "gives none)");
        const int status = ct_schedule_parse(o->schedule, ct_optim_lr(f->opt), total, &f->schedule);
        if (status) return status;
        f->scheduled = 1;
    }
    if (o->ema_decay > 0) f->ema = ct_ema_new(f->m, CT_EMA(.decay = o->ema_decay));
    f->tape = ct_tape_new();
    return open_logs(&f->log, o);
}

int ct_fit(ct_model *m, ct_module *net, ct_optim *opt, ct_batch_source train, const ct_batch_source *val,
           ct_fit_opts o, ct_fit_result *result) {
    CT_CHECK(m && net && opt && train.next && o.epochs >= 1 && o.patience >= 0 && o.ema_decay >= 0 && o.ema_decay < 1,
             "ct_fit", "model, net, optimizer, a train source, epochs >= 1 (got %d), patience >= 0, ema_decay in [0, 1)",
             o.epochs);
    ct_fit_result r = {0};
    fit_state f = {.m = m, .net = net, .opt = opt};
    int status = setup(&f, train, &o);
    struct sigaction handler = {.sa_handler = on_sigint}, previous;
    sigemptyset(&handler.sa_mask);
    interrupt_requested = 0;
    sigaction(SIGINT, &handler, &previous);
    int have_best = 0, since_best = 0;
    for (int epoch = 0; status == CT_OK && epoch < o.epochs; epoch++) {
        ct_fit_epoch e = {0};
        status = train_epoch(&f, train, &o, epoch, &e);
        if (status) break;
        if (val && !interrupt_requested) {
            if (f.ema) ct_ema_swap(f.ema);
            status = ct_evaluate(m, net, *val, o.loss, CT_METRICS(.transform = o.transform), &e.val, &e.val_loss);
            if (f.ema) ct_ema_swap(f.ema);
            e.evaluated = status == CT_OK;
        }
        if (status == CT_OK && e.evaluated && better(&o, &e, &r.best, have_best)) {
            e.best = 1, have_best = 1, since_best = 0;
            if (o.best_model) {
                if (f.ema) ct_ema_swap(f.ema);
                status = ct_model_save(m, o.best_model);
                if (f.ema) ct_ema_swap(f.ema);
            }
        } else if (e.evaluated) {
            since_best++;
        }
        if (e.best) r.best = e;
        r.last = e, r.epochs_run = epoch + 1;
        if (status == CT_OK) status = log_row(&f.log, &e);
        if (status == CT_OK && o.checkpoint) status = ct_checkpoint_save(opt, o.checkpoint);
        if (status == CT_OK && o.on_epoch) o.on_epoch(&e, o.user);
        if (interrupt_requested) r.interrupted = 1;
        if (r.interrupted) break;
        if (o.patience && since_best >= o.patience) {
            r.stopped_early = 1;
            break;
        }
    }
    sigaction(SIGINT, &previous, NULL);
    close_logs(&f.log);
    ct_tape_free(f.tape);
    ct_ema_free(f.ema);
    ct_loss_free(f.loss);
    if (result) *result = r;
    return status ? status : r.interrupted ? CT_FIT_INTERRUPTED : CT_OK;
}
