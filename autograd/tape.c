/* autograd/tape.c — the tape: record nodes in execution order, replay them backwards. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <stdlib.h>
#include <string.h>

ct_tape *ct_tape_new(void) {
    ct_tape *tape = calloc(1, sizeof *tape);
    if (!tape) ct_fatal("ct_tape_new", "out of memory");
    tape->arena = ct_arena_new((size_t)16 << 20);
    tape->cap_nodes = 256;
    tape->nodes = malloc((size_t)tape->cap_nodes * sizeof *tape->nodes);
    if (!tape->nodes) ct_fatal("ct_tape_new", "out of memory");
    tape->grad_enabled = 1;
    return tape;
}

void ct_tape_free(ct_tape *tape) {
    if (!tape) return;
    ct_arena_free(tape->arena);
    free(tape->nodes);
    free(tape);
}

void ct_tape_reset(ct_tape *tape) {
    tape->n_nodes = 0;
    ct_arena_reset(tape->arena);
}

int ct_tape_grad_enabled(ct_tape *tape, int enabled) {
    int was = tape->grad_enabled;
    tape->grad_enabled = enabled != 0;
    return was;
}

int ct_tape_node_count(const ct_tape *tape) { return tape->n_nodes; }
const ct_node *ct_tape_node(const ct_tape *tape, int i) { return &tape->nodes[i]; }
ct_arena *ct_tape_arena(ct_tape *tape) {
    CT_CHECK(tape != NULL, "ct_tape_arena", "the tape is NULL (make one with ct_tape_new)");
    return tape->arena;
}

static ct_tensor *arena_tensor(ct_tape *tape, ct_shape shape, const char *op) {
    CT_CHECK(tape != NULL, op, "the tape is NULL (make one with ct_tape_new)");
    CT_CHECK(shape.ndim >= 0 && shape.ndim <= CT_MAX_DIMS, op, "%d dimensions (at most %d)",
             shape.ndim, CT_MAX_DIMS);
    ct_tensor *t = ct_arena_alloc(tape->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = shape.ndim;
    for (int i = 0; i < shape.ndim; i++) {
        CT_CHECK(shape.d[i] >= 0, op, "dimension %d has negative size %d", i, shape.d[i]);
        t->shape[i] = shape.d[i];
    }
    t->size = ct_shape_size(shape);
    t->flags = CT_TENSOR_ARENA;
    return t;
}

ct_tensor *ct_tape_zeros(ct_tape *tape, ct_shape shape) {
    ct_tensor *t = arena_tensor(tape, shape, "ct_tape_zeros");
    t->data = ct_arena_calloc(tape->arena, t->size * sizeof(ct_real));
    return t;
}

ct_tensor *ct_tape_tensor_from(ct_tape *tape, ct_shape shape, const ct_real *data) {
    ct_tensor *t = arena_tensor(tape, shape, "ct_tape_tensor_from");
    t->data = ct_arena_alloc(tape->arena, t->size * sizeof(ct_real));
    memcpy(t->data, data, t->size * sizeof(ct_real));
    return t;
}

void ct_tape_requires_grad(ct_tape *tape, ct_tensor *t) {
    (void)tape;
    CT_CHECK(t->flags & CT_TENSOR_ARENA, "ct_tape_requires_grad",
             "tensor %s is not a tape tensor; use ct_tensor_new_grad for heap tensors",
             ct_shp(t));
    t->flags |= CT_TENSOR_REQUIRES_GRAD;
}

ct_tensor *ct_op_output(ct_tape *tape, ct_shape shape, const ct_op *op, ct_tensor *const *inputs,
                        int n, ct_node **node) {
    ct_tensor *out = arena_tensor(tape, shape, op->name);
    out->data = ct_arena_alloc(tape->arena, out->size * sizeof(ct_real));
    *node = NULL;
    if (!tape->grad_enabled) return out;
    int any = 0;
    for (int i = 0; i < n; i++) any |= inputs[i] && ct_requires_grad(inputs[i]);
    if (!any) return out;
    if (tape->n_nodes == tape->cap_nodes) {
        tape->cap_nodes *= 2;
        ct_node *grown = realloc(tape->nodes, (size_t)tape->cap_nodes * sizeof *grown);
        if (!grown) ct_fatal(op->name, "out of memory growing the tape to %d nodes", tape->cap_nodes);
        tape->nodes = grown;
    }
    ct_node *nd = &tape->nodes[tape->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->out = out;
    nd->n_in = n;
    for (int i = 0; i < n; i++) nd->in[i] = inputs[i];
    out->flags |= CT_TENSOR_REQUIRES_GRAD;
    *node = nd;
    return out;
}

ct_tensor *ct_op_view(ct_tape *tape, ct_tensor *of, ct_shape shape) {
    ct_tensor *t = arena_tensor(tape, shape, "view");
    t->data = of->data;
    t->flags |= CT_TENSOR_VIEW;
    return t;
}

ct_real *ct_grad_for_write(ct_tape *tape, ct_tensor *t, int *overwrite) {
    *overwrite = 0;
    if (!ct_requires_grad(t)) return NULL;
    if (!t->grad) {
        CT_CHECK(t->flags & CT_TENSOR_ARENA, "backward",
                 "heap tensor %s requires grad but has no grad buffer", ct_shp(t));
        t->grad = ct_arena_alloc(tape->arena, t->size * sizeof(ct_real));
        *overwrite = 1;
    }
    return t->grad;
}

ct_real *ct_grad_of(ct_tape *tape, ct_tensor *t) {
    int fresh;
    ct_real *g = ct_grad_for_write(tape, t, &fresh);
    if (fresh) memset(g, 0, t->size * sizeof *g);
    return g;
}

static void run_backward(ct_tape *tape) {
    for (int i = tape->n_nodes - 1; i >= 0; i--) {
        ct_node *nd = &tape->nodes[i];
        if (nd->out->grad) nd->op->backward(tape, nd); /* skip nodes no gradient reached */
    }
}

void ct_backward_with(ct_tape *tape, ct_tensor *out, const ct_real *cotangent) {
    CT_CHECK(ct_requires_grad(out), "ct_backward",
             "output %s does not require grad (no parameter or grad-enabled input reaches it)",
             ct_shp(out));
    ct_real *g = ct_grad_of(tape, out);
    for (size_t i = 0; i < out->size; i++) g[i] += cotangent[i];
    run_backward(tape);
}

void ct_backward(ct_tape *tape, ct_tensor *out) {
    CT_CHECK(out->size == 1, "ct_backward", "needs a one-element loss, got shape %s; "
             "use ct_backward_with for a cotangent", ct_shp(out));
    ct_real one = 1;
    ct_backward_with(tape, out, &one);
}

/* ---- printers ---------------------------------------------------------------------------- */

/* Stable small ids for tensors in the printout: the node index that produced them, else a
 * leaf number in order of first appearance. */
static int producer(const ct_tape *tape, const ct_tensor *t) {
    for (int i = 0; i < tape->n_nodes; i++)
        if (tape->nodes[i].out == t) return i;
    return -1;
}

void ct_tape_print(const ct_tape *tape, FILE *out) {
    char buf[96];
    fprintf(out, "tape: %d nodes, %zu bytes in the arena\n", tape->n_nodes,
            ct_arena_used(tape->arena));
    for (int i = 0; i < tape->n_nodes; i++) {
        const ct_node *nd = &tape->nodes[i];
        fprintf(out, "%4d %-14s", i, nd->op->name);
        for (int k = 0; k < nd->n_in; k++) {
            const ct_tensor *x = nd->in[k];
            if (!x) continue;
            int p = producer(tape, x);
            if (p >= 0) fprintf(out, "%s%%%d%s", k ? ", " : "", p, ct_tensor_shape_str(x, buf, sizeof buf));
            else fprintf(out, "%s%s%s", k ? ", " : "", x->name ? x->name : "leaf",
                         ct_tensor_shape_str(x, buf, sizeof buf));
        }
        fprintf(out, " -> %s   %s\n", ct_tensor_shape_str(nd->out, buf, sizeof buf), nd->op->math);
    }
}

void ct_tape_write_dot(const ct_tape *tape, FILE *out) {
    char buf[96];
    fprintf(out, "digraph tape {\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n");
    for (int i = 0; i < tape->n_nodes; i++) {
        const ct_node *nd = &tape->nodes[i];
        fprintf(out, "  n%d [shape=box,label=\"%d %s\\n%s\"];\n", i, i, nd->op->name,
                ct_tensor_shape_str(nd->out, buf, sizeof buf));
        for (int k = 0; k < nd->n_in; k++) {
            const ct_tensor *x = nd->in[k];
            if (!x) continue;
            int p = producer(tape, x);
            if (p >= 0) {
                fprintf(out, "  n%d -> n%d;\n", p, i);
            } else {
                fprintf(out, "  leaf%d_%d [shape=ellipse,label=\"%s\\n%s\"];\n  leaf%d_%d -> n%d;\n",
                        i, k, x->name ? x->name : "input", ct_tensor_shape_str(x, buf, sizeof buf),
                        i, k, i);
            }
        }
    }
    fprintf(out, "}\n");
}

/* ---- shared helpers ---------------------------------------------------------------------- */

int ct_axis(const char *op, const ct_tensor *x, int axis) {
    int a = axis < 0 ? axis + x->ndim : axis;
    CT_CHECK(a >= 0 && a < x->ndim, op, "axis %d out of range for shape %s", axis, ct_shp(x));
    return a;
}

const char *ct_shp(const ct_tensor *t) {
    static _Thread_local char bufs[4][96];
    static _Thread_local int next = 0;
    char *b = bufs[next];
    next = (next + 1) % 4;
    return ct_tensor_shape_str(t, b, 96);
}

void ct_axis_split(const ct_tensor *x, int axis, size_t *outer, size_t *n, size_t *inner) {
    size_t o = 1, in = 1;
    for (int i = 0; i < axis; i++) o *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) in *= (size_t)x->shape[i];
    *outer = o;
    *n = (size_t)x->shape[axis];
    *inner = in;
}
