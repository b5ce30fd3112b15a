/* examples/ctape/datasets.c — datasets by spec: NAME[:PATH][:key=value,...].
 *
 *   mnist:DIR          IDX files (train-* or train10k-*, and t10k-*), raw or .gz
 *   fashion-mnist      the same format; DIR defaults to Debian's dataset-fashion-mnist
 *   cifar10:DIR        the official binary set (data_batch_1..5, test_batch), or a subset
 *                      (data_batch_sub.bin, test_batch_sub.bin)
 *   folder:DIR         image folders DIR/train/<class>/ and DIR/test/<class>/, or one
 *                      DIR/<class>/ split 80/20
 * Options: subset=N (a seeded random N of the training set), val=F (hold out the fraction F of
 * the training set: evaluated after every epoch and used to keep the best model, where the test
 * set is used otherwise; the test set is still the final evaluation), size=S (folder: resize to
 * S×S), gray=1 (folder: one channel). */
#include "command.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name, *default_dir, *help;
} dataset_kind;

static const dataset_kind kinds[] = {
    {"mnist", "data/mnist", "MNIST digits, IDX files (train-*/train10k-* and t10k-*), 28x28 gray, 10 classes"},
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", "Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist)"},
    {"kmnist", "data/kmnist", "Kuzushiji-MNIST, IDX files"},
    {"cifar10", "data/cifar10", "CIFAR-10 binary (data_batch_1..5.bin + test_batch.bin, or *_sub.bin), 32x32 RGB"},
    {"folder", NULL, "image folders DIR/train/<class>/ and DIR/test/<class>/ (or DIR/<class>/, split 80/20)"},
};
enum { N_KINDS = sizeof kinds / sizeof *kinds };

static const char *const cifar10_names[] = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"};
static const char *const fashion_names[] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};

void datasets_list(FILE *out) {
    for (int k = 0; k < N_KINDS; k++)
        fprintf(out, "  %-14s %s%s%s\n", kinds[k].name, kinds[k].help, kinds[k].default_dir ? "; default DIR " : "",
                kinds[k].default_dir ? kinds[k].default_dir : "");
    fprintf(out, "  options: :subset=N (random N training samples), :val=F (a held-out fraction F of the training\n"
                 "  set for the evaluation after each epoch; the test set otherwise), :size=S and :gray=1 (folder)\n");
}

void datasets_free(dataset_pair *d) {
    ct_dataset_free(d->train);
    ct_dataset_free(d->val);
    ct_dataset_free(d->test);
    d->train = d->val = d->test = NULL;
}

static int exists(const char *dir, const char *name) {
    char path[1200];
    struct stat st;
    return stat(path_join(path, sizeof path, dir, name), &st) == 0;
}

/* The options after the path: subset, val, size, gray. */
typedef struct {
    int subset, size, gray;
    double val;
} dataset_options;

static int parse_options(const char *spec, const char *text, dataset_options *o) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return ct_set_error(CT_ERR_VALUE, "dataset \"%s\": \"%s\" is not key=value", spec, kv);
        *eq = 0;
        const char *v = eq + 1;
        char *end;
        const ct_c_numbers numbers = ct_c_numbers_begin();
        const double x = strtod(v, &end);
        ct_c_numbers_end(numbers);
        if (end == v || *end) return ct_set_error(CT_ERR_VALUE, "dataset \"%s\": %s=%s is not a number", spec, kv, v);
        if (!strcmp(kv, "subset") && x >= 1 && x == (int)x) o->subset = (int)x;
        else if (!strcmp(kv, "val") && x > 0 && x < 1) o->val = x;
        else if (!strcmp(kv, "size") && x >= 1 && x <= 4096 && x == (int)x) o->size = (int)x;
        else if (!strcmp(kv, "gray") && (x == 0 || x == 1)) o->gray = (int)x;
        else if (!strcmp(kv, "subset") || !strcmp(kv, "val") || !strcmp(kv, "size") || !strcmp(kv, "gray"))
            return ct_set_error(CT_ERR_VALUE, "dataset \"%s\": %s=%s is out of range (subset: an integer >= 1, "
                                "val: in (0, 1), size: 1..4096, gray: 0 or 1)", spec, kv, v);
        else
            return ct_set_error(CT_ERR_VALUE, "dataset \"%s\": unknown option \"%s\" (subset, val, size, gray)", spec, kv);
    }
    return CT_OK;
}

static int load_idx(const char *dir, dataset_pair *d) {
    const char *train = exists(dir, "train-images-idx3-ubyte") || exists(dir, "train-images-idx3-ubyte.gz") ? "train"
                                                                                                           : "train10k";
    d->train = ct_idx_load(dir, train);
    d->test = d->train ? ct_idx_load(dir, "t10k") : NULL;
    return d->test ? CT_OK : CT_ERR_IO;
}

static int load_cifar10(const char *dir, dataset_pair *d) {
    char train[1200], test[1200];
    if (!exists(dir, "data_batch_1.bin") && exists(dir, "data_batch_sub.bin")) {
        d->train = ct_cifar10_load(path_join(train, sizeof train, dir, "data_batch_sub.bin"), "train");
        d->test = d->train ? ct_cifar10_load(path_join(test, sizeof test, dir, "test_batch_sub.bin"), "test") : NULL;
    } else {
        d->train = ct_cifar10_load(dir, "train");
        d->test = d->train ? ct_cifar10_load(dir, "test") : NULL;
    }
    return d->test ? CT_OK : CT_ERR_IO;
}

static int load_folder(const char *dir, const dataset_options *o, uint64_t seed, dataset_pair *d) {
    const ct_image_folder_opts fo = CT_IMAGE_FOLDER(.channels = o->gray ? 1 : 3, .height = o->size, .width = o->size);
    char train[1200], test[1200];
    path_join(train, sizeof train, dir, "train"), path_join(test, sizeof test, dir, "test");
    struct stat st;
    if (stat(train, &st) == 0 && S_ISDIR(st.st_mode) && stat(test, &st) == 0 && S_ISDIR(st.st_mode)) {
        d->train = ct_image_folder_load(train, fo);
        d->test = d->train ? ct_image_folder_load(test, fo) : NULL;
        return d->test ? CT_OK : CT_ERR_IO;
    }
    ct_dataset *all = ct_image_folder_load(dir, fo);
    if (!all) return CT_ERR_IO;
    const int rc = ct_dataset_split(all, 0.2, seed, &d->train, &d->test);
    ct_dataset_free(all);
    return rc;
}

/* A seeded random n of d's samples (d is freed and replaced). */
static int take_subset(ct_dataset **d, int n, uint64_t seed) {
    if (n >= (*d)->n) return CT_OK;
    int *order = malloc((size_t)(*d)->n * sizeof *order);
    if (!order) return ct_set_error(CT_ERR_MEMORY, "out of memory");
    ct_rng rng;
    ct_rng_seed(&rng, seed ^ 0x5eedULL);
    ct_rng_permutation(&rng, order, (*d)->n);
    ct_dataset *s = ct_dataset_subset(*d, order, n);
    free(order);
    if (!s) return CT_ERR_VALUE;
    ct_dataset_free(*d);
    *d = s;
    return CT_OK;
}

int datasets_load(const char *spec, uint64_t seed, dataset_pair *d) {
    memset(d, 0, sizeof *d);
    char name[64], path[1024] = "";
    const char *colon = strchr(spec, ':');
    snprintf(name, sizeof name, "%.*s", (int)(colon ? colon - spec : (long)strlen(spec)), spec);
    const dataset_kind *kind = NULL;
    for (int k = 0; k < N_KINDS; k++)
        if (!strcmp(kinds[k].name, name)) kind = &kinds[k];
    if (!kind) {
        const char *names[N_KINDS];
        for (int k = 0; k < N_KINDS; k++) names[k] = kinds[k].name;
        const char *near = ct_spec_nearest(name, names, N_KINDS);
        return ct_set_error(CT_ERR_VALUE, "unknown dataset \"%s\"%s%s%s (ctape list datasets)", name,
                            near ? ": did you mean " : "", near ? near : "", near ? "?" : "");
    }
    /* the rest: segments separated by ':', the one with '=' holds the options, the other the path */
    dataset_options o = {0};
    for (const char *seg = colon ? colon + 1 : NULL; seg;) {
        const char *next = strchr(seg, ':');
        char part[1024];
        snprintf(part, sizeof part, "%.*s", (int)(next ? next - seg : (long)strlen(seg)), seg);
        if (strchr(part, '=')) {
            const int rc = parse_options(spec, part, &o);
            if (rc) return rc;
        } else if (part[0]) {
            snprintf(path, sizeof path, "%s", part);
        }
        seg = next ? next + 1 : NULL;
    }
    if (!path[0]) {
        if (!kind->default_dir) return ct_set_error(CT_ERR_VALUE, "dataset \"%s\" needs a folder: %s:DIR", spec, name);
        snprintf(path, sizeof path, "%s", kind->default_dir);
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    int rc = !strcmp(name, "cifar10") ? load_cifar10(path, d)
             : !strcmp(name, "folder") ? load_folder(path, &o, seed, d)
                                       : load_idx(path, d);
    if (rc == CT_OK && o.subset) rc = take_subset(&d->train, o.subset, seed);
    if (rc == CT_OK && o.val > 0) {
        ct_dataset *train = NULL, *val = NULL;
        rc = ct_dataset_split(d->train, o.val, seed, &train, &val);
        if (rc == CT_OK) {
            ct_dataset_free(d->train);
            d->train = train, d->val = val;
        }
    }
    if (rc != CT_OK) {
        datasets_free(d);
        return rc ? rc : CT_ERR_IO;
    }
    if (d->train->classes < d->test->classes) d->train->classes = d->test->classes;
    d->test->classes = d->train->classes;
    if (d->val) d->val->classes = d->train->classes;
    d->class_names = (const char *const *)d->train->class_names;
    if (!d->class_names && !strcmp(name, "cifar10") && d->train->classes == 10) d->class_names = cifar10_names;
    if (!d->class_names && !strcmp(name, "fashion-mnist") && d->train->classes == 10) d->class_names = fashion_names;
    snprintf(d->describe, sizeof d->describe, "%s: %d training, %d validation and %d test images of %dx%dx%d, %d classes, "
             "from %s", name, d->train->n, d->val ? d->val->n : 0, d->test->n, d->train->channels, d->train->height,
             d->train->width, d->train->classes, path);
    return CT_OK;
}
