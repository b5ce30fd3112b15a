/* core/core.h — the ground floor of ctape: the real type, tensors and shapes, labels, the arena, the RNG,
 * errors and call sites, threads and BLAS, the progress line.
 *
 * Everything here is plain C11 with no dependency on the rest of ctape. */
#ifndef CTAPE_CORE_CORE_H
#define CTAPE_CORE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- precision ------------------------------------------------------------------------- */
/* Float32 by default; `make PRECISION=64` defines CT_PRECISION_64 for gradient checks. */
#ifdef CT_PRECISION_64
typedef double ct_real;
#define CT_REAL_NAME "float64"
#define CT_REAL_EPS 2.220446049250313e-16
#else
typedef float ct_real;
#define CT_REAL_NAME "float32"
#define CT_REAL_EPS 1.1920929e-07
#endif

/* A program compiled for one precision and linked with the library built for the other would
 * run on garbage (ct_real is float on one side, double on the other). Every file that includes
 * this header refers to the symbol of its precision and the library defines only its own, so the
 * mismatch stops at link time with "undefined reference to ct_library_built_for_float64" (rebuild
 * ctape with `make PRECISION=64`, or drop -DCT_PRECISION_64 from the program). */
#ifdef CT_PRECISION_64
extern const char ct_library_built_for_float64;
__attribute__((used)) static const char *const ct__precision_of_this_file = &ct_library_built_for_float64;
#else
extern const char ct_library_built_for_float32;
__attribute__((used)) static const char *const ct__precision_of_this_file = &ct_library_built_for_float32;
#endif

/* ---- CPU dispatch ------------------------------------------------------------------------ */
/* CT_KERNEL marks a function whose loops vectorise (an op's forward or backward, an optimizer's
 * update): on x86-64 GCC compiles it for AVX-512, for AVX2 + FMA and for the baseline, and the
 * dynamic loader picks the copy this CPU runs, so one build runs on any x86-64 CPU. Empty where
 * the build already targets AVX2 or more (make NATIVE=1) and with other compilers. Put it on a
 * function called once per op, not per element or row: a clone is never inlined. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && !defined(__AVX2__)
#define CT_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CT_KERNEL
#endif

/* ---- errors ------------------------------------------------------------------------------ */
/* Two kinds of error:
 *  - programmer errors (shape mismatch, NULL, bad axis) stop the program with one message
 *    that names the op, the shapes and the user's call site (ct_fatal);
 *  - runtime errors (files, memory, bad data) return CT_ERR_* and leave a message that
 *    ct_last_error() returns (ct_set_error). */
typedef enum {
    CT_OK = 0,
    CT_ERR_IO = -1,      /* a file could not be opened, read or written */
    CT_ERR_FORMAT = -2,  /* a file's content is malformed */
    CT_ERR_MEMORY = -3,  /* an allocation failed */
    CT_ERR_VALUE = -4,   /* an argument or a value in the data is out of range */
} ct_status;

/* The message of the last failed call in this thread, or "no error". The calls that read or write
 * files, parse specs, or step an optimizer (those that return a status or NULL for a handle they
 * could not make, in nn/, optim/, data/ and losses/) clear it on entry when called from user
 * code, so after such a call succeeds it never shows an older failure; other calls (settings,
 * accessors, frees) leave it alone, so it can still be read after cleaning up. */
const char *ct_last_error(void);
/* Sets the message returned by ct_last_error() (printf-style) and returns `code`. */
int ct_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ct_clear_error(void);
/* Prints "ctape: <op>: <message> (called at file:line)" to stderr and aborts. */
_Noreturn void ct_fatal(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A host that must survive a programmer error (a server, a notebook kernel, a test runner)
 * installs a handler: ct_fatal calls it with the whole message ("ctape: <op>: ... (called at
 * file:line)") in place of printing it. The handler must not return: it longjmps back to the
 * host (which then drops the tapes it was using: ct_tape_reset, or ct_tape_free) or exits; if it
 * returns, ct_fatal prints the message and aborts as without a handler. Do not longjmp out of a
 * handler called inside an OpenMP region (ct_fatal there is an internal bug, not a user error).
 * NULL restores the default. Returns the previous handler. Process-wide. */
typedef void (*ct_fatal_handler)(const char *message, void *user);
ct_fatal_handler ct_set_fatal_handler(ct_fatal_handler handler, void *user);

/* Call-site tracking: public ops are wrapped by macros (see autograd/ops.h) that record the
 * user's __FILE__/__LINE__ for the duration of the call, so a fatal error points at the user's
 * code. The previous site is restored afterwards: in ct_relu(tape, ct_linear(...)) the inner
 * call hands the site back to the outer one, and outside any tracked call there is no site. */
typedef struct {
    const char *file;
    int line;
} ct_site;
ct_site ct_site_push(const char *file, int line); /* returns the site it replaces */
void ct_site_pop(ct_site previous);
ct_site ct_site_current(void); /* {NULL, 0} outside any tracked call */
#define CT_SITE_CALL(fn, ...)                                                   \
    (__extension__({                                                            \
        ct_site ct__outer_site_ = ct_site_push(__FILE__, __LINE__);             \
        __typeof__(fn(__VA_ARGS__)) ct__result_ = fn(__VA_ARGS__);              \
        ct_site_pop(ct__outer_site_);                                           \
        ct__result_;                                                            \
    }))
#define CT_SITE_CALL_VOID(fn, ...)                                              \
    (__extension__({                                                            \
        ct_site ct__outer_site_ = ct_site_push(__FILE__, __LINE__);             \
        fn(__VA_ARGS__);                                                        \
        ct_site_pop(ct__outer_site_);                                           \
    }))

#define CT_SITE_CALL_CLEARING(fn, ...) (__extension__({ ct_clear_error(); CT_SITE_CALL(fn, __VA_ARGS__); }))

#define CT_CHECK(cond, op, ...) \
    do { if (!(cond)) ct_fatal(op, __VA_ARGS__); } while (0)

/* ---- config structs ----------------------------------------------------------------------- */
/* CT_WITH_DEFAULTS(type, (defaults...), overrides...) is a `type` value whose fields are the
 * defaults, then the caller's designated initializers. Overriding a field that was already
 * initialized is what -Wextra's -Woverride-init warns about, so the literal is built inside a
 * statement expression that silences that one warning (GCC and Clang). Use in functions, not in
 * file-scope initializers. */
#define CT__UNPAREN(...) __VA_ARGS__
#define CT_WITH_DEFAULTS(type, defaults, ...)                                                    \
    (__extension__({                                                                             \
        _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Woverride-init\"")      \
        type ct__opts_ = {CT__UNPAREN defaults, __VA_ARGS__};                                    \
        _Pragma("GCC diagnostic pop") ct__opts_;                                                 \
    }))

/* ---- shapes ------------------------------------------------------------------------------ */
#define CT_MAX_DIMS 6

typedef struct {
    int ndim;
    int d[CT_MAX_DIMS];
} ct_shape;

#define CT__NARGS(...) CT__NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define CT__NARGS_(a, b, c, d, e, f, n, ...) n
/* CT_SHAPE(128, 784) is a two-dimensional shape; CT_SHAPE_SCALAR the zero-dimensional one. */
#define CT_SHAPE(...) ((ct_shape){.ndim = CT__NARGS(__VA_ARGS__), .d = {__VA_ARGS__}})
#define CT_SHAPE_SCALAR ((ct_shape){.ndim = 0})

size_t ct_shape_size(ct_shape s);
/* Writes "(2, 3, 4)" into buf; returns buf. */
char *ct_shape_str(ct_shape s, char *buf, size_t len);

/* ---- tensors ----------------------------------------------------------------------------- */
enum {
    CT_TENSOR_REQUIRES_GRAD = 1 << 0, /* gradients flow into this tensor */
    CT_TENSOR_PARAM = 1 << 1,         /* a model parameter: persistent data and grad */
    CT_TENSOR_ARENA = 1 << 2,         /* lives in a tape's arena; gone at ct_tape_reset */
    CT_TENSOR_VIEW = 1 << 3,          /* data borrowed from another tensor */
    CT_TENSOR_CHECKED = 1 << 4,       /* anomaly mode: an op's output, checked after that op */
    CT_TENSOR_FREED = 1u << 31,       /* set by ct_tensor_free, so a second free is recognised */
};

/* A dense, contiguous, row-major tensor. `grad` has the same shape, or is NULL. */
typedef struct ct_tensor {
    ct_real *data;
    ct_real *grad;
    size_t size;                /* number of elements */
    int ndim;
    int shape[CT_MAX_DIMS];
    unsigned flags;
    const char *name;           /* parameter name ("fc1.weight") or NULL */
    uint64_t step;              /* tape tensors: the tape step that made it (see ct_tape_reset) */
} ct_tensor;

/* Heap tensors (outside any tape), zero-filled. Free with ct_tensor_free. */
ct_tensor *ct_tensor_new(ct_shape shape);
/* Same, with a zeroed heap grad buffer and the REQUIRES_GRAD flag. */
ct_tensor *ct_tensor_new_grad(ct_shape shape);
void ct_tensor_free(ct_tensor *t);

ct_shape ct_tensor_shape(const ct_tensor *t);
/* "(128, 784)" for error messages and printing. */
char *ct_tensor_shape_str(const ct_tensor *t, char *buf, size_t len);
static inline int ct_requires_grad(const ct_tensor *t) { return (t->flags & CT_TENSOR_REQUIRES_GRAD) != 0; }
void ct_tensor_fill(ct_tensor *t, ct_real value);
void ct_tensor_copy_from(ct_tensor *t, const ct_real *src); /* t->size elements */
void ct_tensor_zero_grad(ct_tensor *t);
void ct_tensor_print(const ct_tensor *t, FILE *out);         /* shape and up to 8 values */

/* ---- labels ------------------------------------------------------------------------------ */
/* Integer class labels with their count, as losses and loaders pass them. */
typedef struct {
    const int *data;
    int n;
} ct_labels;
#define CT_LABELS(ptr, count) ((ct_labels){.data = (ptr), .n = (count)})

/* A stream of mini-batches, as the trainer (optim/trainer.h) reads them without knowing where they
 * come from: next() gives a batch's inputs and labels (valid until the next call) and returns 1, or
 * returns 0 once at the end of each epoch; batches() is the number per epoch (0 when unknown);
 * seek() repositions it for a resumed run.
 * data/'s ct_loader_source makes one from a loader. */
typedef struct {
    void *state;
    int (*next)(void *state, ct_tensor **x, ct_labels *y);
    int (*batches)(void *state);
    /* Optional: puts the stream where it was before batch `batch` of epoch `epoch` (0-based) of a run
     * from the start, so a resumed run draws the same batches; CT_OK or an error code. */
    int (*seek)(void *state, int epoch, int batch);
} ct_batch_source;

/* ---- arena ------------------------------------------------------------------------------- */
/* A bump allocator in 64-byte-aligned chunks. Reset is O(1): chunks are kept and reused. */
typedef struct ct_arena ct_arena;
ct_arena *ct_arena_new(size_t chunk_bytes);
void ct_arena_free(ct_arena *a);
/* Never returns NULL: running out of memory mid-step is fatal (nothing can be recovered). */
void *ct_arena_alloc(ct_arena *a, size_t bytes);
void *ct_arena_calloc(ct_arena *a, size_t bytes);
void ct_arena_reset(ct_arena *a);
size_t ct_arena_used(const ct_arena *a);     /* bytes handed out since the last reset */
size_t ct_arena_capacity(const ct_arena *a); /* bytes held in chunks */

/* ---- RNG --------------------------------------------------------------------------------- */
/* xoshiro256** seeded through splitmix64: the same integer stream on every machine. */
typedef struct {
    uint64_t s[4];
} ct_rng;

void ct_rng_seed(ct_rng *r, uint64_t seed);
uint64_t ct_rng_u64(ct_rng *r);
double ct_rng_uniform(ct_rng *r);                 /* [0, 1), 53 random bits */
double ct_rng_uniform_range(ct_rng *r, double lo, double hi);
double ct_rng_normal(ct_rng *r, double mean, double std); /* Box–Muller, no cached state */
int64_t ct_rng_int(ct_rng *r, int64_t lo, int64_t hi);    /* uniform in [lo, hi), unbiased */
void ct_rng_permutation(ct_rng *r, int *out, int n);      /* Fisher–Yates over 0..n-1 */
void ct_tensor_fill_uniform(ct_tensor *t, ct_rng *r, double lo, double hi);
void ct_tensor_fill_normal(ct_tensor *t, ct_rng *r, double mean, double std);

/* ---- threads ----------------------------------------------------------------------------- */
/* One setting for OpenBLAS and OpenMP together. At start-up ctape reads CTAPE_THREADS (if set;
 * a value that is not a count in range is reported on stderr and ignored); ct_set_threads
 * overrides it. n <= 0 means "all cores"; more than CT_MAX_THREADS_PER_CORE threads per core is
 * refused with CT_ERR_VALUE and the setting left as it was. Returns CT_OK or CT_ERR_VALUE. */
#define CT_MAX_THREADS_PER_CORE 4
int ct_set_threads(int n);
int ct_get_threads(void);

/* ---- BLAS -------------------------------------------------------------------------------- */
/* C = alpha * op(A) · op(B) + beta * C, row-major, op = transpose when trans_* is nonzero.
 * A is (M,K) after op, B is (K,N) after op, C is (M,N). Uses sgemm or dgemm per ct_real. */
void ct_gemm(int trans_a, int trans_b, int M, int N, int K, ct_real alpha, const ct_real *A,
             int lda, const ct_real *B, int ldb, ct_real beta, ct_real *C, int ldc);

/* ---- progress ---------------------------------------------------------------------------- */
/* A training progress line: a live bar on a terminal (redrawn in place), plain lines otherwise
 * (one every `every` steps, for logs). */
typedef struct ct_progress ct_progress;
ct_progress *ct_progress_new(const char *label, int total_steps);
/* Shows step (1-based) of total with a free-form status ("loss 0.312  9876 samples/s"). */
void ct_progress_update(ct_progress *p, int step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Ends the line (a newline after the bar) and frees p. */
void ct_progress_done(ct_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Seconds on a monotonic clock, for samples/s. */
double ct_time_now(void);

#endif
