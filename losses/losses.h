/* losses/losses.h — the loss zoo. Every loss takes tape tensors and returns a tape tensor, has a
 * config struct whose defaults are the published ones, and an explicit reduction. */
#ifndef CTAPE_LOSSES_LOSSES_H
#define CTAPE_LOSSES_LOSSES_H

#include "../autograd/ops.h"


typedef enum {
    CT_REDUCTION_MEAN = 0, /* PyTorch's default */
    CT_REDUCTION_SUM,
    CT_REDUCTION_NONE,     /* one value per sample */
} ct_reduction;

/* Softmax cross-entropy with torch.nn.functional.cross_entropy semantics. Per sample, with
 * p_i = softmax(z_i), class weights w (w ≡ 1 without) and label smoothing ε:
 *   ℓ_i = −(1−ε)·w_{y_i}·log p_{i,y_i} − (ε/C)·Σ_c w_c·log p_{i,c}     (0 when y_i = ignore_index)
 *   mean = Σ_i ℓ_i / Σ_i w_{y_i} over the samples not ignored (NaN when all are, as PyTorch).
 * Fused: log-softmax and its gradient (p − target, scaled) in one op ("cross_entropy"), stable
 * for any finite logits. */
typedef struct {
    ct_reduction reduction;
    double label_smoothing;   /* ε in [0, 1] */
    int ignore_index;         /* label value that contributes nothing (PyTorch: −100) */
    const ct_real *weight;    /* per-class weights (C values) or NULL */
} ct_ce_opts;
#define CT_CE(...) CT_WITH_DEFAULTS(ct_ce_opts, (.reduction = CT_REDUCTION_MEAN, .label_smoothing = 0, \
                                                .ignore_index = -100, .weight = NULL), __VA_ARGS__)

/* logits (N, C), labels N values in [0, C) (or ignore_index). Fatal, naming the index, on a
 * label out of range, a wrong label count or a non-finite logit. */
ct_tensor *ct_cross_entropy(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts);

#ifndef CT_BUILDING_LIBRARY
#define ct_cross_entropy(...) CT_SITE_CALL(ct_cross_entropy, __VA_ARGS__)
#endif

#endif
