/* tests/examples/test_ctape_command.c — the ctape command (examples/ctape/): list, the messages of
 * its mistakes, a real training run with every file it promises (the pictures decoded again),
 * eval and resume agreeing with train, plot, and Ctrl-C + resume giving the uninterrupted run's
 * weights. */
#include "../test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb/stb_image.h>

static int command_path(char *exe, size_t len) { return ct_test_example_path("../ctape", exe, len); }

/* Runs `ctape ARGS`, its output in out; returns its exit status. */
static int ctape(const char *args, char *out, size_t len) {
    char exe[1024], cmd[5200];
    if (!command_path(exe, sizeof exe)) return -1;
    snprintf(cmd, sizeof cmd, "'%s' %s", exe, args);
    return ct_test_run_capture(cmd, out, len);
}

CT_TEST(ctape_command, list_and_mistakes) {
    char exe[1024], out[32768];
    if (!command_path(exe, sizeof exe)) CT_SKIP("build/ctape is not built");
    CHECK(ctape("list models", out, sizeof out) == 0 && strstr(out, "resnet20") && strstr(out, "vit_tiny") &&
              strstr(out, "lenet5"), "list models:\n%s", out);
    CHECK(ctape("list losses", out, sizeof out) == 0 && strstr(out, "focal"), "list losses:\n%s", out);
    CHECK(ctape("list optimizers", out, sizeof out) == 0 && strstr(out, "adamw"), "list optimizers:\n%s", out);
    CHECK(ctape("list schedules", out, sizeof out) == 0 && strstr(out, "cosine"), "list schedules:\n%s", out);
    CHECK(ctape("list datasets", out, sizeof out) == 0 && strstr(out, "fashion-mnist"), "list datasets:\n%s", out);
    CHECK(ctape("list model", out, sizeof out) == 2 && strstr(out, "did you mean models"), "list model:\n%s", out);
    CHECK(ctape("trian", out, sizeof out) == 2 && strstr(out, "did you mean train"), "trian:\n%s", out);
    CHECK(ctape("train --data mnist --epoch 3", out, sizeof out) == 2 && strstr(out, "did you mean --epochs"), "--epoch:\n%s",
          out);
    CHECK(ctape("train --data mnist --epochs 0", out, sizeof out) == 2 && strstr(out, "--epochs must be an integer >= 1"),
          "--epochs 0:\n%s", out);
    CHECK(ctape("train --epochs 1", out, sizeof out) == 2 && strstr(out, "--data is required"), "no --data:\n%s", out);
    CHECK(ctape("train --data mnist --model lenet6", out, sizeof out) == 2 && strstr(out, "lenet6") &&
              strstr(out, "lenet5"), "model lenet6:\n%s", out);
    CHECK(ctape("train --data mnist --optim adam:lr=-1", out, sizeof out) == 2 && strstr(out, "lr"), "adam lr -1:\n%s", out);
    CHECK(ctape("train --data mnist --sched cosin", out, sizeof out) == 2 && strstr(out, "did you mean cosine"),
          "cosin:\n%s", out);
    char args[1200];
    snprintf(args, sizeof args, "train --data mnsit --out '%s/x' --quiet", ct_test_tmpdir());
    CHECK(ctape(args, out, sizeof out) == 1 && strstr(out, "did you mean mnist"), "mnsit:\n%s", out);
    CHECK(ctape("train --help", out, sizeof out) == 0 && strstr(out, "--crop"), "train --help:\n%s", out);
}

static int png_size(const char *dir, const char *name, int *w, int *h) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int channels;
    unsigned char *p = stbi_load(path, w, h, &channels, 3);
    stbi_image_free(p);
    return p != NULL;
}

/* The number after `key` in text, or -1. */
static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : -1;
}

CT_TEST(ctape_command, trains_reports_evaluates_and_plots_mnist) {
    char exe[1024], out[32768], args[4000];
    if (!command_path(exe, sizeof exe)) CT_SKIP("build/ctape is not built");
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char run[1100];
    snprintf(run, sizeof run, "%s/run", ct_test_tmpdir());
    snprintf(args, sizeof args, "train --model mlp:hidden=[64] --data 'mnist:%s/mnist:subset=2000' --epochs 2 --batch 100 "
             "--optim adam:lr=2e-3 --threads 1 --quiet --out '%s'", shared, run);
    CHECK(ctape(args, out, sizeof out) == 0, "train:\n%s", out);
    const double trained = number_after(out, "test accuracy ");
    CHECK(trained > 80, "test accuracy %.2f%% after 2 epochs of 2000 images (want > 80%%):\n%s", trained, out);
    static const char *const files[] = {"args.txt", "log.csv", "log.jsonl", "checkpoint.safetensors", "best.safetensors",
                                        "model.safetensors", "summary.md"};
    for (int k = 0; k < 7; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", run, files[k]);
        CHECK(access(path, R_OK) == 0, "%s was not written", path);
    }
    int w, h;
    CHECK(png_size(run, "loss.png", &w, &h) && w == 640 && h == 420, "loss.png %dx%d", w, h);
    CHECK(png_size(run, "accuracy.png", &w, &h) && w == 640 && h == 420, "accuracy.png %dx%d", w, h);
    CHECK(png_size(run, "lr.png", &w, &h) && w == 640, "lr.png");
    CHECK(png_size(run, "confusion.png", &w, &h) && w == 560 && h == 560, "confusion.png %dx%d", w, h);
    CHECK(png_size(run, "reliability.png", &w, &h) && w == 480 && h == 480, "reliability.png %dx%d", w, h);
    CHECK(png_size(run, "misclassified.png", &w, &h), "misclassified.png");
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.md", run);
    FILE *f = fopen(path, "r");
    char summary[16384] = {0};
    if (f) fread(summary, 1, sizeof summary - 1, f), fclose(f);
    CHECK(strstr(summary, "| 2 | ") && strstr(summary, "## Test set (10000 images") && strstr(summary, "![confusion matrix]"),
          "summary.md:\n%s", summary);
    /* eval reads the same weights back: the same accuracy */
    snprintf(args, sizeof args, "eval '%s'", run);
    CHECK(ctape(args, out, sizeof out) == 0, "eval:\n%s", out);
    const double evaluated = number_after(out, "accuracy ");
    CHECK(evaluated == trained, "eval says %.2f%%, train said %.2f%%:\n%s", evaluated, trained, out);
    /* a finished run: train refuses the folder, resume has nothing left and reports the same */
    snprintf(args, sizeof args, "train --data 'mnist:%s/mnist' --out '%s' --quiet", shared, run);
    CHECK(ctape(args, out, sizeof out) == 1 && strstr(out, "holds a run already"), "train into a run:\n%s", out);
    snprintf(args, sizeof args, "resume '%s'", run);
    CHECK(ctape(args, out, sizeof out) == 0 && number_after(out, "test accuracy ") == trained, "resume:\n%s", out);
    snprintf(args, sizeof args, "plot '%s' '%s' --metric val_loss --out '%s/compare.png'", run, run, run);
    CHECK(ctape(args, out, sizeof out) == 0 && png_size(run, "compare.png", &w, &h) && w == 640, "plot:\n%s", out);
    snprintf(args, sizeof args, "plot '%s' --metric accuracy", run);
    CHECK(ctape(args, out, sizeof out) == 2 && strstr(out, "val_accuracy"), "plot --metric accuracy:\n%s", out);
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
    fclose(f);
    return n;
}

static int same_file(const char *a, const char *b) {
    char *text[2] = {0};
    long len[2] = {0};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(k ? b : a, "rb");
        if (!f) return 0;
        fseek(f, 0, SEEK_END);
        len[k] = ftell(f);
        fseek(f, 0, SEEK_SET);
        text[k] = malloc((size_t)len[k] + 1);
        len[k] = (long)fread(text[k], 1, (size_t)len[k], f);
        fclose(f);
    }
    const int same = len[0] == len[1] && !memcmp(text[0], text[1], (size_t)len[0]);
    free(text[0]), free(text[1]);
    return same;
}

/* Ctrl-C during ctape train, then ctape resume: the final weights are the uninterrupted run's,
 * byte for byte (one thread). The signal is sent once the log shows steps (the handler is in place
 * by then); a run that finished before it arrived is reported as a skip. */
CT_TEST(ctape_command, ctrl_c_and_resume_give_the_uninterrupted_weights) {
    char exe[1024], out[32768], args[4000];
    if (!command_path(exe, sizeof exe)) CT_SKIP("build/ctape is not built");
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    const char *dir = ct_test_tmpdir();
    char whole[1100], cut[1100], data[1100];
    snprintf(whole, sizeof whole, "%s/whole", dir), snprintf(cut, sizeof cut, "%s/cut", dir);
    snprintf(data, sizeof data, "mnist:%s/mnist:subset=4000", shared);
    const char *common = "--model mlp:hidden=[128,64] --epochs 3 --batch 50 --threads 1 --quiet --log-every 1 --sched cosine";
    snprintf(args, sizeof args, "train --data '%s' %s --out '%s'", data, common, whole);
    CHECK(ctape(args, out, sizeof out) == 0, "the uninterrupted run:\n%s", out);
    char log[1200];
    snprintf(log, sizeof log, "%s/log.csv", cut);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(126);
        execl(exe, exe, "train", "--data", data, "--model", "mlp:hidden=[128,64]", "--epochs", "3", "--batch", "50",
              "--threads", "1", "--quiet", "--log-every", "1", "--sched", "cosine", "--out", cut, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (int k = 0; k < 20000 && count_lines(log) < 100; k++) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        usleep(1000);
    }
    kill(pid, SIGINT);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) CT_SKIP("the run finished before Ctrl-C arrived");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 130, "ctape train after Ctrl-C: status %d", status);
    snprintf(args, sizeof args, "resume '%s'", cut);
    CHECK(ctape(args, out, sizeof out) == 0, "resume:\n%s", out);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/model.safetensors", whole), snprintf(b, sizeof b, "%s/model.safetensors", cut);
    CHECK(same_file(a, b), "the resumed run's weights differ from the uninterrupted run's");
    snprintf(a, sizeof a, "%s/log.csv", whole);
    CHECK(count_lines(a) == count_lines(log), "logs of %ld and %ld lines", count_lines(a), count_lines(log));
}
