/* tests/autograd/test_tape_grad_ready.c — ct_tape_on_grad_ready: during ct_backward each parameter is
 * reported once, when its gradient is final (what data-parallel training starts sending then), the
 * last layer's first; a layer used twice only after its first use's backward. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_SEEN = 16 };
typedef struct {
    int n;
    const ct_tensor *param[MAX_SEEN];
    ct_real *grad[MAX_SEEN]; /* the gradient when it was reported */
} seen;

static void record(ct_tensor *p, void *user) {
    seen *s = user;
    if (s->n == MAX_SEEN) return;
    s->param[s->n] = p;
    s->grad[s->n] = malloc(p->size * sizeof(ct_real));
    memcpy(s->grad[s->n++], p->grad, p->size * sizeof(ct_real));
}

CT_TEST(tape, grad_ready_reports_each_parameter_once_final) {
    ct_model *m = ct_model_new();
    ct_module *a = ct_linear_new(m, "a", 8, 16), *b = ct_linear_new(m, "b", 16, 16), *c = ct_linear_new(m, "c", 16, 4);
    ct_tensor *shift = ct_model_add_param(m, "shift", CT_SHAPE(4));
    ct_tape *tape = ct_tape_new();
    seen s = {0};
    ct_tape_on_grad_ready(tape, record, &s);
    ct_tensor *x = ct_tensor_new(CT_SHAPE(5, 8));
    ct_rng r;
    ct_rng_seed(&r, 3);
    ct_tensor_fill_normal(x, &r, 0, 1);
    const int y[5] = {0, 1, 2, 3, 1};
    for (int step = 0; step < 2; step++) { /* the hook stays for the next step */
        s.n = 0;
        /* b is used twice: its gradient is final only after the backward of its first use */
        ct_tensor *h = ct_relu(tape, ct_forward(tape, b, ct_relu(tape, ct_forward(tape, b, ct_forward(tape, a, x)))));
        ct_tensor *logits = ct_add(tape, ct_forward(tape, c, h), shift);
        ct_backward(tape, ct_cross_entropy(tape, logits, CT_LABELS(y, 5), CT_CE()));
        CHECK(s.n == 7, "%d parameters reported, want 7 (a, b, c weights and biases, shift)", s.n);
        for (int k = 0; k < s.n; k++) {
            int same = 0;
            for (int j = 0; j < s.n; j++) same += s.param[j] == s.param[k];
            CHECK(same == 1, "%s reported %d times", s.param[k]->name, same);
            CHECK(!memcmp(s.grad[k], s.param[k]->grad, s.param[k]->size * sizeof(ct_real)),
                  "%s was reported before its gradient was final", s.param[k]->name);
        }
        /* the order of the reverse walk: c before b before a */
        int pos_a = -1, pos_b = -1, pos_c = -1;
        for (int k = 0; k < s.n; k++) {
            if (s.param[k] == ct_linear_weight(a)) pos_a = k;
            if (s.param[k] == ct_linear_weight(b)) pos_b = k;
            if (s.param[k] == ct_linear_weight(c)) pos_c = k;
        }
        CHECK(pos_c >= 0 && pos_c < pos_b && pos_b < pos_a, "reported at c %d, b %d, a %d", pos_c, pos_b, pos_a);
        for (int k = 0; k < s.n; k++) free(s.grad[k]);
        ct_model_zero_grad(m);
        ct_tape_reset(tape);
    }
    ct_tape_on_grad_ready(tape, NULL, NULL);
    s.n = 0;
    ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, c, ct_forward(tape, b, ct_forward(tape, a, x))), CT_LABELS(y, 5), CT_CE()));
    CHECK(s.n == 0, "a removed hook was called");
    ct_tensor_free(x);
    ct_tape_free(tape);
    ct_model_free(m);
}
