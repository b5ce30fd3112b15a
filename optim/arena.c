/* optim/arena.c — ct_arena_run (optim/arena.h): losses × seeds × data conditions, classifiers and
 * embedding losses, runs.csv and table.md, and the statistics of the table (Student's t intervals). */
#define CT_BUILDING_LIBRARY
#include "arena.h"
#include "registry.h"
#include "../nn/zoo.h"
#include "../core/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- statistics ------------------------------------------------------------------------------ */
/* The continued fraction of the regularised incomplete beta function I_x(a, b) (modified Lentz),
 * valid for x < (a + 1)/(a + b + 2); the caller uses the symmetry I_x(a, b) = 1 − I_{1−x}(b, a). */
static double beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = 1 / (fabs(d) < tiny ? tiny : d);
    double h = d;
    for (int m = 1; m <= 300; m++) {
        const int m2 = 2 * m;
        /* even step: d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m)) */
        double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + aa * d, c = 1 + aa / c;
        d = 1 / (fabs(d) < tiny ? tiny : d), c = fabs(c) < tiny ? tiny : c;
        h *= d * c;
        /* odd step: d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)) */
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + aa * d, c = 1 + aa / c;
        d = 1 / (fabs(d) < tiny ? tiny : d), c = fabs(c) < tiny ? tiny : c;
        const double step = d * c;
        h *= step;
        if (fabs(step - 1) < 1e-15) break;
    }
    return h;
}

/* I_x(a, b) = x^a (1 − x)^b / (a B(a, b)) · continued fraction. */
static double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
    return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

/* P(T <= t) for Student's t with df degrees of freedom: 1 − ½ I_{df/(df + t²)}(df/2, ½) for t >= 0. */
static double student_t_cdf(double t, double df) {
    const double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));
    return t >= 0 ? 1 - tail : tail;
}

double ct_student_t_quantile(double p, double df) {
    CT_CHECK(p > 0 && p < 1 && df >= 1, "ct_student_t_quantile", "p = %g must be in (0, 1) and df = %g >= 1", p, df);
    if (p < 0.5) return -ct_student_t_quantile(1 - p, df);
    double lo = 0, hi = 1;
    while (student_t_cdf(hi, df) < p) hi *= 2; /* t(0.9995, 1) is 637: a few doublings */
    for (int k = 0; k < 200 && hi - lo > 1e-12 * hi; k++) {
        const double mid = 0.5 * (lo + hi);
        if (student_t_cdf(mid, df) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

double ct_ci95_half_width(int n, double sd) { return n < 2 ? NAN : ct_student_t_quantile(0.975, n - 1) * sd / sqrt(n); }

/* ---- lists ------------------------------------------------------------------------------------- */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

/* Does the piece start a spec of its own? A name ("focal", "poly1:epsilon=1"), not "key=value". */
static int starts_spec(const char *piece) {
    const size_t name = strcspn(piece, ":=[");
    return piece[name] != '=';
}

int ct_arena_split(const char *list, char *buf, size_t len, char **specs, int max) {
    CT_CHECK(list && buf && len && specs && max >= 1, "ct_arena_split", "NULL argument or no room");
    snprintf(buf, len, "%s", list);
    int n = 0, depth = 0;
    char *start = buf;
    for (char *p = buf;; p++) {
        const char c = *p;
        if (c == '[') depth++;
        if (c == ']' && depth) depth--;
        const int end = c == 0 || (depth == 0 && (c == ';' || (c == ',' && starts_spec(trim(p + 1)))));
        if (!end) continue;
        *p = 0;
        char *spec = trim(start);
        if (*spec && n < max) specs[n++] = spec;
        if (c == 0) break;
        start = p + 1;
    }
    return n;
}

/* ---- conditions -------------------------------------------------------------------------------- */
/* The training set of a condition for one seed ("exp:100+sym:0.2"), a copy: NULL (ct_last_error) on
 * a malformed condition. */
static ct_dataset *apply_condition(const ct_dataset *train, const char *condition, const ct_arena_opts *o,
                                   uint64_t seed) {
    int *all = malloc((size_t)train->n * sizeof *all);
    if (!all) return ct_set_error(CT_ERR_MEMORY, "out of memory"), NULL;
    for (int i = 0; i < train->n; i++) all[i] = i;
    ct_dataset *d = ct_dataset_subset(train, all, train->n);
    free(all);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", condition);
    for (char *save = NULL, *part = strtok_r(buf, "+", &save); d && part; part = strtok_r(NULL, "+", &save)) {
        part = trim(part);
        char kind[16] = "";
        double value = NAN;
        char *colon = strchr(part, ':');
        if (colon) {
            snprintf(kind, sizeof kind, "%.*s", (int)(colon - part), part);
            char *end;
            const ct_c_numbers numbers = ct_c_numbers_begin();
            value = strtod(colon + 1, &end);
            ct_c_numbers_end(numbers);
            if (end == colon + 1 || *end) value = NAN;
        } else {
            snprintf(kind, sizeof kind, "%s", part);
        }
        int rc = CT_OK;
        if (!strcmp(kind, "clean") && !colon) continue;
        if ((!strcmp(kind, "exp") || !strcmp(kind, "step")) && value >= 1) {
            ct_dataset *lt = ct_dataset_long_tail(d, kind[0] == 'e' ? CT_IMBALANCE_EXP : CT_IMBALANCE_STEP, value, seed);
            ct_dataset_free(d);
            d = lt;
            continue;
        }
        if ((!strcmp(kind, "sym") || !strcmp(kind, "asym")) && value >= 0 && value <= 1) {
            if (kind[0] == 'a' && !o->n_flips) rc = ct_set_error(CT_ERR_VALUE, "arena condition \"%s\": asym noise needs "
                                                                  ".flips (ct_cifar10_flips or ct_mnist_flips)", condition);
            else rc = ct_dataset_label_noise(d, kind[0] == 's' ? CT_NOISE_SYMMETRIC : CT_NOISE_ASYMMETRIC, value,
                                             o->flips, o->n_flips, seed);
        } else {
            rc = ct_set_error(CT_ERR_VALUE, "arena condition \"%s\": \"%s\" is not clean, exp:R, step:R (R >= 1), "
                              "sym:P or asym:P (P in [0, 1])", condition, part);
        }
        if (rc != CT_OK) {
            ct_dataset_free(d);
            return NULL;
        }
    }
    return d;
}

/* ---- one run ------------------------------------------------------------------------------------ */
enum { MAX_CURVE = 1000 };
typedef struct {
    char loss[256], condition[256];
    int seed;
    int embedding; /* 1: the loss takes features (judged by kNN and probe accuracy) */
    double accuracy, balanced, minority, f1, nll, brier, ece, best_accuracy, seconds, knn, probe;
    double per_class[256];
    int classes;
    float curve[MAX_CURVE]; /* test accuracy after each epoch (the first MAX_CURVE epochs) */
    int curve_n;
} arena_row;

enum { N_METRICS = 11, M_SECONDS = 8, M_KNN = 9, M_PROBE = 10 };
static const char *const metric_names[N_METRICS] = {"accuracy", "balanced_accuracy", "minority_accuracy", "macro_f1",
                                                    "nll", "brier", "ece", "best_accuracy", "seconds",
                                                    "knn_accuracy", "probe_accuracy"};
static double *metric_at(arena_row *r, int k) {
    double *const at[N_METRICS] = {&r->accuracy, &r->balanced, &r->minority, &r->f1, &r->nll, &r->brier,
                                   &r->ece, &r->best_accuracy, &r->seconds, &r->knn, &r->probe};
    return at[k];
}

/* Does metric k apply to a loss of this kind? Classifiers have the test metrics, embedding losses
 * the frozen-feature accuracies, both the seconds. */
static int metric_applies(int embedding, int k) { return k == M_SECONDS || (k == M_KNN || k == M_PROBE) == embedding; }

/* The losses whose input is features (losses/losses.h, the embedding losses), by name. */
static int is_embedding_loss(const char *spec) {
    static const char *const names[] = {"supcon", "ntxent", "circle", "circle_class", "triplet", "center"};
    const size_t len = strcspn(spec, ":");
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (strlen(names[k]) == len && !strncmp(spec, names[k], len)) return 1;
    return 0;
}

/* Test metrics (under the loss's eval transform) and each class's accuracy (recall) on the test set. */
static int evaluate_classes(ct_model *m, ct_module *net, ct_loader *test, int classes, arena_row *row) {
    ct_loss *loss = ct_loss_parse(row->loss); /* its eval transform: how its logits become probabilities */
    if (!loss) return CT_ERR_VALUE;
    const ct_eval_transform transform = ct_loss_eval_transform(loss);
    ct_loss_free(loss);
    ct_metrics *metrics = ct_metrics_new(classes, CT_METRICS(.transform = transform));
    if (!metrics) return CT_ERR_MEMORY;
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_model_train(m, 0);
    int status = CT_OK;
    ct_batch b;
    while (ct_loader_next(test, &b)) {
        if (status == CT_OK) status = ct_metrics_add(metrics, ct_forward(tape, net, b.x), b.y);
        ct_tape_reset(tape);
    }
    const ct_metrics_result r = ct_metrics_compute(metrics);
    double precision[256], f1[256];
    long support[256];
    ct_metrics_per_class(metrics, precision, row->per_class, f1, support);
    row->accuracy = r.accuracy, row->balanced = r.balanced_accuracy, row->f1 = r.f1, row->nll = r.nll;
    row->brier = r.brier, row->ece = r.ece, row->classes = classes;
    ct_tape_free(tape);
    ct_metrics_free(metrics);
    return status;
}

/* The mean accuracy of the rarest third of the classes (the most training samples first dropped;
 * on a tie the higher class index counts as rarer). */
static double minority_accuracy(const ct_dataset *train, const arena_row *row) {
    const int C = row->classes, k = (C + 2) / 3;
    long counts[256];
    ct_dataset_class_counts(train, counts);
    int order[256];
    for (int c = 0; c < C; c++) order[c] = c;
    for (int i = 1; i < C; i++) /* insertion sort: fewest samples first, then the higher index */
        for (int j = i; j > 0; j--) {
            const int a = order[j - 1], b = order[j];
            if (counts[b] < counts[a] || (counts[b] == counts[a] && b > a)) order[j - 1] = b, order[j] = a;
            else break;
        }
    double sum = 0;
    for (int i = 0; i < k; i++) sum += row->per_class[order[i]];
    return sum / k;
}

/* A run's loss, made before the optimizer so that the learnable state ct_loss_bind adds to m is among
 * what it trains; counts=auto becomes this training set's class counts (the condition's subset and
 * noisy labels, as trained on). The network's logits (classes wide) are the loss's input. */
static int prepare_loss(ct_loss *loss, ct_model *m, const ct_dataset *train, int classes) {
    double *counts = calloc((size_t)classes, sizeof *counts);
    if (!counts) return ct_set_error(CT_ERR_MEMORY, "out of memory");
    for (int i = 0; i < train->n; i++)
        if (train->labels[i] >= 0 && train->labels[i] < classes) counts[train->labels[i]]++;
    int status = ct_loss_set_counts(loss, counts, classes);
    free(counts);
    return status == CT_OK ? ct_loss_bind(loss, m, "loss", classes, classes) : status;
}

/* A two-view source over a loader of .views = V: x holds V·n rows, sample-major; the labels are
 * repeated for each view (V·n of them), or with .ids each sample's index in the batch, so the loss
 * sees rows (V·n, D) and V·n labels. SupCon on (n, V, D) with n labels is SupCon on (V·n, D) with the
 * labels repeated (the positives of a view are the other rows of its label either way); NT-Xent is
 * SupCon whose labels are the samples themselves. */
typedef struct {
    ct_batch_source inner;
    int views, ids;
    int *labels, cap;
} view_source;

static int view_next(void *state, ct_tensor **x, ct_labels *y) {
    view_source *v = state;
    ct_labels inner;
    if (!v->inner.next(v->inner.state, x, &inner)) return 0;
    const int n = inner.n * v->views;
    if (n > v->cap) {
        int *grown = realloc(v->labels, (size_t)n * sizeof *grown);
        CT_CHECK(grown, "ct_arena_run", "out of memory for %d labels", n);
        v->labels = grown, v->cap = n;
    }
    for (int i = 0; i < inner.n; i++)
        for (int k = 0; k < v->views; k++) v->labels[v->views * i + k] = v->ids ? i : inner.data[i];
    *y = CT_LABELS(v->labels, n);
    return 1;
}
static int view_batches(void *state) {
    view_source *v = state;
    return v->inner.batches ? v->inner.batches(v->inner.state) : 0;
}
static int view_seek(void *state, int epoch, int batch) {
    view_source *v = state;
    return v->inner.seek ? v->inner.seek(v->inner.state, epoch, batch) : ct_set_error(CT_ERR_VALUE, "cannot seek");
}

/* An epoch line of an embedding run (ct_fit's bar would show an accuracy of features). */
typedef struct {
    arena_row *row;
    int epochs, embedding_progress;
} epoch_watch;

/* After each epoch: its test accuracy into the row's curve; an embedding loss's line when asked. */
static void on_epoch(const ct_fit_epoch *e, void *user) {
    epoch_watch *w = user;
    if (e->evaluated && w->row->curve_n < MAX_CURVE) w->row->curve[w->row->curve_n++] = (float)e->val.accuracy;
    if (!w->embedding_progress) return;
    printf("arena:   epoch %d/%d: training loss %.4f (%.0f s)\n", e->epoch, w->epochs, e->train_loss, e->seconds);
    fflush(stdout);
}

/* One (condition, loss, seed) run on the condition's training set. */
static int run_one(const ct_dataset *train, const ct_dataset *test, const ct_arena_opts *o, const float *mean,
                   const float *std, arena_row *row) {
    const double started = ct_time_now();
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, (uint64_t)row->seed);
    const int embedding = row->embedding, classes = test->classes;
    ct_module *net = ct_model_parse(m, o->model, CT_SHAPE(train->channels, train->height, train->width),
                                    embedding ? o->embedding_dim : classes);
    /* the loss, bound before the optimizer (its state joins m's parameters); an embedding loss on
     * the network's output features, NT-Xent as the SupCon it is, on the samples as labels */
    ct_loss *loss = NULL;
    int status = net ? CT_OK : CT_ERR_VALUE;
    const int ntxent = embedding && !strncmp(row->loss, "ntxent", 6);
    const int views = embedding && (ntxent || !strncmp(row->loss, "supcon", 6)) ? 2 : 1;
    if (net && embedding) {
        char spec[300];
        snprintf(spec, sizeof spec, "%s%.255s", ntxent ? "supcon" : "", row->loss + (ntxent ? 6 : 0));
        loss = ct_loss_parse(spec);
        status = loss ? ct_loss_bind(loss, m, "loss", classes, o->embedding_dim) : CT_ERR_VALUE;
    } else if (net) {
        loss = ct_loss_parse(row->loss);
        status = loss ? prepare_loss(loss, m, train, classes) : CT_ERR_VALUE;
    }
    ct_optim *opt = status == CT_OK ? ct_optim_parse(m, o->optim ? o->optim : "sgd:lr=0.05,momentum=0.9") : NULL;
    if (!opt) {
        ct_loss_free(loss);
        ct_model_free(m);
        return status == CT_OK ? CT_ERR_VALUE : status;
    }
    ct_loader_opts lo = CT_LOADER(.batch = o->batch, .seed = (uint64_t)row->seed, .crop_padding = o->crop_padding,
                                  .hflip = o->hflip, .normalize = o->normalize, .prefetch = 1, .views = views);
    ct_loader_opts eo = CT_LOADER(.batch = 500, .shuffle = 0, .normalize = o->normalize);
    memcpy(lo.mean, mean, sizeof lo.mean), memcpy(lo.std, std, sizeof lo.std);
    memcpy(eo.mean, mean, sizeof eo.mean), memcpy(eo.std, std, sizeof eo.std);
    ct_loader *lt = ct_loader_new(train, lo), *le = ct_loader_new(test, eo);
    view_source vs = {ct_loader_source(lt), views, ntxent, NULL, 0};
    const ct_batch_source two_views = {&vs, view_next, view_batches, view_seek};
    const ct_batch_source val = ct_loader_source(le);
    ct_fit_result r;
    epoch_watch watch = {row, o->epochs, o->progress == 1 && embedding};
    row->curve_n = 0;
    status = ct_fit(m, net, opt, views > 1 ? two_views : ct_loader_source(lt), embedding ? NULL : &val,
                    CT_FIT(.epochs = o->epochs, .bound_loss = loss, .schedule = o->schedule ? o->schedule : "cosine",
                           .progress = o->progress == 1 && !embedding, .on_epoch = on_epoch, .user = &watch),
                    &r);
    if (status == CT_OK && embedding) {
        /* frozen features of the training set as trained on (plain images, one view) and of the test set */
        ct_loader *plain = ct_loader_new(train, eo);
        ct_probe_result p;
        status = ct_probe_evaluate(m, net, ct_loader_source(plain), val, classes,
                                   CT_PROBE(.knn_k = o->knn_k, .probe_iterations = o->probe_iterations), &p);
        ct_loader_free(plain);
        row->knn = p.knn_accuracy, row->probe = p.probe_accuracy;
        row->accuracy = row->balanced = row->minority = row->f1 = row->nll = row->brier = row->ece = NAN;
        row->best_accuracy = NAN, row->classes = 0;
    } else if (status == CT_OK && (status = evaluate_classes(m, net, le, classes, row)) == CT_OK) {
        row->best_accuracy = r.best.val.accuracy;
        row->minority = minority_accuracy(train, row);
        row->knn = row->probe = NAN;
    }
    row->seconds = ct_time_now() - started;
    free(vs.labels);
    ct_loader_free(lt), ct_loader_free(le);
    ct_optim_free(opt);
    ct_loss_free(loss);
    ct_model_free(m);
    return status;
}

/* ---- runs.csv ------------------------------------------------------------------------------------ */
/* Quoted CSV field: specs hold commas. */
static void put_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The header line of runs.csv (without its newline). */
static void csv_header(char *buf, size_t len) {
    size_t at = (size_t)snprintf(buf, len, "loss,condition,seed");
    for (int k = 0; k < N_METRICS && at < len; k++) at += (size_t)snprintf(buf + at, len - at, ",%s", metric_names[k]);
    if (at < len) snprintf(buf + at, len - at, ",per_class_accuracy,test_accuracy_by_epoch");
}

/* One row; a metric that does not apply to the loss is an empty field. */
static void put_row(FILE *f, const arena_row *r) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    put_field(f, r->loss), fputc(',', f), put_field(f, r->condition);
    fprintf(f, ",%d", r->seed);
    for (int k = 0; k < N_METRICS; k++) {
        fputc(',', f);
        if (metric_applies(r->embedding, k)) fprintf(f, "%.9g", *metric_at((arena_row *)r, k));
    }
    fputs(",\"", f);
    for (int c = 0; c < r->classes; c++) fprintf(f, "%s%.6g", c ? " " : "", r->per_class[c]);
    fputs("\",\"", f);
    for (int e = 0; e < r->curve_n; e++) fprintf(f, "%s%.5g", e ? " " : "", r->curve[e]);
    fputs("\"\n", f);
    ct_c_numbers_end(numbers);
}

static int append_row(const char *path, const arena_row *r) {
    FILE *f = fopen(path, "a");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (ftell(f) == 0) {
        char header[512];
        csv_header(header, sizeof header);
        fprintf(f, "%s\n", header);
    }
    put_row(f, r);
    return fclose(f) ? ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno)) : CT_OK;
}

/* runs.csv again, whole, with the current header: a temporary file renamed over it. */
static int rewrite_rows(const char *path, const arena_row *rows, int n) {
    char tmp[1200], header[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    csv_header(header, sizeof header);
    fprintf(f, "%s\n", header);
    for (int i = 0; i < n; i++) put_row(f, &rows[i]);
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return ct_set_error(CT_ERR_IO, "%s: cannot rewrite it with the current columns: %s", path, strerror(errno));
    }
    return CT_OK;
}

/* One quoted or plain field at *p (advanced past it and its comma) into out. */
static void get_field(const char **p, char *out, size_t len) {
    size_t n = 0;
    const char *s = *p;
    if (*s == '"') {
        for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
            if (*s == '"') s++;
            if (n + 1 < len) out[n++] = *s;
        }
        if (*s == '"') s++;
    } else {
        for (; *s && *s != ',' && *s != '\n'; s++)
            if (n + 1 < len) out[n++] = *s;
    }
    out[n] = 0;
    if (*s == ',') s++;
    *p = s;
}

enum { MAX_COLUMNS = 32, COL_LOSS = -1, COL_CONDITION = -2, COL_SEED = -3, COL_PER_CLASS = -4, COL_CURVE = -5,
       COL_OTHER = -6 };

/* Every row of runs.csv (none when it does not exist), its columns found by the header's names (a
 * column it lacks is NaN or empty); *stale = 1 when its header is not the current one. Lines are read
 * whole, however long (a long run's curve). */
static int read_rows(const char *path, arena_row **rows, int *n, int *stale) {
    *rows = NULL, *n = 0, *stale = 0;
    FILE *f = fopen(path, "r");
    if (!f) return CT_OK;
    char *line = NULL, *field = NULL, header[512];
    size_t line_cap = 0, field_cap = 0;
    int cap = 0, columns[MAX_COLUMNS], n_columns = 0, status = CT_OK;
    csv_header(header, sizeof header);
    const ct_c_numbers numbers = ct_c_numbers_begin();
    for (int lineno = 0; status == CT_OK && getline(&line, &line_cap, f) > 0; lineno++) {
        if (field_cap < line_cap) {
            char *grown = realloc(field, line_cap);
            if (!grown) {
                status = ct_set_error(CT_ERR_MEMORY, "out of memory reading %s", path);
                break;
            }
            field = grown, field_cap = line_cap;
        }
        if (lineno == 0) { /* the header: which field is which */
            line[strcspn(line, "\r\n")] = 0;
            *stale = strcmp(line, header) != 0;
            for (const char *p = line; *p && n_columns < MAX_COLUMNS;) {
                char name[64];
                get_field(&p, name, sizeof name);
                int c = !strcmp(name, "loss") ? COL_LOSS : !strcmp(name, "condition") ? COL_CONDITION
                        : !strcmp(name, "seed") ? COL_SEED : !strcmp(name, "per_class_accuracy") ? COL_PER_CLASS
                        : !strcmp(name, "test_accuracy_by_epoch") ? COL_CURVE : COL_OTHER;
                for (int k = 0; k < N_METRICS; k++)
                    if (!strcmp(name, metric_names[k])) c = k;
                columns[n_columns++] = c;
            }
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            arena_row *grown = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!grown) {
                status = ct_set_error(CT_ERR_MEMORY, "out of memory reading %s", path);
                break;
            }
            *rows = grown;
        }
        arena_row *r = &(*rows)[*n];
        memset(r, 0, sizeof *r);
        for (int k = 0; k < N_METRICS; k++) *metric_at(r, k) = NAN;
        const char *p = line;
        for (int c = 0; c < n_columns && *p && *p != '\n'; c++) {
            if (columns[c] == COL_LOSS) get_field(&p, r->loss, sizeof r->loss);
            else if (columns[c] == COL_CONDITION) get_field(&p, r->condition, sizeof r->condition);
            else get_field(&p, field, field_cap);
            if (columns[c] == COL_SEED) r->seed = atoi(field);
            else if (columns[c] >= 0 && field[0]) *metric_at(r, columns[c]) = strtod(field, NULL);
            else if (columns[c] == COL_PER_CLASS)
                for (char *q = field, *end; r->classes < 256; q = end) {
                    const double v = strtod(q, &end);
                    if (end == q) break;
                    r->per_class[r->classes++] = v;
                }
            else if (columns[c] == COL_CURVE)
                for (char *q = field, *end; r->curve_n < MAX_CURVE; q = end) {
                    const double v = strtod(q, &end);
                    if (end == q) break;
                    r->curve[r->curve_n++] = (float)v;
                }
        }
        r->embedding = is_embedding_loss(r->loss);
        if (r->loss[0]) (*n)++;
    }
    ct_c_numbers_end(numbers);
    free(line), free(field);
    fclose(f);
    if (status != CT_OK) free(*rows), *rows = NULL, *n = 0;
    return status;
}

/* ---- table.md ------------------------------------------------------------------------------------- */
typedef struct {
    double mean, half; /* the 95% interval's half-width */
    int n;
} summary;

static summary summarise(const double *v, int n) {
    summary s = {NAN, NAN, n};
    if (!n) return s;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    s.mean = sum / n;
    for (int i = 0; i < n; i++) sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.half = ct_ci95_half_width(n, n > 1 ? sqrt(sq / (n - 1)) : NAN);
    return s;
}

/* "91.23 ± 0.45" (accuracies in percent), "91.23" for one seed, "—" for none. */
static void put_summary(FILE *f, summary s, int percent, int signed_value) {
    if (!s.n) { /* no run (yet) */
        fputs(" — |", f);
        return;
    }
    const double k = percent ? 100 : 1;
    const char *fmt = signed_value ? (percent ? " %+.2f" : " %+.4f") : (percent ? " %.2f" : " %.4f");
    fprintf(f, fmt, k * s.mean);
    if (isfinite(s.half)) fprintf(f, percent ? " ± %.2f" : " ± %.4f", k * s.half);
    fputs(" |", f);
}

/* The columns of the tables: the classifier metrics when a loss is a classifier, the frozen-feature
 * accuracies when one is an embedding loss, and (paired table, a mixed list only) LINEAR_TOP1. */
enum { LINEAR_TOP1 = -1, MAX_TABLE = 12 };
static int table_columns(char **losses, int n_losses, int *cols) {
    static const int classifier[] = {0, 1, 2, 3, 4, 6}; /* accuracy, balanced, minority, F1, NLL, ECE */
    int any[2] = {0, 0}, n = 0;
    for (int l = 0; l < n_losses; l++) any[is_embedding_loss(losses[l])] = 1;
    for (size_t k = 0; any[0] && k < sizeof classifier / sizeof *classifier; k++) cols[n++] = classifier[k];
    if (any[1]) cols[n++] = M_KNN, cols[n++] = M_PROBE;
    return n;
}

static const char *column_name(int k) { return k == LINEAR_TOP1 ? "linear top-1" : metric_names[k]; }
static int column_percent(int k) { return k <= 3 || k == M_KNN || k == M_PROBE || k == LINEAR_TOP1; }
static int column_applies(int embedding, int k) { return k == LINEAR_TOP1 || metric_applies(embedding, k); }
/* A row's value of column k; linear top-1 is a classifier's test accuracy, an embedding loss's probe accuracy. */
static double column_value(const arena_row *r, int k) {
    if (k == LINEAR_TOP1) return r->embedding ? r->probe : r->accuracy;
    return *metric_at((arena_row *)r, k);
}

static void write_condition(FILE *f, const char *condition, char **losses, char **shown, int n_losses,
                            const char *baseline, const char *baseline_shown, const arena_row *rows, int n_rows) {
    int cols[MAX_TABLE];
    const int n_cols = table_columns(losses, n_losses, cols);
    fprintf(f, "\n## %s\n\n| loss | seeds |", condition);
    for (int k = 0; k < n_cols; k++) fprintf(f, " %s |", column_name(cols[k]));
    fputs("\n|---|---:|", f);
    for (int k = 0; k < n_cols; k++) fputs("---:|", f);
    fputc('\n', f);
    double *v = malloc((size_t)(n_rows + 1) * sizeof *v);
    if (!v) return;
    for (int l = 0; l < n_losses; l++) {
        const int embedding = is_embedding_loss(losses[l]);
        int n = 0;
        for (int i = 0; i < n_rows; i++) n += !strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, condition);
        fprintf(f, "| %s | %d |", shown[l], n);
        for (int k = 0; k < n_cols; k++) {
            if (!column_applies(embedding, cols[k])) {
                fputs(" — |", f);
                continue;
            }
            int m = 0;
            for (int i = 0; i < n_rows; i++)
                if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, condition))
                    v[m++] = column_value(&rows[i], cols[k]);
            put_summary(f, summarise(v, m), column_percent(cols[k]), 0);
        }
        fputc('\n', f);
    }
    /* paired with the baseline: the same seed's difference, of a metric both losses have */
    int paired[MAX_TABLE], n_paired = n_cols, mixed = 0;
    memcpy(paired, cols, sizeof cols);
    for (int l = 0; l < n_losses; l++) mixed |= is_embedding_loss(losses[l]) != is_embedding_loss(baseline);
    if (mixed) paired[n_paired++] = LINEAR_TOP1;
    fprintf(f, "\nPaired with %s (the same seeds; mean difference ± 95%% interval):\n\n| loss | pairs |", baseline_shown);
    for (int k = 0; k < n_paired; k++) fprintf(f, " Δ %s |", column_name(paired[k]));
    fputs("\n|---|---:|", f);
    for (int k = 0; k < n_paired; k++) fputs("---:|", f);
    fputc('\n', f);
    const int baseline_embedding = is_embedding_loss(baseline);
    for (int l = 0; l < n_losses; l++) {
        if (!strcmp(losses[l], baseline)) continue;
        const int embedding = is_embedding_loss(losses[l]);
        fprintf(f, "| %s |", shown[l]);
        int pairs = 0;
        for (int i = 0; i < n_rows; i++)
            for (int j = 0; j < n_rows; j++)
                pairs += !strcmp(rows[i].loss, losses[l]) && !strcmp(rows[j].loss, baseline) &&
                         !strcmp(rows[i].condition, condition) && !strcmp(rows[j].condition, condition) &&
                         rows[i].seed == rows[j].seed;
        fprintf(f, " %d |", pairs);
        for (int k = 0; k < n_paired; k++) {
            if (!column_applies(embedding, paired[k]) || !column_applies(baseline_embedding, paired[k])) {
                fputs(" — |", f);
                continue;
            }
            int m = 0;
            for (int i = 0; i < n_rows; i++)
                for (int j = 0; j < n_rows; j++)
                    if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[j].loss, baseline) &&
                        !strcmp(rows[i].condition, condition) && !strcmp(rows[j].condition, condition) &&
                        rows[i].seed == rows[j].seed)
                        v[m++] = column_value(&rows[i], paired[k]) - column_value(&rows[j], paired[k]);
            put_summary(f, summarise(v, m), column_percent(paired[k]), 1);
        }
        fputc('\n', f);
    }
    if (mixed)
        fputs("\nΔ linear top-1 sets a classifier's test accuracy (its own last layer, trained with the network) "
              "against an embedding loss's linear-probe accuracy (a linear layer fitted afterwards on its frozen "
              "features), as the SupCon paper compares SupCon with cross-entropy: two linear read-outs trained "
              "differently, not one measurement taken twice. — : the metric does not apply to one of the two.\n", f);
    free(v);
}

/* ---- pictures ------------------------------------------------------------------------------------ */
/* A condition as a file-name part: "exp:100+sym:0.2" → "exp_100_sym_0.2". */
static void condition_slug(const char *condition, char *out, size_t len) {
    size_t n = 0;
    for (const char *c = condition; *c && n + 1 < len; c++)
        out[n++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ? *c : '_';
    out[n] = 0;
}

/* The mean over a loss's runs of one condition of v(row, k) for k < len: at each k, over the runs
 * that have it (v NaN: a run without it). Returns how many runs contributed. */
static int mean_over_runs(const arena_row *rows, int n_rows, const char *loss, const char *condition, int len,
                          double (*v)(const arena_row *, int), double *mean) {
    int runs = 0;
    for (int k = 0; k < len; k++) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < n_rows; i++) {
            if (strcmp(rows[i].loss, loss) || strcmp(rows[i].condition, condition)) continue;
            const double x = v(&rows[i], k);
            if (isfinite(x)) sum += x, n++;
        }
        mean[k] = n ? 100 * sum / n : NAN;
        if (n > runs) runs = n;
    }
    return runs;
}
static double curve_at(const arena_row *r, int k) { return k < r->curve_n ? r->curve[k] : NAN; }
static double class_at(const arena_row *r, int k) { return k < r->classes ? r->per_class[k] : NAN; }

static int picture_path(char *path, size_t len, const char *dir, const char *kind, const char *condition) {
    char slug[256];
    condition_slug(condition, slug, sizeof slug);
    return snprintf(path, len, "%s/%s-%s.png", dir, kind, slug) < (int)len;
}

/* Per condition, the classifier losses' mean test accuracy after each epoch (test_accuracy-COND.png)
 * and mean accuracy per class (per_class-COND.png); over several conditions, each loss's mean final
 * accuracy (an embedding loss's probe accuracy) per condition (conditions.png). A picture with no
 * data is not drawn. */
static int write_pictures(const char *dir, char **conditions, int n_conditions, char **losses, char **shown,
                          int n_losses, const arena_row *rows, int n_rows) {
    int longest = n_conditions, status = CT_OK;
    for (int i = 0; i < n_rows; i++) longest = rows[i].curve_n > longest ? rows[i].curve_n : longest;
    for (int i = 0; i < n_rows; i++) longest = rows[i].classes > longest ? rows[i].classes : longest;
    double *y = malloc((size_t)n_losses * (size_t)longest * sizeof *y), *x = malloc((size_t)longest * sizeof *x);
    char (*labels)[300] = malloc((size_t)n_losses * sizeof *labels);
    ct_plot_series *series = malloc((size_t)n_losses * sizeof *series);
    if (!y || !x || !labels || !series) status = ct_set_error(CT_ERR_MEMORY, "out of memory drawing %s's pictures", dir);
    for (int k = 0; k < longest && x; k++) x[k] = k;
    char path[1400], title[400];
    for (int c = 0; status == CT_OK && c < n_conditions; c++) {
        for (int kind = 0; status == CT_OK && kind < 2; kind++) {
            int n = 0;
            for (int l = 0; l < n_losses; l++) {
                if (is_embedding_loss(losses[l])) continue;
                int len = 0;
                for (int i = 0; i < n_rows; i++)
                    if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, conditions[c])) {
                        const int have = kind == 0 ? rows[i].curve_n : rows[i].classes;
                        len = have > len ? have : len;
                    }
                if (!len) continue;
                double *mean = y + (size_t)n * (size_t)longest;
                const int runs = mean_over_runs(rows, n_rows, losses[l], conditions[c], len, kind == 0 ? curve_at : class_at,
                                                mean);
                snprintf(labels[n], sizeof labels[n], "%.240s (%d run%s)", shown[l], runs, runs == 1 ? "" : "s");
                series[n] = (ct_plot_series){.label = labels[n], .x = kind == 0 ? NULL : x, .y = mean, .n = len,
                                             .color = -1};
                n++;
            }
            if (!n) continue;
            if (!picture_path(path, sizeof path, dir, kind == 0 ? "test_accuracy" : "per_class", conditions[c])) continue;
            snprintf(title, sizeof title, kind == 0 ? "Test accuracy per epoch, %.200s"
                                                    : "Accuracy per class, %.200s", conditions[c]);
            status = ct_plot_lines(path, series, n,
                                   CT_PLOT(.title = title, .x_label = kind == 0 ? "epoch (mean over the runs)"
                                                                           : "class index (mean over the runs)",
                                           .y_label = "test accuracy (%)"));
        }
    }
    if (status == CT_OK && n_conditions > 1) {
        int n = 0;
        for (int l = 0; l < n_losses; l++) {
            double *mean = y + (size_t)n * (size_t)longest;
            int any = 0;
            for (int c = 0; c < n_conditions; c++) {
                double sum = 0;
                int m = 0;
                for (int i = 0; i < n_rows; i++)
                    if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, conditions[c])) {
                        const double v = column_value(&rows[i], LINEAR_TOP1);
                        if (isfinite(v)) sum += v, m++;
                    }
                mean[c] = m ? 100 * sum / m : NAN;
                any |= m > 0;
                x[c] = c + 1;
            }
            if (!any) continue;
            snprintf(labels[n], sizeof labels[n], "%.250s", shown[l]);
            series[n] = (ct_plot_series){.label = labels[n], .x = x, .y = mean, .n = n_conditions, .color = -1};
            n++;
        }
        size_t at = (size_t)snprintf(title, sizeof title, "condition:");
        for (int c = 0; c < n_conditions && at < sizeof title; c++)
            at += (size_t)snprintf(title + at, sizeof title - at, " %d = %s%s", c + 1, conditions[c],
                                   c + 1 < n_conditions ? "," : "");
        if (n && snprintf(path, sizeof path, "%s/conditions.png", dir) < (int)sizeof path)
            status = ct_plot_lines(path, series, n,
                                   CT_PLOT(.title = "Test accuracy by condition (mean over seeds)", .x_label = title,
                                           .y_label = "test accuracy (%)"));
    }
    free(y), free(x), free(labels), free(series);
    return status;
}

static int write_table(const char *path, const ct_arena_opts *o, char **conditions, int n_conditions, char **losses,
                       char **shown, int n_losses, const char *baseline, const arena_row *rows, int n_rows) {
    const char *baseline_shown = baseline;
    int any_embedding = 0;
    for (int l = 0; l < n_losses; l++) {
        if (!strcmp(losses[l], baseline)) baseline_shown = shown[l];
        any_embedding |= is_embedding_loss(losses[l]);
    }
    FILE *f = fopen(path, "w");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    const ct_c_numbers numbers = ct_c_numbers_begin();
    fprintf(f, "# Arena: %s, %d epochs, batch %d, %s, schedule %s\n\nTest metrics after the last epoch, mean ± the "
               "half-width of the 95%% confidence interval over the seeds (Student's t); accuracies in percent. "
               "minority_accuracy: the rarest third of the classes in the training set. Each loss as given; runs.csv "
               "holds its full spec.\n",
            o->model, o->epochs, o->batch, o->optim ? o->optim : "sgd:lr=0.05,momentum=0.9",
            o->schedule ? o->schedule : "cosine");
    if (any_embedding)
        fprintf(f, "\nEmbedding losses are judged on the frozen %d-dimensional output of the network: knn_accuracy "
                   "(the %d most cosine-similar training features vote) and probe_accuracy (a logistic regression "
                   "fitted on the training features, %d full-batch steps); — where a metric does not apply.\n",
                o->embedding_dim, o->knn_k, o->probe_iterations);
    for (int c = 0; c < n_conditions; c++) {
        write_condition(f, conditions[c], losses, shown, n_losses, baseline, baseline_shown, rows, n_rows);
        /* the pictures write_pictures drew for it, beside this file */
        const char *kinds[2] = {"test_accuracy", "per_class"}, *alts[2] = {"test accuracy per epoch", "accuracy per class"};
        int shown_any = 0;
        for (int k = 0; k < 2; k++) {
            char picture[1400];
            if (!picture_path(picture, sizeof picture, o->out, kinds[k], conditions[c]) || access(picture, F_OK)) continue;
            fprintf(f, "%s![%s](%s)", shown_any ? " " : "\n", alts[k], strrchr(picture, '/') + 1);
            shown_any = 1;
        }
        if (shown_any) fputc('\n', f);
    }
    char picture[1200];
    snprintf(picture, sizeof picture, "%s/conditions.png", o->out);
    if (n_conditions > 1 && !access(picture, F_OK)) fputs("\n![test accuracy by condition](conditions.png)\n", f);
    ct_c_numbers_end(numbers);
    return fclose(f) ? ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno)) : CT_OK;
}

/* ---- the arena ------------------------------------------------------------------------------------ */
enum { MAX_LOSSES = 32, MAX_CONDITIONS = 16 };

/* The losses in their canonical form (ct_loss_describe); the options an embedding loss needs. */
static int canonical_losses(char **specs, int n, char (*canonical)[256], char **out, const ct_arena_opts *o) {
    for (int i = 0; i < n; i++) {
        ct_loss *loss = ct_loss_parse(specs[i]);
        if (!loss) return CT_ERR_VALUE;
        ct_loss_describe(loss, canonical[i], sizeof canonical[i]);
        ct_loss_free(loss);
        out[i] = canonical[i];
        if (!is_embedding_loss(canonical[i])) continue;
        if (o->embedding_dim < 1 || o->knn_k < 1 || o->probe_iterations < 1)
            return ct_set_error(CT_ERR_VALUE, "ct_arena_run: %s takes features: .embedding_dim = %d, .knn_k = %d and "
                                ".probe_iterations = %d must be >= 1", specs[i], o->embedding_dim, o->knn_k,
                                o->probe_iterations);
        if (!strncmp(canonical[i], "ntxent", 6) && !o->crop_padding && !o->hflip)
            return ct_set_error(CT_ERR_VALUE, "ct_arena_run: %s: the two views of a sample differ only by augmentation; "
                                "without .crop_padding or .hflip they are the same image (give one, or use supcon)",
                                specs[i]);
    }
    return CT_OK;
}

int ct_arena_run(const ct_dataset *train, const ct_dataset *test, ct_arena_opts o) {
    CT_CHECK(train && test && o.losses && o.model && o.out && o.seeds >= 1 && o.epochs >= 1 && o.batch >= 1,
             "ct_arena_run", "train, test, .losses, .model, .out, seeds, epochs and batch >= 1 are needed");
    char loss_buf[4096], cond_buf[1024], *loss_specs[MAX_LOSSES], *losses[MAX_LOSSES], *conditions[MAX_CONDITIONS];
    char canonical[MAX_LOSSES][256];
    const int n_losses = ct_arena_split(o.losses, loss_buf, sizeof loss_buf, loss_specs, MAX_LOSSES);
    const int n_conditions = ct_arena_split(o.conditions ? o.conditions : "clean", cond_buf, sizeof cond_buf, conditions,
                                            MAX_CONDITIONS);
    if (!n_losses) return ct_set_error(CT_ERR_VALUE, "ct_arena_run: no loss in \"%s\"", o.losses);
    int status = canonical_losses(loss_specs, n_losses, canonical, losses, &o);
    if (status) return status;
    char baseline[256];
    snprintf(baseline, sizeof baseline, "%s", losses[0]);
    if (o.baseline) {
        ct_loss *b = ct_loss_parse(o.baseline);
        if (!b) return CT_ERR_VALUE;
        ct_loss_describe(b, baseline, sizeof baseline);
        ct_loss_free(b);
        int found = 0;
        for (int i = 0; i < n_losses; i++) found |= !strcmp(losses[i], baseline);
        if (!found) return ct_set_error(CT_ERR_VALUE, "ct_arena_run: the baseline %s is not one of the losses", baseline);
    }
    if (mkdir(o.out, 0777) && errno != EEXIST) return ct_set_error(CT_ERR_IO, "%s: cannot make it: %s", o.out, strerror(errno));
    char csv[1100], table[1100];
    snprintf(csv, sizeof csv, "%s/runs.csv", o.out), snprintf(table, sizeof table, "%s/table.md", o.out);
    float mean[CT_LOADER_MAX_CHANNELS] = {0}, std[CT_LOADER_MAX_CHANNELS] = {1, 1, 1, 1};
    if (o.normalize) {
        ct_dataset_channel_stats(train, mean, std);
        for (int c = 0; c < CT_LOADER_MAX_CHANNELS; c++)
            if (!(std[c] > 0)) std[c] = 1;
    }
    arena_row *rows;
    int n_rows, stale;
    if ((status = read_rows(csv, &rows, &n_rows, &stale))) return status;
    if (stale && n_rows && (status = rewrite_rows(csv, rows, n_rows))) {
        free(rows);
        return status;
    }
    for (int c = 0; status == CT_OK && c < n_conditions; c++)
        for (int seed = 0; status == CT_OK && seed < o.seeds; seed++) {
            ct_dataset *d = NULL;
            for (int l = 0; status == CT_OK && l < n_losses; l++) {
                int done = 0;
                for (int i = 0; i < n_rows; i++)
                    done |= !strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, conditions[c]) && rows[i].seed == seed;
                if (done) continue;
                if (!d && !(d = apply_condition(train, conditions[c], &o, (uint64_t)seed))) {
                    status = CT_ERR_VALUE;
                    break;
                }
                arena_row row = {.seed = seed, .embedding = is_embedding_loss(losses[l])};
                snprintf(row.loss, sizeof row.loss, "%s", losses[l]);
                snprintf(row.condition, sizeof row.condition, "%s", conditions[c]);
                if (o.progress)
                    printf("arena: %s, %s, seed %d (%d training images)\n", loss_specs[l], conditions[c], seed, d->n);
                status = run_one(d, test, &o, mean, std, &row);
                if (status != CT_OK) {
                    char why[600];
                    snprintf(why, sizeof why, "%s", ct_last_error());
                    ct_set_error(status, "ct_arena_run: %s, %s, seed %d: %s", loss_specs[l], conditions[c], seed, why);
                    break;
                }
                if (o.progress && row.embedding)
                    printf("arena: %s, %s, seed %d: kNN accuracy %.2f%%, linear probe %.2f%% (%.0f s)\n", loss_specs[l],
                           conditions[c], seed, 100 * row.knn, 100 * row.probe, row.seconds);
                else if (o.progress)
                    printf("arena: %s, %s, seed %d: test accuracy %.2f%%, minority classes %.2f%%, ECE %.4f (%.0f s)\n",
                           loss_specs[l], conditions[c], seed, 100 * row.accuracy, 100 * row.minority, row.ece,
                           row.seconds);
                fflush(stdout);
                status = append_row(csv, &row);
            }
            ct_dataset_free(d);
        }
    free(rows);
    if ((status == CT_OK || n_rows) && read_rows(csv, &rows, &n_rows, &stale) == CT_OK) {
        int written = write_pictures(o.out, conditions, n_conditions, losses, loss_specs, n_losses, rows, n_rows);
        if (written == CT_OK)
            written = write_table(table, &o, conditions, n_conditions, losses, loss_specs, n_losses, baseline, rows, n_rows);
        if (status == CT_OK) status = written;
        free(rows);
    }
    return status;
}
