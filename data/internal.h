/* data/internal.h — private to data/: the stb_image decoders this folder compiles in
 * (data/stb_image.c), whole-file reads, and the bounded gzip reader the IDX loader uses. */
#ifndef CTAPE_DATA_INTERNAL_H
#define CTAPE_DATA_INTERNAL_H

#ifndef CT_BUILDING_LIBRARY
#define CT_BUILDING_LIBRARY /* the call-site macros are for user code */
#endif
#include "data.h"

/* Inflates the raw deflate stream in[0..in_len) into out[0..cap). CT_INFLATE_OK: the stream
 * ended after *produced bytes. CT_INFLATE_FULL: it holds more than cap bytes (out then holds a
 * valid prefix of at least cap − 65535 bytes). CT_INFLATE_CORRUPT: not valid deflate data.
 * cap is at most INT_MAX (stb counts in int). */
enum { CT_INFLATE_OK, CT_INFLATE_FULL, CT_INFLATE_CORRUPT };
int ct_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *produced);

/* stb_image on a file held in memory: the size and channels its header declares (1, or 0 when
 * stb does not know the format), and the decoded pixels as `channels` interleaved bytes
 * (NULL on failure; ct_image_failure() then says why). Free the pixels with free(). */
int ct_image_info(const uint8_t *buf, size_t len, int *width, int *height, int *channels);
uint8_t *ct_image_decode(const uint8_t *buf, size_t len, int channels, int *width, int *height);
const char *ct_image_failure(void);

/* Checks an image file held in memory before stb decodes it (data/image_check.c): the content
 * is the format the extension names, its size is not zero and at most max_pixels, it is long
 * enough for its pixels where cheap to know, JPEG Huffman tables are valid and every scan's
 * entropy-coded data decodes to the end with them. 0 when it passes,
 * else 1 and *why is a malloc'd message naming the file (NULL when out of memory). */
int ct_image_check(const char *path, const uint8_t *buf, size_t len, int64_t max_pixels, char **why);

/* The whole of a regular file, at most `max` bytes (a larger file is an error naming it). */
int ct_read_whole_file(const char *path, uint64_t max, uint8_t **out, size_t *len);

/* Reads `path`, inflating it when it is gzip. For gzip, the first `head` bytes of the content
 * are inflated first and `declared` turns them into the content's total size (setting an error
 * naming the file when they are not a valid header); the rest is inflated into a buffer of
 * exactly that size, and a stream that holds more is refused without inflating it further.
 * Raw files come back whole (their size is checked by the caller). */
typedef int (*ct_declared_size_fn)(const char *path, const uint8_t *head, size_t head_len, uint64_t *total);
int ct_read_file_declared(const char *path, size_t head, ct_declared_size_fn declared, uint8_t **out,
                          size_t *len);

#endif
