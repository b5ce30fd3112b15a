/* core/error.c — the two kinds of error: fatal programmer errors and recoverable runtime errors. */
#include "core.h"

#include <stdarg.h>
#include <stdlib.h>

/* The library's precision, checked at link time against every user file (core/core.h). */
#ifdef CT_PRECISION_64
const char ct_library_built_for_float64 = 1;
#else
const char ct_library_built_for_float32 = 1;
#endif

static _Thread_local char last_error[1024] = "no error";
static _Thread_local int error_pending = 0;
static _Thread_local const char *site_file = NULL;
static _Thread_local int site_line = 0;
static ct_fatal_handler fatal_handler = NULL;
static void *fatal_handler_user = NULL;

const char *ct_last_error(void) { return last_error; }

int ct_set_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    error_pending = 1;
    return code;
}

void ct_clear_error(void) {
    if (error_pending) snprintf(last_error, sizeof last_error, "no error");
    error_pending = 0;
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

ct_site ct_site_current(void) { return (ct_site){site_file, site_line}; }

ct_fatal_handler ct_set_fatal_handler(ct_fatal_handler handler, void *user) {
    ct_fatal_handler previous = fatal_handler;
    fatal_handler = handler;
    fatal_handler_user = user;
    return previous;
}

_Noreturn void ct_fatal(const char *op, const char *fmt, ...) {
    char msg[1024], line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (site_file)
        snprintf(line, sizeof line, "ctape: %s: %s (called at %s:%d)", op, msg, site_file, site_line);
    else
        snprintf(line, sizeof line, "ctape: %s: %s", op, msg);
    if (fatal_handler) {
        /* the handler longjmps out of the failed call, which never pops its site */
        site_file = NULL;
        site_line = 0;
        fatal_handler(line, fatal_handler_user);
    }
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    abort();
}
