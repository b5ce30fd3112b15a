/* examples/ctape/flags.c — the command's flag parser: --name VALUE (or --name=VALUE), switches,
 * positional arguments, --help, and a "did you mean" for a flag it does not know. */
#include "command.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const flag_spec *find_flag(const flag_spec *flags, int n, const char *name, size_t len) {
    for (int k = 0; k < n; k++)
        if (strlen(flags[k].name) == len && !strncmp(flags[k].name, name, len)) return &flags[k];
    return NULL;
}

void flags_print(FILE *out, const flag_spec *flags, int n) {
    for (int k = 0; k < n; k++) fprintf(out, "  %-16s %s\n", flags[k].name, flags[k].help);
    fprintf(out, "  %-16s %s\n", "--help", "this text");
}

static int bad_value(const char *command, const flag_spec *f, const char *v) {
    if (f->kind == FLAG_INT)
        fprintf(stderr, "ctape %s: %s must be an integer >= %.0f, got '%s'\n", command, f->name, f->min, v);
    else
        fprintf(stderr, "ctape %s: %s must be a number >= %g, got '%s'\n", command, f->name, f->min, v);
    return 0;
}

/* Stores v into f's destination; 0 after the message. Numbers are read in the C locale. */
static int store(const char *command, const flag_spec *f, const char *v) {
    if (f->kind == FLAG_STRING) {
        *(const char **)f->out = v;
        return 1;
    }
    char *end;
    errno = 0;
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const double x = strtod(v, &end);
    ct_c_numbers_end(numbers);
    if (end == v || *end || errno || !(x >= f->min)) return bad_value(command, f, v);
    if (f->kind == FLAG_INT) {
        if (x != (double)(int)x) return bad_value(command, f, v);
        *(int *)f->out = (int)x;
    } else {
        *(double *)f->out = x;
    }
    return 1;
}

int flags_parse(const char *command, int argc, char **argv, int first, const flag_spec *flags, int n,
                const char **positional, int max_positional, int *n_positional, const char *usage) {
    *n_positional = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n", usage);
            flags_print(stdout, flags, n);
            return 2;
        }
        if (a[0] != '-' || !a[1]) {
            if (*n_positional >= max_positional) {
                fprintf(stderr, "ctape %s: unexpected argument '%s' (see ctape %s --help)\n", command, a, command);
                return 0;
            }
            positional[(*n_positional)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const flag_spec *f = find_flag(flags, n, a, len);
        if (!f) {
            const char *names[64];
            int m = 0;
            for (int k = 0; k < n && m < 64; k++) names[m++] = flags[k].name;
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), a);
            const char *near = ct_spec_nearest(word, names, m);
            fprintf(stderr, "ctape %s: unknown flag '%s'", command, word);
            if (near) fprintf(stderr, " (did you mean %s?)", near);
            fprintf(stderr, "; ctape %s --help lists the flags\n", command);
            return 0;
        }
        if (f->kind == FLAG_SWITCH) {
            if (eq) {
                fprintf(stderr, "ctape %s: %s takes no value\n", command, f->name);
                return 0;
            }
            *(int *)f->out = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "ctape %s: %s needs a value\n", command, f->name);
            return 0;
        }
        if (!store(command, f, v)) return 0;
    }
    return 1;
}

const char *path_join(char *buf, size_t len, const char *dir, const char *name) {
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}
