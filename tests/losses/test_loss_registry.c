/* tests/losses/test_loss_registry.c — the loss registry: parsing, defaults, round trips through
 * ct_loss_describe, every error message, ct_loss_list, and that a parsed loss computes the same
 * value as the loss function it names. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* ct_loss_parse(spec) must fail with a message containing every one of parts[] */
static int parse_fails_with(const char *spec, const char *const *parts, int n_parts, char *got, size_t len) {
    ct_loss *l = ct_loss_parse(spec);
    if (l) {
        ct_loss_free(l);
        snprintf(got, len, "(parsed)");
        return 0;
    }
    snprintf(got, len, "%s", ct_last_error());
    for (int i = 0; i < n_parts; i++)
        if (!strstr(got, parts[i])) return 0;
    return 1;
}
#define EXPECT_PARSE_ERROR(spec, ...)                                                              \
    do {                                                                                           \
        const char *parts_[] = {__VA_ARGS__};                                                      \
        char got_[2048];                                                                           \
        CHECK(parse_fails_with(spec, parts_, (int)(sizeof parts_ / sizeof parts_[0]), got_, sizeof got_), \
              "spec \"%s\": got \"%s\"", spec, got_);                                              \
    } while (0)

CT_TEST(loss_registry, every_loss_parses_with_its_defaults_and_round_trips) {
    CHECK(ct_loss_count() >= 1);
    for (int i = 0; i < ct_loss_count(); i++) {
        const char *name = ct_loss_name_at(i);
        ct_loss *l = ct_loss_parse(name);
        CHECK(l, "%s: %s", name, ct_last_error());
        CHECK(!strcmp(ct_loss_name(l), name));
        char a[1024], b[1024];
        ct_loss_describe(l, a, sizeof a);
        ct_loss *again = ct_loss_parse(a);
        CHECK(again, "describe of %s gave \"%s\", which does not parse: %s", name, a, ct_last_error());
        ct_loss_describe(again, b, sizeof b);
        CHECK(!strcmp(a, b), "%s: \"%s\" then \"%s\"", name, a, b);
        ct_loss_free(l);
        ct_loss_free(again);
    }
    CHECK(ct_loss_name_at(-1) == NULL && ct_loss_name_at(ct_loss_count()) == NULL);
}

CT_TEST(loss_registry, describe_shows_every_resolved_value) {
    ct_loss *l = ct_loss_parse("cross_entropy:label_smoothing=0.1,reduction=sum");
    CHECK(l, "%s", ct_last_error());
    char buf[512];
    ct_loss_describe(l, buf, sizeof buf);
    CHECK(!strcmp(buf, "cross_entropy:reduction=sum,label_smoothing=0.1,ignore_index=-100,weight=[]"), "got %s",
          buf);
    ct_loss_free(l);
    l = ct_loss_parse("cross_entropy: weight = [1, 0.5,2] , ignore_index=3");
    CHECK(l, "%s", ct_last_error());
    ct_loss_describe(l, buf, sizeof buf);
    CHECK(!strcmp(buf, "cross_entropy:reduction=mean,label_smoothing=0,ignore_index=3,weight=[1,0.5,2]"), "got %s",
          buf);
    /* a short buffer is truncated and terminated */
    char small[8];
    ct_loss_describe(l, small, sizeof small);
    CHECK(strlen(small) == 7 && !strncmp(small, "cross_e", 7), "got %s", small);
    ct_loss_free(l);
    ct_loss_free(NULL);
}

CT_TEST(loss_registry, errors_name_the_problem) {
    EXPECT_PARSE_ERROR("focla:gamma=2", "unknown loss 'focla'", "known losses:", "cross_entropy");
    EXPECT_PARSE_ERROR("", "unknown loss ''", "cross_entropy");
    EXPECT_PARSE_ERROR("cross_entropy:smoothing=0.1", "cross_entropy has no parameter 'smoothing'",
                       "label_smoothing", "ignore_index", "weight", "reduction");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=abc", "cross_entropy", "label_smoothing=abc", "not a number");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=0.1x", "label_smoothing=0.1x", "not a number");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=nan", "label_smoothing=nan", "not a number");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=1e999", "not a number");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=1.5", "cross_entropy", "label_smoothing=1.5",
                       "out of range [0, 1]");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=-0.1", "label_smoothing=-0.1", "out of range");
    EXPECT_PARSE_ERROR("cross_entropy:reduction=avg", "reduction=avg", "not one of mean|sum|none");
    EXPECT_PARSE_ERROR("cross_entropy:ignore_index=2.5", "ignore_index=2.5", "not an integer");
    EXPECT_PARSE_ERROR("cross_entropy:weight=[1,x]", "weight", "value 1 'x'", "not a number");
    EXPECT_PARSE_ERROR("cross_entropy:weight=[1,-2]", "weight", "value 1 = -2", "out of range");
    EXPECT_PARSE_ERROR("cross_entropy:weight=[1,2", "no closing ']'");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing", "'label_smoothing' is not key=value");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=", "label_smoothing has no value");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=0.1,label_smoothing=0.2", "label_smoothing is given twice");
    EXPECT_PARSE_ERROR("cross_entropy:label_smoothing=0.1,", "trailing ','");
    CHECK(ct_loss_parse(NULL) == NULL && strstr(ct_last_error(), "NULL"));
}

CT_TEST(loss_registry, list_mentions_every_loss_and_parameter) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f);
    ct_loss_list(f);
    fclose(f);
    for (int i = 0; i < ct_loss_count(); i++) {
        char line[128];
        snprintf(line, sizeof line, "%s\n", ct_loss_name_at(i));
        int found = !strncmp(text, line, strlen(line)) || strstr(text, line) != NULL;
        if (!found) {
            snprintf(line, sizeof line, "%s ", ct_loss_name_at(i)); /* with a note after the name */
            found = strstr(text, line) != NULL;
        }
        if (!found) free(text);
        CHECK(found, "ct_loss_list does not mention %s", ct_loss_name_at(i));
    }
    int ok = strstr(text, "label_smoothing") && strstr(text, "[0, 1]");
    free(text);
    CHECK(ok, "the parameters and their ranges are listed");
}

CT_TEST(loss_registry, bind_is_a_no_op_without_state) {
    ct_loss *l = ct_loss_parse("cross_entropy");
    CHECK(l);
    CHECK(ct_loss_bind(l, NULL, NULL, 10, 4) == CT_OK);
    ct_loss_free(l);
}

/* The parsed loss and the direct call give the same value and gradient. */
CT_TEST(loss_registry, parsed_cross_entropy_matches_the_function) {
    enum { N = 5, C = 3 };
    const int y[N] = {0, 2, 1, 1, 2};
    ct_real w[C] = {1, 0.5, 2};
    ct_loss *l = ct_loss_parse("cross_entropy:label_smoothing=0.2,weight=[1,0.5,2],reduction=sum");
    CHECK(l, "%s", ct_last_error());
    ct_tape *ta = ct_tape_new(), *tb = ct_tape_new();
    ct_tensor *za = ct_tape_zeros(ta, CT_SHAPE(N, C)), *zb = ct_tape_zeros(tb, CT_SHAPE(N, C));
    for (int i = 0; i < N * C; i++) za->data[i] = zb->data[i] = (ct_real)(0.3 * i - 2);
    ct_tape_requires_grad(ta, za);
    ct_tape_requires_grad(tb, zb);
    ct_tensor *a = ct_loss_apply(ta, l, za, CT_LABELS(y, N));
    ct_tensor *b = ct_cross_entropy(tb, zb, CT_LABELS(y, N),
                                    CT_CE(.label_smoothing = 0.2, .weight = w, .reduction = CT_REDUCTION_SUM));
    CHECK(a->data[0] == b->data[0], "%g vs %g", (double)a->data[0], (double)b->data[0]);
    ct_backward(ta, a);
    ct_backward(tb, b);
    for (int i = 0; i < N * C; i++) CHECK(za->grad[i] == zb->grad[i]);
    ct_tape_free(ta);
    ct_tape_free(tb);
    ct_loss_free(l);
}
