/* autograd/op.h — writing an op: the header for op and loss authors (installed with the others).
 *
 * An op is a forward function that computes its output now and records one node on the tape, and
 * a backward function that the tape calls in reverse order; the pair sits side by side, with the
 * math in a line above. The pattern, for y = x² (examples/custom_op.c builds a complete one):
 *
 *     // y = x²;  dx += dy·2x
 *     static void square_backward(ct_tape *tape, ct_node *n) {
 *         const ct_tensor *x = n->in[0];
 *         ct_real *dx = ct_grad_of(tape, n->in[0]);   // NULL when x needs no gradient
 *         if (!dx) return;
 *         for (size_t i = 0; i < x->size; i++) dx[i] += n->out->grad[i] * 2 * x->data[i];
 *     }
 *     static const ct_op op_square = {"square", "y = x²; dx = dy·2x", square_backward};
 *     ct_tensor *square(ct_tape *tape, ct_tensor *x) {
 *         ct_node *n;
 *         ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), &op_square, &x, 1, &n);
 *         for (size_t i = 0; i < x->size; i++) y->data[i] = x->data[i] * x->data[i];
 *         return y;   // n is NULL when nothing is recorded (no grad needed, or ct_tape_grad_enabled 0)
 *     }
 *
 * Rules: a backward adds (+=) into its inputs' gradients, never assigns, unless
 * ct_grad_for_write says the buffer is fresh; what the backward needs from the forward goes in
 * the node (saved, arg, iarg, extra), and memory for it comes from ct_tape_arena; every op gets a
 * gradient check (ct_gradcheck, in a float64 build). The numerics ops use (a vectorisable e^x and
 * log, a finiteness test, thread numbers) are in core/vmath.h. */
#ifndef CTAPE_AUTOGRAD_OP_H
#define CTAPE_AUTOGRAD_OP_H

#include "ops.h"
#include "../core/vmath.h"

typedef void (*ct_backward_fn)(ct_tape *tape, ct_node *node);

/* One entry of the op table: a name, its math in one line, and its backward. */
typedef struct ct_op {
    const char *name;
    const char *math;
    ct_backward_fn backward;
} ct_op;

#define CT_NODE_MAX_INPUTS 4

/* One recorded op application. `saved`, `arg`, `iarg` and `extra` are what the forward kept
 * for the backward; each op documents which ones it uses. */
struct ct_node {
    const ct_op *op;
    ct_tensor *out;
    ct_tensor *in[CT_NODE_MAX_INPUTS];
    int n_in;
    ct_tensor *saved;
    double arg[4];
    int iarg[2 * CT_MAX_DIMS];
    void *extra;
    ct_site site;  /* the user's call that recorded it ({NULL, 0} when untracked) */
};

/* Every op, for the data-driven gradient check and the printers. */
extern const ct_op *const ct_op_table[];
extern const int ct_op_count;
const ct_op *ct_op_find(const char *name);

/* Allocates an op's output in the arena (uninitialised data). If grad is enabled and any of
 * the n inputs requires grad, the output requires grad and a node {op, out, inputs} is
 * appended; *node receives it (or NULL when nothing is recorded). The node pointer is valid
 * until the next op is recorded, so fill it at once. */
ct_tensor *ct_op_output(ct_tape *tape, ct_shape shape, const ct_op *op, ct_tensor *const *inputs,
                        int n, ct_node **node);
/* An arena tensor header whose data points into another tensor (reshape, detach). */
ct_tensor *ct_op_view(ct_tape *tape, ct_tensor *of, ct_shape shape);

/* Normalises a possibly negative axis; fatal with the op name and shape when out of range. */
int ct_axis(const char *op, const ct_tensor *x, int axis);
/* Shape string for error messages (uses a small rotating static buffer). */
const char *ct_shp(const ct_tensor *t);

/* x viewed as (outer, n, inner) around `axis`: outer = prod(shape[:axis]), n = shape[axis]. */
void ct_axis_split(const ct_tensor *x, int axis, size_t *outer, size_t *n, size_t *inner);

/* The arena of the current step: memory for what a forward saves for its backward (freed at
 * ct_tape_reset). */
ct_arena *ct_tape_arena(ct_tape *tape);
/* The gradient buffer of t, allocated (zeroed, in the arena) if t requires grad and has none
 * yet; NULL when t does not require grad. Backward functions accumulate into it. */
ct_real *ct_grad_of(ct_tape *tape, ct_tensor *t);
/* For a backward that writes every element of t's gradient: when t has no buffer yet, one is
 * allocated without the zero fill and *overwrite = 1 (assign, do not add); otherwise the buffer
 * already holds gradient and *overwrite = 0 (add). NULL when t does not require grad. */
ct_real *ct_grad_for_write(ct_tape *tape, ct_tensor *t, int *overwrite);
/* Keeps a tensor for the backward: node->saved (one of a node's places for it). */
#define CT_NODE_SAVE(node, t) ((node)->saved = (t))

#endif
