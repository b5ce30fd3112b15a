/* tests/nn/test_tta.c — test-time augmentation (ct_tta_logits): airbench94's views and weights on a
 * model whose "logits" are its input pixels (so the average is the averaged image, written out by
 * hand here), and on a flip-invariant model. */
#include "../test.h"

#include <string.h>

/* One 1×4×5 image and its six level-2 views, worked out by hand from torch's F.pad 'reflect' (pad 1
 * of [a0 a1 a2 a3 a4] is [a1 a0 a1 a2 a3 a4 a3]; airbench takes padded[0:H, 0:W] and padded[2:, 2:]
 * and mirrors each). E.g. down_right's row 0 is padded row 0 = image row 1 [9 2 6 5 3] at padded
 * columns 0..4 = image columns 1 0 1 2 3. The pixels are not an affine function of the position
 * (whose view averages would coincide under other view sets). */
enum { TH = 4, TW = 5, TS = TH * TW };
static const double image[TS] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};
static const double flipped[TS] = {5, 1, 4, 1, 3, 3, 5, 6, 2, 9, 9, 7, 9, 8, 5, 4, 8, 3, 2, 3};
static const double down_right[TS] = {2, 9, 2, 6, 5, 1, 3, 1, 4, 1, 2, 9, 2, 6, 5, 8, 5, 8, 9, 7};
static const double down_right_flipped[TS] = {5, 6, 2, 9, 2, 1, 4, 1, 3, 1, 5, 6, 2, 9, 2, 7, 9, 8, 5, 8};
static const double up_left[TS] = {2, 6, 5, 3, 5, 8, 9, 7, 9, 7, 2, 3, 8, 4, 8, 8, 9, 7, 9, 7};
static const double up_left_flipped[TS] = {5, 3, 5, 6, 2, 7, 9, 7, 9, 8, 8, 4, 8, 3, 2, 7, 9, 7, 9, 8};

CT_TEST(tta, levels_average_the_hand_computed_views) {
    ct_model *m = ct_model_new();
    ct_module *net = ct_flatten_new(m, "flat"); /* logits = the pixels */
    ct_tensor *x = ct_tensor_new(CT_SHAPE(1, 1, TH, TW));
    for (int k = 0; k < TS; k++) x->data[k] = (ct_real)image[k];
    ct_tensor *l0 = ct_tta_logits(m, net, x, 0), *l1 = ct_tta_logits(m, net, x, 1), *l2 = ct_tta_logits(m, net, x, 2);
    CHECK(l2->ndim == 2 && l2->shape[0] == 1 && l2->shape[1] == TS);
    for (int k = 0; k < TS; k++) {
        const double mirror = 0.5 * image[k] + 0.5 * flipped[k];
        const double translate = 0.5 * (0.5 * down_right[k] + 0.5 * down_right_flipped[k]) +
                                 0.5 * (0.5 * up_left[k] + 0.5 * up_left_flipped[k]);
        CHECK(l0->data[k] == (ct_real)image[k]);
        CHECK(l1->data[k] == (ct_real)mirror, "level 1 [%d] = %g, want %g", k, (double)l1->data[k], mirror);
        CHECK(l2->data[k] == (ct_real)(0.5 * mirror + 0.5 * translate), "level 2 [%d] = %g, want %g", k,
              (double)l2->data[k], 0.5 * mirror + 0.5 * translate);
    }
    /* the first value by hand: ¼(3 + 5) + ⅛(2 + 5 + 2 + 5) = 3.75 */
    CHECK(l2->data[0] == (ct_real)3.75);
    for (int k = 0; k < TS; k++) CHECK(x->data[k] == (ct_real)image[k], "x is not changed");
    ct_tensor_free(l0), ct_tensor_free(l1), ct_tensor_free(l2);
    ct_tensor_free(x);
    ct_model_free(m);
}

/* batch norm → global average pool → linear: a flip does not change its output, so the mirror TTA
 * is the plain logits. Also: the model runs in evaluation mode (its running statistics unchanged)
 * and is back in training mode after. */
CT_TEST(tta, flip_invariant_model_mirror_tta_is_the_plain_logits) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *net = ct_sequential_new(m, "net");
    ct_module *bn = ct_batch_norm_new(m, "net.0", 3, CT_BATCH_NORM());
    ct_sequential_add(net, bn);
    ct_sequential_add(net, ct_global_avg_pool2d_new(m, "net.1"));
    ct_sequential_add(net, ct_linear_new(m, "net.2", 3, 5));
    ct_tensor *rm = ct_model_find_buffer(m, "net.0.running_mean");
    for (int c = 0; c < 3; c++) rm->data[c] = (ct_real)(0.1 * c);
    ct_tensor *x = ct_tensor_new(CT_SHAPE(4, 3, 6, 7));
    ct_rng r;
    ct_rng_seed(&r, 8);
    ct_tensor_fill_uniform(x, &r, -2, 2);

    ct_model_train(m, 0);
    ct_tape *tape = ct_tape_new();
    ct_tensor *plain = ct_forward(tape, net, x);
    ct_model_train(m, 1);
    ct_tensor *mirror = ct_tta_logits(m, net, x, 1), *full = ct_tta_logits(m, net, x, 2);
    CHECK(bn->training == 1, "the mode is restored");
    for (int c = 0; c < 3; c++) CHECK(rm->data[c] == (ct_real)(0.1 * c), "evaluation mode: running stats unchanged");
    CHECK(mirror->shape[0] == 4 && mirror->shape[1] == 5);
    double worst = 0, moved = 0;
    for (size_t k = 0; k < plain->size; k++) {
        worst = fmax(worst, fabs((double)mirror->data[k] - plain->data[k]));
        moved = fmax(moved, fabs((double)full->data[k] - plain->data[k]));
    }
    CHECK(worst <= 16 * CT_REAL_EPS, "mirror TTA differs from the plain logits by %.3g", worst);
    CHECK(moved > 1e-3, "the translated views do change this model's logits (by %.3g)", moved);
    ct_tensor_free(mirror), ct_tensor_free(full);
    ct_tensor_free(x);
    ct_tape_free(tape);
    ct_model_free(m);
}

static void tta_bad_level(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_tta_logits(m, ct_flatten_new(m, "f"), ct_tensor_new(CT_SHAPE(1, 1, 4, 4)), 3);
}

static void tta_one_column(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_tta_logits(m, ct_flatten_new(m, "f"), ct_tensor_new(CT_SHAPE(1, 1, 4, 1)), 2);
}

CT_TEST(tta, refuses_bad_levels_and_shapes) {
    char got[512];
    CHECK(ct_test_expect_fatal(tta_bad_level, NULL, "level 3 must be 0 (none), 1 (mirror) or 2", got, sizeof got),
          "stderr was: %s", got);
    CHECK(ct_test_expect_fatal(tta_one_column, NULL, "with H, W >= 2", got, sizeof got), "stderr was: %s", got);
}
