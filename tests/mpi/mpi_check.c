/* tests/mpi/mpi_check.c — the data-parallel checks that need several ranks, run under mpirun by
 * tests/mpi/run.sh (make test MPI=1). One mode per run:
 *
 *   shards                 each rank's loader shard, gathered on rank 0, is its slice of the unsharded
 *                          loader's global batch (labels and augmented pixels, byte for byte), and every
 *                          sample comes once per epoch
 *   train OUT [K]          ct_fit of a small MLP (each rank's model seeded differently: rank 0's weights
 *                          must reach all), with .dist_shards = K when given; checks that every rank ends
 *                          with rank 0's weights bit for bit and that rank 0 wrote the log; rank 0 writes
 *                          the weights (raw ct_real) to OUT
 *   buckets OUT            a hand-written loop with buckets of up to 100 gradient elements (4: net.2.bias, then each
 *                          other parameter alone, as none fits beside another) attached to
 *                          the tape: every bucket must have started during the backward; the same checks
 *                          and OUT as train
 *   batch_norm             ct_fit of a net with batch norm: rank 0's running statistics reach every rank
 *   resume DIR             ct_fit for 4 epochs, against a run that the last rank interrupts (SIGINT in its
 *                          on_epoch after epoch 2; every rank must stop) and a resume of it from the
 *                          checkpoint: bit-identical weights
 *   compare A B TOL        the largest |a − b| / (1e-3 + |a|) of two weight files; exit 1 above TOL
 *                          (TOL 0: the files must be equal byte for byte)
 *   fail                   the last rank fails to read a file; every rank must learn it (ct_dist_check)
 *   fail-fit               rank 0 cannot write ct_fit's log; every rank's ct_fit must return the error
 *   batches                the last rank's loader has another .batch: every rank's ct_fit must refuse
 *   exit                   the last rank exits (status 3) while the others wait in a collective: mpirun
 *                          must end the job (run.sh checks that it does not hang)
 *
 * Prints "ok ..." on success; on a failure the message on stderr and exit status 1 on every rank. */
#include "../../ctape.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static int rank, world;

/* Sets the message and the code, for a check that fails on this rank. */
#define EXPECT(cond, ...) \
    do { if (!(cond)) return ct_set_error(CT_ERR_VALUE, __VA_ARGS__); } while (0)

/* n samples of 1×4×5, bytes telling the samples apart; label i (shards) or a learnable class (train). */
static ct_dataset *dataset(int n, int learnable) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 4, d->width = 5, d->classes = learnable ? 4 : n;
    d->images = malloc((size_t)n * 20);
    d->labels = malloc((size_t)n * sizeof(int));
    ct_rng r;
    ct_rng_seed(&r, 11);
    for (int i = 0; i < n; i++) {
        d->labels[i] = learnable ? i % 4 : i;
        for (int k = 0; k < 20; k++) {
            const double v = learnable ? (k % 4 == i % 4 ? 180 : 70) + ct_rng_normal(&r, 0, 30) : 1 + (k * 11 + i * 7) % 250;
            d->images[(size_t)i * 20 + k] = (uint8_t)fmin(255, fmax(0, v));
        }
    }
    snprintf(d->source, sizeof d->source, "mpi_check dataset");
    return d;
}

static int check_shards(void) {
    enum { N_SAMPLES = 66, BATCH = 12, ROW = 20 }; /* 5 batches of 12 and one of 6: split by 1, 2, 3 and 6 */
    ct_dataset *d = dataset(N_SAMPLES, 0);
    const ct_loader_opts base = CT_LOADER(.batch = BATCH, .seed = 9, .flatten = 1, .crop_padding = 1, .hflip = 1, .cutout = 2);
    ct_loader_opts mine = base;
    mine.shard = rank, mine.shards = world;
    ct_loader *whole = ct_loader_new(d, base), *shard = ct_loader_new(d, mine);
    int *labels = malloc((size_t)BATCH * sizeof *labels);
    ct_real *pixels = malloc((size_t)BATCH * ROW * sizeof *pixels);
    int status = CT_OK, batches = 0;
    for (int e = 0; e < 2 && status == CT_OK; e++) {
        int seen[N_SAMPLES] = {0};
        ct_batch g, b;
        while (status == CT_OK && ct_loader_next(whole, &g)) {
            const int local = g.n / world;
            if (!ct_loader_next(shard, &b) || b.n != local) {
                status = ct_set_error(CT_ERR_VALUE, "epoch %d batch %d: the shard has no batch of %d samples", e, g.index, local);
                break;
            }
            if ((status = ct_dist_gather(b.y.data, (size_t)local * sizeof(int), labels))) break;
            if ((status = ct_dist_gather(b.x->data, (size_t)local * ROW * sizeof(ct_real), pixels))) break;
            if (rank == 0) {
                if (memcmp(labels, g.y.data, (size_t)g.n * sizeof(int)))
                    status = ct_set_error(CT_ERR_VALUE, "epoch %d batch %d: the shards' samples are not the global batch's", e, g.index);
                else if (memcmp(pixels, g.x->data, (size_t)g.n * ROW * sizeof(ct_real)))
                    status = ct_set_error(CT_ERR_VALUE, "epoch %d batch %d: the shards' pixels are not the global batch's", e, g.index);
                for (int i = 0; i < g.n; i++) seen[labels[i]]++;
            }
            batches++;
            status = ct_dist_check(status);
        }
        if (status == CT_OK && ct_loader_next(shard, &b)) status = ct_set_error(CT_ERR_VALUE, "the shard has more batches");
        for (int i = 0; rank == 0 && status == CT_OK && i < N_SAMPLES; i++)
            if (seen[i] != 1) status = ct_set_error(CT_ERR_VALUE, "epoch %d: sample %d drawn %d times", e, i, seen[i]);
        status = ct_dist_check(status);
    }
    if (status == CT_OK && rank == 0) printf("ok shards: %d ranks, %d global batches rebuilt from the shards\n", world, batches);
    free(labels), free(pixels);
    ct_loader_free(shard), ct_loader_free(whole);
    ct_dataset_free(d);
    return status;
}

/* Every rank holds rank 0's weights, bit for bit; rank 0 writes them to out (when not NULL). */
static int same_weights_everywhere(ct_model *m, const char *out) {
    int status = CT_OK;
    for (int k = 0; status == CT_OK && k < ct_model_param_count(m); k++) {
        const ct_tensor *p = ct_model_param(m, k);
        ct_real *theirs = malloc(p->size * sizeof *theirs);
        memcpy(theirs, p->data, p->size * sizeof *theirs);
        status = ct_dist_broadcast(theirs, p->size * sizeof *theirs);
        if (status == CT_OK && memcmp(theirs, p->data, p->size * sizeof *theirs))
            status = ct_set_error(CT_ERR_VALUE, "parameter %s differs from rank 0's", p->name);
        free(theirs);
    }
    if (status == CT_OK && out && rank == 0) {
        FILE *f = fopen(out, "wb");
        for (int k = 0; f && k < ct_model_param_count(m); k++)
            fwrite(ct_model_param(m, k)->data, sizeof(ct_real), ct_model_param(m, k)->size, f);
        if (!f || fclose(f)) status = ct_set_error(CT_ERR_IO, "cannot write %s", out);
    }
    return ct_dist_check(status);
}

static ct_module *mlp(ct_model *m) {
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 20, 32));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.1"));
    ct_sequential_add(net, ct_linear_new(m, "net.2", 32, 4));
    return net;
}

static int check_train(const char *out, int shards) {
    ct_dataset *train = dataset(240, 1), *val = dataset(60, 1); /* 10 global batches of 24 */
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 100 + (uint64_t)rank); /* different on each rank: ct_fit starts them all from rank 0's */
    ct_module *net = mlp(m);
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 3e-3));
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = 24, .seed = 5, .flatten = 1, .shard = rank, .shards = world));
    ct_loader *vl = ct_loader_new(val, CT_LOADER(.batch = 30, .shuffle = 0, .flatten = 1));
    ct_batch_source ts = ct_loader_source(tl), vs = ct_loader_source(vl);
    char log[4200];
    snprintf(log, sizeof log, "%s.csv", out);
    ct_fit_result r;
    int status = ct_fit(m, net, opt, ts, &vs, CT_FIT(.epochs = 4, .progress = 0, .log_csv = log, .dist_shards = shards), &r);
    status = ct_dist_check(status);
    if (status == CT_OK) status = same_weights_everywhere(m, out);
    if (status == CT_OK && rank == 0) {
        int rows = 0, c;
        FILE *l = fopen(log, "r");
        while (l && (c = fgetc(l)) != EOF) rows += c == '\n';
        if (l) fclose(l);
        if (status == CT_OK && rows != 1 + 4) status = ct_set_error(CT_ERR_VALUE, "the log %s has %d lines, want 5", log, rows);
        if (status == CT_OK)
            printf("ok train: %d ranks%s, val accuracy %.3f, train loss %.4f, same weights on every rank\n", world,
                   shards ? " (deterministic order)" : "", r.last.val.accuracy, r.last.train_loss);
    }
    status = ct_dist_check(status);
    ct_loader_free(tl), ct_loader_free(vl);
    ct_optim_free(opt);
    ct_model_free(m);
    ct_dataset_free(train), ct_dataset_free(val);
    return status;
}

/* Batch norm: every rank ends with rank 0's parameters and running statistics. */
static int check_batch_norm(void) {
    ct_dataset *train = dataset(240, 1), *val = dataset(60, 1);
    ct_model *m = ct_model_new();
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 20, 32));
    ct_sequential_add(net, ct_batch_norm_new(m, "net.1", 32, CT_BATCH_NORM()));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.2"));
    ct_sequential_add(net, ct_linear_new(m, "net.3", 32, 4));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = 24, .seed = 5, .flatten = 1, .shard = rank, .shards = world));
    ct_loader *vl = ct_loader_new(val, CT_LOADER(.batch = 30, .shuffle = 0, .flatten = 1));
    ct_batch_source vs = ct_loader_source(vl);
    ct_fit_result r;
    int status = ct_fit(m, net, opt, ct_loader_source(tl), &vs,
                        CT_FIT(.epochs = 3, .progress = 0, .patience = 1, .best_metric = "val_loss"), &r);
    status = ct_dist_check(status);
    if (status == CT_OK) status = same_weights_everywhere(m, NULL);
    for (int k = 0; status == CT_OK && k < ct_model_buffer_count(m); k++) {
        const ct_tensor *t = ct_model_buffer(m, k);
        ct_real *theirs = malloc(t->size * sizeof *theirs);
        memcpy(theirs, t->data, t->size * sizeof *theirs);
        status = ct_dist_broadcast(theirs, t->size * sizeof *theirs);
        if (status == CT_OK && memcmp(theirs, t->data, t->size * sizeof *theirs))
            status = ct_set_error(CT_ERR_VALUE, "buffer %s differs from rank 0's", t->name);
        free(theirs);
        status = ct_dist_check(status);
    }
    if (status == CT_OK && rank == 0)
        printf("ok batch_norm: %d ranks, %d epochs, val loss %.4f, the same parameters and running statistics on every rank\n",
               world, r.epochs_run, r.last.val_loss);
    ct_loader_free(tl), ct_loader_free(vl), ct_optim_free(opt), ct_model_free(m);
    ct_dataset_free(train), ct_dataset_free(val);
    return status;
}

static int check_buckets(const char *out) {
    ct_dataset *train = dataset(240, 1);
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 100 + (uint64_t)rank);
    ct_module *net = mlp(m);
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 3e-3));
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = 24, .seed = 5, .flatten = 1, .shard = rank, .shards = world));
    ct_tape *tape = ct_tape_new();
    ct_grad_sync *sync = ct_grad_sync_new(m, CT_GRAD_SYNC(.bucket = 100));
    ct_grad_sync_attach(sync, tape);
    int status = ct_dist_broadcast_optim(opt), early = 0, steps = 0;
    const int buckets = ct_grad_sync_buckets(sync);
    for (int e = 0; e < 4 && status == CT_OK; e++) {
        ct_batch b;
        while (status == CT_OK && ct_loader_next(tl, &b)) {
            ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, net, b.x), b.y, CT_CE()));
            early += ct_grad_sync_started(sync), steps++;
            if ((status = ct_grad_sync_average(sync)) == CT_OK) status = ct_optim_step(opt);
            ct_tape_reset(tape);
        }
    }
    if (status == CT_OK && (buckets != 4 || early != steps * buckets))
        status = ct_set_error(CT_ERR_VALUE, "%d buckets (want 4), %d of %d started during the backward", buckets, early,
                              steps * buckets);
    status = ct_dist_check(status);
    if (status == CT_OK) status = same_weights_everywhere(m, out);
    if (status == CT_OK && rank == 0)
        printf("ok buckets: %d ranks, %d buckets, all started during the backward, same weights on every rank\n", world,
               buckets);
    ct_grad_sync_free(sync);
    ct_tape_free(tape);
    ct_loader_free(tl), ct_optim_free(opt), ct_model_free(m), ct_dataset_free(train);
    return status;
}

static void interrupt_after_epoch_2(const ct_fit_epoch *e, void *user) {
    (void)user;
    if (e->epoch == 2 && rank == world - 1) raise(SIGINT);
}

/* ct_fit for 4 epochs (or .resume) into m's weights; the fit's status. */
static int fit(ct_model **mp, const char *checkpoint, const char *resume, int interrupt) {
    ct_dataset *train = dataset(240, 1);
    ct_model *m = *mp = ct_model_new();
    ct_model_set_seed(m, 200 + (uint64_t)rank);
    ct_module *net = mlp(m);
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 3e-3));
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = 24, .seed = 5, .flatten = 1, .shard = rank, .shards = world));
    const int status = ct_fit(m, net, opt, ct_loader_source(tl), NULL,
                              CT_FIT(.epochs = 4, .progress = 0, .checkpoint = checkpoint, .resume = resume,
                                     .on_epoch = interrupt ? interrupt_after_epoch_2 : NULL), NULL);
    ct_loader_free(tl), ct_optim_free(opt), ct_dataset_free(train);
    return status;
}

static int check_resume(const char *dir) {
    char full[4200], part[4200];
    snprintf(full, sizeof full, "%s/full.ckpt", dir), snprintf(part, sizeof part, "%s/part.ckpt", dir);
    ct_model *a = NULL, *b = NULL, *c = NULL;
    int status = fit(&a, full, NULL, 0);
    if (status == CT_OK) {
        const int rc = fit(&b, part, NULL, 1);
        status = rc == CT_FIT_INTERRUPTED ? CT_OK : rc ? rc : ct_set_error(CT_ERR_VALUE, "rank %d was not interrupted", rank);
    }
    status = ct_dist_check(status);
    if (status == CT_OK) status = fit(&c, part, part, 0);
    for (int k = 0; status == CT_OK && k < ct_model_param_count(a); k++)
        if (memcmp(ct_model_param(a, k)->data, ct_model_param(c, k)->data, ct_model_param(a, k)->size * sizeof(ct_real)))
            status = ct_set_error(CT_ERR_VALUE, "after the resume %s differs from the run never stopped", ct_model_param(a, k)->name);
    status = ct_dist_check(status);
    if (status == CT_OK) status = same_weights_everywhere(c, NULL);
    if (status == CT_OK && rank == 0)
        printf("ok resume: %d ranks, interrupted by rank %d after epoch 2, resumed: the weights of the run never stopped\n",
               world, world - 1);
    ct_model_free(a), ct_model_free(b), ct_model_free(c);
    return status;
}

static int compare(const char *a, const char *b, double tol) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    EXPECT(fa && fb, "cannot read %s or %s", a, b);
    double worst = 0;
    long n = 0, differ = 0;
    ct_real x, y;
    size_t ra, rb;
    while ((ra = fread(&x, sizeof x, 1, fa)) == 1 && (rb = fread(&y, sizeof y, 1, fb)) == 1) {
        const double err = fabs((double)x - (double)y) / (1e-3 + fabs((double)x));
        worst = err > worst ? err : worst;
        differ += memcmp(&x, &y, sizeof x) != 0;
        n++;
    }
    const int same_length = ra == 0 && fread(&y, sizeof y, 1, fb) == 0;
    fclose(fa), fclose(fb);
    EXPECT(same_length && n > 0, "%s and %s hold different numbers of weights", a, b);
    EXPECT(tol > 0 || differ == 0, "%s and %s: %ld of %ld weights differ (largest relative difference %.3g), want bit-identical",
           a, b, differ, n, worst);
    EXPECT(worst <= tol, "%s and %s: largest relative difference %.3g > %.3g", a, b, worst, tol);
    printf("ok compare: %ld weights, %ld differ, largest relative difference %.3g (limit %.3g)\n", n, differ, worst, tol);
    return CT_OK;
}

static int fail_on_last_rank(void) {
    ct_dataset *d = NULL;
    int status = CT_OK;
    if (rank == world - 1 && !(d = ct_idx_load("/nonexistent/mpi_check", "train"))) status = CT_ERR_IO;
    status = ct_dist_check(status);
    ct_dataset_free(d);
    EXPECT(status != CT_OK, "rank %d: the failure of rank %d did not reach this rank", rank, world - 1);
    return status;
}

/* The last rank's loader has another batch size: every rank's ct_fit must refuse to start. */
static int batches_differ(void) {
    ct_dataset *train = dataset(48, 1);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1));
    const int batch = rank == world - 1 && world > 1 ? 12 : 24;
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = batch, .flatten = 1, .shard = rank, .shards = world));
    const int status = ct_fit(m, net, opt, ct_loader_source(tl), NULL, CT_FIT(.epochs = 1, .progress = 0), NULL);
    fprintf(stderr, "rank %d: ct_fit returned %d: %s\n", rank, status, ct_last_error());
    ct_loader_free(tl), ct_optim_free(opt), ct_model_free(m), ct_dataset_free(train);
    return status ? status : ct_set_error(CT_ERR_VALUE, "ct_fit on rank %d ran with %d batches per epoch", rank, 48 / batch);
}

static int fail_in_fit(const char *dir) {
    ct_dataset *train = dataset(48, 1);
    ct_model *m = ct_model_new();
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1));
    ct_loader *tl = ct_loader_new(train, CT_LOADER(.batch = 24, .flatten = 1, .shard = rank, .shards = world));
    char log[4200];
    snprintf(log, sizeof log, "%s/no-such-dir/log.csv", dir);
    const int status = ct_fit(m, net, opt, ct_loader_source(tl), NULL, CT_FIT(.epochs = 1, .progress = 0, .log_csv = log), NULL);
    fprintf(stderr, "rank %d: ct_fit returned %d: %s\n", rank, status, ct_last_error());
    ct_loader_free(tl), ct_optim_free(opt), ct_model_free(m), ct_dataset_free(train);
    return status ? status : ct_set_error(CT_ERR_VALUE, "ct_fit on rank %d succeeded while rank 0 could not write its log", rank);
}

int main(int argc, char **argv) {
    if (ct_dist_init(&argc, &argv)) {
        fprintf(stderr, "mpi_check: %s\n", ct_last_error());
        return 1;
    }
    rank = ct_dist_rank(), world = ct_dist_world_size();
    const char *mode = argc > 1 ? argv[1] : "";
    int status;
    if (!strcmp(mode, "shards")) status = check_shards();
    else if (!strcmp(mode, "train") && argc >= 3) status = check_train(argv[2], argc > 3 ? atoi(argv[3]) : 0);
    else if (!strcmp(mode, "batch_norm")) status = check_batch_norm();
    else if (!strcmp(mode, "buckets") && argc == 3) status = check_buckets(argv[2]);
    else if (!strcmp(mode, "resume") && argc == 3) status = check_resume(argv[2]);
    else if (!strcmp(mode, "compare") && argc == 5) status = rank == 0 ? compare(argv[2], argv[3], atof(argv[4])) : CT_OK;
    else if (!strcmp(mode, "fail")) status = fail_on_last_rank();
    else if (!strcmp(mode, "fail-fit") && argc == 3) status = fail_in_fit(argv[2]);
    else if (!strcmp(mode, "batches")) status = batches_differ();
    else if (!strcmp(mode, "exit")) {
        if (rank == world - 1) {
            fprintf(stderr, "mpi_check exit: rank %d of %d stops with status 3\n", rank, world);
            exit(3);
        }
        status = ct_dist_barrier();
    }
    else status = ct_set_error(CT_ERR_VALUE, "usage: mpi_check shards | train OUT [K] | batch_norm | buckets OUT | resume DIR | compare A B TOL | fail | fail-fit DIR | batches | exit");
    if (status) fprintf(stderr, "mpi_check %s, rank %d of %d: %s\n", mode, rank, world, ct_last_error());
    ct_dist_finalize();
    return status ? 1 : 0;
}
