/* bench/optim_step.c — one optimizer step over 10 M parameters (ten 1000×1000 tensors), for
 * SGD with momentum, Adam, AdamW and Lion, beside the machine's measured copy bandwidth.
 *
 *   optim_step [THREADS [REPEATS]]
 *
 * Each optimizer is timed over REPEATS steps (default 10, after 3 warm-up steps) with fresh
 * gradients written before each step and then a 64 MB buffer swept (untimed, so the step starts
 * from main memory, not from the 32 MB L3 the gradients were just written through); the best
 * time counts (a shared machine's noise only ever slows a step down). A step here includes zeroing the gradients (ctape does it in the
 * same pass). The bandwidth bound is the bytes a step must read and write, divided by the copy
 * bandwidth (bytes read + written per second by a parallel copy of 80 MB):
 *   SGD-momentum  read θ, g, b; write θ, b, g            6 values per parameter
 *   Adam / AdamW  read θ, g, m, v; write θ, m, v, g      8
 *   Lion          read θ, g, m; write θ, m, g            6
 * Prints one key=value line per optimizer for bench/run.sh. */
#include <ctape.h>

#include <time.h>

#include <stdlib.h>
#include <string.h>

enum { TENSORS = 10, ROWS = 1000, COLS = 1000 };

/* Sweeps a buffer larger than the last-level cache so nothing of the step's data stays in it. */
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

static void flush_cache(void) {
    static ct_real *junk;
    const size_t n = (size_t)16 << 20; /* 64 MB of float32 */
    if (!junk && !(junk = calloc(n, sizeof *junk))) return;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) junk[i] += 1;
}

static double copy_bandwidth(size_t n, int repeats) {
    ct_real *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b) {
        fprintf(stderr, "optim_step: out of memory\n");
        exit(1);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (ct_real)i, b[i] = 0;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) b[i] = a[i];
        double t = bench_now() - t0;
        if (t < best) best = t;
        ct_real *s = a; /* alternate direction so neither buffer stays hot */
        a = b;
        b = s;
    }
    free(a);
    free(b);
    return 2.0 * (double)n * sizeof(ct_real) / best; /* bytes read + written per second */
}

typedef struct {
    const char *name;
    int values_moved; /* per parameter per step, read + written */
} bench_case;

static ct_optim *make(int which, ct_model *m) {
    switch (which) {
    case 0: return ct_sgd_new(m, CT_SGD(.lr = 1e-3, .momentum = 0.9));
    case 1: return ct_adam_new(m, CT_ADAM(.lr = 1e-3));
    case 2: return ct_adamw_new(m, CT_ADAMW(.lr = 1e-3));
    default: return ct_lion_new(m, CT_LION(.lr = 1e-4, .weight_decay = 0.1));
    }
}

int main(int argc, char **argv) {
    ct_set_threads(argc > 1 ? atoi(argv[1]) : 2);
    const int repeats = argc > 2 ? atoi(argv[2]) : 10;
    const bench_case cases[] = {{"sgd_momentum", 6}, {"adam", 8}, {"adamw", 8}, {"lion", 6}};
    const size_t n_params = (size_t)TENSORS * ROWS * COLS;
    const double bw = copy_bandwidth(2 * n_params, 20);

    for (int c = 0; c < 4; c++) {
        ct_model *m = ct_model_new();
        for (int k = 0; k < TENSORS; k++) {
            char name[16];
            snprintf(name, sizeof name, "w%d", k);
            ct_tensor *p = ct_model_add_param(m, name, CT_SHAPE(ROWS, COLS));
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)((double)(i % 1000) * 1e-3 - 0.5);
        }
        ct_optim *opt = make(c, m);
        /* BENCH_GUARD=off: without the default non-finite check (one extra read of the gradients) */
        if (getenv("BENCH_GUARD") && !strcmp(getenv("BENCH_GUARD"), "off"))
            ct_optim_set_guards(opt, CT_GUARDS(.nonfinite = CT_NONFINITE_OFF));
        double best = 1e30;
        for (int r = 0; r < repeats + 3; r++) {
            for (int k = 0; k < TENSORS; k++) {
                ct_tensor *p = ct_model_param(m, k);
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)((double)((i * 7 + (size_t)r) % 1000) * 1e-3 - 0.5);
            }
            flush_cache();
            double t0 = bench_now();
            ct_optim_step(opt);
            double t = bench_now() - t0;
            if (r >= 3 && t < best) best = t;
        }
        const double bytes = (double)cases[c].values_moved * sizeof(ct_real) * (double)n_params;
        printf("optimizer=%s params=%zu threads=%d step_ms=%.3f bytes_per_step=%.0f copy_gbs=%.2f bound_ms=%.3f "
               "of_bound=%.2f\n",
               cases[c].name, n_params, ct_get_threads(), 1e3 * best, bytes, bw / 1e9, 1e3 * bytes / bw,
               best / (bytes / bw));
        ct_optim_free(opt);
        ct_model_free(m);
    }
    return 0;
}
