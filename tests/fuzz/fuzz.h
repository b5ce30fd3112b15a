/* tests/fuzz/fuzz.h — what the libFuzzer harnesses share (`make fuzz`; one harness per reader,
 * fuzz_<reader>.c). The readers take paths, so each input is written to a scratch folder on
 * tmpfs (/dev/shm, else /tmp) made once per process and removed at exit. One thread: libFuzzer
 * runs one input at a time, and threads only add noise. */
#ifndef CTAPE_TESTS_FUZZ_FUZZ_H
#define CTAPE_TESTS_FUZZ_FUZZ_H

#include "../../ctape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[256];
static char fuzz_cleanup_cmd[300];

static inline void fuzz_remove_scratch(void) {
    if (fuzz_cleanup_cmd[0] && system(fuzz_cleanup_cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/* The scratch folder, made on first use. */
static inline const char *fuzz_scratch(void) {
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ctape-fuzz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        snprintf(fuzz_cleanup_cmd, sizeof fuzz_cleanup_cmd, "rm -rf '%s'", fuzz_dir);
        atexit(fuzz_remove_scratch);
    }
    return fuzz_dir;
}

/* <scratch>/<name> (a static buffer per call slot: up to four paths live at once). */
static inline const char *fuzz_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_scratch(), name);
    return buf[k];
}

/* Writes data to path; a failure here is the harness's, not the reader's: abort. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static inline void fuzz_mkdir(const char *path) {
    if (mkdir(path, 0700) != 0 && access(path, F_OK) != 0) {
        perror(path);
        abort();
    }
}

/* Splits an input in two: the first two bytes (little endian) are the length of part a (clamped
 * to what is there), then a, then b. */
static inline void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *a_len, const uint8_t **b,
                       size_t *b_len) {
    size_t n = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    size_t rest = size >= 2 ? size - 2 : 0;
    if (n > rest) n = rest;
    *a = data + (size >= 2 ? 2 : size), *a_len = n;
    *b = *a + n, *b_len = rest - n;
}

/* The model the checkpoint harnesses load into (and tests/fuzz/make_corpus.c saves from):
 * fc1 (3 -> 4, with bias), fc2 (4 -> 2, no bias), a buffer "stats" of 2 when with_buffer. */
static inline ct_model *fuzz_small_model(int with_buffer) {
    ct_model *m = ct_model_new();
    ct_linear_new(m, "fc1", 3, 4);
    ct_linear_new_nobias(m, "fc2", 4, 2);
    if (with_buffer) ct_model_add_buffer(m, "stats", CT_SHAPE(2));
    return m;
}

#define FUZZ_SINGLE_THREAD                                                                     \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {                                         \
        (void)argc, (void)argv;                                                                 \
        ct_set_threads(1);                                                                      \
        return 0;                                                                               \
    }

#endif
