// Small PNG plotting for the tapegrad examples, drawn with cairo.
//
// The examples need to *show* what a network learned (loss curves, decision
// regions, reconstructions, confusion matrices) without pulling in Python or
// a plotting toolkit, so this is deliberately small: plain structs filled by
// the caller, one save_* function per kind of figure, and a Sheet that
// composes any of them into a grid. It does not depend on the tapegrad
// library or xtensor; pass std::vector<double> (or convert with as_doubles).
//
// Every save_* validates its input first, draws into memory, writes the PNG
// to a temporary file next to the target and renames it into place, so a
// reader never sees a half-written image. Any problem (empty data, x/y
// length mismatch, bad sizes, unwritable path) throws std::runtime_error
// whose message starts with "tapegrad::plot: <path>: " and gives the reason.
//
//   plot::Chart c;
//   c.title = "Training loss";  c.xlabel = "epoch";  c.ylabel = "loss";
//   c.log_y = true;
//   c.add("train", epochs, train_loss).add("test", epochs, test_loss, plot::Style::Dashed);
//   plot::save_chart(c, "loss.png");
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tapegrad::plot {

// An sRGB colour, each channel in [0, 1].
struct Color {
    double r = 0, g = 0, b = 0;
};

// The i-th colour of the palette used for series and classes (cycles after
// ten). Exposed so a program can colour other things consistently.
Color palette(int i);
// The pale tint of palette(i) that fills class i's decision region: light
// enough that points of every class stay visible on top of it.
Color region_color(int i);

// Converts any arithmetic vector (float tensors, int epochs, ...) for the
// double-based structs below.
template <class T>
std::vector<double> as_doubles(const std::vector<T>& v) {
    static_assert(std::is_arithmetic_v<T>, "as_doubles needs numbers");
    return std::vector<double>(v.begin(), v.end());
}

// ---------------------------------------------------------------- charts

enum class Style {
    Line,         // solid line
    Dashed,       // dashed line, e.g. a derivative next to its function
    Markers,      // points only (scatter)
    LineMarkers,  // solid line with a marker on every point
};

// One named curve. Non-finite points are skipped (the line breaks there),
// as are y <= 0 on a log-scale chart, so a diverged run still plots.
struct Series {
    std::string name;  // legend label; empty keeps it out of the legend
    std::vector<double> x, y;
    Style style = Style::Line;
    std::optional<Color> color;  // default: palette(position in the chart)
};

// A shaded area between two curves, lo(x) and hi(x): an uncertainty band
// around a mean, a min-max envelope over seeds. Bands are drawn translucent
// under every series; a non-finite point breaks the band there.
struct Band {
    std::string name;  // legend label; empty keeps it out of the legend
    std::vector<double> x, lo, hi;
    std::optional<Color> color;  // default: palette(position among the bands)
    double alpha = 0.22;         // opacity of the fill, in (0, 1]
};

struct Chart {
    std::string title, xlabel, ylabel;
    bool log_y = false;
    bool legend = true;  // drawn when a series has a name
    // Fixed axis ranges; by default the axes fit the data with a small margin.
    std::optional<std::pair<double, double>> x_range, y_range;
    std::vector<Series> series;
    std::vector<Band> bands;

    Chart& add(std::string name, std::vector<double> x, std::vector<double> y,
               Style style = Style::Line) {
        series.push_back({std::move(name), std::move(x), std::move(y), style, std::nullopt});
        return *this;
    }
    // Same for float / int vectors (a template so that braced lists pick the
    // overload above).
    template <class X, class Y>
    Chart& add(std::string name, const std::vector<X>& x, const std::vector<Y>& y,
               Style style = Style::Line) {
        return add(std::move(name), as_doubles(x), as_doubles(y), style);
    }
    Chart& add_band(std::string name, std::vector<double> x, std::vector<double> lo, std::vector<double> hi) {
        bands.push_back({std::move(name), std::move(x), std::move(lo), std::move(hi), std::nullopt});
        return *this;
    }
};

// ------------------------------------------------------ decision regions

// A 2-D classifier's decision regions over the box [x_min, x_max] x
// [y_min, y_max], sampled on a grid_w x grid_h grid, with the data on top.
// Give either grid_class or grid_prob:
//   grid_class  grid_w*grid_h class indices;
//   grid_prob   grid_w*grid_h*K class probabilities (class index fastest);
//               K == 1 means "probability of class 1" of a binary model.
//               Cells are tinted by the probability-weighted class tints, so
//               uncertain bands show up as a soft blend.
// Cell (i, j) is at index j*grid_w + i and is centred at x_min + (i+0.5)*dx,
// y_min + (j+0.5)*dy: row j = 0 is the bottom row. grid_inputs() lists those
// centres in that order, ready to be one input batch for the model.
// The plot keeps x and y at the same scale so circles look round.
struct DecisionRegions {
    std::string title, xlabel = "x1", ylabel = "x2";
    double x_min = -1, x_max = 1, y_min = -1, y_max = 1;
    int grid_w = 0, grid_h = 0;
    std::vector<int> grid_class;
    std::vector<double> grid_prob;
    // The data points, one class index each (may be empty).
    std::vector<double> px, py;
    std::vector<int> plabel;
    // Legend labels; missing ones read "class k". The legend appears when
    // there are points or names, unless `legend` is false (e.g. in a sheet
    // of many small panels).
    std::vector<std::string> class_names;
    bool legend = true;

    // grid_w*grid_h (x, y) pairs, interleaved: a row-major (N, 2) buffer.
    std::vector<double> grid_inputs() const;
};

// ------------------------------------------------------ confusion matrix

// counts[t][p] = how many samples of true class t were predicted as p.
// Cells are shaded by the row-normalised value (the per-class recall), so
// rare classes are as readable as common ones; the cell text shows the count
// and, when there is room, that percentage.
struct Confusion {
    std::string title = "Confusion matrix";
    std::vector<std::vector<double>> counts;
    std::vector<std::string> class_names;  // default "0", "1", ...

    // Tallies predicted[i] against truth[i]; labels must be in [0, num_classes).
    static Confusion from_labels(const std::vector<int>& truth, const std::vector<int>& predicted,
                                 int num_classes);
};

// ---------------------------------------------------------------- images

// A grayscale image, row-major, 0 = black and 1 = white; values outside
// [0, 1] are clamped and NaN shows as black.
struct Image {
    int width = 0, height = 0;
    std::vector<float> pixels;

    Image() = default;
    Image(int w, int h, std::vector<float> px) : width(w), height(h), pixels(std::move(px)) {}
    Image(int w, int h, const std::vector<double>& px)
        : width(w), height(h), pixels(px.begin(), px.end()) {}
};

// ---------------------------------------------------------------- sheets

// One cell of a Sheet: any figure, with an optional caption under it.
struct Panel {
    std::variant<Chart, DecisionRegions, Confusion, Image> content;
    std::string caption;
};

// Several figures in a grid in one PNG: activation functions with their
// derivatives, original vs reconstruction, decision regions for several
// depths. Every cell is cell_width x cell_height pixels (the caption, if any
// panel has one, takes the bottom 24 of them); images are enlarged by the
// largest whole factor that fits, nearest neighbour, so pixels stay sharp.
// The PNG is exactly columns*cell_width wide and rows*cell_height tall, plus
// 44 pixels at the top when there is a title.
struct Sheet {
    std::string title;
    int columns = 0;  // 0: about square, ceil(sqrt(number of panels))
    int cell_width = 400, cell_height = 300;
    std::vector<Panel> panels;

    template <class Figure>
    Sheet& add(Figure figure, std::string caption = {}) {
        panels.push_back({std::move(figure), std::move(caption)});
        return *this;
    }
};

// ---------------------------------------------------------------- output

void save_chart(const Chart& chart, const std::string& path, int width = 800, int height = 500);
void save_regions(const DecisionRegions& regions, const std::string& path, int width = 640,
                  int height = 560);
void save_confusion(const Confusion& confusion, const std::string& path, int width = 640,
                    int height = 600);
// The PNG is image.width*scale x image.height*scale pixels.
void save_image(const Image& image, const std::string& path, int scale = 1);
void save_sheet(const Sheet& sheet, const std::string& path);

}  // namespace tapegrad::plot
