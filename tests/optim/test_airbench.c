/* tests/optim/test_airbench.c — the airbench recipe's training pieces (optim/airbench.c): the
 * Lookahead-style weight average against a hand computation (parameters and batch-norm statistics
 * averaged and copied back, the integer count left), its decay schedule, its ct_fit hook, and the
 * decoupled "per 1024 examples" hyper-parameters against airbench94's numbers worked by hand. */
#include "../test.h"

#include <string.h>

static int near(double a, double b) { return fabs(a - b) <= 1e-15 * fmax(1, fabs(b)); }

CT_TEST(airbench, lookahead_decay_schedule) {
    /* ρ = 0.95⁵·(t/T)³; 0.95⁵ = 0.7737809375 */
    const ct_lookahead_ema_opts o = CT_LOOKAHEAD_EMA(.total_steps = 476, .start_step = 144);
    CHECK(near(ct_lookahead_ema_decay(o, 476), 0.7737809375), "%.17g", ct_lookahead_ema_decay(o, 476));
    CHECK(near(ct_lookahead_ema_decay(o, 150), 0.7737809375 * (150.0 / 476) * (150.0 / 476) * (150.0 / 476)));
    CHECK(near(ct_lookahead_ema_decay(o, 150), 0.02421424573347473), "%.17g", ct_lookahead_ema_decay(o, 150));
    CHECK(ct_lookahead_ema_decay(o, 0) == 0);
    CHECK(near(ct_lookahead_ema_decay(o, 600), 0.7737809375), "t past the end is the end's ρ");
    const ct_lookahead_ema_opts p = CT_LOOKAHEAD_EMA(.every = 2, .decay_base = 0.5, .decay_pow = 1, .total_steps = 8);
    CHECK(ct_lookahead_ema_decay(p, 6) == 0.1875 && ct_lookahead_ema_decay(p, 8) == 0.25);
}

/* A parameter w (2), a running mean (1) and a count: "training" adds (1, −2) to w and 0.5 to the
 * mean each step and sets the count to t. every 2, from after step 2, ρ = 0.25·t/8:
 *   t = 4: e ← w = (4, −8), mean e = 2
 *   t = 6: w = (6, −12); ρ = 0.1875: e = (4 + 0.8125·2, −8 − 0.8125·4) = (5.625, −11.25); w ← e
 *          mean: 2 + 0.8125·(3 − 2) = 2.8125
 *   t = 8: w = (7.625, −15.25); ρ = 0.25: e = (5.625 + 0.75·2, −11.25 − 0.75·4) = (7.125, −14.25)
 *          mean: w = 2.8125 + 1 = 3.8125, e = 2.8125 + 0.75·1 = 3.5625
 *   finish after one more step: w ← e. */
CT_TEST(airbench, lookahead_average_by_hand) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "fc.weight", CT_SHAPE(2));
    ct_tensor *mean = ct_model_add_buffer(m, "bn.running_mean", CT_SHAPE(1));
    ct_tensor *count = ct_model_add_buffer(m, "bn.num_batches_tracked", CT_SHAPE(1));
    ct_lookahead_ema *la = ct_lookahead_ema_new(m, CT_LOOKAHEAD_EMA(.every = 2, .decay_base = 0.5, .decay_pow = 1,
                                                                     .start_step = 2, .total_steps = 8));
    int averaged = 0;
    for (long t = 1; t <= 8; t++) {
        w->data[0] += 1, w->data[1] -= 2;
        mean->data[0] += 0.5f;
        count->data[0] = (ct_real)t;
        const int did = ct_lookahead_ema_update(la, t);
        CHECK(did == (t == 4 || t == 6 || t == 8), "step %ld: update returned %d", t, did);
        CHECK(ct_lookahead_ema_update(la, t) == 0, "step %ld reported twice averaged twice", t);
        averaged += did;
        if (t == 4) CHECK(ct_lookahead_ema_started(la) && w->data[0] == 4 && w->data[1] == -8 && mean->data[0] == 2);
        if (t == 6)
            CHECK(w->data[0] == 5.625f && w->data[1] == -11.25f && mean->data[0] == 2.8125f, "t 6: (%g, %g), %g",
                  (double)w->data[0], (double)w->data[1], (double)mean->data[0]);
        if (t == 8)
            CHECK(w->data[0] == 7.125f && w->data[1] == -14.25f && mean->data[0] == 3.5625f, "t 8: (%g, %g), %g",
                  (double)w->data[0], (double)w->data[1], (double)mean->data[0]);
        CHECK(count->data[0] == (ct_real)t, "the count was averaged: %g at step %ld", (double)count->data[0], t);
    }
    CHECK(averaged == 3);
    CHECK(ct_lookahead_ema_average(la, 2) == NULL, "num_batches_tracked has no average");
    w->data[0] += 1, w->data[1] -= 2;
    mean->data[0] += 0.5f;
    ct_lookahead_ema_finish(la);
    CHECK(w->data[0] == 7.125f && w->data[1] == -14.25f && mean->data[0] == 3.5625f);
    ct_lookahead_ema_free(la);
    ct_model_free(m);
}

CT_TEST(airbench, lookahead_finish_before_start_changes_nothing) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(3));
    ct_tensor_fill(w, 2);
    ct_lookahead_ema *la = ct_lookahead_ema_new(m, CT_LOOKAHEAD_EMA(.start_step = 10, .total_steps = 20));
    CHECK(ct_lookahead_ema_update(la, 5) == 0 && ct_lookahead_ema_update(la, 10) == 0, "before start_step");
    ct_lookahead_ema_finish(la);
    CHECK(!ct_lookahead_ema_started(la) && w->data[0] == 2 && w->data[2] == 2);
    ct_lookahead_ema_free(la);
    ct_model_free(m);
}

/* As ct_fit's step callback with steps_per_epoch: each epoch ends with the network at the average,
 * as airbench's epoch loop does, so after ct_fit every weight equals its average. */
CT_TEST(airbench, lookahead_as_a_ct_fit_hook) {
    ct_dataset *d = ct_test_blobs(256, 3);
    ct_model *m = ct_model_new();
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 8, 16));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.1"));
    ct_sequential_add(net, ct_linear_new(m, "net.2", 16, 4));
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 32, .seed = 2, .flatten = 1));
    const long per_epoch = ct_loader_batches_per_epoch(l);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_lookahead_ema *la = ct_lookahead_ema_new(m, CT_LOOKAHEAD_EMA(.start_step = per_epoch, .total_steps = 3 * per_epoch,
                                                                     .steps_per_epoch = per_epoch));
    CHECK(ct_fit(m, net, opt, ct_loader_source(l), NULL,
                 CT_FIT(.epochs = 3, .progress = 0, .on_step = ct_lookahead_ema_on_step, .user = la), NULL) == CT_OK,
          "%s", ct_last_error());
    CHECK(ct_lookahead_ema_started(la));
    for (int i = 0; i < ct_model_param_count(m); i++) {
        const ct_tensor *p = ct_model_param(m, i), *e = ct_lookahead_ema_average(la, i);
        CHECK(e && !memcmp(p->data, e->data, p->size * sizeof(ct_real)), "%s is not its average after the run", p->name);
    }
    ct_lookahead_ema_free(la);
    ct_optim_free(opt);
    ct_loader_free(l);
    ct_model_free(m);
    ct_dataset_free(d);
}

/* airbench94: lr 11.5 and wd 0.0153 per 1024, μ 0.85, batch 1024, BN biases 64x:
 *   k = 1024·(1 + 1/0.15) = 1024·23/3;  lr = 11.5·3/(1024·23) = 1.5/1024 = 0.00146484375
 *   decay = 0.0153·1024/k = 0.0153·3/23 = 0.00199565217391304...
 *   λ = decay/lr = 0.0153·1024/11.5 = 1.36236521739130...;  bias lr = 64·lr = 0.09375;  bias λ = λ/64 */
CT_TEST(airbench, decoupled_hyperparameters_by_hand) {
    const ct_decoupled_sgd h = ct_decoupled_to_sgd(CT_DECOUPLED_AIRBENCH94());
    CHECK(near(h.lr, 0.00146484375), "lr %.17g", h.lr);
    CHECK(near(h.decay_per_step, 0.0153 * 3 / 23), "decay %.17g", h.decay_per_step);
    CHECK(near(h.weight_decay, 0.0153 * 1024 / 11.5), "λ %.17g", h.weight_decay);
    CHECK(near(h.weight_decay, 1.3623652173913043), "λ %.17g", h.weight_decay);
    CHECK(near(h.bias_lr, 0.09375), "bias lr %.17g", h.bias_lr);
    CHECK(near(h.bias_weight_decay, 1.3623652173913043 / 64), "bias λ %.17g", h.bias_weight_decay);
    CHECK(h.momentum == 0.85 && h.label_smoothing == 0.2);
    CHECK(near(h.lr * h.weight_decay, h.decay_per_step) && near(h.bias_lr * h.bias_weight_decay, h.decay_per_step));
    /* a loss averaged over the batch: lr·1024, λ/1024 */
    const ct_decoupled_sgd mean = ct_decoupled_to_sgd(CT_DECOUPLED_AIRBENCH94(.mean_loss = 1));
    CHECK(near(mean.lr, 1.5) && near(mean.weight_decay, 1.3623652173913043 / 1024) && near(mean.bias_lr, 96),
          "mean loss: lr %.17g λ %.17g bias lr %.17g", mean.lr, mean.weight_decay, mean.bias_lr);
    /* batch 512: lr unchanged, the decay per step halves */
    const ct_decoupled_sgd half = ct_decoupled_to_sgd(CT_DECOUPLED_AIRBENCH94(.batch = 512));
    CHECK(near(half.lr, 0.00146484375) && near(half.decay_per_step, 0.0153 * 3 / 23 / 2));
}

/* ct_sgd_decoupled_new: SGD Nesterov with the values, the biases' group at 64x the lr and the same
 * decay per step; a summed loss and a mean loss (gradient 1/batch) give the same steps. */
CT_TEST(airbench, decoupled_sgd_groups_and_mean_loss) {
    ct_model *a = ct_model_new(), *b = ct_model_new();
    for (int i = 0; i < 2; i++) {
        ct_model *m = i ? b : a;
        ct_tensor_fill(ct_model_add_param(m, "conv.weight", CT_SHAPE(3, 2)), 0.5f);
        ct_tensor_fill(ct_model_add_param(m, "norm1.bias", CT_SHAPE(3)), -0.25f);
    }
    const int batch = 64;
    ct_optim *sum = ct_sgd_decoupled_new(a, CT_DECOUPLED_AIRBENCH94(.batch = batch), ct_param_name_contains, "norm");
    ct_optim *avg = ct_sgd_decoupled_new(b, CT_DECOUPLED_AIRBENCH94(.batch = batch, .mean_loss = 1),
                                         ct_param_name_contains, "norm");
    const ct_decoupled_sgd h = ct_decoupled_to_sgd(CT_DECOUPLED_AIRBENCH94(.batch = batch));
    CHECK(ct_optim_group_count(sum) == 2 && ct_optim_param_group(sum, 1) == 1 && ct_optim_param_group(sum, 0) == 0);
    CHECK(near(ct_optim_group_lr(sum, 0), h.lr) && near(ct_optim_group_lr(sum, 1), h.bias_lr));
    CHECK(near(ct_optim_group_weight_decay(sum, 0), h.weight_decay) &&
          near(ct_optim_group_weight_decay(sum, 1), h.bias_weight_decay));
    CHECK(ct_optim_momentum(sum) == 0.85);
    double worst = 0;
    for (int step = 0; step < 5; step++) {
        for (int k = 0; k < 2; k++) {
            ct_tensor *pa = ct_model_param(a, k), *pb = ct_model_param(b, k);
            for (size_t i = 0; i < pa->size; i++) {
                const double g_mean = 0.1 * (double)((int)i - 1) + 0.05 * step;
                pa->grad[i] = (ct_real)(g_mean * batch);
                pb->grad[i] = (ct_real)g_mean;
            }
        }
        CHECK(ct_optim_step(sum) == CT_OK && ct_optim_step(avg) == CT_OK);
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < ct_model_param(a, k)->size; i++)
                worst = fmax(worst, fabs(ct_model_param(a, k)->data[i] - ct_model_param(b, k)->data[i]));
    }
    CHECK(worst < 1e-6, "summed and averaged losses moved apart by %g", worst);
    ct_optim_free(sum), ct_optim_free(avg);
    ct_model_free(a), ct_model_free(b);
}
