/* autograd/op_table.c — every op of autograd, once. The gradient-check test walks this table
 * (and losses/op_table.c's for the fused losses) and fails for any op without a check, so a new
 * op is added here and in tests/autograd/test_gradcheck.c.
 * Ops that record no node (detach, one_hot) are not here; the *_all reductions record the
 * axis reduction's op (sum, mean, max, logsumexp) and transpose records permute. */
#define CT_BUILDING_LIBRARY
#include "op.h"

#include <string.h>

extern const ct_op ct_op_matmul, ct_op_bmm, ct_op_linear;
extern const ct_op ct_op_add, ct_op_sub, ct_op_mul, ct_op_div, ct_op_pow, ct_op_maximum,
    ct_op_minimum, ct_op_where;
extern const ct_op ct_op_neg, ct_op_add_scalar, ct_op_mul_scalar, ct_op_pow_scalar, ct_op_exp,
    ct_op_log, ct_op_sqrt, ct_op_abs, ct_op_clamp;
extern const ct_op ct_op_relu, ct_op_leaky_relu, ct_op_gelu, ct_op_gelu_tanh, ct_op_silu,
    ct_op_sigmoid, ct_op_tanh, ct_op_softplus;
extern const ct_op ct_op_sum, ct_op_mean, ct_op_max, ct_op_logsumexp;
extern const ct_op ct_op_reshape, ct_op_permute, ct_op_slice, ct_op_concat, ct_op_index_select,
    ct_op_gather_rows;
extern const ct_op ct_op_softmax, ct_op_log_softmax, ct_op_l2_normalize;
extern const ct_op ct_op_layer_norm, ct_op_batch_norm, ct_op_batch_norm_eval, ct_op_dropout, ct_op_embedding;
extern const ct_op ct_op_conv2d, ct_op_max_pool2d, ct_op_avg_pool2d, ct_op_global_avg_pool2d;
extern const ct_op ct_op_attention;

const ct_op *const ct_op_table[] = {
    /* linalg.c */
    &ct_op_matmul, &ct_op_bmm, &ct_op_linear,
    /* elementwise.c: binary, broadcasting */
    &ct_op_add, &ct_op_sub, &ct_op_mul, &ct_op_div, &ct_op_pow, &ct_op_maximum, &ct_op_minimum,
    &ct_op_where,
    /* elementwise.c: unary */
    &ct_op_neg, &ct_op_add_scalar, &ct_op_mul_scalar, &ct_op_pow_scalar, &ct_op_exp, &ct_op_log,
    &ct_op_sqrt, &ct_op_abs, &ct_op_clamp,
    /* activation.c */
    &ct_op_relu, &ct_op_leaky_relu, &ct_op_gelu, &ct_op_gelu_tanh, &ct_op_silu, &ct_op_sigmoid,
    &ct_op_tanh, &ct_op_softplus,
    /* reduce.c */
    &ct_op_sum, &ct_op_mean, &ct_op_max, &ct_op_logsumexp,
    /* shape.c */
    &ct_op_reshape, &ct_op_permute, &ct_op_slice, &ct_op_concat, &ct_op_index_select,
    &ct_op_gather_rows,
    /* softmax.c */
    &ct_op_softmax, &ct_op_log_softmax, &ct_op_l2_normalize,
    /* norm.c, dropout.c, embedding.c */
    &ct_op_layer_norm, &ct_op_batch_norm, &ct_op_batch_norm_eval, &ct_op_dropout, &ct_op_embedding,
    /* conv.c */
    &ct_op_conv2d, &ct_op_max_pool2d, &ct_op_avg_pool2d, &ct_op_global_avg_pool2d,
    /* attention.c */
    &ct_op_attention,
};
const int ct_op_count = (int)(sizeof ct_op_table / sizeof ct_op_table[0]);

const ct_op *ct_op_find(const char *name) {
    for (int i = 0; i < ct_op_count; i++)
        if (strcmp(ct_op_table[i]->name, name) == 0) return ct_op_table[i];
    return NULL;
}
