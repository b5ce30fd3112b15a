/* autograd/elementwise.c — element-wise ops: binary ones with NumPy broadcasting, unary math.
 *
 * Each op: a comment with its math, the backward, the op entry, then the forward.
 * Backward functions accumulate: dx += dy · ∂y/∂x. <tgmath.h> makes exp, log, pow... pick the
 * float or double version from the argument, so the float32 build stays in float. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <tgmath.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* ---- broadcasting ---------------------------------------------------------------------------
 * Shapes are aligned on the right; a dimension of 1 (or a missing one) stretches. A plan walks
 * the output in row-major order with, for each operand, a stride per output dimension that is
 * 0 where the operand is stretched. Dimensions that are contiguous for every operand are merged
 * first, so the hot cases become simple loops:
 *     (N,C) + (N,C)  ->  one flat loop of N·C          strides a 1, b 1
 *     (N,C) + (1,)   ->  one flat loop of N·C          strides a 1, b 0
 *     (N,C) + (C,)   ->  N rows of C                   row strides a C, b 0; inner a 1, b 1
 *     (N,C) + (N,1)  ->  N rows of C                   row strides a C, b 1; inner a 1, b 0
 * The backward walks the same plan and adds into stretched operands: that is the sum of the
 * gradient over the broadcast dimensions. */
typedef struct {
    int nd;                    /* merged dimensions, at least 1 */
    size_t n[CT_MAX_DIMS];     /* their sizes */
    size_t s[3][CT_MAX_DIMS];  /* stride of operand k along each (0 = stretched) */
    size_t total;              /* output elements */
} bcast;

static ct_shape broadcast_shape(const char *op, ct_tensor *const *xs, int k) {
    ct_shape s = {0};
    for (int i = 0; i < k; i++)
        if (xs[i]->ndim > s.ndim) s.ndim = xs[i]->ndim;
    for (int d = 0; d < s.ndim; d++) {
        int size = 1, ok = 1;
        for (int i = 0; i < k; i++) {
            int j = d - (s.ndim - xs[i]->ndim);
            int v = j >= 0 ? xs[i]->shape[j] : 1;
            if (v == 1) continue;
            if (size != 1 && size != v) ok = 0;
            size = v;
        }
        if (!ok) {
            if (k == 2)
                ct_fatal(op, "shapes %s and %s do not broadcast", ct_shp(xs[0]), ct_shp(xs[1]));
            ct_fatal(op, "shapes %s, %s and %s do not broadcast", ct_shp(xs[0]), ct_shp(xs[1]),
                     ct_shp(xs[2]));
        }
        s.d[d] = size;
    }
    return s;
}

static bcast broadcast_plan(ct_shape out, ct_tensor *const *xs, int k) {
    /* per output dimension, each operand's stride in its own row-major layout */
    size_t n[CT_MAX_DIMS], s[3][CT_MAX_DIMS];
    for (int i = 0; i < k; i++) {
        size_t stride = 1;
        for (int d = out.ndim - 1; d >= 0; d--) {
            int j = d - (out.ndim - xs[i]->ndim);
            int v = j >= 0 ? xs[i]->shape[j] : 1;
            s[i][d] = v == 1 ? 0 : stride;
            stride *= (size_t)v;
        }
    }
    for (int d = 0; d < out.ndim; d++) n[d] = (size_t)out.d[d];
    /* merge, outermost first; size-1 output dimensions vanish */
    bcast p = {.nd = 0, .total = ct_shape_size(out)};
    for (int d = 0; d < out.ndim; d++) {
        if (n[d] == 1) continue;
        int merge = p.nd > 0;
        for (int i = 0; i < k && merge; i++) merge = p.s[i][p.nd - 1] == s[i][d] * n[d];
        if (merge) {
            p.n[p.nd - 1] *= n[d];
            for (int i = 0; i < k; i++) p.s[i][p.nd - 1] = s[i][d];
        } else {
            p.n[p.nd] = n[d];
            for (int i = 0; i < k; i++) p.s[i][p.nd] = s[i][d];
            p.nd++;
        }
    }
    if (p.nd == 0) { /* a one-element output */
        p.nd = 1;
        p.n[0] = 1;
        for (int i = 0; i < k; i++) p.s[i][0] = 0;
    }
    return p;
}

/* Offset of operand k at the start of row r (a row = the innermost merged dimension). */
static inline size_t row_offset(const bcast *p, int k, size_t r) {
    size_t off = 0;
    for (int d = p->nd - 2; d >= 0; d--) {
        off += (r % p->n[d]) * p->s[k][d];
        r /= p->n[d];
    }
    return off;
}

/* ---- the binary ops as data: forward value and the two partial derivatives ------------------ */
enum { ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM };

static inline ct_real bin_f(int kind, ct_real a, ct_real b) {
    switch (kind) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return a / b;
    case POW: return pow(a, b);
    case MAXIMUM: return (a > b || a != a) ? a : b; /* NaN propagates, as PyTorch */
    default: return (a < b || a != a) ? a : b;
    }
}

/* ∂y/∂a at (a, b) with y = f(a, b) */
static inline ct_real bin_da(int kind, ct_real a, ct_real b, ct_real y) {
    (void)y;
    switch (kind) {
    case ADD: case SUB: return 1;
    case MUL: return b;
    case DIV: return 1 / b;
    case POW: return b == 0 ? 0 : b * pow(a, b - 1);         /* PyTorch: 0 where b = 0 */
    case MAXIMUM: return a > b ? 1 : a == b ? (ct_real)0.5 : 0; /* ties split evenly */
    default: return a < b ? 1 : a == b ? (ct_real)0.5 : 0;
    }
}

/* ∂y/∂b at (a, b) with y = f(a, b) */
static inline ct_real bin_db(int kind, ct_real a, ct_real b, ct_real y) {
    switch (kind) {
    case ADD: return 1;
    case SUB: return -1;
    case MUL: return a;
    case DIV: return -y / b;                                 /* −a/b² */
    case POW: return (a == 0 && b >= 0) ? 0 : y * log(a);     /* PyTorch: NaN for a < 0 */
    case MAXIMUM: return b > a ? 1 : a == b ? (ct_real)0.5 : 0;
    default: return b < a ? 1 : a == b ? (ct_real)0.5 : 0;
    }
}

/* y = f(a, b) over the broadcast plan. Inlined into each op, so `kind` is a constant there and
 * the switch disappears from the loops. */
static inline __attribute__((always_inline)) void
binary_forward(int kind, const bcast *p, const ct_real *a, const ct_real *b, ct_real *y) {
    size_t inner = p->n[p->nd - 1], rows = p->total / (inner ? inner : 1);
    size_t sa = p->s[0][p->nd - 1], sb = p->s[1][p->nd - 1], total = p->total;
    if (p->nd == 1) { /* same shape, or one side a single value */
        if (sa && sb) {
#pragma omp parallel for if (total > PAR_MIN)
            for (size_t i = 0; i < total; i++) y[i] = bin_f(kind, a[i], b[i]);
        } else {
#pragma omp parallel for if (total > PAR_MIN)
            for (size_t i = 0; i < total; i++) y[i] = bin_f(kind, a[i * sa], b[i * sb]);
        }
        return;
    }
#pragma omp parallel for if (total > PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const ct_real *pa = a + row_offset(p, 0, r), *pb = b + row_offset(p, 1, r);
        ct_real *py = y + r * inner;
        for (size_t j = 0; j < inner; j++) py[j] = bin_f(kind, pa[j * sa], pb[j * sb]);
    }
}

/* Gradient sums over broadcast dimensions run in double and in an order that does not depend on
 * the thread count: a float sum of 10⁶ values drifts by 1% (x − s with one s: −100958 for
 * −100000), and an OpenMP reduction adds its partial sums in whatever order the threads give. */
#define CHUNK (1 << 14) /* values per partial sum of a one-value operand's gradient */

/* dx += dy · ∂y/∂x for operand `which` (0 = a, 1 = b), summing over its stretched dims.
 *  - x not stretched: each element once; rows in parallel.
 *  - x one value: Σ over everything, in chunks of CHUNK summed in double (in parallel), then the
 *    chunks in order.
 *  - x stretched along some dims: sums into a double copy of dx (arena), then added to dx. When x
 *    varies along the inner dim, threads take ranges of inner columns and walk every row in order
 *    (each x element belongs to one thread); when x is stretched along the inner dim, each row is
 *    one sum (rows in parallel), added into its element in row order. */
static inline __attribute__((always_inline)) void
binary_grad(int kind, int which, const bcast *p, const ct_real *a, const ct_real *b, const ct_real *y,
            const ct_real *dy, ct_real *dx, size_t x_size, ct_arena *arena) {
    size_t inner = p->n[p->nd - 1], rows = p->total / (inner ? inner : 1), total = p->total;
    size_t sa = p->s[0][p->nd - 1], sb = p->s[1][p->nd - 1], sx = which ? sb : sa;
#define PARTIAL(ia, ib, iy) \
    (which ? bin_db(kind, a[ia], b[ib], y[iy]) : bin_da(kind, a[ia], b[ib], y[iy]))
    if (p->nd == 1) {
        if (sx) {
#pragma omp parallel for if (total > PAR_MIN)
            for (size_t i = 0; i < total; i++) dx[i] += dy[i] * PARTIAL(i * sa, i * sb, i);
        } else { /* x is one value: the sum of everything */
            const size_t chunks = (total + CHUNK - 1) / CHUNK;
            double *part = ct_arena_alloc(arena, (chunks ? chunks : 1) * sizeof *part);
#pragma omp parallel for if (total > PAR_MIN)
            for (size_t c = 0; c < chunks; c++) {
                const size_t i1 = (c + 1) * CHUNK < total ? (c + 1) * CHUNK : total;
                double acc = 0;
#pragma omp simd reduction(+ : acc)
                for (size_t i = c * CHUNK; i < i1; i++) acc += (double)(dy[i] * PARTIAL(i * sa, i * sb, i));
                part[c] = acc;
            }
            double acc = 0;
            for (size_t c = 0; c < chunks; c++) acc += part[c];
            dx[0] += (ct_real)acc;
        }
        return;
    }
    int full = 1;
    for (int d = 0; d < p->nd; d++) full &= p->s[which][d] != 0;
    if (full) {
#pragma omp parallel for if (total > PAR_MIN)
        for (size_t r = 0; r < rows; r++) {
            size_t oa = row_offset(p, 0, r), ob = row_offset(p, 1, r), ox = which ? ob : oa;
            for (size_t j = 0; j < inner; j++)
                dx[ox + j * sx] += dy[r * inner + j] * PARTIAL(oa + j * sa, ob + j * sb, r * inner + j);
        }
        return;
    }
    double *acc = ct_arena_calloc(arena, (x_size ? x_size : 1) * sizeof *acc);
    if (sx) { /* x varies along the inner dim: threads own column ranges */
        const int parts = total > PAR_MIN && inner >= 256 ? ct_max_threads() : 1;
#pragma omp parallel for num_threads(parts) if (parts > 1)
        for (int t = 0; t < parts; t++) {
            const size_t j0 = inner * (size_t)t / (size_t)parts, j1 = inner * (size_t)(t + 1) / (size_t)parts;
            for (size_t r = 0; r < rows; r++) {
                size_t oa = row_offset(p, 0, r), ob = row_offset(p, 1, r), ox = which ? ob : oa;
                for (size_t j = j0; j < j1; j++)
                    acc[ox + j * sx] += (double)(dy[r * inner + j] * PARTIAL(oa + j * sa, ob + j * sb, r * inner + j));
            }
        }
    } else { /* x stretched along the inner dim: one sum per row */
        double *row_sum = ct_arena_alloc(arena, (rows ? rows : 1) * sizeof *row_sum);
#pragma omp parallel for if (total > PAR_MIN)
        for (size_t r = 0; r < rows; r++) {
            size_t oa = row_offset(p, 0, r), ob = row_offset(p, 1, r);
            double sum = 0;
            for (size_t j = 0; j < inner; j++)
                sum += (double)(dy[r * inner + j] * PARTIAL(oa + j * sa, ob + j * sb, r * inner + j));
            row_sum[r] = sum;
        }
        for (size_t r = 0; r < rows; r++) acc[row_offset(p, which, r)] += row_sum[r];
    }
#pragma omp parallel for if (x_size > PAR_MIN)
    for (size_t i = 0; i < x_size; i++) dx[i] += (ct_real)acc[i];
#undef PARTIAL
}

static inline __attribute__((always_inline)) void binary_backward(int kind, ct_tape *tape,
                                                                  ct_node *n) {
    ct_tensor *a = n->in[0], *b = n->in[1];
    ct_tensor *in[2] = {a, b};
    bcast p = broadcast_plan(ct_tensor_shape(n->out), in, 2);
    ct_real *da = ct_grad_of(tape, a), *db = ct_grad_of(tape, b);
    ct_arena *arena = ct_tape_arena(tape);
    if (da) binary_grad(kind, 0, &p, a->data, b->data, n->out->data, n->out->grad, da, a->size, arena);
    if (db) binary_grad(kind, 1, &p, a->data, b->data, n->out->data, n->out->grad, db, b->size, arena);
}

static inline __attribute__((always_inline)) ct_tensor *
binary(int kind, const char *name, const ct_op *op, ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    ct_tensor *in[2] = {a, b};
    ct_shape s = broadcast_shape(name, in, 2);
    bcast p = broadcast_plan(s, in, 2);
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, op, in, 2, &n);
    binary_forward(kind, &p, a->data, b->data, y->data);
    return y;
}

/* ---- add: y = a + b;  da += dy, db += dy (each summed over its broadcast dims) ------------- */
CT_KERNEL
static void add_backward(ct_tape *tape, ct_node *n) { binary_backward(ADD, tape, n); }
const ct_op ct_op_add = {"add", "y = a + b; da = dy, db = dy", add_backward};
CT_KERNEL
ct_tensor *ct_add(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(ADD, "ct_add", &ct_op_add, tape, a, b);
}

/* ---- sub: y = a − b;  da += dy, db −= dy --------------------------------------------------- */
CT_KERNEL
static void sub_backward(ct_tape *tape, ct_node *n) { binary_backward(SUB, tape, n); }
const ct_op ct_op_sub = {"sub", "y = a − b; da = dy, db = −dy", sub_backward};
CT_KERNEL
ct_tensor *ct_sub(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(SUB, "ct_sub", &ct_op_sub, tape, a, b);
}

/* ---- mul: y = a·b;  da += dy·b, db += dy·a -------------------------------------------------- */
CT_KERNEL
static void mul_backward(ct_tape *tape, ct_node *n) { binary_backward(MUL, tape, n); }
const ct_op ct_op_mul = {"mul", "y = a·b; da = dy·b, db = dy·a", mul_backward};
CT_KERNEL
ct_tensor *ct_mul(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(MUL, "ct_mul", &ct_op_mul, tape, a, b);
}

/* ---- div: y = a/b;  da += dy/b, db −= dy·a/b² = dy·y/b -------------------------------------- */
CT_KERNEL
static void div_backward(ct_tape *tape, ct_node *n) { binary_backward(DIV, tape, n); }
const ct_op ct_op_div = {"div", "y = a/b; da = dy/b, db = −dy·a/b²", div_backward};
CT_KERNEL
ct_tensor *ct_div(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(DIV, "ct_div", &ct_op_div, tape, a, b);
}

/* ---- pow: y = a^b;  da += dy·b·a^(b−1), db += dy·y·ln a ------------------------------------
 * As PyTorch: da is 0 where b = 0; db is 0 where a = 0 and b ≥ 0, and NaN where a < 0 (the
 * real power is not differentiable in b there). Keep a > 0 wherever b needs a gradient. */
CT_KERNEL
static void pow_backward(ct_tape *tape, ct_node *n) { binary_backward(POW, tape, n); }
const ct_op ct_op_pow = {"pow", "y = a^b; da = dy·b·a^(b−1), db = dy·y·ln a", pow_backward};
CT_KERNEL
ct_tensor *ct_pow(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(POW, "ct_pow", &ct_op_pow, tape, a, b);
}

/* ---- maximum: y = max(a, b);  da += dy·[a > b], db += dy·[b > a]; ties give each dy/2 ------- */
CT_KERNEL
static void maximum_backward(ct_tape *tape, ct_node *n) { binary_backward(MAXIMUM, tape, n); }
const ct_op ct_op_maximum = {"maximum", "y = max(a, b); da = dy·[a > b] (½ on ties), db likewise",
                             maximum_backward};
CT_KERNEL
ct_tensor *ct_maximum(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(MAXIMUM, "ct_maximum", &ct_op_maximum, tape, a, b);
}

/* ---- minimum: y = min(a, b);  da += dy·[a < b], db += dy·[b < a]; ties give each dy/2 ------- */
CT_KERNEL
static void minimum_backward(ct_tape *tape, ct_node *n) { binary_backward(MINIMUM, tape, n); }
const ct_op ct_op_minimum = {"minimum", "y = min(a, b); da = dy·[a < b] (½ on ties), db likewise",
                             minimum_backward};
CT_KERNEL
ct_tensor *ct_minimum(ct_tape *tape, ct_tensor *a, ct_tensor *b) {
    return binary(MINIMUM, "ct_minimum", &ct_op_minimum, tape, a, b);
}

/* ---- where: y = cond ≠ 0 ? a : b;  da += dy·[cond], db += dy·[!cond]; cond gets nothing -----
 * Three broadcast operands; not a hot op, so one generic loop. in = {a, b}; saved = cond. A
 * stretched operand's sums run in double (a copy of dx in the arena), as binary_grad's. */
static void where_grad(const bcast *p, const ct_real *c, const ct_real *dy, ct_real *dx, size_t x_size, int which,
                       ct_arena *arena) {
    const int stretched = x_size < p->total;
    double *acc = stretched ? ct_arena_calloc(arena, (x_size ? x_size : 1) * sizeof *acc) : NULL;
    for (size_t i = 0; i < p->total; i++) {
        size_t oc = 0, ox = 0, r = i;
        for (int d = p->nd - 1; d >= 0; d--) {
            size_t idx = r % p->n[d];
            r /= p->n[d];
            oc += idx * p->s[0][d];
            ox += idx * p->s[1 + which][d];
        }
        if ((c[oc] != 0) != (which == 0)) continue;
        if (acc) acc[ox] += dy[i];
        else dx[ox] += dy[i];
    }
    for (size_t i = 0; acc && i < x_size; i++) dx[i] += (ct_real)acc[i];
}

static void where_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *in[3] = {n->saved, n->in[0], n->in[1]};
    bcast p = broadcast_plan(ct_tensor_shape(n->out), in, 3);
    ct_real *da = ct_grad_of(tape, n->in[0]), *db = ct_grad_of(tape, n->in[1]);
    ct_arena *arena = ct_tape_arena(tape);
    if (da) where_grad(&p, n->saved->data, n->out->grad, da, n->in[0]->size, 0, arena);
    if (db) where_grad(&p, n->saved->data, n->out->grad, db, n->in[1]->size, 1, arena);
}
const ct_op ct_op_where = {"where", "y = cond ? a : b; da = dy·[cond], db = dy·[!cond]",
                           where_backward};

ct_tensor *ct_where(ct_tape *tape, ct_tensor *cond, ct_tensor *a, ct_tensor *b) {
    ct_tensor *all[3] = {cond, a, b};
    ct_shape s = broadcast_shape("ct_where", all, 3);
    bcast p = broadcast_plan(s, all, 3);
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, &ct_op_where, all + 1, 2, &n);
    if (n) CT_NODE_SAVE(n, cond);
    for (size_t i = 0; i < p.total; i++) {
        size_t o[3] = {0, 0, 0}, r = i;
        for (int d = p.nd - 1; d >= 0; d--) {
            size_t idx = r % p.n[d];
            r /= p.n[d];
            for (int k = 0; k < 3; k++) o[k] += idx * p.s[k][d];
        }
        y->data[i] = cond->data[o[0]] != 0 ? a->data[o[1]] : b->data[o[2]];
    }
    return y;
}

/* ---- unary ops --------------------------------------------------------------------------------
 * Same shape in and out. Each backward fetches dx (NULL: nothing to do) and runs one loop. */
static ct_tensor *unary_output(ct_tape *tape, ct_tensor *x, const ct_op *op, ct_node **n) {
    return ct_op_output(tape, ct_tensor_shape(x), op, &x, 1, n);
}

#define UNARY_BACKWARD_BEGIN                                                      \
    ct_tensor *x = n->in[0];                                                      \
    ct_real *dx = ct_grad_of(tape, x);                                            \
    if (!dx) return;                                                              \
    const ct_real *dy = n->out->grad, *y = n->out->data, *xd = x->data;           \
    size_t len = x->size;                                                         \
    (void)y, (void)xd;

/* ---- neg: y = −x;  dx −= dy ------------------------------------------------------------------ */
static void neg_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    for (size_t i = 0; i < len; i++) dx[i] -= dy[i];
}
const ct_op ct_op_neg = {"neg", "y = −x; dx = −dy", neg_backward};
ct_tensor *ct_neg(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_neg, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = -x->data[i];
    return y;
}

/* ---- add_scalar: y = x + c;  dx += dy ------------------------------------------------------- */
CT_KERNEL
static void add_scalar_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += dy[i];
}
const ct_op ct_op_add_scalar = {"add_scalar", "y = x + c; dx = dy", add_scalar_backward};
CT_KERNEL
ct_tensor *ct_add_scalar(ct_tape *tape, ct_tensor *x, double c) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_add_scalar, &n);
    ct_real cr = (ct_real)c;
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = x->data[i] + cr;
    return y;
}

/* ---- mul_scalar: y = c·x;  dx += c·dy; arg[0] = c -------------------------------------------- */
CT_KERNEL
static void mul_scalar_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    ct_real c = (ct_real)n->arg[0];
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += c * dy[i];
}
const ct_op ct_op_mul_scalar = {"mul_scalar", "y = c·x; dx = c·dy", mul_scalar_backward};
CT_KERNEL
ct_tensor *ct_mul_scalar(ct_tape *tape, ct_tensor *x, double c) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_mul_scalar, &n);
    if (n) n->arg[0] = c;
    ct_real cr = (ct_real)c;
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = cr * x->data[i];
    return y;
}

/* ---- pow_scalar: y = x^p;  dx += dy·p·x^(p−1) (0 when p = 0); arg[0] = p -------------------- */
static void pow_scalar_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    ct_real p = (ct_real)n->arg[0];
    if (p == 0) return;
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * p * pow(xd[i], p - 1);
}
const ct_op ct_op_pow_scalar = {"pow_scalar", "y = x^p; dx = dy·p·x^(p−1)", pow_scalar_backward};
ct_tensor *ct_pow_scalar(ct_tape *tape, ct_tensor *x, double p) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_pow_scalar, &n);
    if (n) n->arg[0] = p;
    ct_real pr = (ct_real)p;
    for (size_t i = 0; i < x->size; i++)
        y->data[i] = pr == 2 ? x->data[i] * x->data[i] : pow(x->data[i], pr);
    return y;
}

/* ---- exp: y = eˣ;  dx += dy·y ----------------------------------------------------------------- */
CT_KERNEL
static void exp_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * y[i];
}
const ct_op ct_op_exp = {"exp", "y = exp(x); dx = dy·y", exp_backward};
CT_KERNEL
ct_tensor *ct_exp(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_exp, &n);
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = exp(x->data[i]);
    return y;
}

/* ---- log: y = ln x;  dx += dy/x --------------------------------------------------------------- */
CT_KERNEL
static void log_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] / xd[i];
}
const ct_op ct_op_log = {"log", "y = ln x; dx = dy/x", log_backward};
CT_KERNEL
ct_tensor *ct_log(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_log, &n);
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = log(x->data[i]);
    return y;
}

/* ---- sqrt: y = √x;  dx += dy/(2y) (infinite at 0, as PyTorch) -------------------------------- */
static void sqrt_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] / (2 * y[i]);
}
const ct_op ct_op_sqrt = {"sqrt", "y = √x; dx = dy/(2y)", sqrt_backward};
ct_tensor *ct_sqrt(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_sqrt, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = sqrt(x->data[i]);
    return y;
}

/* ---- abs: y = |x|;  dx += dy·sign(x), sign(0) = 0 ------------------------------------------- */
static void abs_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    for (size_t i = 0; i < len; i++) dx[i] += xd[i] > 0 ? dy[i] : xd[i] < 0 ? -dy[i] : 0;
}
const ct_op ct_op_abs = {"abs", "y = |x|; dx = dy·sign(x)", abs_backward};
ct_tensor *ct_abs(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_abs, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = fabs(x->data[i]);
    return y;
}

/* ---- clamp: y = min(max(x, lo), hi);  dx += dy·[lo ≤ x ≤ hi]; arg = lo, hi ------------------ */
static void clamp_backward(ct_tape *tape, ct_node *n) {
    UNARY_BACKWARD_BEGIN
    ct_real lo = (ct_real)n->arg[0], hi = (ct_real)n->arg[1];
    for (size_t i = 0; i < len; i++) dx[i] += (xd[i] >= lo && xd[i] <= hi) ? dy[i] : 0;
}
const ct_op ct_op_clamp = {"clamp", "y = min(max(x, lo), hi); dx = dy·[lo ≤ x ≤ hi]", clamp_backward};
ct_tensor *ct_clamp(ct_tape *tape, ct_tensor *x, double lo, double hi) {
    CT_CHECK(!(lo > hi), "ct_clamp", "lo %g > hi %g for input %s", lo, hi, ct_shp(x));
    ct_node *n;
    ct_tensor *y = unary_output(tape, x, &ct_op_clamp, &n);
    if (n) n->arg[0] = lo, n->arg[1] = hi;
    ct_real l = (ct_real)lo, h = (ct_real)hi;
    for (size_t i = 0; i < x->size; i++) {
        ct_real v = x->data[i];
        y->data[i] = v < l ? l : v > h ? h : v;
    }
    return y;
}
