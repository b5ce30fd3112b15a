/* examples/optim_race.c — every optimizer from the same start, on Rosenbrock's valley and on a
 * small MNIST model, with the trajectories and loss curves written as CSV and drawn as PNG.
 *
 *   build/examples/optim_race --out race --data ../shared/data/mnist
 *   -> race/rosenbrock.csv   optimizer,step,x,y,f        (one row per step; plot y against x)
 *      race/rosenbrock.png   six of the paths over the contours of f
 *      race/mnist.csv        optimizer,step,loss         (training loss per mini-batch)
 *      race/mnist.png        the smoothed training loss of the same six
 *
 * What to look for: plain SGD crawls along the curved valley of
 *     f(x, y) = (1 − x)² + 100·(y − x²)²    (minimum at (1, 1))
 * because its lr is capped by the steep walls; momentum overshoots across the valley and
 * oscillates; Adam's per-coordinate normalisation takes near-constant-size steps whatever the
 * gradient's scale; Lion's steps are exactly ±lr per coordinate (a staircase, ending in a
 * ±lr jitter around the minimum); Adagrad's steps shrink as 1/√t. Each optimizer runs with a
 * constant learning rate usual for it (chosen per problem, shown in the output), from the
 * same start and the same initial weights, on the same mini-batches. */
#include <ctape.h>

#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name;
    double rosen_lr, mnist_lr;  /* 0: the optimizer's own step size rule (Adafactor) */
    ct_optim *(*make)(ct_model *m, double lr);
    int sam;                    /* needs a closure (ct_sam_step) */
} racer;

static ct_optim *make_sgd(ct_model *m, double lr) { return ct_sgd_new(m, CT_SGD(.lr = lr)); }
static ct_optim *make_momentum(ct_model *m, double lr) { return ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9)); }
static ct_optim *make_nesterov(ct_model *m, double lr) {
    return ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9, .nesterov = 1));
}
static ct_optim *make_adam(ct_model *m, double lr) { return ct_adam_new(m, CT_ADAM(.lr = lr)); }
static ct_optim *make_adamw(ct_model *m, double lr) { return ct_adamw_new(m, CT_ADAMW(.lr = lr)); }
static ct_optim *make_amsgrad(ct_model *m, double lr) { return ct_adam_new(m, CT_ADAM(.lr = lr, .amsgrad = 1)); }
static ct_optim *make_adamax(ct_model *m, double lr) { return ct_adamax_new(m, CT_ADAMAX(.lr = lr)); }
static ct_optim *make_nadam(ct_model *m, double lr) { return ct_nadam_new(m, CT_NADAM(.lr = lr)); }
static ct_optim *make_radam(ct_model *m, double lr) { return ct_radam_new(m, CT_RADAM(.lr = lr)); }
static ct_optim *make_rmsprop(ct_model *m, double lr) { return ct_rmsprop_new(m, CT_RMSPROP(.lr = lr)); }
static ct_optim *make_adagrad(ct_model *m, double lr) { return ct_adagrad_new(m, CT_ADAGRAD(.lr = lr)); }
static ct_optim *make_adadelta(ct_model *m, double lr) { return ct_adadelta_new(m, CT_ADADELTA(.lr = lr)); }
static ct_optim *make_adabelief(ct_model *m, double lr) { return ct_adabelief_new(m, CT_ADABELIEF(.lr = lr)); }
static ct_optim *make_lion(ct_model *m, double lr) { return ct_lion_new(m, CT_LION(.lr = lr)); }
static ct_optim *make_lamb(ct_model *m, double lr) { return ct_lamb_new(m, CT_LAMB(.lr = lr)); }
static ct_optim *make_lars(ct_model *m, double lr) { return ct_lars_new(m, CT_LARS(.lr = lr)); }
static ct_optim *make_adafactor(ct_model *m, double lr) {
    (void)lr;
    return ct_adafactor_new(m, CT_ADAFACTOR());
}
static ct_optim *make_adopt(ct_model *m, double lr) { return ct_adopt_new(m, CT_ADOPT(.lr = lr)); }
static ct_optim *make_lookahead_adam(ct_model *m, double lr) {
    return ct_lookahead_new(ct_adam_new(m, CT_ADAM(.lr = lr)), CT_LOOKAHEAD());
}
static ct_optim *make_sam_momentum(ct_model *m, double lr) {
    return ct_sam_new(ct_sgd_new(m, CT_SGD(.lr = lr, .momentum = 0.9)), CT_SAM());
}

static const racer racers[] = {
    {"sgd", 1e-3, 0.1, make_sgd, 0},
    {"sgd_momentum", 2e-4, 0.05, make_momentum, 0},
    {"nesterov", 2e-4, 0.05, make_nesterov, 0},
    {"adam", 0.02, 1e-3, make_adam, 0},
    {"adamw", 0.02, 1e-3, make_adamw, 0},
    {"amsgrad", 0.02, 1e-3, make_amsgrad, 0},
    {"adamax", 0.02, 2e-3, make_adamax, 0},
    {"nadam", 0.02, 2e-3, make_nadam, 0},
    {"radam", 2e-3, 1e-3, make_radam, 0}, /* its first steps are SGD with momentum: lr·∇ with ∇ ~ 200 */
    {"rmsprop", 1e-3, 1e-3, make_rmsprop, 0},
    {"adagrad", 0.5, 0.05, make_adagrad, 0},
    {"adadelta", 1.0, 1.0, make_adadelta, 0},
    {"adabelief", 0.02, 1e-3, make_adabelief, 0},
    {"lion", 2e-3, 1e-3, make_lion, 0},
    {"lamb", 0.02, 0.01, make_lamb, 0},
    {"lars", 10, 20, make_lars, 0},
    {"adafactor", 0, 0, make_adafactor, 0},
    {"adopt", 0.2, 1e-3, make_adopt, 0},
    {"lookahead_adam", 0.02, 1e-3, make_lookahead_adam, 0},
    {"sam_momentum", 2e-4, 0.05, make_sam_momentum, 1},
};
#define N_RACERS (int)(sizeof racers / sizeof racers[0])

/* The racers drawn in the pictures (ten colours at most; these six show the behaviours above). */
static const char *const drawn[] = {"sgd", "sgd_momentum", "rmsprop", "adam", "adagrad", "lion"};
enum { N_DRAWN = sizeof drawn / sizeof *drawn };

static int drawn_index(const char *name) {
    for (int k = 0; k < N_DRAWN; k++)
        if (!strcmp(drawn[k], name)) return k;
    return -1;
}

/* ---- Rosenbrock ------------------------------------------------------------------------------ */
static double rosenbrock(const ct_real *p, ct_real *grad) {
    double x = p[0], y = p[1];
    if (grad) { /* ∂f/∂x = −2(1 − x) − 400x(y − x²),  ∂f/∂y = 200(y − x²) */
        grad[0] += (ct_real)(-2 * (1 - x) - 400 * x * (y - x * x));
        grad[1] += (ct_real)(200 * (y - x * x));
    }
    return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
}

static double rosenbrock_closure(void *ctx) {
    ct_tensor *p = ctx;
    return rosenbrock(p->data, p->grad);
}

static double rosenbrock_xy(double x, double y, void *ctx) {
    (void)ctx;
    const ct_real p[2] = {(ct_real)x, (ct_real)y};
    return rosenbrock(p, NULL);
}

static void race_rosenbrock(FILE *csv, int steps, const char *picture) {
    double *px[N_DRAWN], *py[N_DRAWN];
    ct_plot_series paths[N_DRAWN];
    for (int k = 0; k < N_DRAWN; k++) {
        px[k] = malloc((size_t)(steps + 1) * sizeof(double)), py[k] = malloc((size_t)(steps + 1) * sizeof(double));
        paths[k] = (ct_plot_series){drawn[k], px[k], py[k], 0, 0, k};
    }
    printf("Rosenbrock from (-1.2, 1), %d steps:\n  %-16s %10s %10s %10s %12s %s\n", steps, "optimizer", "lr", "x",
           "y", "f", "first within 0.01 of (1, 1)");
    for (int r = 0; r < N_RACERS; r++) {
        ct_model *m = ct_model_new();
        ct_tensor *p = ct_model_add_param(m, "xy", CT_SHAPE(2));
        p->data[0] = (ct_real)-1.2;
        p->data[1] = 1;
        ct_optim *opt = racers[r].make(m, racers[r].rosen_lr);
        int reached = -1;
        fprintf(csv, "%s,0,%.9g,%.9g,%.9g\n", racers[r].name, (double)p->data[0], (double)p->data[1],
                rosenbrock(p->data, NULL));
        const int k = drawn_index(racers[r].name);
        if (k >= 0) px[k][0] = p->data[0], py[k][0] = p->data[1], paths[k].n = 1;
        for (int t = 1; t <= steps; t++) {
            if (racers[r].sam) ct_sam_step(opt, rosenbrock_closure, p);
            else {
                rosenbrock(p->data, p->grad);
                ct_optim_step(opt);
            }
            double f = rosenbrock(p->data, NULL);
            fprintf(csv, "%s,%d,%.9g,%.9g,%.9g\n", racers[r].name, t, (double)p->data[0], (double)p->data[1], f);
            if (k >= 0) px[k][t] = p->data[0], py[k][t] = p->data[1], paths[k].n = t + 1;
            if (reached < 0 && hypot(p->data[0] - 1.0, p->data[1] - 1.0) < 0.01) reached = t;
        }
        char lr[32], when[32] = "never";
        snprintf(lr, sizeof lr, racers[r].rosen_lr > 0 ? "%g" : "relative", racers[r].rosen_lr);
        if (reached > 0) snprintf(when, sizeof when, "step %d", reached);
        printf("  %-16s %10s %10.4f %10.4f %10.3g   %s\n", racers[r].name, lr, (double)p->data[0], (double)p->data[1],
               rosenbrock(p->data, NULL), when);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    char title[96];
    snprintf(title, sizeof title, "Rosenbrock: %d steps from (-1.2, 1)", steps);
    if (ct_plot_contour(picture, rosenbrock_xy, NULL, -1.5, 1.5, -0.5, 1.6, paths, N_DRAWN,
                        CT_PLOT(.title = title, .x_label = "x", .y_label = "y", .width = 640, .height = 560)) != CT_OK)
        fprintf(stderr, "optim_race: %s\n", ct_last_error());
    for (int k = 0; k < N_DRAWN; k++) free(px[k]), free(py[k]);
}

/* ---- MNIST: 784-64-10 ReLU MLP --------------------------------------------------------------- */
typedef struct {
    ct_tape *tape;
    ct_module *fc1, *fc2;
    ct_batch *batch;
} mnist_ctx;

static ct_tensor *mnist_forward(ct_tape *tape, const void *net, ct_tensor *x) {
    const mnist_ctx *c = net;
    return ct_forward(tape, c->fc2, ct_relu(tape, ct_forward(tape, c->fc1, x)));
}

static double mnist_loss(void *arg) {
    mnist_ctx *c = arg;
    ct_tape_reset(c->tape);
    ct_tensor *loss = ct_cross_entropy(c->tape, mnist_forward(c->tape, c, c->batch->x), c->batch->y, CT_CE());
    ct_backward(c->tape, loss);
    return loss->data[0];
}

static void race_mnist(FILE *csv, const ct_dataset *train, const ct_dataset *test, int epochs, const char *picture) {
    const int steps = epochs * ((train->n + 127) / 128);
    double *curve[N_DRAWN];
    ct_plot_series lines[N_DRAWN];
    for (int k = 0; k < N_DRAWN; k++) {
        curve[k] = malloc((size_t)steps * sizeof(double));
        lines[k] = (ct_plot_series){drawn[k], NULL, curve[k], 0, 0, k};
    }
    printf("\nMNIST (%d training images), 784-64-10 MLP, batch 128, %d epoch%s:\n  %-16s %10s %10s %10s\n",
           train->n, epochs, epochs > 1 ? "s" : "", "optimizer", "lr", "last loss", "test acc");
    for (int r = 0; r < N_RACERS; r++) {
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 7); /* the same initial weights for everyone */
        mnist_ctx c = {.tape = ct_tape_new()};
        c.fc1 = ct_linear_new(m, "fc1", train->height * train->width, 64);
        c.fc2 = ct_linear_new(m, "fc2", 64, 10);
        ct_optim *opt = racers[r].make(m, racers[r].mnist_lr);
        ct_loader *l = ct_loader_new(train, CT_LOADER(.batch = 128, .seed = 1, .flatten = 1)); /* same batches */
        ct_batch b;
        c.batch = &b;
        int step = 0;
        double last = NAN, avg = 0;
        for (int e = 0; e < epochs; e++)
            while (ct_loader_next(l, &b)) {
                if (racers[r].sam) last = ct_sam_step(opt, mnist_loss, &c);
                else {
                    last = mnist_loss(&c);
                    ct_optim_step(opt);
                }
                avg = step == 0 ? last : 0.9 * avg + 0.1 * last;
                const int k = drawn_index(racers[r].name);
                if (k >= 0 && step < steps) curve[k][step] = avg, lines[k].n = step + 1;
                fprintf(csv, "%s,%d,%.6g\n", racers[r].name, ++step, last);
            }
        char lr[32];
        snprintf(lr, sizeof lr, racers[r].mnist_lr > 0 ? "%g" : "relative", racers[r].mnist_lr);
        double acc = ex_accuracy(c.tape, m, mnist_forward, &c, test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
        printf("  %-16s %10s %10.4f %9.2f%%\n", racers[r].name, lr, avg, 100 * acc);
        ct_loader_free(l);
        ct_optim_free(opt);
        ct_tape_free(c.tape);
        ct_model_free(m);
    }
    if (ct_plot_lines(picture, lines, N_DRAWN,
                      CT_PLOT(.title = "MNIST 784-64-10: training loss (smoothed)", .x_label = "step",
                              .y_label = "loss", .log_y = 1)) != CT_OK)
        fprintf(stderr, "optim_race: %s\n", ct_last_error());
    for (int k = 0; k < N_DRAWN; k++) free(curve[k]);
}

static FILE *open_csv(const char *dir, const char *name, const char *header) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "optim_race: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fprintf(f, "%s\n", header);
    return f;
}

static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [--out DIR] [--data MNIST_DIR] [--steps N] [--epochs N] [--threads N]\n"
                "Races every optimizer on Rosenbrock (N steps, default 3000) and on a 784-64-10 MLP over\n"
                "MNIST train10k (default 1 epoch; skipped when MNIST_DIR, default ../shared/data/mnist,\n"
                "is absent). Writes DIR/rosenbrock.csv and .png, DIR/mnist.csv and .png (default DIR: optim_race).\n",
            prog);
}

int main(int argc, char **argv) {
    const char *out = "optim_race", *data = "../shared/data/mnist";
    int steps = 3000, epochs = 1, threads = 0;
    const opt_spec specs[] = {
        {"--out", OPT_STRING, &out, 0, NULL},     {"--data", OPT_STRING, &data, 0, NULL},
        {"--steps", OPT_INT, &steps, 1, NULL},    {"--epochs", OPT_INT, &epochs, 1, NULL},
        {"--threads", OPT_INT, &threads, 0, NULL},
    };
    if (!opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage)) return 2;
    if (threads > 0) ct_set_threads(threads); /* else $CTAPE_THREADS, else all cores */
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "optim_race: %s: %s\n", out, strerror(errno));
        return 1;
    }
    FILE *csv = open_csv(out, "rosenbrock.csv", "optimizer,step,x,y,f");
    if (!csv) return 1;
    char picture[1024];
    snprintf(picture, sizeof picture, "%s/rosenbrock.png", out);
    race_rosenbrock(csv, steps, picture);
    fclose(csv);

    ct_dataset *train = ct_idx_load(data, "train10k"), *test = train ? ct_idx_load(data, "t10k") : NULL;
    if (!train || !test) {
        printf("\nMNIST race skipped: %s\n", ct_last_error());
        ct_dataset_free(train);
    } else {
        csv = open_csv(out, "mnist.csv", "optimizer,step,loss");
        if (!csv) return 1;
        snprintf(picture, sizeof picture, "%s/mnist.png", out);
        race_mnist(csv, train, test, epochs, picture);
        fclose(csv);
        ct_dataset_free(test);
        ct_dataset_free(train);
    }
    printf("\nCSV in %s/\n", out);
    return 0;
}
