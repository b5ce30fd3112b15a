/* examples/options.h — the examples' one option parser. Each program lists its flags in a table:
 * the flag, the kind of value, where it goes and the smallest value allowed. Every message names
 * the flag and the value given:
 *     mnist_mlp: --epochs must be an integer >= 1, got '0'
 *     mnist_mlp: unexpected argument 'extra' (every argument is an --option; usage follows) */
#ifndef CTAPE_EXAMPLES_OPTIONS_H
#define CTAPE_EXAMPLES_OPTIONS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    OPT_FLAG,   /* no value: stores (int)min in *(int *)out */
    OPT_STRING, /* const char ** */
    OPT_INT,    /* int *, value >= min */
    OPT_U64,    /* uint64_t * */
    OPT_REAL,   /* double *, value > min */
} opt_kind;

typedef struct {
    const char *name; /* "--epochs" */
    opt_kind kind;
    void *out;
    double min;
} opt_spec;

/* The program's name without its folder, for messages. */
static inline const char *opt_prog(const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    return slash ? slash + 1 : argv0;
}

static inline int opt_bad_value(const char *argv0, const opt_spec *s, const char *v) {
    if (s->kind == OPT_INT)
        fprintf(stderr, "%s: %s must be an integer >= %.0f, got '%s'\n", opt_prog(argv0), s->name, s->min, v);
    else if (s->kind == OPT_REAL)
        fprintf(stderr, "%s: %s must be a number > %g, got '%s'\n", opt_prog(argv0), s->name, s->min, v);
    else
        fprintf(stderr, "%s: %s must be a non-negative integer, got '%s'\n", opt_prog(argv0), s->name, v);
    return 0;
}

/* Parses argv[1..] against specs[0..n). --help or -h prints the usage to stdout and exits 0.
 * Returns 1, or 0 after one message on stderr (and the usage, after an unexpected argument). */
static inline int opt_parse(int argc, char **argv, const opt_spec *specs, int n,
                            void (*usage)(FILE *, const char *)) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, argv[0]);
            exit(0);
        }
        const opt_spec *s = NULL;
        for (int k = 0; k < n && !s; k++)
            if (!strcmp(a, specs[k].name)) s = &specs[k];
        if (!s) {
            if (strncmp(a, "-", 1) != 0) {
                fprintf(stderr, "%s: unexpected argument '%s' (every argument is an --option; usage follows)\n",
                        opt_prog(argv[0]), a);
                usage(stderr, argv[0]);
            } else {
                fprintf(stderr, "%s: unknown option %s (see --help)\n", opt_prog(argv[0]), a);
            }
            return 0;
        }
        if (s->kind == OPT_FLAG) {
            *(int *)s->out = (int)s->min;
            continue;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", opt_prog(argv[0]), a);
            return 0;
        }
        const char *v = argv[++i];
        char *end = NULL;
        errno = 0;
        if (s->kind == OPT_STRING) {
            *(const char **)s->out = v;
        } else if (s->kind == OPT_INT) {
            long x = strtol(v, &end, 10);
            if (end == v || *end || errno || x < s->min || x > 0x7fffffff) return opt_bad_value(argv[0], s, v);
            *(int *)s->out = (int)x;
        } else if (s->kind == OPT_U64) {
            unsigned long long x = strtoull(v, &end, 10);
            if (end == v || *end || errno || v[0] == '-') return opt_bad_value(argv[0], s, v);
            *(uint64_t *)s->out = (uint64_t)x;
        } else {
            double x = strtod(v, &end);
            if (end == v || *end || !(x > s->min) || x > 1e300) return opt_bad_value(argv[0], s, v);
            *(double *)s->out = x;
        }
    }
    return 1;
}

#endif
