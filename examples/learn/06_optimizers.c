/* examples/learn/06_optimizers.c — lesson 6: what an optimizer does with a gradient.
 *
 *     build/examples/learn/06_optimizers [DIR]      (pictures go to DIR, default the current directory)
 *
 * Gradient descent steps against the gradient: θ ← θ − lr·∇f. On a long narrow valley, such as
 *     f(x, y) = 0.1·x² + 10·y²        (the curvature along y is a hundred times that along x)
 * a step size small enough not to bounce across the steep direction crawls along the flat one.
 * The optimizers of this lesson each fix a part of that:
 *   momentum      b ← μ·b + ∇f;  θ ← θ − lr·b          the velocity builds up along the valley floor
 *                                                       and the back-and-forth across it cancels
 *   Nesterov      the gradient is taken where momentum is about to carry θ: a look-ahead that
 *                 damps the overshoot
 *   RMSprop       s ← α·s + (1 − α)·∇f²;  θ ← θ − lr·∇f/(√s + ε)
 *                 each coordinate divided by its own recent gradient size: both directions move
 *                 at about lr per step, whatever their curvature
 *   Adam          m ← β₁·m + (1 − β₁)·∇f;  v ← β₂·v + (1 − β₂)·∇f²
 *                 θ ← θ − lr·m̂/(√v̂ + ε),  m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)
 *                 momentum and RMSprop's scaling together.
 * Why Adam divides by √v: the update m/√v has the units of θ, not of the gradient, so lr is a
 * step length in parameter space, the same for a coordinate whose gradients are 1e-4 as for one
 * whose gradients are 10.
 * Why bias correction: m and v start at 0, so in the first steps they are too small, and by
 * different amounts: after one step with gradient g, m = (1 − β₁)·g = 0.1·g but v = (1 − β₂)·g²
 * = 0.001·g², and m/√v = 0.1/√0.001 = 3.16: the first update would be 3.16 times lr. Dividing by
 * 1 − β₁ᵗ and 1 − β₂ᵗ undoes exactly the shrinkage of a constant gradient, and the first steps are
 * lr long. The program prints the first steps both ways.
 *
 * Every optimizer runs 60 steps from (−4.5, 1.5) with ctape's own ct_optim implementations, on a
 * two-parameter model whose loss is f written with tape ops; the paths are drawn over the contours
 * of f (valley.png), and 400 steps on Rosenbrock's banana, (1 − x)² + 100·(y − x²)², whose curved
 * valley floor leads slowly to the minimum at (1, 1) (rosenbrock.png). */
#include <ctape.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAX_STEPS = 400 };

/* f on the tape from θ = (x, y): the valley, or Rosenbrock's function. */
static ct_tensor *loss(ct_tape *tape, ct_tensor *theta, int rosenbrock) {
    ct_tensor *x = ct_slice(tape, theta, 0, 0, 1), *y = ct_slice(tape, theta, 0, 1, 2);
    if (!rosenbrock)
        return ct_add(tape, ct_mul_scalar(tape, ct_mul(tape, x, x), 0.1), ct_mul_scalar(tape, ct_mul(tape, y, y), 10));
    ct_tensor *one_minus_x = ct_add_scalar(tape, ct_neg(tape, x), 1);
    ct_tensor *gap = ct_sub(tape, y, ct_mul(tape, x, x));
    return ct_add(tape, ct_mul(tape, one_minus_x, one_minus_x), ct_mul_scalar(tape, ct_mul(tape, gap, gap), 100));
}

static double valley(double x, double y, void *ctx) { return (void)ctx, 0.1 * x * x + 10 * y * y; }
static double banana(double x, double y, void *ctx) { return (void)ctx, (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x); }

/* Runs one optimizer from `start` and records the path; returns the final loss. */
static double run(const char *spec, int rosenbrock, int steps, const double start[2], double *xs, double *ys) {
    ct_model *m = ct_model_new();
    ct_tensor *theta = ct_model_add_param(m, "theta", CT_SHAPE(2));
    theta->data[0] = (ct_real)start[0], theta->data[1] = (ct_real)start[1];
    ct_optim *opt = ct_optim_parse(m, spec);
    if (!opt) {
        fprintf(stderr, "%s\n", ct_last_error());
        return NAN;
    }
    ct_tape *tape = ct_tape_new();
    double last = NAN;
    for (int t = 0; t <= steps; t++) {
        xs[t] = theta->data[0], ys[t] = theta->data[1];
        ct_tensor *f = loss(tape, theta, rosenbrock);
        last = f->data[0];
        if (t == steps) break;
        ct_backward(tape, f);
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
    return last;
}

/* Adam's first steps on a constant gradient g = 1, by the formulas above, with and without the
 * correction. */
static void bias_correction_table(void) {
    const double b1 = 0.9, b2 = 0.999, g = 1;
    double m = 0, v = 0;
    printf("Adam on a constant gradient g = 1, lr = 1: the update m/√v, and m̂/√v̂ with the correction\n");
    printf("%4s %10s %10s %12s %12s\n", "t", "m", "v", "uncorrected", "corrected");
    for (int t = 1; t <= 5; t++) {
        m = b1 * m + (1 - b1) * g, v = b2 * v + (1 - b2) * g * g;
        const double mh = m / (1 - pow(b1, t)), vh = v / (1 - pow(b2, t));
        printf("%4d %10.4f %10.6f %12.4f %12.4f\n", t, m, v, m / sqrt(v), mh / sqrt(vh));
    }
    printf("(uncorrected, the first step is 3.16 lr long and the steps stay too long for hundreds of steps)\n\n");
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    bias_correction_table();
    static const char *const specs[] = {"sgd:lr=0.09", "sgd:lr=0.02,momentum=0.9", "sgd:lr=0.02,momentum=0.9,nesterov=1",
                                        "rmsprop:lr=0.1", "adam:lr=0.3"};
    static const char *const rosenbrock_specs[] = {"sgd:lr=0.001", "sgd:lr=0.0005,momentum=0.9",
                                                   "sgd:lr=0.0005,momentum=0.9,nesterov=1", "rmsprop:lr=0.01",
                                                   "adam:lr=0.05"};
    static const char *const labels[] = {"SGD", "momentum", "Nesterov", "RMSprop", "Adam"};
    enum { N = sizeof specs / sizeof *specs };
    static double xs[2][N][MAX_STEPS + 1], ys[2][N][MAX_STEPS + 1];
    for (int problem = 0; problem < 2; problem++) {
        const double start[2] = {problem ? -1.5 : -4.5, problem ? 2.0 : 1.5};
        const int steps = problem ? 400 : 60;
        printf("%s, %d steps from (%g, %g):\n", problem ? "Rosenbrock (1 − x)² + 100·(y − x²)²" : "valley 0.1·x² + 10·y²",
               steps, start[0], start[1]);
        ct_plot_series paths[N];
        for (int k = 0; k < N; k++) {
            const char *spec = problem ? rosenbrock_specs[k] : specs[k];
            const double f = run(spec, problem, steps, start, xs[problem][k], ys[problem][k]);
            printf("  %-9s %-40s f = %.6g at (%.4f, %.4f)\n", labels[k], spec, f, xs[problem][k][steps],
                   ys[problem][k][steps]);
            paths[k] = (ct_plot_series){.label = labels[k], .x = xs[problem][k], .y = ys[problem][k], .n = steps + 1,
                                        .color = -1};
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, problem ? "rosenbrock.png" : "valley.png");
        const int status =
            problem ? ct_plot_contour(path, banana, NULL, -2, 2, -1, 3, paths, N,
                                      CT_PLOT(.title = "Rosenbrock: 400 steps", .x_label = "x", .y_label = "y"))
                    : ct_plot_contour(path, valley, NULL, -5, 5, -2.5, 2.5, paths, N,
                                      CT_PLOT(.title = "0.1 x^2 + 10 y^2: 60 steps", .x_label = "x", .y_label = "y"));
        if (status) fprintf(stderr, "%s\n", ct_last_error());
        else printf("  paths drawn in %s\n\n", path);
    }
    return 0;
}
