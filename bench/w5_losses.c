/* bench/w5_losses.c — workload W5: forward + backward time of each loss of the zoo, by name from
 * the registry, on logits (1024, 10) and (1024, 1000), and of SupCon and Circle on embeddings
 * (256, 128) with 10 classes. One step is: zero the input's gradient, ct_loss_apply, ct_backward,
 * ct_tape_reset. Each figure is the best over 5 rounds of the mean time of a round (a round runs
 * for at least ~50 ms), so a busy machine's noise only ever slows a round down.
 * Prints one line per loss and shape for bench/run.sh:  loss=focal shape=1024x10 us=12.3
 * bench/w5_losses_torch.py runs the same losses, written in plain PyTorch, on the same shapes.
 *
 *   w5_losses [THREADS [LOSSES [SHAPE]]]   THREADS default 2; LOSSES a comma-separated list of names
 *   (default all), SHAPE one of 1024x10, 1024x1000, 256x128 (default all): to profile one loss. */
#include <ctape.h>

#include <time.h>

#include <stdlib.h>
#include <string.h>

/* BENCH_CPU_TIME=1: the process's CPU time instead of the wall clock. With one thread it leaves
 * out the time other programs held the CPU, for comparing two builds on a busy machine. */
static double bench_now(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("BENCH_CPU_TIME") && atoi(getenv("BENCH_CPU_TIME"));
    if (!cpu) return ct_time_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double step_us(ct_tape *tape, ct_loss *loss, ct_tensor *x, ct_labels y) {
    double best = 1e30;
    for (int round = 0; round < 6; round++) {
        int reps = 0;
        double start = bench_now(), now;
        do {
            ct_tensor_zero_grad(x);
            ct_backward(tape, ct_loss_apply(tape, loss, x, y));
            ct_tape_reset(tape);
            reps++;
        } while ((now = bench_now()) - start < 0.05);
        if (round > 0 && (now - start) / reps < best) best = (now - start) / reps; /* round 0 warms up */
    }
    return best * 1e6;
}

static const char *only_losses, *only_shape; /* filters from the command line, NULL for all */

static int selected(const char *name, int n, int c) {
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", n, c);
    if (only_shape && strcmp(only_shape, shape)) return 0;
    if (!only_losses) return 1;
    const size_t len = strlen(name);
    for (const char *p = only_losses; *p;) {
        const char *end = strchr(p, ',');
        const size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k == len && !strncmp(p, name, len)) return 1;
        p += k + (end != NULL);
    }
    return 0;
}

static void run(ct_tape *tape, const char *spec, int n, int c, ct_rng *rng) {
    if (!selected(spec, n, c)) return;
    ct_loss *loss = ct_loss_parse(spec);
    if (!loss) {
        fprintf(stderr, "w5_losses: %s\n", ct_last_error());
        exit(1);
    }
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(n, c));
    ct_tensor_fill_normal(x, rng, 0, 2);
    int *labels = malloc((size_t)n * sizeof *labels);
    for (int i = 0; i < n; i++) labels[i] = (int)ct_rng_int(rng, 0, n == 256 ? 10 : c);
    printf("loss=%s shape=%dx%d us=%.2f\n", spec, n, c, step_us(tape, loss, x, CT_LABELS(labels, n)));
    fflush(stdout);
    free(labels);
    ct_tensor_free(x);
    ct_loss_free(loss);
}

int main(int argc, char **argv) {
    ct_set_threads(argc > 1 ? atoi(argv[1]) : 2);
    only_losses = argc > 2 && strcmp(argv[2], "all") ? argv[2] : NULL;
    only_shape = argc > 3 ? argv[3] : NULL;
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    static const int shapes[][2] = {{1024, 10}, {1024, 1000}};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ct_loss_count(); i++) {
            const char *name = ct_loss_name_at(i);
            /* the embedding losses run on embeddings below (ntxent needs views, triplet is not in W5) */
            if (!strcmp(name, "supcon") || !strcmp(name, "ntxent") || !strcmp(name, "circle") ||
                !strcmp(name, "triplet") || !strcmp(name, "circle_class") || !strcmp(name, "center"))
                continue;
            run(tape, name, shapes[s][0], shapes[s][1], &rng);
        }
    run(tape, "supcon", 256, 128, &rng);
    run(tape, "circle", 256, 128, &rng);
    ct_tape_free(tape);
    return 0;
}
