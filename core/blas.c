/* core/blas.c — the one place that talks to OpenBLAS and OpenMP: GEMM and the thread setting. */
#include "core.h"

#include <cblas.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int thread_count = 0;

static int core_count(void) {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

static void apply_threads(int n) {
    thread_count = n;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int ct_set_threads(int n) {
    int cores = core_count();
    if (n > CT_MAX_THREADS_PER_CORE * cores)
        return ct_set_error(CT_ERR_VALUE, "ct_set_threads: %d threads on a machine with %d core%s "
                            "(at most %d; 0 means one per core); the setting stays at %d", n, cores,
                            cores == 1 ? "" : "s", CT_MAX_THREADS_PER_CORE * cores, ct_get_threads());
    apply_threads(n <= 0 ? cores : n);
    return CT_OK;
}

/* CTAPE_THREADS as a count, or 0 (all cores) with a message on stderr when it is not one. */
static int threads_from_variable(const char *env) {
    char *end;
    long n = strtol(env, &end, 10);
    int cores = core_count();
    if (end == env || *end != '\0' || n < 0 || n > CT_MAX_THREADS_PER_CORE * cores) {
        fprintf(stderr, "ctape: CTAPE_THREADS=%s is not a thread count from 0 to %d (0: one per core); "
                "using %d\n", env, CT_MAX_THREADS_PER_CORE * cores, cores);
        return 0;
    }
    return (int)n;
}

int ct_get_threads(void) {
    if (thread_count == 0) apply_threads(core_count()); /* CTAPE_THREADS was applied at start-up */
    return thread_count;
}

/* Apply CTAPE_THREADS before main() so OpenBLAS never starts with a different count. */
__attribute__((constructor)) static void threads_from_environment(void) {
    const char *env = getenv("CTAPE_THREADS");
    if (env) {
        int n = threads_from_variable(env);
        apply_threads(n > 0 ? n : core_count());
    }
}

void ct_gemm(int trans_a, int trans_b, int M, int N, int K, ct_real alpha, const ct_real *A,
             int lda, const ct_real *B, int ldb, ct_real beta, ct_real *C, int ldc) {
    if (M == 0 || N == 0) return;
#ifdef CT_PRECISION_64
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
