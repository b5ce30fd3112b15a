/* examples/learn/04_softmax_cross_entropy.c — lesson 4: softmax cross-entropy, its gradient p − y,
 * the log-sum-exp trick, and softmax collapse in float32.
 *
 *     build/examples/learn/04_softmax_cross_entropy
 *
 * For logits z (C of them) and label y:
 *     p_c = e^(z_c) / Σ_k e^(z_k)                      softmax
 *     L   = −log p_y = log Σ_k e^(z_k) − z_y           cross-entropy
 * Differentiate the second form: ∂/∂z_c log Σ_k e^(z_k) = e^(z_c)/Σ_k e^(z_k) = p_c, and ∂z_y/∂z_c
 * is 1 for c = y, else 0. So
 *     ∂L/∂z_c = p_c − [c = y]                           (p − y, with y one-hot)
 * the probability the model gave each class minus what it should have given: the whole backward
 * of the fused op, and why it is fused (the composed softmax → log → pick chain would divide by
 * small probabilities on the way back).
 *
 * The log-sum-exp trick: e^(z) overflows float32 above z ≈ 88.7, so log Σ e^(z_k) is computed as
 *     m + log Σ_k e^(z_k − m),   m = max_k z_k
 * where every exponent is ≤ 0 and the largest term is exactly 1.
 *
 * Softmax collapse (Prieto et al. 2025, "Grokking at the edge of numerical stability"): when the
 * label's logit leads the others by a gap g, p_y = 1/(1 + (C − 1)·e^(−g)). In float32, 1 + e^(−g)
 * rounds to 1 once e^(−g) < 2^−24 (g > 16.6): p_y is exactly 1, the loss exactly 0 and the label's
 * gradient p_y − 1 exactly 0; past g ≈ 87 even e^(−g) is below the smallest normal float (ctape's
 * vectorised exp flushes it to 0; with subnormals it would last to g ≈ 104) and every gradient is 0. A model
 * that keeps growing its logits stops learning with nothing printed. StableMax replaces e^x by
 *     s(x) = x + 1 for x ≥ 0,   1/(1 − x) for x < 0
 * whose ratios fall polynomially, not exponentially: at a gap of 100, p of a wrong class is still
 * about 1/101 of p_y's scale, and the gradient lives.
 * Plain forms: ct_ref_softmax_* and ct_ref_log_softmax_* (autograd/reference.c) are the loops; the
 * fused cross-entropy's composed twin is ct_cross_entropy_reference, StableMax's
 * ct_stablemax_cross_entropy_reference (losses/losses.h), each tested against the fused op. */
#include <ctape.h>

#include <math.h>
#include <stdio.h>

/* The loss and gradient of one row of logits under cross-entropy or StableMax. */
static double row_loss(const ct_real *z, int C, int y, int stablemax, ct_real *grad) {
    ct_tensor *logits = ct_tensor_new_grad(CT_SHAPE(1, C));
    for (int c = 0; c < C; c++) logits->data[c] = z[c];
    ct_tape *tape = ct_tape_new();
    const int labels[1] = {y};
    ct_tensor *L = stablemax ? ct_stablemax_cross_entropy(tape, logits, CT_LABELS(labels, 1), CT_STABLEMAX())
                             : ct_cross_entropy(tape, logits, CT_LABELS(labels, 1), CT_CE());
    ct_backward(tape, L);
    const double loss = L->data[0];
    for (int c = 0; c < C; c++) grad[c] = logits->grad[c];
    ct_tape_free(tape);
    ct_tensor_free(logits);
    return loss;
}

int main(void) {
    /* 1. p − y on a small example */
    const ct_real z[3] = {2.0f, 1.0f, 0.1f};
    ct_real grad[3];
    const double loss = row_loss(z, 3, 0, 0, grad);
    double p[3], sum = 0;
    for (int c = 0; c < 3; c++) sum += p[c] = exp(z[c]);
    printf("z = (2, 1, 0.1), label 0: softmax p = (%.4f, %.4f, %.4f), L = −log p_0 = %.4f (tape: %.4f)\n",
           p[0] / sum, p[1] / sum, p[2] / sum, -log(p[0] / sum), loss);
    printf("p − y  = (%.4f, %.4f, %.4f)\ntape ∂L/∂z = (%.4f, %.4f, %.4f)\n\n", p[0] / sum - 1, p[1] / sum, p[2] / sum,
           (double)grad[0], (double)grad[1], (double)grad[2]);

    /* 2. the log-sum-exp trick */
    const float big[2] = {1000.0f, 0.0f};
    const float naive = logf(expf(big[0]) + expf(big[1])) - big[0];
    const ct_real zbig[2] = {1000, 0};
    printf("z = (1000, 0), label 0: naive log(e^1000 + e^0) − 1000 in float32 = %g (e^1000 overflows)\n", (double)naive);
    printf("with the max taken out first: %g (ctape's cross-entropy: %g)\n\n", (double)(log1pf(expf(-1000.0f))),
           row_loss(zbig, 2, 0, 0, grad));

    /* 3. softmax collapse, and StableMax */
    printf("the label's logit ahead of the other nine by a gap g (10 classes), float32:\n");
    printf("%6s | %12s %12s %12s | %12s %12s\n", "gap", "CE loss", "∂L/∂z_y", "∂L/∂z_other", "StableMax", "∂L/∂z_other");
    const double gaps[] = {5, 10, 17, 40, 90, 110};
    for (int g = 0; g < 6; g++) {
        ct_real row[10] = {0}, cgrad[10], sgrad[10];
        row[3] = (ct_real)gaps[g];
        const double ce = row_loss(row, 10, 3, 0, cgrad), sm = row_loss(row, 10, 3, 1, sgrad);
        printf("%6g | %12.4g %12.4g %12.4g | %12.4g %12.4g\n", gaps[g], ce, (double)cgrad[3], (double)cgrad[0], sm,
               (double)sgrad[0]);
    }
    ct_real row[10] = {0}, cgrad[10], sgrad[10];
    row[3] = 110;
    const double collapsed = row_loss(row, 10, 3, 0, cgrad);
    row_loss(row, 10, 3, 1, sgrad);
    int zero = 1;
    for (int c = 0; c < 10; c++) zero &= cgrad[c] == 0;
    printf("\nat a gap of 110: cross-entropy's loss is %g and its gradient %s; StableMax's gradient on a wrong class "
           "is %.4g\n", collapsed, zero ? "exactly 0 (learning has stopped)" : "not 0", (double)sgrad[0]);
    return 0;
}
