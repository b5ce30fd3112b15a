/* tests/examples/test_ctape_arena.c — `ctape arena` with embedding losses: a refused option names
 * itself, and a mixed list (cross-entropy and SupCon) on a MNIST subset gives a classifier row and an
 * embedding row judged by kNN and linear-probe accuracy. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static int command_path(char *exe, size_t len) { return ct_test_example_path("../ctape", exe, len); }

static int ctape(const char *args, char *out, size_t len) {
    char exe[1024], cmd[5200];
    if (!command_path(exe, sizeof exe)) return -1;
    snprintf(cmd, sizeof cmd, "'%s' %s", exe, args);
    return ct_test_run_capture(cmd, out, len);
}

static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : -1;
}

CT_TEST(ctape_arena, refuses_a_bad_embedding_option) {
    char exe[1024], out[8192], args[1400];
    if (!command_path(exe, sizeof exe)) CT_SKIP("build/ctape is not built");
    snprintf(args, sizeof args, "arena --losses supcon --data mnist --out '%s/a' --embedding-dim 0", ct_test_tmpdir());
    CHECK(ctape(args, out, sizeof out) == 2 && strstr(out, "--embedding-dim must be an integer >= 1"), "%s", out);
    snprintf(args, sizeof args, "arena --losses supcon --data mnist --out '%s/a' --knn-k -3", ct_test_tmpdir());
    CHECK(ctape(args, out, sizeof out) == 2 && strstr(out, "--knn-k must be an integer >= 1"), "%s", out);
    CHECK(ctape("arena --help", out, sizeof out) == 0 && strstr(out, "--embedding-dim") && strstr(out, "linear-probe"),
          "%s", out);
}

CT_TEST(ctape_arena, cross_entropy_and_supcon_on_mnist) {
    char exe[1024], out[32768], args[4000];
    if (!command_path(exe, sizeof exe)) CT_SKIP("build/ctape is not built");
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char dir[1100], path[1200];
    snprintf(dir, sizeof dir, "%s/arena", ct_test_tmpdir());
    snprintf(args, sizeof args, "arena --losses 'cross_entropy;supcon:temperature=0.1' --data 'mnist:%s/mnist:subset=2000' "
             "--model mlp:hidden=[64] --embedding-dim 32 --seeds 1 --epochs 1 --batch 100 --optim adam:lr=2e-3 "
             "--threads 1 --quiet --out '%s'", shared, dir);
    CHECK(ctape(args, out, sizeof out) == 0, "arena:\n%s", out);
    const double accuracy = number_after(out, "test accuracy "), knn = number_after(out, "kNN accuracy "),
                 probe = number_after(out, "linear probe ");
    CHECK(accuracy > 60 && knn > 75 && probe > 75, "cross-entropy %.2f%%, SupCon kNN %.2f%%, probe %.2f%% after one "
          "epoch of 2000 images:\n%s", accuracy, knn, probe, out);
    FILE *f = fopen(snprintf(path, sizeof path, "%s/table.md", dir) > 0 ? path : "", "r");
    char table[16384] = "";
    if (f) table[fread(table, 1, sizeof table - 1, f)] = 0, fclose(f);
    CHECK(strstr(table, "| supcon:temperature=0.1 | 1 | — |") && strstr(table, "Δ linear top-1"), "table.md:\n%s", table);
}
