/* tests/losses/test_loss_embedding_fused.c — the fused SupCon / NT-Xent and Circle losses
 * (losses/embedding_similarity.c, one tape node each with a closed-form backward) and the mined
 * triplet loss (losses/embedding_distance.c: fused pairwise L2 distances and batch-all hinge)
 * against their composed forms in the library (ct_*_reference), which the tape differentiates
 * without help. Values and gradients must agree to the float precision on random
 * inputs: V = 1, 2, 3, a class of one sample, no labels (NT-Xent), an anchor without a negative,
 * every reduction, detached and differentiated Circle weights, extreme feature scales (normalised
 * rows below the 1e-12 clamp too), batches large enough to split the rows among the threads.
 * Also: one node per loss, the same value without grad, a second backward adds the same gradient,
 * and float64 gradient checks of the paths tests/losses/test_loss_embedding.c does not reach. */
#include "../test.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- fused vs the library's reference ------------------------------------------------------------------------------ */
#ifdef CT_PRECISION_64
#define VALUE_RTOL 1e-11
#define GRAD_RTOL 1e-10 /* of the largest gradient element */
#else
#define VALUE_RTOL 2e-5
#define GRAD_RTOL 2e-5
#endif

typedef enum { SUPCON, CIRCLE, CIRCLE_CLASS, TRIPLET } loss_kind;

typedef struct {
    const char *name;
    loss_kind kind;
    ct_shape shape;      /* features */
    int classes;         /* labels drawn from [0, classes); 0: NT-Xent (no labels) */
    double scale;        /* features ~ N(0, scale²) */
    ct_supcon_opts supcon;
    ct_circle_opts circle;
    ct_triplet_opts triplet;
    const int *labels;   /* explicit labels instead of random ones */
    int proxies_fixed;   /* class form: the proxies take no gradient */
    int equal_rows;      /* every feature row the same (triplets: distances eps·√D only) */
} fused_case;

static void fill_normal(ct_tensor *t, uint64_t seed, double scale) {
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)(scale * ct_rng_normal(&rng, 0, 1));
}

static ct_tensor *input(ct_tape *tape, ct_shape shape, uint64_t seed, double scale, int grad) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    fill_normal(t, seed, scale);
    if (grad) ct_tape_requires_grad(tape, t);
    return t;
}

/* One loss, fused or the reference (composed), on fresh inputs from the case's seed; x[0] features, x[1] proxies. */
static ct_tensor *run_case(ct_tape *tape, const fused_case *c, int *labels, int composed, ct_tensor **x) {
    const int N = c->shape.d[0];
    const ct_labels l = CT_LABELS(c->classes ? labels : NULL, c->classes ? N : 0);
    x[0] = input(tape, c->shape, 7, c->scale, 1);
    x[1] = NULL;
    if (c->equal_rows)
        for (size_t i = 0; i < x[0]->size; i++) x[0]->data[i] = x[0]->data[i % (size_t)c->shape.d[1]];
    switch (c->kind) {
    case TRIPLET:
        return composed ? ct_triplet_mined_loss_reference(tape, x[0], l, c->triplet)
                        : ct_triplet_mined_loss(tape, x[0], l, c->triplet);
    case SUPCON:
        return composed ? ct_supcon_loss_reference(tape, x[0], l, c->supcon) : ct_supcon_loss(tape, x[0], l, c->supcon);
    case CIRCLE:
        return composed ? ct_circle_loss_reference(tape, x[0], l, c->circle) : ct_circle_loss(tape, x[0], l, c->circle);
    default:
        x[1] = input(tape, CT_SHAPE(c->classes, c->shape.d[1]), 8, 1, !c->proxies_fixed);
        return composed ? ct_circle_class_loss_reference(tape, x[0], x[1], l, c->circle)
                        : ct_circle_class_loss(tape, x[0], x[1], l, c->circle);
    }
}

/* Compares values (every element for none) and gradients; writes the worst relative errors. */
static int compare_case(const fused_case *c, double *worst_value, double *worst_grad, char *why, size_t len) {
    const int N = c->shape.d[0];
    int labels[1024];
    ct_rng rng;
    ct_rng_seed(&rng, 99);
    for (int i = 0; i < N; i++) labels[i] = c->labels ? c->labels[i] : c->classes ? (int)ct_rng_int(&rng, 0, c->classes) : 0;
    ct_tape *tf = ct_tape_new(), *tc = ct_tape_new();
    ct_tensor *xf[2], *xc[2];
    ct_tensor *lf = run_case(tf, c, labels, 0, xf), *lc = run_case(tc, c, labels, 1, xc);
    int ok = lf->size == lc->size && lf->ndim == lc->ndim;
    if (!ok) snprintf(why, len, "%s: fused %s, composed %zu values", c->name, lf->ndim ? "(none)" : "()", lc->size);
    ct_real cot[1024];
    for (size_t i = 0; ok && i < lf->size; i++) {
        const double f = lf->data[i], r = lc->data[i], err = fabs(f - r) / fmax(fabs(r), 1);
        *worst_value = fmax(*worst_value, err);
        if (!(err <= VALUE_RTOL)) {
            snprintf(why, len, "%s: loss[%zu] fused %.10g, composed %.10g", c->name, i, f, r);
            ok = 0;
        }
        cot[i] = (ct_real)(1 + 0.25 * (double)(i % 4)); /* unequal weights for none */
    }
    if (ok) {
        ct_backward_with(tf, lf, cot);
        ct_backward_with(tc, lc, cot);
    }
    for (int k = 0; ok && k < 2 && xc[k]; k++) {
        if (c->proxies_fixed && k == 1) {
            ok = xf[1]->grad == NULL;
            if (!ok) snprintf(why, len, "%s: fixed proxies got a gradient", c->name);
            break;
        }
        double top = 0;
        for (size_t i = 0; i < xc[k]->size; i++) top = fmax(top, fabs(xc[k]->grad[i]));
        for (size_t i = 0; ok && i < xc[k]->size; i++) {
            const double g = xf[k]->grad ? xf[k]->grad[i] : 0, r = xc[k]->grad[i];
            const double err = fabs(g - r) / fmax(top, 1e-30);
            *worst_grad = top > 0 ? fmax(*worst_grad, err) : *worst_grad;
            if (!(top > 0 ? err <= GRAD_RTOL : g == 0)) {
                snprintf(why, len, "%s: d input %d [%zu] fused %.10g, composed %.10g (largest %.3g)", c->name, k, i, g,
                         r, top);
                ok = 0;
            }
        }
    }
    ct_tape_free(tf);
    ct_tape_free(tc);
    return ok;
}

#define MEAN CT_REDUCTION_MEAN
#define SUM CT_REDUCTION_SUM
#define NONE CT_REDUCTION_NONE

static const int singleton_y[] = {0, 1, 0, 2, 1, 3, 0, 1}; /* classes 2 and 3: one sample each */
static const int one_class_y[] = {4, 4, 4, 4, 4, 4};        /* Circle: no anchor has a negative */
static const int mixed_y[] = {0, 0, 0, 0, 0, 1, 1};          /* two classes of 5 and 2 */
static const int lonely_y[] = {0, 0, 1, 1, 2, 5};            /* 2 and 5 alone: anchors without positives */


CT_TEST(losses, embedding_fused_match_reference) {
    /* a table in the test body: CT_SUPCON() and CT_CIRCLE() are statement expressions */
#define SUP(name_, shape_, classes_, scale_, ...) \
    {.name = name_, .kind = SUPCON, .shape = shape_, .classes = classes_, .scale = scale_, __VA_ARGS__}
#define CIR(name_, kind_, shape_, classes_, scale_, ...) \
    {.name = name_, .kind = kind_, .shape = shape_, .classes = classes_, .scale = scale_, __VA_ARGS__}
#define TRI(name_, shape_, classes_, scale_, ...) \
    {.name = name_, .kind = TRIPLET, .shape = shape_, .classes = classes_, .scale = scale_, __VA_ARGS__}
    const fused_case cases[] = {
        /* SupCon / NT-Xent */
        SUP("supcon V=1 (N,D) mean", CT_SHAPE(12, 6), 3, 1, .supcon = CT_SUPCON()),
        SUP("supcon V=1 (N,1,D) none", CT_SHAPE(12, 1, 6), 3, 1, .supcon = CT_SUPCON(.reduction = NONE)),
        SUP("supcon V=2 mean", CT_SHAPE(10, 2, 5), 4, 1, .supcon = CT_SUPCON()),
        SUP("supcon V=2 sum tau 0.5", CT_SHAPE(10, 2, 5), 4, 1,
            .supcon = CT_SUPCON(.reduction = SUM, .temperature = 0.5, .base_temperature = 0.07)),
        SUP("supcon V=3 none", CT_SHAPE(6, 3, 4), 2, 1, .supcon = CT_SUPCON(.reduction = NONE)),
        SUP("supcon class of one, V=1 none", CT_SHAPE(8, 4), 4, 1, .supcon = CT_SUPCON(.reduction = NONE),
            .labels = singleton_y),
        SUP("supcon class of one, V=1 mean", CT_SHAPE(8, 4), 4, 1, .supcon = CT_SUPCON(), .labels = singleton_y),
        SUP("supcon class of one, V=2", CT_SHAPE(8, 2, 4), 4, 1, .supcon = CT_SUPCON(), .labels = singleton_y),
        SUP("supcon unnormalised", CT_SHAPE(9, 2, 4), 3, 0.5,
            .supcon = CT_SUPCON(.normalize = 0, .temperature = 1, .base_temperature = 1)),
        SUP("ntxent V=2", CT_SHAPE(8, 2, 6), 0, 1, .supcon = CT_SUPCON(.temperature = 0.5, .base_temperature = 0.5)),
        SUP("ntxent V=2 none", CT_SHAPE(8, 2, 6), 0, 1, .supcon = CT_SUPCON(.reduction = NONE)),
        SUP("ntxent V=1 (no positive)", CT_SHAPE(5, 4), 0, 1, .supcon = CT_SUPCON()),
        SUP("supcon one anchor", CT_SHAPE(1, 1, 3), 1, 1, .supcon = CT_SUPCON()),
        SUP("supcon scale 1e4", CT_SHAPE(10, 2, 5), 3, 1e4, .supcon = CT_SUPCON()),
        SUP("supcon scale 1e-4", CT_SHAPE(10, 2, 5), 3, 1e-4, .supcon = CT_SUPCON()),
        SUP("supcon below the norm clamp", CT_SHAPE(10, 2, 5), 3, 1e-14, .supcon = CT_SUPCON()),
        SUP("supcon unnormalised scale 30", CT_SHAPE(10, 5), 3, 30, .supcon = CT_SUPCON(.normalize = 0)),
        SUP("supcon M=300 D=1500 (rows split among threads)", CT_SHAPE(150, 2, 1500), 10, 1, .supcon = CT_SUPCON()),
        SUP("supcon M=300 D=1500 none", CT_SHAPE(150, 2, 1500), 10, 1, .supcon = CT_SUPCON(.reduction = NONE)),
        /* Circle, pair form */
        CIR("circle mean", CIRCLE, CT_SHAPE(12, 5), 3, 1, .circle = CT_CIRCLE()),
        CIR("circle sum, the paper's face setting", CIRCLE, CT_SHAPE(12, 5), 3, 1,
            .circle = CT_CIRCLE(.reduction = SUM, .m = 0.25, .gamma = 256)),
        CIR("circle none", CIRCLE, CT_SHAPE(12, 5), 3, 1, .circle = CT_CIRCLE(.reduction = NONE)),
        CIR("circle undetached", CIRCLE, CT_SHAPE(12, 5), 3, 1, .circle = CT_CIRCLE(.gamma = 8, .detach_weights = 0)),
        CIR("circle undetached none", CIRCLE, CT_SHAPE(12, 5), 3, 1,
            .circle = CT_CIRCLE(.reduction = NONE, .detach_weights = 0)),
        CIR("circle anchors without positives", CIRCLE, CT_SHAPE(6, 4), 6, 1, .circle = CT_CIRCLE(.reduction = NONE),
            .labels = lonely_y),
        CIR("circle anchors without positives, mean", CIRCLE, CT_SHAPE(6, 4), 6, 1, .circle = CT_CIRCLE(),
            .labels = lonely_y),
        CIR("circle no negative", CIRCLE, CT_SHAPE(6, 4), 5, 1, .circle = CT_CIRCLE(), .labels = one_class_y),
        CIR("circle no negative none", CIRCLE, CT_SHAPE(6, 4), 5, 1, .circle = CT_CIRCLE(.reduction = NONE),
            .labels = one_class_y),
        CIR("circle m 0", CIRCLE, CT_SHAPE(7, 3), 2, 1, .circle = CT_CIRCLE(.m = 0, .gamma = 16), .labels = mixed_y),
        CIR("circle m 1", CIRCLE, CT_SHAPE(7, 3), 2, 1, .circle = CT_CIRCLE(.m = 1, .gamma = 16, .reduction = NONE),
            .labels = mixed_y),
        CIR("circle scale 1e4", CIRCLE, CT_SHAPE(12, 5), 3, 1e4, .circle = CT_CIRCLE()),
        CIR("circle scale 1e-4", CIRCLE, CT_SHAPE(12, 5), 3, 1e-4, .circle = CT_CIRCLE()),
        CIR("circle below the norm clamp", CIRCLE, CT_SHAPE(12, 5), 3, 1e-14, .circle = CT_CIRCLE(.gamma = 4)),
        CIR("circle N=300 D=1500 (rows split among threads)", CIRCLE, CT_SHAPE(300, 1500), 10, 1, .circle = CT_CIRCLE()),
        CIR("circle N=300 D=1500 none undetached", CIRCLE, CT_SHAPE(300, 1500), 10, 1,
            .circle = CT_CIRCLE(.reduction = NONE, .detach_weights = 0)),
        /* Circle, class form */
        CIR("circle class mean", CIRCLE_CLASS, CT_SHAPE(10, 5), 4, 1, .circle = CT_CIRCLE()),
        CIR("circle class sum undetached", CIRCLE_CLASS, CT_SHAPE(10, 5), 4, 1,
            .circle = CT_CIRCLE(.reduction = SUM, .gamma = 8, .detach_weights = 0)),
        CIR("circle class none, the face setting", CIRCLE_CLASS, CT_SHAPE(10, 5), 4, 1,
            .circle = CT_CIRCLE(.reduction = NONE, .m = 0.25, .gamma = 256)),
        CIR("circle class, fixed proxies", CIRCLE_CLASS, CT_SHAPE(10, 5), 4, 1, .circle = CT_CIRCLE(),
            .proxies_fixed = 1),
        CIR("circle class, 2 classes", CIRCLE_CLASS, CT_SHAPE(7, 3), 2, 1, .circle = CT_CIRCLE(), .labels = mixed_y),
        CIR("circle class scale 1e4", CIRCLE_CLASS, CT_SHAPE(10, 5), 4, 1e4, .circle = CT_CIRCLE()),
        CIR("circle class N=1000 C=100 D=1400 (rows split)", CIRCLE_CLASS, CT_SHAPE(1000, 1400), 100, 1,
            .circle = CT_CIRCLE(.reduction = NONE)),
        /* triplet, mined (fused pairwise L2 distances and batch-all hinge) */
        TRI("batch all L2 mean", CT_SHAPE(14, 5), 3, 1, .triplet = CT_TRIPLET()),
        TRI("batch all L2 sum margin 0.3", CT_SHAPE(14, 5), 3, 1, .triplet = CT_TRIPLET(.reduction = SUM, .margin = 0.3)),
        TRI("batch all L2 none", CT_SHAPE(14, 5), 3, 1, .triplet = CT_TRIPLET(.reduction = NONE)),
        TRI("batch all L2 margin 0", CT_SHAPE(14, 5), 3, 1, .triplet = CT_TRIPLET(.margin = 0)),
        TRI("batch all cosine none", CT_SHAPE(14, 5), 3, 1,
            .triplet = CT_TRIPLET(.reduction = NONE, .distance = CT_DISTANCE_COSINE, .margin = 0.2)),
        TRI("batch all, classes of one", CT_SHAPE(6, 4), 6, 1, .triplet = CT_TRIPLET(), .labels = lonely_y),
        TRI("batch all, one class", CT_SHAPE(6, 4), 5, 1, .triplet = CT_TRIPLET(), .labels = one_class_y),
        TRI("batch all, equal rows", CT_SHAPE(6, 4), 3, 1, .triplet = CT_TRIPLET(), .labels = lonely_y, .equal_rows = 1),
        TRI("batch all scale 1e3", CT_SHAPE(14, 5), 3, 1e3, .triplet = CT_TRIPLET()),
        TRI("batch all N=64 D=32", CT_SHAPE(64, 32), 6, 1, .triplet = CT_TRIPLET()),
        TRI("batch hard L2 mean", CT_SHAPE(14, 5), 3, 1, .triplet = CT_TRIPLET(.mining = CT_MINING_BATCH_HARD)),
        TRI("batch hard L2 none", CT_SHAPE(14, 5), 3, 1,
            .triplet = CT_TRIPLET(.reduction = NONE, .mining = CT_MINING_BATCH_HARD)),
        TRI("batch hard cosine sum", CT_SHAPE(14, 5), 3, 1,
            .triplet = CT_TRIPLET(.reduction = SUM, .mining = CT_MINING_BATCH_HARD, .distance = CT_DISTANCE_COSINE)),
        TRI("batch hard, classes of one", CT_SHAPE(6, 4), 6, 1,
            .triplet = CT_TRIPLET(.mining = CT_MINING_BATCH_HARD, .reduction = NONE), .labels = lonely_y),
    };
#undef SUP
#undef CIR
#undef TRI
    const int n = (int)(sizeof cases / sizeof cases[0]);
    double worst_value = 0, worst_grad = 0;
    char why[512];
    for (int i = 0; i < n; i++) CHECK(compare_case(&cases[i], &worst_value, &worst_grad, why, sizeof why), "%s", why);
    ct_test_note("%d cases, worst rel err: loss %.1e, gradient %.1e", n, worst_value, worst_grad);
}

/* ---- the node, no-grad mode, a repeated backward --------------------------------------------------------- */
CT_TEST(losses, embedding_fused_are_one_node) {
    const int y[] = {0, 1, 0, 1, 2, 2};
    ct_tape *tape = ct_tape_new();
    const char *names[] = {"supcon", "supcon", "circle", "circle_class"};
    for (int kind = 0; kind < 4; kind++) {
        ct_tape_reset(tape);
        ct_tensor *x = input(tape, kind == 1 ? CT_SHAPE(6, 2, 4) : CT_SHAPE(6, 4), 3, 1, 1);
        ct_tensor *p = input(tape, CT_SHAPE(3, 4), 4, 1, 1);
        ct_tensor *loss = kind < 2   ? ct_supcon_loss(tape, x, CT_LABELS(y, 6), CT_SUPCON())
                          : kind < 3 ? ct_circle_loss(tape, x, CT_LABELS(y, 6), CT_CIRCLE())
                                     : ct_circle_class_loss(tape, x, p, CT_LABELS(y, 6), CT_CIRCLE());
        CHECK(ct_tape_node_count(tape) == 1, "%s: %d nodes", names[kind], ct_tape_node_count(tape));
        CHECK(!strcmp(ct_tape_node(tape, 0)->op->name, names[kind]), "node '%s'", ct_tape_node(tape, 0)->op->name);
        CHECK(loss->ndim == 0);
    }
    ct_tape_free(tape);
}

/* The fused losses run their GEMMs on one thread by setting OpenMP's thread count inside their
 * own (possibly one-thread) parallel region; the caller's setting must be untouched after them. */
CT_TEST(losses, embedding_fused_leave_the_thread_count_alone) {
#ifndef _OPENMP
    CT_SKIP("built without OpenMP");
#else
    const int y[] = {0, 1, 0, 1, 2, 2};
    const int before = omp_get_max_threads();
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = input(tape, CT_SHAPE(6, 4), 3, 1, 1);
    ct_backward(tape, ct_supcon_loss(tape, x, CT_LABELS(y, 6), CT_SUPCON()));
    ct_backward(tape, ct_circle_loss(tape, x, CT_LABELS(y, 6), CT_CIRCLE()));
    ct_tape_free(tape);
    CHECK(omp_get_max_threads() == before, "%d threads before, %d after", before, omp_get_max_threads());
#endif
}

CT_TEST(losses, embedding_fused_same_value_without_grad) {
    const int y[] = {0, 1, 0, 1, 2, 2, 0, 1};
    ct_tape *tape = ct_tape_new();
    for (int kind = 0; kind < 3; kind++) {
        ct_real value[2];
        for (int grad = 0; grad < 2; grad++) {
            ct_tape_reset(tape);
            int was = ct_tape_grad_enabled(tape, grad);
            ct_tensor *x = input(tape, CT_SHAPE(8, 5), 5, 1, 1);
            ct_tensor *p = input(tape, CT_SHAPE(3, 5), 6, 1, 1);
            ct_tensor *loss = kind == 0   ? ct_supcon_loss(tape, x, CT_LABELS(y, 8), CT_SUPCON())
                              : kind == 1 ? ct_circle_loss(tape, x, CT_LABELS(y, 8), CT_CIRCLE())
                                          : ct_circle_class_loss(tape, x, p, CT_LABELS(y, 8), CT_CIRCLE());
            value[grad] = loss->data[0];
            CHECK(ct_tape_node_count(tape) == grad);
            ct_tape_grad_enabled(tape, was);
        }
        CHECK(value[0] == value[1], "loss %d: %.9g without grad, %.9g with", kind, (double)value[0], (double)value[1]);
    }
    ct_tape_free(tape);
}

/* The backward reads what the forward saved without changing it: a second backward adds the same
 * gradient again. */
CT_TEST(losses, embedding_fused_second_backward_adds_the_same) {
    const int y[] = {0, 1, 0, 1, 2, 2, 0, 1};
    ct_tape *tape = ct_tape_new();
    for (int kind = 0; kind < 4; kind++) {
        ct_tape_reset(tape);
        ct_tensor *x = input(tape, CT_SHAPE(8, 5), 5, 1, 1);
        ct_tensor *p = input(tape, CT_SHAPE(3, 5), 6, 1, 1);
        ct_tensor *loss = kind == 0   ? ct_supcon_loss(tape, x, CT_LABELS(y, 8), CT_SUPCON())
                          : kind == 1 ? ct_supcon_loss(tape, x, CT_LABELS(y, 8), CT_SUPCON(.reduction = NONE))
                          : kind == 2 ? ct_circle_loss(tape, x, CT_LABELS(y, 8), CT_CIRCLE())
                                      : ct_circle_class_loss(tape, x, p, CT_LABELS(y, 8), CT_CIRCLE());
        ct_real cot[8] = {1, 2, 3, 4, 5, 6, 7, 8}, once[40];
        ct_backward_with(tape, loss, cot);
        memcpy(once, x->grad, sizeof once);
        memset(loss->grad, 0, loss->size * sizeof *loss->grad); /* the seed accumulates too */
        ct_backward_with(tape, loss, cot);
        for (int i = 0; i < 40; i++)
            CHECK_NEAR(x->grad[i], 2 * once[i], 1e-6 * fabs(once[i]) + 1e-30, 0);
    }
    ct_tape_free(tape);
}

/* ---- gradient checks of the fused backward (float64) ----------------------------------------------------------
 * tests/losses/test_loss_embedding.c checks every mode on small batches; these add batches of 130 anchors
 * (the row tiles of dS + dSᵀ cut in the middle of a tile) and per-anchor weights with V = 2. */
CT_GRADCHECK_COVERS(supcon)
CT_GRADCHECK_COVERS(circle)
CT_GRADCHECK_COVERS(circle_class)
/* pairwise_l2 and triplet_batch_all: gradcheck/triplet_batch_all, triplet_batch_hard and their
 * none/cosine variants in tests/losses/test_loss_embedding.c */
CT_GRADCHECK_COVERS(pairwise_l2)
CT_GRADCHECK_COVERS(triplet_batch_all)

typedef struct {
    loss_kind kind;
    const int *labels;
    int n;
    ct_supcon_opts supcon;
    ct_circle_opts circle;
    ct_triplet_opts triplet;
    int reference; /* check the library's composed reference instead of the fused loss */
} fused_check;

#ifdef CT_PRECISION_64
static ct_tensor *fused_check_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const fused_check *c = ctx;
    ct_labels l = CT_LABELS(c->labels, c->labels ? c->n : 0);
    if (c->reference) switch (c->kind) {
        case SUPCON: return ct_supcon_loss_reference(tape, in[0], l, c->supcon);
        case CIRCLE: return ct_circle_loss_reference(tape, in[0], l, c->circle);
        case TRIPLET: return ct_triplet_mined_loss_reference(tape, in[0], l, c->triplet);
        default: return ct_circle_class_loss_reference(tape, in[0], in[1], l, c->circle);
        }
    switch (c->kind) {
    case SUPCON: return ct_supcon_loss(tape, in[0], l, c->supcon);
    case CIRCLE: return ct_circle_loss(tape, in[0], l, c->circle);
    case TRIPLET: return ct_triplet_mined_loss(tape, in[0], l, c->triplet);
    default: return ct_circle_class_loss(tape, in[0], in[1], l, c->circle);
    }
}
#endif

static void fused_gradcheck(fused_check c, ct_shape shape0, ct_shape shape1) {
#ifndef CT_PRECISION_64
    (void)c, (void)shape0, (void)shape1;
    CT_SKIP("gradient checks run in the float64 build");
#else
    const int n_in = c.kind == CIRCLE_CLASS ? 2 : 1;
    ct_tensor *in[2];
    for (int k = 0; k < n_in; k++) {
        in[k] = ct_tensor_new_grad(k == 0 ? shape0 : shape1);
        fill_normal(in[k], 61 + (uint64_t)k, 0.8);
    }
    ct_gradcheck_result r = ct_gradcheck(fused_check_fn, &c, in, n_in, CT_GRADCHECK());
    char msg[256];
    ct_gradcheck_describe(&r, msg, sizeof msg);
    for (int k = 0; k < n_in; k++) ct_tensor_free(in[k]);
    CHECK(r.passed && r.checked > 0, "%s", msg);
    ct_test_note("%s", msg);
#endif
}

static int labels_mod[256];
static const int *labels_mod_k(int n, int k) { /* i·7 mod k for the first n samples */
    for (int i = 0; i < n && i < (int)(sizeof labels_mod / sizeof labels_mod[0]); i++) labels_mod[i] = (i * 7) % k;
    return labels_mod;
}

CT_TEST(gradcheck, supcon_fused_v2_none_132_anchors) {
    fused_gradcheck((fused_check){SUPCON, labels_mod_k(66, 5), 66, .supcon = CT_SUPCON(.reduction = NONE, .temperature = 0.5)},
                    CT_SHAPE(66, 2, 3), CT_SHAPE(1));
}
CT_TEST(gradcheck, ntxent_fused_v2_132_anchors) {
    fused_gradcheck((fused_check){SUPCON, NULL, 0, .supcon = CT_SUPCON(.temperature = 0.5)}, CT_SHAPE(66, 2, 3), CT_SHAPE(1));
}
CT_TEST(gradcheck, circle_fused_130_anchors) {
    fused_gradcheck((fused_check){CIRCLE, labels_mod_k(130, 6), 130, .circle = CT_CIRCLE(.gamma = 4, .detach_weights = 0)},
                    CT_SHAPE(130, 3), CT_SHAPE(1));
}
CT_TEST(gradcheck, circle_class_fused_none) {
    fused_gradcheck((fused_check){CIRCLE_CLASS, labels_mod_k(9, 4), 9,
                                  .circle = CT_CIRCLE(.reduction = NONE, .gamma = 8, .detach_weights = 0)},
                    CT_SHAPE(9, 4), CT_SHAPE(4, 4));
}

/* The references themselves, differentiated by the tape (Circle with its weights differentiated:
 * the detached gradient is not the derivative of the value). */
CT_TEST(gradcheck, embedding_references) {
    fused_gradcheck((fused_check){SUPCON, labels_mod_k(6, 3), 6, .supcon = CT_SUPCON(.temperature = 0.5), .reference = 1},
                    CT_SHAPE(6, 2, 3), CT_SHAPE(1));
    fused_gradcheck((fused_check){SUPCON, NULL, 0, .supcon = CT_SUPCON(.reduction = NONE, .temperature = 0.5),
                                  .reference = 1},
                    CT_SHAPE(5, 2, 3), CT_SHAPE(1));
    fused_gradcheck((fused_check){CIRCLE, labels_mod_k(8, 3), 8, .circle = CT_CIRCLE(.gamma = 4, .detach_weights = 0),
                                  .reference = 1},
                    CT_SHAPE(8, 3), CT_SHAPE(1));
    fused_gradcheck((fused_check){CIRCLE_CLASS, labels_mod_k(7, 4), 7,
                                  .circle = CT_CIRCLE(.reduction = SUM, .gamma = 8, .detach_weights = 0), .reference = 1},
                    CT_SHAPE(7, 4), CT_SHAPE(4, 4));
    fused_gradcheck((fused_check){TRIPLET, labels_mod_k(8, 3), 8, .triplet = CT_TRIPLET(.margin = 2), .reference = 1},
                    CT_SHAPE(8, 3), CT_SHAPE(1));
    fused_gradcheck((fused_check){TRIPLET, labels_mod_k(8, 3), 8,
                                  .triplet = CT_TRIPLET(.reduction = NONE, .distance = CT_DISTANCE_COSINE, .margin = 0.5),
                                  .reference = 1},
                    CT_SHAPE(8, 3), CT_SHAPE(1));
}
