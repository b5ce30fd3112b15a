/* core/error.c — the two kinds of error: fatal programmer errors and recoverable runtime errors. */
#include "tensor.h"

#include <stdarg.h>
#include <stdlib.h>

static _Thread_local char last_error[1024] = "no error";
static _Thread_local const char *site_file = NULL;
static _Thread_local int site_line = 0;

const char *ct_last_error(void) { return last_error; }

int ct_set_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

ct_site ct_site_push(const char *file, int line) {
    ct_site previous = {site_file, site_line};
    site_file = file;
    site_line = line;
    return previous;
}

void ct_site_pop(ct_site previous) {
    site_file = previous.file;
    site_line = previous.line;
}

_Noreturn void ct_fatal(const char *op, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (site_file)
        fprintf(stderr, "ctape: %s: %s (called at %s:%d)\n", op, msg, site_file, site_line);
    else
        fprintf(stderr, "ctape: %s: %s\n", op, msg);
    fflush(stderr);
    abort();
}
