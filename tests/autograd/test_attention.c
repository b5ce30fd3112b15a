/* tests/autograd/test_attention.c — the fused attention op, multi-head attention and the transformer
 * block: PyTorch reference values and gradients (tests/reference/attention_ref.h), the fused op
 * against the same attention composed from primitives (large enough for the causal row blocks
 * and the threaded path), masks, no-grad mode, parameters and init, error messages, and the
 * gradient checks (group gradcheck, float64 build). */
#include "../test.h"
#include "../reference/attention_ref.h"

#include <stdlib.h>
#include <string.h>

/* Against float64 PyTorch: float32 keeps ~7 digits, a little less after a few GEMMs. */
#ifdef CT_PRECISION_64
#define REF_RTOL 1e-9
#define REF_ATOL 1e-11
#else
#define REF_RTOL 2e-4
#define REF_ATOL 2e-5
#endif

static ct_tensor *tape_random(ct_tape *tape, ct_shape shape, ct_rng *rng) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    ct_tensor_fill_normal(t, rng, 0, 1);
    ct_tape_requires_grad(tape, t);
    return t;
}

static int near(double got, double want) { return fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want); }

/* Compares n values; on the first mismatch fills why and returns 0. Tracks the worst error. */
static int compare(const char *what, const ct_real *got, const double *want, size_t n, double *worst,
                   char *why, size_t why_len) {
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / (REF_ATOL / REF_RTOL + fabs(want[i]));
        if (err > *worst) *worst = err;
        if (!near(got[i], want[i])) {
            snprintf(why, why_len, "%s[%zu] = %.10g, PyTorch %.10g", what, i, (double)got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

static int same_shape(const ct_tensor *t, ct_shape s) {
    if (t->ndim != s.ndim) return 0;
    for (int d = 0; d < s.ndim; d++)
        if (t->shape[d] != s.d[d]) return 0;
    return 1;
}

/* ---- ct_attention against PyTorch ------------------------------------------------------------ */
CT_TEST(attention, op_matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    double worst = 0;
    char why[256];
    for (int c = 0; c < SDPA_REF_COUNT; c++) {
        const sdpa_ref_case *r = &sdpa_ref_cases[c];
        ct_tape_reset(tape);
        ct_tensor *q = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->L, r->d), r->q);
        ct_tensor *k = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->S, r->d), r->k);
        ct_tensor *v = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->S, r->dv), r->v);
        ct_tensor *o = ct_attention(tape, q, k, v, r->causal, r->key_padding);
        CHECK(same_shape(o, CT_SHAPE(r->B, r->H, r->L, r->dv)), "%s: output shape", r->name);
        CHECK(compare("out", o->data, r->out, o->size, &worst, why, sizeof why), "%s: %s", r->name, why);
        ct_real *cot = ct_arena_alloc(ct_tape_arena(tape), o->size * sizeof *cot);
        for (size_t i = 0; i < o->size; i++) cot[i] = (ct_real)r->cotangent[i];
        ct_backward_with(tape, o, cot);
        CHECK(compare("dq", q->grad, r->grad_q, q->size, &worst, why, sizeof why), "%s: %s", r->name, why);
        CHECK(compare("dk", k->grad, r->grad_k, k->size, &worst, why, sizeof why), "%s: %s", r->name, why);
        CHECK(compare("dv", v->grad, r->grad_v, v->size, &worst, why, sizeof why), "%s: %s", r->name, why);
    }
    ct_tape_free(tape);
    ct_test_note("%d cases, worst error %.1e (relative to max(|want|, %.0e))", SDPA_REF_COUNT, worst,
                 REF_ATOL / REF_RTOL);
}

/* ---- the fused op against the composition of primitives -------------------------------------
 * softmax(bmm(q, kᵀ)/√d + M)·v with M (B, 1, L, S) of 0 and −∞, on shapes that exercise the
 * causal row blocks (L > 32), ragged last blocks, L ≠ S, and (B·H ≥ threads) the parallel path. */
static ct_tensor *composed_attention(ct_tape *tape, ct_tensor *q, ct_tensor *k, ct_tensor *v, int causal,
                                     const uint8_t *pad) {
    const int B = q->shape[0], L = q->shape[2], S = k->shape[2], d = q->shape[3];
    ct_tensor *mask = ct_tape_zeros(tape, CT_SHAPE(B, 1, L, S));
    for (int b = 0; b < B; b++)
        for (int i = 0; i < L; i++)
            for (int j = 0; j < S; j++)
                if ((causal && j > i) || (pad && pad[b * S + j])) mask->data[((size_t)b * L + i) * S + j] = -INFINITY;
    ct_tensor *z = ct_mul_scalar(tape, ct_bmm_t(tape, q, 0, k, 1), 1 / sqrt((double)d));
    return ct_bmm(tape, ct_softmax(tape, ct_add(tape, z, mask), -1), v);
}

typedef struct {
    int B, H, L, S, d, dv, causal, pad;
} shape_case;

CT_TEST(attention, fused_matches_composed) {
    static const shape_case cases[] = {
        {2, 3, 70, 70, 16, 8, 1, 1},   /* causal blocks 32 + 32 + 6, padding, parallel over 6 pairs */
        {2, 3, 70, 70, 16, 8, 0, 1},   /* one block */
        {1, 2, 75, 40, 8, 12, 1, 0},   /* causal, L > S: later blocks see every key */
        {2, 1, 33, 90, 8, 4, 1, 1},    /* causal, L < S */
        {1, 1, 100, 64, 32, 32, 1, 0}, /* one pair: threads in the GEMMs instead */
    };
    static const char *names[3] = {"dq", "dk", "dv"};
    ct_tape *fused_tape = ct_tape_new(), *composed_tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const shape_case *s = &cases[c];
        uint8_t pad[2 * 128] = {0};
        CHECK(s->S <= 128, "case %zu: S = %d is more than the padding array holds", c, s->S);
        if (s->pad) /* batch 0 keeps every key, batch 1 drops a few in the middle and the end */
            for (int j = 0; j < s->S; j++) pad[s->S + j] = j % 7 == 3 || j >= s->S - 5;
        const uint8_t *p = s->pad ? pad : NULL;
        ct_tensor *in[3] = {ct_tensor_new_grad(CT_SHAPE(s->B, s->H, s->L, s->d)),
                            ct_tensor_new_grad(CT_SHAPE(s->B, s->H, s->S, s->d)),
                            ct_tensor_new_grad(CT_SHAPE(s->B, s->H, s->S, s->dv))};
        for (int t = 0; t < 3; t++) ct_tensor_fill_normal(in[t], &rng, 0, 1);
        ct_tensor *fused = ct_attention(fused_tape, in[0], in[1], in[2], s->causal, p);
        ct_tensor *composed = composed_attention(composed_tape, in[0], in[1], in[2], s->causal, p);
        CHECK(fused->size == composed->size);
        for (size_t i = 0; i < fused->size; i++) {
            CHECK(fabs(fused->data[i] - composed->data[i]) <= 1e-5, "case %zu: out[%zu] fused %.8g composed %.8g",
                  c, i, (double)fused->data[i], (double)composed->data[i]);
            worst = fmax(worst, fabs(fused->data[i] - composed->data[i]));
        }
        /* gradients of <cot, out>: the fused ones, saved; then the composed ones */
        ct_real *cot = ct_arena_alloc(ct_tape_arena(fused_tape), fused->size * sizeof *cot);
        for (size_t i = 0; i < fused->size; i++) cot[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        ct_backward_with(fused_tape, fused, cot);
        ct_real *fused_grad[3];
        for (int t = 0; t < 3; t++) {
            fused_grad[t] = ct_arena_alloc(ct_tape_arena(fused_tape), in[t]->size * sizeof(ct_real));
            memcpy(fused_grad[t], in[t]->grad, in[t]->size * sizeof(ct_real));
            ct_tensor_zero_grad(in[t]);
        }
        ct_backward_with(composed_tape, composed, cot);
        for (int t = 0; t < 3; t++)
            for (size_t i = 0; i < in[t]->size; i++) {
                double a = fused_grad[t][i], b = in[t]->grad[i];
                CHECK(fabs(a - b) <= 1e-4 + 1e-4 * fabs(b), "case %zu: %s[%zu] fused %.8g composed %.8g", c,
                      names[t], i, a, b);
                worst = fmax(worst, fabs(a - b));
            }
        for (int t = 0; t < 3; t++) ct_tensor_free(in[t]);
        ct_tape_reset(fused_tape);
        ct_tape_reset(composed_tape);
    }
    ct_tape_free(fused_tape);
    ct_tape_free(composed_tape);
    ct_test_note("%zu cases, worst abs difference %.1e", sizeof cases / sizeof cases[0], worst);
}

/* ---- one node, no-grad, masks -------------------------------------------------------------- */
CT_TEST(attention, one_node_and_no_grad_agrees) {
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    ct_tensor *q = tape_random(tape, CT_SHAPE(2, 4, 70, 16), &rng);
    ct_tensor *k = tape_random(tape, CT_SHAPE(2, 4, 70, 16), &rng);
    ct_tensor *v = tape_random(tape, CT_SHAPE(2, 4, 70, 16), &rng);
    ct_tensor *o = ct_attention(tape, q, k, v, 1, NULL);
    CHECK(ct_tape_node_count(tape) == 1 && strcmp(ct_tape_node(tape, 0)->op->name, "attention") == 0,
          "the fused op records exactly one node");
    int was = ct_tape_grad_enabled(tape, 0);
    /* per-thread scratch instead of a saved P; 8 pairs of 70 causal rows: threads and row blocks */
    ct_tensor *eval = ct_attention(tape, q, k, v, 1, NULL);
    ct_tape_grad_enabled(tape, was);
    CHECK(ct_tape_node_count(tape) == 1 && !ct_requires_grad(eval), "no-grad records nothing");
    for (size_t i = 0; i < o->size; i++) CHECK(eval->data[i] == o->data[i], "out[%zu] differs in no-grad", i);
    ct_tape_free(tape);
}

CT_TEST(attention, masks_hide_keys) {
    /* Changing a masked key or value must not change the output, and it gets no gradient. */
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    const int S = 6;
    const uint8_t pad[2 * 6] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1};
    ct_tensor *q = tape_random(tape, CT_SHAPE(2, 2, 6, 4), &rng);
    ct_tensor *k = tape_random(tape, CT_SHAPE(2, 2, S, 4), &rng);
    ct_tensor *v = tape_random(tape, CT_SHAPE(2, 2, S, 3), &rng);
    ct_tensor *o = ct_attention(tape, q, k, v, 1, pad);
    ct_real before[2 * 2 * 6 * 3];
    memcpy(before, o->data, sizeof before);
    ct_real ones[2 * 2 * 6 * 3];
    for (int i = 0; i < 72; i++) ones[i] = 1;
    ct_backward_with(tape, o, ones);
    for (int b = 0; b < 2; b++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < S; j++)
                if (pad[b * S + j])
                    for (int c = 0; c < 4; c++)
                        CHECK(k->grad[((b * 2 + h) * S + j) * 4 + c] == 0, "padded key %d of batch %d has a gradient", j, b);
    /* row i = 0 sees key 0 only (causal): its output is v[0] exactly */
    for (int c = 0; c < 3; c++) CHECK_NEAR(o->data[c], v->data[c], 1e-6, 1e-6);
    /* scramble padded keys and values */
    for (int b = 0; b < 2; b++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < S; j++)
                if (pad[b * S + j]) {
                    for (int c = 0; c < 4; c++) k->data[((b * 2 + h) * S + j) * 4 + c] = 100;
                    for (int c = 0; c < 3; c++) v->data[((b * 2 + h) * S + j) * 3 + c] = -100;
                }
    ct_tensor *again = ct_attention(tape, q, k, v, 1, pad);
    for (int i = 0; i < 72; i++) CHECK_NEAR(again->data[i], before[i], 1e-6, 1e-6);
    ct_tape_free(tape);
}

CT_TEST(attention, all_keys_masked_gives_nan_as_pytorch) {
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 9);
    const uint8_t pad[2 * 3] = {0, 1, 0, 1, 1, 1}; /* batch 1 ignores every key */
    ct_tensor *q = tape_random(tape, CT_SHAPE(2, 1, 2, 4), &rng);
    ct_tensor *k = tape_random(tape, CT_SHAPE(2, 1, 3, 4), &rng);
    ct_tensor *v = tape_random(tape, CT_SHAPE(2, 1, 3, 4), &rng);
    ct_tensor *o = ct_attention(tape, q, k, v, 0, pad);
    for (int i = 0; i < 8; i++) CHECK(isfinite(o->data[i]), "batch 0 is finite");
    for (int i = 8; i < 16; i++) CHECK(isnan(o->data[i]), "batch 1 out[%d] = %g, want NaN", i, (double)o->data[i]);
    ct_tape_free(tape);
}

/* ---- multi-head attention and the block against PyTorch ------------------------------------- */
/* Runs one reference case on a model built to match; returns 0 with why filled on a mismatch. */
static int run_module_case(const mha_ref_case *r, double *worst, char *why, size_t why_len) {
    ct_model *m = ct_model_new();
    ct_module *mod = r->hidden ? ct_transformer_block_new(m, "blk", r->E, r->H, r->hidden, r->causal)
                               : ct_mha_new(m, "attn", r->E, r->H);
    int ok = ct_model_param_count(m) == r->n_params;
    if (!ok) snprintf(why, why_len, "%d parameters, PyTorch has %d", ct_model_param_count(m), r->n_params);
    for (int i = 0; ok && i < r->n_params; i++) {
        ct_tensor *p = ct_model_find_param(m, r->params[i].name);
        ok = p && (int)p->size == r->params[i].size;
        if (!ok) snprintf(why, why_len, "parameter %s missing or of another size", r->params[i].name);
        for (int j = 0; ok && j < r->params[i].size; j++) p->data[j] = (ct_real)r->params[i].value[j];
    }
    ct_tape *tape = ct_tape_new();
    ct_tensor *query = ct_test_leaf(tape, CT_SHAPE(r->B, r->L, r->E), r->query), *key = query, *value = query;
    if (r->key) {
        key = value = ct_test_leaf(tape, CT_SHAPE(r->B, r->S, r->E), r->key);
        if (r->value != r->key) value = ct_test_leaf(tape, CT_SHAPE(r->B, r->S, r->E), r->value);
    }
    ct_tensor *out = NULL;
    if (ok) {
        out = r->hidden ? ct_forward(tape, mod, query)
                        : ct_mha_forward(tape, mod, query, key, value,
                                         (ct_mha_masks){.causal = r->causal, .key_padding = r->key_padding});
        ok = same_shape(out, CT_SHAPE(r->B, r->L, r->E));
        if (!ok) snprintf(why, why_len, "output shape %s", ct_tensor_shape_str(out, (char[96]){0}, 96));
    }
    ok = ok && compare("out", out->data, r->out, out->size, worst, why, why_len);
    if (ok) {
        ct_real *cot = ct_arena_alloc(ct_tape_arena(tape), out->size * sizeof *cot);
        for (size_t i = 0; i < out->size; i++) cot[i] = (ct_real)r->cotangent[i];
        ct_backward_with(tape, out, cot);
        ok = compare(r->key ? "dquery" : "dx", query->grad, r->dquery, query->size, worst, why, why_len);
        ok = ok && (!r->key || compare("dkey", key->grad, r->dkey, key->size, worst, why, why_len));
        ok = ok && (!r->key || value == key ||
                    compare("dvalue", value->grad, r->dvalue, value->size, worst, why, why_len));
    }
    for (int i = 0; ok && i < r->n_params; i++)
        ok = compare(r->params[i].name, ct_model_find_param(m, r->params[i].name)->grad, r->params[i].grad,
                     (size_t)r->params[i].size, worst, why, why_len);
    ct_tape_free(tape);
    ct_model_free(m);
    return ok;
}

static void module_cases(int blocks) {
    double worst = 0;
    int n = 0;
    char why[256] = "";
    for (int c = 0; c < MHA_REF_COUNT; c++) {
        const mha_ref_case *r = &mha_ref_cases[c];
        if ((r->hidden > 0) != blocks) continue;
        CHECK(run_module_case(r, &worst, why, sizeof why), "%s: %s", r->name, why);
        n++;
    }
    ct_test_note("%d cases (output, input and parameter gradients), worst error %.1e", n, worst);
}

CT_TEST(attention, mha_matches_pytorch) { module_cases(0); }
CT_TEST(attention, transformer_block_matches_pytorch) { module_cases(1); }

/* ---- multi-head attention against its textbook composition ---------------------------------
 * The layer reads heads in place from token-major projections (and fuses the q|k|v GEMMs); the
 * textbook version projects with slices of in_proj, permutes (B,T,H,D) -> (B,H,T,D), calls the
 * public ct_attention and permutes back. On shapes with causal row blocks (L > 32), padding and
 * (pairs ≥ threads) the threaded path, both must agree in value and in every gradient. */
static ct_tensor *textbook_mha(ct_tape *t, ct_model *m, ct_tensor *query, ct_tensor *key, ct_tensor *value,
                               int H, ct_mha_masks masks) {
    const int B = query->shape[0], L = query->shape[1], S = key->shape[1], E = query->shape[2], D = E / H;
    ct_tensor *w = ct_model_find_param(m, "attn.in_proj_weight"), *b = ct_model_find_param(m, "attn.in_proj_bias");
    ct_tensor *x[3] = {query, key, value}, *heads[3];
    for (int i = 0; i < 3; i++) {
        const int T = i ? S : L;
        ct_tensor *p = ct_linear(t, ct_reshape(t, x[i], CT_SHAPE(B * T, E)), ct_slice(t, w, 0, i * E, (i + 1) * E),
                                 ct_slice(t, b, 0, i * E, (i + 1) * E));
        heads[i] = ct_permute(t, ct_reshape(t, p, CT_SHAPE(B, T, H, D)), (const int[]){0, 2, 1, 3});
    }
    ct_tensor *o = ct_attention(t, heads[0], heads[1], heads[2], masks.causal, masks.key_padding);
    o = ct_reshape(t, ct_permute(t, o, (const int[]){0, 2, 1, 3}), CT_SHAPE(B * L, E));
    o = ct_linear(t, o, ct_model_find_param(m, "attn.out_proj.weight"), ct_model_find_param(m, "attn.out_proj.bias"));
    return ct_reshape(t, o, CT_SHAPE(B, L, E));
}

CT_TEST(attention, mha_matches_textbook_composition) {
    enum { SELF, SHARED_KV, APART };
    static const struct {
        int kind, B, L, S, E, H, causal, pad;
    } cases[] = {
        {SELF, 2, 70, 70, 32, 4, 1, 1},      /* causal row blocks, padding, 8 pairs */
        {SELF, 3, 40, 40, 24, 2, 0, 0},
        {SHARED_KV, 2, 45, 66, 16, 4, 1, 1}, /* cross, L < S */
        {APART, 2, 50, 20, 16, 2, 1, 0},     /* cross, L > S */
    };
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 21);
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int B = cases[c].B, L = cases[c].L, S = cases[c].S, E = cases[c].E, H = cases[c].H;
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 100 + c);
        ct_module *mha = ct_mha_new(m, "attn", E, H);
        for (int i = 0; i < ct_model_param_count(m); i++) ct_tensor_fill_normal(ct_model_param(m, i), &rng, 0, 0.3);
        uint8_t pad[2 * 128] = {0};
        CHECK(S <= 128 && (!cases[c].pad || B <= 2), "case %zu: the padding array holds 2 × 128 keys", c);
        for (int j = 0; j < S; j++) pad[S + j] = j % 5 == 2 || j >= S - 4; /* batch 1 only */
        ct_mha_masks masks = {.causal = cases[c].causal, .key_padding = cases[c].pad ? pad : NULL};
        ct_tensor *x[3];
        for (int i = 0; i < 3; i++) {
            x[i] = ct_tensor_new_grad(CT_SHAPE(B, i ? S : L, E));
            ct_tensor_fill_normal(x[i], &rng, 0, 1);
        }
        ct_tensor *query = x[0], *key = cases[c].kind == SELF ? x[0] : x[1];
        ct_tensor *value = cases[c].kind == APART ? x[2] : key;
        ct_real *cot = malloc((size_t)B * L * E * sizeof *cot);
        for (int i = 0; i < B * L * E; i++) cot[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        /* gradients of x and of every parameter, from each version */
        double *got[8], *want[8];
        size_t sizes[8];
        int n = 0;
        for (int pass = 0; pass < 2; pass++) {
            ct_model_zero_grad(m);
            for (int i = 0; i < 3; i++) ct_tensor_zero_grad(x[i]);
            ct_tensor *y = pass == 0 ? ct_mha_forward(tape, mha, query, key, value, masks)
                                     : textbook_mha(tape, m, query, key, value, H, masks);
            ct_backward_with(tape, y, cot);
            double **into = pass == 0 ? got : want;
            n = 0;
            ct_tensor *all[8] = {y, x[0], x[1], x[2]};
            int n_all = 4;
            for (int i = 0; i < ct_model_param_count(m); i++) all[n_all++] = ct_model_param(m, i);
            for (int i = 0; i < n_all; i++) {
                sizes[n] = all[i]->size;
                into[n] = malloc(all[i]->size * sizeof(double));
                for (size_t j = 0; j < all[i]->size; j++) into[n][j] = i == 0 ? all[i]->data[j] : all[i]->grad[j];
                n++;
            }
            ct_tape_reset(tape);
        }
        static const char *what[8] = {"out", "dquery", "dkey", "dvalue", "d in_proj_weight", "d in_proj_bias",
                                      "d out_proj.weight", "d out_proj.bias"};
        int bad = -1;
        size_t at = 0;
        for (int i = 0; i < n && bad < 0; i++)
            for (size_t j = 0; j < sizes[i] && bad < 0; j++) {
                double err = fabs(got[i][j] - want[i][j]);
                worst = fmax(worst, err / (1 + fabs(want[i][j])));
                if (err > 1e-4 * (1 + fabs(want[i][j]))) bad = i, at = j;
            }
        double g = bad >= 0 ? got[bad][at] : 0, w = bad >= 0 ? want[bad][at] : 0;
        for (int i = 0; i < n; i++) free(got[i]), free(want[i]);
        for (int i = 0; i < 3; i++) ct_tensor_free(x[i]);
        free(cot);
        ct_model_free(m);
        CHECK(bad < 0, "case %zu: %s[%zu] = %.8g, textbook %.8g", c, bad >= 0 ? what[bad] : "", at, g, w);
    }
    ct_tape_free(tape);
    ct_test_note("%zu cases, worst relative difference %.1e", sizeof cases / sizeof cases[0], worst);
}

/* ---- parameters, init, composition ------------------------------------------------------------ */
CT_TEST(attention, mha_parameters_and_init) {
    ct_model *m = ct_model_new();
    const int E = 64, H = 4;
    ct_mha_new(m, "attn", E, H);
    static const char *names[] = {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                                  "attn.out_proj.bias"};
    CHECK(ct_model_param_count(m) == 4, "PyTorch's four parameters, got %d", ct_model_param_count(m));
    for (int i = 0; i < 4; i++)
        CHECK(ct_model_param(m, i) == ct_model_find_param(m, names[i]), "parameter %d is %s (PyTorch's order)", i,
              names[i]);
    ct_tensor *w = ct_model_find_param(m, "attn.in_proj_weight"), *ow = ct_model_find_param(m, "attn.out_proj.weight");
    CHECK(same_shape(w, CT_SHAPE(3 * E, E)) && same_shape(ow, CT_SHAPE(E, E)));
    CHECK(same_shape(ct_model_find_param(m, "attn.in_proj_bias"), CT_SHAPE(3 * E)));
    /* Xavier-uniform: U(±√(6/(E + 3E))), variance bound²/3 */
    double bound = sqrt(6.0 / (4.0 * E)), var = 0, max = 0;
    for (size_t i = 0; i < w->size; i++) var += w->data[i] * w->data[i], max = fmax(max, fabs(w->data[i]));
    var /= (double)w->size;
    CHECK(max <= bound && max > 0.95 * bound, "in_proj max |w| %g, bound %g", max, bound);
    CHECK(fabs(var / (bound * bound / 3) - 1) < 0.05, "in_proj variance %g, Xavier %g", var, bound * bound / 3);
    /* out_proj: Kaiming-uniform a = √5, i.e. U(±1/√E) */
    max = 0;
    for (size_t i = 0; i < ow->size; i++) max = fmax(max, fabs(ow->data[i]));
    CHECK(max <= 1 / sqrt((double)E) && max > 0.9 / sqrt((double)E), "out_proj max |w| %g", max);
    for (int b = 1; b < 4; b += 2) {
        ct_tensor *bias = ct_model_param(m, b);
        for (size_t i = 0; i < bias->size; i++) CHECK(bias->data[i] == 0, "%s is zero", names[b]);
    }
    ct_model_free(m);
}

/* Self-attention is five nodes — one GEMM for [Q | K | V], no slice, concat or permute — and
 * the gradients reach every block of in_proj. */
CT_TEST(attention, mha_self_attention_is_five_nodes) {
    ct_model *m = ct_model_new();
    ct_module *mha = ct_mha_new(m, "attn", 12, 3);
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 2);
    ct_tensor *x = tape_random(tape, CT_SHAPE(2, 5, 12), &rng);
    ct_tensor *y = ct_forward(tape, mha, x);
    static const char *ops[] = {"reshape", "linear", "attention", "linear", "reshape"};
    CHECK(ct_tape_node_count(tape) == 5, "%d nodes", ct_tape_node_count(tape));
    for (int i = 0; i < 5; i++)
        CHECK(strcmp(ct_tape_node(tape, i)->op->name, ops[i]) == 0, "node %d is %s, want %s", i,
              ct_tape_node(tape, i)->op->name, ops[i]);
    ct_tensor *same = ct_mha_forward(tape, mha, x, x, x, (ct_mha_masks){0});
    for (size_t i = 0; i < y->size; i++) CHECK(same->data[i] == y->data[i], "ct_forward is self-attention");
    ct_real ones[2 * 5 * 12];
    for (int i = 0; i < 2 * 5 * 12; i++) ones[i] = 1;
    ct_backward_with(tape, y, ones);
    ct_tensor *w = ct_model_find_param(m, "attn.in_proj_weight"), *bias = ct_model_find_param(m, "attn.in_proj_bias");
    for (int blk = 0; blk < 3; blk++) {
        double s = 0, sb = 0;
        for (int i = 0; i < 12 * 12; i++) s += fabs(w->grad[blk * 144 + i]);
        for (int i = 0; i < 12; i++) sb += fabs(bias->grad[blk * 12 + i]);
        CHECK(s > 0, "in_proj_weight block %d has no gradient", blk);
        /* softmax is shift-invariant per query, so the k-bias gets (numerically) no gradient */
        CHECK(blk == 1 ? sb < 1e-5 : sb > 0, "in_proj_bias block %d: |grad| sum %g", blk, sb);
    }
    ct_tape_free(tape);
    ct_model_free(m);
}

/* Cross-attention projects through views of in_proj's row blocks ([q], and [kv] when key and
 * value are one tensor): they share the parameter's data and gradient. */
CT_TEST(attention, mha_cross_attention_uses_row_block_views) {
    ct_model *m = ct_model_new();
    ct_module *mha = ct_mha_new(m, "attn", 8, 2);
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 6);
    ct_tensor *q = tape_random(tape, CT_SHAPE(2, 3, 8), &rng), *mem = tape_random(tape, CT_SHAPE(2, 4, 8), &rng);
    ct_tensor *y = ct_mha_forward(tape, mha, q, mem, mem, (ct_mha_masks){0});
    for (int i = 0; i < ct_tape_node_count(tape); i++) {
        const char *op = ct_tape_node(tape, i)->op->name;
        CHECK(strcmp(op, "slice") && strcmp(op, "concat") && strcmp(op, "permute"), "node %d is a %s", i, op);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ct_tape_print(tape, f);
    fclose(f);
    int named = strstr(text, "attn.in_proj_weight[q]") && strstr(text, "attn.in_proj_bias[kv]") &&
                strstr(text, "attn.out_proj.weight");
    free(text);
    CHECK(named, "the tape printout names the parameter blocks");
    ct_real ones[2 * 3 * 8];
    for (int i = 0; i < 2 * 3 * 8; i++) ones[i] = 1;
    ct_backward_with(tape, y, ones);
    ct_tensor *w = ct_model_find_param(m, "attn.in_proj_weight");
    for (int blk = 0; blk < 3; blk++) {
        double s = 0;
        for (int i = 0; i < 8 * 8; i++) s += fabs(w->grad[blk * 64 + i]);
        CHECK(s > 0, "in_proj_weight block %d has no gradient", blk);
    }
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(attention, transformer_block_children) {
    ct_model *m = ct_model_new();
    ct_module *blk = ct_transformer_block_new(m, "blk", 16, 4, 64, 1);
    static const char *names[] = {"blk.ln1.weight", "blk.ln1.bias", "blk.attn.in_proj_weight",
                                  "blk.attn.in_proj_bias", "blk.attn.out_proj.weight", "blk.attn.out_proj.bias",
                                  "blk.ln2.weight", "blk.ln2.bias", "blk.fc1.weight", "blk.fc1.bias",
                                  "blk.fc2.weight", "blk.fc2.bias"};
    CHECK(ct_model_param_count(m) == 12, "%d parameters", ct_model_param_count(m));
    for (int i = 0; i < 12; i++) CHECK(ct_model_find_param(m, names[i]), "missing %s", names[i]);
    CHECK(same_shape(ct_model_find_param(m, "blk.fc1.weight"), CT_SHAPE(64, 16)));
    CHECK(same_shape(ct_model_find_param(m, "blk.fc2.weight"), CT_SHAPE(16, 64)));
    CHECK(ct_model_num_elements(m) == 2 * 32 + 16 * 48 + 48 + 16 * 16 + 16 + 64 * 16 + 64 + 16 * 64 + 16);
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 4);
    ct_tensor *x = tape_random(tape, CT_SHAPE(3, 7, 16), &rng);
    ct_tensor *y = ct_forward(tape, blk, x);
    CHECK(same_shape(y, CT_SHAPE(3, 7, 16)));
    /* causal: the output at position 0 does not depend on later positions */
    ct_tensor *x2 = ct_tape_tensor_from(tape, CT_SHAPE(3, 7, 16), x->data);
    for (int i = 16; i < 7 * 16; i++) x2->data[i] += 1; /* batch 0, positions 1.. */
    ct_tensor *y2 = ct_forward(tape, blk, x2);
    for (int i = 0; i < 16; i++) CHECK_NEAR(y2->data[i], y->data[i], 1e-6, 1e-6);
    CHECK(fabs(y2->data[16] - y->data[16]) > 1e-6, "position 1 does change");
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(attention, transformer_block_summary_shows_children) {
    ct_model *m = ct_model_new();
    ct_module *blk = ct_transformer_block_new(m, "blk", 8, 2, 32, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ct_model_summary(m, blk, CT_SHAPE(2, 5, 8), f);
    fclose(f);
    static const char *rows[] = {"blk ", "blk.ln1 ", "blk.attn ", "blk.attn.out_proj ", "blk.ln2 ", "blk.fc1 ",
                                 "blk.fc2 ", "(2, 5, 8)", "(10, 32)"};
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !missing; i++)
        if (!strstr(text, rows[i])) missing = rows[i];
    CHECK(!missing, "the summary has no \"%s\":\n%s", missing, text);
    free(text);
    ct_model_free(m);
}

/* A tiny block learns to copy the previous token's vector (causal): the loss falls. */
CT_TEST(attention, transformer_block_trains) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 1);
    const int B = 8, L = 6, E = 8;
    ct_module *blk = ct_transformer_block_new(m, "blk", E, 2, 16, 1);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(B, L, E));
        ct_tensor_fill_normal(x, &rng, 0, 1);
        ct_tensor *target = ct_tape_zeros(tape, CT_SHAPE(B, L, E));
        for (int b = 0; b < B; b++)
            for (int t = 1; t < L; t++)
                memcpy(target->data + ((size_t)b * L + t) * E, x->data + ((size_t)b * L + t - 1) * E, E * sizeof(ct_real));
        ct_tensor *diff = ct_sub(tape, ct_forward(tape, blk, x), target);
        ct_tensor *loss = ct_mean_all(tape, ct_mul(tape, diff, diff));
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        ct_backward(tape, loss);
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    CHECK(isfinite(last) && last < 0.6 * first, "loss %g -> %g", first, last);
    ct_test_note("loss %.3f -> %.3f in 150 steps", first, last);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- errors --------------------------------------------------------------------------------- */
static void bad_heads(void *arg) {
    (void)arg;
    ct_mha_new(ct_model_new(), "attn", 10, 3);
}
static void bad_query(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *a = ct_mha_new(m, "attn", 8, 2);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 6));
    ct_mha_forward(tape, a, x, x, x, (ct_mha_masks){0});
}
static void bad_key(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *a = ct_mha_new(m, "attn", 8, 2);
    ct_tape *tape = ct_tape_new();
    ct_mha_forward(tape, a, ct_tape_zeros(tape, CT_SHAPE(2, 3, 8)), ct_tape_zeros(tape, CT_SHAPE(2, 4, 8)),
                   ct_tape_zeros(tape, CT_SHAPE(2, 5, 8)), (ct_mha_masks){0});
}
static void bad_batch(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *a = ct_mha_new(m, "attn", 8, 2);
    ct_tape *tape = ct_tape_new();
    ct_tensor *kv = ct_tape_zeros(tape, CT_SHAPE(3, 4, 8));
    ct_mha_forward(tape, a, ct_tape_zeros(tape, CT_SHAPE(2, 3, 8)), kv, kv, (ct_mha_masks){0});
}
static void bad_block_input(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *blk = ct_transformer_block_new(m, "blk", 8, 2, 16, 0);
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, blk, ct_tape_zeros(tape, CT_SHAPE(6, 8)));
}
static void bad_head_size(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_attention(tape, ct_tape_zeros(tape, CT_SHAPE(1, 2, 3, 4)), ct_tape_zeros(tape, CT_SHAPE(1, 2, 5, 3)),
                 ct_tape_zeros(tape, CT_SHAPE(1, 2, 5, 3)), 0, NULL);
}
static void bad_keys(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_attention(tape, ct_tape_zeros(tape, CT_SHAPE(1, 2, 3, 4)), ct_tape_zeros(tape, CT_SHAPE(1, 2, 5, 4)),
                 ct_tape_zeros(tape, CT_SHAPE(1, 2, 6, 4)), 0, NULL);
}
static void bad_rank(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 4));
    ct_attention(tape, x, x, x, 0, NULL);
}
static void bad_heads_differ(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_attention(tape, ct_tape_zeros(tape, CT_SHAPE(1, 2, 3, 4)), ct_tape_zeros(tape, CT_SHAPE(1, 4, 5, 4)),
                 ct_tape_zeros(tape, CT_SHAPE(1, 4, 5, 4)), 0, NULL);
}

CT_TEST(attention, fatal_messages_name_layer_and_shapes) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_heads, NULL, "ct_mha_new: attn: embed_dim 10 is not divisible by num_heads 3",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_query, NULL, "attn: multi-head attention (E = 8): query (2, 3, 6) must be (B, L, 8)",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_key, NULL, "attn: multi-head attention: query (2, 3, 8), key (2, 4, 8) and "
                               "value (2, 5, 8) need one batch size B", got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_batch, NULL, "query (2, 3, 8), key (3, 4, 8) and value (3, 4, 8) need one batch",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_block_input, NULL, "blk: transformer block (E = 8): input (6, 8) must be (B, L, 8)",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_head_size, NULL, "ct_attention: q (1, 2, 3, 4) and k (1, 2, 5, 3) differ in the "
                               "head size d", got, sizeof got), "%s", got);
    CHECK(strstr(got, "test_attention.c") != NULL, "the message points at the caller's line: %s", got);
    CHECK(ct_test_expect_fatal(bad_keys, NULL, "ct_attention: k (1, 2, 5, 4) and v (1, 2, 6, 4) differ in the "
                               "number of keys S", got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_rank, NULL, "ct_attention: q (2, 3, 4), k (2, 3, 4) and v (2, 3, 4) must be 4-D",
                               got, sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(bad_heads_differ, NULL, "differ in batch or heads (B, H)", got, sizeof got), "%s", got);
}

/* ---- gradient checks (float64) ------------------------------------------------------------- */
#ifdef CT_PRECISION_64
typedef struct {
    int causal;
    const uint8_t *pad;
} sdpa_ctx;

static ct_tensor *f_attention(ct_tape *t, ct_tensor *const *in, void *ctx) {
    const sdpa_ctx *c = ctx;
    return ct_attention(t, in[0], in[1], in[2], c->causal, c->pad);
}

static void attention_gradcheck(int B, int H, int L, int S, int d, int dv, int causal, const uint8_t *pad) {
    ct_tensor *in[3] = {ct_tensor_new_grad(CT_SHAPE(B, H, L, d)), ct_tensor_new_grad(CT_SHAPE(B, H, S, d)),
                        ct_tensor_new_grad(CT_SHAPE(B, H, S, dv))};
    ct_rng rng;
    ct_rng_seed(&rng, (uint64_t)(L * 100 + S * 10 + causal));
    for (int i = 0; i < 3; i++) ct_tensor_fill_normal(in[i], &rng, 0, 1);
    sdpa_ctx ctx = {causal, pad};
    ct_gradcheck_result r = ct_gradcheck(f_attention, &ctx, in, 3, CT_GRADCHECK());
    for (int i = 0; i < 3; i++) ct_tensor_free(in[i]);
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    CHECK(r.passed, "%s", line);
    ct_test_note("%s", line);
}
static const uint8_t pad_2x5[10] = {0, 0, 0, 0, 1, 0, 1, 0, 1, 1};
static const uint8_t pad_2x4[8] = {0, 0, 0, 1, 0, 1, 0, 0};
static const uint8_t pad_1x40[40] = {[5] = 1, [17] = 1, [18] = 1, [38] = 1, [39] = 1};
#define GRADCHECK_BODY(...) attention_gradcheck(__VA_ARGS__)
#else
#define GRADCHECK_BODY(...) CT_SKIP("gradient checks run in the float64 build")
#endif


CT_GRADCHECK_COVERS(attention)
CT_TEST(gradcheck, attention_no_mask) { GRADCHECK_BODY(2, 2, 3, 3, 4, 4, 0, NULL); }
CT_TEST(gradcheck, attention_causal) { GRADCHECK_BODY(1, 2, 4, 4, 3, 3, 1, NULL); }
CT_TEST(gradcheck, attention_key_padding) { GRADCHECK_BODY(2, 1, 3, 5, 3, 3, 0, pad_2x5); }
CT_TEST(gradcheck, attention_causal_and_padding) { GRADCHECK_BODY(2, 2, 4, 4, 2, 2, 1, pad_2x4); }
CT_TEST(gradcheck, attention_cross_L_ne_S) { GRADCHECK_BODY(1, 2, 3, 5, 4, 4, 0, NULL); }
CT_TEST(gradcheck, attention_dv_ne_d) { GRADCHECK_BODY(2, 1, 3, 4, 2, 5, 0, NULL); }
CT_TEST(gradcheck, attention_causal_L_gt_S) { GRADCHECK_BODY(1, 1, 5, 3, 2, 3, 1, NULL); }
CT_TEST(gradcheck, attention_causal_row_blocks) { GRADCHECK_BODY(1, 1, 40, 40, 2, 1, 1, pad_1x40); }

#ifdef CT_PRECISION_64
/* Through the layers: inputs first, then every parameter of the model (heap tensors with grads,
 * which the module reads directly: perturbing them perturbs the function). */
typedef struct {
    ct_module *mod;
    ct_mha_masks masks;
    int cross, block; /* cross: 1 key and value apart, 2 one tensor for both */
} module_ctx;

static ct_tensor *f_module(ct_tape *t, ct_tensor *const *in, void *ctx) {
    const module_ctx *c = ctx;
    if (c->block) return ct_forward(t, c->mod, in[0]);
    ct_tensor *key = c->cross ? in[1] : in[0], *value = c->cross == 1 ? in[2] : key;
    return ct_mha_forward(t, c->mod, in[0], key, value, c->masks);
}

static void module_gradcheck(ct_model *m, module_ctx *ctx, ct_shape qshape, ct_shape kvshape) {
    ct_tensor *in[32];
    const int n_data = ctx->cross == 1 ? 3 : ctx->cross == 2 ? 2 : 1;
    int n_in = n_data;
    ct_rng rng;
    ct_rng_seed(&rng, 77);
    for (int i = 0; i < n_in; i++) {
        in[i] = ct_tensor_new_grad(i == 0 ? qshape : kvshape);
        ct_tensor_fill_normal(in[i], &rng, 0, 1);
    }
    for (int i = 0; i < ct_model_param_count(m); i++) {
        in[n_in] = ct_model_param(m, i);
        ct_tensor_fill_normal(in[n_in], &rng, 0, 0.5); /* non-zero biases, non-unit norms */
        n_in++;
    }
    ct_gradcheck_result r = ct_gradcheck(f_module, ctx, in, n_in, CT_GRADCHECK());
    for (int i = 0; i < n_data; i++) ct_tensor_free(in[i]);
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    CHECK(r.passed, "%s", line);
    ct_test_note("%s", line);
}
#endif

CT_TEST(gradcheck, mha_self_causal_padding) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_model *m = ct_model_new();
    static const uint8_t pad[2 * 3] = {0, 0, 1, 0, 0, 0};
    module_ctx ctx = {ct_mha_new(m, "attn", 4, 2), {.causal = 1, .key_padding = pad}, 0, 0};
    module_gradcheck(m, &ctx, CT_SHAPE(2, 3, 4), CT_SHAPE(2, 3, 4));
    ct_model_free(m);
#endif
}

CT_TEST(gradcheck, mha_cross) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_model *m = ct_model_new();
    static const uint8_t pad[2 * 4] = {0, 0, 0, 1, 0, 1, 0, 0};
    module_ctx ctx = {ct_mha_new(m, "attn", 6, 3), {.key_padding = pad}, 1, 0};
    module_gradcheck(m, &ctx, CT_SHAPE(2, 2, 6), CT_SHAPE(2, 4, 6));
    ct_model_free(m);
#endif
}

CT_TEST(gradcheck, mha_cross_shared_key_value) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_model *m = ct_model_new();
    module_ctx ctx = {ct_mha_new(m, "attn", 4, 2), {.causal = 1}, 2, 0};
    module_gradcheck(m, &ctx, CT_SHAPE(2, 3, 4), CT_SHAPE(2, 4, 4));
    ct_model_free(m);
#endif
}

CT_TEST(gradcheck, transformer_block) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_model *m = ct_model_new();
    module_ctx ctx = {ct_transformer_block_new(m, "blk", 4, 2, 6, 1), {0}, 0, 1};
    module_gradcheck(m, &ctx, CT_SHAPE(2, 3, 4), CT_SHAPE(2, 3, 4));
    ct_model_free(m);
#endif
}
