/* tests/optim/test_arena.c — the loss arena (optim/arena.h): Student's t quantiles and intervals
 * against published table values, the spec-list splitter, and small arenas on synthetic data: its
 * rows, its table, continuing where it stopped, its refusals, and embedding losses judged by kNN and
 * linear-probe accuracy beside a classifier. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* t(0.975, df) from the standard tables (to the 7 digits printed there). */
CT_TEST(arena, student_t_quantiles_and_intervals) {
    const struct {
        double df, t;
    } table[] = {{1, 12.7062047}, {2, 4.3026527}, {4, 2.7764451}, {9, 2.2621572}, {29, 2.0452296}, {120, 1.9799304}};
    for (size_t k = 0; k < sizeof table / sizeof *table; k++)
        CHECK_NEAR(ct_student_t_quantile(0.975, table[k].df), table[k].t, 1e-6, 0);
    CHECK_NEAR(ct_student_t_quantile(0.025, 4), -2.7764451, 1e-6, 0);
    CHECK_NEAR(ct_student_t_quantile(0.5, 7), 0, 1e-9, 0);
    CHECK_NEAR(ct_student_t_quantile(0.995, 10), 3.1692727, 1e-6, 0);
    /* 1, 2, 3, 4, 5: sd √2.5, half-width t(0.975, 4)·√2.5/√5 = 1.9632432 */
    CHECK_NEAR(ct_ci95_half_width(5, sqrt(2.5)), 1.9632432, 1e-6, 0);
    CHECK(isnan(ct_ci95_half_width(1, 0)), "one value has no interval");
}

CT_TEST(arena, spec_lists_split_between_specs_only) {
    char buf[512], *s[8];
    int n = ct_arena_split("focal:gamma=2,alpha=0.25,cross_entropy", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "focal:gamma=2,alpha=0.25") && !strcmp(s[1], "cross_entropy"), "%d: %s | %s", n, s[0],
          n > 1 ? s[1] : "");
    n = ct_arena_split(" a ; b;c ", buf, sizeof buf, s, 8);
    CHECK(n == 3 && !strcmp(s[0], "a") && !strcmp(s[1], "b") && !strcmp(s[2], "c"), "%d pieces", n);
    n = ct_arena_split("ldam:counts=[5,3,1],cross_entropy", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "ldam:counts=[5,3,1]"), "%d: %s", n, s[0]);
    n = ct_arena_split("exp:100+sym:0.2;clean", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "exp:100+sym:0.2"), "%d: %s", n, s[0]);
}

static ct_dataset *blobs(int n, uint64_t seed) { return ct_test_blobs(n, seed); }

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0;
    for (int c; f && (c = fgetc(f)) != EOF;) n += c == '\n';
    if (f) fclose(f);
    return n;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

CT_TEST(arena, runs_tabulates_and_continues) {
    ct_dataset *train = blobs(400, 1), *test = blobs(200, 2);
    char out[1100], csv[1200], table[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out), snprintf(table, sizeof table, "%s/table.md", out);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy, focal:gamma=2", .conditions = "clean; exp:10", .seeds = 2,
                               .model = "mlp:hidden=[16]", .optim = "adam:lr=0.01", .epochs = 3, .batch = 50,
                               .out = out, .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 1 + 8, "runs.csv has %d lines, want a header and 2 losses x 2 conditions x 2 seeds",
          count_lines(csv) - 1);
    char *text = slurp(csv);
    CHECK(text && strstr(text, "\"focal:") && strstr(text, "gamma=2") && strstr(text, ",\"exp:10\",1,"), "runs.csv:\n%s",
          text ? text : "");
    free(text);
    text = slurp(table);
    CHECK(text && strstr(text, "## clean") && strstr(text, "## exp:10") && strstr(text, " ± ") &&
              strstr(text, "Paired with cross_entropy") && strstr(text, "| 2 |"),
          "table.md:\n%s", text ? text : "");
    free(text);
    /* again: every run is in runs.csv, nothing runs; one more seed runs only seed 2 */
    CHECK(ct_arena_run(train, test, o) == CT_OK && count_lines(csv) == 9, "a second call ran again: %d lines",
          count_lines(csv));
    o.seeds = 3;
    CHECK(ct_arena_run(train, test, o) == CT_OK && count_lines(csv) == 13, "seeds 3: %d lines", count_lines(csv));
    /* refusals, named */
    o.conditions = "exp:0.5";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "exp:0.5"), "%s", ct_last_error());
    o.conditions = "asym:0.2";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), ".flips"), "%s", ct_last_error());
    o.conditions = "clean", o.losses = "supcon", o.embedding_dim = 0;
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), ".embedding_dim = 0"), "%s",
          ct_last_error());
    o.losses = "ntxent", o.embedding_dim = 16;
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "augmentation"), "%s", ct_last_error());
    o.losses = "cross_entropy", o.baseline = "focal";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "not one of the losses"), "%s",
          ct_last_error());
    ct_dataset_free(train), ct_dataset_free(test);
}

/* The text of column `name` in data line `line` (1-based) of runs.csv, unquoted (a new string; NULL
 * when there is no such column or line). */
static char *csv_field(const char *path, int line, const char *name) {
    char *text = slurp(path);
    if (!text) return NULL;
    int column = -1, at = -1;
    const char *p = text;
    for (int l = 0; l <= line && *p; l++) {
        int c = 0, quoted = 0;
        const char *start = p;
        for (; *p && *p != '\n'; p++) {
            if (*p == '"') quoted = !quoted;
            if (*p == ',' && !quoted) {
                if (l == 0 && (int)strlen(name) == p - start && !strncmp(start, name, strlen(name))) column = c;
                if (l == line && c == column) at = (int)(start - text);
                c++, start = p + 1;
            }
        }
        if (l == 0 && (int)strlen(name) == p - start && !strncmp(start, name, strlen(name))) column = c;
        if (l == line && c == column) at = (int)(start - text);
        if (*p) p++;
    }
    char *field = NULL;
    if (column >= 0 && at >= 0) {
        const char *s = text + at;
        const size_t len = s[0] == '"' ? strcspn(s + 1, "\"") : strcspn(s, ",\n");
        field = strndup(s + (s[0] == '"'), len);
    }
    free(text);
    return field;
}

/* The value of column `name` in data line `line` of runs.csv, NaN when empty. */
static double csv_value(const char *path, int line, const char *name) {
    char *field = csv_field(path, line, name);
    char *end = NULL;
    const double v = field ? strtod(field, &end) : NAN;
    const int empty = !field || end == field;
    free(field);
    return empty ? NAN : v;
}

/* Four classes told apart by 4 of 24 pixels (ct_test_blobs' pattern), the other 20 uniform noise
 * that dominates the distances: an untrained network's features are near chance for kNN, a network
 * trained to embed the classes is not. */
static ct_dataset *noisy_blobs(int n, uint64_t seed) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 1, d->width = 24, d->classes = 4;
    d->images = malloc((size_t)n * 24);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        const int y = i % 4;
        d->labels[i] = y;
        for (int k = 0; k < 24; k++) {
            const double v = k < 4 ? (k == y ? 200 : 60) + ct_rng_normal(&rng, 0, 20) : 255 * ct_rng_uniform(&rng);
            d->images[(size_t)i * 24 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    snprintf(d->source, sizeof d->source, "noisy blobs");
    return d;
}

/* SupCon (two views) and triplet beside cross-entropy: the embedding rows hold kNN and probe accuracy
 * far above chance (25%) and above those of the untrained network, and no classifier metrics; the
 * classifier row the reverse; table.md compares like with like and labels the cross-kind column. */
CT_TEST(arena, embedding_losses_are_judged_by_knn_and_probe) {
    ct_dataset *train = noisy_blobs(400, 1), *test = noisy_blobs(200, 2);
    /* the untrained network (seed 0, as the arena's first seed builds it) on the same normalised inputs */
    float mean[CT_LOADER_MAX_CHANNELS] = {0}, std[CT_LOADER_MAX_CHANNELS] = {1, 1, 1, 1};
    ct_dataset_channel_stats(train, mean, std);
    ct_loader_opts eo = CT_LOADER(.batch = 500, .shuffle = 0, .normalize = 1);
    memcpy(eo.mean, mean, sizeof eo.mean), memcpy(eo.std, std, sizeof eo.std);
    ct_loader *ltr = ct_loader_new(train, eo), *lte = ct_loader_new(test, eo);
    ct_model *m = ct_model_new();
    ct_module *net = ct_model_parse(m, "mlp:hidden=[16]", CT_SHAPE(1, 1, 24), 8);
    ct_probe_result untrained;
    CHECK(ct_probe_evaluate(m, net, ct_loader_source(ltr), ct_loader_source(lte), 4, CT_PROBE(), &untrained) == CT_OK,
          "%s", ct_last_error());
    CHECK(untrained.knn_accuracy < 0.6, "the untrained network's kNN accuracy is %g already", untrained.knn_accuracy);
    ct_model_free(m);
    ct_loader_free(ltr), ct_loader_free(lte);
    char out[1100], csv[1200], table[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out), snprintf(table, sizeof table, "%s/table.md", out);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy; supcon:temperature=0.1; triplet:margin=0.5", .seeds = 1,
                               .model = "mlp:hidden=[16]", .optim = "adam:lr=0.01", .epochs = 5, .batch = 50,
                               .embedding_dim = 8, .out = out, .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 4, "runs.csv has %d lines", count_lines(csv));
    const double ce = csv_value(csv, 1, "accuracy");
    CHECK(ce > 0.8 && isnan(csv_value(csv, 1, "knn_accuracy")) && isnan(csv_value(csv, 1, "probe_accuracy")),
          "cross-entropy: accuracy %g, kNN %g, probe %g", ce, csv_value(csv, 1, "knn_accuracy"),
          csv_value(csv, 1, "probe_accuracy"));
    for (int line = 2; line <= 3; line++) {
        const double knn = csv_value(csv, line, "knn_accuracy"), probe = csv_value(csv, line, "probe_accuracy");
        CHECK(knn > 0.85 && probe > 0.85 && knn > untrained.knn_accuracy + 0.3 &&
                  probe > untrained.probe_accuracy + 0.3, "line %d: kNN %g, probe %g (chance 0.25, "
              "untrained kNN %g, probe %g)", line, knn, probe, untrained.knn_accuracy, untrained.probe_accuracy);
        CHECK(isnan(csv_value(csv, line, "accuracy")) && isnan(csv_value(csv, line, "ece")) &&
                  isnan(csv_value(csv, line, "best_accuracy")) && csv_value(csv, line, "seconds") >= 0,
              "line %d has classifier metrics", line);
    }
    char *text = slurp(table);
    CHECK(text && strstr(text, "knn_accuracy |") && strstr(text, "probe_accuracy |") && strstr(text, "Δ linear top-1") &&
              strstr(text, "SupCon paper") && strstr(text, " — |"),
          "table.md:\n%s", text ? text : "");
    free(text);
    ct_dataset_free(train), ct_dataset_free(test);
}

/* ct_fit trains a loss with learnable state given as .bound_loss: center loss's centres, bound into the
 * model before the optimizer is made, move, and the loss falls. */
CT_TEST(arena, fit_trains_a_bound_loss_given_as_bound_loss) {
    ct_dataset *train = blobs(200, 3);
    ct_model *m = ct_model_new();
    ct_module *net = ct_model_parse(m, "mlp:hidden=[16]", CT_SHAPE(1, 1, 8), 4);
    ct_loss *center = ct_loss_parse("center:lambda=1");
    CHECK(ct_loss_bind(center, m, "loss", 4, 4) == CT_OK, "%s", ct_last_error());
    ct_tensor *centers = ct_model_param(m, ct_model_param_count(m) - 1);
    CHECK(!strcmp(centers->name, "loss.centers"), "the last parameter is %s", centers->name);
    ct_real before[16];
    memcpy(before, centers->data, sizeof before);
    ct_optim *opt = ct_optim_parse(m, "adam:lr=0.01");
    ct_loader *l = ct_loader_new(train, CT_LOADER(.batch = 50, .seed = 1));
    ct_fit_result r;
    ct_fit_result first;
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.epochs = 1, .bound_loss = center, .progress = 0), &first) ==
              CT_OK, "%s", ct_last_error());
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.epochs = 5, .bound_loss = center, .progress = 0), &r) ==
              CT_OK, "%s", ct_last_error());
    double moved = 0;
    for (int k = 0; k < 16; k++) moved = fmax(moved, fabs(centers->data[k] - before[k]));
    CHECK(moved > 1e-3, "the centres moved by %g only", moved);
    CHECK(r.last.train_loss < 0.5 * first.last.train_loss, "loss %g after 1 epoch, %g after 6", first.last.train_loss,
          r.last.train_loss);
    ct_loader_free(l);
    ct_optim_free(opt);
    ct_loss_free(center);
    ct_model_free(m);
    ct_dataset_free(train);
}

/* A runs.csv written before the kNN and probe columns existed: its rows are found by the header's
 * names (the run is not repeated) and the file is rewritten with the current columns, values kept. */
CT_TEST(arena, an_older_runs_csv_is_read_by_column_names_and_upgraded) {
    ct_dataset *train = blobs(100, 1), *test = blobs(40, 2);
    char out[1100], csv[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out);
    CHECK(mkdir(out, 0777) == 0, "mkdir %s", out);
    FILE *f = fopen(csv, "w");
    fputs("loss,condition,seed,accuracy,balanced_accuracy,minority_accuracy,macro_f1,nll,brier,ece,best_accuracy,seconds,"
          "per_class_accuracy\n\"cross_entropy:reduction=mean,label_smoothing=0,ignore_index=-100,weight=[]\",\"clean\",0,"
          "0.5,0.5,0.25,0.4,1.5,0.6,0.1,0.75,12,\"0.5 0.5 0.25 0.75\"\n", f);
    fclose(f);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy", .seeds = 1, .model = "mlp:hidden=[4]", .batch = 50, .out = out,
                               .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 2, "%d lines: the run in the old file ran again", count_lines(csv));
    CHECK(csv_value(csv, 1, "accuracy") == 0.5 && csv_value(csv, 1, "ece") == 0.1 && csv_value(csv, 1, "seconds") == 12 &&
              isnan(csv_value(csv, 1, "knn_accuracy")) && isnan(csv_value(csv, 1, "probe_accuracy")),
          "accuracy %g, ece %g, seconds %g, kNN %g", csv_value(csv, 1, "accuracy"), csv_value(csv, 1, "ece"),
          csv_value(csv, 1, "seconds"), csv_value(csv, 1, "knn_accuracy"));
    char *text = slurp(csv);
    CHECK(text && strstr(text, ",seconds,knn_accuracy,probe_accuracy,per_class_accuracy,test_accuracy_by_epoch\n") &&
              strstr(text, "\"0.5 0.5 0.25 0.75\""), "runs.csv:\n%s", text ? text : "");
    free(text);
    ct_dataset_free(train), ct_dataset_free(test);
}

/* The losses with learnable state (center's centres, circle_class's proxies, bound into the model) and
 * NT-Xent (two views made different by flips, run as SupCon on the samples) go through the arena:
 * a row each, with kNN and probe accuracies that are accuracies. */
CT_TEST(arena, bound_losses_and_ntxent_run_in_the_arena) {
    ct_dataset *train = noisy_blobs(400, 1), *test = noisy_blobs(200, 2);
    char out[1100], csv[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out);
    ct_arena_opts o = CT_ARENA(.losses = "center:lambda=1; circle_class; ntxent", .seeds = 1, .model = "mlp:hidden=[16]",
                               .optim = "adam:lr=0.01", .epochs = 5, .batch = 50, .hflip = 1, .embedding_dim = 8,
                               .out = out, .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 4, "runs.csv has %d lines", count_lines(csv));
    for (int line = 1; line <= 3; line++) {
        const double knn = csv_value(csv, line, "knn_accuracy"), probe = csv_value(csv, line, "probe_accuracy");
        CHECK(knn >= 0 && knn <= 1 && probe >= 0 && probe <= 1, "line %d: kNN %g, probe %g", line, knn, probe);
        /* above the untrained network's kNN (under 0.6, checked above): center and circle_class learn;
         * NT-Xent, unsupervised with flips as its only augmentation, need not */
        CHECK(line == 3 || knn > 0.6, "line %d: kNN %g after training", line, knn);
    }
    ct_dataset_free(train), ct_dataset_free(test);
}

static int is_png(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    const int ok = f && fread(sig, 1, 8, f) == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8);
    if (f) fclose(f);
    return ok;
}

/* Each run's test accuracy after every epoch is in runs.csv (its maximum is the best accuracy, its
 * last value the final one), and the arena draws the curves, the per-class accuracies and the
 * accuracy by condition as PNGs that table.md shows. */
CT_TEST(arena, curves_and_pictures_of_every_condition) {
    ct_dataset *train = blobs(400, 1), *test = blobs(200, 2);
    char out[1100], csv[1200], table[1200], path[1300];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out), snprintf(table, sizeof table, "%s/table.md", out);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy; focal:gamma=2", .conditions = "clean; exp:10", .seeds = 2,
                               .model = "mlp:hidden=[16]", .optim = "adam:lr=0.003", .epochs = 4, .batch = 50,
                               .out = out, .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    for (int line = 1; line <= 8; line++) {
        char *curve = csv_field(csv, line, "test_accuracy_by_epoch");
        double v[8], top = -1;
        int n = 0;
        for (char *q = curve, *end; q && n < 8; q = end) {
            v[n] = strtod(q, &end);
            if (end == q) break;
            top = fmax(top, v[n++]);
        }
        CHECK(n == 4 && v[0] >= 0 && top <= 1, "line %d: curve \"%s\"", line, curve ? curve : "(none)");
        CHECK(n == 4 && fabs(top - csv_value(csv, line, "best_accuracy")) < 1e-4 &&
                  fabs(v[3] - csv_value(csv, line, "accuracy")) < 1e-4,
              "line %d: curve \"%s\", best %g, final %g", line, curve ? curve : "", csv_value(csv, line, "best_accuracy"),
              csv_value(csv, line, "accuracy"));
        free(curve);
    }
    const char *pictures[] = {"test_accuracy-clean.png", "per_class-clean.png", "test_accuracy-exp_10.png",
                              "per_class-exp_10.png", "conditions.png"};
    for (size_t k = 0; k < sizeof pictures / sizeof *pictures; k++) {
        snprintf(path, sizeof path, "%s/%s", out, pictures[k]);
        CHECK(is_png(path), "%s is not a PNG", path);
    }
    char *text = slurp(table);
    CHECK(text && strstr(text, "![test accuracy per epoch](test_accuracy-clean.png) ![accuracy per class](per_class-clean.png)") &&
              strstr(text, "(per_class-exp_10.png)") && strstr(text, "![test accuracy by condition](conditions.png)"),
          "table.md:\n%s", text ? text : "");
    free(text);
    ct_dataset_free(train), ct_dataset_free(test);
}

/* A runs.csv row longer than any line buffer (a 900-epoch curve, ~7 kB) is read whole: upgraded to
 * the current column order it stays one row with all its curve. */
CT_TEST(arena, a_long_run_s_curve_is_read_whole) {
    ct_dataset *train = blobs(100, 1), *test = blobs(40, 2);
    char out[1100], csv[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out);
    CHECK(mkdir(out, 0777) == 0, "mkdir %s", out);
    FILE *f = fopen(csv, "w");
    fputs("loss,condition,seed,accuracy,balanced_accuracy,minority_accuracy,macro_f1,nll,brier,ece,best_accuracy,seconds,"
          "knn_accuracy,probe_accuracy,test_accuracy_by_epoch,per_class_accuracy\n\"cross_entropy:reduction=mean,"
          "label_smoothing=0,ignore_index=-100,weight=[]\",\"clean\",0,0.5,0.5,0.25,0.4,1.5,0.6,0.1,0.75,12,,,\"", f);
    for (int e = 0; e < 900; e++) fprintf(f, "%s0.%04d", e ? " " : "", 1000 + e);
    fputs("\",\"0.5 0.5 0.25 0.75\"\n", f);
    fclose(f);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy", .seeds = 1, .model = "mlp:hidden=[4]", .batch = 50, .out = out,
                               .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 2, "%d lines after the upgrade", count_lines(csv));
    char *curve = csv_field(csv, 1, "test_accuracy_by_epoch");
    int n = 0;
    double last = NAN;
    for (char *q = curve, *end; q; q = end, n++) {
        const double v = strtod(q, &end);
        if (end == q) break;
        last = v;
    }
    CHECK(n == 900 && fabs(last - 0.1899) < 1e-9, "%d values, the last %g", n, last);
    CHECK(csv_value(csv, 1, "per_class_accuracy") == 0.5, "per-class column %g", csv_value(csv, 1, "per_class_accuracy"));
    free(curve);
    ct_dataset_free(train), ct_dataset_free(test);
}
