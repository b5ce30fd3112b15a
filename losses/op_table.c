/* losses/op_table.c — every fused loss op, once: the losses' counterpart of autograd/op_table.c.
 * The gradient-check test walks both tables and fails for an op without a check, so a new fused
 * loss op is added here and given a gradient check in tests/, and its loss a composed
 * ct_*_reference beside it (losses/README.md, "Adding a fused loss"). */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/op.h"

extern const ct_op ct_op_cross_entropy;
extern const ct_op ct_op_loss_pointwise, ct_op_loss_softmax, ct_op_loss_nll, ct_op_loss_stablemax;
extern const ct_op ct_op_supcon, ct_op_circle, ct_op_circle_class, ct_op_pairwise_l2, ct_op_triplet_batch_all;

const ct_op *const ct_loss_op_table[] = {
    &ct_op_cross_entropy,                                           /* cross_entropy.c */
    &ct_op_loss_softmax,                                            /* softmax_family.c */
    &ct_op_loss_nll, &ct_op_loss_stablemax,                         /* nll_stablemax.c */
    &ct_op_loss_pointwise,                                          /* pointwise.c */
    &ct_op_supcon, &ct_op_circle, &ct_op_circle_class,              /* embedding_similarity.c */
    &ct_op_pairwise_l2, &ct_op_triplet_batch_all,                   /* embedding_distance.c */
};
const int ct_loss_op_count = (int)(sizeof ct_loss_op_table / sizeof ct_loss_op_table[0]);
