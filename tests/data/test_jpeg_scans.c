/* tests/data/test_jpeg_scans.c — the walk of a JPEG's entropy-coded data (data/image_check.c) on
 * real files: tests/data/jpeg/baseline.jpg (45×37 RGB, 4:2:0, written by PIL from a CIFAR-10
 * image), progressive.jpg (the same coefficients in libjpeg's ten progressive scans: DC first and
 * refinement, AC first and refinement, by `jpegtran -progressive`) and progressive-restart.jpg
 * (the same with a restart marker every two MCUs, `jpegtran -progressive -restart 2B`). Valid
 * files must load with the pixels they had before the walk; the same files cut inside a scan
 * (an end-of-image marker appended) must be refused naming the scan. Before the walk stb 2.27
 * decoded a cut scan with made-up zero bits, or with undefined behaviour when its fast-AC path
 * took more bits than were left. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static int read_test_jpeg(const char *name, uint8_t **bytes, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/jpeg/%s", ct_test_repository(), name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    *bytes = malloc(1 << 16);
    *len = *bytes ? fread(*bytes, 1, 1 << 16, f) : 0;
    fclose(f);
    return *len > 0;
}

/* Writes bytes as <a new temporary folder>/<tag>/c/x.jpg and loads the folder (NULL: refused,
 * ct_last_error says why). */
static ct_dataset *load_one_jpeg(const char *tag, const uint8_t *bytes, size_t len, char *file, size_t file_len) {
    char dir[1024], cmd[1400];
    snprintf(dir, sizeof dir, "%s/%s", ct_test_tmpdir(), tag);
    snprintf(file, file_len, "%s/c/x.jpg", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/c'", dir);
    if (system(cmd) != 0) return NULL;
    FILE *f = fopen(file, "wb");
    if (!f) return NULL;
    const int put = fwrite(bytes, 1, len, f) == len;
    if (fclose(f) != 0 || !put) return NULL;
    return ct_image_folder_load(dir, CT_IMAGE_FOLDER(.channels = 3));
}

/* The byte offsets of the SOS markers (scan headers) of a JPEG, at most `max`, and where each
 * scan's entropy-coded data ends. */
static int scan_offsets(const uint8_t *b, size_t len, size_t *at, size_t *end, int max) {
    int n = 0;
    for (size_t pos = 2; pos + 4 <= len && n < max;) {
        if (b[pos] != 0xff) return n;
        const int marker = b[pos + 1];
        if (marker == 0xd9) break;
        const size_t seg = 2 + ((size_t)b[pos + 2] << 8 | b[pos + 3]);
        if (marker != 0xda) {
            pos += seg;
            continue;
        }
        at[n++] = pos;
        pos += seg; /* the entropy-coded data: to the next marker that is not 0xFF00 or RSTn */
        while (pos + 1 < len && !(b[pos] == 0xff && b[pos + 1] != 0 && (b[pos + 1] < 0xd0 || b[pos + 1] > 0xd7))) pos++;
        end[n - 1] = pos;
    }
    return n;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The three files hold the same coefficients, so stb decodes them to the same pixels; the hash is
 * of the pixels (CHW) the loader gave for baseline.jpg before the walk was added. */
CT_TEST(data, jpeg_valid_baseline_and_progressive_load_unchanged) {
    static const char *const names[3] = {"baseline.jpg", "progressive.jpg", "progressive-restart.jpg"};
    const uint64_t before = 0x4ecf6ac4d1f7c338ull;
    uint8_t *first = NULL;
    for (int i = 0; i < 3; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (!read_test_jpeg(names[i], &bytes, &len)) {
            free(bytes), free(first);
            CT_SKIP("tests/data/jpeg/%s not found beside the test binary's repository", names[i]);
        }
        char tag[32], file[1100];
        snprintf(tag, sizeof tag, "valid-%d", i);
        ct_dataset *d = load_one_jpeg(tag, bytes, len, file, sizeof file);
        free(bytes);
        CHECK(d && d->n == 1 && d->height == 37 && d->width == 45 && d->channels == 3, "%s: %s", names[i],
              d ? "wrong size" : ct_last_error());
        const size_t n = (size_t)3 * 37 * 45;
        if (i == 0) {
            const uint64_t hash = fnv1a(d->images, n);
            first = malloc(n);
            memcpy(first, d->images, n);
            CHECK(hash == before, "baseline.jpg decodes to pixels of hash %#llx, before the walk %#llx",
                  (unsigned long long)hash, (unsigned long long)before);
        } else {
            CHECK(!memcmp(first, d->images, n), "%s decodes to other pixels than baseline.jpg", names[i]);
        }
        ct_dataset_free(d);
    }
    free(first);
}

/* Each file cut in the middle of each of its scans, with an end-of-image marker appended: refused,
 * the message naming the file and the scan's byte. */
static void cut_scans_refused(const char *name, int want_scans) {
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!read_test_jpeg(name, &bytes, &len)) {
        free(bytes);
        CT_SKIP("tests/data/jpeg/%s not found beside the test binary's repository", name);
    }
    size_t at[16], ends[16];
    const int scans = scan_offsets(bytes, len, at, ends, 16);
    CHECK(scans == want_scans, "%s: %d scans, want %d", name, scans, want_scans);
    uint8_t *cut = malloc(len + 2);
    for (int s = 0; s < scans; s++) {
        const size_t data = at[s] + 2 + ((size_t)bytes[at[s] + 2] << 8 | bytes[at[s] + 3]);
        const size_t end = ends[s];
        size_t keep = data + (end - data) / 2;
        if (keep > data && bytes[keep - 1] == 0xff) keep--; /* not inside a stuffed 0xFF00 */
        memcpy(cut, bytes, keep);
        cut[keep] = 0xff, cut[keep + 1] = 0xd9;
        char tag[64], file[1100], want[96];
        snprintf(tag, sizeof tag, "cut-%s-%d", name, s);
        ct_dataset *d = load_one_jpeg(tag, cut, keep + 2, file, sizeof file);
        ct_dataset_free(d);
        snprintf(want, sizeof want, "JPEG scan at byte %zu ", at[s]);
        CHECK(!d && strstr(ct_last_error(), file) && strstr(ct_last_error(), want),
              "%s cut at byte %zu of scan %d (data %zu..%zu): want an error naming the scan (\"%s\"), got %s", name, keep,
              s, data, end, want, d ? "a loaded image" : ct_last_error());
    }
    free(cut);
    free(bytes);
}

CT_TEST(data, jpeg_cut_baseline_scan_is_refused) { cut_scans_refused("baseline.jpg", 1); }

CT_TEST(data, jpeg_cut_progressive_scans_are_refused) {
    cut_scans_refused("progressive.jpg", 10);
    cut_scans_refused("progressive-restart.jpg", 10);
}
