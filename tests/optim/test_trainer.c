/* tests/optim/test_trainer.c — ct_fit (optim/trainer.h): the same weights as a hand-written loop, logs,
 * keep-best, early stopping, Ctrl-C, a refused step, bad specs and files, and MNIST for real. */
#include "../test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two Gaussian blobs per class in 8 "pixels", 4 classes: learnable by an MLP in a few epochs. */
static ct_dataset *blobs(int n, uint64_t seed) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 1, d->width = 8, d->classes = 4;
    d->images = malloc((size_t)n * 8);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        const int y = i % 4;
        d->labels[i] = y;
        for (int k = 0; k < 8; k++) {
            const double v = (k % 4 == y ? 200 : 60) + ct_rng_normal(&rng, 0, 30);
            d->images[(size_t)i * 8 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    snprintf(d->source, sizeof d->source, "blobs");
    return d;
}

static ct_module *mlp(ct_model *m) {
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 8, 16));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.1"));
    ct_sequential_add(net, ct_linear_new(m, "net.2", 16, 4));
    return net;
}

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
    /* the loader was left at an epoch's end: the next epoch starts clean */
    ct_batch b;
    CHECK(ct_loader_next(l, &b) && b.index == 0, "the loader is mid-epoch after the interrupt");
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
