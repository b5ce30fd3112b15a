/* core/plot.c — PNG charts drawn into an RGB canvas: lines, rectangles, bitmap text, axes with
 * "nice" ticks, then encoded by stb_image_write (Debian's libstb) and written atomically. */
#include "plot.h"
#include "atomic_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

/* stb_easy_font is header-only with static functions this file does not all use, and takes char *. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

enum { BLACK = 0x000000, WHITE = 0xffffff, GRID = 0xe6e6e6, GREY = 0x808080, RED = 0xd62728 };
enum { TEXT_SCALE = 2, LINE_HEIGHT = 9 }; /* the font's glyphs fit 9 rows at scale 1 */

unsigned ct_plot_color(int i) {
    static const unsigned tab10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    return tab10[((i % 10) + 10) % 10];
}

/* ---- canvas --------------------------------------------------------------------------------- */
typedef struct {
    int w, h;
    unsigned char *rgb;
} canvas;

static int canvas_new(canvas *c, int w, int h, const char *path) {
    c->w = w, c->h = h;
    c->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!c->rgb) return ct_set_error(CT_ERR_MEMORY, "%s: no memory for a %d x %d picture", path, w, h);
    memset(c->rgb, 255, (size_t)w * (size_t)h * 3);
    return CT_OK;
}

static void put(canvas *c, int x, int y, unsigned color) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (unsigned char)(color >> 16), p[1] = (unsigned char)(color >> 8), p[2] = (unsigned char)color;
}

static void fill_rect(canvas *c, int x0, int y0, int x1, int y1, unsigned color) { /* [x0, x1) × [y0, y1) */
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < c->w; x++) put(c, x, y, color);
}

static void outline_rect(canvas *c, int x0, int y0, int x1, int y1, unsigned color) {
    fill_rect(c, x0, y0, x1, y0 + 1, color), fill_rect(c, x0, y1 - 1, x1, y1, color);
    fill_rect(c, x0, y0, x0 + 1, y1, color), fill_rect(c, x1 - 1, y0, x1, y1, color);
}

/* A segment `thick` pixels wide (Bresenham, a thick × thick square per step); dashed: 8 on, 6 off,
 * counted along the segment from *phase, which carries the pattern across a polyline's segments. */
static void line(canvas *c, int x0, int y0, int x1, int y1, unsigned color, int thick, int dashed, int *phase) {
    const int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy, count = phase ? *phase : 0;
    for (;;) {
        if (!dashed || count % 14 < 8) fill_rect(c, x0 - thick / 2, y0 - thick / 2, x0 - thick / 2 + thick, y0 - thick / 2 + thick, color);
        count++;
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
    if (phase) *phase = count;
}

static void disc(canvas *c, int cx, int cy, int r, unsigned color) {
    for (int y = -r; y <= r; y++)
        for (int x = -r; x <= r; x++)
            if (x * x + y * y <= r * r) put(c, cx + x, cy + y, color);
}

/* ---- text ----------------------------------------------------------------------------------- */
static int text_width(const char *s, int scale) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    return stb_easy_font_width(buf) * scale;
}

/* Draws s with its top-left corner at (x, y); vertical: rotated a quarter turn anticlockwise (a y
 * axis label read from the bottom up), (x, y) then being its bottom-left corner. */
static void text_at(canvas *c, int x, int y, const char *s, unsigned color, int scale, int vertical) {
    static _Thread_local float quads[4 * 4 * 1000]; /* four vertices of four floats (x, y, z, colour) per quad */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    const int n = stb_easy_font_print(0, 0, buf, NULL, quads, (int)sizeof quads);
    for (int q = 0; q < n; q++) {
        const float *v = quads + 16 * q; /* vertices 0 and 2 are opposite corners */
        const int qx0 = (int)v[0] * scale, qy0 = (int)v[1] * scale, qx1 = (int)v[8] * scale, qy1 = (int)v[9] * scale;
        if (!vertical) fill_rect(c, x + qx0, y + qy0, x + qx1, y + qy1, color);
        else fill_rect(c, x + qy0, y - qx1, x + qy1, y - qx0, color);
    }
}

enum { LEFT, CENTRE, RIGHT };
static void text_aligned(canvas *c, int x, int y, const char *s, unsigned color, int align) {
    const int w = text_width(s, TEXT_SCALE);
    text_at(c, align == LEFT ? x : align == CENTRE ? x - w / 2 : x - w, y, s, color, TEXT_SCALE, 0);
}

/* A number as a tick label: `decimals` digits after the point, or the exponent form for very large
 * and very small magnitudes; '.' as the decimal point in any locale. */
static const char *number(double v, int decimals, char buf[32]) {
    if (v != 0 && (fabs(v) >= 1e6 || fabs(v) < 1e-4)) snprintf(buf, 32, "%.2g", v);
    else snprintf(buf, 32, "%.*f", decimals, fabs(v) < 1e-12 ? 0.0 : v);
    for (char *p = buf; *p; p++)
        if (*p == ',') *p = '.';
    return buf;
}

/* ---- axes ----------------------------------------------------------------------------------- */
typedef struct {
    int x0, y0, x1, y1; /* the plot area in pixels (y0 at the top) */
    double xmin, xmax, ymin, ymax;
    int log_y;
    int grid;           /* light grid lines at the ticks */
    int integer_x;      /* every x is a whole number (epochs, classes): no ticks between them */
} frame;

static int px(const frame *f, double x) { return f->x0 + (int)lround((x - f->xmin) / (f->xmax - f->xmin) * (f->x1 - f->x0)); }
static int py(const frame *f, double y) {
    if (f->log_y) y = log10(y);
    return f->y1 - (int)lround((y - f->ymin) / (f->ymax - f->ymin) * (f->y1 - f->y0));
}

/* A step of 1, 2 or 5 times a power of ten, about range / 5. */
static double nice_step(double range) {
    const double raw = range / 5, power = pow(10, floor(log10(raw))), m = raw / power;
    return power * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

static int step_decimals(double step) {
    int d = 0;
    while (d < 6 && fabs(step * pow(10, d) - round(step * pow(10, d))) > 1e-6 * step * pow(10, d)) d++;
    return d;
}

/* Widens [lo, hi] when it is empty or not finite. */
static void fix_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-12 * fmax(1, fabs(*hi))) {
        const double pad = fabs(*lo) > 0 ? 0.05 * fabs(*lo) : 0.5;
        *lo -= pad, *hi += pad;
    }
}

/* Grid lines, ticks with numbers, the frame, the title and the axis labels. With ticks_x (or _y) 0
 * that axis gets no numbers (a heat map labels its own cells). */
static void draw_axes(canvas *c, const frame *f, const ct_plot_opts *o, int ticks_x, int ticks_y) {
    char buf[32];
    if (ticks_y && f->log_y) { /* powers of ten, and 2 and 5 times them over fewer than three decades */
        const int fine = f->ymax - f->ymin < 3;
        for (double e = floor(f->ymin); e <= f->ymax + 1e-9; e++)
            for (int m = 1; m <= 5; m += fine ? (m == 1 ? 1 : 3) : 5) {
                const double v = m * pow(10, e), lv = log10(v);
                if (lv < f->ymin - 1e-9 || lv > f->ymax + 1e-9) continue;
                const int y = py(f, v);
                if (f->grid) fill_rect(c, f->x0, y, f->x1, y + 1, GRID);
                fill_rect(c, f->x0 - 5, y, f->x0, y + 1, BLACK);
                text_aligned(c, f->x0 - 8, y - LINE_HEIGHT * TEXT_SCALE / 2 + 2, number(v, e < 0 ? (int)-e : 0, buf),
                             BLACK, RIGHT);
            }
    } else if (ticks_y) {
        const double step = nice_step(f->ymax - f->ymin);
        for (double v = ceil(f->ymin / step - 1e-9) * step; v <= f->ymax + 1e-9 * step; v += step) {
            const int y = py(f, v);
            if (f->grid) fill_rect(c, f->x0, y, f->x1, y + 1, GRID);
            fill_rect(c, f->x0 - 5, y, f->x0, y + 1, BLACK);
            text_aligned(c, f->x0 - 8, y - LINE_HEIGHT * TEXT_SCALE / 2 + 2, number(v, step_decimals(step), buf), BLACK, RIGHT);
        }
    }
    if (ticks_x) {
        const double step = f->integer_x ? fmax(1, nice_step(f->xmax - f->xmin)) : nice_step(f->xmax - f->xmin);
        for (double v = ceil(f->xmin / step - 1e-9) * step; v <= f->xmax + 1e-9 * step; v += step) {
            const int x = px(f, v);
            if (f->grid) fill_rect(c, x, f->y0, x + 1, f->y1, GRID);
            fill_rect(c, x, f->y1, x + 1, f->y1 + 5, BLACK);
            text_aligned(c, x, f->y1 + 9, number(v, step_decimals(step), buf), BLACK, CENTRE);
        }
    }
    outline_rect(c, f->x0 - 1, f->y0 - 1, f->x1 + 2, f->y1 + 2, BLACK);
    if (o->title) text_aligned(c, (f->x0 + f->x1) / 2, 10, o->title, BLACK, CENTRE);
    if (o->x_label) text_aligned(c, (f->x0 + f->x1) / 2, c->h - LINE_HEIGHT * TEXT_SCALE - 4, o->x_label, BLACK, CENTRE);
    if (o->y_label) {
        const int w = text_width(o->y_label, TEXT_SCALE);
        text_at(c, 6, (f->y0 + f->y1) / 2 + w / 2, o->y_label, BLACK, TEXT_SCALE, 1);
    }
}

/* The plot area inside a w × h picture, leaving room for the title, labels and tick numbers. */
static frame frame_for(const ct_plot_opts *o, int w, int h) {
    frame f = {.grid = 1};
    f.x0 = (o->y_label ? 32 : 12) + 86, f.x1 = w - 30;
    f.y0 = o->title ? 40 : 16, f.y1 = h - (o->x_label ? 62 : 40);
    return f;
}

/* Pixels in [x0, x1) × [y0, y1) that are neither background nor grid: what a legend there would hide. */
static long ink(const canvas *c, int x0, int y0, int x1, int y1) {
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < c->w; x++) {
            const unsigned char *q = c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
            const unsigned v = (unsigned)(q[0] << 16 | q[1] << 8 | q[2]);
            n += v != WHITE && v != GRID;
        }
    return n;
}

/* Points of the series inside [x0, x1) × [y0, y1) (pixels). */
static long points_in(const frame *f, const ct_plot_series *s, int n, int x0, int y0, int x1, int y1) {
    long count = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k].n; i++) {
            const double x = s[k].x ? s[k].x[i] : i + 1, y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            const int X = px(f, x), Y = py(f, y);
            count += X >= x0 && X < x1 && Y >= y0 && Y < y1;
        }
    return count;
}

enum { LEGEND_TOP_RIGHT, LEGEND_LEAST_INK, LEGEND_FEWEST_POINTS };

/* Legend in a corner of the plot area: a swatch (dashed where the series is) and the label. The
 * corner: the top right, or the one that hides the fewest drawn pixels (a chart on white) or the
 * fewest points of the series (over a contour map), the top right first on a tie. */
static void draw_legend_in(canvas *c, const frame *f, const ct_plot_series *s, int n, int placement) {
    const int choose_corner = placement != LEGEND_TOP_RIGHT;
    int rows = 0, width = 0;
    for (int i = 0; i < n; i++)
        if (s[i].label) rows++, width = s[i].label && text_width(s[i].label, TEXT_SCALE) > width ? text_width(s[i].label, TEXT_SCALE) : width;
    if (!rows) return;
    const int row_h = LINE_HEIGHT * TEXT_SCALE + 4, w = width + 44, h = rows * row_h + 8;
    int x1 = f->x1 - 8, x0 = x1 - w, y0 = f->y0 + 8;
    long least = -1;
    for (int corner = 0; choose_corner && corner < 4; corner++) { /* top right, bottom right, top left, bottom left */
        const int cx0 = corner < 2 ? f->x1 - 8 - w : f->x0 + 8, cy0 = corner % 2 ? f->y1 - 8 - h : f->y0 + 8;
        const long hidden = placement == LEGEND_LEAST_INK ? ink(c, cx0, cy0, cx0 + w, cy0 + h)
                                                          : points_in(f, s, n, cx0, cy0, cx0 + w, cy0 + h);
        if (least < 0 || hidden < least) least = hidden, x0 = cx0, x1 = cx0 + w, y0 = cy0;
    }
    fill_rect(c, x0, y0, x1, y0 + rows * row_h + 8, WHITE);
    outline_rect(c, x0, y0, x1, y0 + rows * row_h + 8, GREY);
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i].label) continue;
        const int y = y0 + 4 + r * row_h, mid = y + row_h / 2 - 2;
        const unsigned color = ct_plot_color(s[i].color >= 0 ? s[i].color : i);
        line(c, x0 + 6, mid, x0 + 32, mid, color, 3, s[i].dashed, NULL);
        text_at(c, x0 + 38, y + 2, s[i].label, BLACK, TEXT_SCALE, 0);
        r++;
    }
}

static void draw_legend(canvas *c, const frame *f, const ct_plot_series *s, int n) {
    draw_legend_in(c, f, s, n, LEGEND_TOP_RIGHT);
}

/* Polyline of a series; a point that is not finite (or not positive on a log axis) breaks it. */
static void draw_series(canvas *c, const frame *f, const ct_plot_series *s, unsigned color, int thick) {
    int have = 0, lx = 0, ly = 0, phase = 0;
    for (int i = 0; i < s->n; i++) {
        const double x = s->x ? s->x[i] : i + 1, y = s->y[i];
        if (!isfinite(x) || !isfinite(y) || (f->log_y && y <= 0)) {
            have = 0;
            continue;
        }
        const int X = px(f, x), Y = py(f, y);
        if (have) line(c, lx, ly, X, Y, color, thick, s->dashed, &phase);
        else if (s->n == 1 || (i + 1 < s->n && !isfinite(s->y[i + 1]))) disc(c, X, Y, 3, color); /* a lone point */
        lx = X, ly = Y, have = 1;
    }
}

/* ---- writing -------------------------------------------------------------------------------- */
typedef struct {
    unsigned char *bytes;
    size_t len, cap;
    int failed;
} png_buffer;

/* stb_image_write hands the encoded PNG over in pieces: gather them in memory. */
static void gather(void *context, void *data, int size) {
    png_buffer *b = context;
    if (b->failed || size <= 0) return;
    if (b->len + (size_t)size > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1 << 16;
        while (cap < b->len + (size_t)size) cap *= 2;
        unsigned char *grown = realloc(b->bytes, cap);
        if (!grown) return (void)(b->failed = 1);
        b->bytes = grown, b->cap = cap;
    }
    memcpy(b->bytes + b->len, data, (size_t)size);
    b->len += (size_t)size;
}

static int put_png(int fd, void *ctx) {
    const png_buffer *b = ctx;
    return ct_write_all(fd, b->bytes, b->len);
}

/* The canvas as a PNG at path, written whole or not at all (core/atomic_file.h). */
static int write_png(canvas *c, const char *path) {
    png_buffer b = {0};
    const int encoded = stbi_write_png_to_func(gather, &b, c->w, c->h, 3, c->rgb, c->w * 3);
    free(c->rgb);
    c->rgb = NULL;
    int status = CT_OK;
    if (!encoded || b.failed) status = ct_set_error(CT_ERR_MEMORY, "%s: out of memory encoding the picture", path);
    else status = ct_atomic_write_file(path, put_png, &b);
    free(b.bytes);
    return status;
}

static void check_common(const char *op, const char *path, ct_plot_opts *o) {
    CT_CHECK(path && *path, op, "path is NULL or empty");
    if (o->width == 0 && o->height == 0) o->width = 640, o->height = 420;
    CT_CHECK(o->width >= 200 && o->height >= 150 && o->width <= 8192 && o->height <= 8192, op,
             "picture size %d x %d: give 200..8192 x 150..8192 (or 0 x 0 for 640 x 420)", o->width, o->height);
}

/* ---- line charts ---------------------------------------------------------------------------- */
int ct_plot_lines(const char *path, const ct_plot_series *series, int n, ct_plot_opts o) {
    static const char *op = "ct_plot_lines";
    check_common(op, path, &o);
    CT_CHECK(n >= 0 && (series || n == 0), op, "%d series at %p", n, (const void *)series);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    int integer_x = 1;
    for (int s = 0; s < n; s++) {
        CT_CHECK(series[s].n >= 0 && (series[s].y || series[s].n == 0), op, "series %d: %d points, y = %p", s,
                 series[s].n, (const void *)series[s].y);
        for (int i = 0; i < series[s].n; i++) {
            const double x = series[s].x ? series[s].x[i] : i + 1, y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y) || (o.log_y && y <= 0)) continue;
            integer_x &= x == floor(x);
            xmin = fmin(xmin, x), xmax = fmax(xmax, x);
            const double v = o.log_y ? log10(y) : y;
            ymin = fmin(ymin, v), ymax = fmax(ymax, v);
        }
    }
    if (o.y_min != 0 || o.y_max != 0) {
        CT_CHECK(o.y_min < o.y_max && (!o.log_y || o.y_min > 0), op, "y range [%g, %g]", o.y_min, o.y_max);
        ymin = o.log_y ? log10(o.y_min) : o.y_min, ymax = o.log_y ? log10(o.y_max) : o.y_max;
    } else if (isfinite(ymin) && !o.log_y) { /* a little room above and below the data */
        const double pad = 0.05 * (ymax - ymin);
        ymin -= pad, ymax += pad;
    }
    fix_range(&xmin, &xmax), fix_range(&ymin, &ymax);
    if (o.log_y && floor(ymax) - ceil(ymin) < 0) ymin = floor(ymin), ymax = ceil(ymax); /* a power of ten in view */
    canvas c;
    int status = canvas_new(&c, o.width, o.height, path);
    if (status) return status;
    frame f = frame_for(&o, c.w, c.h);
    f.xmin = xmin, f.xmax = xmax, f.ymin = ymin, f.ymax = ymax, f.log_y = o.log_y, f.integer_x = integer_x;
    draw_axes(&c, &f, &o, 1, 1);
    for (int s = 0; s < n; s++) draw_series(&c, &f, &series[s], ct_plot_color(series[s].color >= 0 ? series[s].color : s), 2);
    draw_legend_in(&c, &f, series, n, LEGEND_LEAST_INK);
    return write_png(&c, path);
}

/* ---- confusion matrix ----------------------------------------------------------------------- */
/* White to dark blue as t goes 0 -> 1 (matplotlib's "Blues", end points). */
static unsigned blues(double t) {
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const int r = (int)lround(247 + t * (8 - 247)), g = (int)lround(251 + t * (48 - 251)), b = (int)lround(255 + t * (107 - 255));
    return (unsigned)(r << 16 | g << 8 | b);
}

int ct_plot_confusion(const char *path, const long *counts, int classes, const char *const *names, ct_plot_opts o) {
    static const char *op = "ct_plot_confusion";
    check_common(op, path, &o);
    CT_CHECK(counts && classes >= 1 && classes <= 200, op, "%d classes (1..200) at %p", classes, (const void *)counts);
    long most = 0;
    for (long k = 0; k < (long)classes * classes; k++) most = counts[k] > most ? counts[k] : most;
    canvas c;
    int status = canvas_new(&c, o.width, o.height, path);
    if (status) return status;
    /* room for the class names: left of the rows, and below the columns (turned when too wide) */
    char buf[32];
    int name_w = 0;
    for (int k = 0; k < classes; k++) {
        const int w = text_width(names && names[k] ? names[k] : (snprintf(buf, sizeof buf, "%d", k), buf), TEXT_SCALE);
        name_w = w > name_w ? w : name_w;
    }
    frame f = frame_for(&o, c.w, c.h);
    f.x0 = 32 + name_w + 14; /* the y label ("true" by default), then the names */
    const int turned = name_w > (f.x1 - f.x0) / classes - 4;
    f.y1 = c.h - LINE_HEIGHT * TEXT_SCALE - 14 - (turned ? name_w : LINE_HEIGHT * TEXT_SCALE) - 10;
    CT_CHECK(f.x1 - f.x0 >= 2 * classes && f.y1 - f.y0 >= 2 * classes, op,
             "a %d x %d picture has no room for %d classes with names %d pixels wide", c.w, c.h, classes, name_w);
    const int side = (f.x1 - f.x0) < (f.y1 - f.y0) ? f.x1 - f.x0 : f.y1 - f.y0, cell = side / classes;
    f.x1 = f.x0 + cell * classes, f.y1 = f.y0 + cell * classes;
    f.xmin = 0, f.xmax = classes, f.ymin = 0, f.ymax = classes;
    for (int t = 0; t < classes; t++)
        for (int p = 0; p < classes; p++) {
            const long v = counts[(long)t * classes + p];
            const double share = most ? (double)v / (double)most : 0;
            const int x = f.x0 + p * cell, y = f.y0 + t * cell;
            fill_rect(&c, x, y, x + cell, y + cell, blues(share));
            snprintf(buf, sizeof buf, "%ld", v);
            const int scale = text_width(buf, TEXT_SCALE) + 4 <= cell && LINE_HEIGHT * TEXT_SCALE <= cell ? TEXT_SCALE : 1;
            if (text_width(buf, scale) + 2 <= cell && LINE_HEIGHT * scale <= cell)
                text_at(&c, x + (cell - text_width(buf, scale)) / 2, y + (cell - 7 * scale) / 2, buf,
                        share > 0.5 ? WHITE : BLACK, scale, 0);
        }
    for (int k = 0; k < classes; k++) { /* class names (or numbers) along both axes */
        const char *name = names && names[k] ? names[k] : (snprintf(buf, sizeof buf, "%d", k), buf);
        text_aligned(&c, f.x0 - 8, f.y0 + k * cell + cell / 2 - LINE_HEIGHT * TEXT_SCALE / 2 + 2, name, BLACK, RIGHT);
        if (!turned) text_aligned(&c, f.x0 + k * cell + cell / 2, f.y1 + 6, name, BLACK, CENTRE);
        else text_at(&c, f.x0 + k * cell + cell / 2 - LINE_HEIGHT, f.y1 + 6 + text_width(name, TEXT_SCALE), name, BLACK, TEXT_SCALE, 1);
    }
    ct_plot_opts labels = o;
    labels.x_label = o.x_label ? o.x_label : "predicted", labels.y_label = o.y_label ? o.y_label : "true";
    draw_axes(&c, &f, &labels, 0, 0);
    return write_png(&c, path);
}

/* ---- reliability diagram -------------------------------------------------------------------- */
int ct_plot_reliability(const char *path, int bins, const double *accuracy, const double *confidence,
                        const long *count, ct_plot_opts o) {
    static const char *op = "ct_plot_reliability";
    check_common(op, path, &o);
    CT_CHECK(bins >= 1 && bins <= 1000 && accuracy && confidence && count, op, "%d bins (1..1000), arrays %p %p %p",
             bins, (const void *)accuracy, (const void *)confidence, (const void *)count);
    long total = 0;
    double ece = 0;
    for (int b = 0; b < bins; b++) total += count[b] > 0 ? count[b] : 0;
    for (int b = 0; b < bins; b++)
        if (count[b] > 0) ece += (double)count[b] / (double)total * fabs(accuracy[b] - confidence[b]);
    char title[256], buf[32];
    snprintf(title, sizeof title, "%s%sECE %s", o.title ? o.title : "", o.title ? ", " : "", number(ece, 4, buf));
    ct_plot_opts labels = o;
    labels.title = title;
    labels.x_label = o.x_label ? o.x_label : "confidence", labels.y_label = o.y_label ? o.y_label : "accuracy";
    canvas c;
    int status = canvas_new(&c, o.width, o.height, path);
    if (status) return status;
    frame f = frame_for(&labels, c.w, c.h);
    f.xmin = 0, f.xmax = 1, f.ymin = 0, f.ymax = 1;
    draw_axes(&c, &f, &labels, 1, 1);
    for (int b = 0; b < bins; b++) {
        if (count[b] <= 0 || !isfinite(accuracy[b]) || !isfinite(confidence[b])) continue;
        const int x0 = px(&f, (double)b / bins) + 1, x1 = px(&f, (double)(b + 1) / bins);
        const int ya = py(&f, accuracy[b]), yc = py(&f, confidence[b]);
        fill_rect(&c, x0, ya, x1, f.y1 + 1, ct_plot_color(0));
        outline_rect(&c, x0, ya, x1, f.y1 + 1, 0x0b3d62);
        const int top = ya < yc ? ya : yc, bottom = ya < yc ? yc : ya; /* the gap to the confidence */
        for (int y = top; y < bottom; y++)
            for (int x = x0; x < x1; x++)
                if ((x + y) % 4 < 2) put(&c, x, y, RED);
        fill_rect(&c, x0, yc - 1, x1, yc + 1, RED);
    }
    int phase = 0;
    line(&c, f.x0, f.y1, f.x1, f.y0, GREY, 2, 1, &phase); /* perfect calibration */
    const ct_plot_series legend[2] = {{.label = "accuracy", .color = 0}, {.label = "confidence", .color = 3}};
    frame lf = f;
    lf.x1 = f.x0 + (f.x1 - f.x0) / 2 - 40; /* top left, clear of the diagonal's top-right end */
    draw_legend(&c, &lf, legend, 2);
    return write_png(&c, path);
}

/* ---- image grid ----------------------------------------------------------------------------- */
int ct_plot_images(const char *path, const unsigned char *pixels, int n, int height, int width, int channels,
                   const char *const *captions, int columns, ct_plot_opts o) {
    static const char *op = "ct_plot_images";
    CT_CHECK(path && *path, op, "path is NULL or empty");
    CT_CHECK(pixels && n >= 1 && height >= 1 && width >= 1 && height <= 1024 && width <= 1024 &&
                 (channels == 1 || channels == 3) && columns >= 1,
             op, "%d images of %d x %d x %d channels (1 or 3), %d columns", n, height, width, channels, columns);
    const int big = height > width ? height : width, zoom = big >= 56 ? 1 : (56 + big - 1) / big;
    int caption_w = 0;
    for (int i = 0; captions && i < n; i++)
        if (captions[i]) {
            const int w = text_width(captions[i][0] == '!' ? captions[i] + 1 : captions[i], TEXT_SCALE);
            caption_w = w > caption_w ? w : caption_w;
        }
    const int tile_w = (width * zoom > caption_w ? width * zoom : caption_w) + 12;
    const int tile_h = height * zoom + (captions ? LINE_HEIGHT * TEXT_SCALE + 6 : 0) + 12;
    const int cols = columns < n ? columns : n, rows = (n + cols - 1) / cols, top = o.title ? 40 : 6;
    const long w = (long)cols * tile_w + 12, h = (long)rows * tile_h + top + 6;
    CT_CHECK(w <= 8192 && h <= 8192, op, "%d images in %d columns make a %ld x %ld picture (at most 8192 x 8192)",
             n, columns, w, h);
    canvas c;
    int status = canvas_new(&c, (int)w, (int)h, path);
    if (status) return status;
    if (o.title) text_aligned(&c, c.w / 2, 10, o.title, BLACK, CENTRE);
    for (int i = 0; i < n; i++) {
        const int x0 = 12 + (i % cols) * tile_w + (tile_w - 12 - width * zoom) / 2, y0 = top + (i / cols) * tile_h;
        const unsigned char *img = pixels + (size_t)i * (size_t)height * (size_t)width * (size_t)channels;
        for (int y = 0; y < height * zoom; y++)
            for (int x = 0; x < width * zoom; x++) {
                const unsigned char *p = img + ((size_t)(y / zoom) * (size_t)width + (size_t)(x / zoom)) * (size_t)channels;
                put(&c, x0 + x, y0 + y, channels == 1 ? (unsigned)(p[0] << 16 | p[0] << 8 | p[0]) : (unsigned)(p[0] << 16 | p[1] << 8 | p[2]));
            }
        outline_rect(&c, x0 - 1, y0 - 1, x0 + width * zoom + 1, y0 + height * zoom + 1, GREY);
        if (captions && captions[i]) {
            const int wrong = captions[i][0] == '!';
            text_aligned(&c, x0 + width * zoom / 2, y0 + height * zoom + 5, captions[i] + wrong, wrong ? RED : BLACK, CENTRE);
        }
    }
    return write_png(&c, path);
}

/* ---- contours with paths -------------------------------------------------------------------- */
/* Viridis at twelve levels, mixed halfway with white so the paths drawn over it stand out. */
static unsigned level_color(int level, int levels) {
    static const unsigned anchors[5] = {0x440154, 0x3b528b, 0x21918c, 0x5ec962, 0xfde725};
    const double t = levels > 1 ? (double)level / (levels - 1) * 4 : 0;
    const int k = t >= 4 ? 3 : (int)t;
    const double u = t - k;
    unsigned out = 0;
    for (int shift = 16; shift >= 0; shift -= 8) {
        const double a = (anchors[k] >> shift) & 255, b = (anchors[k + 1] >> shift) & 255;
        out |= (unsigned)lround(0.5 * (a + u * (b - a)) + 0.5 * 255) << shift;
    }
    return out;
}

int ct_plot_contour(const char *path, double (*fn)(double x, double y, void *ctx), void *ctx, double x_min,
                    double x_max, double y_min, double y_max, const ct_plot_series *paths, int n_paths,
                    ct_plot_opts o) {
    static const char *op = "ct_plot_contour";
    enum { LEVELS = 12 };
    check_common(op, path, &o);
    CT_CHECK(fn && x_min < x_max && y_min < y_max && n_paths >= 0 && (paths || n_paths == 0), op,
             "f %s, region [%g, %g] x [%g, %g], %d paths", fn ? "set" : "NULL", x_min, x_max, y_min, y_max, n_paths);
    o.log_y = 0;
    canvas c;
    int status = canvas_new(&c, o.width, o.height, path);
    if (status) return status;
    frame f = frame_for(&o, c.w, c.h);
    f.xmin = x_min, f.xmax = x_max, f.ymin = y_min, f.ymax = y_max, f.grid = 0;
    const int W = f.x1 - f.x0 + 1, H = f.y1 - f.y0 + 1;
    double *v = malloc((size_t)W * (size_t)H * sizeof *v);
    int *level = malloc((size_t)W * (size_t)H * sizeof *level);
    if (!v || !level) {
        free(v), free(level), free(c.rgb);
        return ct_set_error(CT_ERR_MEMORY, "%s: no memory for a %d x %d contour grid", path, W, H);
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            const double x = x_min + (x_max - x_min) * i / (W - 1), y = y_max - (y_max - y_min) * j / (H - 1);
            const double z = fn(x, y, ctx);
            v[(size_t)j * W + i] = z;
            if (isfinite(z)) lo = fmin(lo, z), hi = fmax(hi, z);
        }
    /* levels on log(1 + (f − min)/scale) when f spans decades above its minimum, else linear */
    const double span = hi - lo, scale = span > 0 ? span * 1e-3 : 1;
    const int use_log = span > 0 && isfinite(span);
    const double top = use_log ? log1p(span / scale) : 1;
    for (size_t k = 0; k < (size_t)W * H; k++) {
        const double z = v[k];
        if (!isfinite(z) || !(span > 0)) { level[k] = isfinite(z) ? 0 : -1; continue; }
        const double t = log1p((z - lo) / scale) / top;
        const int l = (int)(t * LEVELS);
        level[k] = l >= LEVELS ? LEVELS - 1 : l;
    }
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            const int l = level[(size_t)j * W + i];
            const int edge = (i + 1 < W && level[(size_t)j * W + i + 1] != l) || (j + 1 < H && level[(size_t)(j + 1) * W + i] != l);
            put(&c, f.x0 + i, f.y0 + j, l < 0 ? 0xc0c0c0 : edge ? 0x505050 : level_color(l, LEVELS));
        }
    free(v), free(level);
    draw_axes(&c, &f, &o, 1, 1);
    for (int s = 0; s < n_paths; s++) {
        const unsigned color = ct_plot_color(paths[s].color >= 0 ? paths[s].color : s);
        draw_series(&c, &f, &paths[s], color, 3);
        for (int i = 0; i < paths[s].n; i++) /* the first finite point: a disc */
            if (isfinite(paths[s].y[i]) && (!paths[s].x || isfinite(paths[s].x[i]))) {
                disc(&c, px(&f, paths[s].x ? paths[s].x[i] : i + 1), py(&f, paths[s].y[i]), 5, color);
                break;
            }
        for (int i = paths[s].n - 1; i >= 0; i--) /* the last: a square */
            if (isfinite(paths[s].y[i]) && (!paths[s].x || isfinite(paths[s].x[i]))) {
                const int X = px(&f, paths[s].x ? paths[s].x[i] : i + 1), Y = py(&f, paths[s].y[i]);
                fill_rect(&c, X - 5, Y - 5, X + 6, Y + 6, color), outline_rect(&c, X - 5, Y - 5, X + 6, Y + 6, BLACK);
                break;
            }
    }
    draw_legend_in(&c, &f, paths, n_paths, LEGEND_FEWEST_POINTS);
    return write_png(&c, path);
}
