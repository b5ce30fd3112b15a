/* losses/metrics.h — what an evaluation reports beside the loss, with the definitions the papers
 * and scikit-learn use. A ct_metrics tallies batches of logits and labels; ct_metrics_compute then
 * gives every summary at once.
 *
 * Definitions (N samples, C classes, p = the eval transform of the logits, ŷ = argmax p, the first
 * on ties; a NaN logit counts as the largest, as torch.argmax):
 *   accuracy            #{ŷ = y} / N
 *   top-k accuracy      #{fewer than k classes score strictly above the label} / N
 *   per-class accuracy  recall of the class: #{ŷ = y = c} / #{y = c} (the long-tail papers' figure)
 *   precision, recall, F1 of class c: TP/(TP + FP), TP/(TP + FN), 2PR/(P + R), 0 where the
 *                       denominator is 0 (scikit-learn's zero_division=0); macro: their plain mean
 *                       over the classes that occur in the labels or the predictions (scikit-learn's
 *                       default set)
 *   balanced accuracy   the mean recall over the classes that occur in the labels (scikit-learn's
 *                       balanced_accuracy_score; the macro recall also counts classes only predicted)
 *   NLL                 mean −log p_y (natural log)
 *   Brier score         mean Σ_c (p_c − [c = y])² (Brier 1950, multi-class: 0 best, 2 worst)
 *   ECE                 Σ_b |B_b|/N · |acc(B_b) − conf(B_b)| over confidence bins of p_ŷ: equal-width
 *                       (b/B, (b+1)/B], B = 15 by default (Guo et al. 2017), or equal-mass (each bin
 *                       N/B samples in order of confidence, Nixon et al. 2019)
 * A row with a NaN or infinite logit is data, not an error: it is counted (nonfinite), predicted as
 * above, and makes NLL, Brier and ECE NaN, so a diverged model cannot report a good calibration. */
#ifndef CTAPE_LOSSES_METRICS_H
#define CTAPE_LOSSES_METRICS_H

#include "../autograd/ops.h"

/* How logits become probabilities at test time. */
typedef enum {
    CT_EVAL_AUTO = 0,    /* the loss's own (ct_loss_eval_transform, what ct_fit and ct_evaluate use);
                            softmax where no loss is known (ct_metrics_new) */
    CT_EVAL_SOFTMAX,     /* p_c = e^z_c / Σ e^z (cross-entropy, focal, Poly, ...) */
    CT_EVAL_SIGMOID,     /* p_c = σ(z_c) / Σ σ(z) (one-vs-rest losses: bce_with_logits, sigmoid focal) */
    CT_EVAL_STABLEMAX,   /* p_c = s(z_c) / Σ s(z), s(x) = x + 1 for x ≥ 0, 1/(1 − x) below (StableMax) */
} ct_eval_transform;

typedef struct {
    int bins;                     /* ECE bins (15) */
    int top_k;                    /* k of the top-k accuracy (5; clipped to C) */
    ct_eval_transform transform;  /* auto: softmax here */
} ct_metrics_opts;
#define CT_METRICS(...) CT_WITH_DEFAULTS(ct_metrics_opts, (.bins = 15, .top_k = 5), __VA_ARGS__)

typedef struct ct_metrics ct_metrics;

typedef struct {
    long n;            /* samples seen */
    long nonfinite;    /* rows with a NaN or infinite logit */
    int top_k;         /* the k used */
    double accuracy, top_k_accuracy, balanced_accuracy;
    double precision, recall, f1; /* macro */
    double nll, brier, ece, ece_equal_mass;
} ct_metrics_result;

/* NULL (ct_last_error) when memory runs out. Fatal on classes < 1, bins < 1 or top_k < 1. */
ct_metrics *ct_metrics_new(int classes, ct_metrics_opts opts);
void ct_metrics_free(ct_metrics *m);
/* Forgets every sample (a new evaluation with the same settings). */
void ct_metrics_reset(ct_metrics *m);
/* Adds a batch: logits (N, C) with C the classes given to ct_metrics_new, N labels in [0, C) (fatal
 * otherwise, naming the label). CT_OK, or CT_ERR_MEMORY. */
int ct_metrics_add(ct_metrics *m, const ct_tensor *logits, ct_labels labels);
/* The same from probabilities (N × C values, rows summing to 1) the caller already has. */
int ct_metrics_add_probs(ct_metrics *m, const ct_real *probs, const int *labels, int n);

ct_metrics_result ct_metrics_compute(const ct_metrics *m);
int ct_metrics_classes(const ct_metrics *m);
/* The confusion matrix, C × C, row = true class, column = predicted (valid until the next add). */
const long *ct_metrics_confusion(const ct_metrics *m);
/* Per class (arrays of C, any may be NULL): precision, recall (= per-class accuracy), F1, support. */
void ct_metrics_per_class(const ct_metrics *m, double *precision, double *recall, double *f1, long *support);
/* The equal-width reliability bins (arrays of opts.bins): accuracy and mean confidence of each bin
 * (0 where empty) and its count, for ct_plot_reliability. */
void ct_metrics_reliability(const ct_metrics *m, double *accuracy, double *confidence, long *count);

/* k-nearest-neighbour accuracy of embeddings (the SupCon papers' probe): each query row of
 * `queries` (M, D) takes the majority label of its k most cosine-similar rows of `reference` (N, D)
 * (a tie goes to the label with the larger summed similarity); the fraction whose vote is its own
 * label. Labels in [0, classes). NaN when an embedding is not finite. */
double ct_knn_accuracy(const ct_tensor *reference, const int *reference_labels, const ct_tensor *queries,
                       const int *query_labels, int k, int classes);

/* Linear-probe accuracy of frozen embeddings: a multinomial logistic regression on `train` (N, D)
 * (features standardised by the training mean and deviation, L2 penalty λ/2·‖W‖², full-batch
 * gradient descent with Nesterov momentum for `iterations` steps from zero), scored on `test`
 * (M, D). Deterministic. 300 iterations and λ = 1e-4 are good defaults (pass 0 for them). NaN when
 * an embedding is not finite or memory runs out. */
double ct_linear_probe_accuracy(const ct_tensor *train, const int *train_labels, const ct_tensor *test,
                                const int *test_labels, int classes, int iterations, double l2);

#ifndef CT_BUILDING_LIBRARY
#define ct_linear_probe_accuracy(...) CT_SITE_CALL(ct_linear_probe_accuracy, __VA_ARGS__)
#define ct_metrics_new(...) CT_SITE_CALL(ct_metrics_new, __VA_ARGS__)
#define ct_metrics_add(...) CT_SITE_CALL(ct_metrics_add, __VA_ARGS__)
#define ct_metrics_add_probs(...) CT_SITE_CALL(ct_metrics_add_probs, __VA_ARGS__)
#define ct_knn_accuracy(...) CT_SITE_CALL(ct_knn_accuracy, __VA_ARGS__)
#endif

#endif
