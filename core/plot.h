/* core/plot.h — PNG pictures of a training run: line charts (loss, accuracy, learning rate, several
 * runs overlaid), a confusion-matrix heat map, a reliability diagram, a grid of images with
 * captions, and optimizer paths over the contours of a 2-D function.
 *
 * Every picture has a title, axes with ticks and numbers, and a legend where there are several
 * series; text is stb_easy_font's bitmap font drawn at twice its size, the PNG is encoded by
 * stb_image_write. A picture is written whole or not at all (core/atomic_file.c, as checkpoints),
 * so a failed write leaves the previous file; the calls return CT_OK or CT_ERR_IO / CT_ERR_MEMORY
 * with a message naming the file. Values that are not finite are data, not errors: a NaN or an
 * infinity breaks a line (as matplotlib does), and a NaN cell is drawn grey. Numbers are printed
 * with a '.' whatever the locale. */
#ifndef CTAPE_CORE_PLOT_H
#define CTAPE_CORE_PLOT_H

#include "core.h"

/* One line of a chart: n points (x[i], y[i]); x may be NULL for 1, 2, ..., n (steps or epochs). */
typedef struct {
    const char *label;  /* legend text, or NULL for none */
    const double *x;
    const double *y;
    int n;
    int dashed;         /* 1: drawn dashed (a validation curve beside its training curve) */
    int color;          /* index into the palette (0..9); -1: the series' own index */
} ct_plot_series;

typedef struct {
    const char *title;
    const char *x_label;
    const char *y_label;
    int width, height;  /* pixels, at least 200 × 150 */
    int log_y;          /* 1: logarithmic y axis (a loss); values <= 0 are skipped */
    double y_min, y_max;  /* both 0: the range of the data */
} ct_plot_opts;
#define CT_PLOT(...) CT_WITH_DEFAULTS(ct_plot_opts, (.width = 640, .height = 420), __VA_ARGS__)

/* The palette: ten colours (matplotlib's "tab10"), as 0xRRGGBB. */
unsigned ct_plot_color(int i);

/* Line chart of n series. When every x is a whole number (epochs, class indices), so are the x ticks. */
int ct_plot_lines(const char *path, const ct_plot_series *series, int n, ct_plot_opts opts);

/* Confusion matrix (rows: true class, columns: predicted), counts[t·classes + p], as a heat map with
 * each cell's count written in it; names may be NULL (then 0, 1, ...). */
int ct_plot_confusion(const char *path, const long *counts, int classes, const char *const *names,
                      ct_plot_opts opts);

/* Reliability diagram of `bins` equal-width confidence bins: bar b at the bin's accuracy, its mean
 * confidence marked, the diagonal of perfect calibration, and the expected calibration error
 * ECE = Σ_b (count_b / N)·|accuracy_b − confidence_b| in the title. Empty bins are left out. */
int ct_plot_reliability(const char *path, int bins, const double *accuracy, const double *confidence,
                        const long *count, ct_plot_opts opts);

/* A grid of n images (bytes, height × width × channels, channels 1 or 3, one after the other),
 * `columns` per row, each scaled up to at least 56 pixels and captioned (captions may be NULL).
 * A caption starting with '!' is drawn red without the '!' (a misclassified sample). */
int ct_plot_images(const char *path, const unsigned char *pixels, int n, int height, int width, int channels,
                   const char *const *captions, int columns, ct_plot_opts opts);

/* Filled contours of f over [x_min, x_max] × [y_min, y_max] (twelve levels, spaced on a log scale
 * of f − min f when f spans several decades), with paths (optimizer trajectories) drawn over it,
 * each marked at its start (circle) and end (square). */
int ct_plot_contour(const char *path, double (*f)(double x, double y, void *ctx), void *ctx, double x_min,
                    double x_max, double y_min, double y_max, const ct_plot_series *paths, int n_paths,
                    ct_plot_opts opts);

#endif
