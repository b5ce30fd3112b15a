/* core/spec.h — spec strings, "name:key=value,key=value": how a model, an optimizer or a schedule
 * is chosen by name from a command line or a config ("mlp:hidden=512,256", "adamw:lr=1e-3",
 * "cosine:warmup=500"). A table of entries says which names exist, which keys each takes, their
 * kinds, defaults and ranges; ct_spec_parse checks a string against it and fills in every value.
 *
 * Syntax: the name, then optionally ':' and comma-separated key=value pairs. A list is written in
 * brackets, hidden=[512,256], or as plain comma-separated values, hidden=512,256 (a comma followed
 * by key= starts the next pair); "[]" is an empty list where the key's default is empty.
 * A choice is a word, reduction=sum. Numbers are read and written with a '.' in any locale.
 * Errors (CT_ERR_VALUE, message in ct_last_error) name the string and the mistake: an unknown name
 * lists every name and suggests the nearest, an unknown key lists the keys, a repeated key, a value
 * that is not a number, not an integer, out of its range or not one of the choices. */
#ifndef CTAPE_CORE_SPEC_H
#define CTAPE_CORE_SPEC_H

#include "core.h"

#include <stdio.h>

#define CT_SPEC_MAX_PARAMS 12
#define CT_SPEC_MAX_VALUES 16        /* values of one CT_SPEC_LIST */
#define CT_SPEC_MAX_VECTOR 1024      /* values of one CT_SPEC_VECTOR (a per-class vector) */
#define CT_SPEC_MAX_LIST_VALUES 2048 /* values of all the lists and vectors of one spec together */

/* A vector is a list that may be long: one value per class, as a loss's class weights. */
typedef enum { CT_SPEC_REAL, CT_SPEC_INT, CT_SPEC_LIST, CT_SPEC_CHOICE, CT_SPEC_VECTOR } ct_spec_kind;

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

/* A parsed spec: the entry and every parameter's value (given, or its default). A list (or vector) of a key
 * whose default is "" or "[]" may be empty (a spec writes "[]": not given); the others need a value.
 * Self-contained: a copy of a ct_spec is as good as the original, and nothing needs freeing. */
typedef struct {
    const ct_spec_entry *entry;
    int given[CT_SPEC_MAX_PARAMS];
    double num[CT_SPEC_MAX_PARAMS];  /* a real, an integer, or a choice's index */
    int count[CT_SPEC_MAX_PARAMS];   /* a list's (or vector's) length */
    int start[CT_SPEC_MAX_PARAMS];   /* its first value in values[] */
    int used;                        /* values[] taken */
    double values[CT_SPEC_MAX_LIST_VALUES];
} ct_spec;

/* Parses text against the n entries of table; `what` names the kind in messages ("model"). */
int ct_spec_parse(const char *what, const char *text, const ct_spec_entry *table, int n, ct_spec *out);
/* Checks an entry made at run time (a loss a program registers): every key named and given once, each
 * kind known, each range well formed ("[lo, hi]" with ( ) for open ends and inf; "a|b" for a choice),
 * each default parsing and in its range. CT_OK, or CT_ERR_VALUE with a message starting with `what`
 * that names the entry, the key and the mistake. (A static table's mistakes are fatal in
 * ct_spec_parse instead: they are the program's bugs.) */
int ct_spec_check_entry(const char *what, const ct_spec_entry *e);
/* The value of a key (fatal for a key the entry does not have: a programmer error). */
double ct_spec_num(const ct_spec *s, const char *key);
/* A list's or vector's values (NULL when empty); returns the count. */
int ct_spec_list(const ct_spec *s, const char *key, const double **values);
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
