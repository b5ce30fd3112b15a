/* tests/nn/test_checkpoint_files.c — what every file holding a model shares (ct_model_tensors,
 * ct_model_metadata: model, checkpoint and EMA files), the strict load's wording per destination
 * (ct_safetensors_load_into), and load statuses that come from the format's status codes, never
 * from the text of a message. */
#include "../test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* fc (3 -> 2) and a batch norm (2): parameters fc.weight, fc.bias, bn.weight, bn.bias; buffers
 * bn.running_mean, bn.running_var, bn.num_batches_tracked. */
static ct_model *model_with_buffers(void) {
    ct_model *m = ct_model_new();
    ct_linear_new(m, "fc", 3, 2);
    ct_batch_norm_new(m, "bn", 2, CT_BATCH_NORM());
    return m;
}

CT_TEST(checkpoint, model_tensors_are_every_parameter_then_every_buffer) {
    ct_model *m = model_with_buffers();
    const int np = ct_model_param_count(m), nb = ct_model_buffer_count(m);
    CHECK(np == 4 && nb == 3 && ct_model_tensor_count(m) == np + nb, "%d parameters, %d buffers, %d tensors", np, nb,
          ct_model_tensor_count(m));
    ct_tensor *all[8];
    ct_model_tensors(m, all);
    for (int i = 0; i < np; i++) CHECK(all[i] == ct_model_param(m, i), "tensor %d is parameter %d", i, i);
    for (int i = 0; i < nb; i++) CHECK(all[np + i] == ct_model_buffer(m, i), "tensor %d is buffer %d", np + i, i);
    ct_model_free(m);
}

/* Every metadata pair of ct_model_metadata is in the file at path. */
static int has_model_metadata(const char *path, char *why, size_t why_len) {
    ct_safetensors *f = NULL;
    if (ct_safetensors_try_open(path, &f) != CT_OK) {
        snprintf(why, why_len, "%s", ct_last_error());
        return 0;
    }
    int ok = 1;
    for (const char *const *kv = ct_model_metadata(); ok && *kv; kv += 2) {
        const char *v = ct_safetensors_metadata(f, kv[0]);
        ok = v && !strcmp(v, kv[1]);
        if (!ok) snprintf(why, why_len, "%s: \"%s\" is %s%s%s, not \"%s\"", path, kv[0], v ? "\"" : "", v ? v : "absent",
                          v ? "\"" : "", kv[1]);
    }
    ct_safetensors_close(f);
    return ok;
}

CT_TEST(checkpoint, model_checkpoint_and_ema_files_carry_the_model_metadata) {
    const char *const *meta = ct_model_metadata();
    CHECK(meta[0] && !strcmp(meta[0], "format") && meta[1] && !strcmp(meta[1], "pt"),
          "\"format\": \"pt\" first (what safetensors.torch looks for)");
    const char *dir = ct_test_tmpdir();
    ct_model *m = model_with_buffers();
    ct_optim *opt = ct_adam_new(m, CT_ADAM());
    ct_ema *ema = ct_ema_new(m, CT_EMA());
    char why[512] = "";
    const char *model = path_in(dir, "meta-model.safetensors"), *ckpt = path_in(dir, "meta-ckpt.safetensors"),
               *avg = path_in(dir, "meta-ema.safetensors"), *state = path_in(dir, "meta-state.safetensors");
    CHECK(ct_model_save(m, model) == CT_OK && ct_checkpoint_save(opt, ckpt) == CT_OK && ct_ema_save(ema, avg) == CT_OK &&
              ct_optim_save(opt, state) == CT_OK, "%s", ct_last_error());
    CHECK(has_model_metadata(model, why, sizeof why), "%s", why);
    CHECK(has_model_metadata(ckpt, why, sizeof why), "%s", why);
    CHECK(has_model_metadata(avg, why, sizeof why), "%s", why);
    /* the optimizer's state alone is not a model file */
    ct_safetensors *f = ct_safetensors_open(state);
    CHECK(f && !ct_safetensors_metadata(f, "format") && ct_safetensors_metadata(f, "ctape.optimizer"), "%s",
          f ? "state file" : ct_last_error());
    ct_safetensors_close(f);
    /* an EMA file loads as a model: the averages under the parameters' names (the buffers are not in it) */
    ct_model *plain = ct_model_new();
    ct_linear_new(plain, "fc", 3, 2);
    ct_model *avg_model = ct_model_new();
    ct_linear_new(avg_model, "fc", 3, 2);
    ct_ema *ema2 = ct_ema_new(plain, CT_EMA());
    CHECK(ct_ema_save(ema2, avg) == CT_OK && ct_model_load(avg_model, avg) == CT_OK, "%s", ct_last_error());
    ct_ema_free(ema2);
    ct_model_free(avg_model);
    ct_model_free(plain);
    ct_ema_free(ema);
    ct_optim_free(opt);
    ct_model_free(m);
}

CT_TEST(checkpoint, load_into_names_the_destination) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "owner.safetensors");
    ct_tensor *a = ct_tensor_new(CT_SHAPE(2, 3)), *b = ct_tensor_new(CT_SHAPE(3));
    const char *names[] = {"a", "b"};
    ct_tensor *both[] = {a, b};
    CHECK(ct_safetensors_write(path, 2, names, both, NULL) == CT_OK, "%s", ct_last_error());
    ct_safetensors *f = ct_safetensors_open(path);
    CHECK(f, "%s", ct_last_error());
    ct_tensor *wrong = ct_tensor_new(CT_SHAPE(3, 2));
    ct_tensor *dst[] = {wrong, b};
    int rc = ct_safetensors_load_into(f, "layer", 2, names, dst, NULL, NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "tensor \"a\" has shape (2, 3) in the file but (3, 2) in the layer"),
          "%d %s", rc, ct_last_error());
    rc = ct_safetensors_load_into(f, "layer", 1, names + 1, both + 1, NULL, NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "tensor \"a\" is in the file but not in the layer"), "%d %s", rc,
          ct_last_error());
    const char *three[] = {"a", "b", "c"};
    ct_tensor *c = ct_tensor_new(CT_SHAPE(1));
    ct_tensor *dst3[] = {a, b, c};
    rc = ct_safetensors_load_into(f, "layer", 3, three, dst3, NULL, NULL);
    CHECK(rc == CT_ERR_VALUE && strstr(ct_last_error(), "tensor \"c\" is missing from the file (the layer has it, shape (1,))"),
          "%d %s", rc, ct_last_error());
    CHECK(ct_safetensors_load_into(f, "layer", 2, names, both, NULL, NULL) == CT_OK, "%s", ct_last_error());
    ct_safetensors_close(f);
    ct_tensor_free(a);
    ct_tensor_free(b);
    ct_tensor_free(c);
    ct_tensor_free(wrong);
}

/* A directory whose name holds the words an error message about a missing file holds: a load's
 * status must come from the format's status code, not from reading the message. */
CT_TEST(checkpoint, load_status_does_not_depend_on_the_message_text) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/x: cannot open: y", ct_test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    const char *garbage = path_in(dir, "garbage.safetensors"), *missing = path_in(dir, "missing.safetensors");
    FILE *fp = fopen(garbage, "wb");
    CHECK(fp && fwrite("not a checkpoint at all", 1, 23, fp) == 23 && fclose(fp) == 0, "writing %s", garbage);
    ct_model *m = model_with_buffers();
    ct_optim *opt = ct_sgd_new(m, CT_SGD());
    ct_ema *ema = ct_ema_new(m, CT_EMA());
    ct_safetensors *f = NULL;
    static const char *const what[] = {"ct_safetensors_try_open", "ct_model_load", "ct_optim_load", "ct_checkpoint_load",
                                       "ct_ema_load"};
    for (int k = 0; k < 2; k++) {
        const char *path = k ? missing : garbage;
        const int want = k ? CT_ERR_IO : CT_ERR_FORMAT;
        const int got[] = {ct_safetensors_try_open(path, &f), ct_model_load(m, path), ct_optim_load(opt, path),
                           ct_checkpoint_load(opt, path), ct_ema_load(ema, path)};
        for (int i = 0; i < 5; i++)
            CHECK(got[i] == want, "%s of %s: %d, expected %d (%s)", what[i], path, got[i], want, ct_last_error());
        CHECK(!f, "no file handle on failure");
    }
    ct_ema_free(ema);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- random streams ------------------------------------------------------------------------ */

static ct_model *model_with_dropout(const char *dropout_name) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 5);
    ct_linear_new(m, "fc", 3, 2);
    ct_dropout_new(m, dropout_name, 0.5);
    return m;
}

/* A checkpoint carries the model's random streams (its own and dropout's), so the masks drawn
 * after a load are the ones drawn after the save; a stream of another module, or one that is not
 * four hex words, is refused with nothing changed. */
CT_TEST(checkpoint, random_streams_are_saved_and_checked) {
    const char *dir = ct_test_tmpdir(), *path = path_in(dir, "streams.safetensors");
    ct_model *a = model_with_dropout("drop"), *b = model_with_dropout("drop"), *other = model_with_dropout("dropout");
    ct_optim *oa = ct_sgd_new(a, CT_SGD(.lr = 0.1)), *ob = ct_sgd_new(b, CT_SGD(.lr = 0.1)),
             *oo = ct_sgd_new(other, CT_SGD(.lr = 0.1));
    CHECK(ct_model_rng_count(a) == 2, "streams: %d (want the model's and dropout's)", ct_model_rng_count(a));
    const char *name;
    ct_rng *drop_a = ct_model_rng_stream(a, 1, &name), *drop_b = ct_model_rng_stream(b, 1, NULL);
    CHECK(!strcmp(name, "drop.rng"), "stream 1 is \"%s\"", name);
    for (int k = 0; k < 5; k++) ct_rng_u64(drop_a), ct_rng_u64(ct_model_rng(a)); /* a has drawn masks */
    CHECK(ct_checkpoint_save(oa, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_checkpoint_load(ob, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_rng_u64(drop_a) == ct_rng_u64(drop_b) && ct_rng_u64(ct_model_rng(a)) == ct_rng_u64(ct_model_rng(b)),
          "the streams after a load differ from the saved ones");
    const ct_rng before = *ct_model_rng_stream(other, 1, NULL);
    CHECK(ct_checkpoint_load(oo, path) == CT_ERR_VALUE && strstr(ct_last_error(), "\"drop.rng\" belongs to no module"),
          "%s", ct_last_error());
    CHECK(!memcmp(&before, ct_model_rng_stream(other, 1, NULL), sizeof before), "a refused load moved a stream");
    /* one hex digit made a 'g' in the header (same length): malformed */
    FILE *f = fopen(path, "r+b");
    char head[4096] = {0};
    const size_t got = fread(head, 1, sizeof head - 1, f);
    char *at = memmem(head, got, "\"ctape.rng.drop.rng\":\"", 22);
    CHECK(at, "no stream in the header");
    if (at) {
        fseek(f, (long)(at - head) + 22, SEEK_SET);
        fputc('g', f);
    }
    fclose(f);
    CHECK(ct_checkpoint_load(ob, path) == CT_ERR_FORMAT && strstr(ct_last_error(), "four 16-digit hex words"), "%s",
          ct_last_error());
    ct_optim_free(oa), ct_optim_free(ob), ct_optim_free(oo);
    ct_model_free(a), ct_model_free(b), ct_model_free(other);
}
