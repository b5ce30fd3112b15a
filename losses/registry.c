/* losses/registry.c — the loss zoo by name: "focal:gamma=2,alpha=0.25" -> a ready loss.
 *
 * One static table, one row per loss: {spec entry (name, one-line formula, parameters), input,
 * eval transform, whether it outputs features, apply, bind}. The parameters are core/spec.h's
 * (key, kind, default, range, help): the spec parser of models, optimizers and schedules reads
 * loss specs too, so the syntax, the range checks and the messages are the same everywhere. A
 * vector parameter is a CT_SPEC_VECTOR; the row names those that hold one value per class (their
 * length is checked against C at apply and bind). An `apply` adapter turns the parsed values into the loss
 * function's config struct and calls it; `bind` (losses with learnable state) creates their
 * parameters in a model. Losses a program registers (ct_loss_register) become rows of the same
 * shape after the table. Adding a loss is a function + an adapter + a row (losses/README.md,
 * "Adding a loss"). */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../nn/nn.h"
#include "../core/spec.h"
#include "../autograd/op.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CT_LOSS_MAX_VALUES == CT_SPEC_MAX_VECTOR, "a loss's list is a CT_SPEC_VECTOR");
_Static_assert(CT_LOSS_MAX_PARAMS <= CT_SPEC_MAX_PARAMS, "a loss's parameters fit a ct_spec_entry");

/* ---- rows ------------------------------------------------------------------------------------ */
/* What a vector's length must be. */
enum { LIST_ANY = 0, LIST_PER_CLASS, LIST_ONE_OR_PER_CLASS };

typedef struct loss_entry loss_entry;

struct ct_loss {
    const loss_entry *entry;
    int is_bound;
    ct_loss_args args;   /* the values as apply and bind see them; the state bind created */
    unsigned auto_counts; /* bit k: parameter k was given as "auto", not filled in yet (ct_loss_set_counts) */
    ct_spec spec;        /* the parsed values */
    ct_real reals[CT_SPEC_MAX_LIST_VALUES]; /* spec.values as ct_real, at the same places */
};

struct loss_entry {
    ct_spec_entry spec;          /* name, formula, parameters */
    const char *input;           /* what ct_loss_apply expects */
    ct_eval_transform transform; /* how its logits become probabilities (AUTO: softmax) */
    int features;                /* 1: its input is features, not logits (the embedding losses) */
    const char *per_class;       /* the vectors of C values, "weight,pos_weight" (NULL: none) */
    const char *one_or_per_class; /* the vectors of 1 or C values */
    ct_tensor *(*apply)(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels);
    ct_loss_bind_fn bind;        /* NULL for stateless losses */
};

#define REAL(key, def, range, help) {key, CT_SPEC_REAL, def, range, help}
#define INT(key, def, range, help) {key, CT_SPEC_INT, def, range, help}
#define CHOICE(key, def, words, help) {key, CT_SPEC_CHOICE, def, words, help}
#define VECTOR(key, def, range, help) {key, CT_SPEC_VECTOR, def, range, help}
#define REDUCTION_PARAM CHOICE("reduction", "mean", "mean|sum|none", "mean/sum over samples, none: per sample")

/* ---- accessors for the adapters (fatal on a key the entry does not have: a bug here) ---------- */
static double num(const ct_loss *l, const char *key) { return ct_spec_num(&l->spec, key); }
static int integer(const ct_loss *l, const char *key) { return (int)ct_spec_num(&l->spec, key); }
/* A list as double (Poly-N ε) or ct_real (weights, α per class); NULL and *n = 0 when empty. */
static const double *doubles(const ct_loss *l, const char *key, int *n) {
    const double *v;
    const int count = ct_spec_list(&l->spec, key, &v);
    if (n) *n = count;
    return v;
}
static const ct_real *reals(const ct_loss *l, const char *key, int *n) {
    const double *v = doubles(l, key, n);
    return v ? l->reals + (v - l->spec.values) : NULL;
}
/* "reduction" is the index into its choice list, which starts mean|sum|none|batchmean: the order
 * of ct_reduction. */
static ct_reduction reduction(const ct_loss *l) { return (ct_reduction)integer(l, "reduction"); }

/* ---- adapters: parsed values -> the loss function ------------------------------------------ */
static ct_tensor *apply_cross_entropy(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    const ct_real *w = reals(l, "weight", NULL); /* its length is checked by ct_loss_apply */
    return ct_cross_entropy(tape, z, y, CT_CE(.reduction = reduction(l), .label_smoothing = num(l, "label_smoothing"),
                                              .ignore_index = integer(l, "ignore_index"), .weight = w));
}

static ct_tensor *apply_nll(ct_tape *tape, ct_loss *l, ct_tensor *x, ct_labels y) {
    const ct_real *w = reals(l, "weight", NULL);
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
    ct_tensor *t = one_hot_of("bce_with_logits", tape, z, y);
    return ct_bce_with_logits(tape, z, t, CT_BCE(.reduction = reduction(l), .pos_weight = reals(l, "pos_weight", NULL),
                                                 .weight = reals(l, "weight", NULL)));
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
    int n_alpha; /* one, or one per class: checked by ct_loss_apply */
    const ct_real *alpha = reals(l, "alpha", &n_alpha);
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
/* TSLA (Xu et al. 2020): the cross-entropy op with label smoothing ε while the progress is below
 * `until`, and with none after, so each phase is bit for bit cross_entropy's. */
static ct_tensor *apply_tsla(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    const double eps = l->args.progress < num(l, "until") ? num(l, "epsilon") : 0;
    return ct_cross_entropy(tape, z, y, CT_CE(.reduction = reduction(l), .label_smoothing = eps));
}
static ct_tensor *apply_logit_adjusted(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n; /* one per class: checked by ct_loss_apply */
    const double *counts = doubles(l, "counts", &n);
    return ct_logit_adjusted_loss(tape, z, y, CT_LOGIT_ADJUSTED(.reduction = reduction(l), .tau = num(l, "tau"),
                                                                .counts = counts, .n_counts = n));
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
    return ct_circle_class_loss(tape, f, l->args.state[0], y, circle_opts(l));
}
static ct_tensor *apply_triplet(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_triplet_mined_loss(tape, f, y, CT_TRIPLET(.reduction = reduction(l), .margin = num(l, "margin"),
                                                        .distance = (ct_distance)integer(l, "distance"),
                                                        .eps = num(l, "eps"), .mining = (ct_mining)integer(l, "mining")));
}
static ct_tensor *apply_center(ct_tape *tape, ct_loss *l, ct_tensor *f, ct_labels y) {
    return ct_center_loss(tape, f, l->args.state[0], y, CT_CENTER(.reduction = reduction(l), .lambda = num(l, "lambda")));
}

/* Class proxies "<name>.proxies" (C, D) ~ N(0, 1): directions uniform on the sphere, which is all
 * a cosine sees. */
static int bind_circle_class(ct_model *m, const char *name, ct_loss_args *a) {
    if (a->classes < 2 || a->dim < 1)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: circle_class: needs classes >= 2 and dim >= 1, got %d and %d",
                            a->classes, a->dim);
    char full[160];
    snprintf(full, sizeof full, "%s.proxies", name);
    a->state[0] = ct_model_add_param(m, full, CT_SHAPE(a->classes, a->dim));
    ct_init_normal(a->state[0], ct_model_rng(m), 0, 1);
    return CT_OK;
}
/* Centres "<name>.centers" (C, D) ~ U(±√(3/D)): Caffe's "xavier" filler, which the authors'
 * center-loss prototxt uses. */
static int bind_center(ct_model *m, const char *name, ct_loss_args *a) {
    if (a->dim < 1) return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: center: needs dim >= 1 (the features'), got %d", a->dim);
    char full[160];
    snprintf(full, sizeof full, "%s.centers", name);
    a->state[0] = ct_model_add_param(m, full, CT_SHAPE(a->classes, a->dim));
    const double bound = sqrt(3.0 / a->dim);
    ct_init_uniform(a->state[0], ct_model_rng(m), -bound, bound);
    return CT_OK;
}

/* ---- the table ---------------------------------------------------------------------------- */
#define SOFTMAX CT_EVAL_SOFTMAX
#define FEATURES CT_EVAL_AUTO, 1, NULL, NULL
static const loss_entry registry[] = {
    {{"cross_entropy", "−Σ_c [(1−ε)·w_y·[c=y] + (ε/C)·w_c]·log softmax(z)_c",
      {REDUCTION_PARAM, REAL("label_smoothing", "0", "[0, 1]", "ε: mass spread uniformly over the classes"),
       INT("ignore_index", "-100", "(-inf, inf)", "label that contributes nothing"),
       VECTOR("weight", "", "[0, inf)", "per-class weights [w_0,...,w_{C-1}]")}},
     "logits (N, C)", SOFTMAX, 0, "weight", NULL, apply_cross_entropy, NULL},
    /* ---- classification losses: more rows here ---- */
    {{"nll", "−w_y·x_y on log-probabilities x (mean: / Σ w_y)",
      {REDUCTION_PARAM, INT("ignore_index", "-100", "(-inf, inf)", "label that contributes nothing"),
       VECTOR("weight", "", "[0, inf)", "per-class weights [w_0,...,w_{C-1}]")}},
     "log-probabilities (N, C)", SOFTMAX, 0, "weight", NULL, apply_nll, NULL},
    {{"bce_with_logits", "w·[(1−t)·x + (1+(pw−1)·t)·softplus(−x)], t = one_hot(y)",
      {REDUCTION_PARAM, VECTOR("pos_weight", "", "[0, inf)", "per-class weight pw of the positive term"),
       VECTOR("weight", "", "[0, inf)", "per-class weight w of the whole term")}},
     "logits (N, C)", CT_EVAL_SIGMOID, 0, "pos_weight,weight", NULL, apply_bce, NULL},
    {{"mse", "(z − one_hot(y))², element-wise", {REDUCTION_PARAM}}, "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_mse, NULL},
    {{"l1", "|z − one_hot(y)|, element-wise", {REDUCTION_PARAM}}, "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_l1, NULL},
    {{"smooth_l1", "d = z − one_hot(y): ½d²/β if |d| < β else |d| − ½β",
      {REDUCTION_PARAM, REAL("beta", "1", "[0, inf)", "β: where quadratic turns linear (0: l1)")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_smooth_l1, NULL},
    {{"huber", "d = z − one_hot(y): ½d² if |d| <= δ else δ·(|d| − ½δ)",
      {REDUCTION_PARAM, REAL("delta", "1", "(0, inf)", "δ: where quadratic turns linear")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_huber, NULL},
    {{"focal", "−α_y·(1 − p_y)^γ·log p_y, p = softmax(z)",
      {REDUCTION_PARAM, REAL("gamma", "2", "[0, inf)", "γ: focusing (0: cross-entropy)"),
       VECTOR("alpha", "1", "[0, inf)", "α: one value, or one per class [a_0,...]")}},
     "logits (N, C)", SOFTMAX, 0, NULL, "alpha", apply_focal, NULL},
    {{"sigmoid_focal", "α_t·(1 − p_t)^γ·bce(z, t), p = σ(z), t = one_hot(y) (torchvision)",
      {REDUCTION_PARAM, REAL("alpha", "0.25", "(-inf, 1]", "α: weight of positives (< 0: off)"),
       REAL("gamma", "2", "[0, inf)", "γ: focusing")}},
     "logits (N, C)", CT_EVAL_SIGMOID, 0, NULL, NULL, apply_sigmoid_focal, NULL},
    {{"poly1", "CE + ε·(1 − p_y)",
      {REDUCTION_PARAM, REAL("epsilon", "1", "[-1, inf)", "ε: weight of the first polynomial term")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_poly1, NULL},
    {{"poly_n", "CE + Σ_j ε_j·(1 − p_y)^j", {REDUCTION_PARAM, VECTOR("epsilon", "[1]", "(-inf, inf)", "[ε_1,...,ε_N]")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_poly_n, NULL},
    {{"poly1_focal", "−α·(1 − p_y)^γ·log p_y + ε·(1 − p_y)^(γ+1)",
      {REDUCTION_PARAM, REAL("epsilon", "1", "[-1, inf)", "ε"), REAL("gamma", "2", "[0, inf)", "γ: focusing"),
       REAL("alpha", "1", "[0, inf)", "α")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_poly1_focal, NULL},
    {{"squentropy", "CE + (1/(C−1))·Σ_{j≠y} z_j²", {REDUCTION_PARAM}}, "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_squentropy,
     NULL},
    {{"comp_sum", "(p_y^(τ−1) − 1)/(1 − τ); τ=0 sum-exp, 1 CE, (1,2) GCE, 2 MAE",
      {REDUCTION_PARAM, REAL("tau", "1.7", "[0, inf)", "τ (1.7 is GCE with q = 0.7)")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_comp_sum, NULL},
    {{"gce", "(1 − p_y^q)/q (generalized cross-entropy = comp_sum with τ = 1 + q)",
      {REDUCTION_PARAM, REAL("q", "0.7", "[0, 1]", "q (0: CE, 1: MAE)")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_gce, NULL},
    {{"nce_rce", "α·log p_y/Σ_k log p_k − β·A·(1 − p_y)",
      {REDUCTION_PARAM, REAL("alpha", "1", "[0, inf)", "α: weight of normalized CE"),
       REAL("beta", "1", "[0, inf)", "β: weight of reverse CE"),
       REAL("log_zero", "-4", "(-inf, 0)", "A: log 0 in RCE (paper −4)")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_nce_rce, NULL},
    {{"stablemax", "−log(s(z_y)/Σ_k s(z_k)), s(x) = x+1 (x ≥ 0), 1/(1−x) (x < 0)", {REDUCTION_PARAM}},
     "logits (N, C)", CT_EVAL_STABLEMAX, 0, NULL, NULL, apply_stablemax, NULL},
    {{"tsla", "CE with label smoothing ε while progress < until, plain CE after (Xu et al. 2020)",
      {REDUCTION_PARAM, REAL("epsilon", "0.1", "[0, 1]", "ε of the first phase"),
       REAL("until", "0.5", "[0, 1]", "the fraction of training smoothed (ct_loss_set_progress)")}},
     "logits (N, C)", SOFTMAX, 0, NULL, NULL, apply_tsla, NULL},
    {{"logit_adjusted", "CE(z + τ·log π, y), π_c = n_c/Σn; plain z at test time (Menon et al. 2021)",
      {REDUCTION_PARAM, REAL("tau", "1", "[0, inf)", "τ: the adjustment's scale"),
       VECTOR("counts", "", "(0, inf)", "training samples per class [n_0,...], or auto (ct_loss_set_counts)")}},
     "logits (N, C)", SOFTMAX, 0, "counts", NULL, apply_logit_adjusted, NULL},

    /* ---- embedding losses (losses/embedding_*.c): rows here ---- */
    {{"supcon", "−(τ/τ_b)·mean_{p∈P(a)} log(e^(s_ap/τ)/Σ_{k≠a} e^(s_ak/τ)), s = cosines (Khosla et al. 2020)",
      {REDUCTION_PARAM, REAL("temperature", "0.07", "(0, inf)", "τ"),
       REAL("base_temperature", "0.07", "(0, inf)", "τ_b: the loss is scaled by τ/τ_b"),
       INT("normalize", "1", "[0, 1]", "L2-normalise the features first")}},
     "features (N, V, D) or (N, D)", FEATURES, apply_supcon, NULL},
    {{"ntxent", "SupCon with the other views of each sample as its positives (SimCLR); labels unused",
      {REDUCTION_PARAM, REAL("temperature", "0.5", "(0, inf)", "τ (SupContrast's SimCLR setting)"),
       REAL("base_temperature", "0.5", "(0, inf)", "τ_b (= τ: SimCLR's loss, unscaled)"),
       INT("normalize", "1", "[0, 1]", "L2-normalise the features first")}},
     "features (N, V, D), V >= 2", FEATURES, apply_ntxent, NULL},
    {{"circle", "softplus(lse_p(−γα_p(s_p−1+m)) + lse_n(γα_n(s_n−m))), pairs in the batch (Sun et al. 2020)",
      {REDUCTION_PARAM, REAL("m", "0.4", "[0, 1]", "relaxation margin (paper, faces: 0.25)"),
       REAL("gamma", "80", "(0, inf)", "scale γ (paper, faces: 256)"),
       INT("detach", "1", "[0, 1]", "stop the gradient through α_p, α_n (paper: 1)")}},
     "features (N, D)", FEATURES, apply_circle, NULL},
    {{"circle_class", "Circle loss against learnable class proxies: one positive, C−1 negatives",
      {REDUCTION_PARAM, REAL("m", "0.4", "[0, 1]", "relaxation margin (paper, faces: 0.25)"),
       REAL("gamma", "80", "(0, inf)", "scale γ (paper, faces: 256)"),
       INT("detach", "1", "[0, 1]", "stop the gradient through α_p, α_n (paper: 1)")}},
     "features (N, D)", FEATURES, apply_circle_class, bind_circle_class},
    {{"triplet", "[d(a,p) − d(a,n) + margin]₊ over triplets mined in the batch",
      {REDUCTION_PARAM, REAL("margin", "1", "[0, inf)", "margin"),
       CHOICE("distance", "l2", "l2|cosine", "‖x − y + eps‖₂ or 1 − cos"),
       CHOICE("mining", "all", "all|hard", "batch all, or batch hard (Hermans et al. 2017)"),
       REAL("eps", "1e-6", "[0, inf)", "added to x − y in the L2 distance (PyTorch)")}},
     "features (N, D)", FEATURES, apply_triplet, NULL},
    {{"center", "(λ/2)·‖x_i − c_{y_i}‖², learnable centres (Wen et al. 2016); add it to a CE",
      {REDUCTION_PARAM, REAL("lambda", "0.003", "[0, inf)", "λ (the paper's face-recognition weight)")}},
     "features (N, D)", FEATURES, apply_center, bind_center},
};
static const int registry_count = (int)(sizeof registry / sizeof registry[0]);

/* Losses added at run time (ct_loss_register) follow the table: a fixed array, so a parsed
 * ct_loss keeps a valid entry pointer however many are added later. */
typedef struct {
    ct_loss_fn fn;
    ct_loss_apply_fn apply;
} added_fns;
static loss_entry added[CT_LOSS_MAX_REGISTERED];
static added_fns added_fn[CT_LOSS_MAX_REGISTERED];
static int added_count;

static const loss_entry *entry_at(int i) {
    if (i >= 0 && i < registry_count) return &registry[i];
    if (i >= registry_count && i < registry_count + added_count) return &added[i - registry_count];
    return NULL;
}

int ct_loss_count(void) { return registry_count + added_count; }
const char *ct_loss_name_at(int i) { return entry_at(i) ? entry_at(i)->spec.name : NULL; }

static int param_count(const loss_entry *e) {
    int k = 0;
    while (k < CT_SPEC_MAX_PARAMS && e->spec.params[k].key) k++;
    return k;
}

static int is_list(const ct_spec_param *p) { return p->kind == CT_SPEC_LIST || p->kind == CT_SPEC_VECTOR; }

/* 1 when key is one of the comma-separated words of keys */
static int among(const char *keys, const char *key) {
    const size_t n = strlen(key);
    for (const char *k = keys; k && *k;) {
        const char *comma = strchr(k, ',');
        const size_t len = comma ? (size_t)(comma - k) : strlen(k);
        if (len == n && !strncmp(k, key, n)) return 1;
        k = comma ? comma + 1 : k + len;
    }
    return 0;
}

/* LIST_ANY, LIST_PER_CLASS or LIST_ONE_OR_PER_CLASS for parameter k of e */
static int list_rule(const loss_entry *e, int k) {
    const char *key = e->spec.params[k].key;
    return among(e->per_class, key) ? LIST_PER_CLASS : among(e->one_or_per_class, key) ? LIST_ONE_OR_PER_CLASS : LIST_ANY;
}

/* ---- parsing ---------------------------------------------------------------------------------- */
/* The parsed values as apply and bind see them (ct_loss_args), and the lists in ct_real. */
static void fill_args(ct_loss *l) {
    const loss_entry *e = l->entry;
    l->args.name = e->spec.name;
    CT_CHECK(param_count(e) <= CT_LOSS_MAX_PARAMS, "ct_loss registry", "%s has more than %d parameters",
             e->spec.name, CT_LOSS_MAX_PARAMS);
    for (int k = 0; k < param_count(e); k++) {
        if (!is_list(&e->spec.params[k])) {
            l->args.value[k] = l->spec.num[k];
            continue;
        }
        const int n = l->spec.count[k], at = l->spec.start[k];
        for (int j = 0; j < n; j++) l->reals[at + j] = (ct_real)l->spec.values[at + j];
        l->args.length[k] = n;
        l->args.list[k] = n ? l->spec.values + at : NULL;
        l->args.list_real[k] = n ? l->reals + at : NULL;
    }
}

/* "counts=auto" pieces of a spec taken out (the spec parser reads numbers only): the spec without
 * them in out (len bytes), the parameters they named in *autos (bit k: parameter k). Only a per-class
 * parameter named counts takes auto; any other "=auto" is left for the parser to refuse. */
static void take_auto_counts(const loss_entry *e, const char *spec, char *out, size_t len, unsigned *autos) {
    *autos = 0;
    const char *colon = strchr(spec, ':');
    size_t used = (size_t)snprintf(out, len, "%.*s", (int)(colon - spec), spec);
    const char *p = colon + 1;
    int depth = 0, pieces = 0;
    for (const char *start = p;; p++) {
        if (*p == '[') depth++;
        if (*p == ']' && depth) depth--;
        if (*p && (*p != ',' || depth)) continue;
        const char *a = start, *b = p;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        int taken = 0;
        for (int k = 0; k < param_count(e) && !taken; k++) {
            const size_t n = strlen(e->spec.params[k].key);
            if (!strcmp(e->spec.params[k].key, "counts") && list_rule(e, k) == LIST_PER_CLASS &&
                (size_t)(b - a) == n + 5 && !strncmp(a, "counts=auto", n + 5))
                *autos |= 1u << k, taken = 1;
        }
        if (!taken && used < len)
            used += (size_t)snprintf(out + used, len - used, "%c%.*s", pieces++ ? ',' : ':', (int)(p - start), start);
        if (!*p) break;
        start = p + 1;
    }
}

static ct_loss *parse_spec(const char *spec) {
    if (!spec) {
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: spec is NULL");
        return NULL;
    }
    const char *colon = strchr(spec, ':');
    const size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const loss_entry *e = NULL;
    for (int i = 0; i < ct_loss_count() && !e; i++)
        if (strlen(entry_at(i)->spec.name) == name_len && !strncmp(entry_at(i)->spec.name, spec, name_len))
            e = entry_at(i);
    if (!e) {
        char names[2048] = "", word[64];
        const char *all[registry_count + CT_LOSS_MAX_REGISTERED];
        size_t used = 0;
        for (int i = 0; i < ct_loss_count(); i++) {
            all[i] = entry_at(i)->spec.name;
            if (used < sizeof names) used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", all[i]);
        }
        snprintf(word, sizeof word, "%.*s", (int)(name_len < 60 ? name_len : 60), spec);
        const char *near = ct_spec_nearest(word, all, ct_loss_count());
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: unknown loss '%s'%s%s%s; known losses: %s", word,
                     near ? " (did you mean " : "", near ? near : "", near ? "?)" : "", names);
        return NULL;
    }
    ct_loss *l = calloc(1, sizeof *l);
    if (!l) {
        ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
        return NULL;
    }
    l->entry = e;
    char *text = NULL;
    if (colon && strstr(colon, "=auto")) {
        const size_t len = strlen(spec) + 2;
        if (!(text = malloc(len))) {
            free(l);
            ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
            return NULL;
        }
        take_auto_counts(e, spec, text, len, &l->auto_counts);
    }
    /* the key=value part, by the spec parser every ctape spec goes through */
    const int parsed = ct_spec_parse("ct_loss_parse:", text ? text : spec, &e->spec, 1, &l->spec);
    free(text);
    if (parsed != CT_OK) {
        free(l);
        return NULL;
    }
    fill_args(l);
    return l;
}

ct_loss *ct_loss_parse(const char *spec) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    ct_loss *l = parse_spec(spec);
    ct_c_numbers_end(numbers);
    return l;
}

void ct_loss_free(ct_loss *loss) { free(loss); }

const char *ct_loss_name(const ct_loss *loss) { return loss ? loss->entry->spec.name : "(null)"; }

void ct_loss_describe(const ct_loss *loss, char *buf, size_t len) {
    if (!len) return;
    buf[0] = 0;
    if (!loss) return;
    ct_spec_describe(&loss->spec, buf, len);
    /* an auto parameter not filled in yet is empty in the spec: "counts=[]" reads "counts=auto" */
    for (int k = 0; loss->auto_counts && k < param_count(loss->entry); k++) {
        if (!(loss->auto_counts >> k & 1)) continue;
        char empty[80];
        snprintf(empty, sizeof empty, "%s=[]", loss->entry->spec.params[k].key);
        char *at = strstr(buf, empty);
        if (!at) continue;
        const size_t key = strlen(empty) - 2, rest = strlen(at + key + 2);
        if ((size_t)(at - buf) + key + 4 + rest + 1 > len) continue; /* no room: left as [] */
        memmove(at + key + 4, at + key + 2, rest + 1);
        memcpy(at + key, "auto", 4);
    }
}

void ct_loss_set_progress(ct_loss *loss, double p) {
    CT_CHECK(loss, "ct_loss_set_progress", "loss is NULL");
    CT_CHECK(p >= 0 && p <= 1, "ct_loss_set_progress", "%s: progress %g is outside [0, 1] (the fraction of training done)",
             loss->entry->spec.name, p);
    loss->args.progress = p;
}

int ct_loss_needs_counts(const ct_loss *loss) {
    CT_CHECK(loss, "ct_loss_needs_counts", "loss is NULL");
    return loss->auto_counts != 0;
}

/* Filled in by parsing the spec again with the counts in place of the empty list, so the values go
 * through the same range checks and messages as a spec that gave them. */
static int set_counts(ct_loss *loss, const double *counts, int classes) {
    if (!loss->auto_counts) return CT_OK;
    if (classes > CT_LOSS_MAX_VALUES)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_set_counts: %s: %d classes, at most %d", loss->entry->spec.name,
                            classes, CT_LOSS_MAX_VALUES);
    const size_t len = (size_t)CT_SPEC_MAX_LIST_VALUES * 26 + (size_t)classes * 26 * CT_LOSS_MAX_PARAMS + 4096;
    char *text = malloc(len), *out = malloc(len);
    if (!text || !out) {
        free(text), free(out);
        return ct_set_error(CT_ERR_MEMORY, "ct_loss_set_counts: out of memory");
    }
    ct_spec_describe(&loss->spec, text, len);
    for (int k = 0; k < param_count(loss->entry); k++) {
        if (!(loss->auto_counts >> k & 1)) continue;
        char empty[80];
        snprintf(empty, sizeof empty, "%s=[]", loss->entry->spec.params[k].key);
        char *at = strstr(text, empty);
        CT_CHECK(at, "ct_loss_set_counts", "%s: no %s in \"%.200s\"", loss->entry->spec.name, empty, text);
        size_t used = (size_t)snprintf(out, len, "%.*s=[", (int)(at - text + strlen(empty) - 3), text);
        for (int c = 0; c < classes; c++) used += (size_t)snprintf(out + used, len - used, "%s%.17g", c ? "," : "", counts[c]);
        snprintf(out + used, len - used, "]%s", at + strlen(empty));
        snprintf(text, len, "%s", out);
    }
    ct_loss *filled = parse_spec(text);
    free(text), free(out);
    if (!filled) {
        char why[600];
        snprintf(why, sizeof why, "%s", ct_last_error());
        return ct_set_error(CT_ERR_VALUE, "ct_loss_set_counts: %s", why);
    }
    loss->spec = filled->spec;
    loss->auto_counts = 0;
    free(filled);
    fill_args(loss);
    return CT_OK;
}

int ct_loss_set_counts(ct_loss *loss, const double *counts, int classes) {
    CT_CHECK(loss && classes >= 0 && (counts || !classes), "ct_loss_set_counts", "loss or counts is NULL, or classes = %d < 0",
             classes);
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const int rc = set_counts(loss, counts, classes);
    ct_c_numbers_end(numbers);
    return rc;
}

ct_eval_transform ct_loss_eval_transform(const ct_loss *loss) {
    CT_CHECK(loss, "ct_loss_eval_transform", "loss is NULL");
    return loss->entry->transform == CT_EVAL_AUTO ? CT_EVAL_SOFTMAX : loss->entry->transform;
}

static const char *transform_name(ct_eval_transform t) {
    return t == CT_EVAL_SIGMOID ? "sigmoid" : t == CT_EVAL_STABLEMAX ? "stablemax" : "softmax";
}

void ct_loss_list(FILE *out) {
    static const char *const kinds[] = {"real", "integer", "list", "choice", "list"};
    const ct_c_numbers numbers = ct_c_numbers_begin();
    for (int i = 0; i < ct_loss_count(); i++) {
        const loss_entry *e = entry_at(i);
        fprintf(out, "%s%s\n    %s\n    input: %s; ", e->spec.name, e->bind ? "  (learnable state: ct_loss_bind)" : "",
                e->spec.help, e->input);
        if (e->features) fprintf(out, "outputs features (evaluate with kNN accuracy or a linear probe)\n");
        else fprintf(out, "probabilities: %s\n", transform_name(e->transform));
        for (int k = 0; k < param_count(e); k++) {
            const ct_spec_param *p = &e->spec.params[k];
            const int rule = is_list(p) ? list_rule(e, k) : -1;
            const char *kind = rule < 0 ? kinds[p->kind] : rule == LIST_PER_CLASS ? "per class"
                               : rule == LIST_ONE_OR_PER_CLASS ? "one or per class" : "list";
            fprintf(out, "    %-16s %-16s = %-8s %-16s %s\n", p->key, kind, is_list(p) && !*p->def ? "[]" : p->def,
                    p->range, p->help);
        }
    }
    ct_c_numbers_end(numbers);
}

/* ---- per-class vectors against the classes ----------------------------------------------------- */
/* The first list of l whose length does not fit C classes (its index), or -1. */
static int misfit_list(const ct_loss *l, int classes) {
    const loss_entry *e = l->entry;
    for (int k = 0; k < param_count(e); k++) {
        const int n = l->spec.count[k], rule = is_list(&e->spec.params[k]) && n ? list_rule(e, k) : LIST_ANY;
        if ((rule == LIST_PER_CLASS && n != classes) || (rule == LIST_ONE_OR_PER_CLASS && n != 1 && n != classes))
            return k;
    }
    return -1;
}

static const char *fit_advice(const ct_loss *l, int k) {
    return list_rule(l->entry, k) == LIST_ONE_OR_PER_CLASS ? "give one value, or one per class"
                                                           : "give one value per class";
}

int ct_loss_bind(ct_loss *loss, ct_model *m, const char *name, int classes, int dim) {
    CT_CHECK(loss, "ct_loss_bind", "loss is NULL");
    const loss_entry *e = loss->entry;
    const int k = classes > 0 ? misfit_list(loss, classes) : -1;
    if (k >= 0)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: %s: %s has %d values for %d classes: %s", e->spec.name,
                            e->spec.params[k].key, loss->spec.count[k], classes, fit_advice(loss, k));
    if (!e->bind) return CT_OK;
    CT_CHECK(m && name, "ct_loss_bind", "%s: model or name is NULL", e->spec.name);
    if (loss->is_bound)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: %s is bound already (to %d classes of dim %d): parse the spec "
                            "again for another model", e->spec.name, loss->args.classes, loss->args.dim);
    if (classes <= 0 || dim < 0)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: %s: classes = %d must be positive and dim = %d not negative",
                            e->spec.name, classes, dim);
    ct_loss_args a = loss->args;
    a.classes = classes, a.dim = dim;
    memset(a.state, 0, sizeof a.state);
    const int rc = e->bind(m, name, &a);
    if (rc != CT_OK) return rc;
    memcpy(loss->args.state, a.state, sizeof a.state);
    loss->args.classes = classes, loss->args.dim = dim;
    loss->is_bound = 1;
    return CT_OK;
}

ct_tensor *ct_loss_apply(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels) {
    CT_CHECK(loss && tape && input, "ct_loss_apply", "loss, tape or input is NULL");
    const loss_entry *e = loss->entry;
    CT_CHECK(!e->bind || loss->is_bound, "ct_loss_apply",
             "%s has learnable state: call ct_loss_bind(loss, model, name, classes, dim) first", e->spec.name);
    CT_CHECK(!loss->auto_counts, "ct_loss_apply",
             "%s: counts=auto is not filled in: call ct_loss_set_counts(loss, counts, classes) with the training set's "
             "class counts first", e->spec.name);
    if (e->bind || input->ndim >= 1) {
        /* C: the classes the state was made for, else the logits' last dimension */
        const int classes = e->bind ? loss->args.classes : input->shape[input->ndim - 1];
        const int k = misfit_list(loss, classes);
        if (k >= 0) {
            if (e->bind)
                ct_fatal("ct_loss_apply", "%s: %s has %d values for the %d classes given to ct_loss_bind: %s",
                         e->spec.name, e->spec.params[k].key, loss->spec.count[k], classes, fit_advice(loss, k));
            ct_fatal("ct_loss_apply", "%s: %s has %d values for C = %d classes (input %s): %s", e->spec.name,
                     e->spec.params[k].key, loss->spec.count[k], classes, ct_shp(input), fit_advice(loss, k));
        }
    }
    ct_tensor *out = e->apply(tape, loss, input, labels);
    CT_CHECK(out, "ct_loss_apply", "%s returned NULL", e->spec.name);
    return out;
}

/* ---- losses added at run time ---------------------------------------------------------------- */
/* The apply of every added entry: the user's fn (the numbers) or apply (ct_loss_args). */
static ct_tensor *apply_added(ct_tape *tape, ct_loss *l, ct_tensor *input, ct_labels labels) {
    const added_fns *f = &added_fn[l->entry - added];
    return f->apply ? f->apply(tape, input, labels, &l->args) : f->fn(tape, input, labels, l->args.value);
}

/* The kind a registered parameter's range names by its first words ("integer [0, 9]", "list [0, inf)",
 * "per class [1, inf)", "a|b", "[0, 1]"); *range is what follows them. -1 for none of these. */
static int param_kind(const char *text, const char **range, int *per_class) {
    static const struct {
        const char *word;
        ct_spec_kind kind;
        int per_class;
    } words[] = {{"integer ", CT_SPEC_INT, 0}, {"list ", CT_SPEC_VECTOR, 0}, {"per class ", CT_SPEC_VECTOR, 1}};
    *range = text, *per_class = 0;
    if (!text) return -1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strncmp(text, words[i].word, strlen(words[i].word))) {
            *range = text + strlen(words[i].word);
            *per_class = words[i].per_class;
            return words[i].kind;
        }
    if (*text == '[' || *text == '(') return CT_SPEC_REAL;
    return strpbrk(text, "[(") ? -1 : CT_SPEC_CHOICE; /* words, "mean|sum" (malformed ones: ct_spec_check_entry) */
}

/* The per-class keys of the added losses, "counts,weight" (a loss_entry borrows its string). */
static char added_per_class[CT_LOSS_MAX_REGISTERED][CT_LOSS_MAX_PARAMS * 64];

static int register_loss(const ct_loss_def *def) {
    if (!def || !def->name || !*def->name)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: the definition or its name is NULL");
    for (const char *c = def->name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: name \"%.60s\": only letters, digits and '_'",
                                def->name);
    if (!def->fn == !def->apply)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: give fn (numbers only) or apply (ct_loss_args), "
                            "one of them; it has %s", def->name, def->fn ? "both" : "neither");
    for (int i = 0; i < ct_loss_count(); i++)
        if (!strcmp(entry_at(i)->spec.name, def->name))
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: a loss named %s is already registered", def->name);
    if (added_count == CT_LOSS_MAX_REGISTERED)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: %d losses are registered already (the most)",
                            def->name, CT_LOSS_MAX_REGISTERED);
    if ((unsigned)def->transform > CT_EVAL_STABLEMAX)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: transform %d is not a ct_eval_transform", def->name,
                            (int)def->transform);
    char *per_class = added_per_class[added_count];
    per_class[0] = 0;
    loss_entry e = {{def->name, def->formula ? def->formula : "", {{0}}}, def->input ? def->input : "",
                    def->transform, 0, per_class, NULL, apply_added, def->bind};
    for (int k = 0; k < CT_LOSS_MAX_PARAMS - 1 && def->params[k].key; k++) {
        const ct_loss_param *p = &def->params[k];
        const char *range;
        int one_per_class;
        const int kind = param_kind(p->range, &range, &one_per_class);
        if (kind < 0)
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: %s: malformed range \"%.60s\" (give \"[lo, hi]\", "
                                "\"integer [lo, hi]\", \"list [lo, hi]\", \"per class [lo, hi]\" or \"a|b|c\")",
                                def->name, p->key, p->range ? p->range : "(null)");
        if (kind == CT_SPEC_VECTOR && def->fn)
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: %s is a list: give apply, whose ct_loss_args "
                                "carry lists (fn gets numbers only)", def->name, p->key);
        if (strlen(p->key) > 60)
            return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: key \"%.60s...\" is longer than 60 characters",
                                def->name, p->key);
        if (one_per_class) strcat(strcat(per_class, *per_class ? "," : ""), p->key);
        e.spec.params[k] = (ct_spec_param){p->key, (ct_spec_kind)kind, p->def ? p->def : "", range, p->help ? p->help : ""};
    }
    if (def->params[CT_LOSS_MAX_PARAMS - 1].key)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_register: %s: at most %d parameters", def->name,
                            CT_LOSS_MAX_PARAMS - 1);
    /* keys, ranges and defaults checked as the spec parser will read them */
    const int status = ct_spec_check_entry("ct_loss_register:", &e.spec);
    if (status != CT_OK) return status;
    added[added_count] = e;
    added_fn[added_count] = (added_fns){def->fn, def->apply};
    added_count++;
    return CT_OK;
}

int ct_loss_register(const ct_loss_def *def) {
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const int rc = register_loss(def);
    ct_c_numbers_end(numbers);
    return rc;
}
