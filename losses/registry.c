/* losses/registry.c — the loss zoo by name: "focal:gamma=2,alpha=0.25" -> a ready loss.
 *
 * One static table, one row per loss: {name, one-line formula, input, parameters, apply, bind}.
 * A parameter is {key, kind, default, range, help}; the default is a string parsed by the same
 * code as user input (so every default is checked like a user's value), and the range is written
 * as a reader would: "[0, inf)", "(0, 1]", "mean|sum|none". An `apply` adapter turns the parsed
 * values into the loss function's config struct and calls it. Adding a loss is a function + an
 * adapter + a row (losses/README.md, "Adding a loss").
 *
 * Spec grammar:  name [":" key=value ("," key=value)*]
 *                value = number | word | "[" number ("," number)* "]"   (a vector) */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../nn/nn.h"
#include "../core/spec.h"
#include "../autograd/op.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters --------------------------------------------------------------------------- */
typedef enum {
    LP_REAL,   /* a finite number in `range` */
    LP_INT,    /* an integer in `range` */
    LP_CHOICE, /* one word of `range`, "mean|sum|none"; stored as its index */
    LP_REALS,  /* a number or a bracketed vector of numbers, each in `range`; a default of "" (not
                  given) lets a spec give "[]", a default with values needs at least one */
} lp_kind;

typedef struct {
    const char *key;
    lp_kind kind;
    const char *def;   /* default, in spec syntax */
    const char *range; /* "[lo, hi]" with ( ) for open ends and inf, or "a|b|c" for LP_CHOICE */
    const char *help;
} loss_param;

#define LOSS_MAX_PARAMS 8
#define LOSS_MAX_BOUND 4
#define LOSS_MAX_VECTOR 1024

typedef struct loss_entry loss_entry;

/* The parsed values; `value[k]` belongs to entry->params[k]. */
typedef struct {
    double num;      /* LP_REAL, LP_INT, LP_CHOICE (the index) */
    double *vec;     /* LP_REALS: n values (heap), NULL when n = 0 */
    ct_real *vec_real;
    int n;
} loss_value;

struct ct_loss {
    const loss_entry *entry;
    loss_value value[LOSS_MAX_PARAMS];
    /* Learnable state created by the entry's bind hook (parameters owned by the model). */
    ct_tensor *bound[LOSS_MAX_BOUND];
    int is_bound;
};

struct loss_entry {
    const char *name;
    const char *formula; /* one line */
    const char *input;   /* what ct_loss_apply expects */
    loss_param params[LOSS_MAX_PARAMS]; /* ends at the first {NULL} */
    ct_tensor *(*apply)(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels);
    /* NULL for stateless losses. Creates loss->bound[...] in m and returns CT_OK, or sets an error. */
    int (*bind)(ct_loss *loss, ct_model *m, const char *name, int classes, int dim);
};

/* ---- accessors for the adapters (fatal on a key the entry does not have: a bug here) ---------- */
static int param_index(const loss_entry *e, const char *key) {
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++)
        if (!strcmp(e->params[k].key, key)) return k;
    return -1;
}
static const loss_value *param_value(const ct_loss *l, const char *key) {
    int k = param_index(l->entry, key);
    CT_CHECK(k >= 0, "ct_loss_apply", "loss %s has no parameter '%s' (registry bug)", l->entry->name, key);
    return &l->value[k];
}
static double num(const ct_loss *l, const char *key) { return param_value(l, key)->num; }
static int integer(const ct_loss *l, const char *key) { return (int)param_value(l, key)->num; }
/* LP_REALS as ct_real (weights, α per class) or double (Poly-N ε); NULL and *n = 0 when empty. */
static const ct_real *reals(const ct_loss *l, const char *key, int *n) {
    const loss_value *v = param_value(l, key);
    if (n) *n = v->n;
    return v->vec_real;
}
static const double *doubles(const ct_loss *l, const char *key, int *n) {
    const loss_value *v = param_value(l, key);
    if (n) *n = v->n;
    return v->vec;
}
/* "reduction" is the index into its choice list, which starts mean|sum|none|batchmean: the order
 * of ct_reduction. */
static ct_reduction reduction(const ct_loss *l) { return (ct_reduction)integer(l, "reduction"); }

#define REDUCTION_PARAM {"reduction", LP_CHOICE, "mean", "mean|sum|none", "mean/sum over samples, none: per sample"}

/* ---- adapters: parsed values -> the loss function ------------------------------------------ */
static ct_tensor *apply_cross_entropy(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n_weight;
    const ct_real *w = reals(l, "weight", &n_weight);
    CT_CHECK(!w || (z->ndim == 2 && n_weight == z->shape[1]), "cross_entropy",
             "weight has %d values for logits %s", n_weight, ct_shp(z));
    return ct_cross_entropy(tape, z, y, CT_CE(.reduction = reduction(l), .label_smoothing = num(l, "label_smoothing"),
                                              .ignore_index = integer(l, "ignore_index"), .weight = w));
}

static ct_tensor *apply_nll(ct_tape *tape, ct_loss *l, ct_tensor *x, ct_labels y) {
    int n_weight;
    const ct_real *w = reals(l, "weight", &n_weight);
    CT_CHECK(!w || (x->ndim == 2 && n_weight == x->shape[1]), "nll", "weight has %d values for log_probs %s",
             n_weight, ct_shp(x));
    return ct_nll_loss(tape, x, y, CT_NLL(.reduction = reduction(l), .ignore_index = integer(l, "ignore_index"),
                                          .weight = w));
}

/* The element-wise losses compare logits with one-hot targets when selected by name. */
static ct_tensor *one_hot_of(const char *name, ct_tape *tape, ct_tensor *z, ct_labels y) {
    CT_CHECK(z->ndim == 2, name, "logits must be 2-D (N, C), got %s", ct_shp(z));
    CT_CHECK(y.n == z->shape[0] && (y.data || y.n == 0), name, "%d labels for logits %s with N = %d rows", y.n,
             ct_shp(z), z->shape[0]);
    for (int i = 0; i < y.n; i++)
        CT_CHECK(y.data[i] >= 0 && y.data[i] < z->shape[1], name,
                 "label %d of sample %d is out of range for C = %d classes", y.data[i], i, z->shape[1]);
    return ct_one_hot(tape, y.data, y.n, z->shape[1]);
}

static ct_tensor *apply_bce(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n_pw;
    const ct_real *pw = reals(l, "pos_weight", &n_pw);
    ct_tensor *t = one_hot_of("bce_with_logits", tape, z, y);
    CT_CHECK(!pw || n_pw == z->shape[1], "bce_with_logits", "pos_weight has %d values for logits %s", n_pw,
             ct_shp(z));
    return ct_bce_with_logits(tape, z, t, CT_BCE(.reduction = reduction(l), .pos_weight = pw));
}

static ct_tensor *apply_mse(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_mse_loss(tape, z, one_hot_of("mse", tape, z, y), CT_REGRESSION(.reduction = reduction(l)));
}
static ct_tensor *apply_l1(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_l1_loss(tape, z, one_hot_of("l1", tape, z, y), CT_REGRESSION(.reduction = reduction(l)));
}
static ct_tensor *apply_smooth_l1(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_smooth_l1_loss(tape, z, one_hot_of("smooth_l1", tape, z, y),
                             CT_REGRESSION(.reduction = reduction(l), .beta = num(l, "beta")));
}
static ct_tensor *apply_huber(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_huber_loss(tape, z, one_hot_of("huber", tape, z, y),
                         CT_REGRESSION(.reduction = reduction(l), .delta = num(l, "delta")));
}

static ct_tensor *apply_focal(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n_alpha;
    const ct_real *alpha = reals(l, "alpha", &n_alpha);
    CT_CHECK(n_alpha == 1 || (z->ndim == 2 && n_alpha == z->shape[1]), "focal",
             "alpha has %d values for logits %s: give one or one per class", n_alpha, ct_shp(z));
    return ct_focal_loss(tape, z, y, CT_FOCAL(.reduction = reduction(l), .gamma = num(l, "gamma"),
                                              .alpha = alpha[0], .alpha_per_class = n_alpha > 1 ? alpha : NULL));
}
static ct_tensor *apply_sigmoid_focal(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_sigmoid_focal_loss(tape, z, one_hot_of("sigmoid_focal", tape, z, y),
                                 CT_SIGMOID_FOCAL(.reduction = reduction(l), .alpha = num(l, "alpha"),
                                                  .gamma = num(l, "gamma")));
}
static ct_tensor *apply_poly1(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_poly1_loss(tape, z, y, CT_POLY(.reduction = reduction(l), .epsilon = num(l, "epsilon")));
}
static ct_tensor *apply_poly_n(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n;
    const double *eps = doubles(l, "epsilon", &n);
    return ct_poly_n_loss(tape, z, y, CT_POLY(.reduction = reduction(l), .epsilons = eps, .n_epsilons = n));
}
static ct_tensor *apply_poly1_focal(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_poly1_focal_loss(tape, z, y, CT_POLY(.reduction = reduction(l), .epsilon = num(l, "epsilon"),
                                                   .gamma = num(l, "gamma"), .alpha = num(l, "alpha")));
}
static ct_tensor *apply_squentropy(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_squentropy_loss(tape, z, y, CT_SQUENTROPY(.reduction = reduction(l)));
}
static ct_tensor *apply_comp_sum(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_comp_sum_loss(tape, z, y, CT_COMP_SUM(.reduction = reduction(l), .tau = num(l, "tau")));
}
/* generalized cross-entropy (Zhang & Sabuncu 2018) is comp-sum with τ = 1 + q */
static ct_tensor *apply_gce(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_comp_sum_loss(tape, z, y, CT_COMP_SUM(.reduction = reduction(l), .tau = 1 + num(l, "q")));
}
static ct_tensor *apply_nce_rce(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_nce_rce_loss(tape, z, y, CT_NCE_RCE(.reduction = reduction(l), .alpha = num(l, "alpha"),
                                                  .beta = num(l, "beta"), .log_zero = num(l, "log_zero")));
}
static ct_tensor *apply_stablemax(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    return ct_stablemax_cross_entropy(tape, z, y, CT_STABLEMAX(.reduction = reduction(l)));
}

/* ---- embedding-loss adapters (losses/embedding_similarity.c, embedding_distance.c) -------- */
static ct_tensor *apply_supcon(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_supcon_loss(tape, f, y, CT_SUPCON(.reduction = reduction(l), .temperature = num(l, "temperature"),
                                                .base_temperature = num(l, "base_temperature"),
                                                .normalize = integer(l, "normalize")));
}
/* NT-Xent is SupCon without labels: the labels a training loop passes are not used. */
static ct_tensor *apply_ntxent(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    (void)y;
    return apply_supcon(tape, l, f, CT_LABELS(NULL, 0));
}
static ct_circle_opts circle_opts(const ct_loss *l) {
    return CT_CIRCLE(.reduction = reduction(l), .m = num(l, "m"), .gamma = num(l, "gamma"),
                     .detach_weights = integer(l, "detach"));
}
static ct_tensor *apply_circle(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_circle_loss(tape, f, y, circle_opts(l));
}
static ct_tensor *apply_circle_class(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_circle_class_loss(tape, f, l->bound[0], y, circle_opts(l));
}
static ct_tensor *apply_triplet(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_triplet_mined_loss(tape, f, y, CT_TRIPLET(.reduction = reduction(l), .margin = num(l, "margin"),
                                                        .distance = (ct_distance)integer(l, "distance"),
                                                        .eps = num(l, "eps"), .mining = (ct_mining)integer(l, "mining")));
}
static ct_tensor *apply_center(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_center_loss(tape, f, l->bound[0], y, CT_CENTER(.reduction = reduction(l), .lambda = num(l, "lambda")));
}

/* Class proxies "<name>.proxies" (C, D) ~ N(0, 1): directions uniform on the sphere, which is all
 * a cosine sees. */
static int bind_circle_class(ct_loss *l, ct_model *m, const char *name, int classes, int dim) {
    if (classes < 2)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: circle_class: needs classes >= 2, got %d", classes);
    char full[160];
    snprintf(full, sizeof full, "%s.proxies", name);
    l->bound[0] = ct_model_add_param(m, full, CT_SHAPE(classes, dim));
    ct_init_normal(l->bound[0], ct_model_rng(m), 0, 1);
    return CT_OK;
}
/* Centres "<name>.centers" (C, D) ~ U(±√(3/D)): Caffe's "xavier" filler, which the authors'
 * center-loss prototxt uses. */
static int bind_center(ct_loss *l, ct_model *m, const char *name, int classes, int dim) {
    char full[160];
    snprintf(full, sizeof full, "%s.centers", name);
    l->bound[0] = ct_model_add_param(m, full, CT_SHAPE(classes, dim));
    const double bound = sqrt(3.0 / dim);
    ct_init_uniform(l->bound[0], ct_model_rng(m), -bound, bound);
    return CT_OK;
}

/* ---- the table ---------------------------------------------------------------------------- */
static const loss_entry registry[] = {
    {"cross_entropy", "−Σ_c [(1−ε)·w_y·[c=y] + (ε/C)·w_c]·log softmax(z)_c", "logits (N, C)",
     {REDUCTION_PARAM,
      {"label_smoothing", LP_REAL, "0", "[0, 1]", "ε: mass spread uniformly over the classes"},
      {"ignore_index", LP_INT, "-100", "(-inf, inf)", "label that contributes nothing"},
      {"weight", LP_REALS, "", "[0, inf)", "per-class weights [w_0,...,w_{C-1}]"}},
     apply_cross_entropy, NULL},
    /* ---- classification losses: more rows here ---- */
    {"nll", "−w_y·x_y on log-probabilities x (mean: / Σ w_y)", "log-probabilities (N, C)",
     {REDUCTION_PARAM,
      {"ignore_index", LP_INT, "-100", "(-inf, inf)", "label that contributes nothing"},
      {"weight", LP_REALS, "", "[0, inf)", "per-class weights [w_0,...,w_{C-1}]"}},
     apply_nll, NULL},
    {"bce_with_logits", "w·[(1−t)·x + (1+(pw−1)·t)·softplus(−x)], t = one_hot(y)", "logits (N, C)",
     {REDUCTION_PARAM, {"pos_weight", LP_REALS, "", "[0, inf)", "per-class weight of the positive term"}},
     apply_bce, NULL},
    {"mse", "(z − one_hot(y))², element-wise", "logits (N, C)", {REDUCTION_PARAM}, apply_mse, NULL},
    {"l1", "|z − one_hot(y)|, element-wise", "logits (N, C)", {REDUCTION_PARAM}, apply_l1, NULL},
    {"smooth_l1", "d = z − one_hot(y): ½d²/β if |d| < β else |d| − ½β", "logits (N, C)",
     {REDUCTION_PARAM, {"beta", LP_REAL, "1", "[0, inf)", "β: where quadratic turns linear (0: l1)"}},
     apply_smooth_l1, NULL},
    {"huber", "d = z − one_hot(y): ½d² if |d| <= δ else δ·(|d| − ½δ)", "logits (N, C)",
     {REDUCTION_PARAM, {"delta", LP_REAL, "1", "(0, inf)", "δ: where quadratic turns linear"}},
     apply_huber, NULL},
    {"focal", "−α_y·(1 − p_y)^γ·log p_y, p = softmax(z)", "logits (N, C)",
     {REDUCTION_PARAM, {"gamma", LP_REAL, "2", "[0, inf)", "γ: focusing (0: cross-entropy)"},
      {"alpha", LP_REALS, "1", "[0, inf)", "α: one value, or one per class [a_0,...]"}},
     apply_focal, NULL},
    {"sigmoid_focal", "α_t·(1 − p_t)^γ·bce(z, t), p = σ(z), t = one_hot(y) (torchvision)", "logits (N, C)",
     {REDUCTION_PARAM, {"alpha", LP_REAL, "0.25", "(-inf, 1]", "α: weight of positives (< 0: off)"},
      {"gamma", LP_REAL, "2", "[0, inf)", "γ: focusing"}},
     apply_sigmoid_focal, NULL},
    {"poly1", "CE + ε·(1 − p_y)", "logits (N, C)",
     {REDUCTION_PARAM, {"epsilon", LP_REAL, "1", "[-1, inf)", "ε: weight of the first polynomial term"}},
     apply_poly1, NULL},
    {"poly_n", "CE + Σ_j ε_j·(1 − p_y)^j", "logits (N, C)",
     {REDUCTION_PARAM, {"epsilon", LP_REALS, "[1]", "(-inf, inf)", "[ε_1,...,ε_N]"}},
     apply_poly_n, NULL},
    {"poly1_focal", "−α·(1 − p_y)^γ·log p_y + ε·(1 − p_y)^(γ+1)", "logits (N, C)",
     {REDUCTION_PARAM, {"epsilon", LP_REAL, "1", "[-1, inf)", "ε"},
      {"gamma", LP_REAL, "2", "[0, inf)", "γ: focusing"}, {"alpha", LP_REAL, "1", "[0, inf)", "α"}},
     apply_poly1_focal, NULL},
    {"squentropy", "CE + (1/(C−1))·Σ_{j≠y} z_j²", "logits (N, C)", {REDUCTION_PARAM}, apply_squentropy, NULL},
    {"comp_sum", "(p_y^(τ−1) − 1)/(1 − τ); τ=0 sum-exp, 1 CE, (1,2) GCE, 2 MAE", "logits (N, C)",
     {REDUCTION_PARAM, {"tau", LP_REAL, "1.7", "[0, inf)", "τ (1.7 is GCE with q = 0.7)"}},
     apply_comp_sum, NULL},
    {"gce", "(1 − p_y^q)/q (generalized cross-entropy = comp_sum with τ = 1 + q)", "logits (N, C)",
     {REDUCTION_PARAM, {"q", LP_REAL, "0.7", "[0, 1]", "q (0: CE, 1: MAE)"}},
     apply_gce, NULL},
    {"nce_rce", "α·log p_y/Σ_k log p_k − β·A·(1 − p_y)", "logits (N, C)",
     {REDUCTION_PARAM, {"alpha", LP_REAL, "1", "[0, inf)", "α: weight of normalized CE"},
      {"beta", LP_REAL, "1", "[0, inf)", "β: weight of reverse CE"},
      {"log_zero", LP_REAL, "-4", "(-inf, 0)", "A: log 0 in RCE (paper −4)"}},
     apply_nce_rce, NULL},
    {"stablemax", "−log(s(z_y)/Σ_k s(z_k)), s(x) = x+1 (x ≥ 0), 1/(1−x) (x < 0)", "logits (N, C)",
     {REDUCTION_PARAM}, apply_stablemax, NULL},

    /* ---- embedding losses (losses/embedding_*.c): rows here ---- */
    {"supcon", "−(τ/τ_b)·mean_{p∈P(a)} log(e^(s_ap/τ)/Σ_{k≠a} e^(s_ak/τ)), s = cosines (Khosla et al. 2020)",
     "features (N, V, D) or (N, D)",
     {REDUCTION_PARAM, {"temperature", LP_REAL, "0.07", "(0, inf)", "τ"},
      {"base_temperature", LP_REAL, "0.07", "(0, inf)", "τ_b: the loss is scaled by τ/τ_b"},
      {"normalize", LP_INT, "1", "[0, 1]", "L2-normalise the features first"}},
     apply_supcon, NULL},
    {"ntxent", "SupCon with the other views of each sample as its positives (SimCLR); labels unused",
     "features (N, V, D), V >= 2",
     {REDUCTION_PARAM, {"temperature", LP_REAL, "0.5", "(0, inf)", "τ (SupContrast's SimCLR setting)"},
      {"base_temperature", LP_REAL, "0.5", "(0, inf)", "τ_b (= τ: SimCLR's loss, unscaled)"},
      {"normalize", LP_INT, "1", "[0, 1]", "L2-normalise the features first"}},
     apply_ntxent, NULL},
    {"circle", "softplus(lse_p(−γα_p(s_p−1+m)) + lse_n(γα_n(s_n−m))), pairs in the batch (Sun et al. 2020)",
     "features (N, D)",
     {REDUCTION_PARAM, {"m", LP_REAL, "0.4", "[0, 1]", "relaxation margin (paper, faces: 0.25)"},
      {"gamma", LP_REAL, "80", "(0, inf)", "scale γ (paper, faces: 256)"},
      {"detach", LP_INT, "1", "[0, 1]", "stop the gradient through α_p, α_n (paper: 1)"}},
     apply_circle, NULL},
    {"circle_class", "Circle loss against learnable class proxies: one positive, C−1 negatives",
     "features (N, D)",
     {REDUCTION_PARAM, {"m", LP_REAL, "0.4", "[0, 1]", "relaxation margin (paper, faces: 0.25)"},
      {"gamma", LP_REAL, "80", "(0, inf)", "scale γ (paper, faces: 256)"},
      {"detach", LP_INT, "1", "[0, 1]", "stop the gradient through α_p, α_n (paper: 1)"}},
     apply_circle_class, bind_circle_class},
    {"triplet", "[d(a,p) − d(a,n) + margin]₊ over triplets mined in the batch", "features (N, D)",
     {REDUCTION_PARAM, {"margin", LP_REAL, "1", "[0, inf)", "margin"},
      {"distance", LP_CHOICE, "l2", "l2|cosine", "‖x − y + eps‖₂ or 1 − cos"},
      {"mining", LP_CHOICE, "all", "all|hard", "batch all, or batch hard (Hermans et al. 2017)"},
      {"eps", LP_REAL, "1e-6", "[0, inf)", "added to x − y in the L2 distance (PyTorch)"}},
     apply_triplet, NULL},
    {"center", "(λ/2)·‖x_i − c_{y_i}‖², learnable centres (Wen et al. 2016); add it to a CE",
     "features (N, D)",
     {REDUCTION_PARAM, {"lambda", LP_REAL, "0.003", "[0, inf)", "λ (the paper's face-recognition weight)"}},
     apply_center, bind_center},
};
static const int registry_count = (int)(sizeof registry / sizeof registry[0]);

/* Losses added at run time (ct_loss_register) follow the table: a fixed array, so a parsed
 * ct_loss keeps a valid entry pointer however many are added later. */
static loss_entry added[CT_LOSS_MAX_REGISTERED];
static ct_loss_fn added_fn[CT_LOSS_MAX_REGISTERED];
static int added_count;

static const loss_entry *entry_at(int i) {
    if (i >= 0 && i < registry_count) return &registry[i];
    if (i >= registry_count && i < registry_count + added_count) return &added[i - registry_count];
    return NULL;
}

int ct_loss_count(void) { return registry_count + added_count; }
const char *ct_loss_name_at(int i) { return entry_at(i) ? entry_at(i)->name : NULL; }

/* ---- ranges ------------------------------------------------------------------------------- */
typedef struct {
    double lo, hi;
    int lo_open, hi_open;
} range;

static double parse_bound(const char *s, const char **end) {
    while (isspace((unsigned char)*s)) s++;
    if (!strncmp(s, "-inf", 4)) { *end = s + 4; return -INFINITY; }
    if (!strncmp(s, "inf", 3)) { *end = s + 3; return INFINITY; }
    char *e;
    double v = strtod(s, &e);
    *end = e;
    return v;
}

/* "[0, inf)" -> {0, inf, closed, open}. The table is ours, so a malformed range is a bug. */
static range parse_range(const char *s) {
    range r;
    const char *p = s;
    CT_CHECK(*p == '[' || *p == '(', "ct_loss registry", "malformed range \"%s\"", s);
    r.lo_open = *p++ == '(';
    r.lo = parse_bound(p, &p);
    CT_CHECK(*p == ',', "ct_loss registry", "malformed range \"%s\"", s);
    r.hi = parse_bound(p + 1, &p);
    while (isspace((unsigned char)*p)) p++;
    CT_CHECK(*p == ']' || *p == ')', "ct_loss registry", "malformed range \"%s\"", s);
    r.hi_open = *p == ')';
    return r;
}

static int in_range(double v, range r) {
    if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return 0;
    if (r.hi_open ? !(v < r.hi) : !(v <= r.hi)) return 0;
    return 1;
}

/* A spec's numbers are written "0.25" whatever the program's locale: the public entry points that
 * read or write numbers (parse, describe, register) run in the C locale (ct_c_numbers_begin). */

/* ---- values --------------------------------------------------------------------------------- */
/* Parses one number of the whole string [s, s+len): strtod, nothing left over, finite. */
static int parse_number(const char *s, size_t len, double *out) {
    char buf[64];
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Stores the text [s, s+len) as the value of parameter p; on error sets ct_last_error naming
 * the loss, the key and the value, and returns CT_ERR_VALUE. */
static int set_value(const loss_entry *e, const loss_param *p, loss_value *v, const char *s, size_t len) {
    const int shown = len > 60 ? 60 : (int)len;
    if (p->kind == LP_CHOICE) {
        const char *opt = p->range;
        for (int idx = 0;; idx++) {
            const char *bar = strchr(opt, '|');
            size_t n = bar ? (size_t)(bar - opt) : strlen(opt);
            if (n == len && !strncmp(opt, s, len)) {
                v->num = idx;
                return CT_OK;
            }
            if (!bar) break;
            opt = bar + 1;
        }
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not one of %s", e->name, p->key, shown, s,
                            p->range);
    }
    const range r = parse_range(p->range);
    if (p->kind == LP_REALS) {
        free(v->vec);
        free(v->vec_real);
        v->vec = NULL;
        v->vec_real = NULL;
        v->n = 0;
        if (len == 0) return CT_OK; /* the empty default: not given */
        const char *body = s, *stop = s + len;
        if (*s == '[') {
            if (len < 2 || s[len - 1] != ']')
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s has no closing ']'", e->name, p->key,
                                    shown, s);
            body = s + 1;
            stop = s + len - 1;
            while (body < stop && isspace((unsigned char)*body)) body++;
            if (body == stop) { /* "[]": not given, which only a parameter whose default is "" allows */
                if (*p->def)
                    return ct_set_error(CT_ERR_VALUE,
                                        "ct_loss_parse: %s: %s=%.*s is empty: it needs at least 1 value (%s)",
                                        e->name, p->key, shown, s, p->help);
                return CT_OK;
            }
        }
        int count = 1;
        for (const char *q = body; q < stop; q++) count += *q == ',';
        if (count > LOSS_MAX_VECTOR)
            return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s has %d values (at most %d)", e->name, p->key,
                                count, LOSS_MAX_VECTOR);
        v->vec = malloc((size_t)count * sizeof *v->vec);
        v->vec_real = malloc((size_t)count * sizeof *v->vec_real);
        if (!v->vec || !v->vec_real) return ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
        const char *item = body;
        for (int k = 0; k < count; k++) {
            const char *comma = memchr(item, ',', (size_t)(stop - item));
            const char *item_end = comma ? comma : stop;
            double x;
            if (!parse_number(item, (size_t)(item_end - item), &x))
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s: value %d '%.*s' is not a number", e->name,
                                    p->key, k, (int)(item_end - item) > 60 ? 60 : (int)(item_end - item), item);
            if (!in_range(x, r))
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s: value %d = %g is out of range %s", e->name,
                                    p->key, k, x, p->range);
            v->vec[k] = x;
            v->vec_real[k] = (ct_real)x;
            item = item_end + 1;
        }
        v->n = count;
        return CT_OK;
    }
    double x;
    if (!parse_number(s, len, &x))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not a number", e->name, p->key, shown, s);
    if (p->kind == LP_INT && (x != floor(x) || fabs(x) > 2147483647.0))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not an integer", e->name, p->key, shown, s);
    if (!in_range(x, r))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%g is out of range %s", e->name, p->key, x, p->range);
    v->num = x;
    return CT_OK;
}

/* "cross_entropy, focal, ..." */
static void list_names(char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < ct_loss_count() && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", entry_at(i)->name);
}
static void list_keys(const loss_entry *e, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "", e->params[k].key);
    if (!e->params[0].key) snprintf(buf, len, "(none)");
}

void ct_loss_free(ct_loss *loss) {
    if (!loss) return;
    for (int k = 0; k < LOSS_MAX_PARAMS; k++) {
        free(loss->value[k].vec);
        free(loss->value[k].vec_real);
    }
    free(loss);
}

static ct_loss *parse_spec(const char *spec) {
    if (!spec) {
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: spec is NULL");
        return NULL;
    }
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const loss_entry *e = NULL;
    for (int i = 0; i < ct_loss_count(); i++)
        if (strlen(entry_at(i)->name) == name_len && !strncmp(entry_at(i)->name, spec, name_len)) e = entry_at(i);
    if (!e) {
        char names[2048];
        list_names(names, sizeof names);
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: unknown loss '%.*s' in \"%s\"; known losses: %s",
                     (int)(name_len > 60 ? 60 : name_len), spec, spec, names);
        return NULL;
    }
    ct_loss *l = calloc(1, sizeof *l);
    if (!l) {
        ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
        return NULL;
    }
    l->entry = e;
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++)
        if (set_value(e, &e->params[k], &l->value[k], e->params[k].def, strlen(e->params[k].def)) != CT_OK)
            ct_fatal("ct_loss registry", "%s: default of %s: %s", e->name, e->params[k].key, ct_last_error());

    int seen[LOSS_MAX_PARAMS] = {0};
    const char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        /* one key=value; the value runs to the next comma outside brackets */
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ',') eq++;
        if (*eq != '=') {
            char keys[512];
            list_keys(e, keys, sizeof keys);
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: '%.*s' is not key=value (keys: %s)", e->name,
                         (int)(eq - p > 60 ? 60 : eq - p), p, keys);
            goto fail;
        }
        const char *val = eq + 1, *val_end = val;
        int depth = 0;
        while (*val_end && (depth > 0 || *val_end != ',')) {
            depth += *val_end == '[';
            depth -= *val_end == ']';
            val_end++;
        }
        const char *key = p;
        size_t key_len = (size_t)(eq - p);
        while (key_len && isspace((unsigned char)*key)) key++, key_len--;
        while (key_len && isspace((unsigned char)key[key_len - 1])) key_len--;
        int k = -1;
        for (int j = 0; j < LOSS_MAX_PARAMS && e->params[j].key; j++)
            if (strlen(e->params[j].key) == key_len && !strncmp(e->params[j].key, key, key_len)) k = j;
        if (k < 0) {
            char keys[512];
            list_keys(e, keys, sizeof keys);
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s has no parameter '%.*s'; its parameters: %s", e->name,
                         (int)(key_len > 60 ? 60 : key_len), key, keys);
            goto fail;
        }
        if (seen[k]) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s is given twice", e->name, e->params[k].key);
            goto fail;
        }
        seen[k] = 1;
        const char *v = val;
        size_t v_len = (size_t)(val_end - val);
        while (v_len && isspace((unsigned char)*v)) v++, v_len--;
        while (v_len && isspace((unsigned char)v[v_len - 1])) v_len--;
        if (v_len == 0) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s has no value", e->name, e->params[k].key);
            goto fail;
        }
        if (set_value(e, &e->params[k], &l->value[k], v, v_len) != CT_OK) goto fail;
        p = *val_end ? val_end + 1 : val_end;
        if (*val_end && !*p) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: trailing ',' in \"%s\"", e->name, spec);
            goto fail;
        }
    }
    return l;
fail:
    ct_loss_free(l);
    return NULL;
}

ct_loss *ct_loss_parse(const char *spec) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    ct_loss *l = parse_spec(spec);
    ct_c_numbers_end(numbers);
    return l;
}

const char *ct_loss_name(const ct_loss *loss) { return loss ? loss->entry->name : "(null)"; }

/* Shortest of %.15g / %.17g that reads back as the same double. */
static int format_number(char *buf, size_t len, double x) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.15g", x);
    if (strtod(tmp, NULL) != x) snprintf(tmp, sizeof tmp, "%.17g", x);
    return snprintf(buf, len, "%s", tmp);
}

static void describe_loss(const ct_loss *loss, char *buf, size_t len) {
    if (!len) return;
    buf[0] = 0;
    if (!loss) return;
    const loss_entry *e = loss->entry;
    size_t used = (size_t)snprintf(buf, len, "%s", e->name);
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key && used < len; k++) {
        const loss_param *p = &e->params[k];
        const loss_value *v = &loss->value[k];
        used += (size_t)snprintf(buf + used, len - used, "%s%s=", k ? "," : ":", p->key);
        if (used >= len) break;
        if (p->kind == LP_CHOICE) {
            const char *opt = p->range;
            for (int idx = 0; idx < (int)v->num; idx++) opt = strchr(opt, '|') + 1;
            const char *bar = strchr(opt, '|');
            used += (size_t)snprintf(buf + used, len - used, "%.*s", (int)(bar ? bar - opt : (long)strlen(opt)), opt);
        } else if (p->kind == LP_REALS) {
            used += (size_t)snprintf(buf + used, len - used, "[");
            for (int j = 0; j < v->n && used < len; j++) {
                if (j) used += (size_t)snprintf(buf + used, len - used, ",");
                if (used < len) used += (size_t)format_number(buf + used, len - used, v->vec[j]);
            }
            if (used < len) used += (size_t)snprintf(buf + used, len - used, "]");
        } else {
            used += (size_t)format_number(buf + used, len - used, v->num);
        }
    }
}

void ct_loss_describe(const ct_loss *loss, char *buf, size_t len) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    describe_loss(loss, buf, len);
    ct_c_numbers_end(numbers);
}

void ct_loss_list(FILE *out) {
    for (int i = 0; i < ct_loss_count(); i++) {
        const loss_entry *e = entry_at(i);
        fprintf(out, "%s%s\n    %s\n    input: %s\n", e->name, e->bind ? "  (learnable state: ct_loss_bind)" : "",
                e->formula, e->input);
        for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++) {
            const loss_param *p = &e->params[k];
            fprintf(out, "    %-16s = %-8s %-16s %s\n", p->key, p->kind == LP_REALS && !*p->def ? "[]" : p->def,
                    p->range, p->help);
        }
    }
}

int ct_loss_bind(ct_loss *loss, ct_model *m, const char *name, int classes, int dim) {
    CT_CHECK(loss, "ct_loss_bind", "loss is NULL");
    if (!loss->entry->bind) return CT_OK;
    CT_CHECK(m && name, "ct_loss_bind", "%s: model or name is NULL", loss->entry->name);
    if (classes <= 0 || dim <= 0)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: %s: classes = %d and dim = %d must be positive",
                            loss->entry->name, classes, dim);
    int rc = loss->entry->bind(loss, m, name, classes, dim);
    if (rc == CT_OK) loss->is_bound = 1;
    return rc;
}

ct_tensor *ct_loss_apply(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels) {
    CT_CHECK(loss && tape && input, "ct_loss_apply", "loss, tape or input is NULL");
    CT_CHECK(!loss->entry->bind || loss->is_bound, "ct_loss_apply",
             "%s has learnable state: call ct_loss_bind(loss, model, name, classes, dim) first", loss->entry->name);
    return loss->entry->apply(tape, loss, input, labels);
}


/* ---- losses added at run time ---------------------------------------------------------------- */
/* The apply of every added entry: the parsed values in declaration order, then the user's fn. */
static ct_tensor *apply_added(ct_tape *tape, ct_loss *l, ct_tensor *input, ct_labels labels) {
    double values[LOSS_MAX_PARAMS];
    for (int k = 0; k < LOSS_MAX_PARAMS && l->entry->params[k].key; k++) values[k] = l->value[k].num;
    return added_fn[l->entry - added](tape, input, labels, values);
}

/* parse_range without the fatal error: the ranges here are the user's. */
static int range_ok(const char *s) {
    const char *p = s;
    if (!s || (*p != '[' && *p != '(')) return 0;
    double lo = parse_bound(p + 1, &p);
    if (*p != ',') return 0;
    double hi = parse_bound(p + 1, &p);
    while (isspace((unsigned char)*p)) p++;
    return (*p == ']' || *p == ')') && !p[1] && !(lo > hi);
}

static int register_loss(const ct_loss_def *def) {
    if (!def || !def->name || !*def->name || !def->fn)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: the definition, its name or its fn is NULL");
    for (const char *c = def->name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: name \"%.60s\": only letters, digits and '_'",
                                def->name);
    for (int i = 0; i < ct_loss_count(); i++)
        if (!strcmp(entry_at(i)->name, def->name))
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: a loss named %s is already registered", def->name);
    if (added_count == CT_LOSS_MAX_REGISTERED)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: %d losses are registered already (the most)",
                            def->name, CT_LOSS_MAX_REGISTERED);
    loss_entry e = {def->name, def->formula ? def->formula : "", def->input ? def->input : "", {{0}}, apply_added,
                    NULL};
    for (int k = 0; k < LOSS_MAX_PARAMS - 1 && def->params[k].key; k++) {
        const ct_loss_param *p = &def->params[k];
        if (!range_ok(p->range))
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: %s: malformed range \"%.60s\"", def->name, p->key,
                                p->range ? p->range : "(null)");
        for (int j = 0; j < k; j++)
            if (!strcmp(def->params[j].key, p->key))
                return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: parameter %s is declared twice", def->name,
                                    p->key);
        e.params[k] = (loss_param){p->key, LP_REAL, p->def ? p->def : "", p->range, p->help ? p->help : ""};
        loss_value v = {0};
        if (set_value(&e, &e.params[k], &v, e.params[k].def, strlen(e.params[k].def)) != CT_OK) {
            /* the message is in ct_last_error()'s buffer: copy it before formatting the new one */
            char why[512];
            const char *msg = ct_last_error(), *prefix = "ct_loss_parse: ";
            if (!strncmp(msg, prefix, strlen(prefix))) msg += strlen(prefix);
            snprintf(why, sizeof why, "%s", msg);
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: default of %s: %s", p->key, why);
        }
    }
    if (def->params[LOSS_MAX_PARAMS - 1].key)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: at most %d parameters", def->name,
                            LOSS_MAX_PARAMS - 1);
    added[added_count] = e;
    added_fn[added_count] = def->fn;
    added_count++;
    return CT_OK;
}

int ct_loss_register(const ct_loss_def *def) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const int rc = register_loss(def);
    ct_c_numbers_end(numbers);
    return rc;
}
