/* examples/learn/03_mlp_step_three_ways.c — lesson 3: one training step of a small MLP, by hand, on
 * the tape, and with the optimizer; the numbers agree.
 *
 *     build/examples/learn/03_mlp_step_three_ways
 *
 * The network: x (N = 2 samples, 3 features) -> linear 3→4 -> relu -> linear 4→2 -> softmax
 * cross-entropy, mean over the batch. Forward, with W1 (4, 3), b1 (4), W2 (2, 4), b2 (2):
 *     a = x·W1ᵀ + b1          (2, 4)   pre-activation
 *     h = relu(a)             (2, 4)
 *     z = h·W2ᵀ + b2          (2, 2)   logits
 *     L = (1/N)·Σ_i −log softmax(z_i)_{y_i}
 * Backward, each line the chain rule through one op (lesson 4 derives the first):
 *     dz  = (softmax(z) − Y)/N           Y one-hot
 *     dW2 = dzᵀ·h,   db2 = Σ_i dz_i      a linear layer's weight gradient: output grad ᵀ · its input
 *     dh  = dz·W2                        and its input gradient: output grad · weight
 *     da  = dh ⊙ [a > 0]                 relu passes the gradient where it was positive
 *     dW1 = daᵀ·x,   db1 = Σ_i da_i
 * Then SGD: θ ← θ − lr·dθ. The program computes all of this with plain loops in double, then with
 * ct_linear / ct_relu / ct_cross_entropy and ct_backward, then lets ct_sgd take the step, and
 * prints the three side by side. The same formulas as plain functions, one per op, are
 * ct_ref_linear_forward/_backward, ct_ref_relu_* and ct_ref_log_softmax_* in autograd/reference.c;
 * tests/autograd/test_reference.c checks them against the fast ops used here. */
#include <ctape.h>

#include <math.h>
#include <stdio.h>

enum { N = 2, IN = 3, HID = 4, OUT = 2 };

static const double X[N][IN] = {{0.5, -1.0, 2.0}, {1.5, 0.2, -0.4}};
static const int Y[N] = {1, 0};

int main(void) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *fc1 = ct_linear_new(m, "fc1", IN, HID), *fc2 = ct_linear_new(m, "fc2", HID, OUT);
    ct_tensor *W1 = ct_linear_weight(fc1), *b1 = ct_linear_bias(fc1), *W2 = ct_linear_weight(fc2), *b2 = ct_linear_bias(fc2);
    const double lr = 0.5;

    /* ---- 1. by hand, in double ---- */
    double a[N][HID], h[N][HID], z[N][OUT], dz[N][OUT], dW2[OUT][HID] = {{0}}, db2[OUT] = {0}, dh[N][HID],
        da[N][HID], dW1[HID][IN] = {{0}}, db1[HID] = {0}, L = 0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < HID; j++) {
            a[i][j] = b1->data[j];
            for (int k = 0; k < IN; k++) a[i][j] += X[i][k] * W1->data[j * IN + k];
            h[i][j] = a[i][j] > 0 ? a[i][j] : 0;
        }
        double mx = -INFINITY, s = 0;
        for (int o = 0; o < OUT; o++) {
            z[i][o] = b2->data[o];
            for (int j = 0; j < HID; j++) z[i][o] += h[i][j] * W2->data[o * HID + j];
            mx = fmax(mx, z[i][o]);
        }
        for (int o = 0; o < OUT; o++) s += exp(z[i][o] - mx);
        L += (mx + log(s) - z[i][Y[i]]) / N;
        for (int o = 0; o < OUT; o++) dz[i][o] = (exp(z[i][o] - mx) / s - (o == Y[i])) / N;
    }
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            db2[o] += dz[i][o];
            for (int j = 0; j < HID; j++) dW2[o][j] += dz[i][o] * h[i][j];
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < HID; j++) {
            dh[i][j] = 0;
            for (int o = 0; o < OUT; o++) dh[i][j] += dz[i][o] * W2->data[o * HID + j];
            da[i][j] = a[i][j] > 0 ? dh[i][j] : 0;
            db1[j] += da[i][j];
            for (int k = 0; k < IN; k++) dW1[j][k] += da[i][j] * X[i][k];
        }

    /* ---- 2. on the tape ---- */
    ct_tensor *x = ct_tensor_new(CT_SHAPE(N, IN));
    for (int i = 0; i < N * IN; i++) x->data[i] = (ct_real)X[i / IN][i % IN];
    ct_tape *tape = ct_tape_new();
    ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, fc2, ct_relu(tape, ct_forward(tape, fc1, x))),
                                       CT_LABELS(Y, N), CT_CE());
    ct_backward(tape, loss);
    printf("loss: by hand %.6f, tape %.6f\n\n", L, (double)loss->data[0]);
    printf("%-10s %12s %12s\n", "gradient", "by hand", "tape");
    double worst = fabs(L - loss->data[0]);
    for (int j = 0; j < HID; j++)
        for (int k = 0; k < IN; k++) {
            if (j < 2) printf("dW1[%d][%d] %12.6f %12.6f\n", j, k, dW1[j][k], (double)W1->grad[j * IN + k]);
            worst = fmax(worst, fabs(dW1[j][k] - W1->grad[j * IN + k]));
        }
    printf("   ... (%d more)\n", HID * IN - 2 * IN);
    for (int j = 0; j < HID; j++) worst = fmax(worst, fabs(db1[j] - b1->grad[j]));
    for (int o = 0; o < OUT; o++) {
        printf("db2[%d]     %12.6f %12.6f\n", o, db2[o], (double)b2->grad[o]);
        worst = fmax(worst, fabs(db2[o] - b2->grad[o]));
        for (int j = 0; j < HID; j++) worst = fmax(worst, fabs(dW2[o][j] - W2->grad[o * HID + j]));
    }
    printf("largest difference over every gradient: %.1e (float32 rounding)\n\n", worst);

    /* ---- 3. the optimizer's step against θ − lr·dθ by hand ---- */
    const double w1_before = W1->data[0], b2_before = b2->data[1];
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = lr));
    ct_optim_step(opt);
    printf("SGD, lr %.1f: W1[0][0] %.6f -> by hand %.6f, ct_sgd %.6f\n", lr, w1_before, w1_before - lr * dW1[0][0],
           (double)W1->data[0]);
    printf("             b2[1]    %.6f -> by hand %.6f, ct_sgd %.6f\n", b2_before, b2_before - lr * db2[1], (double)b2->data[1]);
    const double step_error = fmax(fabs(w1_before - lr * dW1[0][0] - W1->data[0]), fabs(b2_before - lr * db2[1] - b2->data[1]));
    printf("\n%s\n", worst < 1e-6 && step_error < 1e-6 ? "The three ways agree." : "MISMATCH");
    ct_optim_free(opt);
    ct_tape_free(tape);
    ct_tensor_free(x);
    ct_model_free(m);
    return !(worst < 1e-6 && step_error < 1e-6);
}
