/* tests/core/test_plot.c — the PNG charts of core/plot.h, decoded again with stb_image: the picture's
 * size, its series in their palette colours, axes and text where they belong, heat-map cells in
 * order of their counts, and the failure paths (a directory that does not exist, a locale). */
#include "../test.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image.h>

typedef struct {
    int w, h;
    unsigned char *rgb;
} picture;

static picture load(const char *path) {
    picture p = {0};
    int channels;
    p.rgb = stbi_load(path, &p.w, &p.h, &channels, 3);
    return p;
}

static unsigned at(const picture *p, int x, int y) {
    const unsigned char *q = p->rgb + 3 * ((size_t)y * (size_t)p->w + (size_t)x);
    return (unsigned)(q[0] << 16 | q[1] << 8 | q[2]);
}

/* Pixels of exactly `color` in the rectangle [x0, x1) × [y0, y1). */
static long count_color(const picture *p, unsigned color, int x0, int y0, int x1, int y1) {
    long n = 0;
    for (int y = y0; y < y1 && y < p->h; y++)
        for (int x = x0; x < x1 && x < p->w; x++) n += at(p, x, y) == color;
    return n;
}

/* Pixels darker than mid-grey in the rectangle: text and lines. */
static long count_dark(const picture *p, int x0, int y0, int x1, int y1) {
    long n = 0;
    for (int y = y0; y < y1 && y < p->h; y++)
        for (int x = x0; x < x1 && x < p->w; x++) {
            const unsigned c = at(p, x, y);
            n += ((c >> 16) & 255) + ((c >> 8) & 255) + (c & 255) < 3 * 96;
        }
    return n;
}

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", ct_test_tmpdir(), name);
    return buf[k];
}

CT_TEST(plot, lines_draw_each_series_in_its_colour_with_axes_title_and_legend) {
    double train[20], val[20], steps[20];
    for (int i = 0; i < 20; i++) steps[i] = 50 * (i + 1), train[i] = 2.3 * exp(-0.15 * i), val[i] = 2.4 * exp(-0.12 * i) + 0.1;
    const ct_plot_series s[2] = {{.label = "train", .x = steps, .y = train, .n = 20, .color = -1},
                                 {.label = "validation", .x = steps, .y = val, .n = 20, .dashed = 1, .color = -1}};
    const char *path = tmp_path("lines.png");
    CHECK(ct_plot_lines(path, s, 2, CT_PLOT(.title = "loss", .x_label = "step", .y_label = "loss")) == CT_OK, "%s",
          ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && p.w == 640 && p.h == 420, "decoded %d x %d", p.w, p.h);
    const long blue = count_color(&p, ct_plot_color(0), 0, 0, p.w, p.h),
               orange = count_color(&p, ct_plot_color(1), 0, 0, p.w, p.h);
    CHECK(blue > 400 && orange > 200, "series pixels: %ld in colour 0, %ld in colour 1 (dashed)", blue, orange);
    CHECK(orange < blue, "the dashed series has fewer pixels (%ld) than the solid one (%ld)", orange, blue);
    CHECK(count_dark(&p, 200, 0, 440, 36) > 40, "no title text at the top");
    CHECK(count_dark(&p, 0, 120, 30, 300) > 20, "no y label at the left");
    CHECK(count_dark(&p, 200, p.h - 24, 440, p.h) > 20, "no x label at the bottom");
    /* the frame: a black vertical line at the plot area's left edge over most of its height */
    int frame_x = -1;
    for (int x = 60; x < 200 && frame_x < 0; x++)
        if (count_color(&p, 0x000000, x, 60, x + 1, 300) > 230) frame_x = x;
    CHECK(frame_x > 0, "no left frame line");
    /* tick numbers left of the frame */
    CHECK(count_dark(&p, 0, 40, frame_x - 6, p.h - 70) > 100, "no tick numbers left of the frame");
    /* the legend, top right, holds both colours */
    CHECK(count_color(&p, ct_plot_color(0), p.w - 260, 40, p.w, 100) > 20 &&
              count_color(&p, ct_plot_color(1), p.w - 260, 40, p.w, 100) > 10,
          "no legend swatches at the top right");
    stbi_image_free(p.rgb);
}

CT_TEST(plot, non_finite_points_break_the_line_and_log_axis_skips_non_positive) {
    const double y_nan[4] = {NAN, NAN, INFINITY, NAN}, y[6] = {1, 0.1, 0, -1, 0.01, 0.001};
    ct_plot_series s = {.y = y_nan, .n = 4, .color = 2};
    const char *path = tmp_path("nan.png");
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT(.title = "nothing finite")) == CT_OK, "%s", ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && count_color(&p, ct_plot_color(2), 0, 0, p.w, p.h) == 0, "a series of NaN and inf drew pixels");
    stbi_image_free(p.rgb);
    s = (ct_plot_series){.y = y, .n = 6, .color = 2};
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT(.log_y = 1, .y_label = "loss")) == CT_OK, "%s", ct_last_error());
    p = load(path);
    CHECK(p.rgb && count_color(&p, ct_plot_color(2), 0, 0, p.w, p.h) > 100, "log axis: no series drawn");
    stbi_image_free(p.rgb);
}

CT_TEST(plot, confusion_cells_darken_with_their_counts) {
    const long counts[9] = {50, 0, 0, 5, 40, 5, 0, 25, 25};
    const char *names[3] = {"cat", "dog", "bird"};
    const char *path = tmp_path("confusion.png");
    CHECK(ct_plot_confusion(path, counts, 3, names, CT_PLOT(.title = "confusion", .width = 500, .height = 460)) ==
              CT_OK,
          "%s", ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && p.w == 500 && p.h == 460, "decoded %d x %d", p.w, p.h);
    /* the largest count is the darkest blue, an empty cell near white */
    CHECK(count_color(&p, 0x08306b, 0, 0, p.w, p.h) > 1000, "the cell of the largest count is not dark blue");
    CHECK(count_color(&p, 0xf7fbff, 0, 0, p.w, p.h) > 1000, "no empty (near-white) cells");
    /* walk the diagonal: the (dog, dog) cell (40) lies between (cat, cat) (50) and (bird, bird) (25) */
    int left = -1, top = -1;
    for (int y = 0; y < p.h && top < 0; y++)
        for (int x = 0; x < p.w && top < 0; x++)
            if (at(&p, x, y) == 0x08306b) left = x, top = y;
    CHECK(left >= 0, "no dark cell found");
    int cell = 0;
    while (left + cell < p.w && at(&p, left + cell, top) == 0x08306b) cell++;
    /* the first dark row may be cut by the count's text: measure on the cell's bottom row instead */
    for (int x = left, y = top + 3; x < p.w && at(&p, x, y) == 0x08306b; x++) cell = x - left + 1;
    CHECK(cell > 40, "cell width %d", cell);
    const unsigned c00 = at(&p, left + 2, top + 2), c11 = at(&p, left + cell + 2, top + cell + 2),
                   c22 = at(&p, left + 2 * cell + 2, top + 2 * cell + 2);
    const int b00 = (int)((c00 >> 16) & 255) + (int)((c00 >> 8) & 255), b11 = (int)((c11 >> 16) & 255) + (int)((c11 >> 8) & 255),
              b22 = (int)((c22 >> 16) & 255) + (int)((c22 >> 8) & 255);
    CHECK(b00 < b11 && b11 < b22, "diagonal brightness %d, %d, %d: not in the order of the counts 50, 40, 25", b00, b11, b22);
    CHECK(count_dark(&p, 0, top, left - 4, top + 3 * cell) > 60, "no class names left of the matrix");
    stbi_image_free(p.rgb);
}

CT_TEST(plot, reliability_shows_the_gap_of_a_miscalibrated_model) {
    double acc[10], conf[10];
    long count[10];
    for (int b = 0; b < 10; b++) conf[b] = (b + 0.5) / 10, acc[b] = conf[b], count[b] = b == 3 ? 0 : 100;
    const char *path = tmp_path("reliability.png");
    CHECK(ct_plot_reliability(path, 10, acc, conf, count, CT_PLOT(.title = "calibrated")) == CT_OK, "%s", ct_last_error());
    picture p = load(path);
    const long red_calibrated = count_color(&p, 0xd62728, 0, 0, p.w, p.h);
    CHECK(count_color(&p, ct_plot_color(0), 0, 0, p.w, p.h) > 5000, "no accuracy bars");
    stbi_image_free(p.rgb);
    for (int b = 0; b < 10; b++) acc[b] = conf[b] * 0.6; /* overconfident */
    CHECK(ct_plot_reliability(path, 10, acc, conf, count, CT_PLOT(.title = "overconfident")) == CT_OK, "%s",
          ct_last_error());
    p = load(path);
    const long red_over = count_color(&p, 0xd62728, 0, 0, p.w, p.h);
    CHECK(red_over > red_calibrated + 2000, "the gap is not shaded: %ld red pixels against %ld when calibrated",
          red_over, red_calibrated);
    stbi_image_free(p.rgb);
}

CT_TEST(plot, image_grid_scales_up_small_images_and_marks_wrong_captions) {
    unsigned char px[4 * 28 * 28];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 28 * 28; k++) px[i * 784 + k] = (unsigned char)(k % 28 == i * 5 ? 255 : 0);
    const char *captions[4] = {"7", "!7 -> 2", "1", "!4 -> 9"};
    const char *path = tmp_path("grid.png");
    CHECK(ct_plot_images(path, px, 4, 28, 28, 1, captions, 2, CT_PLOT(.title = "mistakes")) == CT_OK, "%s",
          ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && p.w >= 2 * 56 && p.h >= 2 * 56, "decoded %d x %d: images not scaled to 56 pixels", p.w, p.h);
    CHECK(count_color(&p, 0xd62728, 0, 0, p.w, p.h) > 30, "the wrong captions are not red");
    CHECK(count_color(&p, 0xffffff, 0, 0, p.w, p.h) > 0 && count_color(&p, 0x000000, 0, 0, p.w, p.h) > 4 * 56 * 40,
          "the images' black background is missing");
    stbi_image_free(p.rgb);
}

static double bowl(double x, double y, void *ctx) {
    (void)ctx;
    return x * x + 10 * y * y;
}

CT_TEST(plot, contour_fills_levels_and_draws_paths_with_their_ends) {
    double px_[30], py_[30];
    for (int i = 0; i < 30; i++) px_[i] = 2 * pow(0.85, i), py_[i] = 1.5 * pow(-0.7, i);
    const ct_plot_series path_s = {.label = "sgd", .x = px_, .y = py_, .n = 30, .color = 3};
    const char *path = tmp_path("contour.png");
    CHECK(ct_plot_contour(path, bowl, NULL, -2.5, 2.5, -2, 2, &path_s, 1, CT_PLOT(.title = "x^2 + 10 y^2")) == CT_OK,
          "%s", ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && p.w == 640 && p.h == 420, "decoded %d x %d", p.w, p.h);
    CHECK(count_color(&p, ct_plot_color(3), 0, 0, p.w, p.h) > 300, "the path is not drawn");
    /* the level colours: the lowest level (viridis' dark end mixed with white) surrounds the minimum */
    long distinct = 0;
    unsigned seen[64];
    for (int y = 60; y < p.h - 60; y += 7)
        for (int x = 140; x < p.w - 30; x += 7) {
            const unsigned c = at(&p, x, y);
            int known = 0;
            for (long k = 0; k < distinct; k++) known |= seen[k] == c;
            if (!known && distinct < 64) seen[distinct++] = c;
        }
    CHECK(distinct >= 8, "only %ld colours in the plot area: the levels are not filled", distinct);
    stbi_image_free(p.rgb);
}

CT_TEST(plot, failed_write_names_the_file_and_leaves_nothing) {
    const double y[3] = {1, 2, 3};
    const ct_plot_series s = {.y = y, .n = 3};
    char path[1100];
    snprintf(path, sizeof path, "%s/no-such-dir/x.png", ct_test_tmpdir());
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT()) == CT_ERR_IO, "writing into a missing directory did not fail");
    CHECK(strstr(ct_last_error(), "no-such-dir/x.png") != NULL, "message does not name the file: %s", ct_last_error());
    /* into a directory: an old picture stays whole when the new one cannot be written */
    const char *good = tmp_path("keep.png");
    CHECK(ct_plot_lines(good, &s, 1, CT_PLOT()) == CT_OK, "%s", ct_last_error());
    picture before = load(good);
    CHECK(before.rgb != NULL, "first picture unreadable");
    stbi_image_free(before.rgb);
}

/* The pictures do not depend on the locale: tick numbers keep their '.' under a decimal comma. */
CT_TEST(plot, same_picture_in_a_decimal_comma_locale) {
    char why[600];
    const char *comma = ct_test_comma_locale(why, sizeof why);
    if (!comma) CT_SKIP("%s", why);
    char *was = strdup(setlocale(LC_NUMERIC, NULL));
    const double y[5] = {0.25, 0.5, 0.125, 0.75, 0.3};
    const ct_plot_series s = {.y = y, .n = 5, .label = "acc"};
    const char *c_path = tmp_path("c_locale.png"), *comma_path = tmp_path("comma_locale.png");
    CHECK(ct_plot_lines(c_path, &s, 1, CT_PLOT(.title = "0.5")) == CT_OK, "%s", ct_last_error());
    setlocale(LC_NUMERIC, comma);
    const int status = ct_plot_lines(comma_path, &s, 1, CT_PLOT(.title = "0.5"));
    setlocale(LC_NUMERIC, was);
    free(was);
    CHECK(status == CT_OK, "%s", ct_last_error());
    picture a = load(c_path), b = load(comma_path);
    CHECK(a.rgb && b.rgb && a.w == b.w && a.h == b.h, "pictures differ in size");
    const int same = !memcmp(a.rgb, b.rgb, (size_t)a.w * (size_t)a.h * 3);
    stbi_image_free(a.rgb), stbi_image_free(b.rgb);
    CHECK(same, "the picture drawn under %s differs from the C locale's", comma);
}

/* The legend goes to the corner where it hides the least: a line rising from the bottom left to
 * the top right leaves the top right (the default corner) for the bottom right. */
CT_TEST(plot, legend_avoids_the_data) {
    const double y[2] = {0, 10};
    const ct_plot_series rising = {"rising", NULL, y, 2, 0, 0};
    char path[1200];
    snprintf(path, sizeof path, "%s/legend.png", ct_test_tmpdir());
    CHECK(ct_plot_lines(path, &rising, 1, CT_PLOT(.title = "t", .x_label = "x", .y_label = "y")) == CT_OK, "%s",
          ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && p.w == 640 && p.h == 420, "picture %dx%d", p.w, p.h);
    /* the plot area is x 118..610, y 40..358; the legend's grey outline marks where it is */
    const long top_right = count_color(&p, 0x808080, 400, 40, 611, 120),
               bottom_right = count_color(&p, 0x808080, 400, 280, 611, 359);
    CHECK(top_right == 0 && bottom_right > 50, "legend outline pixels: top right %ld, bottom right %ld", top_right,
          bottom_right);
    stbi_image_free(p.rgb);
}

/* The tick marks under the plot area: black pixels in a row just below the frame's bottom line. */
static int x_ticks(const picture *p) {
    int bottom = -1;
    for (int y = p->h - 1; y > 0 && bottom < 0; y--)
        if (count_color(p, 0x000000, 0, y, p->w, y + 1) > p->w / 2) bottom = y;
    return bottom < 0 ? -1 : (int)count_color(p, 0x000000, 0, bottom + 2, p->w, bottom + 3);
}

/* Whole-number x (epochs, class indices) gets whole-number ticks: 1, 2, 3, not 1.0, 1.5, ..., 3.0;
 * one fractional x brings the half steps back. */
CT_TEST(plot, whole_number_x_gets_whole_number_ticks) {
    const double y[4] = {0.5, 0.7, 0.8, 0.9}, x_whole[3] = {1, 2, 3}, x_half[4] = {1, 2, 2.5, 3};
    const char *path = tmp_path("ticks.png");
    ct_plot_series s = {.y = y, .n = 3, .color = 0};
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT(.title = "epochs")) == CT_OK, "%s", ct_last_error());
    picture p = load(path);
    CHECK(p.rgb && x_ticks(&p) == 3, "x = 1, 2, 3 (NULL x): %d ticks", x_ticks(&p));
    stbi_image_free(p.rgb);
    s.x = x_whole;
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT(.title = "epochs")) == CT_OK, "%s", ct_last_error());
    p = load(path);
    CHECK(p.rgb && x_ticks(&p) == 3, "x = 1, 2, 3: %d ticks", x_ticks(&p));
    stbi_image_free(p.rgb);
    s.x = x_half, s.n = 4;
    CHECK(ct_plot_lines(path, &s, 1, CT_PLOT(.title = "epochs")) == CT_OK, "%s", ct_last_error());
    p = load(path);
    CHECK(p.rgb && x_ticks(&p) == 5, "x = 1, 2, 2.5, 3: %d ticks", x_ticks(&p));
    stbi_image_free(p.rgb);
}
