/* tests/core/test_spec.c — core/spec.h: values and defaults, lists both ways, describe -> parse round
 * trips, and the error messages (unknown names with a suggestion, unknown keys, ranges, kinds). */
#include "../test.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

static const ct_spec_entry table[] = {
    {"mlp", "a multilayer perceptron",
     {{"hidden", CT_SPEC_LIST, "[512,256]", "[1, 65536]", "widths of the hidden layers"},
      {"dropout", CT_SPEC_REAL, "0", "[0, 1)", "dropout after each hidden layer"},
      {"act", CT_SPEC_CHOICE, "relu", "relu|gelu|tanh", "activation"}}},
    {"lenet5", "LeNet-5", {{"width", CT_SPEC_INT, "6", "[1, 1024]", "channels of the first conv"}}},
    {"resnet20", "ResNet-20", {{"width", CT_SPEC_INT, "16", "[1, 1024]", "channels of the first stage"}}},
};
enum { N = sizeof table / sizeof *table };

CT_TEST(spec, defaults_values_and_lists) {
    ct_spec s;
    CHECK(ct_spec_parse("model", "mlp", table, N, &s) == CT_OK, "%s", ct_last_error());
    const double *h;
    CHECK(ct_spec_list(&s, "hidden", &h) == 2 && h[0] == 512 && h[1] == 256, "default list");
    CHECK(ct_spec_num(&s, "dropout") == 0 && ct_spec_num(&s, "act") == 0 && !ct_spec_given(&s, "act"), "defaults");
    /* a trailing list without brackets, then more keys after a bracketed one */
    CHECK(ct_spec_parse("model", "mlp:act=gelu,hidden=1024,512,128", table, N, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "hidden", &h) == 3 && h[2] == 128 && ct_spec_num(&s, "act") == 1, "plain list");
    CHECK(ct_spec_parse("model", "mlp:hidden=[64, 32],dropout=0.25", table, N, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "hidden", &h) == 2 && h[1] == 32 && ct_spec_num(&s, "dropout") == 0.25, "bracket list");
    CHECK(ct_spec_parse("model", "mlp:hidden=100,50,dropout=0.5", table, N, &s) == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_list(&s, "hidden", &h) == 2 && ct_spec_num(&s, "dropout") == 0.5, "plain list then a key");
    CHECK(ct_spec_parse("model", "resnet20:width=32", table, N, &s) == CT_OK && ct_spec_num(&s, "width") == 32, "int");
}

/* the same values in every list of two specs of one entry */
static int same_lists(const ct_spec *a, const ct_spec *b) {
    for (int k = 0; k < CT_SPEC_MAX_PARAMS && a->entry->params[k].key; k++)
        if (a->count[k] != b->count[k] ||
            memcmp(a->values + a->start[k], b->values + b->start[k], (size_t)a->count[k] * sizeof *a->values))
            return 0;
    return 1;
}

CT_TEST(spec, describe_round_trips) {
    const char *specs[] = {"mlp", "mlp:hidden=[7],dropout=0.1,act=tanh", "lenet5:width=12", "mlp:hidden=3,1e-300"};
    for (size_t i = 0; i < 3; i++) {
        ct_spec a, b;
        char da[256], db[256];
        CHECK(ct_spec_parse("model", specs[i], table, N, &a) == CT_OK, "%s: %s", specs[i], ct_last_error());
        ct_spec_describe(&a, da, sizeof da);
        CHECK(ct_spec_parse("model", da, table, N, &b) == CT_OK, "describe gave \"%s\": %s", da, ct_last_error());
        ct_spec_describe(&b, db, sizeof db);
        CHECK(!strcmp(da, db) && !memcmp(a.num, b.num, sizeof a.num) && same_lists(&a, &b),
              "\"%s\" -> \"%s\" -> \"%s\"", specs[i], da, db);
    }
    ct_spec s;
    char d[256];
    CHECK(ct_spec_parse("model", "mlp:dropout=0.1", table, N, &s) == CT_OK, "%s", ct_last_error());
    ct_spec_describe(&s, d, sizeof d);
    CHECK(!strcmp(d, "mlp:hidden=[512,256],dropout=0.1,act=relu"), "describe: %s", d);
}

CT_TEST(spec, errors_name_the_mistake) {
    const struct {
        const char *text, *expect;
    } bad[] = {
        {"mpl", "unknown model 'mpl' (did you mean mlp?); known: mlp, lenet5, resnet20"},
        {"transformer", "unknown model 'transformer'; known:"},
        {"mlp:hiden=3", "mlp has no parameter 'hiden' (did you mean hidden?); its parameters: hidden, dropout, act"},
        {"mlp:dropout=1", "dropout=1 is out of range [0, 1)"},
        {"mlp:dropout=abc", "dropout=abc is not a number"},
        {"mlp:dropout=0.1,dropout=0.2", "dropout is given twice"},
        {"mlp:act=swish", "act=swish is not one of relu|gelu|tanh"},
        {"lenet5:width=2.5", "width=2.5 is not an integer"},
        {"mlp:hidden=[3,0]", "hidden: value 1 = 0 is out of range [1, 65536]"},
        {"mlp:hidden=[3", "has no closing ']'"},
        {"mlp:", "nothing after ':'"},
        {"mlp:dropout=0.1,", "trailing ','"},
        {"mlp:dropout", "'dropout' is not key=value"},
        {"mlp:dropout=0.1,0.2", "dropout=0.1,0.2: one value expected"},
        {"mlp:dropout=", "dropout has no value"},
        {"mlp:dropout=inf", "dropout=inf is not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ct_spec s;
        CHECK(ct_spec_parse("model", bad[i].text, table, N, &s) == CT_ERR_VALUE, "\"%s\" was accepted", bad[i].text);
        CHECK(strstr(ct_last_error(), bad[i].expect) != NULL, "\"%s\": message \"%s\", want \"%s\"", bad[i].text,
              ct_last_error(), bad[i].expect);
        CHECK(s.entry == NULL, "a failed parse left an entry");
    }
}

/* Numbers read and written with '.' under a decimal-comma locale. */
CT_TEST(spec, locale_independent) {
    char why[600];
    const char *comma = ct_test_comma_locale(why, sizeof why);
    if (!comma) CT_SKIP("%s", why);
    char *was = strdup(setlocale(LC_NUMERIC, NULL));
    setlocale(LC_NUMERIC, comma);
    ct_spec s;
    char d[256];
    const int status = ct_spec_parse("model", "mlp:dropout=0.25", table, N, &s);
    if (status == CT_OK) ct_spec_describe(&s, d, sizeof d);
    setlocale(LC_NUMERIC, was);
    free(was);
    CHECK(status == CT_OK, "%s", ct_last_error());
    CHECK(ct_spec_num(&s, "dropout") == 0.25 && strstr(d, "dropout=0.25"), "read %g, described %s",
          ct_spec_num(&s, "dropout"), d);
}

CT_TEST(spec, nearest_by_edit_distance) {
    const char *words[] = {"sgd", "adam", "adamw", "lion", "rmsprop"};
    CHECK(!strcmp(ct_spec_nearest("adamm", words, 5), "adam") || !strcmp(ct_spec_nearest("adamm", words, 5), "adamw"),
          "adamm");
    CHECK(!strcmp(ct_spec_nearest("rmsrop", words, 5), "rmsprop"), "rmsrop");
    CHECK(ct_spec_nearest("transformer", words, 5) == NULL, "a far word got a suggestion");
}
