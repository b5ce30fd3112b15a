/* autograd/gradcheck.c — central differences against the tape's analytic gradient.
 *
 * For a random cotangent c, L(inputs) = <c, f(inputs)> is a scalar whose gradient the tape
 * computes in one backward pass; each element is then compared with
 *     dL/dx_i ≈ (L(x_i + h) − L(x_i − h)) / 2h.
 * A random c (not all ones) catches backward functions that mix up output positions. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double inner(const ct_tensor *out, const double *c) {
    double s = 0;
    for (size_t i = 0; i < out->size; i++) s += c[i] * (double)out->data[i];
    return s;
}

/* A second backward on the same tape must add the same gradient again (ct_backward's contract,
 * PyTorch's retain_graph): every input's gradient doubles. It fails for a backward that changes
 * what its forward saved or reads a gradient buffer it does not own. The inputs' gradients are
 * left as after the first pass. Returns 1 when they doubled; *err is the worst deviation,
 * relative to the largest gradient of that input. */
static int backward_again_doubles(ct_tape *tape, ct_tensor *out, const ct_real *cotangent,
                                  ct_tensor *const *inputs, int n_inputs, double *err) {
    ct_real *first[CT_NODE_MAX_INPUTS * 4] = {0};
    CT_CHECK(n_inputs <= (int)(sizeof first / sizeof first[0]), "ct_gradcheck", "%d inputs (at most %d)",
             n_inputs, (int)(sizeof first / sizeof first[0]));
    for (int k = 0; k < n_inputs; k++) {
        if (!ct_requires_grad(inputs[k])) continue;
        first[k] = malloc((inputs[k]->size ? inputs[k]->size : 1) * sizeof(ct_real));
        if (!first[k]) ct_fatal("ct_gradcheck", "out of memory");
        memcpy(first[k], inputs[k]->grad, inputs[k]->size * sizeof(ct_real));
    }
    ct_backward_with(tape, out, cotangent);
    *err = 0;
    for (int k = 0; k < n_inputs; k++) {
        if (!first[k]) continue;
        ct_tensor *x = inputs[k];
        double scale = 0;
        for (size_t i = 0; i < x->size; i++) scale = fmax(scale, fabs((double)first[k][i]));
        for (size_t i = 0; i < x->size; i++) {
            double d = fabs((double)x->grad[i] - 2.0 * (double)first[k][i]) / (scale > 0 ? scale : 1);
            *err = isnan(d) ? INFINITY : fmax(*err, d);
        }
        memcpy(x->grad, first[k], x->size * sizeof(ct_real));
        free(first[k]);
    }
    return *err <= 64 * CT_REAL_EPS;
}

ct_gradcheck_result ct_gradcheck(ct_gradcheck_fn fn, void *ctx, ct_tensor *const *inputs,
                                 int n_inputs, ct_gradcheck_opts opts) {
    ct_gradcheck_result r = {.passed = 1, .worst_input = -1};
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < n_inputs; k++) {
        CT_CHECK(!(inputs[k]->flags & CT_TENSOR_ARENA), "ct_gradcheck",
                 "input %d %s is a tape tensor; pass heap tensors (ct_tensor_new_grad)", k,
                 ct_shp(inputs[k]));
        ct_tensor_zero_grad(inputs[k]);
    }

    ct_tensor *out = fn(tape, inputs, ctx);
    CT_CHECK(ct_requires_grad(out), "ct_gradcheck",
             "the output %s does not depend on any input that requires grad", ct_shp(out));
    size_t n_out = out->size;
    double *c = malloc((n_out ? n_out : 1) * sizeof *c);
    ct_real *c_real = malloc((n_out ? n_out : 1) * sizeof *c_real);
    if (!c || !c_real) ct_fatal("ct_gradcheck", "out of memory");
    ct_rng rng;
    ct_rng_seed(&rng, opts.seed);
    for (size_t i = 0; i < n_out; i++) {
        c_real[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        c[i] = (double)c_real[i];
    }
    ct_backward_with(tape, out, c_real);
    r.repeat_ok = backward_again_doubles(tape, out, c_real, inputs, n_inputs, &r.repeat_err);
    r.passed = r.repeat_ok;

    double worst_score = -1;
    for (int k = 0; k < n_inputs; k++) {
        ct_tensor *x = inputs[k];
        if (!ct_requires_grad(x)) continue;
        for (size_t i = 0; i < x->size; i++) {
            ct_real saved = x->data[i];
            ct_tape_reset(tape);
            ct_tape_grad_enabled(tape, 0);
            x->data[i] = (ct_real)((double)saved + opts.step);
            double up = inner(fn(tape, inputs, ctx), c);
            ct_tape_reset(tape);
            x->data[i] = (ct_real)((double)saved - opts.step);
            double down = inner(fn(tape, inputs, ctx), c);
            x->data[i] = saved;
            ct_tape_grad_enabled(tape, 1);

            double numeric = (up - down) / (2 * opts.step);
            double analytic = (double)x->grad[i];
            double abs_err = fabs(analytic - numeric);
            double allowed = opts.atol + opts.rtol * fabs(numeric);
            double score = isfinite(abs_err) ? abs_err / allowed : INFINITY;
            r.checked++;
            if (score > worst_score) {
                worst_score = score;
                r.max_abs_err = abs_err;
                /* a relative error only where the rtol term governs; below |numeric| = atol/rtol
                 * (a gradient of 0 or nearly) it would divide by almost nothing: NaN, abs only */
                r.max_rel_err = opts.rtol * fabs(numeric) > opts.atol ? abs_err / fabs(numeric) : NAN;
                r.worst_input = k;
                r.worst_index = i;
                r.analytic = analytic;
                r.numeric = numeric;
            }
        }
    }
    r.passed = r.passed && worst_score <= 1.0;
    free(c);
    free(c_real);
    ct_tape_free(tape);
    return r;
}

void ct_gradcheck_describe(const ct_gradcheck_result *r, char *buf, size_t len) {
    char rel[96];
    if (isnan(r->max_rel_err))
        snprintf(rel, sizeof rel, "abs only: |numeric| %.2e is below atol/rtol", fabs(r->numeric));
    else
        snprintf(rel, sizeof rel, "rel %.2e", r->max_rel_err);
    if (!r->repeat_ok)
        snprintf(buf, len, "FAIL: a second backward on the same tape did not double the gradients "
                 "(off by %.2e of the largest): a backward assigns (=) where it must add (+=), or changes what "
                 "its forward saved", r->repeat_err);
    else if (r->checked == 0)
        snprintf(buf, len, "nothing checked (no input requires grad)");
    else if (r->passed)
        snprintf(buf, len, "ok, %zu elements (worst: abs %.2e, %s at input %d [%zu])", r->checked,
                 r->max_abs_err, rel, r->worst_input, r->worst_index);
    else
        snprintf(buf, len, "FAIL at input %d [%zu]: analytic %.10g, numeric %.10g (abs %.2e, %s)",
                 r->worst_input, r->worst_index, r->analytic, r->numeric, r->max_abs_err, rel);
}
