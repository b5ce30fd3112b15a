/* tests/nn/test_zoo.c — networks by name (nn/zoo.h): each builds for its inputs with the parameter
 * count of its PyTorch twin and runs forward and backward; the twin's state_dict loads and gives
 * its logits (tests/reference/zoo_ref.h and zoo/<case>.safetensors, from gen_zoo.py); bad specs and
 * inputs name the mistake and leave the model as it was; describe round-trips; ResNet-20 and a
 * small ViT learn a tiny synthetic set. */
#include "../test.h"
#include "../reference/zoo_ref.h"

#include <stdlib.h>
#include <string.h>

static ct_shape case_shape(int ndim, const int *d) {
    return ndim == 1 ? CT_SHAPE(d[0]) : CT_SHAPE(d[0], d[1], d[2]);
}

/* "name (d0, d1)" as gen_zoo.py writes the state_dict. */
static void tensor_line(const ct_tensor *t, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "%s (", t->name);
    for (int i = 0; i < t->ndim && used < len; i++) used += (size_t)snprintf(buf + used, len - used, i ? ", %d" : "%d", t->shape[i]);
    if (used < len) snprintf(buf + used, len - used, ")");
}

/* The input of case k: element i is ((37·i + 11·k) mod 101 − 50) / 32, exact in float32. */
static ct_tensor *zoo_input(ct_tape *tape, int k, ct_shape one) {
    ct_shape s = {.ndim = one.ndim + 1};
    s.d[0] = ZOO_BATCH;
    for (int i = 0; i < one.ndim; i++) s.d[i + 1] = one.d[i];
    ct_tensor *x = ct_tape_zeros(tape, s);
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)((double)((long)((37 * i + 11 * (size_t)k) % 101) - 50) / 32.0);
    return x;
}

CT_TEST(zoo, torch_twins_load_and_agree) {
    const char *repo = ct_test_repository();
    if (!*repo) CT_SKIP("no repository beside the test binary");
    double worst = 0;
    for (int k = 0; k < (int)(sizeof zoo_cases / sizeof *zoo_cases); k++) {
        const zoo_case *c = &zoo_cases[k];
        const ct_shape in = case_shape(c->input_ndim, c->input);
        ct_model *m = ct_model_new();
        ct_module *net = ct_model_parse(m, c->spec, in, c->classes);
        CHECK(net, "%s: %s", c->spec, ct_last_error());
        CHECK((long)ct_model_num_elements(m) == c->params, "%s: %zu parameters, the torch twin has %ld", c->spec,
              ct_model_num_elements(m), c->params);
        /* every tensor of ours is one of the twin's, with its shape, and none is missing */
        const int n = ct_model_tensor_count(m);
        ct_tensor **ts = malloc((size_t)n * sizeof *ts);
        ct_model_tensors(m, ts);
        for (int i = 0; i < n; i++) {
            char line[256];
            tensor_line(ts[i], line, sizeof line);
            int found = 0;
            for (int j = 0; j < c->n_tensors && !found; j++) found = !strcmp(line, c->tensors[j]);
            if (!found) free(ts);
            CHECK(found, "%s: %s is not in the torch twin's state_dict", c->spec, line);
        }
        free(ts);
        CHECK(n == c->n_tensors, "%s: %d tensors, the twin's state_dict has %d", c->spec, n, c->n_tensors);

        char path[1024];
        snprintf(path, sizeof path, "%s/tests/reference/zoo/%s.safetensors", repo, c->name);
        CHECK(ct_model_load(m, path) == CT_OK, "%s: %s", c->spec, ct_last_error());
        ct_model_train(m, 0);
        ct_tape *tape = ct_tape_new();
        ct_tensor *y = ct_forward(tape, net, zoo_input(tape, k, in));
        CHECK(y->ndim == 2 && y->shape[0] == ZOO_BATCH && y->shape[1] == c->classes, "%s: logits %s", c->spec, ct_shp(y));
        for (size_t i = 0; i < y->size; i++) {
            const double want = c->logits[i], err = fabs((double)y->data[i] - want) / (1e-3 + fabs(want));
            if (err > worst) worst = err;
            CHECK(fabs((double)y->data[i] - want) <= 1e-5 + 1e-4 * fabs(want), "%s: logit %zu = %.8g, torch %.8g", c->spec,
                  i, (double)y->data[i], want);
        }
        ct_tape_free(tape);
        ct_model_free(m);
    }
    ct_test_note("%d networks, worst |diff| / (1e-3 + |torch|) %.2g", (int)(sizeof zoo_cases / sizeof *zoo_cases), worst);
}

/* Each default configuration at its usual size: the twin's parameter count, logits (N, classes),
 * a backward that reaches every parameter. */
CT_TEST(zoo, defaults_build_and_run_forward_backward) {
    for (size_t k = 0; k < sizeof zoo_defaults / sizeof *zoo_defaults; k++) {
        const zoo_size *c = &zoo_defaults[k];
        const ct_shape in = case_shape(c->input_ndim, c->input);
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 7);
        ct_module *net = ct_model_parse(m, c->spec, in, c->classes);
        CHECK(net, "%s: %s", c->spec, ct_last_error());
        CHECK((long)ct_model_num_elements(m) == c->params, "%s on %s: %zu parameters, the torch twin has %ld", c->spec,
              ct_shape_str(in, (char[64]){0}, 64), ct_model_num_elements(m), c->params);
        ct_tape *tape = ct_tape_new();
        const int N = 2;
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(N, in.d[0], in.d[1], in.d[2]));
        ct_rng rng;
        ct_rng_seed(&rng, 3);
        ct_tensor_fill_normal(x, &rng, 0, 1);
        ct_tensor *y = ct_forward(tape, net, x);
        CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == c->classes, "%s: logits %s", c->spec, ct_shp(y));
        const int labels[2] = {1, 0};
        ct_backward(tape, ct_cross_entropy(tape, y, CT_LABELS(labels, N), CT_CE()));
        for (int i = 0; i < ct_model_param_count(m); i++) {
            const ct_tensor *p = ct_model_param(m, i);
            double norm = 0;
            for (size_t j = 0; j < p->size; j++) norm += (double)p->grad[j] * p->grad[j];
            /* the class token's gradient is zero only if nothing reads token 0 */
            CHECK(isfinite(norm) && norm > 0, "%s: no gradient reaches %s", c->spec, p->name);
        }
        ct_tape_free(tape);
        ct_model_free(m);
    }
}

/* vgg_small is examples/cifar10_cnn.c's and bench W3's network: the same layers made in the same
 * order, so with one seed the same names and the same initial weights, bit for bit. */
CT_TEST(zoo, vgg_small_is_the_w3_net) {
    ct_model *w3 = ct_model_new(), *zoo = ct_model_new();
    ct_model_set_seed(w3, 42), ct_model_set_seed(zoo, 42);
    const int w = 32;
    ct_module *net = ct_sequential_new(w3, "net");
    char name[32];
    for (int i = 1, in = 3, out = w; i <= 3; i++, in = out, out *= 2) { /* cifar10_cnn.c's add_stage */
        snprintf(name, sizeof name, "conv%d", i);
        ct_sequential_add(net, ct_conv2d_new(w3, name, in, out, 3, CT_CONV2D(.padding = 1, .bias = 0)));
        snprintf(name, sizeof name, "bn%d", i);
        ct_sequential_add(net, ct_batch_norm_new(w3, name, out, CT_BATCH_NORM()));
        snprintf(name, sizeof name, "relu%d", i);
        ct_sequential_add(net, ct_relu_layer_new(w3, name));
        snprintf(name, sizeof name, "pool%d", i);
        ct_sequential_add(net, ct_max_pool2d_new(w3, name, 2, 0, 0));
    }
    ct_sequential_add(net, ct_flatten_new(w3, "flatten"));
    ct_sequential_add(net, ct_linear_new(w3, "fc", 4 * w * 4 * 4, 10));
    CHECK(ct_model_parse(zoo, "vgg_small", CT_SHAPE(3, 32, 32), 10), "%s", ct_last_error());
    CHECK(ct_model_tensor_count(w3) == ct_model_tensor_count(zoo), "%d and %d tensors", ct_model_tensor_count(w3),
          ct_model_tensor_count(zoo));
    ct_tensor *a[32], *b[32];
    ct_model_tensors(w3, a), ct_model_tensors(zoo, b);
    for (int i = 0; i < ct_model_tensor_count(w3); i++)
        CHECK(!strcmp(a[i]->name, b[i]->name) && a[i]->size == b[i]->size &&
                  !memcmp(a[i]->data, b[i]->data, a[i]->size * sizeof(ct_real)),
              "tensor %d: %s and %s differ", i, a[i]->name, b[i]->name);
    ct_model_free(w3), ct_model_free(zoo);
}

/* The one flat-input case: an MLP on vectors, and on images it flattens. */
CT_TEST(zoo, mlp_takes_vectors_and_flattens_images) {
    ct_model *m = ct_model_new();
    ct_module *net = ct_model_parse(m, "mlp:hidden=8", CT_SHAPE(12), 3);
    CHECK(net, "%s", ct_last_error());
    CHECK(ct_model_find_param(m, "fc1.weight")->shape[1] == 12, "fc1 takes the 12 inputs");
    ct_tape *tape = ct_tape_new();
    ct_tensor *y = ct_forward(tape, net, ct_tape_zeros(tape, CT_SHAPE(4, 12)));
    CHECK(y->shape[0] == 4 && y->shape[1] == 3, "%s", ct_shp(y));
    ct_model_free(m);
    m = ct_model_new();
    net = ct_model_parse(m, "mlp:hidden=8", CT_SHAPE(2, 3, 5), 3);
    CHECK(net && ct_model_find_param(m, "fc1.weight")->shape[1] == 30, "fc1 takes 2·3·5 inputs");
    y = ct_forward(tape, net, ct_tape_zeros(tape, CT_SHAPE(4, 2, 3, 5)));
    CHECK(y->shape[0] == 4 && y->shape[1] == 3, "%s", ct_shp(y));
    ct_tape_free(tape);
    ct_model_free(m);
}

/* The inits of the papers' PyTorch versions: Kaiming-normal ResNet convs (std √(2/fan_in)), the
 * ViT's position embedding N(0, 0.02²) and zero class token. */
CT_TEST(zoo, inits_follow_the_torch_versions) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 11);
    CHECK(ct_model_parse(m, "resnet20", CT_SHAPE(3, 32, 32), 10), "%s", ct_last_error());
    const struct {
        const char *name;
        double fan_in;
    } w[] = {{"layer3.2.conv2.weight", 64 * 9}, {"layer2.0.conv1.weight", 16 * 9}, {"linear.weight", 64}};
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
        const ct_tensor *t = ct_model_find_param(m, w[i].name);
        double sq = 0;
        for (size_t j = 0; j < t->size; j++) sq += (double)t->data[j] * t->data[j];
        const double std = sqrt(sq / (double)t->size), want = sqrt(2.0 / w[i].fan_in);
        CHECK(fabs(std / want - 1) < 0.1, "%s: std %.4f, Kaiming-normal %.4f", w[i].name, std, want);
    }
    ct_model_free(m);
    m = ct_model_new();
    CHECK(ct_model_parse(m, "vit_tiny:dim=64,depth=1,heads=2", CT_SHAPE(3, 32, 32), 10), "%s", ct_last_error());
    const ct_tensor *pos = ct_model_find_param(m, "pos_embed"), *cls = ct_model_find_param(m, "cls_token");
    CHECK(pos->shape[1] == 65 && pos->shape[2] == 64, "pos_embed %s: 64 patches and the class token", ct_shp(pos));
    double sq = 0, zero = 0;
    for (size_t j = 0; j < pos->size; j++) sq += (double)pos->data[j] * pos->data[j];
    for (size_t j = 0; j < cls->size; j++) zero += fabs((double)cls->data[j]);
    CHECK(fabs(sqrt(sq / (double)pos->size) / 0.02 - 1) < 0.1 && zero == 0, "pos_embed std %.4f, cls_token |sum| %g",
          sqrt(sq / (double)pos->size), zero);
    ct_model_free(m);
}

CT_TEST(zoo, bad_specs_and_inputs_name_the_mistake) {
    const struct {
        const char *spec;
        ct_shape in;
        int classes;
        const char *expect;
    } bad[] = {
        {"resnet", CT_SHAPE(3, 32, 32), 10, "unknown model 'resnet'"},
        {"resnt20", CT_SHAPE(3, 32, 32), 10, "(did you mean resnet20?); known: mlp, lenet5, vgg_small, resnet20"},
        {"vit_tiny:depht=2", CT_SHAPE(3, 32, 32), 10,
         "vit_tiny has no parameter 'depht' (did you mean depth?); its parameters: patch, dim, depth, heads, mlp_ratio, pool"},
        {"resnet20:width=0", CT_SHAPE(3, 32, 32), 10, "width=0 is out of range [1, 1024]"},
        {"mlp:dropout=1", CT_SHAPE(10), 2, "dropout=1 is out of range [0, 1)"},
        {"mlp:hidden=[64,0]", CT_SHAPE(10), 2, "hidden: value 1 = 0 is out of range"},
        {"mlp:hidden=64.5", CT_SHAPE(10), 2, "hidden: value 0 = 64.5 is not an integer"},
        {"mlp:activation=swish", CT_SHAPE(10), 2, "activation=swish is not one of relu|gelu|tanh"},
        {"vit_tiny:dim=100", CT_SHAPE(3, 32, 32), 10, "dim=100 is not divisible by heads=3"},
        {"lenet5", CT_SHAPE(3, 8, 8), 10, "lenet5: a 3x8x8 input is too small"},
        {"lenet5:padding=0", CT_SHAPE(1, 14, 28), 10, "at least 16x16 with padding=0"},
        {"vgg_small", CT_SHAPE(3, 4, 32), 10, "vgg_small: a 3x4x32 input is too small"},
        {"resnet20", CT_SHAPE(784), 10, "resnet20 takes images (C, H, W), not vectors (784,)"},
        {"vit_tiny:patch=5", CT_SHAPE(3, 32, 32), 10, "patch=5 does not divide the 32x32 image"},
        {"lenet5", CT_SHAPE(1, 28), 10, "neither an image (C, H, W) nor a vector (D)"},
        {"mlp", CT_SHAPE(0), 10, "neither an image"},
        {"mlp", CT_SHAPE(784), 0, "classes=0"},
    };
    ct_model *m = ct_model_new();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(ct_model_parse(m, bad[i].spec, bad[i].in, bad[i].classes) == NULL, "%s was accepted", bad[i].spec);
        CHECK(strstr(ct_last_error(), bad[i].expect), "%s: \"%s\", want \"%s\"", bad[i].spec, ct_last_error(),
              bad[i].expect);
        CHECK(ct_model_param_count(m) == 0 && ct_model_buffer_count(m) == 0, "%s: the refused spec added to the model",
              bad[i].spec);
    }
    /* a good spec after the refusals clears the error and builds */
    CHECK(ct_model_parse(m, "lenet5", CT_SHAPE(1, 12, 12), 10) && !strcmp(ct_last_error(), "no error"), "%s",
          ct_last_error());
    ct_model_free(m);
}

static void vit_on_another_size(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *net = ct_model_parse(m, "vit_tiny:dim=8,depth=1,heads=2", CT_SHAPE(3, 32, 32), 10);
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, net, ct_tape_zeros(tape, CT_SHAPE(1, 3, 16, 16)));
}

/* A network fed another image size than it was built for: the ViT's position embedding says so. */
CT_TEST(zoo, vit_names_a_wrong_image_size) {
    char got[512];
    CHECK(ct_test_expect_fatal(vit_on_another_size, NULL, "built for 64 patches (pos_embed (1, 65, 8)), input "
                               "(1, 3, 16, 16) gives 16", got, sizeof got), "%s", got);
}

CT_TEST(zoo, describe_round_trips) {
    static const char *const specs[] = {"mlp", "mlp:hidden=512,256", "mlp:activation=gelu,hidden=[64],dropout=0.1",
                                        "lenet5:pool=avg", "vgg_small:width=16", "resnet20", "resnet56:width=32",
                                        "vit_tiny:pool=mean,mlp_ratio=2.5,depth=2"};
    char a[512], b[512];
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        CHECK(ct_model_describe(specs[i], a, sizeof a) == CT_OK, "%s: %s", specs[i], ct_last_error());
        CHECK(ct_model_describe(a, b, sizeof b) == CT_OK && !strcmp(a, b), "%s -> %s -> %s", specs[i], a, b);
        /* the described spec builds the same network (same seed: same weights) */
        ct_model *m1 = ct_model_new(), *m2 = ct_model_new();
        const ct_shape in = CT_SHAPE(3, 32, 32);
        CHECK(ct_model_parse(m1, specs[i], in, 10) && ct_model_parse(m2, a, in, 10), "%s", ct_last_error());
        CHECK(ct_model_param_count(m1) == ct_model_param_count(m2), "%s", a);
        for (int p = 0; p < ct_model_param_count(m1); p++) {
            const ct_tensor *t1 = ct_model_param(m1, p), *t2 = ct_model_param(m2, p);
            CHECK(!strcmp(t1->name, t2->name) && t1->size == t2->size &&
                      !memcmp(t1->data, t2->data, t1->size * sizeof(ct_real)),
                  "%s and %s differ at %s", specs[i], a, t1->name);
        }
        ct_model_free(m1), ct_model_free(m2);
    }
    CHECK(ct_model_describe("mlp:hidden=512,256", a, sizeof a) == CT_OK &&
              !strcmp(a, "mlp:hidden=[512,256],activation=relu,dropout=0"), "%s", a);
    CHECK(ct_model_describe("resnet20", a, sizeof a) == CT_OK && !strcmp(a, "resnet20:width=16"), "%s", a);
    CHECK(ct_model_describe("vit_tiny", a, sizeof a) == CT_OK &&
              !strcmp(a, "vit_tiny:patch=4,dim=192,depth=6,heads=3,mlp_ratio=4,pool=cls"), "%s", a);
    CHECK(ct_model_describe("resnet20", a, 8) == CT_ERR_VALUE && strstr(ct_last_error(), "buffer") && !a[0],
          "a short buffer: %s", ct_last_error());
    CHECK(ct_model_describe("vit_tiny:heads=5", a, sizeof a) == CT_ERR_VALUE && strstr(ct_last_error(), "divisible"),
          "%s", ct_last_error());
    CHECK(ct_model_describe("lenet", a, sizeof a) == CT_ERR_VALUE && strstr(ct_last_error(), "did you mean lenet5"),
          "%s", ct_last_error());
}

CT_TEST(zoo, list_shows_every_name_and_key) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ct_model_list(f);
    fclose(f);
    static const char *const want[] = {"mlp", "hidden", "[512,256]", "relu|gelu|tanh", "lenet5", "padding",
                                       "vgg_small", "resnet20", "resnet110", "vit_tiny", "mlp_ratio", "cls|mean"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) CHECK(strstr(text, want[i]), "no '%s' in:\n%s", want[i], text);
    free(text);
}

/* A few Adam steps on 16 fixed random images in 4 classes: the training loss falls. */
static void learns_a_tiny_set(const char *spec, ct_shape in, int steps, double *first, double *last) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 5);
    ct_module *net = ct_model_parse(m, spec, in, 4);
    *first = *last = NAN;
    if (!net) return;
    ct_optim *opt = ct_optim_parse(m, "adam:lr=1e-3");
    ct_tape *tape = ct_tape_new();
    enum { N = 16 };
    ct_real *x = malloc(N * ct_shape_size(in) * sizeof *x);
    int y[N];
    ct_rng rng;
    ct_rng_seed(&rng, 9);
    for (size_t i = 0; i < N * ct_shape_size(in); i++) x[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    for (int i = 0; i < N; i++) y[i] = i % 4;
    for (int step = 0; step < steps; step++) {
        ct_tensor *xb = ct_tape_tensor_from(tape, CT_SHAPE(N, in.d[0], in.d[1], in.d[2]), x);
        ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, net, xb), CT_LABELS(y, N), CT_CE());
        if (step == 0) *first = loss->data[0];
        *last = loss->data[0];
        ct_backward(tape, loss);
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    free(x);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
}

CT_TEST(zoo, resnet20_and_vit_learn_a_tiny_set) {
    double first, last;
    learns_a_tiny_set("resnet20", CT_SHAPE(3, 8, 8), 10, &first, &last);
    CHECK(last < 0.5 * first, "resnet20: loss %.4f -> %.4f", first, last);
    double vfirst, vlast;
    learns_a_tiny_set("vit_tiny:patch=2,dim=32,depth=2,heads=4", CT_SHAPE(3, 8, 8), 10, &vfirst, &vlast);
    CHECK(vlast < 0.5 * vfirst, "vit_tiny: loss %.4f -> %.4f", vfirst, vlast);
    ct_test_note("resnet20 loss %.3f -> %.3f, vit_tiny loss %.3f -> %.3f in 10 steps", first, last, vfirst, vlast);
}
