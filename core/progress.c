/* core/progress.c — the training progress line: a live bar on a terminal, log lines otherwise. */
#include "core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ct_progress {
    char label[64];
    int total;
    int is_tty;
    int log_every;   /* plain mode: print every log_every steps and at the end */
    double start, last_draw;
    int first_step;    /* the first step reported (a resumed epoch starts mid-way), for the ETA */
    double first_time;
};

double ct_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ct_progress *ct_progress_new(const char *label, int total_steps) {
    ct_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total_steps;
    p->is_tty = isatty(fileno(stdout));
    p->log_every = total_steps >= 10 ? total_steps / 10 : 1;
    p->start = ct_time_now();
    p->last_draw = -1;
    p->first_step = -1;
    return p;
}

void ct_progress_update(ct_progress *p, int step, const char *fmt, ...) {
    if (!p) return;
    char status[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof status, fmt, ap);
    va_end(ap);
    double now = ct_time_now();
    if (p->first_step < 0) p->first_step = step, p->first_time = now;
    /* the time left at the rate of the steps seen since the first: (total − step)·elapsed/steps */
    char eta[32] = "";
    if (step > p->first_step && step < p->total) {
        const double left = (now - p->first_time) / (step - p->first_step) * (p->total - step);
        if (left < 3600) snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
        else snprintf(eta, sizeof eta, "  ETA %dh%02d", (int)(left / 3600), (int)left % 3600 / 60);
    }
    if (p->is_tty) {
        /* redraw at most 20 times a second, and always on the last step */
        if (step != p->total && now - p->last_draw < 0.05) return;
        p->last_draw = now;
        enum { WIDTH = 30 };
        int filled = p->total > 0 ? (int)((long long)WIDTH * step / p->total) : WIDTH;
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = 0;
        printf("\r%s [%s] %d/%d %s  %.1fs%s\033[K", p->label, bar, step, p->total, status, now - p->start, eta);
        fflush(stdout);
    } else if (step % p->log_every == 0 || step == p->total) {
        printf("%s step %d/%d %s  %.1fs%s\n", p->label, step, p->total, status, now - p->start, eta);
        fflush(stdout);
    }
}

void ct_progress_done(ct_progress *p, const char *fmt, ...) {
    if (!p) return;
    char status[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof status, fmt, ap);
    va_end(ap);
    if (p->is_tty) printf("\n");
    if (status[0]) printf("%s %s\n", p->label, status);
    fflush(stdout);
    free(p);
}
