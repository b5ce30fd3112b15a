/* losses/metrics.c — what training loops report beside the loss. */
#define CT_BUILDING_LIBRARY
#include "losses.h"

int ct_count_correct(const ct_tensor *logits, ct_labels labels) {
    CT_CHECK(logits && logits->ndim == 2, "ct_count_correct", "logits must be 2-D (N, C)");
    const int N = logits->shape[0], C = logits->shape[1];
    CT_CHECK(labels.n == N, "ct_count_correct", "%d labels for %d rows of logits", labels.n, N);
    int correct = 0;
    for (int i = 0; i < N; i++) {
        const ct_real *row = logits->data + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++) best = row[c] > row[best] ? c : best;
        correct += best == labels.data[i];
    }
    return correct;
}
