/* tests/autograd/test_ops.c — forward values of every op on small hand-computed inputs, the PyTorch
 * gradients at kinks, numerics at extreme values, no-grad mode, and the fatal messages. */
#include "../test.h"

#include <string.h>

#define TOL 1e-5 /* float32 builds too */

static ct_tensor *leaf(ct_tape *tape, ct_shape s, const ct_real *v) {
    ct_tensor *t = ct_tape_tensor_from(tape, s, v);
    ct_tape_requires_grad(tape, t);
    return t;
}

static int same_shape(const ct_tensor *t, ct_shape s) {
    if (t->ndim != s.ndim) return 0;
    for (int d = 0; d < s.ndim; d++)
        if (t->shape[d] != s.d[d]) return 0;
    return 1;
}

static void backward_ones(ct_tape *tape, ct_tensor *y) {
    ct_real *ones = ct_arena_alloc(ct_tape_arena(tape), y->size * sizeof *ones);
    for (size_t i = 0; i < y->size; i++) ones[i] = 1;
    ct_backward_with(tape, y, ones);
}

CT_TEST(ops, broadcast_add_sub_mul_div) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *a = leaf(tape, CT_SHAPE(2, 3), (ct_real[]){1, 2, 3, 4, 5, 6});
    ct_tensor *b = leaf(tape, CT_SHAPE(3), (ct_real[]){10, 20, 30});
    ct_tensor *y = ct_add(tape, a, b);
    CHECK(same_shape(y, CT_SHAPE(2, 3)));
    CHECK(y->data[0] == 11 && y->data[4] == 25 && y->data[5] == 36);
    backward_ones(tape, y);
    CHECK(b->grad[0] == 2 && b->grad[1] == 2 && b->grad[2] == 2, "db sums over the broadcast rows");
    CHECK(a->grad[3] == 1);

    ct_tensor *c = leaf(tape, CT_SHAPE(2, 1), (ct_real[]){2, 3});
    ct_tensor *r = leaf(tape, CT_SHAPE(1, 3), (ct_real[]){1, 10, 100});
    ct_tensor *m = ct_mul(tape, c, r); /* outer product (2,3) */
    CHECK(same_shape(m, CT_SHAPE(2, 3)));
    CHECK(m->data[0] == 2 && m->data[2] == 200 && m->data[3] == 3 && m->data[5] == 300);
    backward_ones(tape, m);
    CHECK(c->grad[0] == 111 && c->grad[1] == 111 && r->grad[0] == 5 && r->grad[2] == 5);

    ct_tensor *s = ct_tape_tensor_from(tape, (ct_shape){.ndim = 0}, (ct_real[]){4});
    ct_tensor *d = ct_sub(tape, s, b); /* () − (3,) */
    CHECK(same_shape(d, CT_SHAPE(3)) && d->data[0] == -6 && d->data[2] == -26);
    ct_tensor *q = ct_div(tape, a, c); /* (2,3) / (2,1) */
    CHECK_NEAR(q->data[2], 1.5, TOL, TOL);
    CHECK_NEAR(q->data[3], 4.0 / 3.0, TOL, TOL);

    /* (2,1,3) · (1,4,1) -> (2,4,3) */
    ct_tensor *u = ct_tape_zeros(tape, CT_SHAPE(2, 1, 3)), *v = ct_tape_zeros(tape, CT_SHAPE(1, 4, 1));
    for (int i = 0; i < 6; i++) u->data[i] = (ct_real)(i + 1);
    for (int i = 0; i < 4; i++) v->data[i] = (ct_real)(10 * (i + 1));
    ct_tensor *w = ct_mul(tape, u, v);
    CHECK(same_shape(w, CT_SHAPE(2, 4, 3)));
    CHECK(w->data[0] == 10 && w->data[1 * 3 + 2] == 60 && w->data[(1 * 4 + 3) * 3 + 1] == 200);
    ct_tape_free(tape);
}

CT_TEST(ops, pow_maximum_minimum_where) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *a = leaf(tape, CT_SHAPE(3), (ct_real[]){2, 1, 3});
    ct_tensor *b = leaf(tape, CT_SHAPE(3), (ct_real[]){3, 1, 0});
    ct_tensor *p = ct_pow(tape, a, b);
    CHECK(p->data[0] == 8 && p->data[1] == 1 && p->data[2] == 1);

    ct_tensor *x = leaf(tape, CT_SHAPE(3), (ct_real[]){1, 5, 2});
    ct_tensor *z = leaf(tape, CT_SHAPE(3), (ct_real[]){3, 5, 0});
    ct_tensor *mx = ct_maximum(tape, x, z), *mn = ct_minimum(tape, x, z);
    CHECK(mx->data[0] == 3 && mx->data[1] == 5 && mx->data[2] == 2);
    CHECK(mn->data[0] == 1 && mn->data[1] == 5 && mn->data[2] == 0);
    backward_ones(tape, mx);
    CHECK(x->grad[0] == 0 && x->grad[1] == 0.5 && x->grad[2] == 1, "maximum splits ties evenly");
    CHECK(z->grad[0] == 1 && z->grad[1] == 0.5 && z->grad[2] == 0);

    ct_tensor *cond = ct_tape_tensor_from(tape, CT_SHAPE(2, 1), (ct_real[]){1, 0});
    ct_tensor *wa = leaf(tape, CT_SHAPE(3), (ct_real[]){1, 2, 3});
    ct_tensor *wb = leaf(tape, (ct_shape){.ndim = 0}, (ct_real[]){-1});
    ct_tensor *w = ct_where(tape, cond, wa, wb); /* (2,3): row 0 from a, row 1 = −1 */
    CHECK(same_shape(w, CT_SHAPE(2, 3)));
    CHECK(w->data[0] == 1 && w->data[2] == 3 && w->data[3] == -1 && w->data[5] == -1);
    backward_ones(tape, w);
    CHECK(wa->grad[0] == 1 && wa->grad[2] == 1 && wb->grad[0] == 3);
    ct_tape_free(tape);
}

CT_TEST(ops, unary_values_and_kinks) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = leaf(tape, CT_SHAPE(5), (ct_real[]){-2, -1, 0, 1, 4});
    ct_tensor *y;
    y = ct_neg(tape, x);
    CHECK(y->data[0] == 2 && y->data[4] == -4);
    y = ct_add_scalar(tape, x, 0.5);
    CHECK(y->data[2] == 0.5);
    y = ct_mul_scalar(tape, x, -3);
    CHECK(y->data[4] == -12);
    y = ct_pow_scalar(tape, x, 3);
    CHECK(y->data[0] == -8 && y->data[4] == 64);
    y = ct_exp(tape, x);
    CHECK_NEAR(y->data[3], 2.718281828459045, TOL, TOL);
    y = ct_abs(tape, x);
    CHECK(y->data[0] == 2 && y->data[2] == 0);
    y = ct_clamp(tape, x, -1, 1);
    CHECK(y->data[0] == -1 && y->data[2] == 0 && y->data[4] == 1);
    ct_tensor *pos = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){4, 1});
    CHECK(ct_sqrt(tape, pos)->data[0] == 2 && ct_log(tape, pos)->data[1] == 0);

    /* kinks, as PyTorch: relu'(0) = 0, |x|'(0) = 0, clamp passes the grad on [lo, hi] */
    ct_tensor *k = leaf(tape, CT_SHAPE(5), (ct_real[]){-1, 0, 1, 2, 3});
    backward_ones(tape, ct_relu(tape, k));
    CHECK(k->grad[0] == 0 && k->grad[1] == 0 && k->grad[2] == 1, "relu'(0) = 0");
    ct_tensor *k2 = leaf(tape, CT_SHAPE(3), (ct_real[]){-1, 0, 1});
    backward_ones(tape, ct_abs(tape, k2));
    CHECK(k2->grad[0] == -1 && k2->grad[1] == 0 && k2->grad[2] == 1, "|x|'(0) = 0");
    ct_tensor *k3 = leaf(tape, CT_SHAPE(5), (ct_real[]){-1.5, -1, 0, 1, 1.5});
    backward_ones(tape, ct_clamp(tape, k3, -1, 1));
    CHECK(k3->grad[0] == 0 && k3->grad[1] == 1 && k3->grad[3] == 1 && k3->grad[4] == 0,
          "clamp passes the gradient on the closed interval");
    ct_tape_free(tape);
}

CT_TEST(ops, activations) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(4), (ct_real[]){-2, 0, 1, 100});
    ct_tensor *y = ct_leaky_relu(tape, x, 0.1);
    CHECK_NEAR(y->data[0], -0.2, TOL, TOL);
    CHECK(y->data[2] == 1);
    y = ct_gelu(tape, x);
    CHECK_NEAR(y->data[2], 0.8413447460685429, TOL, TOL);
    CHECK_NEAR(y->data[0], -0.04550026389635842, TOL, TOL);
    y = ct_gelu_tanh(tape, x);
    CHECK_NEAR(y->data[2], 0.8411919906082768, TOL, TOL);
    y = ct_silu(tape, x);
    CHECK_NEAR(y->data[2], 0.7310585786300049, TOL, TOL);
    y = ct_sigmoid(tape, x);
    CHECK(y->data[1] == 0.5);
    CHECK_NEAR(y->data[0], 0.11920292202211755, TOL, TOL);
    y = ct_tanh(tape, x);
    CHECK_NEAR(y->data[2], 0.7615941559557649, TOL, TOL);
    y = ct_softplus(tape, x, 1, 20);
    CHECK_NEAR(y->data[1], 0.6931471805599453, TOL, TOL);
    CHECK(y->data[3] == 100, "linear above the threshold");
    y = ct_softplus(tape, x, 2, 20);
    CHECK_NEAR(y->data[2], 1.0634640055214863, TOL, TOL);

    /* stable at large |x| */
    ct_tensor *big = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){-1000, 1000});
    y = ct_sigmoid(tape, big);
    CHECK(y->data[0] == 0 && y->data[1] == 1);
    y = ct_softplus(tape, big, 1, 1e30); /* threshold off: the stable formula alone */
    CHECK(y->data[0] >= 0 && y->data[0] < 1e-30 && y->data[1] == 1000);
    y = ct_silu(tape, big);
    CHECK(isfinite(y->data[0]) && y->data[1] == 1000);
    ct_tape_free(tape);
}

CT_TEST(ops, reductions) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = leaf(tape, CT_SHAPE(2, 3), (ct_real[]){1, 5, 3, 4, 2, 6});
    ct_tensor *y = ct_sum(tape, x, 0, 0);
    CHECK(same_shape(y, CT_SHAPE(3)) && y->data[0] == 5 && y->data[2] == 9);
    y = ct_sum(tape, x, -1, 1);
    CHECK(same_shape(y, CT_SHAPE(2, 1)) && y->data[0] == 9 && y->data[1] == 12);
    y = ct_mean(tape, x, 1, 0);
    CHECK(y->data[0] == 3 && y->data[1] == 4);
    y = ct_max(tape, x, 1, 0);
    CHECK(y->data[0] == 5 && y->data[1] == 6);
    y = ct_sum_all(tape, x);
    CHECK(y->ndim == 0 && y->size == 1 && y->data[0] == 21);
    CHECK(ct_mean_all(tape, x)->data[0] == 3.5 && ct_max_all(tape, x)->data[0] == 6);
    y = ct_logsumexp(tape, x, 0, 1);
    CHECK(same_shape(y, CT_SHAPE(1, 3)));
    CHECK_NEAR(y->data[0], 4 + log(1 + exp(-3.0)), TOL, TOL);

    /* max sends the gradient to the first maximum */
    ct_tensor *t = leaf(tape, CT_SHAPE(2, 3), (ct_real[]){7, 1, 7, 2, 9, 9});
    backward_ones(tape, ct_max(tape, t, 1, 0));
    CHECK(t->grad[0] == 1 && t->grad[2] == 0 && t->grad[4] == 1 && t->grad[5] == 0);
    ct_tensor *m = leaf(tape, CT_SHAPE(2, 2), (ct_real[]){1, 2, 3, 4});
    ct_backward(tape, ct_mean_all(tape, m));
    CHECK(m->grad[0] == 0.25 && m->grad[3] == 0.25);

    /* logsumexp of large values stays finite */
    ct_tensor *big = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){10000, 10000});
    y = ct_logsumexp_all(tape, big);
    CHECK(isfinite(y->data[0]));
    CHECK_NEAR(y->data[0], 10000 + log(2.0), 1e-2, 0);
    ct_tensor *neg = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){-10000, -10000});
    CHECK_NEAR(ct_logsumexp(tape, neg, 0, 0)->data[0], -10000 + log(2.0), 1e-2, 0);
    ct_tape_free(tape);
}

CT_TEST(ops, softmax_family) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(2, 3), (ct_real[]){1, 2, 3, -1, 0, 5});
    ct_tensor *ls = ct_log_softmax(tape, x, -1);
    for (int r = 0; r < 2; r++) {
        double s = 0;
        for (int c = 0; c < 3; c++) s += exp((double)ls->data[r * 3 + c]);
        CHECK_NEAR(s, 1, TOL, 0);
    }
    ct_tensor *sm = ct_softmax(tape, x, 1);
    CHECK_NEAR(sm->data[2], 0.6652409557748219, TOL, TOL);
    CHECK_NEAR(log(sm->data[2]), ls->data[2], TOL, TOL);
    ct_tensor *col = ct_softmax(tape, x, 0); /* along the columns */
    CHECK_NEAR(col->data[0] + col->data[3], 1, TOL, 0);

    ct_tensor *ext = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){1e4, -1e4});
    ct_tensor *e = ct_softmax(tape, ext, 0);
    CHECK(isfinite(e->data[0]) && isfinite(e->data[1]) && e->data[0] == 1 && e->data[1] == 0);
    ct_tensor *le = ct_log_softmax(tape, ext, 0);
    CHECK(le->data[0] == 0 && isfinite(le->data[1]) && le->data[1] == -2e4);

    ct_tensor *v = ct_tape_tensor_from(tape, CT_SHAPE(2, 2), (ct_real[]){3, 4, 0, 0});
    ct_tensor *n = ct_l2_normalize(tape, v, 1, 1e-12);
    CHECK_NEAR(n->data[0], 0.6, TOL, TOL);
    CHECK_NEAR(n->data[1], 0.8, TOL, TOL);
    CHECK(n->data[2] == 0 && n->data[3] == 0, "a zero row stays zero (eps floor)");
    ct_tape_free(tape);
}

CT_TEST(ops, reshape_shares_data_and_infers) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = leaf(tape, CT_SHAPE(2, 3, 4), (ct_real[24]){0});
    for (int i = 0; i < 24; i++) x->data[i] = (ct_real)i;
    ct_tensor *y = ct_reshape(tape, x, CT_SHAPE(-1, 4));
    CHECK(same_shape(y, CT_SHAPE(6, 4)) && y->data == x->data, "a view, not a copy");
    CHECK(same_shape(ct_reshape(tape, x, CT_SHAPE(4, -1, 2)), CT_SHAPE(4, 3, 2)));
    CHECK(same_shape(ct_reshape(tape, x, CT_SHAPE(24)), CT_SHAPE(24)));
    ct_backward(tape, ct_sum_all(tape, ct_mul_scalar(tape, y, 2)));
    CHECK(x->grad[0] == 2 && x->grad[23] == 2, "the view's gradient flows back into x");

    ct_tensor *d = ct_detach(tape, x);
    CHECK(!ct_requires_grad(d) && d->data == x->data && same_shape(d, CT_SHAPE(2, 3, 4)));
    int before = ct_tape_node_count(tape);
    ct_tensor *e = ct_exp(tape, d);
    CHECK(!ct_requires_grad(e) && ct_tape_node_count(tape) == before, "nothing flows through detach");
    ct_tape_free(tape);
}

CT_TEST(ops, permute_transpose_slice_concat) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 4));
    for (int i = 0; i < 24; i++) x->data[i] = (ct_real)i;
    ct_tensor *p = ct_permute(tape, x, (int[]){2, 0, 1}); /* (4, 2, 3): p[k,i,j] = x[i,j,k] */
    CHECK(same_shape(p, CT_SHAPE(4, 2, 3)));
    CHECK(p->data[(3 * 2 + 1) * 3 + 2] == x->data[(1 * 3 + 2) * 4 + 3]);
    CHECK(p->data[(1 * 2 + 0) * 3 + 2] == x->data[(0 * 3 + 2) * 4 + 1]);
    ct_tensor *m = ct_tape_tensor_from(tape, CT_SHAPE(2, 3), (ct_real[]){1, 2, 3, 4, 5, 6});
    ct_tensor *t = ct_transpose(tape, m, 0, -1);
    CHECK(same_shape(t, CT_SHAPE(3, 2)) && t->data[1] == 4 && t->data[4] == 3);

    ct_tensor *a = ct_slice(tape, x, 1, 0, 1), *b = ct_slice(tape, x, 1, 1, 3);
    CHECK(same_shape(a, CT_SHAPE(2, 1, 4)) && same_shape(b, CT_SHAPE(2, 2, 4)));
    CHECK(b->data[0] == 4 && b->data[8] == 16);
    ct_tensor *neg = ct_slice(tape, x, -1, -2, 100); /* Python: clamps to the end */
    CHECK(same_shape(neg, CT_SHAPE(2, 3, 2)) && neg->data[0] == 2 && neg->data[1] == 3);
    ct_tensor *parts[2] = {a, b};
    ct_tensor *back = ct_concat(tape, parts, 2, 1);
    CHECK(same_shape(back, CT_SHAPE(2, 3, 4)));
    CHECK(memcmp(back->data, x->data, 24 * sizeof(ct_real)) == 0, "slice then concat is the identity");

    /* more inputs than a node holds, gradients to each */
    ct_tensor *xs[6];
    for (int i = 0; i < 6; i++) xs[i] = leaf(tape, CT_SHAPE(1, 2), (ct_real[]){(ct_real)i, (ct_real)(10 * i)});
    ct_tensor *cat = ct_concat(tape, xs, 6, 0);
    CHECK(same_shape(cat, CT_SHAPE(6, 2)) && cat->data[10] == 5 && cat->data[11] == 50);
    ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(6, 2));
    for (int i = 0; i < 12; i++) w->data[i] = (ct_real)i;
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, cat, w)));
    CHECK(xs[0]->grad[1] == 1 && xs[5]->grad[0] == 10 && xs[5]->grad[1] == 11);
    ct_tape_free(tape);
}

CT_TEST(ops, index_select_gather_one_hot) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = leaf(tape, CT_SHAPE(3, 2), (ct_real[]){1, 2, 3, 4, 5, 6});
    ct_tensor *s = ct_index_select(tape, x, 0, (int[]){2, 0, 2}, 3);
    CHECK(same_shape(s, CT_SHAPE(3, 2)) && s->data[0] == 5 && s->data[3] == 2 && s->data[5] == 6);
    backward_ones(tape, s);
    CHECK(x->grad[4] == 2 && x->grad[0] == 1 && x->grad[2] == 0, "repeated indices accumulate");
    ct_tensor *c = ct_index_select(tape, x, 1, (int[]){1}, 1);
    CHECK(same_shape(c, CT_SHAPE(3, 1)) && c->data[0] == 2 && c->data[2] == 6);

    ct_tensor *g = ct_gather_rows(tape, x, (int[]){1, 0, 1}, 3);
    CHECK(same_shape(g, CT_SHAPE(3)) && g->data[0] == 2 && g->data[1] == 3 && g->data[2] == 6);

    ct_tensor *oh = ct_one_hot(tape, (int[]){2, 0, 1}, 3, 4);
    CHECK(same_shape(oh, CT_SHAPE(3, 4)) && !ct_requires_grad(oh));
    ct_real want[12] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0};
    CHECK(memcmp(oh->data, want, sizeof want) == 0);
    ct_tape_free(tape);
}

/* Large tensors take the OpenMP paths: check them against plain loops. */
CT_TEST(ops, large_broadcast_matches_loops) {
    ct_tape *tape = ct_tape_new();
    int R = 400, C = 300;
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(R, C)), *b = ct_tape_zeros(tape, CT_SHAPE(C));
    ct_tape_requires_grad(tape, x);
    ct_tape_requires_grad(tape, b);
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)ct_rng_uniform_range(&rng, -1, 1);
    for (int j = 0; j < C; j++) b->data[j] = (ct_real)ct_rng_uniform_range(&rng, -1, 1);
    ct_tensor *y = ct_mul(tape, x, b);
    int bad = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) bad += y->data[i * C + j] != x->data[i * C + j] * b->data[j];
    CHECK(bad == 0);
    backward_ones(tape, y);
    for (int j = 0; j < C && !bad; j++) {
        double s = 0;
        for (int i = 0; i < R; i++) s += x->data[i * C + j];
        bad += fabs(s - b->grad[j]) > 1e-3;
    }
    CHECK(bad == 0, "db = column sums of x");
    for (size_t i = 0; i < x->size && !bad; i++) bad += x->grad[i] != b->data[i % (size_t)C];
    CHECK(bad == 0, "dx = b broadcast");
    ct_tape_free(tape);
}

CT_TEST(ops, no_grad_records_nothing) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(2, 3));
    ct_tensor_fill(w, 0.5);
    int was = ct_tape_grad_enabled(tape, 0);
    ct_tensor *y = ct_log_softmax(tape, ct_add(tape, ct_exp(tape, w), w), -1);
    y = ct_sum(tape, ct_reshape(tape, ct_transpose(tape, y, 0, 1), CT_SHAPE(-1)), 0, 1);
    y = ct_concat(tape, (ct_tensor *[]){y, y}, 2, 0);
    y = ct_gather_rows(tape, ct_reshape(tape, y, CT_SHAPE(1, 2)), (int[]){1}, 1);
    CHECK(ct_tape_node_count(tape) == 0 && !ct_requires_grad(y), "no-grad mode records no nodes");
    ct_tape_grad_enabled(tape, was);
    y = ct_sigmoid(tape, w);
    CHECK(ct_tape_node_count(tape) == 1 && ct_requires_grad(y));
    ct_tensor *c = ct_tape_tensor_from(tape, CT_SHAPE(2), (ct_real[]){1, 2});
    ct_exp(tape, ct_add(tape, c, c));
    CHECK(ct_tape_node_count(tape) == 1, "constants alone record nothing");
    ct_tensor_free(w);
    ct_tape_free(tape);
}

/* ---- fatal errors name the op and the shapes ---------------------------------------------- */
static void bad_add(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_add(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3)), ct_tape_zeros(tape, CT_SHAPE(4)));
}
static void bad_where(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_where(tape, ct_tape_zeros(tape, CT_SHAPE(3)), ct_tape_zeros(tape, CT_SHAPE(2, 3)),
             ct_tape_zeros(tape, CT_SHAPE(2)));
}
static void bad_reshape(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_reshape(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3)), CT_SHAPE(4, -1));
}
static void bad_one_hot(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_one_hot(tape, (int[]){1, 5}, 2, 5);
}
static void bad_gather(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_gather_rows(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3)), (int[]){0, 3}, 2);
}
static void bad_axis(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_softmax(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3)), 2);
}
static void bad_concat(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_concat(tape, (ct_tensor *[]){ct_tape_zeros(tape, CT_SHAPE(2, 3)), ct_tape_zeros(tape, CT_SHAPE(3, 3))}, 2, 1);
}

CT_TEST(ops, fatal_messages_name_op_and_shapes) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_add, NULL, "ct_add: shapes (2, 3) and (4,) do not broadcast", got, sizeof got));
    CHECK(strstr(got, "test_ops.c") != NULL, "the message points at the caller's line");
    CHECK(ct_test_expect_fatal(bad_where, NULL, "ct_where: shapes (3,), (2, 3) and (2,) do not broadcast", got, sizeof got));
    CHECK(ct_test_expect_fatal(bad_reshape, NULL, "ct_reshape: cannot reshape (2, 3) (6 elements) into (4, -1)", got, sizeof got));
    CHECK(ct_test_expect_fatal(bad_one_hot, NULL, "ct_one_hot: label 5 at position 1 is outside [0, 5)", got, sizeof got));
    CHECK(ct_test_expect_fatal(bad_gather, NULL, "ct_gather_rows: index 3 at row 1 is outside [0, 3)", got, sizeof got));
    CHECK(ct_test_expect_fatal(bad_axis, NULL, "ct_softmax: axis 2 out of range for shape (2, 3)", got, sizeof got));
    CHECK(ct_test_expect_fatal(bad_concat, NULL, "ct_concat: tensor 1 (3, 3) does not match tensor 0 (2, 3)", got, sizeof got));
}
