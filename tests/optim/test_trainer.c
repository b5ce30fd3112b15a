/* tests/optim/test_trainer.c — ct_fit (optim/trainer.h): the same weights as a hand-written loop, logs,
 * keep-best, early stopping, Ctrl-C, a refused step, bad specs and files, and MNIST for real. */
#include "../test.h"

#include <signal.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>
#include <unistd.h>

static ct_dataset *blobs(int n, uint64_t seed) { return ct_test_blobs(n, seed); }

static ct_module *mlp(ct_model *m) { return ct_test_blobs_mlp(m); }

typedef struct {
    long steps;
    long interrupt_at;
} counter;

static void count_steps(const ct_fit_step *s, void *user) {
    counter *c = user;
    c->steps++;
    if (c->interrupt_at && s->step == c->interrupt_at) raise(SIGINT);
}

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf) fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

CT_TEST(trainer, same_weights_as_a_hand_written_loop) {
    ct_dataset *d = blobs(200, 1);
    ct_model *a = ct_model_new(), *b = ct_model_new();
    ct_module *na = mlp(a), *nb = mlp(b);
    ct_optim *oa = ct_sgd_new(a, CT_SGD(.lr = 0.1, .momentum = 0.9)), *ob = ct_sgd_new(b, CT_SGD(.lr = 0.1, .momentum = 0.9));
    ct_loader *la = ct_loader_new(d, CT_LOADER(.batch = 32, .seed = 4, .flatten = 1)),
              *lb = ct_loader_new(d, CT_LOADER(.batch = 32, .seed = 4, .flatten = 1));
    ct_fit_result r;
    CHECK(ct_fit(a, na, oa, ct_loader_source(la), NULL, CT_FIT(.epochs = 3, .progress = 0, .schedule = "cosine"), &r) ==
              CT_OK,
          "%s", ct_last_error());
    /* the loop ct_fit replaces */
    ct_tape *tape = ct_tape_new();
    ct_schedule s = ct_schedule_cosine(0.1, 3L * ct_loader_batches_per_epoch(lb), 0);
    for (int epoch = 0; epoch < 3; epoch++) {
        ct_batch batch;
        while (ct_loader_next(lb, &batch)) {
            ct_optim_schedule(ob, &s);
            ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, nb, batch.x), batch.y, CT_CE()));
            CHECK(ct_optim_step(ob) == CT_OK, "%s", ct_last_error());
            ct_tape_reset(tape);
        }
    }
    for (int p = 0; p < ct_model_param_count(a); p++)
        CHECK(!memcmp(ct_model_param(a, p)->data, ct_model_param(b, p)->data, ct_model_param(a, p)->size * sizeof(ct_real)),
              "parameter %d differs from the hand-written loop's", p);
    CHECK(r.epochs_run == 3 && r.last.steps == 21 && !r.interrupted && !r.stopped_early, "epochs %d, steps %ld",
          r.epochs_run, r.last.steps);
    ct_tape_free(tape);
    ct_loader_free(la), ct_loader_free(lb);
    ct_optim_free(oa), ct_optim_free(ob);
    ct_model_free(a), ct_model_free(b);
    ct_dataset_free(d);
}

CT_TEST(trainer, learns_logs_and_keeps_the_best) {
    ct_dataset *train = blobs(400, 2), *val = blobs(200, 3);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 1e-2));
    ct_loader *lt = ct_loader_new(train, CT_LOADER(.batch = 50, .seed = 1, .flatten = 1)),
              *lv = ct_loader_new(val, CT_LOADER(.batch = 64, .shuffle = 0, .flatten = 1));
    const char *dir = ct_test_tmpdir();
    char csv[1100], jsonl[1100], best[1100], ckpt[1100];
    snprintf(csv, sizeof csv, "%s/log.csv", dir), snprintf(jsonl, sizeof jsonl, "%s/log.jsonl", dir);
    snprintf(best, sizeof best, "%s/best.safetensors", dir), snprintf(ckpt, sizeof ckpt, "%s/run.safetensors", dir);
    counter c = {0};
    const ct_batch_source vs = ct_loader_source(lv);
    ct_fit_result r;
    CHECK(ct_fit(m, net, opt, ct_loader_source(lt), &vs,
                 CT_FIT(.epochs = 5, .progress = 0, .log_csv = csv, .log_jsonl = jsonl, .best_model = best,
                        .checkpoint = ckpt, .on_step = count_steps, .user = &c, .ema_decay = 0.9),
                 &r) == CT_OK,
          "%s", ct_last_error());
    CHECK(c.steps == 40, "on_step ran %ld times, want 40", c.steps);
    CHECK(r.last.evaluated && r.best.val.accuracy >= 0.9, "best validation accuracy %.3f", r.best.val.accuracy);
    CHECK(r.best.val.accuracy >= r.last.val.accuracy, "best %.3f below the last %.3f", r.best.val.accuracy,
          r.last.val.accuracy);
    char *text = slurp_text(csv);
    int lines = 0;
    for (const char *p = text; p && *p; p++) lines += *p == '\n';
    CHECK(text && !strncmp(text, "epoch,step,seconds,lr,train_loss,train_accuracy,val_loss,val_accuracy,", 70) && lines == 6,
          "CSV: %d lines:\n%s", lines, text ? text : "(missing)");
    free(text);
    text = slurp_text(jsonl);
    CHECK(text && strstr(text, "{\"epoch\": 1, \"step\": 8, ") && strstr(text, "\"val_accuracy\": "), "JSONL:\n%s",
          text ? text : "(missing)");
    free(text);
    CHECK(access(best, R_OK) == 0 && access(ckpt, R_OK) == 0, "best model or checkpoint not written");
    ct_loader_free(lt), ct_loader_free(lv);
    ct_optim_free(opt);
    ct_model_free(m);
    ct_dataset_free(train), ct_dataset_free(val);
}

CT_TEST(trainer, early_stopping_and_ctrl_c) {
    ct_dataset *d = blobs(128, 5);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0)); /* nothing improves */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 32, .seed = 1, .flatten = 1)),
              *v = ct_loader_new(d, CT_LOADER(.batch = 64, .shuffle = 0, .flatten = 1));
    const ct_batch_source vs = ct_loader_source(v);
    ct_fit_result r;
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), &vs, CT_FIT(.epochs = 10, .progress = 0, .patience = 2), &r) == CT_OK,
          "%s", ct_last_error());
    CHECK(r.stopped_early && r.epochs_run == 3, "stopped early %d after %d epochs (want 3: one best, two without)",
          r.stopped_early, r.epochs_run);
    char ckpt[1100];
    snprintf(ckpt, sizeof ckpt, "%s/interrupted.safetensors", ct_test_tmpdir());
    counter c = {.interrupt_at = 6};
    ct_optim *sgd = ct_sgd_new(m, CT_SGD(.lr = 0.05));
    const int status = ct_fit(m, net, sgd, ct_loader_source(l), NULL,
                              CT_FIT(.epochs = 5, .progress = 0, .checkpoint = ckpt, .on_step = count_steps, .user = &c), &r);
    CHECK(status == CT_FIT_INTERRUPTED && r.interrupted, "status %d after SIGINT", status);
    CHECK(c.steps == 6 && ct_optim_steps(sgd) == 6, "ran %ld steps after the interrupt at 6", c.steps);
    CHECK(access(ckpt, R_OK) == 0, "no checkpoint after the interrupt");
    /* the loader is left where the run stopped: after the 3 epochs of the run above, step 6 (of 4
     * batches per epoch) is batch 2 of the loader's epoch 4 */
    ct_batch b;
    CHECK(ct_loader_next(l, &b) && b.epoch == 4 && b.index == 2, "the loader is at epoch %d batch %d after the interrupt",
          b.epoch, b.index);
    ct_loader_free(l), ct_loader_free(v);
    ct_optim_free(opt), ct_optim_free(sgd);
    ct_model_free(m);
    ct_dataset_free(d);
}

CT_TEST(trainer, errors_are_returned) {
    ct_dataset *d = blobs(64, 6);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 1e30));
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 32, .seed = 1, .flatten = 1));
    ct_fit_result r;
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.progress = 0, .loss = "focall"), &r) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "focall"),
          "%s", ct_last_error());
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.progress = 0, .schedule = "cosin"), &r) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "did you mean cosine"),
          "%s", ct_last_error());
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.progress = 0, .log_csv = "/nonexistent/dir/x.csv"), &r) ==
                  CT_ERR_IO &&
              strstr(ct_last_error(), "/nonexistent/dir/x.csv"),
          "%s", ct_last_error());
    /* lr 1e30 diverges: the default guard refuses the step and the run stops with its message */
    const int status = ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.progress = 0, .epochs = 20), &r);
    CHECK(status == CT_ERR_VALUE, "a diverged run returned %d: %s", status, ct_last_error());
    ct_loader_free(l);
    ct_optim_free(opt);
    ct_model_free(m);
    ct_dataset_free(d);
}

/* MNIST for real: an MLP through ct_fit, two epochs of the 10k training images (measured: 92.1%). */
CT_TEST(trainer, mnist_two_epochs) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mnist", shared);
    ct_dataset *train = ct_idx_load(dir, "train10k"), *test = ct_idx_load(dir, "t10k");
    CHECK(train && test, "%s", ct_last_error());
    ct_model *m = ct_model_new();
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "fc1", 784, 256));
    ct_sequential_add(net, ct_relu_layer_new(m, "relu"));
    ct_sequential_add(net, ct_linear_new(m, "fc2", 256, 10));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_loader *lt = ct_loader_new(train, CT_LOADER(.batch = 64, .seed = 1, .flatten = 1)),
              *lv = ct_loader_new(test, CT_LOADER(.batch = 500, .shuffle = 0, .flatten = 1));
    const ct_batch_source vs = ct_loader_source(lv);
    ct_fit_result r;
    CHECK(ct_fit(m, net, opt, ct_loader_source(lt), &vs, CT_FIT(.epochs = 2, .progress = 0, .schedule = "cosine"), &r) == CT_OK, "%s",
          ct_last_error());
    CHECK(r.last.val.accuracy > 0.91, "test accuracy %.4f after two epochs", r.last.val.accuracy);
    ct_test_note("test accuracy %.2f%%, ECE %.4f, %.0f samples/s", 100 * r.last.val.accuracy, r.last.val.ece,
                 r.last.samples_per_second);
    ct_loader_free(lt), ct_loader_free(lv);
    ct_optim_free(opt);
    ct_model_free(m);
    ct_dataset_free(train), ct_dataset_free(test);
}

/* ---- resume ------------------------------------------------------------------------------------ */

/* An MLP with dropout (a random stream of its own) on the 8-pixel blobs. */
static ct_module *mlp_dropout(ct_model *m) {
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 8, 16));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.1"));
    ct_sequential_add(net, ct_dropout_new(m, "net.2", 0.3));
    ct_sequential_add(net, ct_linear_new(m, "net.3", 16, 4));
    return net;
}

typedef struct {
    ct_model *m;
    ct_module *net;
    ct_optim *opt;
    ct_loader *train, *val;
    ct_batch_source vs;
} resume_run;

static void resume_run_new(resume_run *r, const ct_dataset *train, const ct_dataset *val) {
    r->m = ct_model_new();
    ct_model_set_seed(r->m, 7);
    r->net = mlp_dropout(r->m);
    r->opt = ct_adam_new(r->m, CT_ADAM(.lr = 2e-2));
    r->train = ct_loader_new(train, CT_LOADER(.batch = 50, .seed = 3, .hflip = 1, .flatten = 1, .prefetch = 1));
    r->val = ct_loader_new(val, CT_LOADER(.batch = 64, .shuffle = 0, .flatten = 1));
    r->vs = ct_loader_source(r->val);
}

static void resume_run_free(resume_run *r) {
    ct_loader_free(r->train), ct_loader_free(r->val);
    ct_optim_free(r->opt);
    ct_model_free(r->m);
}

static int fit_run(resume_run *r, const char *ckpt, const char *csv, const char *resume, counter *c, ct_fit_result *out) {
    return ct_fit(r->m, r->net, r->opt, ct_loader_source(r->train), &r->vs,
                  CT_FIT(.epochs = 3, .progress = 0, .schedule = "cosine:warmup=4", .ema_decay = 0.8, .checkpoint = ckpt,
                         .resume = resume, .log_csv = csv, .log_every = 5, .eval_every = 10, .on_step = count_steps,
                         .user = c),
                  out);
}

static void interrupt_after_first_epoch(const ct_fit_epoch *e, void *user) {
    (void)user;
    if (e->epoch == 1) raise(SIGINT);
}

/* The CSV without its seconds and samples/s columns (wall time differs between runs). */
static char *log_without_times(const char *path) {
    char *text = slurp_text(path);
    if (!text) return NULL;
    char *out = calloc(1, strlen(text) + 1), *o = out;
    int field = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') field = -1;
        const int timed = field == 2 || field == 13;
        if (!timed || *p == ',') *o++ = *p;
        if (*p == ',' || *p == '\n') field++;
    }
    free(text);
    return out;
}

/* Interrupt + resume gives the uninterrupted run's weights, results and log, bit for bit, at one
 * thread: the shuffled and flipped batches (the loader seeks), dropout's stream, Adam's state, the
 * warmed-up cosine schedule, the EMA, the running sums of the epoch and the best epoch so far. Once
 * mid-epoch (Ctrl-C at step 13 of 24) and once at an epoch's end. */
CT_TEST(trainer, interrupt_and_resume_gives_the_uninterrupted_run) {
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    ct_dataset *train = blobs(400, 11), *val = blobs(128, 12);
    const char *dir = ct_test_tmpdir();
    char ckpt[1100], csv_a[1100], csv_b[1100];
    snprintf(ckpt, sizeof ckpt, "%s/resume.safetensors", dir);
    snprintf(csv_a, sizeof csv_a, "%s/whole.csv", dir), snprintf(csv_b, sizeof csv_b, "%s/resumed.csv", dir);
    resume_run a;
    resume_run_new(&a, train, val);
    counter ca = {0};
    ct_fit_result ra;
    CHECK(fit_run(&a, NULL, csv_a, NULL, &ca, &ra) == CT_OK, "%s", ct_last_error());
    char *log_a = log_without_times(csv_a);
    for (int where = 0; where < 2; where++) {
        resume_run b;
        resume_run_new(&b, train, val);
        counter cb = {.interrupt_at = where == 0 ? 13 : 0};
        ct_fit_result rb;
        int status;
        if (where == 0) {
            status = fit_run(&b, ckpt, csv_b, NULL, &cb, &rb);
        } else {
            status = ct_fit(b.m, b.net, b.opt, ct_loader_source(b.train), &b.vs,
                            CT_FIT(.epochs = 3, .progress = 0, .schedule = "cosine:warmup=4", .ema_decay = 0.8,
                                   .checkpoint = ckpt, .log_csv = csv_b, .log_every = 5, .eval_every = 10,
                                   .on_step = count_steps, .user = &cb, .on_epoch = interrupt_after_first_epoch),
                            &rb);
        }
        CHECK(status == CT_FIT_INTERRUPTED, "%s: status %d", where ? "epoch end" : "mid-epoch", status);
        CHECK(ct_optim_steps(b.opt) == (where == 0 ? 13 : 8), "stopped after %ld steps", ct_optim_steps(b.opt));
        resume_run_free(&b);
        /* a new process: everything built again, then resumed from the file */
        resume_run c;
        resume_run_new(&c, train, val);
        counter cc = {0};
        ct_fit_result rc;
        CHECK(fit_run(&c, ckpt, csv_b, ckpt, &cc, &rc) == CT_OK, "%s", ct_last_error());
        CHECK(cb.steps + cc.steps == 24 && ct_optim_steps(c.opt) == 24, "%ld + %ld steps, want 24 in all", cb.steps,
              cc.steps);
        for (int p = 0; p < ct_model_param_count(a.m); p++)
            CHECK(!memcmp(ct_model_param(a.m, p)->data, ct_model_param(c.m, p)->data,
                          ct_model_param(a.m, p)->size * sizeof(ct_real)),
                  "%s: parameter %s differs from the uninterrupted run's", where ? "epoch end" : "mid-epoch",
                  ct_model_param(a.m, p)->name);
        CHECK(rc.last.train_loss == ra.last.train_loss && rc.last.val.nll == ra.last.val.nll &&
                  rc.best.epoch == ra.best.epoch && rc.best.val.nll == ra.best.val.nll && rc.epochs_run == 3,
              "results differ: train loss %.17g vs %.17g, EMA val NLL %.17g vs %.17g, best epoch %d vs %d",
              rc.last.train_loss, ra.last.train_loss, rc.last.val.nll, ra.last.val.nll, rc.best.epoch, ra.best.epoch);
        char *log_b = log_without_times(csv_b);
        CHECK(log_a && log_b && !strcmp(log_a, log_b), "the resumed log differs:\n%s\nwant:\n%s", log_b ? log_b : "",
              log_a ? log_a : "");
        free(log_b);
        resume_run_free(&c);
    }
    free(log_a);
    resume_run_free(&a);
    ct_dataset_free(train), ct_dataset_free(val);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

/* A checkpoint is only resumed into the run that wrote it. */
CT_TEST(trainer, resume_refuses_another_run) {
    ct_dataset *train = blobs(100, 13), *val = blobs(64, 14);
    const char *dir = ct_test_tmpdir();
    char ckpt[1100], plain[1100];
    snprintf(ckpt, sizeof ckpt, "%s/other.safetensors", dir), snprintf(plain, sizeof plain, "%s/plain.safetensors", dir);
    resume_run a;
    resume_run_new(&a, train, val);
    counter c = {0};
    ct_fit_result r;
    CHECK(fit_run(&a, ckpt, NULL, NULL, &c, &r) == CT_OK, "%s", ct_last_error());
    CHECK(ct_checkpoint_save(a.opt, plain) == CT_OK, "%s", ct_last_error());
    int rc = ct_fit(a.m, a.net, a.opt, ct_loader_source(a.train), &a.vs,
                    CT_FIT(.epochs = 3, .progress = 0, .schedule = "cosine", .ema_decay = 0.8, .resume = ckpt), &r);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "cosine:warmup=4") && strstr(ct_last_error(), "same settings"),
          "another schedule: %d %s", rc, ct_last_error());
    rc = fit_run(&a, NULL, NULL, plain, &c, &r);
    CHECK(rc == CT_ERR_FORMAT && strstr(ct_last_error(), "not a checkpoint written by ct_fit"), "a plain checkpoint: %d %s",
          rc, ct_last_error());
    ct_batch_source unseekable = ct_loader_source(a.train);
    unseekable.seek = NULL;
    rc = ct_fit(a.m, a.net, a.opt, unseekable, &a.vs,
                CT_FIT(.epochs = 3, .progress = 0, .schedule = "cosine:warmup=4", .ema_decay = 0.8, .resume = ckpt), &r);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "seek"), "a source without seek: %d %s", rc, ct_last_error());
    resume_run_free(&a);
    ct_dataset_free(train), ct_dataset_free(val);
}

/* .end_with_ema: the model ends holding the averaged weights it was evaluated with, so evaluating
 * it again gives the last epoch's figures exactly; without it, the last training weights. */
CT_TEST(trainer, end_with_ema_leaves_the_evaluated_weights) {
    ct_dataset *train = blobs(200, 21), *val = blobs(64, 22);
    for (int end_with_ema = 0; end_with_ema <= 1; end_with_ema++) {
        resume_run a;
        resume_run_new(&a, train, val);
        ct_fit_result r;
        CHECK(ct_fit(a.m, a.net, a.opt, ct_loader_source(a.train), &a.vs,
                     CT_FIT(.epochs = 2, .progress = 0, .ema_decay = 0.7, .end_with_ema = end_with_ema), &r) == CT_OK,
              "%s", ct_last_error());
        ct_metrics_result again;
        double loss;
        CHECK(ct_evaluate(a.m, a.net, a.vs, NULL, CT_METRICS(), &again, &loss) == CT_OK, "%s", ct_last_error());
        const int same = again.nll == r.last.val.nll && loss == r.last.val_loss;
        CHECK(same == end_with_ema, "end_with_ema %d: evaluating the model again gives NLL %.17g, the run's last %.17g",
              end_with_ema, again.nll, r.last.val.nll);
        resume_run_free(&a);
    }
    ct_dataset_free(train), ct_dataset_free(val);
}

/* ct_evaluate's default transform is the loss's: StableMax probabilities for stablemax (its NLL
 * equals the explicit CT_EVAL_STABLEMAX one and differs from softmax's). */
CT_TEST(trainer, evaluation_uses_the_loss_transform) {
    ct_dataset *d = blobs(128, 31);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 64, .shuffle = 0, .flatten = 1));
    ct_metrics_result autom, stable, soft;
    CHECK(ct_evaluate(m, net, ct_loader_source(l), "stablemax", CT_METRICS(), &autom, NULL) == CT_OK &&
              ct_evaluate(m, net, ct_loader_source(l), "stablemax", CT_METRICS(.transform = CT_EVAL_STABLEMAX), &stable,
                          NULL) == CT_OK &&
              ct_evaluate(m, net, ct_loader_source(l), "stablemax", CT_METRICS(.transform = CT_EVAL_SOFTMAX), &soft,
                          NULL) == CT_OK,
          "%s", ct_last_error());
    CHECK(autom.nll == stable.nll && autom.nll != soft.nll, "NLL: auto %.9g, stablemax %.9g, softmax %.9g", autom.nll,
          stable.nll, soft.nll);
    ct_loader_free(l);
    ct_model_free(m);
    ct_dataset_free(d);
}
