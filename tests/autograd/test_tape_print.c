/* tests/autograd/test_tape_print.c — the tape as a teaching instrument: micrograd's example printed with
 * values and gradients, and the Graphviz export drawing a shared input once. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static ct_tensor *scalar(const char *name, double v) {
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(1));
    t->data[0] = (ct_real)v;
    t->name = name;
    return t;
}

/* micrograd's lecture: a = 2, b = −3, c = 10, e = a·b, d = e + c, f = −2, L = d·f = −8;
 * dL/da = 6, dL/db = −4, dL/dc = −2, dL/df = 4. */
CT_TEST(tape_print, micrograd_example_with_values_and_grads) {
    ct_tensor *a = scalar("a", 2), *b = scalar("b", -3), *c = scalar("c", 10), *f = scalar("f", -2);
    ct_tape *tape = ct_tape_new();
    ct_tensor *L = ct_mul(tape, ct_add(tape, ct_mul(tape, a, b), c), f);
    ct_backward(tape, L);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_tape_print_with(tape, out, CT_PRINT(.values = 1, .grads = 1));
    fclose(out);
    const char *want[] = {"parameter      a(1,)   = 2  grad = 6", "parameter      b(1,)   = -3  grad = -4",
                          "parameter      c(1,)   = 10  grad = -2", "parameter      f(1,)   = -2  grad = 4",
                          "mul", "value = -8", "grad  = 1", "value = 4"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(strstr(text, want[i]), "the printout lacks \"%s\":\n%s", want[i], text);
    free(text);
    ct_tape_free(tape);
    ct_tensor_free(a), ct_tensor_free(b), ct_tensor_free(c), ct_tensor_free(f);
}

/* y = x·x + x: x is one node with three edges, and its gradient 2x + 1 sums the three uses. */
CT_TEST(tape_print, dot_draws_a_shared_input_once) {
    ct_tensor *x = scalar("x", 3);
    ct_tape *tape = ct_tape_new();
    ct_backward(tape, ct_add(tape, ct_mul(tape, x, x), x));
    CHECK_NEAR(x->grad[0], 7, 0, 0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_tape_write_dot_with(tape, out, CT_PRINT(.values = 1, .grads = 1));
    fclose(out);
    int nodes = 0, edges = 0;
    for (const char *p = text; (p = strstr(p, "leaf0 [")); p++) nodes++;
    for (const char *p = text; (p = strstr(p, "leaf0 -> ")); p++) edges++;
    CHECK(nodes == 1 && edges == 3, "x drawn %d times with %d edges (want once, 3 edges):\n%s", nodes, edges, text);
    CHECK(!strstr(text, "leaf1"), "a second leaf node for the same tensor:\n%s", text);
    CHECK(strstr(text, "grad 7") && strstr(text, "#aec7e8"), "no gradient or parameter colour:\n%s", text);
    free(text);
    ct_tape_free(tape);
    ct_tensor_free(x);
}

/* Long tensors: the first elements, then mean and range; NaN counted apart. */
CT_TEST(tape_print, long_tensors_are_summarised) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(100));
    for (int i = 0; i < 100; i++) x->data[i] = (ct_real)i;
    x->data[99] = NAN;
    x->name = "x";
    ct_tape *tape = ct_tape_new();
    ct_relu(tape, x);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_tape_print_with(tape, out, CT_PRINT(.values = 1, .max_elements = 3));
    fclose(out);
    CHECK(strstr(text, "[0, 1, 2, …] mean 49 in [0, 98] (1 not finite)"), "summary:\n%s", text);
    free(text);
    ct_tape_free(tape);
    ct_tensor_free(x);
}

/* A model with more leaves than a fixed table holds (a deep network's parameters): every leaf is
 * drawn, with its edge, and printed. */
CT_TEST(tape_print, every_leaf_of_a_large_tape_is_drawn) {
    enum { LEAVES = 300 };
    ct_tensor *w[LEAVES];
    ct_tape *tape = ct_tape_new();
    ct_tensor *sum = NULL;
    for (int i = 0; i < LEAVES; i++) {
        w[i] = scalar("w", 1);
        sum = sum ? ct_add(tape, sum, w[i]) : ct_mul(tape, w[i], w[i]);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_tape_write_dot(tape, out);
    fclose(out);
    char want[64];
    snprintf(want, sizeof want, "leaf%d -> n%d;", LEAVES - 1, LEAVES - 1);
    CHECK(strstr(text, "  leaf299 [") && strstr(text, want), "the 300th leaf is missing from the graph");
    free(text), text = NULL;
    out = open_memstream(&text, &len);
    ct_tape_print_with(tape, out, CT_PRINT(.values = 1));
    fclose(out);
    int listed = 0;
    for (const char *p = text; (p = strstr(p, "parameter      w(1,)")); p++) listed++;
    CHECK(listed == LEAVES, "%d of %d leaves listed", listed, LEAVES);
    free(text);
    ct_tape_free(tape);
    for (int i = 0; i < LEAVES; i++) ct_tensor_free(w[i]);
}

/* Names are the user's: quotes and backslashes in them are escaped, so the file stays valid Graphviz;
 * and intermediates have a colour of their own beside parameters (blue) and inputs (grey). */
CT_TEST(tape_print, dot_escapes_names_and_colours_intermediates) {
    ct_tensor *x = scalar("say \"hi\" \\ 1", 2);
    ct_tensor *c = ct_tensor_new(CT_SHAPE(1));
    c->data[0] = 3;
    ct_tape *tape = ct_tape_new();
    ct_mul(tape, ct_add(tape, x, c), x);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_tape_write_dot(tape, out);
    fclose(out);
    CHECK(strstr(text, "label=\"say \\\"hi\\\" \\\\ 1\\n(1,)"), "name not escaped:\n%s", text);
    CHECK(strstr(text, "#aec7e8") && strstr(text, "#dddddd") && strstr(text, "#fff2cc"),
          "parameter, input and intermediate colours:\n%s", text);
    free(text);
    ct_tape_free(tape);
    ct_tensor_free(x), ct_tensor_free(c);
}
