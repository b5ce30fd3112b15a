/* tests/core/test_build.c — the runner itself (where real data is looked for, the counts make test
 * sums) and the Makefile's demo and help. The install path (make install, the README's program)
 * is tests/install_check.sh; the examples' options are tests/examples/test_examples_options.c. */
#include "../test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the runner ------------------------------------------------------------------------- */

/* A copy of an environment variable, put back by env_restore. */
typedef struct {
    const char *name;
    char value[1024];
    int was_set;
} saved_env;

static saved_env env_save(const char *name) {
    saved_env e = {.name = name};
    const char *v = getenv(name);
    if (v) {
        e.was_set = 1;
        snprintf(e.value, sizeof e.value, "%s", v);
    }
    return e;
}

static void env_restore(const saved_env *e) {
    if (e->was_set) setenv(e->name, e->value, 1);
    else unsetenv(e->name);
}

/* ../shared/data is beside the repository, wherever the runner is started from. */
CT_TEST(runner, shared_data_found_from_any_directory) {
    saved_env env = env_save("CTAPE_SHARED_DATA");
    unsetenv("CTAPE_SHARED_DATA");
    char cwd[1024], here[1200] = "", there[1200] = "", why[2400] = "";
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    const char *p = ct_test_shared_data();
    if (p) snprintf(here, sizeof here, "%s", p);
    int moved = chdir("/") == 0;
    p = ct_test_shared_data();
    if (p) snprintf(there, sizeof there, "%s", p);
    else snprintf(why, sizeof why, "%s", ct_test_shared_data_why());
    CHECK(chdir(cwd) == 0);
    env_restore(&env);
    CHECK(moved);
    CHECK(ct_test_repository()[0] == '/', "repository '%s'", ct_test_repository());
    CHECK(strcmp(here, there) == 0, "from %s: '%s'; from /: '%s'", cwd, here, there);
    if (there[0]) CHECK(there[0] == '/', "'%s' depends on the current directory", there);
    else CHECK(strstr(why, "beside the repository") && why[0] == '/', "why: %s", why);
}

/* A missing $CTAPE_SHARED_DATA is named, with where it came from and why it was not used. */
CT_TEST(runner, shared_data_names_the_path_tried) {
    saved_env env = env_save("CTAPE_SHARED_DATA");
    char missing[1024], file[1024], why_missing[2400], why_file[2400];
    snprintf(missing, sizeof missing, "%s/no-such-data", ct_test_tmpdir());
    setenv("CTAPE_SHARED_DATA", missing, 1);
    const char *a = ct_test_shared_data();
    snprintf(why_missing, sizeof why_missing, "%s", ct_test_shared_data_why());
    snprintf(file, sizeof file, "%s/plain-file", ct_test_tmpdir());
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    setenv("CTAPE_SHARED_DATA", file, 1);
    const char *b = ct_test_shared_data();
    snprintf(why_file, sizeof why_file, "%s", ct_test_shared_data_why());
    env_restore(&env);
    CHECK(a == NULL && b == NULL);
    CHECK(strstr(why_missing, missing) && strstr(why_missing, "CTAPE_SHARED_DATA") &&
              strstr(why_missing, strerror(ENOENT)),
          "%s", why_missing);
    CHECK(strstr(why_file, file) && strstr(why_file, "not a directory"), "%s", why_file);
}

/* This binary, by /proc/<pid>/exe: it runs even when make has relinked the file meanwhile. */
static int self_path(char *out, size_t len) {
    snprintf(out, len, "/proc/%d/exe", (int)getpid());
    return access(out, X_OK) == 0;
}

/* --counts FILE: the line make test sums. */
CT_TEST(runner, counts_file) {
    char self[1024], counts[1100], cmd[3000], out[4096];
    CHECK(self_path(self, sizeof self));
    snprintf(counts, sizeof counts, "%s/counts", ct_test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' --counts '%s' --group runner shared_data_names_the_path_tried", self, counts);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    FILE *f = fopen(counts, "r");
    CHECK(f != NULL, "%s not written; output: %s", counts, out);
    char line[128] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    CHECK(strcmp(line, "passed=1 failed=0 skipped=0\n") == 0, "'%s'", line);
}

/* scripts/test-summary: each part and the sum, failing when a part failed or did not finish. */
CT_TEST(runner, summary_sums_the_parts) {
    const char *dir = ct_test_tmpdir();
    const char *lines[3] = {"passed=300 failed=0 skipped=14\n", "passed=84 failed=1 skipped=0\n",
                            "passed=10 failed=0 skipped=0\n"};
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fputs(lines[i], f);
        fclose(f);
    }
    char cmd[4096], out[4096];
    const char *repo = ct_test_repository();
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/test-summary' '%s/a' '%s/b' '%s/c'", repo, dir, dir, dir);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 1, "a failure must fail the summary: exit %d: %s", status, out);
    CHECK(strstr(out, "float32 suite") && strstr(out, "float64 gradient checks") && strstr(out, "install check"), "%s", out);
    CHECK(strstr(out, "all                         394 passed     1 failed    14 skipped"), "%s", out);

    snprintf(cmd, sizeof cmd, "bash '%s/scripts/test-summary' '%s/a' '%s/c' '%s/c'", repo, dir, dir, dir);
    status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/test-summary' '%s/a' '%s/missing' '%s/c'", repo, dir, dir, dir);
    status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 1 && strstr(out, "did not run to the end"), "exit %d: %s", status, out);
}

/* ---- the Makefile ----------------------------------------------------------------------------- */

/* make -n in a scratch build root, outside the make that runs this suite. */
static int make_dry(const char *args, char *out, size_t len) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CTAPE_THREADS make -n --no-print-directory -C '%s' "
             "BUILDROOT='%s' %s",
             ct_test_repository(), ct_test_tmpdir(), args);
    return ct_test_run_capture(cmd, out, len);
}

CT_TEST(build, demo_honours_ctape_threads) {
    static char out[1 << 16];
    int status = make_dry("demo CTAPE_THREADS=3", out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "/ctape train --model mlp --data fashion-mnist --epochs 1 --out runs/demo --force --threads 3\n"), "%s",
          out);
    status = make_dry("demo", out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "/ctape train --model mlp --data fashion-mnist --epochs 1 --out runs/demo --force\n"), "%s", out);
}

CT_TEST(build, help_lists_targets_and_options) {
    char cmd[2000], out[8192];
    snprintf(cmd, sizeof cmd, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C '%s' help",
             ct_test_repository());
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    const char *want[] = {"make test ", "make demo ", "make bench ", "make install ", "make clean ", "make data ",
                          "PRECISION=64 ", "SANITIZE=1 ", "PREFIX=", "CTAPE_THREADS=", "CFLAGS=", "NATIVE=0 ",
                          "NATIVE=1 "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK(strstr(out, want[i]), "no '%s' in: %s", want[i], out);
}
