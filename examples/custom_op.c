/* examples/custom_op.c — a tutorial: your own fused op with a hand-written backward, next to the
 * same function composed from tape ops, gradient-checked, shown on the tape, and trained.
 *
 *   build/examples/custom_op
 *   build/examples/custom_op --steps 1000 --lr 0.03
 *
 * The op, the swish-gated linear unit y = (x·W1ᵀ) ⊙ silu(x·W2ᵀ), is in examples/custom_op.h: its
 * forward and backward side by side with the math above each, and the ct_op entry that names it.
 * The steps, each one a section below:
 *   1. check its gradient against central differences (ct_gradcheck);
 *   2. check that it computes what the composed form computes, value and gradients;
 *   3. print one training step's tape: the fused op is one node (the composed form is four);
 *   4. train a student (W1, W2) to match a fixed teacher on random inputs, with Adam. */
#include <ctape.h>

#include "common.h"
#include "custom_op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 64, D = 16, H = 8 }; /* a batch of 64 inputs of 16 features, 8 outputs */

/* ---- 1. its gradient, checked ----------------------------------------------------------------
 * ct_gradcheck re-runs the op with each input element nudged by ±h and compares the central
 * difference with what the backward gave. In this float32 build CT_GRADCHECK()'s defaults are
 * loose (h = 1e-2, rtol 5e-2); `make test` checks it again in float64 to ~1e-7. */
static ct_tensor *check_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    (void)ctx;
    return swiglu(tape, in[0], in[1], in[2]);
}

static int check_gradient(ct_rng *rng) {
    ct_tensor *in[3] = {ct_tensor_new_grad(CT_SHAPE(5, 4)), ct_tensor_new_grad(CT_SHAPE(3, 4)),
                        ct_tensor_new_grad(CT_SHAPE(3, 4))};
    for (int i = 0; i < 3; i++) ct_tensor_fill_normal(in[i], rng, 0, 1);
    ct_gradcheck_result r = ct_gradcheck(check_fn, NULL, in, 3, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    printf("1. gradient check of swiglu (%s, %zu elements): %s\n", CT_REAL_NAME, r.checked, line);
    for (int i = 0; i < 3; i++) ct_tensor_free(in[i]);
    return r.passed;
}

/* ---- 2. the fused op against the composed one -------------------------------------------------
 * The same inputs through both, then the same backward: the largest difference in y, dx, dW1
 * and dW2, relative to the largest value of each. */
static double largest_gap(const ct_real *a, const ct_real *b, size_t n) {
    double gap = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        gap = fmax(gap, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return gap / scale;
}

static double compare_with_composed(ct_rng *rng) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(N, D)), *w1 = ct_tensor_new_grad(CT_SHAPE(H, D)),
              *w2 = ct_tensor_new_grad(CT_SHAPE(H, D));
    ct_tensor_fill_normal(x, rng, 0, 1);
    ct_tensor_fill_normal(w1, rng, 0, 0.5);
    ct_tensor_fill_normal(w2, rng, 0, 0.5);
    ct_real *kept[2][4]; /* y, dx, dW1, dW2 of each form */
    ct_tape *tape = ct_tape_new();
    for (int form = 0; form < 2; form++) {
        ct_tensor_zero_grad(x), ct_tensor_zero_grad(w1), ct_tensor_zero_grad(w2);
        ct_tensor *y = form == 0 ? swiglu(tape, x, w1, w2) : swiglu_reference(tape, x, w1, w2);
        ct_backward(tape, ct_sum_all(tape, y));
        const ct_tensor *from[4] = {y, x, w1, w2};
        for (int k = 0; k < 4; k++) {
            kept[form][k] = malloc(from[k]->size * sizeof(ct_real));
            memcpy(kept[form][k], k == 0 ? from[k]->data : from[k]->grad, from[k]->size * sizeof(ct_real));
        }
        ct_tape_reset(tape);
    }
    const size_t sizes[4] = {(size_t)N * H, (size_t)N * D, (size_t)H * D, (size_t)H * D};
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        worst = fmax(worst, largest_gap(kept[0][k], kept[1][k], sizes[k]));
        free(kept[0][k]), free(kept[1][k]);
    }
    printf("2. fused against composed: largest relative difference over y, dx, dW1, dW2: %.1e\n", worst);
    ct_tape_free(tape);
    ct_tensor_free(x), ct_tensor_free(w1), ct_tensor_free(w2);
    return worst;
}

/* ---- 3. and 4. a training step's tape, and training ------------------------------------------ */
static void usage(FILE *to, const char *prog) {
    fprintf(to, "usage: %s [--steps N] [--lr X] [--seed N]\n"
                "Checks the fused swish-gated linear op (examples/custom_op.h) against central differences\n"
                "and its composed form, prints one training step's tape and trains it to match a teacher\n"
                "(Adam, default 300 steps, lr 0.03, seed 1).\n",
            prog);
}

int main(int argc, char **argv) {
    int steps = 300;
    double lr = 0.03;
    uint64_t seed = 1;
    const opt_spec specs[] = {
        {"--steps", OPT_INT, &steps, 1, NULL}, {"--lr", OPT_REAL, &lr, 0, NULL}, {"--seed", OPT_U64, &seed, 0, NULL}};
    if (!opt_parse(argc, argv, specs, (int)(sizeof specs / sizeof specs[0]), usage)) return 2;
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    if (!check_gradient(&rng)) return 1;                 /* step 1 */
    if (!(compare_with_composed(&rng) < 1e-4)) return 1; /* step 2 */

    /* a teacher (fixed random weights) labels random inputs; the student starts elsewhere */
    ct_tensor *x = ct_tensor_new(CT_SHAPE(N, D)), *t1 = ct_tensor_new(CT_SHAPE(H, D)), *t2 = ct_tensor_new(CT_SHAPE(H, D));
    ct_tensor_fill_normal(x, &rng, 0, 1);
    x->name = "x"; /* how ct_tape_print calls it */
    ct_tensor_fill_normal(t1, &rng, 0, 0.5);
    ct_tensor_fill_normal(t2, &rng, 0, 0.5);
    ct_model *model = ct_model_new();
    ct_model_set_seed(model, seed);
    ct_tensor *w1 = ct_model_add_param(model, "w1", CT_SHAPE(H, D)), *w2 = ct_model_add_param(model, "w2", CT_SHAPE(H, D));
    ct_init_normal(w1, ct_model_rng(model), 0, 0.5);
    ct_init_normal(w2, ct_model_rng(model), 0, 0.5);
    ct_optim *opt = ct_adam_new(model, CT_ADAM(.lr = lr));
    ct_tape *tape = ct_tape_new();

    double first = 0, last = 0;
    for (int step = 0; step < steps; step++) {
        ct_tensor *target = swiglu(tape, x, t1, t2); /* the teacher's weights need no gradient: not recorded */
        ct_tensor *loss = ct_mse_loss(tape, swiglu(tape, x, w1, w2), target, CT_REGRESSION());
        ct_backward(tape, loss);
        if (step == 0) { /* step 3: the fused op is one node, with its name and math */
            printf("3. the tape of the first training step:\n");
            ct_tape_print(tape, stdout);
            first = loss->data[0];
        }
        last = loss->data[0];
        if (ct_optim_step(opt) != CT_OK) {
            fprintf(stderr, "custom_op: %s\n", ct_last_error());
            return 1;
        }
        ct_tape_reset(tape);
    }
    printf("4. the student's mean squared error against the teacher: %.4g at the first step, %.4g after %d\n",
           first, last, steps);

    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(model);
    ct_tensor_free(x), ct_tensor_free(t1), ct_tensor_free(t2);
    return last < first ? 0 : 1;
}
