/* tests/optim/test_trainer_lab.c — ct_fit's hooks for the loss lab: a loss the caller parsed and bound
 * (learnable state trained, checkpointed and resumed; the resume check still compares the loss), the
 * training progress a loss sees, neural collapse per epoch in the logs, the plain logits the metrics
 * read for logit_adjusted, and the arena binding losses and filling counts=auto per data condition. */
#include "../test.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static ct_module *mlp(ct_model *m) { return ct_test_blobs_mlp(m); }

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf) fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

/* ---- registered losses the tests train with ------------------------------------------------------ */
/* CE(s0·e^t·z) with t = "<name>.log_scale" learnable (starting at 0). */
static ct_tensor *scaled_apply(ct_tape *tape, ct_tensor *z, ct_labels y, const ct_loss_args *a) {
    ct_tensor *s = ct_mul_scalar(tape, ct_exp(tape, a->state[0]), a->value[0]);
    return ct_cross_entropy(tape, ct_mul(tape, z, s), y, CT_CE());
}
static int scaled_bind(ct_model *m, const char *name, ct_loss_args *a) {
    char full[128];
    snprintf(full, sizeof full, "%s.log_scale", name);
    a->state[0] = ct_model_add_param(m, full, CT_SHAPE(1));
    return CT_OK;
}
static const ct_loss_def scaled_def = {.name = "lab_scaled_ce", .formula = "CE(s0·e^t·z), t learnable",
                                       .input = "logits (N, C)", .params = {{"s0", "1", "(0, inf)", "scale"}},
                                       .apply = scaled_apply, .bind = scaled_bind};

/* CE, recording the progress of every call and the counts it was given. */
static double seen_progress[64];
static int n_progress;
static double seen_counts[16];
static int n_counts;
static ct_tensor *probe_apply(ct_tape *tape, ct_tensor *z, ct_labels y, const ct_loss_args *a) {
    if (n_progress < 64) seen_progress[n_progress++] = a->progress;
    n_counts = a->length[0] < 16 ? a->length[0] : 16;
    for (int c = 0; c < n_counts; c++) seen_counts[c] = a->list[0][c];
    return ct_cross_entropy(tape, z, y, CT_CE());
}
static const ct_loss_def probe_def = {.name = "lab_probe", .formula = "CE, recording", .input = "logits (N, C)",
                                      .params = {{"counts", "", "per class (0, inf)", "recorded"}},
                                      .apply = probe_apply};

static void register_lab_losses(void) {
    ct_loss *l = ct_loss_parse("lab_scaled_ce");
    if (!l) CHECK(ct_loss_register(&scaled_def) == CT_OK, "%s", ct_last_error());
    ct_loss_free(l);
    if (!(l = ct_loss_parse("lab_probe"))) CHECK(ct_loss_register(&probe_def) == CT_OK, "%s", ct_last_error());
    ct_loss_free(l);
}

/* ---- a bound loss ----------------------------------------------------------------------------------- */
typedef struct {
    ct_model *m;
    ct_module *net;
    ct_loss *loss;
    ct_optim *opt;
    ct_loader *train;
} bound_run;

static void bound_run_new(bound_run *r, const ct_dataset *d, const char *spec) {
    r->m = ct_model_new();
    ct_model_set_seed(r->m, 5);
    r->net = mlp(r->m);
    r->loss = ct_loss_parse(spec);
    CHECK(r->loss && ct_loss_bind(r->loss, r->m, "loss", 4, 4) == CT_OK, "%s", ct_last_error());
    r->opt = ct_adam_new(r->m, CT_ADAM(.lr = 2e-2)); /* after the bind: it trains the loss's state */
    r->train = ct_loader_new(d, CT_LOADER(.batch = 50, .seed = 3, .flatten = 1));
}

static void bound_run_free(bound_run *r) {
    ct_loader_free(r->train);
    ct_optim_free(r->opt);
    ct_loss_free(r->loss);
    ct_model_free(r->m);
}

static void interrupt_at_step_5(const ct_fit_step *s, void *user) {
    (void)user;
    if (s->step == 5) raise(SIGINT);
}

static int fit_bound(bound_run *r, const char *ckpt, const char *resume, void (*on_step)(const ct_fit_step *, void *)) {
    return ct_fit(r->m, r->net, r->opt, ct_loader_source(r->train), NULL,
                  CT_FIT(.epochs = 3, .progress = 0, .bound_loss = r->loss, .checkpoint = ckpt, .resume = resume,
                         .on_step = on_step),
                  NULL);
}

/* A bound loss's state is trained like the network, saved in the checkpoint and resumed: interrupted
 * at step 5 of 24 and resumed in a new model, the weights (the loss's scale too) are the uninterrupted
 * run's. A checkpoint of another loss is refused, naming both; .loss with .bound_loss is refused. */
CT_TEST(trainer, bound_loss_trains_checkpoints_and_resumes) {
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    register_lab_losses();
    ct_dataset *d = ct_test_blobs(400, 41);
    char ckpt[1100];
    snprintf(ckpt, sizeof ckpt, "%s/bound.safetensors", ct_test_tmpdir());
    bound_run a, b, c;
    bound_run_new(&a, d, "lab_scaled_ce:s0=0.5");
    CHECK(fit_bound(&a, NULL, NULL, NULL) == CT_OK, "%s", ct_last_error());
    const ct_tensor *scale = ct_model_find_param(a.m, "loss.log_scale");
    CHECK(scale && scale->data[0] != 0, "the loss's state was not trained: %g", scale ? (double)scale->data[0] : NAN);
    bound_run_new(&b, d, "lab_scaled_ce:s0=0.5");
    CHECK(fit_bound(&b, ckpt, NULL, interrupt_at_step_5) == CT_FIT_INTERRUPTED, "%s", ct_last_error());
    bound_run_free(&b);
    bound_run_new(&c, d, "lab_scaled_ce:s0=0.5");
    CHECK(fit_bound(&c, NULL, ckpt, NULL) == CT_OK, "%s", ct_last_error());
    for (int p = 0; p < ct_model_param_count(a.m); p++)
        CHECK(!memcmp(ct_model_param(a.m, p)->data, ct_model_param(c.m, p)->data,
                      ct_model_param(a.m, p)->size * sizeof(ct_real)),
              "parameter %s differs from the uninterrupted run's", ct_model_param(a.m, p)->name);
    bound_run_free(&c);
    /* another loss: refused, naming both */
    bound_run_new(&b, d, "lab_scaled_ce:s0=2");
    int rc = fit_bound(&b, NULL, ckpt, NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "lab_scaled_ce:s0=0.5") && strstr(ct_last_error(), "lab_scaled_ce:s0=2"),
          "%d %s", rc, ct_last_error());
    rc = ct_fit(b.m, b.net, b.opt, ct_loader_source(b.train), NULL,
                CT_FIT(.progress = 0, .bound_loss = b.loss, .loss = "cross_entropy"), NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "both given"), "%d %s", rc, ct_last_error());
    bound_run_free(&b);
    bound_run_free(&a);
    ct_dataset_free(d);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

/* The loss sees p = step / total steps before each step: 0, 1/8, ..., 7/8 for 2 epochs of 4 batches. A
 * counts=auto loss given as a spec is refused (nothing fills it in). */
CT_TEST(trainer, the_loss_sees_the_progress) {
    register_lab_losses();
    ct_dataset *d = ct_test_blobs(200, 42);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05));
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 50, .seed = 1, .flatten = 1));
    n_progress = 0;
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.epochs = 2, .progress = 0, .loss = "lab_probe"), NULL) ==
              CT_OK,
          "%s", ct_last_error());
    CHECK(n_progress == 8, "%d calls", n_progress);
    for (int k = 0; k < 8; k++) CHECK(seen_progress[k] == k / 8.0, "step %d: progress %.17g, want %g", k, seen_progress[k], k / 8.0);
    const int rc = ct_fit(m, net, opt, ct_loader_source(l), NULL,
                          CT_FIT(.progress = 0, .loss = "logit_adjusted:counts=auto"), NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "counts=auto") && strstr(ct_last_error(), "ct_loss_set_counts"),
          "%d %s", rc, ct_last_error());
    ct_loader_free(l);
    ct_optim_free(opt);
    ct_model_free(m);
    ct_dataset_free(d);
}

/* logit_adjusted's metrics read the plain logits: the same as cross_entropy's on the same model, while
 * its mean loss (adjusted) differs. */
CT_TEST(trainer, logit_adjusted_metrics_read_plain_logits) {
    ct_dataset *d = ct_test_blobs(128, 43);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 64, .shuffle = 0, .flatten = 1));
    ct_metrics_result ce, la;
    double ce_loss, la_loss;
    CHECK(ct_evaluate(m, net, ct_loader_source(l), "cross_entropy", CT_METRICS(), &ce, &ce_loss) == CT_OK &&
              ct_evaluate(m, net, ct_loader_source(l), "logit_adjusted:counts=[100,30,10,3]", CT_METRICS(), &la, &la_loss) ==
                  CT_OK,
          "%s", ct_last_error());
    CHECK(ce.nll == la.nll && ce.ece == la.ece && ce.accuracy == la.accuracy && fabs(la_loss - ce_loss) > 1e-3,
          "NLL %.9g vs %.9g, loss %.9g vs %.9g", ce.nll, la.nll, ce_loss, la_loss);
    const int rc = ct_evaluate(m, net, ct_loader_source(l), "logit_adjusted:counts=auto", CT_METRICS(), &la, &la_loss);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "counts=auto"), "%d %s", rc, ct_last_error());
    ct_loader_free(l);
    ct_model_free(m);
    ct_dataset_free(d);
}

/* ---- neural collapse per epoch ---------------------------------------------------------------------- */
static double nc1_seen[16];
static int nc1_epochs[16], n_nc1;
static void record_nc1(const ct_fit_epoch *e, void *user) {
    (void)user;
    if (e->collapsed && n_nc1 < 16) nc1_epochs[n_nc1] = e->epoch, nc1_seen[n_nc1++] = e->collapse.nc1;
}

/* NC1–NC4 after every second epoch on separable blobs: the columns are in the CSV and JSON Lines logs
 * (empty in the other rows), NC1 falls at every measure, NC4 reaches 1, and measuring does not
 * change the training (the training source is put back: the weights are those of a run without it). */
CT_TEST(trainer, neural_collapse_per_epoch_in_the_log) {
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    ct_dataset *d = ct_test_blobs(400, 44);
    const char *dir = ct_test_tmpdir();
    char csv[1100], jsonl[1100];
    snprintf(csv, sizeof csv, "%s/nc.csv", dir), snprintf(jsonl, sizeof jsonl, "%s/nc.jsonl", dir);
    ct_model *m[2];
    for (int with = 0; with < 2; with++) {
        m[with] = ct_model_new();
        ct_module *net = mlp(m[with]);
        ct_optim *opt = ct_sgd_new(m[with], CT_SGD(.lr = 0.05, .momentum = 0.9));
        ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 40, .seed = 2, .flatten = 1));
        n_nc1 = 0;
        CHECK(ct_fit(m[with], net, opt, ct_loader_source(l), NULL,
                     CT_FIT(.epochs = 12, .progress = 0, .collapse_every = with ? 2 : 0, .collapse_samples = 300,
                            .log_csv = with ? csv : NULL, .log_jsonl = with ? jsonl : NULL, .log_every = with ? 7 : 0,
                            .on_epoch = record_nc1),
                     NULL) == CT_OK,
              "%s", ct_last_error());
        ct_optim_free(opt);
        ct_loader_free(l);
    }
    for (int p = 0; p < ct_model_param_count(m[0]); p++)
        CHECK(!memcmp(ct_model_param(m[0], p)->data, ct_model_param(m[1], p)->data,
                      ct_model_param(m[0], p)->size * sizeof(ct_real)),
              "measuring collapse changed parameter %s", ct_model_param(m[0], p)->name);
    CHECK(n_nc1 == 6 && nc1_epochs[0] == 2 && nc1_epochs[5] == 12, "%d measures", n_nc1);
    for (int k = 1; k < 6; k++)
        CHECK(nc1_seen[k] < nc1_seen[k - 1], "NC1 rose from %.5g to %.5g after epoch %d", nc1_seen[k - 1], nc1_seen[k],
              nc1_epochs[k]);
    CHECK(nc1_seen[5] < 0.75 * nc1_seen[0], "NC1 fell too little: %.4g after epoch 2, %.4g after epoch 12", nc1_seen[0],
          nc1_seen[5]);
    ct_test_note("NC1 %.4g %.4g %.4g %.4g %.4g %.4g", nc1_seen[0], nc1_seen[1], nc1_seen[2], nc1_seen[3], nc1_seen[4], nc1_seen[5]);
    char *text = slurp_text(csv);
    CHECK(text && strstr(text, ",samples_per_second,nc1,nc2_equinorm,nc2_cos_std,nc2_max_angle,nc3,nc4,row\n"),
          "CSV header:\n%.300s", text ? text : "");
    int epoch_rows = 0, with_nc = 0;
    for (char *line = text ? strchr(text, '\n') : NULL; line && line[1]; line = strchr(line + 1, '\n')) {
        char row[600];
        snprintf(row, sizeof row, "%.*s", (int)strcspn(line + 1, "\n"), line + 1);
        int fields = 0;
        const char *nc1 = NULL;
        for (char *p = row; *p; p++)
            if (*p == ',' && ++fields == 14) nc1 = p + 1;
        const int is_epoch = strstr(row, ",epoch") != NULL, has = nc1 && *nc1 != ',';
        epoch_rows += is_epoch, with_nc += has;
        const int epoch = atoi(row);
        CHECK(has == (is_epoch && epoch % 2 == 0), "row %s: nc1 field %s", row, has ? "given" : "empty");
    }
    CHECK(epoch_rows == 12 && with_nc == 6, "%d epoch rows, %d with NC figures", epoch_rows, with_nc);
    free(text);
    text = slurp_text(jsonl);
    CHECK(text && strstr(text, "\"nc1\": null") && strstr(text, "\"nc4\": 1") , "JSON Lines:\n%.600s", text ? text : "");
    free(text);
    ct_model_free(m[0]), ct_model_free(m[1]);
    ct_dataset_free(d);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

/* ---- the arena ---------------------------------------------------------------------------------------- */
/* A loss with learnable state is bound and trained; counts=auto is the condition's training counts
 * (exp:10 on 100 blobs a class: ct_long_tail_counts), and the row keeps "counts=auto" as the loss's name. */
CT_TEST(arena, binds_losses_and_fills_counts_per_condition) {
    register_lab_losses();
    ct_dataset *train = ct_test_blobs(400, 45), *test = ct_test_blobs(100, 46);
    char out[1100], csv[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out);
    n_counts = 0;
    CHECK(ct_arena_run(train, test,
                       CT_ARENA(.losses = "lab_scaled_ce; lab_probe:counts=auto; logit_adjusted:counts=auto",
                                .conditions = "exp:10", .seeds = 1, .model = "mlp:hidden=[16]", .optim = "adam:lr=0.01",
                                .epochs = 1, .batch = 50, .out = out, .progress = 0)) == CT_OK,
          "%s", ct_last_error());
    int want[4];
    ct_long_tail_counts(4, 100, CT_IMBALANCE_EXP, 10, want);
    CHECK(n_counts == 4, "%d counts", n_counts);
    for (int c = 0; c < 4; c++) CHECK(seen_counts[c] == want[c], "class %d: count %g, want %d", c, seen_counts[c], want[c]);
    char *text = slurp_text(csv);
    CHECK(text && strstr(text, "\"lab_scaled_ce:s0=1\"") && strstr(text, "\"logit_adjusted:reduction=mean,tau=1,counts=auto\""),
          "runs.csv:\n%s", text ? text : "");
    free(text);
    ct_dataset_free(train), ct_dataset_free(test);
}
