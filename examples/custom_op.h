/* examples/custom_op.h — a fused op of your own, written with the public op-authoring header
 * autograd/op.h: the swish-gated linear unit (the gate of SwiGLU, Shazeer 2020, "GLU Variants
 * Improve Transformer"), for x (N, D) and weights W1, W2 (H, D):
 *
 *     y = (x·W1ᵀ) ⊙ silu(x·W2ᵀ),        silu(g) = g·σ(g),   y (N, H)
 *
 * Composed from tape ops (swiglu_reference below) this records four nodes and keeps four (N, H)
 * tensors; fused, it is one node that keeps a = x·W1ᵀ and g = x·W2ᵀ for the backward, and its
 * backward is the chain rule written out once. examples/custom_op.c checks and trains it;
 * tests/examples/test_custom_op.c gradient-checks it (float32 and float64) and compares it with the
 * composed form. A header only so that the test can include the same code. */
#ifndef CTAPE_EXAMPLES_CUSTOM_OP_H
#define CTAPE_EXAMPLES_CUSTOM_OP_H

#include <ctape.h>
#include <autograd/op.h>

#include <math.h>

static inline ct_real swiglu_sigmoid(ct_real g) { return (ct_real)(1 / (1 + exp(-(double)g))); }

/* With a = x·W1ᵀ, g = x·W2ᵀ, s = σ(g) and dy the gradient of y:
 *     da = dy ⊙ g·s                        (∂y/∂a = silu(g))
 *     dg = dy ⊙ a·s·(1 + g·(1 − s))         (silu'(g) = σ(g) + g·σ(g)(1 − σ(g)))
 *     dx += da·W1 + dg·W2,   dW1 += daᵀ·x,   dW2 += dgᵀ·x
 * node->extra holds a and g, side by side (N·H values each), from the forward. */
static void swiglu_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0], *w1 = n->in[1], *w2 = n->in[2];
    const int N = x->shape[0], D = x->shape[1], H = w1->shape[0];
    const size_t NH = (size_t)N * H;
    const ct_real *a = n->extra, *g = a + NH, *dy = n->out->grad;
    ct_real *da = ct_arena_alloc(ct_tape_arena(tape), 2 * NH * sizeof *da), *dg = da + NH;
    for (size_t i = 0; i < NH; i++) {
        const ct_real s = swiglu_sigmoid(g[i]);
        da[i] = dy[i] * g[i] * s;
        dg[i] = dy[i] * a[i] * s * (1 + g[i] * (1 - s));
    }
    ct_real *dx = ct_grad_of(tape, x), *dw1 = ct_grad_of(tape, w1), *dw2 = ct_grad_of(tape, w2);
    if (dx) { /* (N, H)·(H, D), added (beta = 1) */
        ct_gemm(0, 0, N, D, H, 1, da, H, w1->data, D, 1, dx, D);
        ct_gemm(0, 0, N, D, H, 1, dg, H, w2->data, D, 1, dx, D);
    }
    if (dw1) ct_gemm(1, 0, H, D, N, 1, da, H, x->data, D, 1, dw1, D); /* (H, N)·(N, D) */
    if (dw2) ct_gemm(1, 0, H, D, N, 1, dg, H, x->data, D, 1, dw2, D);
}

/* The op's entry: its name and math are what ct_tape_print shows for its node. */
static const ct_op swiglu_op = {"swiglu", "y = (x·W1ᵀ) ⊙ silu(x·W2ᵀ); da = dy·silu(g), dg = dy·a·silu'(g), "
                                          "dx = da·W1 + dg·W2, dW1 = daᵀx, dW2 = dgᵀx", swiglu_backward};

/* y = (x·W1ᵀ) ⊙ silu(x·W2ᵀ): a = x·W1ᵀ and g = x·W2ᵀ by GEMM, then y = a·g·σ(g) element-wise. */
static inline ct_tensor *swiglu(ct_tape *tape, ct_tensor *x, ct_tensor *w1, ct_tensor *w2) {
    CT_CHECK(x && w1 && w2 && x->ndim == 2 && w1->ndim == 2 && w2->ndim == 2 && w1->shape[1] == x->shape[1] &&
                 w2->shape[0] == w1->shape[0] && w2->shape[1] == x->shape[1],
             "swiglu", "x %s, W1 %s, W2 %s: want x (N, D) and W1, W2 both (H, D)", x ? ct_shp(x) : "NULL",
             w1 ? ct_shp(w1) : "NULL", w2 ? ct_shp(w2) : "NULL");
    const int N = x->shape[0], D = x->shape[1], H = w1->shape[0];
    const size_t NH = (size_t)N * H;
    ct_tensor *inputs[3] = {x, w1, w2};
    ct_node *node;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(N, H), &swiglu_op, inputs, 3, &node);
    ct_real *a = ct_arena_alloc(ct_tape_arena(tape), 2 * NH * sizeof *a), *g = a + NH;
    ct_gemm(0, 1, N, H, D, 1, x->data, D, w1->data, D, 0, a, H); /* (N, D)·(D, H) */
    ct_gemm(0, 1, N, H, D, 1, x->data, D, w2->data, D, 0, g, H);
    for (size_t i = 0; i < NH; i++) y->data[i] = a[i] * g[i] * swiglu_sigmoid(g[i]);
    if (node) node->extra = a; /* NULL when nothing is recorded (no input needs a gradient) */
    return y;
}

/* The same function from tape ops: the readable definition, and what the fused op must match. */
static inline ct_tensor *swiglu_reference(ct_tape *tape, ct_tensor *x, ct_tensor *w1, ct_tensor *w2) {
    return ct_mul(tape, ct_linear(tape, x, w1, NULL), ct_silu(tape, ct_linear(tape, x, w2, NULL)));
}

#endif
