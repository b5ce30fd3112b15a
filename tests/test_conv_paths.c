/* tests/test_conv_paths.c — code paths of the CIFAR-network ops that the general tests do not
 * reach: batch norm on images whose blocks (one channel of one sample, H·W values) are summed in
 * more than one float piece, on data far from zero, against the definition in double. */
#include "test.h"

#include <math.h>
#include <stdlib.h>

/* y = γ·(x − μ)/√(σ² + eps) per channel and, for cotangent dy,
 * dx = (γ·r/M)·(M·dy − Σ dy − x̂·Σ dy·x̂), all in double from the very values the op saw. */
static void naive_images(const ct_real *x, const ct_real *dy, const ct_real *gamma, int N, int C, int S, double eps,
                         double *y, double *dx) {
    const double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0, sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) sum += x[((size_t)n * C + c) * S + s];
        const double mu = sum / M;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) sq += pow(x[((size_t)n * C + c) * S + s] - mu, 2);
        const double r = 1 / sqrt(sq / M + eps);
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t i = ((size_t)n * C + c) * S + s;
                y[i] = gamma[c] * (x[i] - mu) * r;
                sdy += dy[i];
                sdyx += dy[i] * (x[i] - mu) * r;
            }
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t i = ((size_t)n * C + c) * S + s;
                dx[i] = gamma[c] * r / M * (M * dy[i] - sdy - (x[i] - mu) * r * sdyx);
            }
    }
}

/* 40x40 blocks: 1600 values, two pieces of the block sums; channel means 1000 and −500 with
 * standard deviation 1, where Σx² − (Σx)²/M would lose every digit in float32. On 1 and 2
 * threads (blocks split between threads, sums added per channel in a fixed order). */
CT_TEST(norm, batch_norm_images_in_pieces_far_from_zero) {
    const int N = 3, C = 2, H = 40, W = 40, S = H * W;
    const size_t len = (size_t)N * C * S;
    const int saved_threads = ct_get_threads();
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    double worst_y = 0, worst_dx = 0;
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_tape *tape = ct_tape_new();
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(N, C, H, W)), *gamma = ct_tensor_new_grad(CT_SHAPE(C));
        for (size_t i = 0; i < len; i++)
            x->data[i] = (ct_real)ct_rng_normal(&rng, (i / S) % C == 0 ? 1000 : -500, 1);
        ct_tensor_fill_uniform(gamma, &rng, 0.5, 1.5);
        ct_tape_requires_grad(tape, x);
        ct_real *dy = malloc(len * sizeof *dy);
        double *y_ref = malloc(len * sizeof *y_ref), *dx_ref = malloc(len * sizeof *dx_ref);
        for (size_t i = 0; i < len; i++) dy[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        ct_tensor *y = ct_batch_norm(tape, x, gamma, NULL, NULL, NULL, 1, 0.1, 1e-5);
        ct_backward_with(tape, y, dy);
        naive_images(x->data, dy, gamma->data, N, C, S, 1e-5, y_ref, dx_ref);
        for (size_t i = 0; i < len; i++) {
            worst_y = fmax(worst_y, fabs(y->data[i] - y_ref[i]));
            worst_dx = fmax(worst_dx, fabs(x->grad[i] - dx_ref[i]));
        }
        free(dy), free(y_ref), free(dx_ref);
        ct_tensor_free(gamma);
        ct_tape_free(tape);
    }
    ct_set_threads(saved_threads);
#ifdef CT_PRECISION_64
    const double tol_y = 1e-9, tol_dx = 1e-9;
#else
    /* x̂ = (x − μ)·r with |x| ~ 1000: float32 keeps x − μ to about 6e-5 (half an ulp of 1000) */
    const double tol_y = 5e-4, tol_dx = 5e-4;
#endif
    CHECK(worst_y <= tol_y, "worst |y error| %.3g", worst_y);
    CHECK(worst_dx <= tol_dx, "worst |dx error| %.3g", worst_dx);
    ct_test_note("worst |error| y %.1e, dx %.1e (1 and 2 threads)", worst_y, worst_dx);
}
