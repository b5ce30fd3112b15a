/* optim/muon.c — Muon (Jordan et al. 2024): SGD momentum whose update, viewed as a matrix, is
 * replaced by its nearest semi-orthogonal matrix, approximated by a quintic Newton–Schulz iteration.
 * The rule and the two presets (the Muon repository's, airbench94_muon's) are in
 * optim/literature.h beside the options.
 *
 * The iteration runs on the wide orientation (m = min(rows, cols) rows, n = max columns) so its
 * Gram matrix A = X·Xᵀ is the small m × m one; its three products are GEMMs (ct_gemm). Scratch
 * for the largest selected parameter is allocated once, at construction. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The published quintic: chosen for the steepest slope at 0, so small singular values grow fast;
 * it does not converge to 1: the singular values end in [0.68, 1.14]. */
#define NS_A 3.4445
#define NS_B (-4.7750)
#define NS_C 2.0315

typedef struct {
    ct_optim base;
    ct_muon_opts o;
    int momentum;           /* state slot "momentum_buffer" (selected parameters only) */
    unsigned char *muon;    /* per parameter: 1 when Muon trains it */
    ct_optim *aux;
    double aux_lr, lr;      /* the aux's and Muon's lr at construction: aux lr = aux_lr · lr_now / lr */
    ct_real *scratch;       /* X, X', A, B for the largest selected parameter */
    ct_real **hidden;       /* Muon's grads while the aux steps */
} muon;

int ct_param_is_matrix(const ct_tensor *param, void *ctx) {
    (void)ctx;
    return param->ndim >= 2;
}

int ct_param_is_filter(const ct_tensor *param, void *ctx) {
    (void)ctx;
    return param->ndim == 4;
}

/* The 2-D view: rows = the first dimension, cols = the product of the others. */
static void matrix_view(const ct_tensor *p, int *rows, int *cols) {
    *rows = p->shape[0];
    *cols = (int)(p->size / (size_t)p->shape[0]);
}

static size_t scratch_size(int rows, int cols) {
    const size_t m = (size_t)(rows < cols ? rows : cols), n = (size_t)(rows < cols ? cols : rows);
    return 2 * m * n + 2 * m * m;
}

/* out = NS(g), g rows × cols row-major; out may be g. scratch holds scratch_size(rows, cols). */
static void orthogonalise(const ct_real *g, int rows, int cols, int steps, double eps, ct_real *out, ct_real *scratch) {
    const int tall = rows > cols, m = tall ? cols : rows, n = tall ? rows : cols;
    const size_t mn = (size_t)m * (size_t)n;
    ct_real *x = scratch, *y = scratch + mn, *a = scratch + 2 * mn, *b = a + (size_t)m * (size_t)m;
    double ss = 0;
    for (size_t i = 0; i < mn; i++) ss += (double)g[i] * (double)g[i];
    /* X = G/(‖G‖_F + ε): every singular value <= 1, where the iteration converges */
    const ct_real inv = (ct_real)(1 / (sqrt(ss) + eps));
    if (tall) { /* X = Gᵀ (m × n) */
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) x[(size_t)c * (size_t)n + (size_t)r] = g[(size_t)r * (size_t)cols + (size_t)c] * inv;
    } else {
        for (size_t i = 0; i < mn; i++) x[i] = g[i] * inv;
    }
    for (int s = 0; s < steps; s++) {
        /* A = X·Xᵀ (m × m) */
        ct_gemm(0, 1, m, m, n, 1, x, n, x, n, 0, a, m);
        /* B = b·A + c·A·A */
        memcpy(b, a, (size_t)m * (size_t)m * sizeof *b);
        ct_gemm(0, 0, m, m, m, (ct_real)NS_C, a, m, a, m, (ct_real)NS_B, b, m);
        /* X ← a·X + B·X */
        memcpy(y, x, mn * sizeof *y);
        ct_gemm(0, 0, m, n, m, 1, b, m, x, n, (ct_real)NS_A, y, n);
        ct_real *t = x;
        x = y, y = t;
    }
    if (tall) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) out[(size_t)r * (size_t)cols + (size_t)c] = x[(size_t)c * (size_t)n + (size_t)r];
    } else {
        memcpy(out, x, mn * sizeof *out);
    }
}

void ct_muon_orthogonalise(const ct_real *g, int rows, int cols, int ns_steps, double eps, ct_real *out) {
    static const char *op = "ct_muon_orthogonalise";
    CT_CHECK(g && out, op, "g %p and out %p must not be NULL", (const void *)g, (void *)out);
    CT_CHECK(rows >= 1 && cols >= 1 && ns_steps >= 0, op, "rows %d and cols %d must be >= 1, ns_steps %d >= 0", rows,
             cols, ns_steps);
    CT_CHECK(eps > 0 && isfinite(eps), op, "eps %g must be finite and > 0", eps);
    ct_real *scratch = malloc(scratch_size(rows, cols) * sizeof *scratch);
    if (!scratch) ct_fatal(op, "out of memory (a %d x %d matrix)", rows, cols);
    orthogonalise(g, rows, cols, ns_steps, eps, out, scratch);
    free(scratch);
}

static void muon_step(ct_optim *base) {
    muon *s = (muon *)base;
    const ct_real mu = (ct_real)s->o.momentum;
    const int nesterov = s->o.nesterov;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad || !s->muon[k]) continue;
        const double lr = ct_optim_param_lr(base, k), wd = ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad, *restrict b = ct_optim_state(base, s->momentum, k);
        const long n = (long)p->size;
        /* b ← μb + g;  u = g + μb (Nesterov) or b, written into g (the grad is zeroed at the end) */
        for (long i = 0; i < n; i++) {
            b[i] = mu * b[i] + g[i];
            g[i] = nesterov ? g[i] + mu * b[i] : b[i];
        }
        int rows, cols;
        matrix_view(p, &rows, &cols);
        if (s->o.normalize_weights) { /* θ ← θ·√rows/‖θ‖_F */
            double ss = 0;
            for (long i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
            if (ss > 0) {
                const ct_real f = (ct_real)(sqrt((double)rows) / sqrt(ss));
                for (long i = 0; i < n; i++) x[i] *= f;
            }
        }
        orthogonalise(g, rows, cols, s->o.ns_steps, s->o.eps, g, s->scratch);
        const double scale = s->o.scale == CT_MUON_SCALE_SHAPE ? sqrt(fmax(1.0, (double)rows / cols)) : 1.0;
        /* θ ← θ(1 − lr·λ) − lr·s·O */
        const ct_real keep = (ct_real)(1 - lr * wd), step = (ct_real)(lr * scale);
        for (long i = 0; i < n; i++) {
            x[i] = keep * x[i] - step * g[i];
            g[i] = 0;
        }
    }
    if (s->aux) {
        /* The aux steps every parameter that has a grad: Muon's are hidden from it for the call
         * (a parameter without a grad buffer is frozen for every optimizer and every guard). */
        ct_optim_set_lr(s->aux, s->aux_lr * (s->lr > 0 ? base->lr / s->lr : 1));
        for (int k = 0; k < base->n_params; k++) {
            s->hidden[k] = s->muon[k] ? base->params[k]->grad : NULL;
            if (s->muon[k]) base->params[k]->grad = NULL;
        }
        ct_optim_step(s->aux); /* its guards see its grads only, which Muon's guards checked already */
        for (int k = 0; k < base->n_params; k++)
            if (s->muon[k]) base->params[k]->grad = s->hidden[k];
    }
    base->zeroed = 1;
}

static double *muon_momentum(ct_optim *base) { return &((muon *)base)->o.momentum; }

static void muon_free(ct_optim *base) {
    muon *s = (muon *)base;
    ct_optim_free(s->aux);
    free(s->muon);
    free(s->hidden);
    free(s->scratch);
}

static const ct_optim_class muon_class = {"muon", muon_step, muon_free, muon_momentum};

static int momentum_shape(const ct_tensor *param, ct_shape *shape, void *ctx) {
    const muon *s = ctx;
    for (int k = 0; k < s->base.n_params; k++)
        if (s->base.params[k] == param) {
            if (!s->muon[k]) return 0;
            *shape = ct_tensor_shape(param);
            return 1;
        }
    return 0;
}

ct_optim *ct_muon_new(ct_model *m, ct_muon_opts o) {
    static const char *op = "ct_muon_new";
    CT_CHECK(m, op, "model is NULL");
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.momentum >= 0 && o.momentum < 1, op, "momentum %g must be in [0, 1)", o.momentum);
    CT_CHECK(!o.nesterov || o.momentum > 0, op, "nesterov needs momentum > 0, got %g", o.momentum);
    CT_CHECK(o.ns_steps >= 1 && o.ns_steps <= 100, op, "ns_steps %d must be in [1, 100]", o.ns_steps);
    CT_CHECK(o.eps > 0 && isfinite(o.eps), op, "eps %g must be finite and > 0", o.eps);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    CT_CHECK(o.scale == CT_MUON_SCALE_SHAPE || o.scale == CT_MUON_SCALE_NONE, op,
             "scale %d must be CT_MUON_SCALE_SHAPE or CT_MUON_SCALE_NONE", (int)o.scale);
    if (o.aux) {
        ct_optim_check(o.aux, op);
        CT_CHECK(o.aux->model == m, op, "aux optimizer (%s) was made for another model; make it over the same model",
                 o.aux->cls->name);
        CT_CHECK(o.aux->cls != &muon_class, op, "aux optimizer is a muon: give it the non-matrix parameters' optimizer "
                 "(SGD, AdamW)");
    }
    /* Which parameters Muon trains, checked before anything is made. */
    const int n = ct_model_param_count(m);
    unsigned char *sel = calloc((size_t)(n ? n : 1), 1);
    CT_CHECK(sel, op, "out of memory");
    size_t largest = 0;
    for (int k = 0; k < n; k++) {
        const ct_tensor *p = ct_model_param(m, k);
        char shape[64];
        sel[k] = o.select ? o.select(p, o.select_ctx) != 0 : 1;
        if (!p->grad) { /* frozen now; should it get a grad later, only a matrix is Muon's */
            sel[k] = sel[k] && p->ndim >= 2;
        } else if (sel[k]) {
            CT_CHECK(p->ndim >= 2, op, "parameter \"%s\" %s is not a matrix: Muon orthogonalises 2-D updates (a conv "
                     "weight (out, in, kh, kw) as (out, in·kh·kw)); give .select = ct_param_is_matrix (or "
                     "ct_param_is_filter) and train the others with .aux (an SGD or AdamW over the same model)",
                     p->name ? p->name : "?", ct_tensor_shape_str(p, shape, sizeof shape));
        } else {
            CT_CHECK(o.aux, op, "parameter \"%s\" %s is not selected for Muon and there is no .aux optimizer: "
                     "nothing would train it; give .aux (an SGD or AdamW over the same model)",
                     p->name ? p->name : "?", ct_tensor_shape_str(p, shape, sizeof shape));
        }
    }
    for (int k = 0; k < n; k++)
        if (sel[k]) {
            int rows, cols;
            matrix_view(ct_model_param(m, k), &rows, &cols);
            const size_t need = scratch_size(rows, cols);
            if (need > largest) largest = need;
        }
    muon *s = ct_optim_create(sizeof *s, &muon_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->o.aux = NULL;
    s->muon = sel;
    s->aux = o.aux;
    s->lr = o.lr;
    s->aux_lr = o.aux ? ct_optim_lr(o.aux) : 0;
    s->hidden = calloc((size_t)(n ? n : 1), sizeof *s->hidden);
    s->scratch = malloc((largest ? largest : 1) * sizeof *s->scratch);
    CT_CHECK(s->hidden && s->scratch, op, "out of memory");
    s->momentum = ct_optim_add_state_shaped(&s->base, "momentum_buffer", momentum_shape, s);
    return &s->base;
}

ct_optim *ct_muon_aux(ct_optim *opt) {
    ct_optim_check(opt, "ct_muon_aux");
    CT_CHECK(opt->cls == &muon_class, "ct_muon_aux", "%s is not a muon optimizer", opt->cls->name);
    return ((muon *)opt)->aux;
}
