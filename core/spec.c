/* core/spec.c — the spec-string parser of core/spec.h. */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers in the C locale ------------------------------------------------------------------ */
ct_c_numbers ct_c_numbers_begin(void) {
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    return (ct_c_numbers){c, c ? (void *)uselocale(c) : NULL};
}

void ct_c_numbers_end(ct_c_numbers s) {
    if (!s.c) return;
    uselocale((locale_t)s.previous);
    freelocale((locale_t)s.c);
}

/* One number of the whole text [s, s + len): nothing left over, finite. */
static int read_number(const char *s, size_t len, double *out) {
    char buf[64];
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    const double v = strtod(buf, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* ---- ranges: "[0, inf)" ---------------------------------------------------------------------- */
typedef struct {
    double lo, hi;
    int lo_open, hi_open;
} range;

static int read_bound(const char *p, const char *word, double inf, const char **end, double *out) {
    while (isspace((unsigned char)*p)) p++;
    if (!strncmp(p, word, strlen(word))) return *end = p + strlen(word), *out = inf, 1;
    char *e;
    *out = strtod(p, &e);
    *end = e;
    return e != p && !isnan(*out);
}

/* "[lo, hi]" with ( ) for open ends, -inf / inf allowed, lo <= hi; 0 when malformed. */
static int parse_range(const char *text, range *r) {
    const char *p = text;
    if (!p || (*p != '[' && *p != '(')) return 0;
    r->lo_open = *p++ == '(';
    if (!read_bound(p, "-inf", -INFINITY, &p, &r->lo) || *p != ',') return 0;
    if (!read_bound(p + 1, "inf", INFINITY, &p, &r->hi)) return 0;
    while (isspace((unsigned char)*p)) p++;
    if ((*p != ']' && *p != ')') || p[1] || r->lo > r->hi) return 0;
    r->hi_open = *p == ')';
    return 1;
}

static int in_range(double v, const char *text) {
    range r;
    CT_CHECK(parse_range(text, &r), "ct_spec table", "malformed range \"%s\"", text);
    return (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
}

/* ---- did you mean --------------------------------------------------------------------------- */
/* Edits (insert, delete, replace, swap two neighbours) from a to b: the optimal string alignment
 * distance, so "mpl" is one swap from "mlp". */
static int edit_distance(const char *a, const char *b) {
    const size_t n = strlen(a), m = strlen(b);
    if (n >= 64 || m >= 64) return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *ct_spec_nearest(const char *word, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < n; i++) {
        const int d = edit_distance(word, candidates[i]);
        if (d < best_d) best_d = d, best = candidates[i];
    }
    /* close: at most a third of the word's letters off (and at least one allowed) */
    const int allowed = (int)strlen(word) / 3 > 1 ? (int)strlen(word) / 3 : 1;
    return best_d <= allowed ? best : NULL;
}

/* ---- parsing -------------------------------------------------------------------------------- */
static int is_list(ct_spec_kind kind) { return kind == CT_SPEC_LIST || kind == CT_SPEC_VECTOR; }

static int param_count(const ct_spec_entry *e) {
    int k = 0;
    while (k < CT_SPEC_MAX_PARAMS && e->params[k].key) k++;
    return k;
}

/* How many values a list's default holds: 0 for "" and "[]", else one more than its commas. */
static int default_values(const ct_spec_param *p) {
    const char *d = p->def ? p->def : "";
    if (!is_list(p->kind)) return 0;
    int n = 0, blank = 1;
    for (const char *q = d; *q; q++) {
        n += *q == ',';
        blank &= isspace((unsigned char)*q) || *q == '[' || *q == ']';
    }
    return blank ? 0 : n + 1;
}

static void list_keys(const ct_spec_entry *e, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < param_count(e) && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "", e->params[k].key);
    if (!param_count(e)) snprintf(buf, len, "(none)");
}

/* Sets parameter k from the text [s, s + len); on error a message naming what, the entry and key. */
static int set_value(const char *what, ct_spec *out, int k, const char *s, size_t len) {
    const ct_spec_entry *e = out->entry;
    const ct_spec_param *p = &e->params[k];
    const int shown = len > 60 ? 60 : (int)len;
    if (p->kind == CT_SPEC_CHOICE) {
        const char *opt = p->range;
        for (int idx = 0;; idx++) {
            const char *bar = strchr(opt, '|');
            const size_t n = bar ? (size_t)(bar - opt) : strlen(opt);
            if (n == len && !strncmp(opt, s, len)) return out->num[k] = idx, CT_OK;
            if (!bar) break;
            opt = bar + 1;
        }
        return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s is not one of %s", what, e->name, p->key, shown, s, p->range);
    }
    if (is_list(p->kind)) {
        const char *body = s, *stop = s + len;
        if (len && *s == '[') {
            if (len < 2 || s[len - 1] != ']')
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s has no closing ']'", what, e->name, p->key, shown, s);
            body++, stop--;
        }
        while (body < stop && isspace((unsigned char)*body)) body++;
        out->count[k] = 0;
        if (body == stop) { /* "", "[]": allowed where the default is empty */
            const char *d = p->def ? p->def : "";
            while (isspace((unsigned char)*d)) d++;
            if (*d && strcmp(d, "[]"))
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s is empty: it needs at least 1 value (%s)", what,
                                    e->name, p->key, shown, s, p->help ? p->help : p->range);
            return CT_OK;
        }
        const int at = out->used; /* each key is set once per parse: its values go to the end of the pool */
        const int most = p->kind == CT_SPEC_VECTOR ? CT_SPEC_MAX_VECTOR : CT_SPEC_MAX_VALUES;
        int count = 0;
        for (const char *item = body; item <= stop;) {
            const char *comma = memchr(item, ',', (size_t)(stop - item));
            const char *end = comma ? comma : stop;
            double x;
            if (count == most)
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s has more than %d values", what, e->name, p->key, most);
            if (at + count == CT_SPEC_MAX_LIST_VALUES)
                return ct_set_error(CT_ERR_VALUE, "%s %s: its lists hold more than %d values together", what, e->name,
                                    CT_SPEC_MAX_LIST_VALUES);
            if (!read_number(item, (size_t)(end - item), &x))
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s: value %d '%.*s' is not a number", what, e->name, p->key,
                                    count, (int)(end - item) > 60 ? 60 : (int)(end - item), item);
            if (!in_range(x, p->range))
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s: value %d = %g is out of range %s", what, e->name, p->key,
                                    count, x, p->range);
            out->values[at + count++] = x;
            item = end + 1;
        }
        out->start[k] = at;
        out->count[k] = count;
        out->used = at + count;
        return CT_OK;
    }
    double x;
    if (!read_number(s, len, &x))
        return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s is not a number", what, e->name, p->key, shown, s);
    if (p->kind == CT_SPEC_INT && (x != floor(x) || fabs(x) > 2147483647.0))
        return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s is not an integer", what, e->name, p->key, shown, s);
    if (!in_range(x, p->range))
        return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%g is out of range %s", what, e->name, p->key, x, p->range);
    out->num[k] = x;
    return CT_OK;
}

/* The entry named [text, text + len), or an error listing the names and the nearest one. */
static const ct_spec_entry *find_entry(const char *what, const char *text, size_t len, const ct_spec_entry *table, int n) {
    for (int i = 0; i < n; i++)
        if (strlen(table[i].name) == len && !strncmp(table[i].name, text, len)) return &table[i];
    char names[1024] = "", word[64];
    const char *all[64];
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof names; i++) {
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", table[i].name);
        if (i < 64) all[i] = table[i].name;
    }
    snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), text);
    const char *near = ct_spec_nearest(word, all, n < 64 ? n : 64);
    ct_set_error(CT_ERR_VALUE, "unknown %s '%s'%s%s%s; known: %s", what, word, near ? " (did you mean " : "",
                 near ? near : "", near ? "?)" : "", names);
    return NULL;
}

static int parse(const char *what, const char *text, const ct_spec_entry *table, int n, ct_spec *out) {
    const char *colon = strchr(text, ':');
    const size_t name_len = colon ? (size_t)(colon - text) : strlen(text);
    memset(out, 0, sizeof *out);
    out->entry = find_entry(what, text, name_len, table, n);
    if (!out->entry) return CT_ERR_VALUE;
    const ct_spec_entry *e = out->entry;
    /* the front of the pool holds the lists' defaults (each in its place, so a spec's long lists
     * cannot leave them without room); a spec's values go after */
    int slot[CT_SPEC_MAX_PARAMS], reserved = 0;
    for (int k = 0; k < param_count(e); k++) slot[k] = reserved, reserved += default_values(&e->params[k]);
    CT_CHECK(reserved <= CT_SPEC_MAX_LIST_VALUES, "ct_spec table", "%s %s: the defaults hold %d list values (at most %d)",
             what, e->name, reserved, CT_SPEC_MAX_LIST_VALUES);
    out->used = reserved;
    const char *p = colon ? colon + 1 : NULL;
    if (p && !*p) return ct_set_error(CT_ERR_VALUE, "%s \"%s\": nothing after ':'", what, text);
    if (p && text[strlen(text) - 1] == ',') return ct_set_error(CT_ERR_VALUE, "%s %s: trailing ',' in \"%s\"", what, e->name, text);
    while (p && *p) {
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ',') eq++;
        char keys[512];
        list_keys(e, keys, sizeof keys);
        if (*eq != '=')
            return ct_set_error(CT_ERR_VALUE, "%s %s: '%.*s' is not key=value (keys: %s)", what, e->name,
                                (int)(eq - p > 60 ? 60 : eq - p), p, keys);
        /* the value runs to the next comma outside brackets that starts another key=... */
        const char *val = eq + 1, *end = val;
        int depth = 0;
        for (; *end; end++) {
            depth += *end == '[';
            depth -= *end == ']';
            if (depth == 0 && *end == ',') {
                const char *next = end + 1;
                while (*next && *next != ',' && *next != '=') next++;
                if (*next == '=') break; /* "…,key=…": a new pair */
            }
        }
        const char *key = p;
        size_t key_len = (size_t)(eq - p);
        while (key_len && isspace((unsigned char)*key)) key++, key_len--;
        while (key_len && isspace((unsigned char)key[key_len - 1])) key_len--;
        int k = -1;
        for (int j = 0; j < param_count(e); j++)
            if (strlen(e->params[j].key) == key_len && !strncmp(e->params[j].key, key, key_len)) k = j;
        if (k < 0) {
            char word[64];
            const char *all[CT_SPEC_MAX_PARAMS];
            for (int j = 0; j < param_count(e); j++) all[j] = e->params[j].key;
            snprintf(word, sizeof word, "%.*s", (int)(key_len < 63 ? key_len : 63), key);
            const char *near = ct_spec_nearest(word, all, param_count(e));
            return ct_set_error(CT_ERR_VALUE, "%s %s has no parameter '%s'%s%s%s; its parameters: %s", what, e->name,
                                word, near ? " (did you mean " : "", near ? near : "", near ? "?)" : "", keys);
        }
        if (out->given[k]) return ct_set_error(CT_ERR_VALUE, "%s %s: %s is given twice", what, e->name, e->params[k].key);
        out->given[k] = 1;
        size_t len = (size_t)(end - val);
        while (len && isspace((unsigned char)*val)) val++, len--;
        while (len && isspace((unsigned char)val[len - 1])) len--;
        if (!len) return ct_set_error(CT_ERR_VALUE, "%s %s: %s has no value", what, e->name, e->params[k].key);
        if (!is_list(e->params[k].kind) && memchr(val, ',', len)) {
            const char *rest = (const char *)memchr(val, ',', len) + 1;
            const int rest_len = (int)(val + len - rest);
            return ct_set_error(CT_ERR_VALUE, "%s %s: %s=%.*s: one value expected ('%.*s' after the comma is not key=value)",
                                what, e->name, e->params[k].key, (int)(len > 60 ? 60 : len), val,
                                rest_len > 60 ? 60 : rest_len, rest);
        }
        const int status = set_value(what, out, k, val, len);
        if (status) return status;
        p = *end ? end + 1 : end;
    }
    /* the defaults of the keys not given, parsed like a value (a static table's bad default is its bug) */
    const int used = out->used;
    for (int k = 0; k < param_count(e); k++) {
        if (out->given[k]) continue;
        out->used = slot[k];
        if (set_value(what, out, k, e->params[k].def, strlen(e->params[k].def)) != CT_OK)
            ct_fatal("ct_spec table", "%s %s: the default of %s: %s", what, e->name, e->params[k].key, ct_last_error());
    }
    out->used = used;
    return CT_OK;
}

int ct_spec_check_entry(const char *what, const ct_spec_entry *e) {
    CT_CHECK(what && e, "ct_spec_check_entry", "what and the entry must be given");
    if (!e->name || !*e->name) return ct_set_error(CT_ERR_VALUE, "%s the entry has no name", what);
    const int n = param_count(e);
    for (int k = 0; k < n; k++) {
        const ct_spec_param *p = &e->params[k];
        for (int j = 0; j < k; j++)
            if (!strcmp(e->params[j].key, p->key))
                return ct_set_error(CT_ERR_VALUE, "%s %s: parameter %s is declared twice", what, e->name, p->key);
        if (!*p->key || strpbrk(p->key, "=,:[] "))
            return ct_set_error(CT_ERR_VALUE, "%s %s: parameter name \"%.60s\": a key is a word without '=', ',', ':', "
                                "'[', ']' or spaces", what, e->name, p->key);
        if ((unsigned)p->kind > CT_SPEC_VECTOR)
            return ct_set_error(CT_ERR_VALUE, "%s %s: %s: unknown kind %d", what, e->name, p->key, (int)p->kind);
        range r;
        if (p->kind == CT_SPEC_CHOICE) {
            const char *c = p->range ? p->range : "";
            int ok = *c != 0;
            for (const char *q = c; ok && *q; q++)
                ok = *q != '|' || (q > c && q[-1] != '|' && q[1]);
            if (!ok || strpbrk(c, "=,:[] "))
                return ct_set_error(CT_ERR_VALUE, "%s %s: %s: malformed choices \"%.60s\" (words split by '|')", what,
                                    e->name, p->key, c);
        } else if (!parse_range(p->range, &r)) {
            return ct_set_error(CT_ERR_VALUE, "%s %s: %s: malformed range \"%.60s\"", what, e->name, p->key,
                                p->range ? p->range : "(null)");
        }
    }
    int reserved = 0;
    for (int k = 0; k < n; k++) reserved += default_values(&e->params[k]);
    if (reserved > CT_SPEC_MAX_LIST_VALUES)
        return ct_set_error(CT_ERR_VALUE, "%s %s: the defaults hold %d list values (at most %d together)", what, e->name,
                            reserved, CT_SPEC_MAX_LIST_VALUES);
    /* each default, parsed as a spec's value would be */
    const ct_c_numbers numbers = ct_c_numbers_begin();
    ct_spec *scratch = malloc(sizeof *scratch);
    int status = scratch ? CT_OK : ct_set_error(CT_ERR_MEMORY, "%s %s: out of memory", what, e->name);
    for (int k = 0; status == CT_OK && k < n; k++) {
        char prefix[128];
        const char *def = e->params[k].def ? e->params[k].def : "";
        memset(scratch, 0, offsetof(ct_spec, values));
        scratch->entry = e;
        snprintf(prefix, sizeof prefix, "%s default of %s:", what, e->params[k].key);
        status = set_value(prefix, scratch, k, def, strlen(def));
    }
    free(scratch);
    ct_c_numbers_end(numbers);
    return status;
}

int ct_spec_parse(const char *what, const char *text, const ct_spec_entry *table, int n, ct_spec *out) {
    CT_CHECK(what && table && n > 0 && out, "ct_spec_parse", "what, table (n = %d) and out must be given", n);
    if (!text) return ct_set_error(CT_ERR_VALUE, "%s: the spec is NULL", what);
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const int status = parse(what, text, table, n, out);
    ct_c_numbers_end(numbers);
    if (status) out->entry = NULL;
    return status;
}

static int key_index(const ct_spec *s, const char *key) {
    CT_CHECK(s && s->entry, "ct_spec", "no parsed spec");
    for (int k = 0; k < param_count(s->entry); k++)
        if (!strcmp(s->entry->params[k].key, key)) return k;
    ct_fatal("ct_spec", "%s has no parameter '%s'", s->entry->name, key);
}

double ct_spec_num(const ct_spec *s, const char *key) { return s->num[key_index(s, key)]; }
int ct_spec_given(const ct_spec *s, const char *key) { return s->given[key_index(s, key)]; }
int ct_spec_list(const ct_spec *s, const char *key, const double **values) {
    const int k = key_index(s, key);
    CT_CHECK(is_list(s->entry->params[k].kind), "ct_spec_list", "%s: %s is not a list", s->entry->name, key);
    *values = s->count[k] ? s->values + s->start[k] : NULL;
    return s->count[k];
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static size_t put_number(char *buf, size_t len, double x) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.15g", x);
    if (strtod(tmp, NULL) != x) snprintf(tmp, sizeof tmp, "%.17g", x);
    return (size_t)snprintf(buf, len, "%s", tmp);
}

void ct_spec_describe(const ct_spec *s, char *buf, size_t len) {
    if (!len) return;
    buf[0] = 0;
    if (!s || !s->entry) return;
    const ct_c_numbers numbers = ct_c_numbers_begin();
    const ct_spec_entry *e = s->entry;
    size_t used = (size_t)snprintf(buf, len, "%s", e->name);
    for (int k = 0; k < param_count(e) && used < len; k++) {
        const ct_spec_param *p = &e->params[k];
        used += (size_t)snprintf(buf + used, len - used, "%s%s=", k ? "," : ":", p->key);
        if (used >= len) break;
        if (p->kind == CT_SPEC_CHOICE) {
            const char *opt = p->range;
            for (int idx = 0; idx < (int)s->num[k] && strchr(opt, '|'); idx++) opt = strchr(opt, '|') + 1;
            const char *bar = strchr(opt, '|');
            used += (size_t)snprintf(buf + used, len - used, "%.*s", (int)(bar ? (size_t)(bar - opt) : strlen(opt)), opt);
        } else if (is_list(p->kind)) {
            used += (size_t)snprintf(buf + used, len - used, "[");
            for (int j = 0; j < s->count[k] && used < len; j++) {
                if (j) used += (size_t)snprintf(buf + used, len - used, ",");
                if (used < len) used += put_number(buf + used, len - used, s->values[s->start[k] + j]);
            }
            if (used < len) used += (size_t)snprintf(buf + used, len - used, "]");
        } else {
            used += put_number(buf + used, len - used, s->num[k]);
        }
    }
    ct_c_numbers_end(numbers);
}

void ct_spec_print_table(const char *what, const ct_spec_entry *table, int n, FILE *out) {
    static const char *const kinds[] = {"real", "integer", "list", "choice", "vector"};
    for (int i = 0; i < n; i++) {
        fprintf(out, "%-16s %s\n", table[i].name, table[i].help ? table[i].help : "");
        for (int k = 0; k < param_count(&table[i]); k++) {
            const ct_spec_param *p = &table[i].params[k];
            fprintf(out, "    %-14s %-8s default %-10s %-14s %s\n", p->key, kinds[p->kind], p->def, p->range,
                    p->help ? p->help : "");
        }
    }
    (void)what;
}
