/* tests/data/test_get_data.c — scripts/get-data's download path against a local HTTP server.
 *
 * Each test starts `python3 -m http.server` on a free port of 127.0.0.1, serving a directory
 * it fills with a fake MNIST (tiny IDX .gz files) and a fake CIFAR-10 archive whose SHA-256
 * it computes itself and hands to the script with --checksums. good/ holds the files as
 * listed, bad/ the same with one file corrupted. The server is stopped at the end of each
 * test whatever happens: the checks live in a body function that CHECK returns from, and the
 * test function stops the server after it. Fashion-MNIST, which comes from Debian's package
 * rather than a download, is checked when the package is installed.
 *
 * The script is found as scripts/get-data from the working directory (make test runs the
 * suite from the repository root); the tests skip with a message without it, bash, python3,
 * sha256sum, gzip or tar. */
#include "../test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GET_DATA_SCRIPT "scripts/get-data"

static const char *const idx_names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
enum { TRAIN_N = 12, TEST_N = 6, IMAGE_H = 5, IMAGE_W = 4, CIFAR_RECORDS = 2, CIFAR_RECORD = 3073 };

/* ---- small helpers ------------------------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int have_command(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(data, 1, len, f);
    return fclose(f) == 0 && put == len;
}

/* The whole file into buf (NUL-terminated, cut at len - 1 bytes); the byte count or -1. */
static long read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t got = fread(buf, 1, len - 1, f);
    buf[got] = 0;
    fclose(f);
    return (long)got;
}

static int run_shell(const char *fmt, const char *a, const char *b) {
    char cmd[2600];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd) == 0;
}

/* sha256sum's hex digest of path into hex[65]; 0 on failure. */
static int sha256_of(const char *path, char hex[65]) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    int ok = fscanf(p, "%64s", hex) == 1;
    return pclose(p) == 0 && ok && strlen(hex) == 64;
}

static int count_occurrences(const char *text, const char *word) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, word)); p += strlen(word)) n++;
    return n;
}

/* The names in dir (without . and ..), space-separated in names; their count, -1 when dir
 * cannot be read. */
static int list_dir(const char *dir, char *names, size_t len) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    size_t used = 0;
    names[0] = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        int k = snprintf(names + used, len - used, "%s%s", used ? " " : "", e->d_name);
        if (k > 0 && used + (size_t)k < len) used += (size_t)k;
    }
    closedir(d);
    return n;
}

/* A name in dir that starts with '.' (the script's temporary files and directories), or NULL. */
static const char *leftover_temporary(const char *dir) {
    static char found[256];
    DIR *d = opendir(dir);
    if (!d) return NULL;
    const char *result = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(found, sizeof found, "%s", e->d_name);
            result = found;
            break;
        }
    }
    closedir(d);
    return result;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- the HTTP server ---------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char log[700];
} http_server;

/* A port of 127.0.0.1 that was free a moment ago (the kernel's choice for port 0). */
static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int port_answers(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

/* Kills the server's process group (python3 may be a wrapper script) and reaps it. */
static void server_stop(http_server *s) {
    if (s->pid <= 0) return;
    kill(-s->pid, SIGTERM);
    kill(s->pid, SIGTERM);
    int status;
    for (int i = 0; i < 100 && waitpid(s->pid, &status, WNOHANG) == 0; i++) {
        if (i == 40) kill(-s->pid, SIGKILL), kill(s->pid, SIGKILL);
        usleep(20000);
    }
    s->pid = 0;
}

/* Starts `python3 -m http.server` serving dir on a free port, its requests logged to log;
 * tries other ports when one turns out taken. 1 once the server answers. */
static int server_start(http_server *s, const char *dir, const char *log) {
    snprintf(s->log, sizeof s->log, "%s", log);
    s->pid = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (s->port <= 0) continue;
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        char *argv[] = {"python3", "-u", "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", (char *)dir, NULL};
        int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log_fd < 0) return 0;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            setpgid(0, 0);
            int null_fd = open("/dev/null", O_RDONLY);
            if (null_fd >= 0) dup2(null_fd, 0);
            dup2(log_fd, 1);
            dup2(log_fd, 2);
            execvp("python3", argv);
            _exit(127);
        }
        close(log_fd);
        if (pid < 0) return 0;
        setpgid(pid, pid); /* also from here, so that server_stop never races the child's call */
        s->pid = pid;
        /* Ours once it has said so in its log (another program may have taken the port
         * meanwhile: then python3 stops with "Address already in use") and answers. */
        char banner[64], text[4096];
        snprintf(banner, sizeof banner, "Serving HTTP on 127.0.0.1 port %d", s->port);
        int status;
        for (int i = 0; i < 300; i++) { /* up to 15 s on a busy machine */
            if (read_file(log, text, sizeof text) > 0 && strstr(text, banner) && port_answers(s->port)) return 1;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                s->pid = 0; /* it stopped: most likely the port was taken meanwhile */
                break;
            }
            usleep(50000);
        }
        server_stop(s);
    }
    return 0;
}

/* ---- the fake datasets -------------------------------------------------------------------- */

typedef struct {
    char root[512];          /* this test's temporary directory */
    char served[600];        /* served by the HTTP server: good/ and bad/ */
    char sums[600];          /* the --checksums file */
    char fake_cifar_top[700]; /* the fake cifar-10-batches-bin/ the archives were made from */
    char bad_images_sha[65]; /* sha256 of bad/train-images-idx3-ubyte.gz */
    http_server server;
} fixture;

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint8_t fake_pixel(int i, int j) { return (uint8_t)((i * 37 + j * 11 + 5) & 255); }
static int fake_label(int i) { return (i * 7 + 3) % 10; }

/* <dir>/<prefix>-images-idx3-ubyte.gz and -labels-idx1-ubyte.gz holding n fake images. */
static int write_fake_idx(const char *dir, const char *prefix, int n) {
    uint8_t images[16 + TRAIN_N * IMAGE_H * IMAGE_W], labels[8 + TRAIN_N];
    put_be32(images, 0x803), put_be32(images + 4, (uint32_t)n);
    put_be32(images + 8, IMAGE_H), put_be32(images + 12, IMAGE_W);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < IMAGE_H * IMAGE_W; j++) images[16 + i * IMAGE_H * IMAGE_W + j] = fake_pixel(i, j);
    put_be32(labels, 0x801), put_be32(labels + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) labels[8 + i] = (uint8_t)fake_label(i);
    char path[900];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    int ok = write_file(path, images, 16 + (size_t)n * IMAGE_H * IMAGE_W);
    ok = ok && run_shell("gzip -n -f '%s'%s", path, "");
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    ok = ok && write_file(path, labels, 8 + (size_t)n);
    ok = ok && run_shell("gzip -n -f '%s'%s", path, "");
    return ok;
}

/* A fake cifar-10-batches-bin/ (CIFAR_RECORDS records per batch) under dir. */
static int write_fake_cifar(const char *top) {
    if (mkdir(top, 0755) != 0) return 0;
    const char *batches[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    static uint8_t records[CIFAR_RECORDS * CIFAR_RECORD];
    char path[900];
    for (int b = 0; b < 6; b++) {
        for (int r = 0; r < CIFAR_RECORDS; r++) {
            records[r * CIFAR_RECORD] = (uint8_t)((b + r) % 10);
            for (int j = 1; j < CIFAR_RECORD; j++) records[r * CIFAR_RECORD + j] = (uint8_t)(b * 13 + r * 7 + j);
        }
        snprintf(path, sizeof path, "%s/%s", top, batches[b]);
        if (!write_file(path, records, sizeof records)) return 0;
    }
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    snprintf(path, sizeof path, "%s/batches.meta.txt", top);
    return write_file(path, names, strlen(names));
}

/* Appends "<sha256>  <key>" for path to the checksum file. */
static int add_checksum(const fixture *f, const char *path, const char *key) {
    char hex[65];
    if (!sha256_of(path, hex)) return 0;
    FILE *out = fopen(f->sums, "a");
    if (!out) return 0;
    fprintf(out, "%s  %s\n", hex, key);
    return fclose(out) == 0;
}

/* Flips one byte in the middle of path. */
static int corrupt(const char *path) {
    FILE *fp = fopen(path, "r+b");
    if (!fp) return 0;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, size / 2, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, size / 2, SEEK_SET);
    fputc(c ^ 0x5a, fp);
    return fclose(fp) == 0 && size > 0;
}

static int build_served_files(fixture *f) {
    char good[700], bad[700], path[900], key[128];
    snprintf(good, sizeof good, "%s/good", f->served);
    snprintf(bad, sizeof bad, "%s/bad", f->served);
    if (mkdir(f->served, 0755) || mkdir(good, 0755)) return 0;
    if (!write_fake_idx(good, "train", TRAIN_N) || !write_fake_idx(good, "t10k", TEST_N)) return 0;
    snprintf(f->fake_cifar_top, sizeof f->fake_cifar_top, "%s/cifar-10-batches-bin", f->root);
    if (!write_fake_cifar(f->fake_cifar_top)) return 0;
    if (!run_shell("tar -czf '%s/cifar-10-binary.tar.gz' -C '%s' cifar-10-batches-bin", good, f->root)) return 0;
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", good, idx_names[i]);
        snprintf(key, sizeof key, "mnist/%s", idx_names[i]);
        if (!add_checksum(f, path, key)) return 0;
    }
    snprintf(path, sizeof path, "%s/cifar-10-binary.tar.gz", good);
    if (!add_checksum(f, path, "cifar10/cifar-10-binary.tar.gz")) return 0;
    /* bad/: the same files with the training images and the archive corrupted. */
    if (!run_shell("cp -R '%s' '%s'", good, bad)) return 0;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", bad);
    if (!corrupt(path) || !sha256_of(path, f->bad_images_sha)) return 0;
    snprintf(path, sizeof path, "%s/cifar-10-binary.tar.gz", bad);
    return corrupt(path);
}

/* Everything a test needs; 0 after recording a skip or failure (the caller just returns). */
static int fixture_open(fixture *f, int with_server) {
    memset(f, 0, sizeof *f);
    if (access(GET_DATA_SCRIPT, R_OK) != 0) {
        ct_test_skip("%s not found from the working directory: run the tests from the repository root", GET_DATA_SCRIPT);
        return 0;
    }
    const char *tools[] = {"bash", "python3", "sha256sum", "gzip", "tar"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (!have_command(tools[i])) {
            ct_test_skip("no %s on this machine: the download tests need bash, python3 (the server and a fetch tool), sha256sum, gzip and tar",
                         tools[i]);
            return 0;
        }
    snprintf(f->root, sizeof f->root, "%s", ct_test_tmpdir());
    snprintf(f->served, sizeof f->served, "%s/served", f->root);
    snprintf(f->sums, sizeof f->sums, "%s/checksums", f->root);
    if (!build_served_files(f)) {
        ct_test_fail(__FILE__, __LINE__, "could not build the fake datasets under %s", f->root);
        return 0;
    }
    if (!with_server) return 1;
    char log[700];
    snprintf(log, sizeof log, "%s/server.log", f->root);
    if (!server_start(&f->server, f->served, log)) {
        char text[2048] = "";
        read_file(log, text, sizeof text);
        ct_test_fail(__FILE__, __LINE__, "python3 -m http.server did not start on 127.0.0.1; its output: %s", text);
        return 0;
    }
    return 1;
}

static void fixture_close(fixture *f) { server_stop(&f->server); }

/* Runs scripts/get-data with the fixture's checksums and `args`; its output (stdout and
 * stderr) into out, its exit status returned (-1 when it did not exit normally). */
static int run_get_data(const fixture *f, const char *args, char *out, size_t len, double *seconds) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "env no_proxy=127.0.0.1 NO_PROXY=127.0.0.1 bash %s --checksums '%s' %s 2>&1",
             GET_DATA_SCRIPT, f->sums, args);
    double start = now_seconds();
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, len - 1, p);
    out[used] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    if (seconds) *seconds = now_seconds() - start;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int server_gets(const fixture *f) {
    static char log[1 << 16];
    return read_file(f->server.log, log, sizeof log) < 0 ? -1 : count_occurrences(log, "\"GET ");
}

/* The fake MNIST in dir loads with ct_idx_load and holds exactly what was served. */
static int fake_mnist_loads(const char *dir, char *why, size_t len) {
    const char *splits[2] = {"train", "t10k"};
    const int counts[2] = {TRAIN_N, TEST_N};
    for (int s = 0; s < 2; s++) {
        ct_dataset *d = ct_idx_load(dir, splits[s]);
        if (!d) {
            snprintf(why, len, "ct_idx_load(%s, %s): %s", dir, splits[s], ct_last_error());
            return 0;
        }
        int ok = d->n == counts[s] && d->height == IMAGE_H && d->width == IMAGE_W && d->channels == 1;
        for (int i = 0; ok && i < d->n; i++) {
            ok = d->labels[i] == fake_label(i);
            for (int j = 0; ok && j < IMAGE_H * IMAGE_W; j++) ok = d->images[i * IMAGE_H * IMAGE_W + j] == fake_pixel(i, j);
        }
        ct_dataset_free(d);
        if (!ok) {
            snprintf(why, len, "%s/%s: not the images and labels that were served", dir, splits[s]);
            return 0;
        }
    }
    return 1;
}

static void mnist_args(const fixture *f, const char *dest, const char *which, char *args, size_t len) {
    snprintf(args, len, "--dest '%s' --base-url mnist=http://127.0.0.1:%d/%s/ mnist", dest, f->server.port, which);
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* A good file is fetched, verified, placed, and loads with ct_idx_load. */
static void fetch_verify_load(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], names[1024], why[1200];
    double seconds;
    snprintf(dest, sizeof dest, "%s/data", f->root);
    mnist_args(f, dest, "good", args, sizeof args);
    int status = run_get_data(f, args, out, sizeof out, &seconds);
    CHECK(status == 0, "get-data exited with %d:\n%s", status, out);
    snprintf(dir, sizeof dir, "%s/mnist", dest);
    CHECK(list_dir(dir, names, sizeof names) == 4, "%s holds \"%s\", want the four .gz files", dir, names);
    for (int i = 0; i < 4; i++) {
        char path[1000];
        snprintf(path, sizeof path, "%s/%s", dir, idx_names[i]);
        CHECK(is_file(path), "%s missing after the download:\n%s", path, out);
        CHECK(strstr(out, idx_names[i]) && strstr(out, "verified"), "the output should report %s verified:\n%s", idx_names[i], out);
    }
    CHECK(server_gets(f) == 4, "the server saw %d GET requests, want 4", server_gets(f));
    CHECK(fake_mnist_loads(dir, why, sizeof why), "%s", why);
    const char *tool = strstr(out, "downloads with ");
    char tool_name[16] = "?";
    if (tool) sscanf(tool + strlen("downloads with "), "%15s", tool_name);
    ct_test_note("4 files fetched with %s, verified and loaded in %.2f s", tool_name, seconds);
}

CT_TEST(data, get_data_fetches_verifies_and_loads) {
    fixture f;
    if (!fixture_open(&f, 1)) return;
    fetch_verify_load(&f);
    fixture_close(&f);
}

/* A corrupted file (checksum mismatch) is rejected, removed, and reported; exit non-zero. */
static void corrupted_rejected(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], names[1024], path[1000], expected[65];
    snprintf(dest, sizeof dest, "%s/data", f->root);
    mnist_args(f, dest, "bad", args, sizeof args);
    int status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status != 0 && status != -1, "get-data exited with %d after a corrupted download:\n%s", status, out);
    snprintf(dir, sizeof dir, "%s/mnist", dest);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    CHECK(!exists(path), "the corrupted %s was kept", path);
    const char *temporary = leftover_temporary(dir);
    CHECK(!temporary, "temporary file %s left in %s", temporary, dir);
    /* The three good files are in place, nothing else. */
    CHECK(list_dir(dir, names, sizeof names) == 3, "%s holds \"%s\", want the three good files", dir, names);
    snprintf(path, sizeof path, "%s/good/train-images-idx3-ubyte.gz", f->served);
    CHECK(sha256_of(path, expected));
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/bad/train-images-idx3-ubyte.gz", f->server.port);
    CHECK(strstr(out, "CHECKSUM MISMATCH") && strstr(out, url), "the report should name the mismatch and %s:\n%s", url, out);
    CHECK(strstr(out, expected) && strstr(out, f->bad_images_sha), "the report should give expected %s and actual %s:\n%s",
          expected, f->bad_images_sha, out);
}

/* A corrupted file from the first address, a good one from the next: the good one is used,
 * and the run still ends non-zero so that the failure is seen. */
static void fallback_after_mismatch(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], why[1200];
    snprintf(dest, sizeof dest, "%s/fallback-data", f->root);
    snprintf(args, sizeof args, "--dest '%s' --base-url mnist=http://127.0.0.1:%d/bad --base-url mnist=http://127.0.0.1:%d/good mnist",
             dest, f->server.port, f->server.port);
    int status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status != 0 && status != -1, "get-data exited with %d after a corrupted download:\n%s", status, out);
    CHECK(count_occurrences(out, "CHECKSUM MISMATCH") == 1, "one mismatch reported:\n%s", out);
    snprintf(dir, sizeof dir, "%s/mnist", dest);
    CHECK(fake_mnist_loads(dir, why, sizeof why), "%s", why);
}

CT_TEST(data, get_data_rejects_and_removes_corrupted_download) {
    fixture f;
    if (!fixture_open(&f, 1)) return;
    corrupted_rejected(&f);
    if (!ct_test_stopped()) fallback_after_mismatch(&f);
    fixture_close(&f);
}

/* An unreachable server: one message naming every file and the directory; exit non-zero. */
static void unreachable(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], want[1000];
    double seconds;
    int port = free_port(); /* nothing listens there: connections are refused */
    CHECK(port > 0);
    snprintf(dest, sizeof dest, "%s/data", f->root);
    snprintf(args, sizeof args, "--timeout 5 --dest '%s' --base-url mnist=http://127.0.0.1:%d/ mnist", dest, port);
    int status = run_get_data(f, args, out, sizeof out, &seconds);
    CHECK(status != 0 && status != -1, "get-data exited with %d without a server:\n%s", status, out);
    snprintf(dir, sizeof dir, "%s/mnist", dest);
    snprintf(want, sizeof want, "put them in %s/", dir);
    CHECK(strstr(out, want), "the message should say \"%s\":\n%s", want, out);
    for (int i = 0; i < 4; i++) CHECK(strstr(out, idx_names[i]), "the message should name %s:\n%s", idx_names[i], out);
    CHECK(count_occurrences(out, "NOT COMPLETE") == 1, "one message for the dataset:\n%s", out);
    CHECK(count_occurrences(out, "fetching ") == 1, "the refused server should be tried once, not once per file:\n%s", out);
    const char *temporary = leftover_temporary(dir);
    CHECK(!temporary, "temporary file %s left in %s", temporary, dir);
    ct_test_note("failed in %.2f s with the files and the directory named", seconds);
}

CT_TEST(data, get_data_unreachable_server_says_where_to_put_files) {
    fixture f;
    if (!fixture_open(&f, 0)) return;
    unreachable(&f);
}

/* A second run finds the verified files in place and fetches nothing. */
static void rerun(fixture *f) {
    char dest[700], args[1600], out[16384], path[1000];
    snprintf(dest, sizeof dest, "%s/data", f->root);
    mnist_args(f, dest, "good", args, sizeof args);
    int status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0, "first run exited with %d:\n%s", status, out);
    int gets = server_gets(f);
    snprintf(path, sizeof path, "%s/mnist/train-images-idx3-ubyte.gz", dest);
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0, "second run exited with %d:\n%s", status, out);
    CHECK(server_gets(f) == gets, "the second run made %d requests", server_gets(f) - gets);
    CHECK(count_occurrences(out, "already in place") == 4, "each file should be reported in place:\n%s", out);
    CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino, "%s was replaced", path);
    /* With the server unreachable too: nothing to fetch, so success. */
    int port = free_port();
    snprintf(args, sizeof args, "--dest '%s' --base-url mnist=http://127.0.0.1:%d/ mnist", dest, port);
    status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0, "a run with everything in place needs no network; exited with %d:\n%s", status, out);
    CHECK(!strstr(out, "fetching"), "nothing should be fetched:\n%s", out);
}

CT_TEST(data, get_data_rerun_does_not_refetch) {
    fixture f;
    if (!fixture_open(&f, 1)) return;
    rerun(&f);
    fixture_close(&f);
}

/* An archive is unpacked only after its check, into place in one rename; a corrupted one is
 * removed and never unpacked. */
static void archive(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], path[1000], names[1024];
    static char served[CIFAR_RECORDS * CIFAR_RECORD + 1], placed[CIFAR_RECORDS * CIFAR_RECORD + 1];
    snprintf(dest, sizeof dest, "%s/good-data", f->root);
    snprintf(args, sizeof args, "--dest '%s' --base-url cifar10=http://127.0.0.1:%d/good/ cifar10", dest, f->server.port);
    int status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0, "get-data exited with %d:\n%s", status, out);
    snprintf(dir, sizeof dir, "%s/cifar10", dest);
    CHECK(list_dir(dir, names, sizeof names) == 1 && !strcmp(names, "cifar-10-batches-bin"),
          "%s holds \"%s\", want only cifar-10-batches-bin (archive removed, no temporaries)", dir, names);
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    CHECK(list_dir(path, names, sizeof names) == 7, "%s holds \"%s\", want the 7 files of the archive", path, names);
    snprintf(path, sizeof path, "%s/data_batch_3.bin", f->fake_cifar_top);
    long n_served = read_file(path, served, sizeof served);
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_3.bin", dir);
    long n_placed = read_file(path, placed, sizeof placed);
    CHECK(n_served == CIFAR_RECORDS * CIFAR_RECORD && n_placed == n_served && !memcmp(served, placed, (size_t)n_served),
          "%s differs from the file in the archive", path);
    int gets = server_gets(f);
    status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0 && server_gets(f) == gets && strstr(out, "already in place"),
          "a second run should find cifar10 in place without a request (exit %d):\n%s", status, out);

    snprintf(dest, sizeof dest, "%s/bad-data", f->root);
    snprintf(args, sizeof args, "--dest '%s' --base-url cifar10=http://127.0.0.1:%d/bad/ cifar10", dest, f->server.port);
    status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status != 0 && status != -1, "get-data exited with %d after a corrupted archive:\n%s", status, out);
    CHECK(strstr(out, "CHECKSUM MISMATCH"), "the mismatch should be reported:\n%s", out);
    snprintf(dir, sizeof dir, "%s/cifar10", dest);
    CHECK(list_dir(dir, names, sizeof names) == 0, "%s holds \"%s\": a corrupted archive leaves nothing", dir, names);
}

CT_TEST(data, get_data_archive_checked_before_unpacking) {
    fixture f;
    if (!fixture_open(&f, 1)) return;
    archive(&f);
    fixture_close(&f);
}

/* Every installed fetch tool (curl, wget, python3 urllib) gives the same verified files. */
static void every_tool(fixture *f) {
    const char *tools[] = {"curl", "wget", "python3"};
    char tested[64] = "", dest[700], dir[800], args[1600], out[16384], why[1200];
    for (int t = 0; t < 3; t++) {
        if (!have_command(tools[t])) continue;
        snprintf(dest, sizeof dest, "%s/data-%s", f->root, tools[t]);
        mnist_args(f, dest, "good", args, sizeof args);
        size_t used = strlen(args);
        snprintf(args + used, sizeof args - used, " --fetcher %s", tools[t]);
        int status = run_get_data(f, args, out, sizeof out, NULL);
        CHECK(status == 0, "with %s get-data exited with %d:\n%s", tools[t], status, out);
        char used_line[64];
        snprintf(used_line, sizeof used_line, "downloads with %s ", tools[t]);
        CHECK(strstr(out, used_line), "--fetcher %s was not used:\n%s", tools[t], out);
        snprintf(dir, sizeof dir, "%s/mnist", dest);
        CHECK(fake_mnist_loads(dir, why, sizeof why), "with %s: %s", tools[t], why);
        /* and each rejects the corrupted file */
        snprintf(dest, sizeof dest, "%s/bad-%s", f->root, tools[t]);
        mnist_args(f, dest, "bad", args, sizeof args);
        used = strlen(args);
        snprintf(args + used, sizeof args - used, " --fetcher %s", tools[t]);
        status = run_get_data(f, args, out, sizeof out, NULL);
        snprintf(dir, sizeof dir, "%s/mnist/train-images-idx3-ubyte.gz", dest);
        CHECK(status != 0 && !exists(dir) && strstr(out, "CHECKSUM MISMATCH"),
              "with %s the corrupted file should be rejected (exit %d):\n%s", tools[t], status, out);
        used = strlen(tested);
        snprintf(tested + used, sizeof tested - used, "%s%s", used ? ", " : "", tools[t]);
    }
    ct_test_note("tested: %s", tested);
}

CT_TEST(data, get_data_every_fetch_tool) {
    fixture f;
    if (!fixture_open(&f, 1)) return;
    every_tool(&f);
    fixture_close(&f);
}

/* Fashion-MNIST comes from Debian's package: linked into place, and it loads. */
static void fashion(fixture *f) {
    char dest[700], dir[800], args[1600], out[16384], path[1000], target[1024];
    snprintf(dest, sizeof dest, "%s/data", f->root);
    snprintf(args, sizeof args, "--dest '%s' fashion-mnist", dest);
    int status = run_get_data(f, args, out, sizeof out, NULL);
    CHECK(status == 0, "get-data exited with %d:\n%s", status, out);
    snprintf(dir, sizeof dir, "%s/fashion-mnist", dest);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, idx_names[i]);
        ssize_t n = readlink(path, target, sizeof target - 1);
        CHECK(n > 0, "%s should be a link to Debian's copy", path);
        target[n] = 0;
        CHECK(strstr(target, "/usr/share/datasets/fashion-mnist/") == target, "%s links to %s", path, target);
    }
    ct_dataset *d = ct_idx_load(dir, "t10k");
    CHECK(d != NULL, "%s", ct_last_error());
    int n = d->n, ok = d->height == 28 && d->width == 28 && d->classes == 10;
    ct_dataset_free(d);
    CHECK(n == 10000 && ok, "t10k: %d images, want 10000 of 28x28 in 10 classes", n);
}

CT_TEST(data, get_data_fashion_mnist_from_debian) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        CT_SKIP("dataset-fashion-mnist not installed (make demo-deps installs it)");
    fixture f;
    if (!fixture_open(&f, 0)) return;
    fashion(&f);
}
