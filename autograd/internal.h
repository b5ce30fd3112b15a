/* autograd/internal.h — helpers shared by the op files; not part of the public API. */
#ifndef CTAPE_AUTOGRAD_INTERNAL_H
#define CTAPE_AUTOGRAD_INTERNAL_H

#include "ops.h"

struct ct_tape {
    ct_arena *arena;
    ct_node *nodes;
    int n_nodes, cap_nodes;
    int grad_enabled;
};

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

/* Private helpers for the op files. */
#define CT_NODE_SAVE(node, t) ((node)->saved = (t))

#endif
