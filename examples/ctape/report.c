/* examples/ctape/report.c — a run's pictures (loss, accuracy, learning rate, confusion matrix,
 * reliability diagram, misclassified test images) and summary.md, and `ctape plot`, which overlays
 * the curves of several runs. The curves come from the run's log.csv (optim/trainer.h's columns). */
#include "command.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- log.csv ------------------------------------------------------------------------------------ */
typedef struct {
    int n;
    double *col[16];  /* per column of `wanted`, n values (NaN when empty) */
    int *is_epoch;    /* 1 for the rows of kind "epoch" */
} run_log;

static const char *const wanted[] = {"epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                     "val_ece", "seconds"};
enum { W_EPOCH, W_STEP, W_LR, W_TRAIN_LOSS, W_TRAIN_ACC, W_VAL_LOSS, W_VAL_ACC, W_VAL_ECE, W_SECONDS, N_WANTED };

static void log_free(run_log *l) {
    for (int k = 0; k < N_WANTED; k++) free(l->col[k]);
    free(l->is_epoch);
    memset(l, 0, sizeof *l);
}

/* Reads DIR/log.csv; CT_OK or CT_ERR_IO / CT_ERR_FORMAT naming the file. */
static int log_read(const char *dir, run_log *l) {
    memset(l, 0, sizeof *l);
    char path[1200], line[4096];
    FILE *f = fopen(path_join(path, sizeof path, dir, "log.csv"), "r");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot read it (not a run folder of ctape train?)", path);
    int index[N_WANTED], kind_col = -1, cap = 0;
    for (int k = 0; k < N_WANTED; k++) index[k] = -1;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return ct_set_error(CT_ERR_FORMAT, "%s: empty", path);
    }
    int c = 0;
    for (char *save = NULL, *t = strtok_r(line, ",\n", &save); t; t = strtok_r(NULL, ",\n", &save), c++) {
        for (int k = 0; k < N_WANTED; k++)
            if (!strcmp(t, wanted[k])) index[k] = c;
        if (!strcmp(t, "row")) kind_col = c;
    }
    const ct_c_numbers numbers = ct_c_numbers_begin();
    while (fgets(line, sizeof line, f)) {
        if (l->n == cap) {
            cap = cap ? 2 * cap : 64;
            int grown = 1;
            for (int k = 0; k < N_WANTED; k++) {
                double *c = realloc(l->col[k], (size_t)cap * sizeof(double));
                if (c) l->col[k] = c;
                grown &= c != NULL;
            }
            int *e = realloc(l->is_epoch, (size_t)cap * sizeof(int));
            if (e) l->is_epoch = e;
            if (!grown || !e) {
                ct_c_numbers_end(numbers);
                fclose(f);
                log_free(l);
                return ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading it", path);
            }
        }
        double v[32];
        char kind[64] = "";
        int field = 0;
        for (char *p = line; field < 32; field++) { /* fields may be empty: no strtok */
            char *end = strpbrk(p, ",\n");
            const size_t len = end ? (size_t)(end - p) : strlen(p);
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)(len < 63 ? len : 63), p);
            v[field] = len ? strtod(buf, NULL) : NAN;
            if (field == kind_col) snprintf(kind, sizeof kind, "%s", buf);
            if (!end || *end == '\n') break;
            p = end + 1;
        }
        for (int k = 0; k < N_WANTED; k++) l->col[k][l->n] = index[k] >= 0 && index[k] <= field ? v[index[k]] : NAN;
        l->is_epoch[l->n++] = kind_col < 0 || !strcmp(kind, "epoch");
    }
    ct_c_numbers_end(numbers);
    fclose(f);
    return CT_OK;
}

/* The rows of one kind (epoch rows, or the others) of column k against the epoch column. */
static int log_series(const run_log *l, int k, int epochs, double *x, double *y) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        if (l->is_epoch[i] == epochs) x[n] = l->col[W_EPOCH][i], y[n++] = l->col[k][i];
    return n;
}

/* ---- pictures of one run ---------------------------------------------------------------------------- */
static int curves(const char *dir, const run_log *l) {
    char path[1200];
    double *x[4], *y[4];
    for (int k = 0; k < 4; k++) x[k] = malloc((size_t)(l->n + 1) * sizeof(double)), y[k] = malloc((size_t)(l->n + 1) * sizeof(double));
    int n0 = log_series(l, W_TRAIN_LOSS, 1, x[0], y[0]), n1 = log_series(l, W_VAL_LOSS, 1, x[1], y[1]);
    ct_plot_series loss[2] = {{"train", x[0], y[0], n0, 0, 0}, {"evaluation", x[1], y[1], n1, 1, 1}};
    int rc = ct_plot_lines(path_join(path, sizeof path, dir, "loss.png"), loss, 2,
                           CT_PLOT(.title = "loss per epoch", .x_label = "epoch", .y_label = "loss", .log_y = 1));
    n0 = log_series(l, W_TRAIN_ACC, 1, x[2], y[2]), n1 = log_series(l, W_VAL_ACC, 1, x[3], y[3]);
    for (int i = 0; i < n0; i++) y[2][i] *= 100;
    for (int i = 0; i < n1; i++) y[3][i] *= 100;
    ct_plot_series acc[2] = {{"train", x[2], y[2], n0, 0, 0}, {"evaluation", x[3], y[3], n1, 1, 1}};
    if (rc == CT_OK)
        rc = ct_plot_lines(path_join(path, sizeof path, dir, "accuracy.png"), acc, 2,
                           CT_PLOT(.title = "accuracy per epoch", .x_label = "epoch", .y_label = "accuracy (%)"));
    const int n2 = log_series(l, W_LR, 0, x[0], y[0]);
    ct_plot_series lr = {"learning rate", x[0], y[0], n2, 0, 2};
    if (rc == CT_OK && n2 > 1)
        rc = ct_plot_lines(path_join(path, sizeof path, dir, "lr.png"), &lr, 1,
                           CT_PLOT(.title = "learning rate", .x_label = "epoch", .y_label = "lr"));
    for (int k = 0; k < 4; k++) free(x[k]), free(y[k]);
    return rc;
}

/* The first misclassified test images, captioned "true > predicted" in red. */
static int misclassified(const char *dir, const dataset_pair *data, const final_evaluation *ev) {
    if (!ev->n_wrong) return CT_OK;
    const ct_dataset *t = data->test;
    const int C = t->channels == 1 ? 1 : 3, H = t->height, W = t->width, n = ev->n_wrong < 32 ? ev->n_wrong : 32;
    unsigned char *pixels = malloc((size_t)n * H * W * C);
    char (*text)[64] = malloc((size_t)n * sizeof *text);
    const char **captions = malloc((size_t)n * sizeof *captions);
    if (!pixels || !text || !captions) {
        free(pixels), free(text), free(captions);
        return ct_set_error(CT_ERR_MEMORY, "out of memory for the misclassified images");
    }
    for (int k = 0; k < n; k++) {
        const int i = ev->wrong[k];
        const uint8_t *src = t->images + (size_t)i * t->channels * H * W; /* planar: channel, row, column */
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    pixels[(((size_t)k * H + y) * W + x) * C + c] = src[((size_t)c * H + y) * W + x];
        const int truth = t->labels[i], guess = ev->wrong_predicted[k];
        if (data->class_names)
            snprintf(text[k], sizeof text[k], "!%.12s>%.12s", data->class_names[truth], data->class_names[guess]);
        else
            snprintf(text[k], sizeof text[k], "!%d>%d", truth, guess);
        captions[k] = text[k];
    }
    char path[1200];
    const int rc = ct_plot_images(path_join(path, sizeof path, dir, "misclassified.png"), pixels, n, H, W, C, captions, 8,
                                  CT_PLOT(.title = "misclassified test images (true>predicted)"));
    free(pixels), free(text), free(captions);
    return rc;
}

int report_pictures(const char *dir, const dataset_pair *data, const final_evaluation *ev) {
    run_log l;
    int rc = log_read(dir, &l);
    if (rc == CT_OK) rc = curves(dir, &l);
    log_free(&l);
    char path[1200];
    if (rc == CT_OK)
        rc = ct_plot_confusion(path_join(path, sizeof path, dir, "confusion.png"), ev->confusion, ev->classes,
                               data->class_names, CT_PLOT(.title = "confusion matrix (test set)", .width = 560, .height = 560));
    if (rc == CT_OK)
        rc = ct_plot_reliability(path_join(path, sizeof path, dir, "reliability.png"), 15, ev->reliability_accuracy,
                                 ev->reliability_confidence, ev->reliability_count,
                                 CT_PLOT(.title = "reliability (test set)", .width = 480, .height = 480));
    if (rc == CT_OK) rc = misclassified(dir, data, ev);
    return rc;
}

/* ---- summary.md ------------------------------------------------------------------------------------- */
int report_summary(const char *dir, const run_settings *s, const dataset_pair *data, const final_evaluation *ev,
                   const char *model_spec, long parameters, double seconds) {
    char path[1200], args_path[1200];
    FILE *f = fopen(path_join(path, sizeof path, dir, "summary.md"), "w");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write it", path);
    run_log l;
    const int have_log = log_read(dir, &l) == CT_OK;
    for (int i = 0; have_log && i < l.n; i++) /* the run's wall time over all its sessions (a resume adds to it) */
        if (l.is_epoch[i] && isfinite(l.col[W_SECONDS][i])) seconds = l.col[W_SECONDS][i];
    const ct_c_numbers numbers = ct_c_numbers_begin();
    fprintf(f, "# %s on %s\n\n", model_spec, data->name);
    fprintf(f, "```\nctape train");
    FILE *args = fopen(path_join(args_path, sizeof args_path, dir, "args.txt"), "r");
    char line[1100];
    while (args && fgets(line, sizeof line, args)) {
        line[strcspn(line, "\n")] = 0;
        fprintf(f, " %s", line);
    }
    if (args) fclose(args);
    fprintf(f, "\n```\n\n%s. Model %s, %ld parameters; loss %s; optimizer %s; schedule %s; %d epochs of batch %d; seed %d; "
               "threads: %d; %.0f s of wall time.\n\n", data->describe, model_spec, parameters, s->loss, s->optim, s->sched, s->epochs,
            s->batch, s->seed, ct_get_threads(), seconds);
    if (have_log) {
        fprintf(f, "| epoch | lr | train loss | train acc | eval loss | eval acc | eval ECE | seconds |\n"
                   "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < l.n; i++)
            if (l.is_epoch[i])
                fprintf(f, "| %.0f | %.4g | %.4f | %.2f%% | %.4f | %.2f%% | %.4f | %.0f |\n", l.col[W_EPOCH][i],
                        l.col[W_LR][i], l.col[W_TRAIN_LOSS][i], 100 * l.col[W_TRAIN_ACC][i], l.col[W_VAL_LOSS][i],
                        100 * l.col[W_VAL_ACC][i], l.col[W_VAL_ECE][i], l.col[W_SECONDS][i]);
        log_free(&l);
    }
    const ct_metrics_result *r = &ev->result;
    fprintf(f, "\n## Test set (%ld images, final weights)\n\n| accuracy | top-%d | macro precision | macro recall | "
               "macro F1 | NLL | Brier | ECE (15 bins) | ECE (equal mass) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
               "| %.2f%% | %.2f%% | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n\n",
            r->n, r->top_k, 100 * r->accuracy, 100 * r->top_k_accuracy, r->precision, r->recall, r->f1, r->nll, r->brier,
            r->ece, r->ece_equal_mass);
    fprintf(f, "| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n");
    for (int c = 0; c < ev->classes; c++) {
        if (data->class_names) fprintf(f, "| %s ", data->class_names[c]);
        else fprintf(f, "| %d ", c);
        fprintf(f, "| %.4f | %.4f | %.4f | %ld |\n", ev->precision[c], ev->recall[c], ev->f1[c], ev->support[c]);
    }
    fprintf(f, "\n![loss](loss.png) ![accuracy](accuracy.png)\n\n![learning rate](lr.png)\n\n"
               "![confusion matrix](confusion.png) ![reliability](reliability.png)\n\n![misclassified](misclassified.png)\n");
    ct_c_numbers_end(numbers);
    return fclose(f) ? ct_set_error(CT_ERR_IO, "%s: cannot write it", path) : CT_OK;
}

/* ---- ctape plot ------------------------------------------------------------------------------------ */
int command_plot(int argc, char **argv) {
    const char *metric = "val_accuracy", *out = "compare.png", *runs[10];
    const opt_spec flags[] = {
        {"--metric", OPT_STRING, &metric, 0, "M  val_accuracy (default), val_loss, train_loss, train_accuracy, val_ece, lr"},
        {"--out", OPT_STRING, &out, 0, "FILE  the picture (default compare.png)"},
    };
    int n_runs;
    opt_positional given = {runs, 10, 0};
    static const char *const usage = "usage: ctape plot DIR [DIR ...] [--metric M] [--out FILE]\nOverlays a metric "
                                     "per epoch of up to 10 runs of ctape train.";
    if (!command_flags("plot", argc, argv, flags, 2, usage, &given)) return 2;
    n_runs = given.n;
    int k = 0;
    while (k < N_WANTED && strcmp(wanted[k], metric)) k++;
    if (k == N_WANTED || k == W_EPOCH || k == W_STEP || k == W_SECONDS) {
        fprintf(stderr, "ctape plot: --metric %s: give val_accuracy, val_loss, train_loss, train_accuracy, val_ece or lr\n",
                metric);
        return 2;
    }
    if (!n_runs) {
        fprintf(stderr, "ctape plot: give one or more run folders (ctape plot runs/a runs/b)\n");
        return 2;
    }
    run_log logs[10];
    ct_plot_series series[10];
    double *x[10] = {0}, *y[10] = {0};
    int status = 0;
    for (int i = 0; i < n_runs; i++) {
        if (log_read(runs[i], &logs[i]) != CT_OK) {
            fprintf(stderr, "ctape plot: %s\n", ct_last_error());
            for (int j = 0; j < i; j++) log_free(&logs[j]), free(x[j]), free(y[j]);
            return 1;
        }
        x[i] = malloc((size_t)(logs[i].n + 1) * sizeof(double)), y[i] = malloc((size_t)(logs[i].n + 1) * sizeof(double));
        const int n = log_series(&logs[i], k, k != W_LR, x[i], y[i]);
        const char *slash = strrchr(runs[i], '/');
        series[i] = (ct_plot_series){slash && slash[1] ? slash + 1 : runs[i], x[i], y[i], n, 0, -1};
    }
    char title[128];
    snprintf(title, sizeof title, "%s per epoch", metric);
    if (ct_plot_lines(out, series, n_runs, CT_PLOT(.title = title, .x_label = "epoch", .y_label = metric,
                                                   .log_y = strstr(metric, "loss") != NULL)) != CT_OK) {
        fprintf(stderr, "ctape plot: %s\n", ct_last_error());
        status = 1;
    } else {
        printf("wrote %s (%s of %d runs)\n", out, metric, n_runs);
    }
    for (int i = 0; i < n_runs; i++) log_free(&logs[i]), free(x[i]), free(y[i]);
    return status;
}
