/* examples/learn/07_your_own_op.c — lesson 7: an op of your own, with a backward you derive and write.
 *
 *     build/examples/learn/07_your_own_op
 *
 * The op: RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization"; the norm of T5 and
 * LLaMA). Layer norm without the mean: each row of x (N, D) is divided by its root mean square and
 * scaled by a learned gain g (D):
 *
 *     y_i = g_i · x_i · r,      r = 1/√(ms + eps),   ms = (1/D)·Σ_j x_j²        (one row; eps = 1e-5)
 *
 * The backward, derived. The tape hands us dy (the gradient of the loss with respect to y) and wants
 * dx_j = Σ_i dy_i · ∂y_i/∂x_j (lesson 2's vector-Jacobian product) and dg_i. Every y_i depends on x_j
 * twice: directly when i = j, and through r, which every x_j moves:
 *
 *     ∂r/∂x_j   = −½·(ms + eps)^(−3/2) · ∂ms/∂x_j = −½·r³ · 2x_j/D = −r³·x_j/D
 *     ∂y_i/∂x_j = g_i·r·[i = j]  +  g_i·x_i·∂r/∂x_j  =  g_i·r·[i = j] − g_i·x_i·r³·x_j/D
 *
 *     dx_j = Σ_i dy_i·∂y_i/∂x_j = r·g_j·dy_j − (r³·x_j/D)·Σ_i g_i·dy_i·x_i
 *          = r·(g_j·dy_j − x̂_j·mean_i(g_i·dy_i·x̂_i)),        x̂ = x·r  (the normalised row)
 *     dg_i = Σ over the rows of dy_i·x̂_i                       (y is linear in g)
 *
 * The first term is what you get if you treat r as a constant; the second is the path through r.
 * It has a meaning: with eps = 0, y does not change when a row is scaled (x → c·x leaves x·r alone),
 * so moving x along itself cannot change the loss and Σ_j x_j·dx_j must be 0. With eps > 0 it is
 * Σ_j x_j·dx_j = r·Σ g·dy·x · eps/(ms + eps): small, and the program prints it for both backwards.
 *
 * The program writes the op with the public op header autograd/op.h (the pattern of its opening
 * comment): a backward that ADDS into the inputs' gradients, an entry {name, math, backward}, and a
 * forward that records one node with ct_op_output and keeps r per row for the backward. Then it
 *   1. runs it on a small example and prints the tape with values and gradients: one node;
 *   2. composes the same function from six tape ops and compares values and gradients with it;
 *   3. checks the gradient with ct_gradcheck, and shows what the check says for two wrong backwards:
 *      r treated as a constant (the second term forgotten), and "=" where the rule says "+=": in a
 *      residual connection y = x + rms_norm(x), x gets gradient from two ops and "=" drops one share
 *      (the check also runs every backward twice, which must double the gradients: "=" cannot).
 * Layer norm has the same derivation with the mean removed first: autograd/norm.c (fast) and
 * ct_ref_layer_norm_backward in autograd/reference.c (plain loops). examples/custom_op.c fuses a
 * bigger op (SwiGLU, with GEMMs) the same way and trains with it. */
#include <ctape.h>
#include <autograd/op.h>

#include <math.h>
#include <stdio.h>

#define RMS_EPS 1e-5

/* ---- the op ----------------------------------------------------------------------------------- */
/* x (N, D), g (D) -> y (N, D);  node->extra = r, one value per row (from the forward). */

/* dx += r·(g·dy − x̂·mean(g·dy·x̂)),  dg += Σ_rows dy·x̂ */
static void rms_norm_backward(ct_tape *tape, ct_node *n) {
    const ct_tensor *x = n->in[0], *g = n->in[1];
    const int N = x->shape[0], D = x->shape[1];
    const ct_real *r = n->extra, *dy = n->out->grad;
    ct_real *dx = ct_grad_of(tape, n->in[0]), *dg = ct_grad_of(tape, n->in[1]); /* NULL: no gradient wanted */
    for (int row = 0; row < N; row++) {
        const ct_real *xr = x->data + (size_t)row * D, *dyr = dy + (size_t)row * D;
        double mean_gdyx = 0; /* mean_i(g_i·dy_i·x̂_i) */
        for (int i = 0; i < D; i++) mean_gdyx += (double)g->data[i] * dyr[i] * xr[i] * r[row] / D;
        for (int j = 0; j < D; j++) {
            const double xhat = (double)xr[j] * r[row];
            if (dx) dx[(size_t)row * D + j] += (ct_real)(r[row] * (g->data[j] * dyr[j] - xhat * mean_gdyx));
            if (dg) dg[j] += (ct_real)(dyr[j] * xhat);
        }
    }
}

/* Wrong 1: r treated as a constant, dx += r·g·dy (the path through r forgotten). */
static void rms_norm_backward_r_constant(ct_tape *tape, ct_node *n) {
    const ct_tensor *x = n->in[0], *g = n->in[1];
    const int N = x->shape[0], D = x->shape[1];
    const ct_real *r = n->extra, *dy = n->out->grad;
    ct_real *dx = ct_grad_of(tape, n->in[0]), *dg = ct_grad_of(tape, n->in[1]);
    for (int row = 0; row < N; row++)
        for (int j = 0; j < D; j++) {
            const size_t k = (size_t)row * D + j;
            if (dx) dx[k] += r[row] * g->data[j] * dy[k];
            if (dg) dg[j] += dy[k] * x->data[k] * r[row];
        }
}

/* Wrong 2: the right formula, but assigned (=): whatever gradient x already had from other ops is lost. */
static void rms_norm_backward_assigns(ct_tape *tape, ct_node *n) {
    const ct_tensor *x = n->in[0];
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (dx)
        for (size_t i = 0; i < x->size; i++) dx[i] = 0; /* throws away what was there ... */
    rms_norm_backward(tape, n);                         /* ... then adds: the same as dx = ... */
}

static const ct_op op_rms_norm = {"rms_norm", "y = g·x/√(mean(x²) + eps); dx = r·(g·dy − x̂·mean(g·dy·x̂)), dg = Σ dy·x̂",
                                  rms_norm_backward};
static const ct_op op_rms_norm_r_constant = {"rms_norm_r_const", "dx = r·g·dy (wrong: r depends on x)",
                                             rms_norm_backward_r_constant};
static const ct_op op_rms_norm_assigns = {"rms_norm_assigns", "dx = ... (wrong: = where the rule is +=)",
                                          rms_norm_backward_assigns};

/* y = g·x·r row by row; records one node whose backward is op's. */
static ct_tensor *rms_norm_with(ct_tape *tape, ct_tensor *x, ct_tensor *g, const ct_op *op) {
    CT_CHECK(x->ndim == 2 && g->ndim == 1 && g->shape[0] == x->shape[1], "rms_norm", "x %s and g %s: want x (N, D), g (D)",
             ct_shp(x), ct_shp(g));
    const int N = x->shape[0], D = x->shape[1];
    ct_tensor *inputs[2] = {x, g};
    ct_node *node;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), op, inputs, 2, &node);
    ct_real *r = ct_arena_alloc(ct_tape_arena(tape), (size_t)N * sizeof *r); /* freed at ct_tape_reset */
    for (int row = 0; row < N; row++) {
        const ct_real *xr = x->data + (size_t)row * D;
        double ms = 0;
        for (int j = 0; j < D; j++) ms += (double)xr[j] * xr[j] / D;
        r[row] = (ct_real)(1 / sqrt(ms + RMS_EPS));
        for (int j = 0; j < D; j++) y->data[(size_t)row * D + j] = g->data[j] * xr[j] * r[row];
    }
    if (node) node->extra = r; /* NULL when nothing is recorded (evaluation) */
    return y;
}
static ct_tensor *rms_norm(ct_tape *tape, ct_tensor *x, ct_tensor *g) { return rms_norm_with(tape, x, g, &op_rms_norm); }

/* The same function from tape ops: g ⊙ x ⊙ (mean(x², last axis) + eps)^(−½). No backward code. */
static ct_tensor *rms_norm_composed(ct_tape *tape, ct_tensor *x, ct_tensor *g) {
    ct_tensor *ms = ct_mean(tape, ct_mul(tape, x, x), -1, 1);               /* (N, 1) */
    ct_tensor *r = ct_pow_scalar(tape, ct_add_scalar(tape, ms, RMS_EPS), -0.5); /* (N, 1) */
    return ct_mul(tape, ct_mul(tape, x, r), g);                             /* broadcast over D, then N */
}

/* ---- what ct_gradcheck checks: <c, f(x, g)> for a random cotangent c -------------------------- */
static ct_tensor *check_right(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return (void)ctx, rms_norm(tape, in[0], in[1]);
}
static ct_tensor *check_r_constant(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return (void)ctx, rms_norm_with(tape, in[0], in[1], &op_rms_norm_r_constant);
}
/* a residual connection: x reaches the output directly and through the norm */
static ct_tensor *check_assigns_residual(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return (void)ctx, ct_add(tape, in[0], rms_norm_with(tape, in[0], in[1], &op_rms_norm_assigns));
}

/* Largest |a − b| over n values. */
static double max_diff(const ct_real *a, const ct_real *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* Σ_j x_j·dx_j of row `row`: ≈ 0 for the right backward (see the top). */
static double along_x(const ct_tensor *x, const ct_real *dx, int row) {
    const int D = x->shape[1];
    double s = 0;
    for (int j = 0; j < D; j++) s += (double)x->data[row * D + j] * dx[row * D + j];
    return s;
}

int main(void) {
    enum { N = 2, D = 4 };
    static const ct_real X[N * D] = {1, -2, 3, 0.5, 0.2, 0.1, -0.3, 0.4}, G[D] = {1, 0.5, 2, -1},
                         DY[N * D] = {0.5, -1, 0.25, 1, -0.5, 2, 1, -1};
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(N, D)), *g = ct_tensor_new_grad(CT_SHAPE(D));
    ct_tensor_copy_from(x, X), ct_tensor_copy_from(g, G);
    x->name = "x", g->name = "g";
    int wrong = 0;

    /* ---- 1. the op on the tape ---- */
    ct_tape *tape = ct_tape_new();
    ct_tensor *y = rms_norm(tape, x, g);
    ct_backward_with(tape, y, DY); /* as if a loss above had sent dy back */
    printf("1. RMSNorm as one op: y = rms_norm(x, g), then ct_backward_with(dy) with\n   dy = (");
    for (int i = 0; i < N * D; i++) printf("%s%g", i ? ", " : "", (double)DY[i]);
    printf(")\n\n");
    ct_tape_print_with(tape, stdout, CT_PRINT(.values = 1, .grads = 1, .max_elements = 8));
    ct_real fused[N * D + N * D + D]; /* y, dx, dg */
    for (int i = 0; i < N * D; i++) fused[i] = y->data[i], fused[N * D + i] = x->grad[i];
    for (int i = 0; i < D; i++) fused[2 * N * D + i] = g->grad[i];
    const double fused_along[2] = {along_x(x, x->grad, 0), along_x(x, x->grad, 1)};
    const int fused_nodes = ct_tape_node_count(tape);

    /* ---- 2. the same function composed from tape ops ---- */
    ct_tape_reset(tape);
    ct_tensor_zero_grad(x), ct_tensor_zero_grad(g);
    ct_tensor *yc = rms_norm_composed(tape, x, g);
    ct_backward_with(tape, yc, DY);
    printf("\n2. The same function from tape ops (no backward code written):\n\n");
    ct_tape_print_with(tape, stdout, CT_PRINT(.compact = 1));
    const double dy_err = max_diff(fused, yc->data, N * D), dx_err = max_diff(fused + N * D, x->grad, N * D),
                 dg_err = max_diff(fused + 2 * N * D, g->grad, D);
    printf("\nfused: %d node; composed: %d nodes. Largest difference: y %.1e, dx %.1e, dg %.1e: %s\n", fused_nodes,
           ct_tape_node_count(tape), dy_err, dx_err, dg_err,
           fmax(dy_err, fmax(dx_err, dg_err)) < 1e-5 ? "they agree" : "MISMATCH");
    wrong += !(fmax(dy_err, fmax(dx_err, dg_err)) < 1e-5);

    /* Σ x·dx per row, for the right backward and for r held constant */
    ct_tape_reset(tape);
    ct_tensor_zero_grad(x), ct_tensor_zero_grad(g);
    ct_backward_with(tape, rms_norm_with(tape, x, g, &op_rms_norm_r_constant), DY);
    printf("\nΣ_j x_j·dx_j per row (moving a row along itself does not change y):\n"
           "   right backward     %10.2e %10.2e   (0 up to eps)\n"
           "   r held constant    %10.4f %10.4f\n",
           fused_along[0], fused_along[1], along_x(x, x->grad, 0), along_x(x, x->grad, 1));
    wrong += !(fabs(fused_along[0]) < 1e-4 && fabs(fused_along[1]) < 1e-3);
    ct_tape_free(tape);

    /* ---- 3. gradient checks: x (3, 5) and g (5) at random ---- */
    ct_tensor *in[2] = {ct_tensor_new_grad(CT_SHAPE(3, 5)), ct_tensor_new_grad(CT_SHAPE(5))};
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor_fill_normal(in[0], &rng, 0, 1);
    ct_tensor_fill_normal(in[1], &rng, 1, 0.5);
    const struct {
        const char *what;
        ct_gradcheck_fn fn;
        int should_pass;
    } checks[] = {{"right backward", check_right, 1},
                  {"r held constant", check_r_constant, 0},
                  {"= instead of += (x + rms_norm(x))", check_assigns_residual, 0}};
    printf("\n3. ct_gradcheck (central differences against the backward, %s):\n", CT_REAL_NAME);
    for (int k = 0; k < 3; k++) {
        char line[320];
        const ct_gradcheck_result r = ct_gradcheck(checks[k].fn, NULL, in, 2, CT_GRADCHECK());
        ct_gradcheck_describe(&r, line, sizeof line);
        printf("   %-34s %s\n", checks[k].what, line);
        if (!r.repeat_ok) /* the values are off too: the residual's share of dx was overwritten */
            printf("   %-34s and at input %d [%zu]: analytic %.4f, numeric %.4f\n", "", r.worst_input, r.worst_index,
                   r.analytic, r.numeric);
        wrong += r.passed != checks[k].should_pass;
    }
    ct_tensor_free(in[0]), ct_tensor_free(in[1]), ct_tensor_free(x), ct_tensor_free(g);
    printf("\n%s\n", wrong ? "MISMATCH" : "The op matches its composed form, and the check tells the right backward from both wrong ones.");
    return wrong != 0;
}
