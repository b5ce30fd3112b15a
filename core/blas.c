/* core/blas.c — the one place that talks to OpenBLAS and OpenMP: GEMM and the thread setting. */
#include "tensor.h"

#include <cblas.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int thread_count = 0;

void ct_set_threads(int n) {
    if (n <= 0) {
#ifdef _OPENMP
        n = omp_get_num_procs();
#else
        n = 1;
#endif
    }
    thread_count = n;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int ct_get_threads(void) {
    if (thread_count == 0) {
        const char *env = getenv("CTAPE_THREADS");
        ct_set_threads(env ? atoi(env) : 0);
    }
    return thread_count;
}

/* Apply CTAPE_THREADS before main() so OpenBLAS never starts with a different count. */
__attribute__((constructor)) static void threads_from_environment(void) {
    const char *env = getenv("CTAPE_THREADS");
    if (env) ct_set_threads(atoi(env));
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
