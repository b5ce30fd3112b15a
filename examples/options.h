/* examples/options.h — the examples' one option parser (the example programs and the ctape command).
 * Each program lists its flags in a table: the flag, the kind of value, where it goes, the smallest
 * value allowed, and a line of help. A value follows its flag or joins it with '=' (--epochs 5,
 * --epochs=5). Every message names the flag and the value given; an unknown flag gets the nearest
 * known one:
 *     mnist_mlp: --epochs must be an integer >= 1, got '0'
 *     mnist_mlp: unknown option --epoch (did you mean --epochs?); see --help
 *     mnist_mlp: unexpected argument 'extra' (every argument is an --option; usage follows) */
#ifndef CTAPE_EXAMPLES_OPTIONS_H
#define CTAPE_EXAMPLES_OPTIONS_H

#include <ctape.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    OPT_FLAG,     /* no value: stores (int)min in *(int *)out */
    OPT_STRING,   /* const char ** */
    OPT_INT,      /* int *, value >= min */
    OPT_U64,      /* uint64_t * */
    OPT_REAL,     /* double *, value > min */
    OPT_REAL_MIN, /* double *, value >= min */
} opt_kind;

typedef struct {
    const char *name; /* "--epochs" */
    opt_kind kind;
    void *out;
    double min;
    const char *help; /* "N  passes over the training set (default 5)", for opt_print; may be NULL */
} opt_spec;

/* The program's name without its folder, for messages. */
static inline const char *opt_prog(const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    return slash ? slash + 1 : argv0;
}

/* The flags with their help, one a line. */
static inline void opt_print(FILE *to, const opt_spec *specs, int n) {
    for (int k = 0; k < n; k++)
        if (specs[k].help) fprintf(to, "  %-16s %s\n", specs[k].name, specs[k].help);
    fprintf(to, "  %-16s %s\n", "--help", "this text");
}

static inline int opt_bad_value(const char *prog, const opt_spec *s, const char *v) {
    if (s->kind == OPT_INT)
        fprintf(stderr, "%s: %s must be an integer >= %.0f, got '%s'\n", prog, s->name, s->min, v);
    else if (s->kind == OPT_REAL)
        fprintf(stderr, "%s: %s must be a number > %g, got '%s'\n", prog, s->name, s->min, v);
    else if (s->kind == OPT_REAL_MIN)
        fprintf(stderr, "%s: %s must be a number >= %g, got '%s'\n", prog, s->name, s->min, v);
    else
        fprintf(stderr, "%s: %s must be a non-negative integer, got '%s'\n", prog, s->name, v);
    return 0;
}

/* Stores the value v of flag s; 0 after the message. Numbers are read with a '.' in any locale. */
static inline int opt_store(const char *prog, const opt_spec *s, const char *v) {
    char *end = NULL;
    errno = 0;
    if (s->kind == OPT_STRING) {
        *(const char **)s->out = v;
    } else if (s->kind == OPT_INT) {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < s->min || x > 0x7fffffff) return opt_bad_value(prog, s, v);
        *(int *)s->out = (int)x;
    } else if (s->kind == OPT_U64) {
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-') return opt_bad_value(prog, s, v);
        *(uint64_t *)s->out = (uint64_t)x;
    } else {
        const ct_c_numbers numbers = ct_c_numbers_begin();
        double x = strtod(v, &end);
        ct_c_numbers_end(numbers);
        const int ok = s->kind == OPT_REAL ? x > s->min : x >= s->min;
        if (end == v || *end || !ok || x > 1e300) return opt_bad_value(prog, s, v);
        *(double *)s->out = x;
    }
    return 1;
}

/* Positional arguments a program takes (the ctape command's run folders): up to max into values. */
typedef struct {
    const char **values;
    int max, n;
} opt_positional;

/* Parses argv[first..] against specs[0..n) for the program `prog` (in messages). --help or -h
 * prints the usage (the callback's, else `usage_text` and the flags' help) to stdout and exits 0.
 * A word that is not a flag goes to *positional while it has room (NULL: none allowed). Returns 1,
 * or 0 after one message on stderr (and the usage, after an unexpected argument). */
static inline int opt_parse_from(const char *prog, int argc, char **argv, int first, const opt_spec *specs, int n,
                                 void (*usage)(FILE *, const char *), const char *usage_text,
                                 opt_positional *positional) {
    if (positional) positional->n = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (usage) usage(stdout, prog);
            else printf("%s\n", usage_text ? usage_text : ""), opt_print(stdout, specs, n);
            exit(0);
        }
        if (a[0] != '-' || !a[1]) {
            if (positional && positional->n < positional->max) {
                positional->values[positional->n++] = a;
                continue;
            }
            fprintf(stderr, "%s: unexpected argument '%s' (every argument is an --option; usage follows)\n", prog, a);
            if (usage) usage(stderr, prog);
            else fprintf(stderr, "%s\n", usage_text ? usage_text : "");
            return 0;
        }
        const char *eq = strchr(a, '=');
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const opt_spec *s = NULL;
        for (int k = 0; k < n && !s; k++)
            if (strlen(specs[k].name) == len && !strncmp(a, specs[k].name, len)) s = &specs[k];
        if (!s) {
            const char *names[64];
            int m = 0;
            for (int k = 0; k < n && m < 64; k++) names[m++] = specs[k].name;
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), a);
            const char *near = ct_spec_nearest(word, names, m);
            fprintf(stderr, "%s: unknown option %s", prog, word);
            if (near) fprintf(stderr, " (did you mean %s?)", near);
            fprintf(stderr, "; see --help\n");
            return 0;
        }
        if (s->kind == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: %s takes no value (see --help)\n", prog, s->name);
                return 0;
            }
            *(int *)s->out = (int)s->min;
            continue;
        }
        if (!eq && i + 1 == argc) {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", prog, s->name);
            return 0;
        }
        if (!opt_store(prog, s, eq ? eq + 1 : argv[++i])) return 0;
    }
    return 1;
}

/* The examples' form: every argument an option, the usage from a callback. */
static inline int opt_parse(int argc, char **argv, const opt_spec *specs, int n, void (*usage)(FILE *, const char *)) {
    return opt_parse_from(opt_prog(argv[0]), argc, argv, 1, specs, n, usage, NULL, NULL);
}

#endif
