/* losses/long_tail.c — losses for long-tailed training sets: logit-adjusted cross-entropy (Menon et
 * al. 2021), composed from tape ops (an add of the log-priors, then the fused cross-entropy). */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"

/* ℓ_i = CE(z_i + τ·log π, y_i), π_c = n_c / Σ_k n_k. The offsets τ·log π_c are a constant (C) row the
 * add broadcasts over the N rows; its gradient is the cross-entropy's, softmax(z + τ log π) − onehot. */
ct_tensor *ct_logit_adjusted_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_logit_adjusted_opts opts) {
    static const char *op = "ct_logit_adjusted_loss";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    const int C = z->shape[1];
    CT_CHECK(isfinite(opts.tau) && opts.tau >= 0, op, "tau = %g must be finite and >= 0", opts.tau);
    const ct_ce_opts ce = CT_CE(.reduction = opts.reduction);
    if (!opts.counts) return ct_cross_entropy(tape, z, y, ce);
    CT_CHECK(opts.n_counts == C, op, "%d counts for logits %s with C = %d classes: give one count per class",
             opts.n_counts, ct_shp(z), C);
    double total = 0;
    for (int c = 0; c < C; c++) {
        CT_CHECK(isfinite(opts.counts[c]) && opts.counts[c] > 0, op, "counts[%d] = %g must be finite and > 0", c,
                 opts.counts[c]);
        total += opts.counts[c];
    }
    ct_tensor *offset = ct_tape_zeros(tape, CT_SHAPE(C));
    for (int c = 0; c < C; c++) offset->data[c] = (ct_real)(opts.tau * log(opts.counts[c] / total));
    return ct_cross_entropy(tape, ct_add(tape, z, offset), y, ce);
}
