/* autograd/activation.c — element-wise activations. Each op: the math, the forward, the backward.
 * Backward functions accumulate: dx += dy · f'(x). */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>

/* ---- relu: y = max(x, 0);  dx += dy · [x > 0]  (relu'(0) = 0, as PyTorch) ---------------- */
static void relu_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0];
    ct_real *dx = ct_grad_of(tape, x);
    const ct_real *dy = n->out->grad, *y = n->out->data;
    for (size_t i = 0; i < x->size; i++) dx[i] += y[i] > 0 ? dy[i] : 0;
}
const ct_op ct_op_relu = {"relu", "y = max(x, 0); dx = dy·[x > 0]", relu_backward};

ct_tensor *ct_relu(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), &ct_op_relu, &x, 1, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = x->data[i] > 0 ? x->data[i] : 0;
    return y;
}
