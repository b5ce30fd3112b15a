/* optim/arena.c — ct_arena_run (optim/arena.h): losses × seeds × data conditions, runs.csv and
 * table.md, and the statistics of the table (Student's t intervals). */
#define CT_BUILDING_LIBRARY
#include "arena.h"
#include "registry.h"
#include "../nn/zoo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
typedef struct {
    char loss[256], condition[256];
    int seed;
    double accuracy, balanced, minority, f1, nll, brier, ece, best_accuracy, seconds;
    double per_class[256];
    int classes;
} arena_row;

enum { N_METRICS = 9 };
static const char *const metric_names[N_METRICS] = {"accuracy", "balanced_accuracy", "minority_accuracy", "macro_f1",
                                                    "nll", "brier", "ece", "best_accuracy", "seconds"};
static double *metric_at(arena_row *r, int k) {
    double *const at[N_METRICS] = {&r->accuracy, &r->balanced, &r->minority, &r->f1, &r->nll,
                                   &r->brier, &r->ece, &r->best_accuracy, &r->seconds};
    return at[k];
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

/* One (condition, loss, seed) run on the condition's training set. */
static int run_one(const ct_dataset *train, const ct_dataset *test, const ct_arena_opts *o, const float *mean,
                   const float *std, arena_row *row) {
    const double started = ct_time_now();
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, (uint64_t)row->seed);
    ct_module *net = ct_model_parse(m, o->model, CT_SHAPE(train->channels, train->height, train->width), test->classes);
    ct_loss *loss = net ? ct_loss_parse(row->loss) : NULL;
    int status = loss ? prepare_loss(loss, m, train, test->classes) : CT_ERR_VALUE;
    ct_optim *opt = status == CT_OK ? ct_optim_parse(m, o->optim ? o->optim : "sgd:lr=0.05,momentum=0.9") : NULL;
    if (!opt) {
        ct_loss_free(loss);
        ct_model_free(m);
        return status == CT_OK ? CT_ERR_VALUE : status;
    }
    ct_loader_opts lo = CT_LOADER(.batch = o->batch, .seed = (uint64_t)row->seed, .crop_padding = o->crop_padding,
                                  .hflip = o->hflip, .normalize = o->normalize, .prefetch = 1);
    ct_loader_opts eo = CT_LOADER(.batch = 500, .shuffle = 0, .normalize = o->normalize);
    memcpy(lo.mean, mean, sizeof lo.mean), memcpy(lo.std, std, sizeof lo.std);
    memcpy(eo.mean, mean, sizeof eo.mean), memcpy(eo.std, std, sizeof eo.std);
    ct_loader *lt = ct_loader_new(train, lo), *le = ct_loader_new(test, eo);
    const ct_batch_source val = ct_loader_source(le);
    ct_fit_result r;
    status = ct_fit(m, net, opt, ct_loader_source(lt), &val,
                    CT_FIT(.epochs = o->epochs, .bound_loss = loss, .schedule = o->schedule ? o->schedule : "cosine",
                           .progress = o->progress == 1),
                    &r);
    if (status == CT_OK) status = evaluate_classes(m, net, le, test->classes, row);
    if (status == CT_OK) {
        row->best_accuracy = r.best.val.accuracy;
        row->minority = minority_accuracy(train, row);
        row->seconds = ct_time_now() - started;
    }
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

static int append_row(const char *path, const arena_row *r) {
    FILE *f = fopen(path, "a");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (ftell(f) == 0) {
        fputs("loss,condition,seed", f);
        for (int k = 0; k < N_METRICS; k++) fprintf(f, ",%s", metric_names[k]);
        fputs(",per_class_accuracy\n", f);
    }
    const ct_c_numbers numbers = ct_c_numbers_begin();
    put_field(f, r->loss), fputc(',', f), put_field(f, r->condition);
    fprintf(f, ",%d", r->seed);
    for (int k = 0; k < N_METRICS; k++) fprintf(f, ",%.9g", *metric_at((arena_row *)r, k));
    fputs(",\"", f);
    for (int c = 0; c < r->classes; c++) fprintf(f, "%s%.6g", c ? " " : "", r->per_class[c]);
    fputs("\"\n", f);
    ct_c_numbers_end(numbers);
    return fclose(f) ? ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno)) : CT_OK;
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

/* Every row of runs.csv (none when it does not exist). */
static int read_rows(const char *path, arena_row **rows, int *n) {
    *rows = NULL, *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return CT_OK;
    char line[8192];
    int cap = 0;
    const ct_c_numbers numbers = ct_c_numbers_begin();
    for (int lineno = 0; fgets(line, sizeof line, f); lineno++) {
        if (lineno == 0) continue; /* the header */
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            arena_row *grown = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!grown) {
                ct_c_numbers_end(numbers);
                fclose(f);
                return ct_set_error(CT_ERR_MEMORY, "out of memory reading %s", path);
            }
            *rows = grown;
        }
        arena_row *r = &(*rows)[*n];
        memset(r, 0, sizeof *r);
        const char *p = line;
        char field[4096];
        get_field(&p, r->loss, sizeof r->loss), get_field(&p, r->condition, sizeof r->condition);
        get_field(&p, field, sizeof field), r->seed = atoi(field);
        for (int k = 0; k < N_METRICS; k++) get_field(&p, field, sizeof field), *metric_at(r, k) = strtod(field, NULL);
        get_field(&p, field, sizeof field);
        for (char *q = field, *end; r->classes < 256; q = end) {
            const double v = strtod(q, &end);
            if (end == q) break;
            r->per_class[r->classes++] = v;
        }
        if (r->loss[0]) (*n)++;
    }
    ct_c_numbers_end(numbers);
    fclose(f);
    return CT_OK;
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

/* "91.23 ± 0.45" (accuracies in percent), or "91.23" for one seed. */
static void put_summary(FILE *f, summary s, int percent, int signed_value) {
    const double k = percent ? 100 : 1;
    const char *fmt = signed_value ? (percent ? " %+.2f" : " %+.4f") : (percent ? " %.2f" : " %.4f");
    fprintf(f, fmt, k * s.mean);
    if (isfinite(s.half)) fprintf(f, percent ? " ± %.2f" : " ± %.4f", k * s.half);
    fputs(" |", f);
}

static const int table_metrics[] = {0, 1, 2, 3, 4, 6}; /* accuracy, balanced, minority, F1, NLL, ECE */
enum { N_TABLE = sizeof table_metrics / sizeof *table_metrics };

static void write_condition(FILE *f, const char *condition, char **losses, char **shown, int n_losses,
                            const char *baseline, const char *baseline_shown, const arena_row *rows, int n_rows) {
    fprintf(f, "\n## %s\n\n| loss | seeds |", condition);
    for (int k = 0; k < N_TABLE; k++) fprintf(f, " %s |", metric_names[table_metrics[k]]);
    fputs("\n|---|---:|", f);
    for (int k = 0; k < N_TABLE; k++) fputs("---:|", f);
    fputc('\n', f);
    double *v = malloc((size_t)(n_rows + 1) * sizeof *v);
    for (int l = 0; l < n_losses; l++) {
        int n = 0;
        for (int i = 0; i < n_rows; i++) n += !strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, condition);
        fprintf(f, "| %s | %d |", shown[l], n);
        for (int k = 0; k < N_TABLE; k++) {
            int m = 0;
            for (int i = 0; i < n_rows; i++)
                if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[i].condition, condition))
                    v[m++] = *metric_at((arena_row *)&rows[i], table_metrics[k]);
            put_summary(f, summarise(v, m), table_metrics[k] <= 3, 0);
        }
        fputc('\n', f);
    }
    /* paired with the baseline: the same seed's difference */
    fprintf(f, "\nPaired with %s (the same seeds; mean difference ± 95%% interval):\n\n| loss | pairs |", baseline_shown);
    for (int k = 0; k < N_TABLE; k++) fprintf(f, " Δ %s |", metric_names[table_metrics[k]]);
    fputs("\n|---|---:|", f);
    for (int k = 0; k < N_TABLE; k++) fputs("---:|", f);
    fputc('\n', f);
    for (int l = 0; l < n_losses; l++) {
        if (!strcmp(losses[l], baseline)) continue;
        fprintf(f, "| %s |", shown[l]);
        int pairs = 0;
        for (int i = 0; i < n_rows; i++)
            for (int j = 0; j < n_rows; j++)
                pairs += !strcmp(rows[i].loss, losses[l]) && !strcmp(rows[j].loss, baseline) &&
                         !strcmp(rows[i].condition, condition) && !strcmp(rows[j].condition, condition) &&
                         rows[i].seed == rows[j].seed;
        fprintf(f, " %d |", pairs);
        for (int k = 0; k < N_TABLE; k++) {
            int m = 0;
            for (int i = 0; i < n_rows; i++)
                for (int j = 0; j < n_rows; j++)
                    if (!strcmp(rows[i].loss, losses[l]) && !strcmp(rows[j].loss, baseline) &&
                        !strcmp(rows[i].condition, condition) && !strcmp(rows[j].condition, condition) &&
                        rows[i].seed == rows[j].seed)
                        v[m++] = *metric_at((arena_row *)&rows[i], table_metrics[k]) -
                                 *metric_at((arena_row *)&rows[j], table_metrics[k]);
            put_summary(f, summarise(v, m), table_metrics[k] <= 3, 1);
        }
        fputc('\n', f);
    }
    free(v);
}

static int write_table(const char *path, const ct_arena_opts *o, char **conditions, int n_conditions, char **losses,
                       char **shown, int n_losses, const char *baseline, const arena_row *rows, int n_rows) {
    const char *baseline_shown = baseline;
    for (int l = 0; l < n_losses; l++)
        if (!strcmp(losses[l], baseline)) baseline_shown = shown[l];
    FILE *f = fopen(path, "w");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    const ct_c_numbers numbers = ct_c_numbers_begin();
    fprintf(f, "# Arena: %s, %d epochs, batch %d, %s, schedule %s\n\nTest metrics after the last epoch, mean ± the "
               "half-width of the 95%% confidence interval over the seeds (Student's t); accuracies in percent. "
               "minority_accuracy: the rarest third of the classes in the training set. Each loss as given; runs.csv "
               "holds its full spec.\n",
            o->model, o->epochs, o->batch, o->optim ? o->optim : "sgd:lr=0.05,momentum=0.9",
            o->schedule ? o->schedule : "cosine");
    for (int c = 0; c < n_conditions; c++)
        write_condition(f, conditions[c], losses, shown, n_losses, baseline, baseline_shown, rows, n_rows);
    ct_c_numbers_end(numbers);
    return fclose(f) ? ct_set_error(CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno)) : CT_OK;
}

/* ---- the arena ------------------------------------------------------------------------------------ */
enum { MAX_LOSSES = 32, MAX_CONDITIONS = 16 };

/* The losses in their canonical form (ct_loss_describe), refusing embedding losses. */
static int canonical_losses(char **specs, int n, char (*canonical)[256], char **out) {
    for (int i = 0; i < n; i++) {
        ct_loss *loss = ct_loss_parse(specs[i]);
        if (!loss) return CT_ERR_VALUE;
        ct_loss_describe(loss, canonical[i], sizeof canonical[i]);
        ct_loss_free(loss);
        static const char *const embedding[] = {"supcon", "circle", "triplet", "center"};
        for (size_t k = 0; k < sizeof embedding / sizeof *embedding; k++)
            if (!strncmp(canonical[i], embedding[k], strlen(embedding[k])))
                return ct_set_error(CT_ERR_VALUE, "ct_arena_run: %s takes embeddings; the arena trains classifiers on "
                                    "logits (evaluate embedding losses with ct_knn_accuracy / ct_linear_probe)", specs[i]);
        out[i] = canonical[i];
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
    int status = canonical_losses(loss_specs, n_losses, canonical, losses);
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
    int n_rows;
    if ((status = read_rows(csv, &rows, &n_rows))) return status;
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
                arena_row row = {.seed = seed};
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
                if (o.progress) printf("arena: %s, %s, seed %d: test accuracy %.2f%%, minority classes %.2f%%, ECE %.4f (%.0f s)\n",
                                       loss_specs[l], conditions[c], seed, 100 * row.accuracy, 100 * row.minority, row.ece,
                                       row.seconds);
                fflush(stdout);
                status = append_row(csv, &row);
            }
            ct_dataset_free(d);
        }
    free(rows);
    if ((status == CT_OK || n_rows) && read_rows(csv, &rows, &n_rows) == CT_OK) {
        const int written =
            write_table(table, &o, conditions, n_conditions, losses, loss_specs, n_losses, baseline, rows, n_rows);
        if (status == CT_OK) status = written;
        free(rows);
    }
    return status;
}
