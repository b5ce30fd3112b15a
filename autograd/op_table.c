/* autograd/op_table.c — every op, once. The gradient-check test walks this table and fails
 * for any op without a check, so a new op is added here and in tests/test_gradcheck.c. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <string.h>

extern const ct_op ct_op_matmul, ct_op_bmm, ct_op_linear, ct_op_relu;

const ct_op *const ct_op_table[] = {
    &ct_op_matmul, &ct_op_bmm, &ct_op_linear,
    &ct_op_relu,
};
const int ct_op_count = (int)(sizeof ct_op_table / sizeof ct_op_table[0]);

const ct_op *ct_op_find(const char *name) {
    for (int i = 0; i < ct_op_count; i++)
        if (strcmp(ct_op_table[i]->name, name) == 0) return ct_op_table[i];
    return NULL;
}
