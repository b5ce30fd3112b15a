/* tests/fuzz/make_corpus.c — writes the fuzzers' seed corpora (`make fuzz-corpus`): a few small
 * valid inputs per reader, in each harness's input layout, made by the library itself (and by
 * stb_image_write and the system gzip for the images and the .gz files).
 * Usage: fuzz_make_corpus <dir>   (writes <dir>/<reader>/<name>) */
#include "fuzz.h"

#include <stb/stb_image_write.h>

static const char *root;

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void seed(const char *reader, const char *name, const uint8_t *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, reader);
    fuzz_mkdir(path);
    snprintf(path, sizeof path, "%s/%s/%s", root, reader, name);
    fuzz_write(path, data, size);
}

/* fuzz_split's layout: a's length (2 bytes, little endian), a, b. */
static void seed_split(const char *reader, const char *name, const uint8_t *a, size_t a_len, const uint8_t *b,
                       size_t b_len) {
    uint8_t *buf = malloc(2 + a_len + b_len);
    buf[0] = (uint8_t)a_len, buf[1] = (uint8_t)(a_len >> 8);
    memcpy(buf + 2, a, a_len);
    memcpy(buf + 2 + a_len, b, b_len);
    seed(reader, name, buf, 2 + a_len + b_len);
    free(buf);
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (fread(buf, 1, *len, f) != *len) exit(1);
    fclose(f);
    return buf;
}

/* ---- IDX ---------------------------------------------------------------------------------- */

static void idx_pair(int n, int h, int w, uint8_t **labels, size_t *labels_len, uint8_t **images, size_t *images_len) {
    *labels_len = 8 + (size_t)n, *images_len = 16 + (size_t)n * h * w;
    *labels = malloc(*labels_len), *images = malloc(*images_len);
    put_be32(*labels, 0x801), put_be32(*labels + 4, (uint32_t)n);
    put_be32(*images, 0x803), put_be32(*images + 4, (uint32_t)n), put_be32(*images + 8, (uint32_t)h),
        put_be32(*images + 12, (uint32_t)w);
    for (int i = 0; i < n; i++) (*labels)[8 + i] = (uint8_t)(i * 3 % 10);
    for (size_t i = 16; i < *images_len; i++) (*images)[i] = (uint8_t)(i * 37 % 251);
}

/* A gzip member with one stored block and every optional header field. */
static uint8_t *gzip_stored(const uint8_t *data, size_t n, size_t *len) {
    uint8_t *g = malloc(64 + n), *p = g;
    const uint8_t header[] = {0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3, 2, 0, 'x', 'y'};
    memcpy(p, header, sizeof header), p += sizeof header;
    memcpy(p, "f\0c", 4), p += 4; /* FNAME "f", FCOMMENT "c" */
    uint32_t hcrc = ct_crc32(0, g, (size_t)(p - g));
    *p++ = (uint8_t)hcrc, *p++ = (uint8_t)(hcrc >> 8);
    *p++ = 1, *p++ = (uint8_t)n, *p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)~n, *p++ = (uint8_t)(~n >> 8);
    memcpy(p, data, n), p += n;
    uint32_t crc = ct_crc32(0, data, n);
    for (int i = 0; i < 4; i++) *p++ = (uint8_t)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) *p++ = (uint8_t)(n >> (8 * i));
    *len = (size_t)(p - g);
    return g;
}

/* The system gzip's deflate (NULL when there is none). */
static uint8_t *gzip_system(const uint8_t *data, size_t n, size_t *len) {
    char raw[600], gz[600], cmd[1400];
    snprintf(raw, sizeof raw, "%s/.raw", root), snprintf(gz, sizeof gz, "%s/.raw.gz", root);
    fuzz_write(raw, data, n);
    snprintf(cmd, sizeof cmd, "gzip -9 -n -c '%s' > '%s' 2>/dev/null", raw, gz);
    uint8_t *out = system(cmd) == 0 ? read_all(gz, len) : NULL;
    remove(raw), remove(gz);
    return out;
}

static void idx_seeds(void) {
    static const int shapes[3][3] = {{2, 3, 4}, {1, 1, 1}, {3, 5, 2}};
    for (int s = 0; s < 3; s++) {
        uint8_t *lab, *img;
        size_t ll, il;
        idx_pair(shapes[s][0], shapes[s][1], shapes[s][2], &lab, &ll, &img, &il);
        char name[32];
        snprintf(name, sizeof name, "pair-%d", s);
        seed_split("idx_raw", name, lab, ll, img, il);
        size_t gl;
        uint8_t *g = gzip_stored(img, il, &gl);
        snprintf(name, sizeof name, "stored-%d", s);
        seed_split("idx_gz", name, lab, ll, g, gl);
        free(g);
        if ((g = gzip_system(img, il, &gl))) {
            snprintf(name, sizeof name, "deflate-%d", s);
            seed_split("idx_gz", name, lab, ll, g, gl);
            free(g);
        }
        free(lab), free(img);
    }
}

/* ---- CIFAR -------------------------------------------------------------------------------- */

static void cifar_seeds(void) {
    const size_t pixels = 3072;
    for (int header = 1; header <= 2; header++) {
        const char *reader = header == 1 ? "cifar10" : "cifar100";
        const int classes = header == 1 ? 10 : 100;
        char names[2000] = "";
        for (int c = 0; c < classes; c++) snprintf(names + strlen(names), sizeof names - strlen(names), "class%d\n", c);
        for (int records = 1; records <= 2; records++) {
            size_t rec = pixels + (size_t)header, len = rec * (size_t)records;
            uint8_t *bin = malloc(len);
            for (size_t i = 0; i < len; i++) bin[i] = (uint8_t)(i * 7 % 253);
            for (int r = 0; r < records; r++) {
                bin[(size_t)r * rec] = (uint8_t)(r * 3 % (header == 1 ? 10 : 20));
                if (header == 2) bin[(size_t)r * rec + 1] = (uint8_t)(r * 41 % 100);
            }
            char name[32];
            snprintf(name, sizeof name, "records-%d", records);
            seed_split(reader, name, (const uint8_t *)names, records == 1 ? strlen(names) : 0, bin, len);
            free(bin);
        }
    }
}

/* ---- images ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t buf[8192];
    size_t len;
} membuf;

static void to_mem(void *ctx, void *data, int size) {
    membuf *m = ctx;
    if (m->len + (size_t)size <= sizeof m->buf) memcpy(m->buf + m->len, data, (size_t)size), m->len += (size_t)size;
}

/* The harness's option byte (extension index in fuzz_image.c's table, 3 channels, resize) and the file. */
static void image_seed(const char *name, int ext, int rgb, int resize, const uint8_t *file, size_t len) {
    uint8_t *buf = malloc(1 + len);
    buf[0] = (uint8_t)(ext | (rgb ? 16 : 0) | (resize ? 32 : 0));
    memcpy(buf + 1, file, len);
    seed("image", name, buf, 1 + len);
    free(buf);
}

static void image_seeds(void) {
    enum { PNG = 0, JPG = 1, BMP = 3, TGA = 4, GIF = 5, PPM = 7, PGM = 8 };
    const int w = 6, h = 4;
    uint8_t rgb[6 * 4 * 3], gray[6 * 4];
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(i * 29 % 256);
    for (int i = 0; i < w * h; i++) gray[i] = (uint8_t)(i * 11);
    membuf m;
    m.len = 0, stbi_write_png_to_func(to_mem, &m, w, h, 3, rgb, w * 3), image_seed("rgb.png", PNG, 1, 0, m.buf, m.len);
    m.len = 0, stbi_write_png_to_func(to_mem, &m, w, h, 1, gray, w), image_seed("gray.png", PNG, 0, 1, m.buf, m.len);
    m.len = 0, stbi_write_jpg_to_func(to_mem, &m, w, h, 3, rgb, 90), image_seed("rgb.jpg", JPG, 1, 0, m.buf, m.len);
    m.len = 0, stbi_write_jpg_to_func(to_mem, &m, w, h, 1, gray, 90), image_seed("gray.jpg", JPG, 0, 1, m.buf, m.len);
    m.len = 0, stbi_write_bmp_to_func(to_mem, &m, w, h, 3, rgb), image_seed("rgb.bmp", BMP, 1, 0, m.buf, m.len);
    stbi_write_tga_with_rle = 1;
    m.len = 0, stbi_write_tga_to_func(to_mem, &m, w, h, 3, rgb), image_seed("rle.tga", TGA, 1, 0, m.buf, m.len);
    stbi_write_tga_with_rle = 0;
    m.len = 0, stbi_write_tga_to_func(to_mem, &m, w, h, 1, gray), image_seed("raw.tga", TGA, 0, 1, m.buf, m.len);
    /* PNM, binary */
    char head[32];
    int k = snprintf(head, sizeof head, "P6\n# c\n%d %d\n255\n", w, h);
    memcpy(m.buf, head, (size_t)k), memcpy(m.buf + k, rgb, sizeof rgb), image_seed("rgb.ppm", PPM, 1, 0, m.buf, (size_t)k + sizeof rgb);
    k = snprintf(head, sizeof head, "P5 %d %d 255\n", w, h);
    memcpy(m.buf, head, (size_t)k), memcpy(m.buf + k, gray, sizeof gray), image_seed("gray.pgm", PGM, 0, 1, m.buf, (size_t)k + sizeof gray);
    /* GIF89a, 2×2, a 2-colour global table, one image of LZW data (min code size 2) */
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
                                  0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 3, 0x84, 0x1d, 0x05, 0, 0x3b};
    image_seed("2x2.gif", GIF, 1, 0, gif, sizeof gif);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static void file_seed(const char *reader, const char *name, const char *path) {
    size_t len;
    uint8_t *buf = read_all(path, &len);
    seed(reader, name, buf, len);
    free(buf);
    remove(path);
}

static void checkpoint_seeds(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/.tmp.safetensors", root);
    ct_model *m = fuzz_small_model(1);
    for (int i = 0; i < ct_model_param_count(m); i++) {
        ct_tensor *p = ct_model_param(m, i);
        for (size_t j = 0; j < p->size; j++) p->data[j] = (ct_real)(0.25 * (double)j - 0.5 * i);
    }
    if (ct_model_save(m, path) != CT_OK) exit(1);
    file_seed("model_load", "model", path);

    ct_model *m2 = fuzz_small_model(0);
    ct_optim *opt = ct_adam_new(m2, CT_ADAM(.lr = 1e-3));
    ct_plateau plateau = ct_plateau_new(1e-3, CT_PLATEAU());
    ct_plateau_attach(&plateau, opt);
    ct_optim_step(opt);
    ct_plateau_step(&plateau, 0.5);
    if (ct_optim_save(opt, path) != CT_OK) exit(1);
    file_seed("optim_load", "adam", path);
    ct_optim_free(opt);
    ct_model_free(m2);

    ct_model *m3 = fuzz_small_model(1);
    opt = ct_adam_new(m3, CT_ADAM(.lr = 1e-3));
    plateau = ct_plateau_new(1e-3, CT_PLATEAU());
    ct_plateau_attach(&plateau, opt);
    ct_optim_step(opt);
    if (ct_checkpoint_save(opt, path) != CT_OK) exit(1);
    file_seed("checkpoint_load", "adam", path);
    ct_optim_free(opt);
    ct_model_free(m3);

    ct_model *m4 = fuzz_small_model(0);
    ct_ema *ema = ct_ema_new(m4, CT_EMA(.decay = 0.9));
    ct_ema_update(ema);
    if (ct_ema_save(ema, path) != CT_OK) exit(1);
    file_seed("ema_load", "ema", path);
    ct_ema_free(ema);
    ct_model_free(m4);
    ct_model_free(m);
}

/* ---- loss specs: every registered loss by name, and its full description ------------------- */

static void loss_seeds(void) {
    for (int i = 0; i < ct_loss_count(); i++) {
        const char *name = ct_loss_name_at(i);
        char file[64], spec[4096];
        snprintf(file, sizeof file, "%s", name);
        seed("loss_spec", file, (const uint8_t *)name, strlen(name));
        ct_loss *l = ct_loss_parse(name);
        if (!l) continue;
        ct_loss_describe(l, spec, sizeof spec);
        snprintf(file, sizeof file, "%s-full", name);
        seed("loss_spec", file, (const uint8_t *)spec, strlen(spec));
        ct_loss_free(l);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    root = argv[1];
    fuzz_mkdir(root);
    ct_set_threads(1);
    idx_seeds();
    cifar_seeds();
    image_seeds();
    checkpoint_seeds();
    loss_seeds();
    return 0;
}
