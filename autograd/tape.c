/* autograd/tape.c — the tape: record nodes in execution order, replay them backwards. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAPE_MAGIC 0x74617065u /* "tape" */
#define TAPE_FREED 0x64656164u /* "dead" */
/* Backward passes on one tape without a reset before ct_backward warns that it keeps growing. */
#define BACKWARDS_BEFORE_WARNING 1000

static int anomaly_mode = 0;

int ct_set_anomaly(int enabled) {
    int was = anomaly_mode;
    anomaly_mode = enabled != 0;
    return was;
}

__attribute__((constructor)) static void anomaly_from_environment(void) {
    const char *env = getenv("CTAPE_ANOMALY");
    if (env && *env && strcmp(env, "0") != 0) anomaly_mode = 1;
}

/* A step number no tape has used: tensors of one tape step carry it. */
static uint64_t new_step(void) {
    static uint64_t last = 0;
    return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static void check_tape(const ct_tape *tape, const char *op) {
    CT_CHECK(tape != NULL, op, "the tape is NULL (make one with ct_tape_new)");
    CT_CHECK(tape->magic == TAPE_MAGIC, op, "the tape %s (use it before ct_tape_free, free it once)",
             tape->magic == TAPE_FREED ? "was freed with ct_tape_free" : "is not a live tape");
}

/* A tensor an op may read on this tape: a heap tensor not yet freed, or a tape tensor of this
 * tape's current step. */
static void check_live(const ct_tape *tape, const ct_tensor *t, const char *op, int input) {
    CT_CHECK(t != NULL, op, "input %d is NULL", input);
    CT_CHECK(!(t->flags & CT_TENSOR_FREED), op, "input %d was freed with ct_tensor_free", input);
    if ((t->flags & CT_TENSOR_ARENA) && t->step != tape->step)
        ct_fatal(op, "input %d %s is a tape tensor of an earlier step (ct_tape_reset has freed it) "
                 "or of another tape: recompute it in this step, or keep a copy made with "
                 "ct_tensor_new and ct_tensor_copy_from", input, ct_shp(t));
}

ct_tape *ct_tape_new(void) {
    ct_tape *tape = calloc(1, sizeof *tape);
    if (!tape) ct_fatal("ct_tape_new", "out of memory");
    tape->magic = TAPE_MAGIC;
    tape->arena = ct_arena_new((size_t)16 << 20);
    tape->headers[0] = ct_arena_new((size_t)64 << 10);
    tape->headers[1] = ct_arena_new((size_t)64 << 10);
    tape->step = new_step();
    tape->cap_nodes = 256;
    tape->nodes = malloc((size_t)tape->cap_nodes * sizeof *tape->nodes);
    if (!tape->nodes) ct_fatal("ct_tape_new", "out of memory");
    tape->grad_enabled = 1;
    return tape;
}

/* ---- anomaly mode ------------------------------------------------------------------------ */

static size_t first_nonfinite(const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

static _Noreturn void anomaly(const char *what, const char *op, ct_site site, const char *detail,
                              ct_real value, size_t index) {
    char where[300] = "";
    if (site.file) snprintf(where, sizeof where, " (recorded at %s:%d)", site.file, site.line);
    ct_fatal("anomaly", "%s of op '%s'%s: %s holds %s at flat index %zu", what, op, where, detail,
             isnan(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf", index);
}

/* The last op's output, now that it has been computed. */
static void check_unchecked(ct_tape *tape) {
    const ct_tensor *out = tape->unchecked.out;
    if (!out) return;
    tape->unchecked.out = NULL;
    size_t i = first_nonfinite(out->data, out->size);
    if (i < out->size) anomaly("forward", tape->unchecked.op, tape->unchecked.site, ct_shp(out),
                               out->data[i], i);
}

/* Inputs that no op of this step produced (parameters, data, fresh tape tensors). */
static void check_leaf_inputs(const ct_op *op, ct_tensor *const *inputs, int n) {
    for (int k = 0; k < n; k++) {
        const ct_tensor *x = inputs[k];
        if (!x || (x->flags & CT_TENSOR_CHECKED)) continue;
        size_t i = first_nonfinite(x->data, x->size);
        if (i < x->size) {
            char detail[200];
            snprintf(detail, sizeof detail, "its input %d (%s %s)", k, x->name ? x->name : "leaf",
                     ct_shp(x));
            anomaly("input", op->name, ct_site_current(), detail, x->data[i], i);
        }
    }
}

static void check_gradients(const ct_node *nd) {
    for (int k = 0; k < nd->n_in; k++) {
        const ct_tensor *x = nd->in[k];
        if (!x || !x->grad) continue;
        size_t i = first_nonfinite(x->grad, x->size);
        if (i < x->size) {
            char detail[200];
            snprintf(detail, sizeof detail, "the gradient of its input %d (%s %s)", k,
                     x->name ? x->name : "tensor", ct_shp(x));
            anomaly("backward", nd->op->name, nd->site, detail, x->grad[i], i);
        }
    }
}

/* ---- lifecycle --------------------------------------------------------------------------- */

void ct_tape_free(ct_tape *tape) {
    if (!tape) return;
    check_tape(tape, "ct_tape_free");
    *(volatile unsigned *)&tape->magic = TAPE_FREED; /* volatile: a store before free is otherwise dropped */
    ct_arena_free(tape->arena);
    ct_arena_free(tape->headers[0]);
    ct_arena_free(tape->headers[1]);
    free(tape->nodes);
    free(tape);
}

void ct_tape_reset(ct_tape *tape) {
    check_tape(tape, "ct_tape_reset");
    if (anomaly_mode) check_unchecked(tape);
    tape->unchecked.out = NULL;
    tape->n_nodes = 0;
    tape->backward_passes = 0;
    tape->step = new_step();
    tape->side ^= 1;
    ct_arena_reset(tape->headers[tape->side]);
    ct_arena_reset(tape->arena);
}

int ct_tape_grad_enabled(ct_tape *tape, int enabled) {
    check_tape(tape, "ct_tape_grad_enabled");
    int was = tape->grad_enabled;
    tape->grad_enabled = enabled != 0;
    return was;
}

int ct_tape_node_count(const ct_tape *tape) {
    check_tape(tape, "ct_tape_node_count");
    return tape->n_nodes;
}

const ct_node *ct_tape_node(const ct_tape *tape, int i) {
    check_tape(tape, "ct_tape_node");
    CT_CHECK(i >= 0 && i < tape->n_nodes, "ct_tape_node", "node %d of a tape of %d", i, tape->n_nodes);
    return &tape->nodes[i];
}

ct_arena *ct_tape_arena(ct_tape *tape) {
    check_tape(tape, "ct_tape_arena");
    return tape->arena;
}

static ct_tensor *arena_tensor(ct_tape *tape, ct_shape shape, const char *op) {
    check_tape(tape, op);
    CT_CHECK(shape.ndim >= 0 && shape.ndim <= CT_MAX_DIMS, op, "%d dimensions (at most %d)",
             shape.ndim, CT_MAX_DIMS);
    ct_tensor *t = ct_arena_alloc(tape->headers[tape->side], sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = shape.ndim;
    for (int i = 0; i < shape.ndim; i++) {
        CT_CHECK(shape.d[i] >= 0, op, "dimension %d has negative size %d", i, shape.d[i]);
        t->shape[i] = shape.d[i];
    }
    t->size = ct_shape_size(shape);
    t->flags = CT_TENSOR_ARENA;
    t->step = tape->step;
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
    check_tape(tape, "ct_tape_requires_grad");
    check_live(tape, t, "ct_tape_requires_grad", 0);
    CT_CHECK(t->flags & CT_TENSOR_ARENA, "ct_tape_requires_grad",
             "tensor %s is not a tape tensor; use ct_tensor_new_grad for heap tensors",
             ct_shp(t));
    t->flags |= CT_TENSOR_REQUIRES_GRAD;
}

ct_tensor *ct_op_output(ct_tape *tape, ct_shape shape, const ct_op *op, ct_tensor *const *inputs,
                        int n, ct_node **node) {
    check_tape(tape, op->name);
    for (int i = 0; i < n; i++)
        if (inputs[i]) check_live(tape, inputs[i], op->name, i);
    if (anomaly_mode) {
        check_unchecked(tape);
        check_leaf_inputs(op, inputs, n);
    }
    ct_tensor *out = arena_tensor(tape, shape, op->name);
    out->data = ct_arena_alloc(tape->arena, out->size * sizeof(ct_real));
    if (anomaly_mode) {
        out->flags |= CT_TENSOR_CHECKED;
        tape->unchecked.out = out;
        tape->unchecked.op = op->name;
        tape->unchecked.site = ct_site_current();
    }
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
    nd->site = ct_site_current();
    out->flags |= CT_TENSOR_REQUIRES_GRAD;
    *node = nd;
    return out;
}

ct_tensor *ct_op_view(ct_tape *tape, ct_tensor *of, ct_shape shape) {
    check_tape(tape, "view");
    check_live(tape, of, "view", 0);
    ct_tensor *t = arena_tensor(tape, shape, "view");
    t->data = of->data;
    t->flags |= CT_TENSOR_VIEW | (of->flags & CT_TENSOR_CHECKED);
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

void ct_tape_on_grad_ready(ct_tape *tape, ct_grad_ready_fn fn, void *user) {
    check_tape(tape, "ct_tape_on_grad_ready");
    tape->grad_ready = fn, tape->grad_ready_user = user;
}

/* The parameters the tape reads, each at its first use in the forward: params[k] first read by node
 * at[k], at[] nondecreasing. In the tape's arena (gone at the reset). Returns the count. */
static int first_uses(ct_tape *tape, ct_tensor ***params, int **at) {
    const size_t cap = (size_t)tape->n_nodes * CT_NODE_MAX_INPUTS + 1;
    ct_tensor **p = ct_arena_alloc(tape->arena, cap * sizeof *p);
    int *a = ct_arena_alloc(tape->arena, cap * sizeof *a), n = 0;
    for (int i = 0; i < tape->n_nodes; i++)
        for (int k = 0; k < tape->nodes[i].n_in; k++) {
            ct_tensor *x = tape->nodes[i].in[k];
            if (!x || !(x->flags & CT_TENSOR_PARAM) || !x->grad) continue;
            int seen = 0;
            for (int j = n - 1; j >= 0 && !seen; j--) seen = p[j] == x;
            if (!seen) p[n] = x, a[n++] = i;
        }
    *params = p, *at = a;
    return n;
}

static void run_backward(ct_tape *tape) {
    ct_tensor **params = NULL;
    int *at = NULL, ready = tape->grad_ready ? first_uses(tape, &params, &at) - 1 : -1;
    for (int i = tape->n_nodes - 1; i >= 0; i--) {
        ct_node *nd = &tape->nodes[i];
        if (nd->out->grad) { /* else no gradient reached this node */
            nd->op->backward(tape, nd);
            if (anomaly_mode) check_gradients(nd);
        }
        /* no node before i reads these parameters: their gradients are final */
        for (; ready >= 0 && at[ready] >= i; ready--) tape->grad_ready(params[ready], tape->grad_ready_user);
    }
}

void ct_backward_with(ct_tape *tape, ct_tensor *out, const ct_real *cotangent) {
    check_tape(tape, "ct_backward");
    check_live(tape, out, "ct_backward", 0);
    CT_CHECK(ct_requires_grad(out), "ct_backward",
             "output %s does not require grad (no parameter or grad-enabled input reaches it)",
             ct_shp(out));
    CT_CHECK(cotangent != NULL, "ct_backward_with", "the cotangent is NULL");
    if (anomaly_mode) check_unchecked(tape);
    /* A pass after the first starts from fresh intermediate gradients (every node's output is an
     * intermediate); the leaves keep theirs and accumulate, as in PyTorch. */
    if (tape->backward_passes++ > 0)
        for (int i = 0; i < tape->n_nodes; i++) tape->nodes[i].out->grad = NULL;
    if (tape->backward_passes == BACKWARDS_BEFORE_WARNING)
        fprintf(stderr, "ctape: ct_backward: %d backward passes on one tape without ct_tape_reset; "
                "it now holds %d nodes and %zu bytes and grows every step: call ct_tape_reset "
                "after each optimizer step\n", tape->backward_passes, tape->n_nodes,
                ct_arena_used(tape->arena));
    ct_real *g = ct_grad_of(tape, out);
    for (size_t i = 0; i < out->size; i++) g[i] += cotangent[i];
    run_backward(tape);
}

void ct_backward(ct_tape *tape, ct_tensor *out) {
    check_tape(tape, "ct_backward");
    check_live(tape, out, "ct_backward", 0);
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

/* "= 0.6931" for one element, else "[0.1, -0.3, 0.25, 1.2, …] mean 0.01 in [-2, 3]": the first
 * `first` elements, and over all of them the mean and range (NaN and inf counted apart). */
static void print_values(FILE *out, const char *what, const ct_real *v, size_t n, int first) {
    if (!v) return (void)fprintf(out, "%s none", what);
    if (n == 1) return (void)fprintf(out, "%s = %.6g", what, (double)v[0]);
    fprintf(out, "%s [", what);
    for (size_t i = 0; i < n && (int)i < first; i++) fprintf(out, "%s%.4g", i ? ", " : "", (double)v[i]);
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    size_t finite = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) sum += v[i], lo = fmin(lo, v[i]), hi = fmax(hi, v[i]), finite++;
    fprintf(out, "%s]", (size_t)first < n ? ", …" : "");
    if ((size_t)first < n && finite) fprintf(out, " mean %.4g in [%.4g, %.4g]", sum / (double)finite, lo, hi);
    if (finite < n) fprintf(out, " (%zu not finite)", n - finite);
}

/* A tensor's name in the printout: %i for node i's output, else its own name or "leaf". */
static void print_ref(FILE *out, const ct_tape *tape, const ct_tensor *x) {
    char buf[96];
    const int p = producer(tape, x);
    if (p >= 0) fprintf(out, "%%%d%s", p, ct_tensor_shape_str(x, buf, sizeof buf));
    else fprintf(out, "%s%s", x->name ? x->name : "leaf", ct_tensor_shape_str(x, buf, sizeof buf));
}

/* The leaves (inputs no node produced) in order of first use, each once: *n of them in a malloc'd
 * array the caller frees. */
static const ct_tensor **collect_leaves(const ct_tape *tape, const char *op, int *n) {
    const ct_tensor **leaves = malloc(((size_t)tape->n_nodes * CT_NODE_MAX_INPUTS + 1) * sizeof *leaves);
    if (!leaves) ct_fatal(op, "out of memory");
    *n = 0;
    for (int i = 0; i < tape->n_nodes; i++)
        for (int k = 0; k < tape->nodes[i].n_in; k++) {
            const ct_tensor *x = tape->nodes[i].in[k];
            if (!x || producer(tape, x) >= 0) continue;
            int seen = 0;
            for (int j = 0; j < *n && !seen; j++) seen = leaves[j] == x;
            if (!seen) leaves[(*n)++] = x;
        }
    return leaves;
}

void ct_tape_print_with(const ct_tape *tape, FILE *out, ct_print_opts o) {
    check_tape(tape, "ct_tape_print");
    char buf[96];
    const int first = o.max_elements > 0 ? o.max_elements : 4;
    fprintf(out, "tape: %d nodes, %zu bytes in the arena\n", tape->n_nodes, ct_arena_used(tape->arena));
    if (o.values || o.grads) { /* the leaves first: parameters and inputs, with what they hold */
        int n;
        const ct_tensor **leaves = collect_leaves(tape, "ct_tape_print", &n);
        for (int j = 0; j < n; j++) {
            const ct_tensor *x = leaves[j];
            fprintf(out, "     %-14s %s%s", ct_requires_grad(x) ? "parameter" : "input", x->name ? x->name : "leaf",
                    ct_tensor_shape_str(x, buf, sizeof buf));
            if (o.values) print_values(out, "  ", x->data, x->size, first);
            if (o.grads && ct_requires_grad(x)) print_values(out, "  grad", x->grad, x->size, first);
            fputc('\n', out);
        }
        free(leaves);
    }
    for (int i = 0; i < tape->n_nodes; i++) {
        const ct_node *nd = &tape->nodes[i];
        fprintf(out, "%4d %-14s", i, nd->op->name);
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k]) {
                if (k) fputs(", ", out);
                print_ref(out, tape, nd->in[k]);
            }
        fprintf(out, " -> %s", ct_tensor_shape_str(nd->out, buf, sizeof buf));
        if (!o.compact) fprintf(out, "   %s", nd->op->math);
        if (o.values) fputs("\n" "                   ", out), print_values(out, "value", nd->out->data, nd->out->size, first);
        if (o.grads) fputs("\n" "                   ", out), print_values(out, "grad ", nd->out->grad, nd->out->size, first);
        fputc('\n', out);
    }
}

void ct_tape_print(const ct_tape *tape, FILE *out) { ct_tape_print_with(tape, out, (ct_print_opts){0}); }

/* Values for a Graphviz label: the first elements, or the one value. */
static void dot_values(FILE *out, const char *what, const ct_real *v, size_t n, int first) {
    if (!v) return;
    fprintf(out, "\\n%s", what);
    for (size_t i = 0; i < n && (int)i < first; i++) fprintf(out, "%s%.4g", i ? " " : " ", (double)v[i]);
    if ((size_t)first < n) fputs(" …", out);
}

/* A name inside a quoted Graphviz label: quotes and backslashes escaped, line breaks as \n. */
static void dot_text(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out), fputc(*s, out);
        else if (*s == '\n') fputs("\\n", out);
        else fputc(*s, out);
    }
}

/* Each tensor is drawn once: a shared input is one node with an edge to every op that reads it, so
 * where gradients from several uses add up is visible. Parameters are blue, inputs grey, ops pale
 * yellow boxes (labelled with their output, the intermediates). */
void ct_tape_write_dot_with(const ct_tape *tape, FILE *out, ct_print_opts o) {
    check_tape(tape, "ct_tape_write_dot");
    char buf[96];
    const int first = o.max_elements > 0 ? o.max_elements : 3;
    fprintf(out, "digraph tape {\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n");
    int n_leaves;
    const ct_tensor **leaves = collect_leaves(tape, "ct_tape_write_dot", &n_leaves);
    for (int j = 0; j < n_leaves; j++) {
        const ct_tensor *x = leaves[j];
        const int param = ct_requires_grad(x);
        fprintf(out, "  leaf%d [shape=ellipse,style=filled,fillcolor=\"%s\",label=\"", j, param ? "#aec7e8" : "#dddddd");
        dot_text(out, x->name ? x->name : (param ? "parameter" : "input"));
        fprintf(out, "\\n%s", ct_tensor_shape_str(x, buf, sizeof buf));
        if (o.values) dot_values(out, "value", x->data, x->size, first);
        if (o.grads && param) dot_values(out, "grad", x->grad, x->size, first);
        fputs("\"];\n", out);
    }
    for (int i = 0; i < tape->n_nodes; i++) {
        const ct_node *nd = &tape->nodes[i];
        fprintf(out, "  n%d [shape=box,style=filled,fillcolor=\"#fff2cc\",label=\"%d ", i, i);
        dot_text(out, nd->op->name);
        fprintf(out, "\\n%s", ct_tensor_shape_str(nd->out, buf, sizeof buf));
        if (o.values) dot_values(out, "value", nd->out->data, nd->out->size, first);
        if (o.grads) dot_values(out, "grad", nd->out->grad, nd->out->size, first);
        fputs("\"];\n", out);
        for (int k = 0; k < nd->n_in; k++) {
            const ct_tensor *x = nd->in[k];
            if (!x) continue;
            const int p = producer(tape, x);
            if (p >= 0) {
                fprintf(out, "  n%d -> n%d;\n", p, i);
                continue;
            }
            for (int j = 0; j < n_leaves; j++)
                if (leaves[j] == x) fprintf(out, "  leaf%d -> n%d;\n", j, i);
        }
    }
    fprintf(out, "}\n");
    free(leaves);
}

void ct_tape_write_dot(const ct_tape *tape, FILE *out) { ct_tape_write_dot_with(tape, out, (ct_print_opts){0}); }

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
