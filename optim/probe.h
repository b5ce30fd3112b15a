/* optim/probe.h — judging an embedding network by its frozen features, as the papers of the
 * embedding losses do (SupCon, Circle, triplet, center loss): the network is not changed; its
 * features of the training set are the reference, those of the test set the queries.
 *
 *     ct_probe_result r;
 *     ct_probe_evaluate(m, net, ct_loader_source(train_plain), ct_loader_source(test), 10, CT_PROBE(), &r);
 *     printf("kNN %.2f%%, linear probe %.2f%%\n", 100 * r.knn_accuracy, 100 * r.probe_accuracy);
 *
 *   kNN accuracy     each test feature takes the majority label of its k most cosine-similar
 *                    training features (features L2-normalised; k = 20 as the kNN monitors of the
 *                    SupCon and SimCLR code bases, an unweighted vote); a tie of votes goes to the
 *                    label with the larger summed similarity, then to the smaller label; among equal
 *                    similarities the earlier training sample is the nearer (ct_knn_accuracy).
 *   linear probe     multinomial logistic regression (a linear layer and cross-entropy) fitted on
 *                    the training features standardised by their mean and deviation: full batch,
 *                    from zero, deterministic, `probe_iterations` steps of Nesterov gradient descent
 *                    with step 1/L (L the curvature bound of the softmax loss), L2 penalty
 *                    probe_l2/2·‖W‖² (ct_linear_probe_accuracy); its accuracy on the test features.
 *
 * The training source should give the plain training images (no augmentation, one view): the
 * features a probe is fitted on are those of the data, not of its augmentations. */
#ifndef CTAPE_OPTIM_PROBE_H
#define CTAPE_OPTIM_PROBE_H

#include "trainer.h"

typedef struct {
    int knn_k;            /* neighbours (20; fewer when the training set is smaller) */
    int probe_iterations; /* gradient steps of the probe (300) */
    double probe_l2;      /* its L2 penalty λ (1e-4) */
} ct_probe_opts;
#define CT_PROBE(...) CT_WITH_DEFAULTS(ct_probe_opts, (.knn_k = 20, .probe_iterations = 300, .probe_l2 = 1e-4), __VA_ARGS__)

typedef struct {
    double knn_accuracy, probe_accuracy; /* NaN when a feature is not finite */
    int train_n, test_n, dim;            /* samples featurised and the feature width */
} ct_probe_result;

/* The outputs of net (m's) on one epoch of `source`, in evaluation mode without gradients (m's mode
 * restored after): *features (N, D) (ct_tensor_free it) and *labels (N, free() it), in the order of
 * the source. D is the width of net's output, which must be 2-D. CT_OK, or CT_ERR_MEMORY / CT_ERR_VALUE
 * (a source with no sample) with ct_last_error(). */
int ct_extract_features(ct_model *m, ct_module *net, ct_batch_source source, ct_tensor **features, int **labels);

/* kNN and linear-probe accuracy of net's features: `train` gives the reference (the probe's fitting
 * set), `test` the queries; labels in [0, classes). CT_OK, or an error code with ct_last_error()
 * (CT_ERR_VALUE for knn_k or probe_iterations below 1, a negative probe_l2, or classes below 2). */
int ct_probe_evaluate(ct_model *m, ct_module *net, ct_batch_source train, ct_batch_source test, int classes,
                      ct_probe_opts opts, ct_probe_result *out);

#ifndef CT_BUILDING_LIBRARY
#define ct_extract_features(...) CT_SITE_CALL_CLEARING(ct_extract_features, __VA_ARGS__)
#define ct_probe_evaluate(...) CT_SITE_CALL_CLEARING(ct_probe_evaluate, __VA_ARGS__)
#endif

#endif
