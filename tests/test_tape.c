/* tests/test_tape.c — the tape itself: recording, accumulation, no-grad, detach, reset. */
#include "test.h"

CT_TEST(tape, linear_relu_records_and_accumulates) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(3, 2));
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(1, 2), (ct_real[]){1, 2});
    for (size_t i = 0; i < w->size; i++) w->data[i] = (ct_real)i - 2; /* rows (-2,-1) (0,1) (2,3) */
    ct_tensor *y = ct_relu(tape, ct_linear(tape, x, w, NULL));         /* (0, 2, 8) */
    CHECK(ct_tape_node_count(tape) == 2);
    CHECK(y->data[0] == 0 && y->data[1] == 2 && y->data[2] == 8);
    ct_backward_with(tape, y, (ct_real[]){1, 1, 1});
    /* dW row j = [y_j > 0] · x */
    CHECK(w->grad[0] == 0 && w->grad[1] == 0 && w->grad[2] == 1 && w->grad[3] == 2);
    ct_tape_reset(tape);
    CHECK(ct_tape_node_count(tape) == 0);
    x = ct_tape_tensor_from(tape, CT_SHAPE(1, 2), (ct_real[]){1, 2});
    y = ct_relu(tape, ct_linear(tape, x, w, NULL));
    ct_backward_with(tape, y, (ct_real[]){1, 1, 1});
    CHECK(w->grad[2] == 2 && w->grad[3] == 4, "parameter grads accumulate across steps");
    int was = ct_tape_grad_enabled(tape, 0);
    ct_tensor *z = ct_linear(tape, x, w, NULL);
    CHECK(!ct_requires_grad(z) && ct_tape_node_count(tape) == 2, "no-grad records nothing");
    ct_tape_grad_enabled(tape, was);
    ct_tensor_free(w);
    ct_tape_free(tape);
}
