/* tests/losses/test_loss_lab.c — the loss lab's hooks in the registry: training progress (tsla: label
 * smoothing for the first part of training, bit for bit cross_entropy's op in each phase), logit-adjusted
 * cross-entropy (PyTorch reference, float64 gradient check, the metrics on plain logits) and per-class
 * counts given as "auto" and filled in from the data (ct_loss_set_counts). */
#include "../test.h"
#include "../reference/logit_adjusted_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-9
#define REF_ATOL 1e-11
#else
#define REF_RTOL 2e-4
#define REF_ATOL 2e-5
#endif

static void fill_logits(ct_tensor *z, double scale) {
    for (size_t k = 0; k < z->size; k++) z->data[k] = (ct_real)(scale * sin(1.3 * (double)k + 0.4));
}

/* The loss and the gradient it leaves on z (a heap leaf), applied by spec at a progress. */
static void loss_and_grad(const char *spec, double progress, ct_tensor *z, ct_labels y, ct_real *value, ct_real *grad) {
    ct_loss *l = ct_loss_parse(spec);
    CHECK(l, "%s: %s", spec, ct_last_error());
    ct_loss_set_progress(l, progress);
    ct_tape *tape = ct_tape_new();
    ct_tensor_zero_grad(z);
    ct_tensor *out = ct_loss_apply(tape, l, z, y);
    *value = out->data[0];
    ct_backward(tape, out);
    memcpy(grad, z->grad, z->size * sizeof *grad);
    ct_tape_free(tape);
    ct_loss_free(l);
}

/* TSLA is cross_entropy:label_smoothing=ε before `until` and cross_entropy from it on, bit for bit
 * (the same op), whatever the reduction. */
CT_TEST(loss_lab, tsla_is_smoothed_cross_entropy_then_cross_entropy) {
    enum { N = 6, C = 5 };
    const int labels[N] = {0, 4, 2, 2, 1, 3};
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
    fill_logits(z, 2.5);
    const struct {
        const char *tsla, *smoothed, *plain;
        double until;
    } cases[] = {
        {"tsla", "cross_entropy:label_smoothing=0.1", "cross_entropy", 0.5},
        {"tsla:epsilon=0.3,until=0.25,reduction=sum", "cross_entropy:label_smoothing=0.3,reduction=sum",
         "cross_entropy:reduction=sum", 0.25},
    };
    const double progress[] = {0, 0.1, 0.2499, 0.25, 0.4999, 0.5, 0.75, 1};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (size_t p = 0; p < sizeof progress / sizeof *progress; p++) {
            ct_real got, want, g_got[N * C], g_want[N * C];
            const int smoothed = progress[p] < cases[c].until;
            loss_and_grad(cases[c].tsla, progress[p], z, CT_LABELS(labels, N), &got, g_got);
            loss_and_grad(smoothed ? cases[c].smoothed : cases[c].plain, 0, z, CT_LABELS(labels, N), &want, g_want);
            CHECK(got == want && !memcmp(g_got, g_want, sizeof g_got), "%s at progress %g: %.9g, want %s's %.9g",
                  cases[c].tsla, progress[p], (double)got, smoothed ? cases[c].smoothed : cases[c].plain, (double)want);
        }
    /* the two phases differ (the smoothing is really switched off) */
    ct_real early, late, g[N * C];
    loss_and_grad("tsla", 0.2, z, CT_LABELS(labels, N), &early, g);
    loss_and_grad("tsla", 0.8, z, CT_LABELS(labels, N), &late, g);
    CHECK(early != late, "tsla gives %.9g both before and after until", (double)early);
    ct_tensor_free(z);
}

static void progress_out_of_range(void *arg) {
    (void)arg;
    ct_loss *l = ct_loss_parse("tsla");
    ct_loss_set_progress(l, 1.5);
}

CT_TEST(loss_lab, progress_outside_zero_one_is_fatal) {
    char got[512];
    CHECK(ct_test_expect_fatal(progress_out_of_range, NULL, "progress 1.5 is outside [0, 1]", got, sizeof got), "%s", got);
}

/* Against F.cross_entropy(z + τ·log π, y) in PyTorch (tests/reference/gen_logit_adjusted.py): the loss
 * and its gradient for mean, sum and none, τ in {0, 0.5, 1, 2}, balanced and long-tailed counts. */
CT_TEST(loss_lab, logit_adjusted_matches_pytorch) {
    for (size_t k = 0; k < sizeof logit_adjusted_ref / sizeof *logit_adjusted_ref; k++) {
        const logit_adjusted_ref_case *r = &logit_adjusted_ref[k];
        ct_tape *tape = ct_tape_new();
        ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(r->n, r->c));
        for (size_t i = 0; i < z->size; i++) z->data[i] = (ct_real)r->logits[i];
        ct_tensor *out = ct_logit_adjusted_loss(tape, z, CT_LABELS(r->labels, r->n),
                                                CT_LOGIT_ADJUSTED(.reduction = (ct_reduction)r->reduction, .tau = r->tau,
                                                                  .counts = r->counts, .n_counts = r->c));
        CHECK((int)out->size == r->n_out, "case %zu: %zu values, want %d", k, out->size, r->n_out);
        for (int i = 0; i < r->n_out; i++)
            CHECK(fabs(out->data[i] - r->out[i]) <= REF_ATOL + REF_RTOL * fabs(r->out[i]), "case %zu: value %d %.17g, torch %.17g",
                  k, i, (double)out->data[i], r->out[i]);
        ct_tensor *cot = ct_tape_zeros(tape, out->ndim ? CT_SHAPE(r->n_out) : (ct_shape){.ndim = 0});
        for (int i = 0; i < r->n_out; i++) cot->data[i] = (ct_real)r->cotangent[i];
        ct_backward(tape, ct_sum_all(tape, ct_mul(tape, out, cot)));
        for (size_t i = 0; i < z->size; i++)
            CHECK(fabs(z->grad[i] - r->grad[i]) <= REF_ATOL + REF_RTOL * fabs(r->grad[i]), "case %zu: d/dz[%zu] %.17g, torch %.17g",
                  k, i, (double)z->grad[i], r->grad[i]);
        ct_tensor_free(z);
        ct_tape_free(tape);
    }
}

#ifdef CT_PRECISION_64
typedef struct {
    const int *labels;
    int n;
    const double *counts;
    int c;
    double tau;
    ct_reduction reduction;
} la_check;

static ct_tensor *la_check_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const la_check *c = ctx;
    return ct_logit_adjusted_loss(tape, in[0], CT_LABELS(c->labels, c->n),
                                  CT_LOGIT_ADJUSTED(.reduction = c->reduction, .tau = c->tau, .counts = c->counts,
                                                    .n_counts = c->c));
}
#endif

CT_TEST(gradcheck, logit_adjusted) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    const int labels[5] = {0, 3, 3, 1, 2};
    const double counts[4] = {1000, 100, 10, 1};
    const ct_reduction reductions[] = {CT_REDUCTION_MEAN, CT_REDUCTION_SUM, CT_REDUCTION_NONE};
    for (int k = 0; k < 3; k++) {
        la_check c = {labels, 5, counts, 4, k == 2 ? 2.0 : 1.0, reductions[k]};
        ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(5, 4));
        fill_logits(z, 1.7);
        ct_gradcheck_result r = ct_gradcheck(la_check_fn, &c, &z, 1, CT_GRADCHECK());
        char msg[256];
        ct_gradcheck_describe(&r, msg, sizeof msg);
        ct_tensor_free(z);
        CHECK(r.passed && r.checked > 0, "reduction %d: %s", k, msg);
    }
#endif
}

/* By name: the counts as a per-class list; without counts it is cross_entropy bit for bit, with τ = 0 to
 * rounding; CE(z + log π) computed by hand; the eval transform is softmax (of the plain logits: the
 * metrics never see the adjustment, tests/optim/test_trainer_lab.c). */
CT_TEST(loss_lab, logit_adjusted_by_name_and_its_transform) {
    enum { N = 8, C = 4 };
    const int labels[N] = {0, 1, 2, 3, 0, 0, 1, 3};
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
    fill_logits(z, 2);
    ct_real ce, none, tau0, adjusted, g_ce[N * C], g[N * C];
    loss_and_grad("cross_entropy", 0, z, CT_LABELS(labels, N), &ce, g_ce);
    loss_and_grad("logit_adjusted", 0, z, CT_LABELS(labels, N), &none, g);
    CHECK(none == ce && !memcmp(g, g_ce, sizeof g), "no counts: %.9g, cross_entropy %.9g", (double)none, (double)ce);
    loss_and_grad("logit_adjusted:tau=0,counts=[50,20,5,1]", 0, z, CT_LABELS(labels, N), &tau0, g);
    CHECK(fabs(tau0 - ce) <= 1e-6 * fabs(ce), "tau 0: %.9g, cross_entropy %.9g", (double)tau0, (double)ce);
    loss_and_grad("logit_adjusted:counts=[50,20,5,1]", 0, z, CT_LABELS(labels, N), &adjusted, g);
    /* by hand: CE(z + log π) */
    const double counts[C] = {50, 20, 5, 1}, total = 76;
    double want = 0;
    for (int i = 0; i < N; i++) {
        double lse = 0, zy = 0;
        for (int c = 0; c < C; c++) {
            const double a = z->data[i * C + c] + log(counts[c] / total);
            lse += exp(a);
            if (c == labels[i]) zy = a;
        }
        want += (log(lse) - zy) / N;
    }
    CHECK(fabs(adjusted - want) <= 1e-5 * want, "adjusted %.9g, by hand %.9g", (double)adjusted, want);
    ct_loss *l = ct_loss_parse("logit_adjusted:counts=[50,20,5,1]");
    CHECK(ct_loss_eval_transform(l) == CT_EVAL_SOFTMAX, "transform %d", (int)ct_loss_eval_transform(l));
    ct_loss_free(l);
    CHECK(!ct_loss_parse("logit_adjusted:counts=[50,0,5,1]") && strstr(ct_last_error(), "counts"), "%s", ct_last_error());
    ct_tensor_free(z);
}

/* "counts=auto": described as such until ct_loss_set_counts fills it; then the loss "counts=[...]"
 * gives, values range-checked; auto is only for a per-class counts parameter. */
CT_TEST(loss_lab, counts_auto_is_filled_in_from_the_data) {
    ct_loss *l = ct_loss_parse("logit_adjusted:counts=auto,tau=2");
    CHECK(l, "%s", ct_last_error());
    char text[512], want[512];
    ct_loss_describe(l, text, sizeof text);
    CHECK(!strcmp(text, "logit_adjusted:reduction=mean,tau=2,counts=auto") && ct_loss_needs_counts(l), "described as %s",
          text);
    ct_loss *again = ct_loss_parse(text);
    CHECK(again && ct_loss_needs_counts(again), "%s does not parse back: %s", text, ct_last_error());
    ct_loss_free(again);
    const double bad[3] = {30, 0, 2}, counts[3] = {30, 7, 2};
    CHECK(ct_loss_set_counts(l, bad, 3) == CT_ERR_VALUE && strstr(ct_last_error(), "ct_loss_set_counts") &&
              strstr(ct_last_error(), "counts") && ct_loss_needs_counts(l),
          "a zero count: %s", ct_last_error());
    CHECK(ct_loss_set_counts(l, counts, 3) == CT_OK && !ct_loss_needs_counts(l), "%s", ct_last_error());
    ct_loss_describe(l, text, sizeof text);
    ct_loss *given = ct_loss_parse("logit_adjusted:tau=2,counts=[30,7,2]");
    ct_loss_describe(given, want, sizeof want);
    CHECK(!strcmp(text, want), "filled in: %s, want %s", text, want);
    /* and it computes what the spec with the counts computes */
    const int labels[2] = {2, 0};
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(2, 3));
    fill_logits(z, 1);
    ct_tape *tape = ct_tape_new();
    const double a = ct_loss_apply(tape, l, z, CT_LABELS(labels, 2))->data[0],
                 b = ct_loss_apply(tape, given, z, CT_LABELS(labels, 2))->data[0];
    CHECK(a == b, "%.9g vs %.9g", a, b);
    ct_tape_free(tape);
    ct_tensor_free(z);
    ct_loss_free(given);
    ct_loss_free(l);
    /* a loss without auto is left as it is; auto elsewhere is refused by the parser */
    ct_loss *ce = ct_loss_parse("cross_entropy");
    CHECK(ct_loss_set_counts(ce, counts, 3) == CT_OK && !ct_loss_needs_counts(ce), "%s", ct_last_error());
    ct_loss_free(ce);
    CHECK(!ct_loss_parse("cross_entropy:weight=auto"), "weight=auto parsed");
    CHECK(!ct_loss_parse("logit_adjusted:tau=auto"), "tau=auto parsed");
}

static void apply_unfilled(void *arg) {
    (void)arg;
    ct_loss *l = ct_loss_parse("logit_adjusted:counts=auto");
    ct_tape *tape = ct_tape_new();
    const int labels[1] = {0};
    ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(1, 3)), CT_LABELS(labels, 1));
}

CT_TEST(loss_lab, counts_auto_not_filled_in_is_fatal_at_apply) {
    char got[512];
    CHECK(ct_test_expect_fatal(apply_unfilled, NULL, "counts=auto is not filled in: call ct_loss_set_counts", got,
                               sizeof got),
          "%s", got);
}
