/* tests/examples/test_grokking.c — examples/grokking (the loss lab's softmax-collapse experiment) on a
 * tiny modulus: both losses train, every CSV row and picture is written, a bad loss name is refused. */
#include "../test.h"

#include <stdio.h>
#include <string.h>

/* The last data row of a CSV, and the number of data rows. */
static int last_row(const char *path, char *row, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int rows = -1; /* the header */
    while (fgets(line, sizeof line, f)) {
        snprintf(row, len, "%s", line);
        rows++;
    }
    fclose(f);
    return rows;
}

CT_TEST(examples, grokking_tiny_run_writes_its_csvs_and_pictures) {
    char exe[1100], cmd[3000], path[1400], row[512];
    static char out[1 << 15];
    if (!ct_test_example_path("grokking", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    const char *dir = ct_test_tmpdir();
    snprintf(cmd, sizeof cmd, "'%s' --modulus 7 --hidden 16 --steps 200 --log-every 50 --lr 0.01 --out '%s/g'", exe,
             dir);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "p = 7: 20 training pairs, 29 test pairs"), "%s", out);
    for (int l = 0; l < 2; l++) {
        snprintf(path, sizeof path, "%s/g/%s-%s.csv", dir, l ? "stablemax" : "softmax",
                 sizeof(ct_real) == 8 ? "f64" : "f32");
        const int rows = last_row(path, row, sizeof row);
        CHECK(rows == 5, "%s: %d rows (steps 0, 50, ..., 200 expected)", path, rows);
        int step = -1;
        double loss = -1, train_accuracy = -1;
        CHECK(sscanf(row, "%d,%lf,%lf", &step, &loss, &train_accuracy) == 3 && step == 200, "%s", row);
        /* 20 pairs and 16 hidden units: memorised in 200 full-batch Adam steps */
        CHECK(train_accuracy == 1 && loss < 0.1, "%s: last row %s", path, row);
    }
    static const char *const pictures[] = {"test_accuracy", "collapsed", "train_loss"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/g/%s.png", dir, pictures[i]);
        FILE *f = fopen(path, "rb");
        unsigned char magic[4] = {0};
        CHECK(f && fread(magic, 1, 4, f) == 4 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G', "%s", path);
        if (f) fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' --losses softmax,sparsemax --out '%s/g2'", exe, dir);
    status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 2 && strstr(out, "not \"sparsemax\""), "exit %d: %s", status, out);
}
