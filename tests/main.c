/* tests/main.c — the runner: one line per test, the last line "N passed, N failed".
 * Usage: ctape_tests [--group G] [--skip-group G] [--counts FILE] [name-substring ...]
 * --counts writes "passed=N failed=N skipped=N" to FILE (make test sums the two flavours). */
#include "test.h"

#include <errno.h>
#include <libgen.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *group, *name;
    void (*fn)(void);
} test_case;

static test_case tests[1024];
static int n_tests;
static int failed_now, skipped_now;
static char message[2048];
static char tmp_root[256], tmp_dir[512];

void ct_test_register(const char *group, const char *name, void (*fn)(void)) {
    if (n_tests == (int)(sizeof tests / sizeof tests[0])) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests++] = (test_case){group, name, fn};
}

static const char *covered_ops[256];
static int n_covered_ops;

void ct_test_gradcheck_cover(const char *op) {
    if (n_covered_ops < (int)(sizeof covered_ops / sizeof covered_ops[0])) covered_ops[n_covered_ops++] = op;
}

int ct_test_gradcheck_covered(const char *op) {
    for (int i = 0; i < n_covered_ops; i++)
        if (strcmp(covered_ops[i], op) == 0) return 1;
    return 0;
}

void ct_test_fail(const char *file, int line, const char *fmt, ...) {
    int k = snprintf(message, sizeof message, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + k, sizeof message - (size_t)k, fmt, ap);
    va_end(ap);
    failed_now = 1;
}

void ct_test_fail_detail(const char *fmt, ...) {
    size_t used = strlen(message);
    if (used + 3 >= sizeof message) return;
    snprintf(message + used, sizeof message - used, ": ");
    used += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message + used, sizeof message - used, fmt, ap);
    va_end(ap);
}

void ct_test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    skipped_now = 1;
}

void ct_test_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
}

int ct_test_stopped(void) { return failed_now || skipped_now; }

/* The repository holding this test binary: the nearest folder above build/.../tests/ctape_tests
 * with ctape.h and tests/main.c in it; "" when there is none (a binary copied elsewhere). */
const char *ct_test_repository(void) {
    static char repo[1024];
    static int looked;
    if (looked) return repo;
    looked = 1;
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return repo;
    self[n] = 0;
    for (char *slash = strrchr(self, '/'); slash && slash != self; slash = strrchr(self, '/')) {
        *slash = 0;
        char a[1100], b[1100];
        snprintf(a, sizeof a, "%s/ctape.h", self);
        snprintf(b, sizeof b, "%s/tests/main.c", self);
        if (access(a, R_OK) == 0 && access(b, R_OK) == 0) {
            snprintf(repo, sizeof repo, "%s", self);
            break;
        }
    }
    return repo;
}

/* Why the last ct_test_shared_data() found nothing. */
static char shared_why[2400];

const char *ct_test_shared_data(void) {
    static char path[1100];
    const char *env = getenv("CTAPE_SHARED_DATA");
    const char *repo = ct_test_repository();
    char from[1100];
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
        snprintf(from, sizeof from, "from $CTAPE_SHARED_DATA");
    } else if (repo[0]) {
        char parent[1100];
        snprintf(parent, sizeof parent, "%s", repo);
        snprintf(path, sizeof path, "%s/shared/data", dirname(parent));
        snprintf(from, sizeof from, "../shared/data beside the repository %s", repo);
    } else {
        snprintf(path, sizeof path, "../shared/data");
        snprintf(from, sizeof from, "../shared/data from the current directory (no repository around this binary)");
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(shared_why, sizeof shared_why, "%s (%s): %s", path, from, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(shared_why, sizeof shared_why, "%s (%s): not a directory", path, from);
    } else {
        shared_why[0] = 0;
        return path;
    }
    return NULL;
}

const char *ct_test_shared_data_why(void) { return shared_why; }

static void remove_tree(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

/* build/.../tests/ctape_tests -> build/.../examples/<name> */
int ct_test_example_path(const char *name, char *out, size_t len) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = 0;
    snprintf(out, len, "%s/../examples/%s", dirname(self), name);
    return access(out, X_OK) == 0;
}

int ct_test_run_for_accuracy(const char *cmd, double *accuracy, char *last, size_t last_len) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    *accuracy = -1;
    if (last_len) last[0] = 0;
    while (fgets(line, sizeof line, p)) {
        snprintf(last, last_len, "%s", line);
        sscanf(line, "test accuracy: %lf", accuracy);
    }
    return pclose(p);
}

int ct_test_run_capture(const char *cmd, char *out, size_t len) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, len - 1, p);
    out[used] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

ct_tensor *ct_test_leaf(ct_tape *tape, ct_shape shape, const double *values) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)values[i];
    ct_tape_requires_grad(tape, t);
    return t;
}

ct_module *ct_test_blobs_mlp(ct_model *m) {
    ct_module *net = ct_sequential_new(m, "net");
    ct_sequential_add(net, ct_linear_new(m, "net.0", 8, 16));
    ct_sequential_add(net, ct_relu_layer_new(m, "net.1"));
    ct_sequential_add(net, ct_linear_new(m, "net.2", 16, 4));
    return net;
}

ct_dataset *ct_test_blobs(int n, uint64_t seed) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 1, d->width = 8, d->classes = 4;
    d->images = malloc((size_t)n * 8);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        const int y = i % 4;
        d->labels[i] = y;
        for (int k = 0; k < 8; k++) {
            const double v = (k % 4 == y ? 200 : 60) + ct_rng_normal(&rng, 0, 30);
            d->images[(size_t)i * 8 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    snprintf(d->source, sizeof d->source, "blobs");
    return d;
}

const char *ct_test_tmpdir(void) {
    static int counter;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/%d", tmp_root, ++counter);
    mkdir(tmp_dir, 0700);
    return tmp_dir;
}

/* Is `name` a locale whose decimal point is a comma? (setlocale rather than newlocale: glibc
 * 2.36's newlocale leaks its copy of LOCPATH) */
static int is_comma_locale(const char *name) {
    char *was = strdup(setlocale(LC_NUMERIC, NULL));
    const int comma = setlocale(LC_NUMERIC, name) && !strcmp(localeconv()->decimal_point, ",");
    setlocale(LC_NUMERIC, was);
    free(was);
    return comma;
}

/* Only LC_NUMERIC and the small categories come from de_DE (its collation takes seconds to compile). */
const char *ct_test_comma_locale(char *why, size_t why_len) {
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR",
                                        "nl_NL.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8", "ru_RU.UTF-8"};
    static int made;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (is_comma_locale(names[i])) return names[i];
    if (made) return snprintf(why, why_len, "localedef could not make a decimal-comma locale"), NULL;
    made = 1;
    char dir[600], src[700], cmd[1600];
    snprintf(dir, sizeof dir, "%s/locale", tmp_root);
    mkdir(dir, 0700);
    snprintf(src, sizeof src, "%s/de_DE.src", dir);
    FILE *f = fopen(src, "w");
    if (!f) return snprintf(why, why_len, "cannot write %.400s", src), NULL;
    fputs("LC_COLLATE\ncopy \"POSIX\"\nEND LC_COLLATE\nLC_CTYPE\ncopy \"POSIX\"\nEND LC_CTYPE\n", f);
    static const char *const cats[] = {"LC_NUMERIC", "LC_TIME", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER", "LC_NAME",
                                       "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION"};
    for (size_t i = 0; i < sizeof cats / sizeof *cats; i++) fprintf(f, "%s\ncopy \"de_DE\"\nEND %s\n", cats[i], cats[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "localedef -i '%s' -f UTF-8 '%s/de_DE.UTF-8' 2>&1", src, dir);
    char out[512] = "";
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    setenv("LOCPATH", dir, 1);
    if (is_comma_locale("de_DE.UTF-8")) return "de_DE.UTF-8";
    snprintf(why, why_len, "no decimal-comma locale installed, and localedef (status %d) could not make one from "
             "de_DE (Debian: apt-get install locales): %.300s", status, out);
    return NULL;
}

int ct_test_expect_fatal(void (*body)(void *), void *arg, const char *expect, char *got, size_t got_len) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        signal(SIGABRT, SIG_DFL);
        /* libgomp's worker threads do not survive fork: a parallel region of two threads would
         * wait forever for a worker that is not there */
        ct_set_threads(1);
        body(arg);
        _exit(0); /* it did not stop: the parent reports that */
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t k;
    char sink[256];
    while ((k = read(fds[0], used + 1 < got_len ? got + used : sink,
                     used + 1 < got_len ? got_len - 1 - used : sizeof sink)) > 0)
        if (used + 1 < got_len) used += (size_t)k;
    got[used] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int stopped = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    return stopped && strstr(got, expect) != NULL;
}

static int by_group_then_name(const void *a, const void *b) {
    const test_case *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    const char *only_group = NULL, *skip_group = NULL, *counts_file = NULL;
    const char *patterns[64];
    int n_patterns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--group") && i + 1 < argc) only_group = argv[++i];
        else if (!strcmp(argv[i], "--skip-group") && i + 1 < argc) skip_group = argv[++i];
        else if (!strcmp(argv[i], "--counts") && i + 1 < argc) counts_file = argv[++i];
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: %s [--group G] [--skip-group G] [--counts FILE] [name-substring ...]\n", argv[0]);
            return 0;
        } else if (n_patterns < 64) patterns[n_patterns++] = argv[i];
    }
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ctape-tests-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 2;
    }
    if (!getenv("CTAPE_THREADS")) ct_set_threads(2);
    qsort(tests, (size_t)n_tests, sizeof tests[0], by_group_then_name);

    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        test_case *t = &tests[i];
        if (only_group && strcmp(t->group, only_group)) continue;
        if (skip_group && !strcmp(t->group, skip_group)) continue;
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->group, t->name);
        int match = n_patterns == 0;
        for (int p = 0; p < n_patterns; p++) match |= strstr(full, patterns[p]) != NULL;
        if (!match) continue;
        failed_now = skipped_now = 0;
        message[0] = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        t->fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (failed_now) {
            failed++;
            printf("FAIL %-40s %s\n", full, message);
        } else if (skipped_now) {
            skipped++;
            printf("skip %-40s %s\n", full, message);
        } else {
            passed++;
            printf("ok   %-40s %.2fs%s%s\n", full, secs, message[0] ? "  " : "", message);
        }
        fflush(stdout);
    }
    remove_tree(tmp_root);
    if (skipped) printf("(%d skipped)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    if (counts_file) {
        FILE *f = fopen(counts_file, "w");
        if (!f || fprintf(f, "passed=%d failed=%d skipped=%d\n", passed, failed, skipped) < 0 || fclose(f) != 0) {
            fprintf(stderr, "%s: cannot write %s: %s\n", argv[0], counts_file, strerror(errno));
            return 2;
        }
    }
    return failed ? 1 : 0;
}
