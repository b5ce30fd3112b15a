/* examples/learn/02_vectors_and_broadcasting.c — lesson 2: gradients of tensors, broadcasting,
 * and the gradient check that catches a wrong backward.
 *
 *     build/examples/learn/02_vectors_and_broadcasting [DIR]     (the Graphviz file goes to DIR, default .)
 *
 * With tensors the chain rule is the same, one element at a time. For y = f(x) with x and y
 * vectors, the Jacobian J (J_ij = ∂y_i/∂x_j) can be huge (a 512×512 activation has 2^36 entries),
 * but backpropagation never forms it: each op receives dL/dy (a vector shaped like y) and returns
 *     dL/dx_j = Σ_i dL/dy_i · ∂y_i/∂x_j      (the vector-Jacobian product vᵀJ)
 * in the time of its forward. Element-wise ops have a diagonal J (y = x², dL/dx = dL/dy · 2x);
 * y = A·x has J = A, so dL/dx = Aᵀ·dL/dy.
 *
 * Broadcasting: y = x + b with x (3, 4) and b (4) adds b to every row: b is used three times, so
 * its gradient is the sum of the three rows of dL/dy. Every broadcast input's gradient is such a
 * sum over the dimensions it was stretched along; ctape's ops do that sum for you. The plain loop
 * that shows it is ct_ref_add_backward in autograd/reference.c: da[A(i)] += dout[i] for every output
 * element i, so a stretched element collects one share per copy. The program writes the graph of
 * this part as broadcasting.dot: y is one node with two edges into y·y, its two uses, and b one node.
 *
 * How do we know a backward is right? Compare it with the definition of the derivative: move one
 * input element by ±h, run the forward, and divide the change by 2h (a central difference, error
 * O(h²)). ct_gradcheck does this for every element of every input against the tape's gradient.
 * The last part of the program writes an op (y = x³, with the public op header autograd/op.h) twice:
 * once with the correct backward 3x², once with a forgotten factor 3, and the check tells them apart. */
#include <ctape.h>
#include <autograd/op.h>

#include <math.h>
#include <stdio.h>

/* ---- an op written by hand: y = x³ ------------------------------------------------------------ */
/* y = x³;  dx += dy·3x² */
static void cube_backward(ct_tape *tape, ct_node *n) {
    const ct_tensor *x = n->in[0];
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    for (size_t i = 0; i < x->size; i++) dx[i] += n->out->grad[i] * 3 * x->data[i] * x->data[i];
}
/* the same with the 3 forgotten: dx += dy·x² */
static void wrong_cube_backward(ct_tape *tape, ct_node *n) {
    const ct_tensor *x = n->in[0];
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    for (size_t i = 0; i < x->size; i++) dx[i] += n->out->grad[i] * x->data[i] * x->data[i];
}
static const ct_op op_cube = {"cube", "y = x³; dx = dy·3x²", cube_backward};
static const ct_op op_wrong_cube = {"wrong_cube", "y = x³; dx = dy·x² (wrong)", wrong_cube_backward};

static ct_tensor *cube_with(ct_tape *tape, ct_tensor *x, const ct_op *op) {
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), op, &x, 1, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = x->data[i] * x->data[i] * x->data[i];
    return y;
}

/* The functions checked: Σ cube(x) with either backward. */
static ct_tensor *right(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return (void)ctx, ct_sum_all(tape, cube_with(tape, in[0], &op_cube));
}
static ct_tensor *wrong(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return (void)ctx, ct_sum_all(tape, cube_with(tape, in[0], &op_wrong_cube));
}

static void print_matrix(const char *name, const ct_real *v, int rows, int cols) {
    printf("%s =\n", name);
    for (int r = 0; r < rows; r++) {
        printf("   ");
        for (int c = 0; c < cols; c++) printf(" %7.3f", (double)v[r * cols + c]);
        printf("\n");
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    /* 1. broadcasting: L = Σ (x + b)² / 2, so dL/dy = y and dL/db = Σ over rows of y */
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3, 4)), *b = ct_tensor_new_grad(CT_SHAPE(4));
    for (int i = 0; i < 12; i++) x->data[i] = (ct_real)(0.5 * i - 2);
    for (int j = 0; j < 4; j++) b->data[j] = (ct_real)(j - 1.5);
    ct_tape *tape = ct_tape_new();
    ct_tensor *y = ct_add(tape, x, b);
    ct_backward(tape, ct_mul_scalar(tape, ct_sum_all(tape, ct_mul(tape, y, y)), 0.5));
    print_matrix("y = x + b (b added to every row); dL/dy = y", y->data, 3, 4);
    print_matrix("dL/db from the tape", b->grad, 1, 4);
    ct_real column_sums[4] = {0};
    for (int i = 0; i < 12; i++) column_sums[i % 4] += y->data[i];
    print_matrix("the sum of the rows of dL/dy", column_sums, 1, 4);
    int wrong_count = 0;
    for (int j = 0; j < 4; j++) wrong_count += fabs(column_sums[j] - b->grad[j]) > 1e-5;
    char path[1024];
    snprintf(path, sizeof path, "%s/broadcasting.dot", dir);
    FILE *dot = fopen(path, "w");
    if (dot) {
        x->name = "x", b->name = "b";
        ct_tape_write_dot_with(tape, dot, CT_PRINT(.values = 1, .grads = 1));
        printf("Graphviz: %s   (dot -Tpng %s -o picture.png)\n", path, path);
    }
    if (!dot || fclose(dot) != 0) printf("(could not write %s)\n", path);
    ct_tape_free(tape);

    /* 2. the gradient check: a central difference for every element */
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(5));
    for (int i = 0; i < 5; i++) z->data[i] = (ct_real)(0.3 * i - 0.7);
    char line[256];
    ct_gradcheck_result ok = ct_gradcheck(right, NULL, &z, 1, CT_GRADCHECK());
    ct_gradcheck_describe(&ok, line, sizeof line);
    printf("\ncube with dx = dy·3x²: %s\n", line);
    ct_gradcheck_result bad = ct_gradcheck(wrong, NULL, &z, 1, CT_GRADCHECK());
    ct_gradcheck_describe(&bad, line, sizeof line);
    printf("cube with dx = dy·x²:  %s\n", line);
    printf("(the wrong backward is off by the factor 3: analytic %.4f against numeric %.4f)\n", bad.analytic, bad.numeric);
    wrong_count += !ok.passed || bad.passed;

    ct_tensor_free(x), ct_tensor_free(b), ct_tensor_free(z);
    printf("\n%s\n", wrong_count ? "MISMATCH" : "dL/db is the row sum of dL/dy, and the gradient check caught the wrong backward.");
    return wrong_count != 0;
}
