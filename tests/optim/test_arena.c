/* tests/optim/test_arena.c — the loss arena (optim/arena.h): Student's t quantiles and intervals
 * against published table values, the spec-list splitter, and a small arena on synthetic data: its
 * rows, its table, continuing where it stopped, and its refusals. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* t(0.975, df) from the standard tables (to the 7 digits printed there). */
CT_TEST(arena, student_t_quantiles_and_intervals) {
    const struct {
        double df, t;
    } table[] = {{1, 12.7062047}, {2, 4.3026527}, {4, 2.7764451}, {9, 2.2621572}, {29, 2.0452296}, {120, 1.9799304}};
    for (size_t k = 0; k < sizeof table / sizeof *table; k++)
        CHECK_NEAR(ct_student_t_quantile(0.975, table[k].df), table[k].t, 1e-6, 0);
    CHECK_NEAR(ct_student_t_quantile(0.025, 4), -2.7764451, 1e-6, 0);
    CHECK_NEAR(ct_student_t_quantile(0.5, 7), 0, 1e-9, 0);
    CHECK_NEAR(ct_student_t_quantile(0.995, 10), 3.1692727, 1e-6, 0);
    /* 1, 2, 3, 4, 5: sd √2.5, half-width t(0.975, 4)·√2.5/√5 = 1.9632432 */
    CHECK_NEAR(ct_ci95_half_width(5, sqrt(2.5)), 1.9632432, 1e-6, 0);
    CHECK(isnan(ct_ci95_half_width(1, 0)), "one value has no interval");
}

CT_TEST(arena, spec_lists_split_between_specs_only) {
    char buf[512], *s[8];
    int n = ct_arena_split("focal:gamma=2,alpha=0.25,cross_entropy", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "focal:gamma=2,alpha=0.25") && !strcmp(s[1], "cross_entropy"), "%d: %s | %s", n, s[0],
          n > 1 ? s[1] : "");
    n = ct_arena_split(" a ; b;c ", buf, sizeof buf, s, 8);
    CHECK(n == 3 && !strcmp(s[0], "a") && !strcmp(s[1], "b") && !strcmp(s[2], "c"), "%d pieces", n);
    n = ct_arena_split("ldam:counts=[5,3,1],cross_entropy", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "ldam:counts=[5,3,1]"), "%d: %s", n, s[0]);
    n = ct_arena_split("exp:100+sym:0.2;clean", buf, sizeof buf, s, 8);
    CHECK(n == 2 && !strcmp(s[0], "exp:100+sym:0.2"), "%d: %s", n, s[0]);
}

static ct_dataset *blobs(int n, uint64_t seed) { return ct_test_blobs(n, seed); }

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0;
    for (int c; f && (c = fgetc(f)) != EOF;) n += c == '\n';
    if (f) fclose(f);
    return n;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

CT_TEST(arena, runs_tabulates_and_continues) {
    ct_dataset *train = blobs(400, 1), *test = blobs(200, 2);
    char out[1100], csv[1200], table[1200];
    snprintf(out, sizeof out, "%s/arena", ct_test_tmpdir());
    snprintf(csv, sizeof csv, "%s/runs.csv", out), snprintf(table, sizeof table, "%s/table.md", out);
    ct_arena_opts o = CT_ARENA(.losses = "cross_entropy, focal:gamma=2", .conditions = "clean; exp:10", .seeds = 2,
                               .model = "mlp:hidden=[16]", .optim = "adam:lr=0.01", .epochs = 3, .batch = 50,
                               .out = out, .progress = 0);
    CHECK(ct_arena_run(train, test, o) == CT_OK, "%s", ct_last_error());
    CHECK(count_lines(csv) == 1 + 8, "runs.csv has %d lines, want a header and 2 losses x 2 conditions x 2 seeds",
          count_lines(csv) - 1);
    char *text = slurp(csv);
    CHECK(text && strstr(text, "\"focal:") && strstr(text, "gamma=2") && strstr(text, ",\"exp:10\",1,"), "runs.csv:\n%s",
          text ? text : "");
    free(text);
    text = slurp(table);
    CHECK(text && strstr(text, "## clean") && strstr(text, "## exp:10") && strstr(text, " ± ") &&
              strstr(text, "Paired with cross_entropy") && strstr(text, "| 2 |"),
          "table.md:\n%s", text ? text : "");
    free(text);
    /* again: every run is in runs.csv, nothing runs; one more seed runs only seed 2 */
    CHECK(ct_arena_run(train, test, o) == CT_OK && count_lines(csv) == 9, "a second call ran again: %d lines",
          count_lines(csv));
    o.seeds = 3;
    CHECK(ct_arena_run(train, test, o) == CT_OK && count_lines(csv) == 13, "seeds 3: %d lines", count_lines(csv));
    /* refusals, named */
    o.conditions = "exp:0.5";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "exp:0.5"), "%s", ct_last_error());
    o.conditions = "asym:0.2";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), ".flips"), "%s", ct_last_error());
    o.conditions = "clean", o.losses = "supcon";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "embeddings"), "%s", ct_last_error());
    o.losses = "cross_entropy", o.baseline = "focal";
    CHECK(ct_arena_run(train, test, o) == CT_ERR_VALUE && strstr(ct_last_error(), "not one of the losses"), "%s",
          ct_last_error());
    ct_dataset_free(train), ct_dataset_free(test);
}
