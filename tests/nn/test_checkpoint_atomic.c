/* tests/nn/test_checkpoint_atomic.c — atomic saves (core/atomic_file.c through ct_model_save): a
 * save that fails at any stage leaves the previous file as it was and no temporary file. Split
 * from tests/nn/test_checkpoint.c. */
#include "../test.h"
#include "../reference/checkpoint_ref.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers (as in tests/nn/test_checkpoint.c) --------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(data, 1, len, f);
    return fclose(f) == 0 && put == len;
}

/* The whole file, malloc'd (NULL when it cannot be read). */
static uint8_t *read_bytes(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Names in dir that look like our temporary files ("<name>.tmp-XXXXXX"). */
static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* The model of tests/reference/gen_checkpoint.py: fc1 (4 -> 8), fc2 (8 -> 3), buffers "scale"
 * (3,) and "steps" (); forward(x) = fc2(relu(fc1(x))) * scale. */
typedef struct {
    ct_model *m;
    ct_module *fc1, *fc2;
    ct_tensor *scale, *steps;
} mlp;

static mlp mlp_new(uint64_t seed) {
    mlp n;
    n.m = ct_model_new();
    ct_model_set_seed(n.m, seed);
    n.fc1 = ct_linear_new(n.m, "fc1", CKPT_REF_IN, CKPT_REF_HIDDEN);
    n.fc2 = ct_linear_new(n.m, "fc2", CKPT_REF_HIDDEN, CKPT_REF_OUT);
    n.scale = ct_model_add_buffer(n.m, "scale", CT_SHAPE(CKPT_REF_OUT));
    n.steps = ct_model_add_buffer(n.m, "steps", CT_SHAPE_SCALAR);
    ct_tensor_fill(n.scale, 1);
    return n;
}

/* ---- atomic saves ------------------------------------------------------------------------ */
/* What can be tested honestly, as root too (these tests run as root in CI, where permission
 * bits do not stop writes): a save whose temporary file cannot be created (missing directory),
 * one whose rename fails after the whole file was written and synced (the target is a
 * directory: EISDIR whoever we are), and one whose write fails half-way (RLIMIT_FSIZE, which
 * binds root as well: write() returns EFBIG). fsync and close failures cannot be provoked
 * without a failing disk or a hook in the library; they take the same cleanup path as the
 * write failure. A read-only directory is tested only when not root. */

CT_TEST(checkpoint, save_into_a_missing_directory_fails_cleanly) {
    const char *dir = ct_test_tmpdir();
    mlp n = mlp_new(2);
    const char *path = path_in(dir, "no/such/dir/model.safetensors");
    int rc = ct_model_save(n.m, path);
    ct_model_free(n.m);
    CHECK(rc == CT_ERR_IO);
    CHECK(strstr(ct_last_error(), path) && strstr(ct_last_error(), "cannot create a temporary file beside it") &&
          strstr(ct_last_error(), "No such file or directory"), "got \"%s\"", ct_last_error());
    CHECK(access(path_in(dir, "no"), F_OK) != 0, "nothing was created");
}

CT_TEST(checkpoint, failed_rename_leaves_the_target_and_no_temp_file) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "model.safetensors");
    char keep[1100];
    snprintf(keep, sizeof keep, "%s/keep", path);
    CHECK(mkdir(path, 0700) == 0);
    CHECK(write_bytes(keep, "keep", 4));
    mlp n = mlp_new(2);
    int rc = ct_model_save(n.m, path);
    ct_model_free(n.m);
    size_t len = 0;
    uint8_t *kept = read_bytes(keep, &len);
    int intact = kept && len == 4 && !memcmp(kept, "keep", 4);
    free(kept);
    CHECK(rc == CT_ERR_IO);
    CHECK(strstr(ct_last_error(), path) && strstr(ct_last_error(), "cannot rename the temporary file over it"),
          "got \"%s\"", ct_last_error());
    CHECK(intact, "what was at the path is untouched");
    CHECK(count_temp_files(dir) == 0, "the temporary file was removed");
}

CT_TEST(checkpoint, failed_write_leaves_the_old_file_intact) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "model.safetensors");
    mlp old = mlp_new(3);
    CHECK(ct_model_save(old.m, path) == CT_OK, "%s", ct_last_error());
    ct_model_free(old.m);
    size_t old_len = 0;
    uint8_t *old_bytes = read_bytes(path, &old_len);
    /* In a child: files may grow to 200 bytes, so the write of the new checkpoint fails midway. */
    mlp fresh = mlp_new(4);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim;
        getrlimit(RLIMIT_FSIZE, &lim);
        lim.rlim_cur = 200;
        int rc = setrlimit(RLIMIT_FSIZE, &lim) == 0 ? ct_model_save(fresh.m, path) : 99;
        char msg[1100];
        int k = snprintf(msg, sizeof msg, "%d %s", rc, ct_last_error());
        if (write(pipefd[1], msg, (size_t)k) < 0) _exit(2);
        _exit(0);
    }
    close(pipefd[1]);
    char msg[1100] = "";
    size_t used = 0;
    ssize_t k;
    while (used < sizeof msg - 1 && (k = read(pipefd[0], msg + used, sizeof msg - 1 - used)) > 0) used += (size_t)k;
    msg[used] = 0;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    ct_model_free(fresh.m);
    size_t now_len = 0;
    uint8_t *now = read_bytes(path, &now_len);
    int intact = now && old_bytes && now_len == old_len && !memcmp(now, old_bytes, old_len);
    free(now);
    free(old_bytes);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(atoi(msg) == CT_ERR_IO && strstr(msg, path) && strstr(msg, "cannot write") && strstr(msg, "File too large"),
          "child: \"%s\"", msg);
    CHECK(intact, "the previous checkpoint is byte-for-byte what it was");
    CHECK(count_temp_files(dir) == 0, "the temporary file was removed");
}

CT_TEST(checkpoint, read_only_directory_fails_cleanly) {
    if (geteuid() == 0) CT_SKIP("as root, permission bits do not stop the write (see the other atomic-save tests)");
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "model.safetensors");
    CHECK(write_bytes(path, "old", 3));
    chmod(dir, 0500);
    mlp n = mlp_new(2);
    int rc = ct_model_save(n.m, path);
    chmod(dir, 0700);
    ct_model_free(n.m);
    size_t len = 0;
    uint8_t *b = read_bytes(path, &len);
    int intact = b && len == 3 && !memcmp(b, "old", 3);
    free(b);
    CHECK(rc == CT_ERR_IO && strstr(ct_last_error(), "Permission denied"), "got \"%s\"", ct_last_error());
    CHECK(intact);
    CHECK(count_temp_files(dir) == 0);
}
