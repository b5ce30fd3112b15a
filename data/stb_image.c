/* data/stb_image.c — stb_image (Debian's libstb-dev header) compiled into the library, private to
 * data/ (data/internal.h), so the sanitizer and fuzzing builds instrument the decoders too and only
 * the formats the image folders read are compiled in: PNG, JPEG, BMP, TGA, GIF, PNM. stb's zlib
 * inflate serves the gzip reader. */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_NO_PSD
#define STBI_NO_HDR
#define STBI_NO_PIC
#define STBI_NO_LINEAR
#define STBI_MALLOC malloc
#define STBI_REALLOC realloc
#define STBI_FREE free
/* The header's own code: its unused static declarations and its style are not ours to change
 * (the flow warnings come from its code inlined into the wrappers below, so they stay off here). */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#endif
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <stb/stb_image.h>

int ct_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *produced) {
    CT_CHECK(cap <= INT_MAX, "ct_inflate_raw", "output capacity %zu is more than stb's int counts", cap);
    *produced = 0;
    /* deflate data ends on its own: a longer input is only read as far as the stream goes */
    int n = stbi_zlib_decode_noheader_buffer((char *)out, (int)cap, (const char *)in,
                                             in_len > INT_MAX ? INT_MAX : (int)in_len);
    if (n >= 0) {
        *produced = (size_t)n;
        return CT_INFLATE_OK;
    }
    const char *why = stbi_failure_reason();
    return why && !strcmp(why, "output buffer limit") ? CT_INFLATE_FULL : CT_INFLATE_CORRUPT;
}

int ct_image_info(const uint8_t *buf, size_t len, int *width, int *height, int *channels) {
    if (len > INT_MAX) return 0;
    return stbi_info_from_memory(buf, (int)len, width, height, channels);
}

uint8_t *ct_image_decode(const uint8_t *buf, size_t len, int channels, int *width, int *height) {
    if (len > INT_MAX) {
        stbi__err("file too large", "file too large");
        return NULL;
    }
    int in_channels = 0;
    /* 16-bit PNM: stb 2.27 converts the channels as if the samples were bytes, then reduces twice
     * as many samples to 8 bits as its buffer holds (a heap overflow), and reads the big-endian
     * samples in the machine's order. So: the samples as stored, in their own channels; the
     * high byte of each (the first); the channels converted after. */
    if (len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6') && stbi_is_16_bit_from_memory(buf, (int)len)) {
        stbi__uint16 *samples = stbi_load_16_from_memory(buf, (int)len, width, height, &in_channels, 0);
        if (!samples) return NULL;
        const size_t n = (size_t)*width * (size_t)*height * (size_t)in_channels;
        uint8_t *bytes = malloc(n ? n : 1);
        for (size_t i = 0; bytes && i < n; i++) bytes[i] = *(const uint8_t *)&samples[i];
        free(samples);
        if (!bytes) {
            stbi__err("outofmem", "Out of memory");
            return NULL;
        }
        return in_channels == channels
                   ? bytes
                   : stbi__convert_format(bytes, in_channels, channels, (unsigned)*width, (unsigned)*height);
    }
    return stbi_load_from_memory(buf, (int)len, width, height, &in_channels, channels);
}

const char *ct_image_failure(void) {
    const char *why = stbi_failure_reason();
    return why ? why : "unknown error";
}
