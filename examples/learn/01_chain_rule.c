/* examples/learn/01_chain_rule.c — lesson 1: the chain rule on scalars, on the tape.
 *
 *     build/examples/learn/01_chain_rule [DIR]     (Graphviz files go to DIR, default the current directory)
 *
 * Backpropagation is the chain rule applied in reverse order of the computation. Take micrograd's
 * first example (Karpathy, "The spelled-out intro to neural networks and backpropagation"):
 *
 *     a = 2,  b = −3,  c = 10,  f = −2
 *     e = a·b          (−6)
 *     d = e + c        (4)
 *     L = d·f          (−8)
 *
 * We want dL/da, dL/db, dL/dc, dL/df: how L moves when each input moves a little. Going backwards:
 *     dL/dL = 1
 *     L = d·f   ->  dL/dd = f = −2,           dL/df = d = 4
 *     d = e + c ->  dL/de = dL/dd·1 = −2,     dL/dc = dL/dd·1 = −2      (a sum passes the gradient on)
 *     e = a·b   ->  dL/da = dL/de·b = 6,      dL/db = dL/de·a = −4      (a product swaps its inputs)
 * Each step needs only the gradient arriving from above and the op's own local derivative. That
 * is all ct_backward does: every op recorded a node on the tape as it ran (the forward), and the
 * backward walks the nodes from the last to the first, each one adding its inputs' gradients.
 *
 * The program builds L on the tape, prints every node with its value and its gradient
 * (ct_tape_print_with), compares the gradients with the hand computation above and with a
 * numerical derivative (L(a + h) − L(a − h))/2h, then does the same for micrograd's neuron,
 * o = tanh(x1·w1 + x2·w2 + b). Both graphs are written for Graphviz (ct_tape_write_dot_with, values
 * and gradients on every node) as chain_rule.dot and neuron.dot; `dot -Tpng neuron.dot -o neuron.png`
 * draws them (Debian's graphviz; examples/learn/pictures/ has them drawn). */
#include <ctape.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A scalar that collects a gradient, with a name for the printout. */
static ct_tensor *scalar(const char *name, double v) {
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(1));
    t->data[0] = (ct_real)v;
    t->name = name;
    return t;
}

static ct_tensor *expression(ct_tape *tape, ct_tensor *a, ct_tensor *b, ct_tensor *c, ct_tensor *f) {
    ct_tensor *e = ct_mul(tape, a, b);
    ct_tensor *d = ct_add(tape, e, c);
    return ct_mul(tape, d, f);
}

/* dL/dx by central difference: move x by ±h, run the forward again (no gradients needed). */
static double numeric(ct_tensor *x, ct_tensor *a, ct_tensor *b, ct_tensor *c, ct_tensor *f) {
    const double h = 1e-3, keep = x->data[0];
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    x->data[0] = (ct_real)(keep + h);
    const double up = expression(tape, a, b, c, f)->data[0];
    x->data[0] = (ct_real)(keep - h);
    const double down = expression(tape, a, b, c, f)->data[0];
    x->data[0] = (ct_real)keep;
    ct_tape_free(tape);
    return (up - down) / (2 * h);
}

/* The tape as a Graphviz file DIR/name, with values and gradients; a message when it cannot be written. */
static void write_dot(const ct_tape *tape, const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "w");
    if (!out) return (void)printf("(could not write %s)\n", path);
    ct_tape_write_dot_with(tape, out, CT_PRINT(.values = 1, .grads = 1));
    if (fclose(out) != 0) return (void)printf("(could not write %s)\n", path);
    printf("Graphviz: %s   (dot -Tpng %s -o picture.png)\n", path, path);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    ct_tensor *a = scalar("a", 2), *b = scalar("b", -3), *c = scalar("c", 10), *f = scalar("f", -2);
    ct_tape *tape = ct_tape_new();
    ct_tensor *L = expression(tape, a, b, c, f);
    ct_backward(tape, L);

    printf("L = (a·b + c)·f = %g\n\nThe tape after ct_backward (values, and dL/d of each):\n", (double)L->data[0]);
    ct_tape_print_with(tape, stdout, CT_PRINT(.values = 1, .grads = 1));

    printf("\n%-4s %10s %10s %10s\n", "", "tape", "by hand", "numeric");
    const struct {
        ct_tensor *t;
        double by_hand;
    } rows[] = {{a, -2.0 * -3}, {b, -2.0 * 2}, {c, -2}, {f, 4}};
    int wrong = 0;
    for (int i = 0; i < 4; i++) {
        const double got = rows[i].t->grad[0], num = numeric(rows[i].t, a, b, c, f);
        printf("dL/d%-2s %8g %10g %10.4f\n", rows[i].t->name, got, rows[i].by_hand, num);
        wrong += got != rows[i].by_hand || fabs(num - got) > 1e-2;
    }
    write_dot(tape, dir, "chain_rule.dot");
    ct_tape_free(tape);

    /* micrograd's neuron: o = tanh(n), n = x1·w1 + x2·w2 + b, with b chosen so n = 0.8814 and
     * o = 1/√2. do/dn = 1 − o² = 0.5; then each product swaps: do/dx1 = 0.5·w1 = −1.5,
     * do/dw1 = 0.5·x1 = 1, do/dx2 = 0.5·w2 = 0.5, do/dw2 = 0.5·x2 = 0. */
    ct_tensor *x1 = scalar("x1", 2), *x2 = scalar("x2", 0), *w1 = scalar("w1", -3), *w2 = scalar("w2", 1),
              *bias = scalar("bias", 6.8813735870195432);
    tape = ct_tape_new();
    ct_tensor *n = ct_add(tape, ct_add(tape, ct_mul(tape, x1, w1), ct_mul(tape, x2, w2)), bias);
    ct_tensor *o = ct_tanh(tape, n);
    ct_backward(tape, o);
    printf("\nmicrograd's neuron: o = tanh(x1·w1 + x2·w2 + b) = %.4f\n", (double)o->data[0]);
    printf("do/dx1 = %.4f  do/dw1 = %.4f  do/dx2 = %.4f  do/dw2 = %.4f  (micrograd: -1.5, 1.0, 0.5, 0.0)\n",
           (double)x1->grad[0], (double)w1->grad[0], (double)x2->grad[0], (double)w2->grad[0]);
    wrong += fabs(x1->grad[0] + 1.5) > 1e-4 || fabs(w1->grad[0] - 1) > 1e-4 || fabs(x2->grad[0] - 0.5) > 1e-4 ||
             w2->grad[0] != 0;
    write_dot(tape, dir, "neuron.dot");
    ct_tape_free(tape);
    ct_tensor *all[] = {a, b, c, f, x1, x2, w1, w2, bias};
    for (int i = 0; i < 9; i++) ct_tensor_free(all[i]);

    printf("\n%s\n", wrong ? "MISMATCH: the tape disagrees with the hand computation"
                           : "The tape's gradients agree with the hand computation and the numerical derivative.");
    return wrong != 0;
}
