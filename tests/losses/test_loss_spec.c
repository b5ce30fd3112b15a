/* tests/losses/test_loss_spec.c — loss specs ("focal:gamma=2,alpha=[0.25]") that the parser accepts are
 * usable, numbers in specs do not depend on the program's locale, describe -> parse -> describe is
 * stable with every parameter away from its default, and ct_loss_register's error messages. */
#include "../test.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- ct_loss_register: the message of a bad default ---------------------------------------- */
static ct_tensor *never_called(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    (void)tape, (void)y, (void)params;
    return z;
}

CT_TEST(loss_spec, register_names_a_bad_default_once) {
    const ct_loss_def def = {
        .name = "spec_test_bad_default",
        .params = {{"m", "2", "[0, 1]", "a margin"}},
        .fn = never_called,
    };
    const int before = ct_loss_count();
    CHECK(ct_loss_register(&def) == CT_ERR_VALUE);
    const char *msg = ct_last_error();
    CHECK(!strcmp(msg, "ct_loss_register: default of m: spec_test_bad_default: m=2 is out of range [0, 1]"),
          "got \"%s\"", msg);
    CHECK(ct_loss_count() == before, "a refused definition was added");
    /* a default that is not a number, the same way */
    const ct_loss_def nan_def = {
        .name = "spec_test_bad_default",
        .params = {{"m", "0.5", "[0, 1]", "a margin"}, {"k", "x1", "[0, 1]", "another"}},
        .fn = never_called,
    };
    CHECK(ct_loss_register(&nan_def) == CT_ERR_VALUE);
    CHECK(!strcmp(ct_last_error(), "ct_loss_register: default of k: spec_test_bad_default: k=x1 is not a number"),
          "got \"%s\"", ct_last_error());
}

/* ---- every spec the parser accepts is usable ----------------------------------------------- */
static int parse_fails_naming(const char *spec, const char *const *parts, int n, char *got, size_t len) {
    ct_loss *l = ct_loss_parse(spec);
    if (l) {
        ct_loss_free(l);
        snprintf(got, len, "(parsed)");
        return 0;
    }
    snprintf(got, len, "%s", ct_last_error());
    for (int i = 0; i < n; i++)
        if (!strstr(got, parts[i])) return 0;
    return 1;
}

CT_TEST(loss_spec, empty_lists_are_refused_where_the_loss_needs_a_value) {
    const struct {
        const char *spec;
        const char *parts[3];
    } cases[] = {
        {"focal:alpha=[]", {"focal", "alpha=[]", "at least 1 value"}},
        {"focal:gamma=1,alpha=[ ]", {"focal", "alpha=[ ]", "one value, or one per class"}},
        {"poly_n:epsilon=[]", {"poly_n", "epsilon=[]", "at least 1 value"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[1024];
        CHECK(parse_fails_naming(cases[i].spec, cases[i].parts, 3, got, sizeof got), "%s: got \"%s\"", cases[i].spec,
              got);
    }
    /* where an empty list means "none", it still parses and applies */
    const char *fine[] = {"cross_entropy:weight=[]", "nll:weight=[]", "bce_with_logits:pos_weight=[]",
                          "focal:alpha=[0.5]", "poly_n:epsilon=[0.5,-0.25]"};
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(3, 4));
    for (size_t k = 0; k < z->size; k++) z->data[k] = (ct_real)((int)(k % 5) - 2) * (ct_real)0.5;
    int labels[3] = {0, 3, 1};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        ct_loss *l = ct_loss_parse(fine[i]);
        CHECK(l, "%s: %s", fine[i], ct_last_error());
        ct_tensor *out = ct_loss_apply(tape, l, z, CT_LABELS(labels, 3));
        CHECK(out->size == 1 && isfinite(out->data[0]), "%s gave %g", fine[i], (double)out->data[0]);
        ct_loss_free(l);
    }
    ct_tape_free(tape);
}

/* ---- a decimal-comma locale ------------------------------------------------------------------ */
/* Switches the process to a locale whose decimal point is ',' (one installed, else one built with
 * localedef under LOCPATH); 0 with the reason in `why` when none can be had. */
static int decimal_comma_locale(char *why, size_t len) {
    static char built[256];
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "nl_NL.UTF-8", "es_ES.UTF-8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (setlocale(LC_ALL, names[i]) && !strcmp(localeconv()->decimal_point, ",")) return 1;
    if (!built[0]) {
        if (access("/usr/share/i18n/locales/de_DE", R_OK) != 0) {
            snprintf(why, len, "no decimal-comma locale is installed and the locale sources to build one are "
                               "missing: apt-get install locales");
            return 0;
        }
        char cmd[1024];
        snprintf(built, sizeof built, "%.200s/locales", ct_test_tmpdir());
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1",
                 built, built);
        if (system(cmd) != 0) {
            snprintf(why, len, "localedef could not build de_DE.UTF-8 (Debian package libc-bin for localedef, "
                               "locales for its sources)");
            built[0] = 0;
            return 0;
        }
    }
    setenv("LOCPATH", built, 1);
    if (setlocale(LC_ALL, "de_DE.UTF-8") && !strcmp(localeconv()->decimal_point, ",")) return 1;
    unsetenv("LOCPATH");
    setlocale(LC_ALL, "C");
    snprintf(why, len, "de_DE.UTF-8 built under %s does not load", built);
    return 0;
}

static void back_to_c_locale(void) {
    setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
}

/* ---- non-default values for every parameter ---------------------------------------------------- */
/* The description "name:k=v,..." split into its keys and values (brackets kept together). */
typedef struct {
    char key[8][64], value[8][256];
    int n;
} described;

static int split_description(const char *text, described *d) {
    const char *p = strchr(text, ':');
    d->n = 0;
    if (!p) return 1; /* no parameters */
    p++;
    while (*p && d->n < 8) {
        const char *eq = strchr(p, '=');
        if (!eq) return 0;
        const char *v = eq + 1, *end = v;
        int depth = 0;
        while (*end && (depth > 0 || *end != ',')) depth += (*end == '[') - (*end == ']'), end++;
        snprintf(d->key[d->n], sizeof d->key[0], "%.*s", (int)(eq - p), p);
        snprintf(d->value[d->n], sizeof d->value[0], "%.*s", (int)(end - v), v);
        d->n++;
        p = *end ? end + 1 : end;
    }
    return 1;
}

static int parses(const char *name, const char *key, const char *value) {
    char spec[512];
    snprintf(spec, sizeof spec, "%s:%s=%s", name, key, value);
    ct_loss *l = ct_loss_parse(spec);
    ct_loss_free(l);
    return l != NULL;
}

/* A value of `key` that differs from `current` and parses; fractional where the range allows. */
static int other_value(const char *name, const char *key, const char *current, char *out, size_t len) {
    if (current[0] == '[') {
        const char *lists[] = {"[0.375,1.25]", "[0.375]", "[2.5]"};
        for (size_t i = 0; i < 3; i++)
            if (strcmp(lists[i], current) && parses(name, key, lists[i])) return snprintf(out, len, "%s", lists[i]), 1;
        return 0;
    }
    char *end;
    const double v = strtod(current, &end);
    if (!*end) {
        const double tries[] = {v + 0.375, v - 0.375, v * 0.5, v + 1, v - 1, 0.625};
        for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
            char text[64];
            snprintf(text, sizeof text, "%.17g", tries[i]);
            if (tries[i] != v && parses(name, key, text)) return snprintf(out, len, "%s", text), 1;
        }
        return 0;
    }
    const char *words[] = {"sum", "none", "mean", "cosine", "l2", "hard", "all"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i], current) && parses(name, key, words[i])) return snprintf(out, len, "%s", words[i]), 1;
    return 0;
}

/* For loss i: a spec with every parameter away from its default into `spec`, and
 * describe(parse(spec)) into `first`; 0 with `why` set when something fails. */
static int describe_non_default(int i, char *spec, char *first, size_t len, char *why, size_t why_len) {
    const char *name = ct_loss_name_at(i);
    ct_loss *l = ct_loss_parse(name);
    if (!l) return snprintf(why, why_len, "%s: %s", name, ct_last_error()), 0;
    char text[768];
    ct_loss_describe(l, text, sizeof text);
    ct_loss_free(l);
    described d;
    if (!split_description(text, &d)) return snprintf(why, why_len, "cannot read \"%s\"", text), 0;
    size_t used = (size_t)snprintf(spec, len, "%s", name);
    for (int k = 0; k < d.n; k++) {
        char value[256];
        if (!other_value(name, d.key[k], d.value[k], value, sizeof value))
            return snprintf(why, why_len, "%s: no other value of %s=%s parses", name, d.key[k], d.value[k]), 0;
        used += (size_t)snprintf(spec + used, len - used, "%s%s=%s", k ? "," : ":", d.key[k], value);
    }
    l = ct_loss_parse(spec);
    if (!l) return snprintf(why, why_len, "\"%s\": %s", spec, ct_last_error()), 0;
    ct_loss_describe(l, first, len);
    ct_loss_free(l);
    if (d.n && !strcmp(first, text)) return snprintf(why, why_len, "\"%s\" described as the defaults", spec), 0;
    return 1;
}

CT_TEST(loss_spec, describe_parse_describe_is_stable_away_from_the_defaults) {
    for (int i = 0; i < ct_loss_count(); i++) {
        char spec[1024], first[1024], second[1024], why[1024];
        CHECK(describe_non_default(i, spec, first, sizeof spec, why, sizeof why), "%s", why);
        ct_loss *again = ct_loss_parse(first);
        CHECK(again, "\"%s\" (from \"%s\") does not parse: %s", first, spec, ct_last_error());
        ct_loss_describe(again, second, sizeof second);
        ct_loss_free(again);
        CHECK(!strcmp(first, second), "\"%s\" -> \"%s\" -> \"%s\"", spec, first, second);
    }
}

CT_TEST(loss_spec, numbers_do_not_follow_a_decimal_comma_locale) {
    /* the references, in the C locale */
    static char specs[64][1024], firsts[64][1024];
    const int n = ct_loss_count() < 64 ? ct_loss_count() : 64;
    for (int i = 0; i < n; i++) {
        char why[1024];
        CHECK(describe_non_default(i, specs[i], firsts[i], sizeof specs[i], why, sizeof why), "%s", why);
    }
    char why[512];
    if (!decimal_comma_locale(why, sizeof why)) CT_SKIP("%s", why);
    char probe[32];
    snprintf(probe, sizeof probe, "%.2f", 0.5);
    int ok = !strcmp(probe, "0,50"), failed_at = -1;
    char got[1024] = "", err[1024] = "";
    /* every default parses, and every non-default spec gives the C locale's description */
    for (int i = 0; ok && i < n && failed_at < 0; i++) {
        ct_loss *l = ct_loss_parse(specs[i]);
        if (!l) {
            snprintf(err, sizeof err, "%s", ct_last_error());
            failed_at = i;
            break;
        }
        ct_loss_describe(l, got, sizeof got);
        ct_loss_free(l);
        if (strcmp(got, firsts[i])) failed_at = i;
    }
    ct_loss *bad = failed_at < 0 ? ct_loss_parse("focal:gamma=1,5") : NULL; /* "1,5" is not a number here either */
    const char *bad_msg = ct_last_error();
    int bad_refused = !bad && strstr(bad_msg, "not key=value");
    ct_loss_free(bad);
    /* the program's locale is still the caller's */
    snprintf(probe, sizeof probe, "%.2f", 0.5);
    const int kept = !strcmp(probe, "0,50");
    back_to_c_locale();
    CHECK(ok, "the test locale does not write 0.5 as \"0,50\"");
    CHECK(failed_at < 0, "in a decimal-comma locale \"%s\" gave \"%s\" (%s), want \"%s\"",
          failed_at >= 0 ? specs[failed_at] : "", got, err, failed_at >= 0 ? firsts[failed_at] : "");
    CHECK(bad_refused, "focal:gamma=1,5 in a decimal-comma locale: %s", bad ? "parsed" : bad_msg);
    CHECK(kept, "ct_loss_parse/describe changed the program's locale");
}

/* ---- losses/README.md, "Adding a loss", at run time: the snippet as printed there ------------ */
/* soft_margin: cross-entropy after subtracting a margin m from the true logit (m = 0: CE) */
static ct_tensor *soft_margin(ct_tape *tape, ct_tensor *z, ct_labels y, const double *params) {
    ct_tensor *margin = ct_mul_scalar(tape, ct_one_hot(tape, y.data, y.n, z->shape[1]), params[0]);
    return ct_cross_entropy(tape, ct_sub(tape, z, margin), y, CT_CE());
}
static const ct_loss_def soft_margin_def = {
    .name = "soft_margin",
    .formula = "CE of z − m·one_hot(y)",
    .input = "logits (N, C)",
    .params = {{"m", "1", "[0, inf)", "margin subtracted from the true logit"}},
    .fn = soft_margin,
};

CT_TEST(loss_spec, readme_run_time_example_registers_and_computes) {
    if (ct_loss_register(&soft_margin_def) != CT_OK)   /* a taken name, a bad range or default */
        fprintf(stderr, "%s\n", ct_last_error());
    ct_loss *loss = ct_loss_parse("soft_margin:m=0.5");
    CHECK(loss, "%s", ct_last_error());
    char text[256];
    ct_loss_describe(loss, text, sizeof text);
    CHECK(!strcmp(text, "soft_margin:m=0.5"), "described as %s", text);
    /* the value: cross-entropy of z with 0.5 taken off each row's true logit */
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(2, 3)), *shifted = ct_tape_zeros(tape, CT_SHAPE(2, 3));
    const ct_real v[6] = {1, 2, 0.5f, -1, 0, 3};
    int y[2] = {1, 2};
    for (int k = 0; k < 6; k++) z->data[k] = shifted->data[k] = v[k];
    shifted->data[1] -= 0.5f, shifted->data[5] -= 0.5f;
    ct_tensor *got = ct_loss_apply(tape, loss, z, CT_LABELS(y, 2));
    ct_tensor *want = ct_cross_entropy(tape, shifted, CT_LABELS(y, 2), CT_CE());
    CHECK_NEAR(got->data[0], want->data[0], 1e-6, 1e-6);
    ct_tape_free(tape);
    ct_loss_free(loss);
    CHECK(ct_loss_parse("soft_margin:m=-1") == NULL && strstr(ct_last_error(), "out of range [0, inf)"), "%s",
          ct_last_error());
}
