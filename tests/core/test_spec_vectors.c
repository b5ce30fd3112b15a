/* tests/core/test_spec_vectors.c — core/spec.h's long lists (CT_SPEC_VECTOR: one value per class),
 * empty lists where the default is empty, the pool every list of a spec shares, and
 * ct_spec_check_entry on entries made at run time. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

static const ct_spec_entry table[] = {
    {"ldam", "per-class margins",
     {{"counts", CT_SPEC_VECTOR, "", "[1, inf)", "samples per class"},
      {"steps", CT_SPEC_LIST, "[]", "[0, inf)", "milestones"},
      {"widths", CT_SPEC_LIST, "[4]", "[1, 64]", "at least one"},
      {"prior", CT_SPEC_VECTOR, "", "(0, 1]", "class priors"}}},
};

/* "name:key=[v,v,...]" with n values v */
static char *spec_of(const char *head, int n, const char *value, const char *tail) {
    size_t len = strlen(head) + strlen(tail) + (size_t)n * (strlen(value) + 1) + 4;
    char *s = malloc(len), *p = s;
    p += sprintf(p, "%s[", head);
    for (int i = 0; i < n; i++) p += sprintf(p, "%s%s", i ? "," : "", value);
    sprintf(p, "]%s", tail);
    return s;
}

CT_TEST(spec, vectors_take_a_value_per_class_lists_stay_short) {
    ct_spec s;
    char *text = spec_of("ldam:counts=", CT_SPEC_MAX_VECTOR, "7", "");
    CHECK(ct_spec_parse("loss", text, table, 1, &s) == CT_OK, "%s", ct_last_error());
    const double *v;
    CHECK(ct_spec_list(&s, "counts", &v) == CT_SPEC_MAX_VECTOR && v[0] == 7 && v[CT_SPEC_MAX_VECTOR - 1] == 7);
    free(text);
    text = spec_of("ldam:counts=", CT_SPEC_MAX_VECTOR + 1, "7", "");
    CHECK(ct_spec_parse("loss", text, table, 1, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "loss ldam: counts has more than 1024 values"),
          "%s", ct_last_error());
    free(text);
    text = spec_of("ldam:steps=", CT_SPEC_MAX_VALUES + 1, "1", "");
    CHECK(ct_spec_parse("loss", text, table, 1, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "steps has more than 16 values"),
          "%s", ct_last_error());
    free(text);
    /* two vectors of 1024 and the default of widths do not fit the pool every list of a spec shares */
    char *a = spec_of("ldam:counts=", 1024, "3", ",prior="), *b = spec_of(a, 1024, "0.5", "");
    CHECK(ct_spec_parse("loss", b, table, 1, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "its lists hold more than 2048 values together"),
          "%s", ct_last_error());
    free(a), free(b);
    a = spec_of("ldam:counts=", 1000, "3", ",prior="), b = spec_of(a, 1000, "0.5", "");
    CHECK(ct_spec_parse("loss", b, table, 1, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "counts", &v) == 1000 && v[999] == 3 && ct_spec_list(&s, "prior", &v) == 1000 && v[0] == 0.5);
    /* a copy keeps its values */
    ct_spec copy = s;
    memset(&s, 0, sizeof s);
    CHECK(ct_spec_list(&copy, "prior", &v) == 1000 && v[999] == 0.5 && ct_spec_list(&copy, "widths", &v) == 1 && v[0] == 4);
    free(a), free(b);
}

CT_TEST(spec, empty_lists_where_the_default_is_empty) {
    ct_spec s;
    const double *v;
    CHECK(ct_spec_parse("loss", "ldam", table, 1, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "counts", &v) == 0 && v == NULL && ct_spec_list(&s, "steps", &v) == 0);
    CHECK(ct_spec_parse("loss", "ldam:counts=[ ],steps=[]", table, 1, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_given(&s, "counts") && ct_spec_list(&s, "counts", &v) == 0);
    char d[256];
    ct_spec_describe(&s, d, sizeof d);
    CHECK(!strcmp(d, "ldam:counts=[],steps=[],widths=[4],prior=[]"), "described as %s", d);
    CHECK(ct_spec_parse("loss", "ldam:widths=[]", table, 1, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "widths=[] is empty: it needs at least 1 value (at least one)"),
          "%s", ct_last_error());
    CHECK(ct_spec_parse("loss", "ldam:counts=4,2,1,steps=3", table, 1, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "counts", &v) == 3 && v[2] == 1 && ct_spec_list(&s, "steps", &v) == 1 && v[0] == 3);
}

CT_TEST(spec, check_entry_names_the_mistake) {
    const struct {
        ct_spec_entry e;
        const char *expect;
    } cases[] = {
        {{"x", "", {{"a", CT_SPEC_REAL, "1", "[0, 1]", ""}, {"a", CT_SPEC_REAL, "1", "[0, 1]", ""}}},
         "add: x: parameter a is declared twice"},
        {{"x", "", {{"a b", CT_SPEC_REAL, "1", "[0, 1]", ""}}}, "add: x: parameter name \"a b\""},
        {{"x", "", {{"a", CT_SPEC_REAL, "1", "[0, 1", ""}}}, "add: x: a: malformed range \"[0, 1\""},
        {{"x", "", {{"a", CT_SPEC_REAL, "1", "[1, 0]", ""}}}, "malformed range \"[1, 0]\""},
        {{"x", "", {{"a", CT_SPEC_REAL, "1", "[, 1]", ""}}}, "malformed range \"[, 1]\""},
        {{"x", "", {{"a", CT_SPEC_REAL, "1", NULL, ""}}}, "malformed range \"(null)\""},
        {{"x", "", {{"a", CT_SPEC_CHOICE, "u", "u||v", ""}}}, "add: x: a: malformed choices \"u||v\""},
        {{"x", "", {{"a", CT_SPEC_CHOICE, "w", "u|v", ""}}}, "add: default of a: x: a=w is not one of u|v"},
        {{"x", "", {{"a", CT_SPEC_INT, "0.5", "[0, 1]", ""}}}, "add: default of a: x: a=0.5 is not an integer"},
        {{"x", "", {{"a", CT_SPEC_VECTOR, "[1,2,-3]", "[0, 1e9]", ""}}}, "x: a: value 2 = -3 is out of range [0, 1e9]"},
        {{"x", "", {{"a", (ct_spec_kind)7, "1", "[0, 1]", ""}}}, "add: x: a: unknown kind 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(ct_spec_check_entry("add:", &cases[i].e) == CT_ERR_VALUE && strstr(ct_last_error(), cases[i].expect),
              "case %zu: got \"%s\", want \"%s\"", i, ct_last_error(), cases[i].expect);
    CHECK(ct_spec_check_entry("add:", &table[0]) == CT_OK, "%s", ct_last_error());
}
