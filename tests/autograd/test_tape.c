/* tests/autograd/test_tape.c — the tape itself: recording, accumulation, no-grad, detach, reset. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

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

/* Reads what `write` prints for the tape into a malloc'd string (free it). */
static char *capture(const ct_tape *tape, void (*write)(const ct_tape *, FILE *)) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    write(tape, f);
    fclose(f);
    return text;
}

static int count_substr(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
    return n;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A small graph: loss = sum(relu(x·x)), x a named heap parameter (2, 3). */
static ct_tensor *small_graph(ct_tape *tape, ct_tensor *x) {
    return ct_sum_all(tape, ct_relu(tape, ct_mul(tape, x, x)));
}

CT_TEST(tape, print_lists_one_line_per_node) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(2, 3));
    x->name = "fc.weight";
    small_graph(tape, x);
    CHECK(ct_tape_node_count(tape) == 3);
    char *text = capture(tape, ct_tape_print);
    CHECK(text != NULL);
    char copy[2048];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    CHECK(count_lines(copy) == 1 + 3, "want a header and 3 node lines:\n%s", copy);
    CHECK(strstr(copy, "tape: 3 nodes"), "header:\n%s", copy);
    /* node 0: mul of the named leaf with itself; node 1 reads node 0; node 2 reduces to (). */
    CHECK(strstr(copy, "   0 mul") && strstr(copy, "fc.weight(2, 3), fc.weight(2, 3) -> (2, 3)"),
          "mul line:\n%s", copy);
    CHECK(strstr(copy, "   1 relu") && strstr(copy, "%0(2, 3) -> (2, 3)"), "relu line:\n%s", copy);
    CHECK(strstr(copy, "   2 sum") && strstr(copy, "%1(2, 3) -> ()"), "sum line:\n%s", copy);
    ct_tape_reset(tape);
    text = capture(tape, ct_tape_print);
    CHECK(text != NULL);
    int lines = count_lines(text), empty = strstr(text, "tape: 0 nodes, 0 bytes") != NULL;
    free(text);
    CHECK(lines == 1 && empty, "after reset only the header, with 0 nodes and 0 bytes");
    ct_tensor_free(x);
    ct_tape_free(tape);
}

CT_TEST(tape, write_dot_has_a_box_per_node_and_edges) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(2, 3));
    small_graph(tape, x);
    char *text = capture(tape, ct_tape_write_dot);
    CHECK(text != NULL);
    char copy[2048];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    CHECK(!strncmp(copy, "digraph", 7), "starts with:\n%s", copy);
    CHECK(count_substr(copy, "shape=box") == 3, "one box per node:\n%s", copy);
    CHECK(strstr(copy, "n0 -> n1;") && strstr(copy, "n1 -> n2;"), "node edges:\n%s", copy);
    CHECK(count_substr(copy, "-> n0;") == 2, "both inputs of mul are leaf edges:\n%s", copy);
    CHECK(count_substr(copy, "->") == 4, "4 edges in all:\n%s", copy);
    CHECK(count_substr(copy, "{") == 1 && strlen(copy) >= 2 && !strcmp(copy + strlen(copy) - 2, "}\n"),
          "one closed graph:\n%s", copy);
    ct_tensor_free(x);
    ct_tape_free(tape);
}

/* loss = Σ (2·x + 3·detach(x)) + Σ detach(x)·w: dx = 2 only; dw = x. */
CT_TEST(tape, detach_stops_the_gradient) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3));
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(3));
    for (int i = 0; i < 3; i++) x->data[i] = (ct_real)(i + 1), w->data[i] = 10;
    ct_tensor *d = ct_detach(tape, x);
    CHECK(!ct_requires_grad(d) && d->data == x->data && ct_tape_node_count(tape) == 0,
          "a detached tensor shares the data, records no node and needs no grad");
    ct_tensor *a = ct_add(tape, ct_mul_scalar(tape, x, 2), ct_mul_scalar(tape, d, 3));
    ct_tensor *b = ct_mul(tape, d, w);
    ct_tensor *loss = ct_add(tape, ct_sum_all(tape, a), ct_sum_all(tape, b));
    CHECK(loss->data[0] == 2 * 6 + 3 * 6 + 10 * 6, "loss %g", (double)loss->data[0]);
    ct_backward(tape, loss);
    for (int i = 0; i < 3; i++) {
        CHECK(x->grad[i] == 2, "dx[%d] = %g: only the un-detached branch counts", i, (double)x->grad[i]);
        CHECK(w->grad[i] == x->data[i], "dw[%d] = %g", i, (double)w->grad[i]);
    }
    CHECK(d->grad == NULL, "the detached view collects nothing");
    /* A loss that only reaches x through detach has no gradient at all. */
    ct_tensor *only = ct_sum_all(tape, ct_mul_scalar(tape, ct_detach(tape, x), 5));
    CHECK(!ct_requires_grad(only));
    ct_tensor_free(x);
    ct_tensor_free(w);
    ct_tape_free(tape);
}

/* y = x·x through one node whose two inputs are the same tensor: both halves of the product
 * rule land in x->grad, so dy/dx = 2x. The same for x + x (2) and for x used by two nodes. */
CT_TEST(tape, gradients_accumulate_when_a_tensor_is_used_twice) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(4));
    for (int i = 0; i < 4; i++) x->data[i] = (ct_real)i - 1.5f; /* -1.5 -0.5 0.5 1.5 */
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, x, x)));
    for (int i = 0; i < 4; i++)
        CHECK(x->grad[i] == 2 * x->data[i], "d(x*x)/dx[%d] = %g, want %g", i, (double)x->grad[i],
              2 * (double)x->data[i]);
    ct_tape_reset(tape);
    ct_tensor_zero_grad(x);
    ct_backward(tape, ct_sum_all(tape, ct_add(tape, x, x)));
    for (int i = 0; i < 4; i++) CHECK(x->grad[i] == 2, "d(x+x)/dx[%d] = %g", i, (double)x->grad[i]);
    ct_tape_reset(tape);
    ct_tensor_zero_grad(x);
    /* x feeds two separate nodes: exp(x) and 3x; d/dx Σ(exp(x) + 3x) = exp(x) + 3. */
    ct_tensor *e = ct_exp(tape, x), *t = ct_mul_scalar(tape, x, 3);
    ct_backward(tape, ct_sum_all(tape, ct_add(tape, e, t)));
    for (int i = 0; i < 4; i++) CHECK_NEAR(x->grad[i], exp((double)x->data[i]) + 3, 1e-5, 1e-5);
    /* An arena leaf accumulates the same way. */
    ct_tape_reset(tape);
    ct_tensor *v = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){3, -4});
    ct_tape_requires_grad(tape, v);
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, v, v)));
    CHECK(v->grad && v->grad[0] == 6 && v->grad[1] == -8);
    ct_tensor_free(x);
    ct_tape_free(tape);
}

static void backward_non_scalar(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(2, 3));
    ct_tensor *y = ct_relu(tape, x);
    ct_backward(tape, y);
}

static void backward_without_grad(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1));
    ct_backward(tape, ct_relu(tape, x));
}

CT_TEST(tape, backward_needs_a_scalar_that_requires_grad) {
    char got[1024];
    CHECK(ct_test_expect_fatal(backward_non_scalar, NULL,
                               "ctape: ct_backward: needs a one-element loss, got shape (2, 3)", got, sizeof got),
          "stderr was: %s", got);
    CHECK(strstr(got, "ct_backward_with") && strstr(got, "called at ") && strstr(got, "test_tape.c:"),
          "should suggest ct_backward_with and name the call site: %s", got);
    CHECK(ct_test_expect_fatal(backward_without_grad, NULL, "ct_backward: output (1,) does not require grad",
                               got, sizeof got),
          "stderr was: %s", got);
}

CT_TEST(tape, grad_enabled_regions_nest) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(2));
    int outer = ct_tape_grad_enabled(tape, 0); /* eval region */
    CHECK(outer == 1, "grad is enabled on a new tape");
    ct_tensor *a = ct_relu(tape, x);
    int inner = ct_tape_grad_enabled(tape, 1); /* a grad region inside it */
    CHECK(inner == 0);
    ct_tensor *b = ct_relu(tape, x);
    int innermost = ct_tape_grad_enabled(tape, 0);
    CHECK(innermost == 1);
    ct_tensor *c = ct_relu(tape, x);
    CHECK(ct_tape_grad_enabled(tape, innermost) == 0);
    ct_tensor *d = ct_relu(tape, x);
    CHECK(ct_tape_grad_enabled(tape, inner) == 1);
    ct_tensor *e = ct_relu(tape, x);
    CHECK(ct_tape_grad_enabled(tape, outer) == 0);
    ct_tensor *f = ct_relu(tape, x);
    CHECK(!ct_requires_grad(a) && ct_requires_grad(b) && !ct_requires_grad(c), "a b c");
    CHECK(ct_requires_grad(d) && !ct_requires_grad(e) && ct_requires_grad(f), "d e f");
    CHECK(ct_tape_node_count(tape) == 3, "nodes for b, d and f only, got %d", ct_tape_node_count(tape));
    CHECK(ct_tape_grad_enabled(tape, 1) == 1, "back to the start");
    ct_tape_reset(tape);
    CHECK(ct_tape_grad_enabled(tape, 1) == 1, "reset leaves the setting alone");
    ct_tensor_free(x);
    ct_tape_free(tape);
}

/* One training-like step big enough to need more than the first 16 MB chunk: a (1024, 1024)
 * input through mul, relu and a linear layer, backward included. */
static ct_tensor *big_step(ct_tape *tape, ct_tensor *w) {
    enum { N = 1024 };
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(N, N));
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)((int)(i % 7) - 3) / 4;
    ct_tape_requires_grad(tape, x);
    ct_tensor *h = ct_relu(tape, ct_mul(tape, x, x));
    ct_tensor *loss = ct_mean_all(tape, ct_linear(tape, h, w, NULL));
    ct_backward(tape, loss);
    return loss;
}

CT_TEST(tape, reset_drops_nodes_and_the_next_step_reuses_the_arena) {
    ct_tape *tape = ct_tape_new();
    ct_arena *arena = ct_tape_arena(tape);
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2, 1024));
    ct_tensor_fill(w, 1);
    ct_tensor *loss1 = big_step(tape, w);
    double value1 = loss1->data[0];
    int nodes = ct_tape_node_count(tape);
    size_t used1 = ct_arena_used(arena), cap1 = ct_arena_capacity(arena);
    CHECK(nodes == 4, "mul, relu, linear, mean: got %d nodes", nodes);
    CHECK(cap1 > ((size_t)16 << 20), "the step spans more than one chunk (%zu bytes)", cap1);
    ct_real g1 = w->grad[5];
    for (int step = 2; step <= 3; step++) {
        ct_tape_reset(tape);
        CHECK(ct_tape_node_count(tape) == 0 && ct_arena_used(arena) == 0, "reset empties the tape");
        ct_tensor *loss = big_step(tape, w);
        CHECK(loss->data[0] == value1, "step %d loss %g, first %g", step, (double)loss->data[0], value1);
        CHECK(ct_tape_node_count(tape) == nodes);
        CHECK(ct_arena_used(arena) == used1, "step %d used %zu bytes, first step %zu", step,
              ct_arena_used(arena), used1);
        CHECK(ct_arena_capacity(arena) == cap1, "step %d grew the arena from %zu to %zu bytes", step,
              cap1, ct_arena_capacity(arena));
    }
    CHECK_NEAR(w->grad[5], 3 * (double)g1, 1e-6, 1e-5); /* the heap parameter kept accumulating */
    ct_test_note("%.1f MB per step", (double)used1 / (1 << 20));
    ct_tensor_free(w);
    ct_tape_free(tape);
}

static void relu_without_tape(void *arg) {
    ct_relu(NULL, (ct_tensor *)arg);
}
static void cross_entropy_without_tape(void *arg) {
    int y[2] = {0, 1};
    ct_cross_entropy(NULL, (ct_tensor *)arg, CT_LABELS(y, 2), CT_CE());
}

/* A NULL tape is a programmer error with a message naming the op, not a crash. */
CT_TEST(tape, null_tape_is_a_clear_error) {
    ct_tensor *x = ct_tensor_new(CT_SHAPE(2, 3));
    char got[512];
    int relu_ok = ct_test_expect_fatal(relu_without_tape, x, "the tape is NULL", got, sizeof got) && strstr(got, "relu");
    char got_ce[512];
    int ce_ok = ct_test_expect_fatal(cross_entropy_without_tape, x, "the tape is NULL", got_ce, sizeof got_ce) &&
                strstr(got_ce, "cross_entropy");
    ct_tensor_free(x);
    CHECK(relu_ok, "got: %s", got);
    CHECK(ce_ok, "got: %s", got_ce);
}
