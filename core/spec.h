/* core/spec.h — spec strings, "name:key=value,key=value": how a model, an optimizer or a schedule
 * is chosen by name from a command line or a config ("mlp:hidden=512,256", "adamw:lr=1e-3",
 * "cosine:warmup=500"). A table of entries says which names exist, which keys each takes, their
 * kinds, defaults and ranges; ct_spec_parse checks a string against it and fills in every value.
 *
 * Syntax: the name, then optionally ':' and comma-separated key=value pairs. A list is written in
 * brackets, hidden=[512,256], or (for the last key) as plain comma-separated values, hidden=512,256.
 * A choice is a word, reduction=sum. Numbers are read and written with a '.' in any locale.
 * Errors (CT_ERR_VALUE, message in ct_last_error) name the string and the mistake: an unknown name
 * lists every name and suggests the nearest, an unknown key lists the keys, a repeated key, a value
 * that is not a number, not an integer, out of its range or not one of the choices. */
#ifndef CTAPE_CORE_SPEC_H
#define CTAPE_CORE_SPEC_H

#include "core.h"

#include <stdio.h>

#define CT_SPEC_MAX_PARAMS 12
#define CT_SPEC_MAX_VALUES 16

typedef enum { CT_SPEC_REAL, CT_SPEC_INT, CT_SPEC_LIST, CT_SPEC_CHOICE } ct_spec_kind;

typedef struct {
    const char *key;
    ct_spec_kind kind;
    const char *def;   /* the default as text: "0.1", "[512,256]", "mean" */
    const char *range; /* "[0, inf)", "(0, 1]" (for a list, each value's); for a choice "mean|sum|none" */
    const char *help;
} ct_spec_param;

typedef struct {
    const char *name;
    const char *help;
    ct_spec_param params[CT_SPEC_MAX_PARAMS]; /* ends at the first NULL key */
} ct_spec_entry;

/* A parsed spec: the entry and every parameter's value (given, or its default). */
typedef struct {
    const ct_spec_entry *entry;
    int given[CT_SPEC_MAX_PARAMS];
    double num[CT_SPEC_MAX_PARAMS];  /* a real, an integer, or a choice's index */
    int count[CT_SPEC_MAX_PARAMS];   /* a list's length */
    double list[CT_SPEC_MAX_PARAMS][CT_SPEC_MAX_VALUES];
} ct_spec;

/* Parses text against the n entries of table; `what` names the kind in messages ("model"). */
int ct_spec_parse(const char *what, const char *text, const ct_spec_entry *table, int n, ct_spec *out);
/* The value of a key (fatal for a key the entry does not have: a programmer error). */
double ct_spec_num(const ct_spec *s, const char *key);
int ct_spec_list(const ct_spec *s, const char *key, const double **values); /* returns the count */
int ct_spec_given(const ct_spec *s, const char *key);
/* "name:key=value,..." with every parameter, which ct_spec_parse reads back to the same values. */
void ct_spec_describe(const ct_spec *s, char *buf, size_t len);
/* One line per entry (name and help), then its parameters with kind, default, range and help. */
void ct_spec_print_table(const char *what, const ct_spec_entry *table, int n, FILE *out);
/* Numbers in the C locale on this thread until ct_c_numbers_end: strtod and printf read and write
 * "0.25" whatever the program's LC_NUMERIC (after setlocale(LC_ALL, "") in de_DE they would stop at
 * the '.' and write "0,25"). Code that reads or writes numbers in files and specs brackets itself
 * with these; the caller's locale comes back at the end. */
typedef struct {
    void *c, *previous;
} ct_c_numbers;
ct_c_numbers ct_c_numbers_begin(void);
void ct_c_numbers_end(ct_c_numbers s);

/* The candidate nearest to word by edit distance, or NULL when none is close (for "did you mean"). */
const char *ct_spec_nearest(const char *word, const char *const *candidates, int n);

#endif
