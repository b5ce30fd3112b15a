/* nn/tta.c — test-time augmentation: a batch's logits averaged over flipped and translated views
 * (airbench94's tta_level 0, 1, 2; the views and weights in nn/nn.h). */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <stdlib.h>
#include <string.h>

/* torch's 'reflect' for an overshoot of at most n − 1: −1 → 1, n → n − 2 */
static inline int reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

/* view(n, c, y, x) = x(n, c, r(y − d), r(x' − d)) with x' = W − 1 − x when flipped: the image
 * moved by d pixels along both axes, then mirrored (airbench flips the translated view). */
static void make_view(ct_tensor *view, const ct_tensor *x, int d, int flip) {
    const int NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    for (int p = 0; p < NC; p++)
        for (int y = 0; y < H; y++) {
            const ct_real *src = x->data + ((size_t)p * H + reflect(y - d, H)) * W;
            ct_real *dst = view->data + ((size_t)p * H + y) * W;
            for (int i = 0; i < W; i++) dst[i] = src[reflect((flip ? W - 1 - i : i) - d, W)];
        }
}

ct_tensor *ct_tta_logits(ct_model *m, ct_module *net, const ct_tensor *x, int level) {
    static const char *op = "ct_tta_logits";
    char xs[96];
    CT_CHECK(m && net, op, "the model and the net must be given");
    CT_CHECK(level >= 0 && level <= 2, op, "level %d must be 0 (none), 1 (mirror) or 2 (mirror + translate)", level);
    CT_CHECK(x && x->ndim == 4 && x->shape[0] >= 1 && (level < 2 || (x->shape[2] >= 2 && x->shape[3] >= 2)), op,
             "x %s must be images (N, C, H, W)%s", x ? ct_tensor_shape_str(x, xs, sizeof xs) : "NULL",
             level == 2 ? " with H, W >= 2 (level 2 translates by one pixel with reflect padding)" : "");
    /* (shift d, flip, weight) of each view */
    static const struct {
        int d, flip;
        double weight;
    } views[3][6] = {{{0, 0, 1}}, {{0, 0, 0.5}, {0, 1, 0.5}},
                     {{0, 0, 0.25}, {0, 1, 0.25}, {1, 0, 0.125}, {1, 1, 0.125}, {-1, 0, 0.125}, {-1, 1, 0.125}}};
    static const int n_views[3] = {1, 2, 6};
    const int N = x->shape[0];
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    const int was = net->training;
    ct_model_train(m, 0);
    ct_tensor *view = ct_tensor_new(ct_tensor_shape(x)), *out = NULL;
    double *sum = NULL;
    size_t K = 0;
    for (int v = 0; v < n_views[level]; v++) {
        make_view(view, x, views[level][v].d, views[level][v].flip);
        const ct_tensor *logits = ct_forward(tape, net, view);
        CT_CHECK(logits && logits->ndim == 2 && logits->shape[0] == N, op,
                 "%s must map x %s to logits (%d, K), gave %s", net->name, ct_tensor_shape_str(x, xs, sizeof xs), N,
                 logits ? ct_tensor_shape_str(logits, (char[96]){0}, 96) : "NULL");
        if (!out) {
            out = ct_tensor_new(ct_tensor_shape(logits));
            K = logits->size;
            sum = calloc(K, sizeof *sum);
            CT_CHECK(sum, op, "out of memory for %zu logits", K);
        }
        CT_CHECK(logits->size == K, op, "%s gave logits of another shape for view %d", net->name, v);
        for (size_t k = 0; k < K; k++) sum[k] += views[level][v].weight * (double)logits->data[k];
        ct_tape_reset(tape);
    }
    for (size_t k = 0; k < K; k++) out->data[k] = (ct_real)sum[k];
    free(sum);
    ct_tensor_free(view);
    ct_model_train(m, was);
    ct_tape_free(tape);
    return out;
}
