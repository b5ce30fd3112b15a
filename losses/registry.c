/* losses/registry.c — the loss zoo by name: "focal:gamma=2,alpha=0.25" -> a ready loss.
 *
 * One static table, one row per loss: {name, one-line formula, input, parameters, apply, bind}.
 * A parameter is {key, kind, default, range, help}; the default is a string parsed by the same
 * code as user input (so every default is checked like a user's value), and the range is written
 * as a reader would: "[0, inf)", "(0, 1]", "mean|sum|none". An `apply` adapter turns the parsed
 * values into the loss function's config struct and calls it. Adding a loss is a function + an
 * adapter + a row (losses/README.md, "Adding a loss").
 *
 * Spec grammar:  name [":" key=value ("," key=value)*]
 *                value = number | word | "[" number ("," number)* "]"   (a vector) */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../nn/nn.h"
#include "../autograd/internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters --------------------------------------------------------------------------- */
typedef enum {
    LP_REAL,   /* a finite number in `range` */
    LP_INT,    /* an integer in `range` */
    LP_CHOICE, /* one word of `range`, "mean|sum|none"; stored as its index */
    LP_REALS,  /* a number or a bracketed vector of numbers, each in `range`; default may be "" */
} lp_kind;

typedef struct {
    const char *key;
    lp_kind kind;
    const char *def;   /* default, in spec syntax */
    const char *range; /* "[lo, hi]" with ( ) for open ends and inf, or "a|b|c" for LP_CHOICE */
    const char *help;
} loss_param;

#define LOSS_MAX_PARAMS 8
#define LOSS_MAX_BOUND 4
#define LOSS_MAX_VECTOR 1024

typedef struct loss_entry loss_entry;

/* The parsed values; `value[k]` belongs to entry->params[k]. */
typedef struct {
    double num;      /* LP_REAL, LP_INT, LP_CHOICE (the index) */
    double *vec;     /* LP_REALS: n values (heap), NULL when n = 0 */
    ct_real *vec_real;
    int n;
} loss_value;

struct ct_loss {
    const loss_entry *entry;
    loss_value value[LOSS_MAX_PARAMS];
    /* Learnable state created by the entry's bind hook (parameters owned by the model). */
    ct_tensor *bound[LOSS_MAX_BOUND];
    int is_bound;
};

struct loss_entry {
    const char *name;
    const char *formula; /* one line */
    const char *input;   /* what ct_loss_apply expects */
    loss_param params[LOSS_MAX_PARAMS]; /* ends at the first {NULL} */
    ct_tensor *(*apply)(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels);
    /* NULL for stateless losses. Creates loss->bound[...] in m and returns CT_OK, or sets an error. */
    int (*bind)(ct_loss *loss, ct_model *m, const char *name, int classes, int dim);
};

/* ---- accessors for the adapters (fatal on a key the entry does not have: a bug here) ---------- */
static int param_index(const loss_entry *e, const char *key) {
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++)
        if (!strcmp(e->params[k].key, key)) return k;
    return -1;
}
static const loss_value *param_value(const ct_loss *l, const char *key) {
    int k = param_index(l->entry, key);
    CT_CHECK(k >= 0, "ct_loss_apply", "loss %s has no parameter '%s' (registry bug)", l->entry->name, key);
    return &l->value[k];
}
static double num(const ct_loss *l, const char *key) { return param_value(l, key)->num; }
static int integer(const ct_loss *l, const char *key) { return (int)param_value(l, key)->num; }
/* LP_REALS as ct_real (weights, α per class) or double (Poly-N ε); NULL and *n = 0 when empty. */
static const ct_real *reals(const ct_loss *l, const char *key, int *n) {
    const loss_value *v = param_value(l, key);
    if (n) *n = v->n;
    return v->vec_real;
}
static const double *doubles(const ct_loss *l, const char *key, int *n) {
    const loss_value *v = param_value(l, key);
    if (n) *n = v->n;
    return v->vec;
}
/* "reduction" is the index into its choice list, which starts mean|sum|none|batchmean: the order
 * of ct_reduction. */
static ct_reduction reduction(const ct_loss *l) { return (ct_reduction)integer(l, "reduction"); }

#define REDUCTION_PARAM {"reduction", LP_CHOICE, "mean", "mean|sum|none", "mean/sum over samples, none: per sample"}

/* ---- adapters: parsed values -> the loss function ------------------------------------------ */
static ct_tensor *apply_cross_entropy(ct_tape *tape, ct_loss *l, ct_tensor *z, ct_labels y) {
    int n_weight;
    const ct_real *w = reals(l, "weight", &n_weight);
    CT_CHECK(!w || (z->ndim == 2 && n_weight == z->shape[1]), "cross_entropy",
             "weight has %d values for logits %s", n_weight, ct_shp(z));
    return ct_cross_entropy(tape, z, y, CT_CE(.reduction = reduction(l), .label_smoothing = num(l, "label_smoothing"),
                                              .ignore_index = integer(l, "ignore_index"), .weight = w));
}

/* ---- the table ---------------------------------------------------------------------------- */
static const loss_entry registry[] = {
    {"cross_entropy", "−Σ_c [(1−ε)·w_y·[c=y] + (ε/C)·w_c]·log softmax(z)_c", "logits (N, C)",
     {REDUCTION_PARAM,
      {"label_smoothing", LP_REAL, "0", "[0, 1]", "ε: mass spread uniformly over the classes"},
      {"ignore_index", LP_INT, "-100", "(-inf, inf)", "label that contributes nothing"},
      {"weight", LP_REALS, "", "[0, inf)", "per-class weights [w_0,...,w_{C-1}]"}},
     apply_cross_entropy, NULL},
    /* ---- classification losses: more rows here ---- */

    /* ---- embedding losses (losses/embedding.c): rows here ---- */
};
static const int registry_count = (int)(sizeof registry / sizeof registry[0]);

int ct_loss_count(void) { return registry_count; }
const char *ct_loss_name_at(int i) { return i >= 0 && i < registry_count ? registry[i].name : NULL; }

/* ---- ranges ------------------------------------------------------------------------------- */
typedef struct {
    double lo, hi;
    int lo_open, hi_open;
} range;

static double parse_bound(const char *s, const char **end) {
    while (isspace((unsigned char)*s)) s++;
    if (!strncmp(s, "-inf", 4)) { *end = s + 4; return -INFINITY; }
    if (!strncmp(s, "inf", 3)) { *end = s + 3; return INFINITY; }
    char *e;
    double v = strtod(s, &e);
    *end = e;
    return v;
}

/* "[0, inf)" -> {0, inf, closed, open}. The table is ours, so a malformed range is a bug. */
static range parse_range(const char *s) {
    range r;
    const char *p = s;
    CT_CHECK(*p == '[' || *p == '(', "ct_loss registry", "malformed range \"%s\"", s);
    r.lo_open = *p++ == '(';
    r.lo = parse_bound(p, &p);
    CT_CHECK(*p == ',', "ct_loss registry", "malformed range \"%s\"", s);
    r.hi = parse_bound(p + 1, &p);
    while (isspace((unsigned char)*p)) p++;
    CT_CHECK(*p == ']' || *p == ')', "ct_loss registry", "malformed range \"%s\"", s);
    r.hi_open = *p == ')';
    return r;
}

static int in_range(double v, range r) {
    if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return 0;
    if (r.hi_open ? !(v < r.hi) : !(v <= r.hi)) return 0;
    return 1;
}

/* ---- values --------------------------------------------------------------------------------- */
/* Parses one number of the whole string [s, s+len): strtod, nothing left over, finite. */
static int parse_number(const char *s, size_t len, double *out) {
    char buf[64];
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Stores the text [s, s+len) as the value of parameter p; on error sets ct_last_error naming
 * the loss, the key and the value, and returns CT_ERR_VALUE. */
static int set_value(const loss_entry *e, const loss_param *p, loss_value *v, const char *s, size_t len) {
    const int shown = len > 60 ? 60 : (int)len;
    if (p->kind == LP_CHOICE) {
        const char *opt = p->range;
        for (int idx = 0;; idx++) {
            const char *bar = strchr(opt, '|');
            size_t n = bar ? (size_t)(bar - opt) : strlen(opt);
            if (n == len && !strncmp(opt, s, len)) {
                v->num = idx;
                return CT_OK;
            }
            if (!bar) break;
            opt = bar + 1;
        }
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not one of %s", e->name, p->key, shown, s,
                            p->range);
    }
    const range r = parse_range(p->range);
    if (p->kind == LP_REALS) {
        free(v->vec);
        free(v->vec_real);
        v->vec = NULL;
        v->vec_real = NULL;
        v->n = 0;
        if (len == 0) return CT_OK; /* the empty default: not given */
        const char *body = s, *stop = s + len;
        if (*s == '[') {
            if (len < 2 || s[len - 1] != ']')
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s has no closing ']'", e->name, p->key,
                                    shown, s);
            body = s + 1;
            stop = s + len - 1;
            while (body < stop && isspace((unsigned char)*body)) body++;
            if (body == stop) return CT_OK; /* "[]": not given */
        }
        int count = 1;
        for (const char *q = body; q < stop; q++) count += *q == ',';
        if (count > LOSS_MAX_VECTOR)
            return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s has %d values (at most %d)", e->name, p->key,
                                count, LOSS_MAX_VECTOR);
        v->vec = malloc((size_t)count * sizeof *v->vec);
        v->vec_real = malloc((size_t)count * sizeof *v->vec_real);
        if (!v->vec || !v->vec_real) return ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
        const char *item = body;
        for (int k = 0; k < count; k++) {
            const char *comma = memchr(item, ',', (size_t)(stop - item));
            const char *item_end = comma ? comma : stop;
            double x;
            if (!parse_number(item, (size_t)(item_end - item), &x))
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s: value %d '%.*s' is not a number", e->name,
                                    p->key, k, (int)(item_end - item) > 60 ? 60 : (int)(item_end - item), item);
            if (!in_range(x, r))
                return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s: value %d = %g is out of range %s", e->name,
                                    p->key, k, x, p->range);
            v->vec[k] = x;
            v->vec_real[k] = (ct_real)x;
            item = item_end + 1;
        }
        v->n = count;
        return CT_OK;
    }
    double x;
    if (!parse_number(s, len, &x))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not a number", e->name, p->key, shown, s);
    if (p->kind == LP_INT && (x != floor(x) || fabs(x) > 2147483647.0))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%.*s is not an integer", e->name, p->key, shown, s);
    if (!in_range(x, r))
        return ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s=%g is out of range %s", e->name, p->key, x, p->range);
    v->num = x;
    return CT_OK;
}

/* "cross_entropy, focal, ..." */
static void list_names(char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < registry_count && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", registry[i].name);
}
static void list_keys(const loss_entry *e, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "", e->params[k].key);
    if (!e->params[0].key) snprintf(buf, len, "(none)");
}

void ct_loss_free(ct_loss *loss) {
    if (!loss) return;
    for (int k = 0; k < LOSS_MAX_PARAMS; k++) {
        free(loss->value[k].vec);
        free(loss->value[k].vec_real);
    }
    free(loss);
}

ct_loss *ct_loss_parse(const char *spec) {
    if (!spec) {
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: spec is NULL");
        return NULL;
    }
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const loss_entry *e = NULL;
    for (int i = 0; i < registry_count; i++)
        if (strlen(registry[i].name) == name_len && !strncmp(registry[i].name, spec, name_len)) e = &registry[i];
    if (!e) {
        char names[2048];
        list_names(names, sizeof names);
        ct_set_error(CT_ERR_VALUE, "ct_loss_parse: unknown loss '%.*s' in \"%s\"; known losses: %s",
                     (int)(name_len > 60 ? 60 : name_len), spec, spec, names);
        return NULL;
    }
    ct_loss *l = calloc(1, sizeof *l);
    if (!l) {
        ct_set_error(CT_ERR_MEMORY, "ct_loss_parse: out of memory");
        return NULL;
    }
    l->entry = e;
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++)
        if (set_value(e, &e->params[k], &l->value[k], e->params[k].def, strlen(e->params[k].def)) != CT_OK)
            ct_fatal("ct_loss registry", "%s: default of %s: %s", e->name, e->params[k].key, ct_last_error());

    int seen[LOSS_MAX_PARAMS] = {0};
    const char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        /* one key=value; the value runs to the next comma outside brackets */
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ',') eq++;
        if (*eq != '=') {
            char keys[512];
            list_keys(e, keys, sizeof keys);
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: '%.*s' is not key=value (keys: %s)", e->name,
                         (int)(eq - p > 60 ? 60 : eq - p), p, keys);
            goto fail;
        }
        const char *val = eq + 1, *val_end = val;
        int depth = 0;
        while (*val_end && (depth > 0 || *val_end != ',')) {
            depth += *val_end == '[';
            depth -= *val_end == ']';
            val_end++;
        }
        const char *key = p;
        size_t key_len = (size_t)(eq - p);
        while (key_len && isspace((unsigned char)*key)) key++, key_len--;
        while (key_len && isspace((unsigned char)key[key_len - 1])) key_len--;
        int k = -1;
        for (int j = 0; j < LOSS_MAX_PARAMS && e->params[j].key; j++)
            if (strlen(e->params[j].key) == key_len && !strncmp(e->params[j].key, key, key_len)) k = j;
        if (k < 0) {
            char keys[512];
            list_keys(e, keys, sizeof keys);
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s has no parameter '%.*s'; its parameters: %s", e->name,
                         (int)(key_len > 60 ? 60 : key_len), key, keys);
            goto fail;
        }
        if (seen[k]) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s is given twice", e->name, e->params[k].key);
            goto fail;
        }
        seen[k] = 1;
        const char *v = val;
        size_t v_len = (size_t)(val_end - val);
        while (v_len && isspace((unsigned char)*v)) v++, v_len--;
        while (v_len && isspace((unsigned char)v[v_len - 1])) v_len--;
        if (v_len == 0) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: %s has no value", e->name, e->params[k].key);
            goto fail;
        }
        if (set_value(e, &e->params[k], &l->value[k], v, v_len) != CT_OK) goto fail;
        p = *val_end ? val_end + 1 : val_end;
        if (*val_end && !*p) {
            ct_set_error(CT_ERR_VALUE, "ct_loss_parse: %s: trailing ',' in \"%s\"", e->name, spec);
            goto fail;
        }
    }
    return l;
fail:
    ct_loss_free(l);
    return NULL;
}

const char *ct_loss_name(const ct_loss *loss) { return loss ? loss->entry->name : "(null)"; }

/* Shortest of %.15g / %.17g that reads back as the same double. */
static int format_number(char *buf, size_t len, double x) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.15g", x);
    if (strtod(tmp, NULL) != x) snprintf(tmp, sizeof tmp, "%.17g", x);
    return snprintf(buf, len, "%s", tmp);
}

void ct_loss_describe(const ct_loss *loss, char *buf, size_t len) {
    if (!len) return;
    buf[0] = 0;
    if (!loss) return;
    const loss_entry *e = loss->entry;
    size_t used = (size_t)snprintf(buf, len, "%s", e->name);
    for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key && used < len; k++) {
        const loss_param *p = &e->params[k];
        const loss_value *v = &loss->value[k];
        used += (size_t)snprintf(buf + used, len - used, "%s%s=", k ? "," : ":", p->key);
        if (used >= len) break;
        if (p->kind == LP_CHOICE) {
            const char *opt = p->range;
            for (int idx = 0; idx < (int)v->num; idx++) opt = strchr(opt, '|') + 1;
            const char *bar = strchr(opt, '|');
            used += (size_t)snprintf(buf + used, len - used, "%.*s", (int)(bar ? bar - opt : (long)strlen(opt)), opt);
        } else if (p->kind == LP_REALS) {
            used += (size_t)snprintf(buf + used, len - used, "[");
            for (int j = 0; j < v->n && used < len; j++) {
                if (j) used += (size_t)snprintf(buf + used, len - used, ",");
                if (used < len) used += (size_t)format_number(buf + used, len - used, v->vec[j]);
            }
            if (used < len) used += (size_t)snprintf(buf + used, len - used, "]");
        } else {
            used += (size_t)format_number(buf + used, len - used, v->num);
        }
    }
}

void ct_loss_list(FILE *out) {
    for (int i = 0; i < registry_count; i++) {
        const loss_entry *e = &registry[i];
        fprintf(out, "%s%s\n    %s\n    input: %s\n", e->name, e->bind ? "  (learnable state: ct_loss_bind)" : "",
                e->formula, e->input);
        for (int k = 0; k < LOSS_MAX_PARAMS && e->params[k].key; k++) {
            const loss_param *p = &e->params[k];
            fprintf(out, "    %-16s = %-8s %-16s %s\n", p->key, p->kind == LP_REALS && !*p->def ? "[]" : p->def,
                    p->range, p->help);
        }
    }
}

int ct_loss_bind(ct_loss *loss, ct_model *m, const char *name, int classes, int dim) {
    CT_CHECK(loss, "ct_loss_bind", "loss is NULL");
    if (!loss->entry->bind) return CT_OK;
    CT_CHECK(m && name, "ct_loss_bind", "%s: model or name is NULL", loss->entry->name);
    if (classes <= 0 || dim <= 0)
        return ct_set_error(CT_ERR_VALUE, "ct_loss_bind: %s: classes = %d and dim = %d must be positive",
                            loss->entry->name, classes, dim);
    int rc = loss->entry->bind(loss, m, name, classes, dim);
    if (rc == CT_OK) loss->is_bound = 1;
    return rc;
}

ct_tensor *ct_loss_apply(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels) {
    CT_CHECK(loss && tape && input, "ct_loss_apply", "loss, tape or input is NULL");
    CT_CHECK(!loss->entry->bind || loss->is_bound, "ct_loss_apply",
             "%s has learnable state: call ct_loss_bind(loss, model, name, classes, dim) first", loss->entry->name);
    return loss->entry->apply(tape, loss, input, labels);
}

/* Silences "unused" until every accessor has a user. */
__attribute__((unused)) static void registry_accessors_used(void) {
    (void)doubles;
}
