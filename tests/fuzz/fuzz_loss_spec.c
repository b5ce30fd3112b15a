/* tests/fuzz/fuzz_loss_spec.c — loss spec strings through ct_loss_parse; a spec that parses must
 * round-trip: describe -> parse -> describe gives the same text (abort otherwise). The input is
 * the spec (cut at its first NUL byte). */
#include "fuzz.h"

FUZZ_SINGLE_THREAD

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *spec = malloc(size + 1);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = 0;
    ct_loss *loss = ct_loss_parse(spec);
    if (loss) {
        char first[4096], second[4096];
        ct_loss_describe(loss, first, sizeof first);
        ct_loss *again = ct_loss_parse(first);
        if (!again) {
            fprintf(stderr, "fuzz_loss_spec: \"%s\" parsed, its description \"%s\" does not: %s\n", spec, first,
                    ct_last_error());
            abort();
        }
        ct_loss_describe(again, second, sizeof second);
        if (strcmp(first, second)) {
            fprintf(stderr, "fuzz_loss_spec: \"%s\" describes as \"%s\", which describes as \"%s\"\n", spec, first,
                    second);
            abort();
        }
        ct_loss_free(again);
        ct_loss_free(loss);
    }
    free(spec);
    return 0;
}
