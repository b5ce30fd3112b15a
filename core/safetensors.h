/* core/safetensors.h — named tensors in safetensors files (https://github.com/huggingface/safetensors),
 * the format PyTorch, NumPy and the reference implementation read and write. Model checkpoints
 * (nn/nn.h: ct_model_save), optimizer state and EMA averages (optim/optim.h) are written with it.
 *
 *     N (u64, little endian)   JSON header (N bytes)                           data (rest of the file)
 *                              {"__metadata__": {"format": "pt", ...},        tensors, contiguous,
 *                               "fc1.bias": {"dtype": "F32", "shape": [8],     row-major, little endian
 *                                            "data_offsets": [0, 32]}, ...}
 *
 * Every call that can fail returns CT_OK or a CT_ERR_* code, with ct_last_error() naming the
 * file (and the tensor or field when there is one); results come through out-parameters.
 * ct_safetensors_open is the one convenience that returns a handle (NULL on failure) instead.
 * Passing NULL, a closed file or a bad count is a programmer error (fatal, naming the function). */
#ifndef CTAPE_CORE_SAFETENSORS_H
#define CTAPE_CORE_SAFETENSORS_H

#include "core.h"

/* ---- writing ------------------------------------------------------------------------------
 * Writes n tensors as dtype F32 (F64 in the float64 build), header and data sorted by name (so
 * the file does not depend on the order tensors were made in), the header padded with spaces to
 * a multiple of 8 bytes (each tensor starts 8-byte aligned), as the reference implementation.
 * names[i] is the name of tensors[i]; names may be NULL to use each tensor's ->name. metadata is
 * NULL or "key", "value", ..., NULL (string pairs). Duplicate, empty or NULL names are programmer
 * errors (fatal). Values are written as they are, NaN and Inf included.
 *
 * The write is atomic: an unnamed file (O_TMPFILE) in the directory of `path`, fsync, then
 * linked to `path` (or to a temporary name renamed over it), then fsync of the directory. A
 * write killed half-way leaves no file behind and a previous file at `path` as it was. Where
 * O_TMPFILE is unsupported, or CTAPE_NO_TMPFILE=1 is in the environment, the data goes to
 * "<path>.tmp-<host>-<pid>-XXXXXX" from the start; each write then removes such files in its
 * directory whose writer (on this host) is gone. Files get mode 0666 less the umask.
 * CT_ERR_IO (with what failed and the system's reason; nothing changed) or CT_ERR_MEMORY. */
int ct_safetensors_write(const char *path, int n, const char *const names[], ct_tensor *const tensors[],
                         const char *const metadata[]);
/* CT_OK, or CT_ERR_VALUE naming `path`, the first tensor holding NaN or ±Inf and its first such
 * index (names may be NULL: each tensor's ->name). What the checkpoint saves check before writing. */
int ct_safetensors_check_finite(const char *path, int n, const char *const names[], ct_tensor *const tensors[]);

/* ---- reading ------------------------------------------------------------------------------
 * A file read and validated but not yet copied anywhere; nothing in it is trusted:
 *   - at least 8 bytes; the header length fits in the file and is at most 100 MB (the reference's
 *     limit); the header is UTF-8 and strict JSON of exactly the shape above (objects, arrays,
 *     strings with escapes, non-negative integers), or the message gives the byte offset in the
 *     header of what is wrong; no tensor name or metadata key appears twice;
 *   - each tensor has dtype, shape and data_offsets and nothing else; the dtype is one ctape reads
 *     (F32, F64, F16, BF16, I64, I32, all converted to ct_real on load); at most CT_MAX_DIMS dims,
 *     each below 2^31; elements × dtype size == end − begin; and, as the reference, the tensors
 *     tile the data exactly: no overlap, no hole, no byte after the last one.
 * Tensors are listed sorted by name. ct_safetensors_try_open returns CT_OK with *out the file,
 * or the error's code with *out NULL: CT_ERR_IO (cannot open or read), CT_ERR_FORMAT (malformed),
 * CT_ERR_MEMORY. ct_safetensors_open is the same returning the file or NULL. */
typedef struct ct_safetensors ct_safetensors;
int ct_safetensors_try_open(const char *path, ct_safetensors **out);
ct_safetensors *ct_safetensors_open(const char *path);
/* NULL does nothing; every ct_safetensors_* call on NULL or a closed file (a second close
 * included) is fatal with a message naming the function. */
void ct_safetensors_close(ct_safetensors *f);
int ct_safetensors_count(const ct_safetensors *f);
const char *ct_safetensors_name(const ct_safetensors *f, int i);
ct_shape ct_safetensors_shape(const ct_safetensors *f, int i);
const char *ct_safetensors_dtype(const ct_safetensors *f, int i);             /* "F32", ... */
const char *ct_safetensors_metadata(const ct_safetensors *f, const char *key); /* NULL when absent */
int ct_safetensors_metadata_count(const ct_safetensors *f);
const char *ct_safetensors_metadata_key(const ct_safetensors *f, int i);        /* sorted by key */
/* Strict load (PyTorch's load_state_dict(strict=True)): every name present with exactly the
 * tensor's shape and no other tensor in the file, else CT_ERR_VALUE naming the tensor; everything
 * is checked before the first tensor is written, so on any error nothing has changed. */
int ct_safetensors_load(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[]);
/* As ct_safetensors_load, and before anything is written every tensor's values, converted to
 * ct_real, are handed to check(name, i, x, n, ctx) (i indexes tensors[]), which returns CT_OK or
 * an error code with ct_last_error() set: the first error ends the load with nothing written. */
typedef int (*ct_values_check)(const char *name, int i, const ct_real *x, size_t n, void *ctx);
int ct_safetensors_load_checked(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[],
                                ct_values_check check, void *ctx);
/* The general form of both: check may be NULL, and `owner` names the destination in the
 * messages ("model": "... has shape (2, 3) in the file but (3, 2) in the model", "... is in the
 * file but not in the model"); the two above word them generically ("... is expected"). */
int ct_safetensors_load_into(const ct_safetensors *f, const char *owner, int n, const char *const names[],
                             ct_tensor *const tensors[], ct_values_check check, void *ctx);

/* ---- numbers in metadata ------------------------------------------------------------------
 * The same in every locale (a program that called setlocale(LC_ALL, "") in a decimal-comma
 * locale still writes and reads "0.002"): the "%.17g" text of x, exact (it parses back to the
 * same double), into buf, which is returned; and the parse of the whole of s (CT_OK,
 * CT_ERR_FORMAT when s is not one number, CT_ERR_MEMORY; no message set). */
const char *ct_safetensors_format_number(double x, char buf[32]);
int ct_safetensors_parse_number(const char *s, double *out);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_safetensors_write(...) CT_SITE_CALL_CLEARING(ct_safetensors_write, __VA_ARGS__)
#define ct_safetensors_check_finite(...) CT_SITE_CALL_CLEARING(ct_safetensors_check_finite, __VA_ARGS__)
#define ct_safetensors_try_open(...) CT_SITE_CALL_CLEARING(ct_safetensors_try_open, __VA_ARGS__)
#define ct_safetensors_open(...) CT_SITE_CALL_CLEARING(ct_safetensors_open, __VA_ARGS__)
#define ct_safetensors_close(...) CT_SITE_CALL_VOID(ct_safetensors_close, __VA_ARGS__)
#define ct_safetensors_count(...) CT_SITE_CALL(ct_safetensors_count, __VA_ARGS__)
#define ct_safetensors_name(...) CT_SITE_CALL(ct_safetensors_name, __VA_ARGS__)
#define ct_safetensors_shape(...) CT_SITE_CALL(ct_safetensors_shape, __VA_ARGS__)
#define ct_safetensors_dtype(...) CT_SITE_CALL(ct_safetensors_dtype, __VA_ARGS__)
#define ct_safetensors_metadata(...) CT_SITE_CALL(ct_safetensors_metadata, __VA_ARGS__)
#define ct_safetensors_metadata_count(...) CT_SITE_CALL(ct_safetensors_metadata_count, __VA_ARGS__)
#define ct_safetensors_metadata_key(...) CT_SITE_CALL(ct_safetensors_metadata_key, __VA_ARGS__)
#define ct_safetensors_load(...) CT_SITE_CALL_CLEARING(ct_safetensors_load, __VA_ARGS__)
#define ct_safetensors_load_checked(...) CT_SITE_CALL_CLEARING(ct_safetensors_load_checked, __VA_ARGS__)
#define ct_safetensors_load_into(...) CT_SITE_CALL_CLEARING(ct_safetensors_load_into, __VA_ARGS__)
#endif

#endif
