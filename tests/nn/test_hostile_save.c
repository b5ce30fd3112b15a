/* tests/nn/test_hostile_save.c — saves made to hurt: killed half-way (no torn checkpoint, no
 * temporary file left, or one swept by the next save) and non-finite weights (not saved). Split
 * from tests/nn/test_hostile_checkpoint.c; the same test group. */
#include "../test.h"
#include "../../optim/optimizer.h" /* the optimizer's internals, as optimizer authors see them */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers (as in tests/nn/test_hostile_checkpoint.c) ------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *slurp(const char *path, size_t *len) {
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

static int spill(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(b, 1, len, f);
    return fclose(f) == 0 && put == len;
}

/* fc (3 -> 2), weights from seed; grads set to a fixed pattern. */
static ct_model *fc_model(uint64_t seed) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, seed);
    ct_linear_new(m, "fc", 3, 2);
    return m;
}

static void fake_grads(ct_model *m, int step) {
    for (int i = 0; i < ct_model_param_count(m); i++) {
        ct_tensor *p = ct_model_param(m, i);
        for (size_t k = 0; k < p->size; k++) p->grad[k] = (ct_real)(0.3 * sin(1.7 * (double)k + 0.9 * step + i));
    }
}

/* ==== 1. saves killed half-way ================================================================= */

/* Names in dir with ".tmp-" in them; the first one's name into first (when given). */
static int count_temps(const char *dir, char *first, size_t first_len) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-")) {
            if (!n && first) snprintf(first, first_len, "%s", e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

#define BIG (8 << 20) /* 32 MB in float32 */

/* A model with one large buffer; version v holds (i mod 977) + v. */
static ct_model *big_model(int v) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_buffer(m, "w", CT_SHAPE(BIG));
    for (size_t i = 0; i < w->size; i++) w->data[i] = (ct_real)(i % 977) + (ct_real)v;
    return m;
}

/* The version the file at path holds, -1 when it does not load or holds a mixture. */
static int version_in(const char *path) {
    ct_model *m = big_model(7);
    int v = -1;
    if (ct_model_load(m, path) == CT_OK) {
        ct_tensor *w = ct_model_find_buffer(m, "w");
        v = (int)w->data[0];
        for (size_t i = 0; i < w->size && v >= 0; i++)
            if (w->data[i] != (ct_real)(i % 977) + (ct_real)v) v = -1;
    }
    ct_model_free(m);
    return v;
}

/* Is the child `pid` writing its save: has it a file in dir open, other than the target (its
 * unnamed file "<dir>/#<inode> (deleted)", or a temporary name)? */
static int child_is_writing(pid_t pid, const char *dir, const char *target_path) {
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(fds);
    int found = 0;
    size_t dl = strlen(dir);
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char link[1200], target[1200];
        snprintf(link, sizeof link, "%s/%s", fds, e->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k <= 0) continue;
        target[k] = 0;
        found = !strncmp(target, dir, dl) && target[dl] == '/' && strcmp(target, target_path) != 0;
    }
    if (d) closedir(d);
    return found;
}

/* Forks a child that saves version 1 of the model to path (named temporary files when
 * named_temp), waits until the child is writing its file, then SIGKILLs it `delay` seconds later.
 * Returns 1 when it was killed, 0 when it finished first, -1 on a fork or pipe failure. */
static int kill_a_save(ct_model *m, const char *path, const char *dir, double delay, int named_temp) {
    int ready[2];
    if (pipe(ready) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(ready[0]);
        if (named_temp) setenv("CTAPE_NO_TMPFILE", "1", 1);
        if (write(ready[1], "go", 2) != 2) _exit(3);
        _exit(ct_model_save(m, path) == CT_OK ? 0 : 2);
    }
    close(ready[1]);
    char go[2];
    ssize_t got = read(ready[0], go, 2);
    close(ready[0]);
    int status, done = 0;
    const double give_up = now_s() + 30;
    while (got == 2 && !(done = waitpid(pid, &status, WNOHANG) == pid) && !child_is_writing(pid, dir, path) &&
           now_s() < give_up) {
        struct timespec tick = {0, 200000};
        nanosleep(&tick, NULL);
    }
    if (done) return 0;
    struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

CT_TEST(checkpoint_hostile, killed_saves_leave_no_temp_files_and_no_torn_checkpoint) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "big.safetensors");
    ct_model *old = big_model(0), *fresh = big_model(1);
    int saved = ct_model_save(old, path) == CT_OK;
    double t0 = now_s(); /* the second save, over an existing file, as the ones killed below */
    saved &= ct_model_save(old, path) == CT_OK;
    const double took = now_s() - t0;
    /* O_TMPFILE: a kill anywhere while writing leaves no name behind, and the target is the old
     * file or the new one, whole */
    int killed = 0, leftovers = 0, torn = 0, forks_failed = 0;
    for (int k = 0; k < 6; k++) {
        int r = kill_a_save(fresh, path, dir, took * 0.1 * k, 0);
        forks_failed += r < 0;
        killed += r > 0;
        leftovers += count_temps(dir, NULL, 0);
        torn += version_in(path) < 0;
    }
    int killed_tmpfile = killed, torn_tmpfile = torn;

    /* Named temporary files (CTAPE_NO_TMPFILE): kills leave them; the next save removes them
     * (each child's save sweeps what the one before it left: count after each kill, and end on a
     * kill that left one). */
    saved &= ct_model_save(old, path) == CT_OK;
    killed = 0;
    torn = 0;
    int left_by_kills = 0, orphans = 0;
    for (int k = 0; k < 16 && (k < 6 || !orphans); k++) {
        int r = kill_a_save(fresh, path, dir, took * (k < 6 ? 0.1 * k : 0), 1);
        forks_failed += r < 0;
        killed += r > 0;
        torn += version_in(path) < 0;
        orphans = count_temps(dir, NULL, 0);
        left_by_kills += orphans;
    }
    /* Beside them: a temporary name of a live writer (this process), one of another host, and
     * one modified after the next save starts. None of them may be removed. */
    char orphan[512] = "", live[600] = "", other_host[600] = "", future[600] = "";
    count_temps(dir, orphan, sizeof orphan);
    char *mark = strstr(orphan, ".tmp-"), *pid_end = mark && strlen(mark) > 14 ? strchr(mark + 14, '-') : NULL;
    int made = 0;
    if (pid_end) {
        snprintf(live, sizeof live, "%s/%.*s%ld%s", dir, (int)(mark + 14 - orphan), orphan, (long)getpid(), pid_end);
        snprintf(other_host, sizeof other_host, "%s/%s", dir, orphan);
        char *hex = other_host + strlen(dir) + 1 + (mark - orphan) + 5;
        *hex = *hex == 'f' ? '0' : 'f';
        snprintf(future, sizeof future, "%s/%.*sZZZZZZ", dir, (int)strlen(orphan) - 6, orphan);
        struct timespec later[2] = {{time(NULL) + 3600, 0}, {time(NULL) + 3600, 0}};
        made = spill(live, "x", 1) && spill(other_host, "x", 1) && spill(future, "x", 1) &&
               utimensat(AT_FDCWD, future, later, 0) == 0;
    }
    saved &= ct_model_save(fresh, path) == CT_OK;
    int left = count_temps(dir, NULL, 0);
    int kept = made && access(live, F_OK) == 0 && access(other_host, F_OK) == 0 && access(future, F_OK) == 0;
    if (made) unlink(live), unlink(other_host), unlink(future);
    int now = version_in(path);
    ct_model_free(old);
    ct_model_free(fresh);
    CHECK(saved, "%s", ct_last_error());
    CHECK(forks_failed == 0);
    CHECK(torn_tmpfile == 0 && torn == 0, "%d + %d kills left a checkpoint that does not load whole", torn_tmpfile, torn);
    CHECK(leftovers == 0, "%d temporary files left by killed saves", leftovers);
    CHECK(killed_tmpfile > 0, "no save was killed before it finished (each takes %.3f s)", took);
    CHECK(orphans > 0 && killed > 0 && pid_end, "the killed saves (%d) left no temporary file to sweep", killed);
    CHECK(kept, "a temporary file that is not a stale one of ours was removed");
    CHECK(left == 3, "%d of the %d orphans were not removed by the next save", left - 3, orphans);
    CHECK(now == 1, "the last save holds version %d", now);
    ct_test_note("save %.3f s; killed %d saves while writing with O_TMPFILE (nothing left), %d with named temporary "
                 "files (%d left, each swept by the next save)", took, killed_tmpfile, killed, left_by_kills);
}

/* ==== 2. non-finite weights ==================================================================== */

/* The default guard stops a step whose gradient holds NaN: the weights stay finite and a
 * checkpoint of them saves. */
CT_TEST(checkpoint_hostile, default_guard_stops_before_nan_reaches_the_weights) {
    ct_guard_opts defaults = CT_GUARDS();
    CHECK(defaults.nonfinite == CT_NONFINITE_STOP);
    ct_model *m = fc_model(8);
    ct_optim *opt = ct_adamw_new(m, CT_ADAMW(.lr = 0.01));
    fake_grads(m, 0);
    CHECK(ct_optim_step(opt) == CT_OK, "%s", ct_last_error());
    ct_tensor *w = ct_model_find_param(m, "fc.weight");
    ct_real before[6];
    memcpy(before, w->data, sizeof before);
    fake_grads(m, 1);
    w->grad[4] = (ct_real)NAN;
    int rc = ct_optim_step(opt);
    char err[600];
    snprintf(err, sizeof err, "%s", ct_last_error());
    int same = !memcmp(before, w->data, sizeof before);
    int path_ok = ct_checkpoint_save(opt, path_in(ct_test_tmpdir(), "after-stop.safetensors")) == CT_OK;
    long steps = ct_optim_steps(opt);
    /* with the guard off (PyTorch's behaviour) the NaN goes into the weights */
    ct_optim_set_guards(opt, CT_GUARDS(.nonfinite = CT_NONFINITE_OFF));
    int rc_off = ct_optim_step(opt);
    int nan_in = isnan(w->data[4]);
    ct_optim_free(opt);
    ct_model_free(m);
    CHECK(rc == CT_ERR_VALUE && strstr(err, "fc.weight.grad[4] = nan") && strstr(err, "stopped"), "rc %d: %s", rc, err);
    CHECK(same && steps == 1, "nothing applied");
    CHECK(path_ok, "the finite weights save: %s", ct_last_error());
    CHECK(rc_off == CT_OK && nan_in, "CT_NONFINITE_OFF steps into the NaN");
}

/* ct_model_save, ct_checkpoint_save, ct_optim_save and ct_ema_save refuse NaN and Inf, name the
 * tensor and the index, and leave the previous file as it was; ct_safetensors_write still
 * writes them (the way to keep them for debugging). */
CT_TEST(checkpoint_hostile, nonfinite_weights_are_not_saved) {
    const char *dir = ct_test_tmpdir();
    char model_path[600], ckpt_path[600], optim_path[600], ema_path[600];
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/ckpt.safetensors", dir);
    snprintf(optim_path, sizeof optim_path, "%s/optim.safetensors", dir);
    snprintf(ema_path, sizeof ema_path, "%s/ema.safetensors", dir);
    ct_model *m = fc_model(9);
    ct_tensor *count = ct_model_add_buffer(m, "fc.count", CT_SHAPE(2));
    ct_optim *opt = ct_adam_new(m, CT_ADAM(.lr = 0.01));
    fake_grads(m, 0);
    CHECK(ct_optim_step(opt) == CT_OK);
    ct_ema *ema = ct_ema_new(m, CT_EMA());
    CHECK(ct_model_save(m, model_path) == CT_OK && ct_checkpoint_save(opt, ckpt_path) == CT_OK &&
          ct_optim_save(opt, optim_path) == CT_OK && ct_ema_save(ema, ema_path) == CT_OK, "%s", ct_last_error());
    size_t len[4];
    uint8_t *old[4] = {slurp(model_path, &len[0]), slurp(ckpt_path, &len[1]), slurp(optim_path, &len[2]),
                       slurp(ema_path, &len[3])};
    ct_tensor *bias = ct_model_find_param(m, "fc.bias");
    bias->data[1] = (ct_real)NAN;
    int rc_model = ct_model_save(m, model_path);
    char e_model[700];
    snprintf(e_model, sizeof e_model, "%s", ct_last_error());
    int rc_ckpt = ct_checkpoint_save(opt, ckpt_path);
    char e_ckpt[700];
    snprintf(e_ckpt, sizeof e_ckpt, "%s", ct_last_error());
    bias->data[1] = 0;
    count->data[1] = (ct_real)-INFINITY; /* a buffer */
    int rc_buffer = ct_model_save(m, model_path);
    char e_buffer[700];
    snprintf(e_buffer, sizeof e_buffer, "%s", ct_last_error());
    count->data[1] = 0;
    ct_optim_state_tensor(opt, ct_optim_find_state(opt, "exp_avg_sq"), 0)->data[3] = (ct_real)INFINITY;
    int rc_optim = ct_optim_save(opt, optim_path);
    char e_optim[700];
    snprintf(e_optim, sizeof e_optim, "%s", ct_last_error());
    ct_ema_average(ema, 0)->data[5] = (ct_real)NAN;
    int rc_ema = ct_ema_save(ema, ema_path);
    char e_ema[700];
    snprintf(e_ema, sizeof e_ema, "%s", ct_last_error());
    int intact = 1;
    const char *paths[4] = {model_path, ckpt_path, optim_path, ema_path};
    for (int i = 0; i < 4; i++) {
        size_t now_len;
        uint8_t *now = slurp(paths[i], &now_len);
        intact &= now && old[i] && now_len == len[i] && !memcmp(now, old[i], len[i]);
        free(now);
        free(old[i]);
    }
    int temps = count_temps(dir, NULL, 0);
    /* the debugging route: ct_safetensors_write keeps the NaN, and it reads back */
    bias->data[1] = (ct_real)NAN;
    ct_tensor *list[1] = {bias};
    const char *dump = path_in(dir, "dump.safetensors");
    int rc_dump = ct_safetensors_write(dump, 1, NULL, list, NULL);
    ct_tensor *back = ct_tensor_new(CT_SHAPE(2));
    const char *names[1] = {"fc.bias"};
    ct_safetensors *f = ct_safetensors_open(dump);
    int rc_back = f ? ct_safetensors_load(f, 1, names, &back) : CT_ERR_IO;
    if (f) ct_safetensors_close(f);
    int nan_back = isnan(back->data[1]);
    ct_tensor_free(back);
    ct_ema_free(ema);
    ct_optim_free(opt);
    ct_model_free(m);
    CHECK(rc_model == CT_ERR_VALUE && strstr(e_model, model_path) && strstr(e_model, "tensor \"fc.bias\"[1] = nan is not finite") &&
          strstr(e_model, "nothing was written"), "%d %s", rc_model, e_model);
    CHECK(rc_ckpt == CT_ERR_VALUE && strstr(e_ckpt, ckpt_path) && strstr(e_ckpt, "tensor \"fc.bias\"[1] = nan"), "%s", e_ckpt);
    CHECK(rc_buffer == CT_ERR_VALUE && strstr(e_buffer, "tensor \"fc.count\"[1] = -inf"), "%s", e_buffer);
    CHECK(rc_optim == CT_ERR_VALUE && strstr(e_optim, "tensor \"fc.weight.exp_avg_sq\"[3] = inf"), "%s", e_optim);
    CHECK(rc_ema == CT_ERR_VALUE && strstr(e_ema, ema_path) && strstr(e_ema, "tensor \"fc.weight\"[5] = nan"), "%s", e_ema);
    CHECK(intact, "every previous file is byte for byte what it was");
    CHECK(temps == 0, "no temporary file left");
    CHECK(rc_dump == CT_OK && rc_back == CT_OK && nan_back, "ct_safetensors_write keeps NaN for debugging");
}
