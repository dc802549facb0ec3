// Tests for examples/common/plot.{hpp,cpp}: every figure kind is written to
// a scratch directory and read back with cairo to check the file is a real
// PNG of the promised size with the promised colours where we can predict
// them; bad input and unwritable paths must throw with the file named.
#include <doctest/doctest.h>

#include <cairo.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../examples/common/plot.hpp"

namespace fs = std::filesystem;
namespace plot = tapegrad::plot;

namespace {

// A fresh directory per test case, removed afterwards.
struct ScratchDir {
    fs::path dir;
    ScratchDir() {
        static int n = 0;
        dir = fs::temp_directory_path() /
              ("tapegrad-plot-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
    // Every file left in the directory (to see that no temp file survives).
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
        return out;
    }
};

struct Rgb {
    int r, g, b;
};

// A PNG read back through cairo.
struct Png {
    cairo_surface_t* s = nullptr;
    explicit Png(const std::string& path) : s(cairo_image_surface_create_from_png(path.c_str())) {}
    ~Png() { cairo_surface_destroy(s); }
    Png(const Png&) = delete;
    Png& operator=(const Png&) = delete;
    bool ok() const { return cairo_surface_status(s) == CAIRO_STATUS_SUCCESS; }
    int width() const { return cairo_image_surface_get_width(s); }
    int height() const { return cairo_image_surface_get_height(s); }
    Rgb at(int x, int y) const {
        const unsigned char* d = cairo_image_surface_get_data(s);
        uint32_t p = *reinterpret_cast<const uint32_t*>(d + size_t(y) * cairo_image_surface_get_stride(s) + 4 * size_t(x));
        return {int((p >> 16) & 255), int((p >> 8) & 255), int(p & 255)};
    }
    // How many pixels are within `tol` (per channel) of colour c.
    long count(plot::Color c, int tol = 3) const {
        Rgb want{int(std::lround(c.r * 255)), int(std::lround(c.g * 255)), int(std::lround(c.b * 255))};
        long n = 0;
        for (int y = 0; y < height(); ++y)
            for (int x = 0; x < width(); ++x) {
                Rgb p = at(x, y);
                n += std::abs(p.r - want.r) <= tol && std::abs(p.g - want.g) <= tol && std::abs(p.b - want.b) <= tol;
            }
        return n;
    }
};

bool has_png_signature(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char sig[8] = {};
    in.read(reinterpret_cast<char*>(sig), 8);
    const unsigned char want[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return in.gcount() == 8 && std::equal(sig, sig + 8, want);
}

// Checks existence, signature and size; returns nothing, fails the test case.
void check_png(const std::string& path, int w, int h) {
    REQUIRE(fs::exists(path));
    CHECK(has_png_signature(path));
    Png png(path);
    REQUIRE(png.ok());
    CHECK(png.width() == w);
    CHECK(png.height() == h);
}

// Runs f, which must throw std::runtime_error naming `path` and mentioning `reason`.
void check_throws(const std::function<void()>& f, const std::string& path, const std::string& reason) {
    bool thrown = false;
    try {
        f();
    } catch (const std::runtime_error& e) {
        thrown = true;
        std::string msg = e.what();
        INFO("message: " << msg);
        CHECK(msg.find(path) != std::string::npos);
        CHECK(msg.find(reason) != std::string::npos);
    }
    CHECK_MESSAGE(thrown, "expected std::runtime_error for " << path);
    CHECK_FALSE(fs::exists(path));
}

plot::Chart sample_chart() {
    std::vector<double> x, sig, dsig;
    for (int i = 0; i <= 100; ++i) {
        double z = -6 + 12.0 * i / 100;
        double s = 1 / (1 + std::exp(-z));
        x.push_back(z), sig.push_back(s), dsig.push_back(s * (1 - s));
    }
    plot::Chart c;
    c.title = "sigmoid";
    c.xlabel = "z";
    c.add("f(z)", x, sig).add("f'(z)", x, dsig, plot::Style::Dashed);
    return c;
}

}  // namespace

TEST_CASE("plot: line chart with log scale, markers and a legend") {
    ScratchDir tmp;
    plot::Chart c;
    c.title = "Training loss";
    c.xlabel = "epoch";
    c.ylabel = "cross-entropy";
    c.log_y = true;
    std::vector<float> epoch, train, test;
    for (int e = 1; e <= 30; ++e) {
        epoch.push_back(float(e));
        train.push_back(2.3f * std::pow(0.8f, float(e)));
        test.push_back(2.3f * std::pow(0.85f, float(e)) + 0.05f);
    }
    c.add("train", epoch, train).add("test", epoch, test, plot::Style::LineMarkers);
    c.series[0].color = plot::Color{1, 0, 0};  // pure red: easy to find again
    std::string path = tmp / "loss.png";
    plot::save_chart(c, path, 640, 400);
    check_png(path, 640, 400);
    Png png(path);
    CHECK(png.count({1, 1, 1}, 0) > 640 * 400 / 2);  // white background
    Rgb corner = png.at(1, 1);
    CHECK((corner.r == 255 && corner.g == 255 && corner.b == 255));
    CHECK(png.count({1, 0, 0}, 10) > 60);            // the red train curve
    CHECK(png.count(plot::palette(1), 10) > 60);      // test curve in palette colour 1
    CHECK(tmp.files() == std::vector<std::string>{"loss.png"});  // no temp file left
}

TEST_CASE("plot: scatter chart and overwrite of an existing file") {
    ScratchDir tmp;
    std::string path = tmp / "scatter.png";
    plot::Chart c;
    c.add("points", std::vector<double>{1, 2, 3, 4}, std::vector<double>{4, 1, 3, 2}, plot::Style::Markers);
    plot::save_chart(c, path, 300, 200);
    plot::save_chart(sample_chart(), path, 500, 300);  // replaces the file atomically
    check_png(path, 500, 300);
    CHECK(tmp.files().size() == 1);
}

TEST_CASE("plot: a band is filled between its curves, under the series, and breaks at NaN") {
    ScratchDir tmp;
    std::vector<double> x, lo, hi, mid;
    for (int i = 0; i <= 40; ++i) {
        x.push_back(i * 0.25);
        bool gap = i >= 18 && i <= 22;  // x in [4.5, 5.5] is left unfilled
        lo.push_back(gap ? NAN : -1.0);
        hi.push_back(gap ? NAN : 1.0);
        mid.push_back(0.0);
    }
    plot::Chart c;
    c.y_range = {{-2, 2}};
    c.legend = false;
    c.add("mean", x, mid);
    c.add_band("±1", x, lo, hi);
    c.series[0].color = plot::Color{0, 0, 1};
    c.bands[0].color = plot::Color{1, 0, 0};
    c.bands[0].alpha = 0.5;
    std::string path = tmp / "band.png";
    plot::save_chart(c, path, 400, 300);
    Png png(path);
    REQUIRE(png.ok());
    // Half-transparent red over white, over about half the plot area minus
    // the gap; the blue mean line is drawn on top of it.
    long pink = png.count({1, 0.5, 0.5}, 4);
    CHECK(pink > 300 * 200 / 2 * 8 / 10 / 2);
    CHECK(pink < 400 * 300 / 2);
    CHECK(png.count({0, 0, 1}, 10) > 200);
    // The middle of the gap (x = 5, y = 0.5) stays white; the same height at
    // x = 2.5 is pink. The chart's x axis spans [-0.3, 10.3] over the plot area.
    int row = -1;  // y pixel of the band's upper half, found on the left part
    for (int y = 0; y < png.height() && row < 0; ++y) {
        Rgb p = png.at(png.width() / 4, y);
        if (std::abs(p.r - 255) <= 4 && std::abs(p.g - 128) <= 4 && std::abs(p.b - 128) <= 4) row = y + 10;
    }
    REQUIRE(row > 0);
    int gap_x = -1;  // a white column within the gap, between two pink ones
    for (int xp = png.width() / 3; xp < 2 * png.width() / 3 && gap_x < 0; ++xp) {
        Rgb p = png.at(xp, row);
        if (p.r == 255 && p.g == 255 && p.b == 255) gap_x = xp;
    }
    CHECK(gap_x > 0);

    plot::Chart bad;
    bad.add_band("short", {1, 2, 3}, {0, 0}, {1, 1, 1});
    check_throws([&] { plot::save_chart(bad, tmp / "bad.png"); }, tmp / "bad.png", "3 x values but 2 lo and 3 hi");
    bad.bands[0].lo = {0, 0, 0};
    bad.bands[0].alpha = 0;
    check_throws([&] { plot::save_chart(bad, tmp / "bad.png"); }, tmp / "bad.png", "alpha in (0, 1]");
}

TEST_CASE("plot: grid of subplots") {
    ScratchDir tmp;
    plot::Sheet sheet;
    sheet.title = "Activations";
    sheet.columns = 3;
    sheet.cell_width = 300;
    sheet.cell_height = 220;
    for (int i = 0; i < 5; ++i) sheet.add(sample_chart());
    std::string path = tmp / "grid.png";
    plot::save_sheet(sheet, path);
    check_png(path, 3 * 300, 2 * 220 + 44);
    Png png(path);
    CHECK(png.count(plot::palette(0), 10) > 5 * 50);  // every panel draws its curve
    // The sixth cell is empty: pure white.
    for (int y = 44 + 220 + 5; y < 44 + 440; y += 17)
        for (int x = 600 + 5; x < 900; x += 17) {
            Rgb p = png.at(x, y);
            CHECK((p.r == 255 && p.g == 255 && p.b == 255));
        }
}

TEST_CASE("plot: decision regions from class indices and probabilities") {
    ScratchDir tmp;
    plot::DecisionRegions r;
    r.title = "XOR";
    r.x_min = -0.5, r.x_max = 1.5, r.y_min = -0.5, r.y_max = 1.5;
    r.grid_w = 80, r.grid_h = 80;
    std::vector<double> in = r.grid_inputs();
    REQUIRE(in.size() == 2u * 80 * 80);
    CHECK(in[0] == doctest::Approx(-0.5 + 1.0 / 80));  // centre of the bottom-left cell
    CHECK(in[1] == doctest::Approx(-0.5 + 1.0 / 80));
    for (size_t k = 0; k < in.size(); k += 2)
        r.grid_class.push_back((in[k] > 0.5) != (in[k + 1] > 0.5) ? 1 : 0);
    r.px = {0, 0, 1, 1};
    r.py = {0, 1, 0, 1};
    r.plabel = {0, 1, 1, 0};
    r.class_names = {"y = 0", "y = 1"};
    std::string path = tmp / "xor.png";
    plot::save_regions(r, path, 500, 480);
    check_png(path, 500, 480);
    Png png(path);
    // Each class fills about a quarter of the plot area or more.
    CHECK(png.count(plot::region_color(0), 1) > 15000);
    CHECK(png.count(plot::region_color(1), 1) > 15000);
    CHECK(png.count(plot::palette(0), 12) > 20);  // the class-0 points
    CHECK(png.count(plot::palette(1), 12) > 20);

    // Binary probabilities (K = 1): fully certain cells get the pure tints.
    plot::DecisionRegions p = r;
    p.grid_class.clear();
    for (size_t k = 0; k < in.size(); k += 2) p.grid_prob.push_back(in[k] > 0.5 ? 1.0 : 0.0);
    std::string ppath = tmp / "prob.png";
    plot::save_regions(p, ppath, 400, 400);
    check_png(ppath, 400, 400);
    Png pp(ppath);
    CHECK(pp.count(plot::region_color(0), 1) > 10000);
    CHECK(pp.count(plot::region_color(1), 1) > 10000);
}

TEST_CASE("plot: grayscale image at an integer scale") {
    ScratchDir tmp;
    // 4x2: black, white, mid gray, clamped-above-one / NaN, clamped-below-zero ...
    plot::Image im(4, 2, std::vector<float>{0.f, 1.f, 0.5f, 2.f, NAN, -1.f, 0.25f, 1.f});
    std::string path = tmp / "img.png";
    plot::save_image(im, path, 10);
    check_png(path, 40, 20);
    Png png(path);
    auto gray_at = [&](int x, int y) {
        Rgb p = png.at(x, y);
        CHECK(p.r == p.g);
        CHECK(p.g == p.b);
        return p.r;
    };
    CHECK(gray_at(0, 0) == 0);
    CHECK(gray_at(9, 9) == 0);     // still the first pixel: nearest neighbour
    CHECK(gray_at(10, 0) == 255);
    CHECK(gray_at(25, 5) == 128);  // 0.5 rounds to 128
    CHECK(gray_at(35, 5) == 255);  // 2 is clamped
    CHECK(gray_at(5, 15) == 0);    // NaN shows black
    CHECK(gray_at(15, 15) == 0);   // -1 is clamped
    CHECK(gray_at(25, 15) == 64);
}

TEST_CASE("plot: contact sheet of images and decision regions with captions") {
    ScratchDir tmp;
    plot::Sheet sheet;
    sheet.cell_width = 150;
    sheet.cell_height = 150;
    std::vector<float> black(28 * 28, 0.f);
    sheet.add(plot::Image(28, 28, black), "original").add(plot::Image(28, 28, black), "reconstruction");
    plot::DecisionRegions r;
    r.grid_w = r.grid_h = 2;
    r.grid_class = {0, 1, 1, 0};
    sheet.add(r, "2x2 map");
    std::string path = tmp / "sheet.png";
    plot::save_sheet(sheet, path);  // 3 panels -> 2 columns, 2 rows, no title
    check_png(path, 300, 300);
    Png png(path);
    // 28 px images in a 150x126 figure box get scale 3 (84 px), centred.
    CHECK(png.count({0, 0, 0}, 0) >= 2 * 84 * 84);
    Rgb centre = png.at(75, 63);
    CHECK((centre.r == 0 && centre.g == 0 && centre.b == 0));
}

TEST_CASE("plot: confusion matrix") {
    ScratchDir tmp;
    std::vector<int> truth, pred;
    for (int k = 0; k < 3; ++k)
        for (int i = 0; i < 20; ++i) truth.push_back(k), pred.push_back(i < 18 ? k : (k + 1) % 3);
    plot::Confusion c = plot::Confusion::from_labels(truth, pred, 3);
    CHECK(c.counts[0][0] == 18);
    CHECK(c.counts[0][1] == 2);
    c.class_names = {"cat", "dog", "bird"};
    std::string path = tmp / "confusion.png";
    plot::save_confusion(c, path, 420, 400);
    check_png(path, 420, 400);
    Png png(path);
    // Zero cells are the palest end of the colour map (3 of the 9 cells).
    CHECK(png.count({0.969, 0.984, 1.0}, 1) > 3000);
    // Diagonal cells (90%) are dark blue.
    long dark = 0;
    for (int y = 0; y < png.height(); ++y)
        for (int x = 0; x < png.width(); ++x) {
            Rgb p = png.at(x, y);
            dark += p.b > 100 && p.r < 60 && p.b > p.r + 60;
        }
    CHECK(dark > 3000);

    CHECK_THROWS_AS(plot::Confusion::from_labels({0, 1}, {0}, 2), std::runtime_error);
    CHECK_THROWS_AS(plot::Confusion::from_labels({0, 5}, {0, 1}, 2), std::runtime_error);
}

TEST_CASE("plot: bad input and unwritable paths throw, naming the file") {
    ScratchDir tmp;
    std::string p = tmp / "bad.png";

    check_throws([&] { plot::save_chart(plot::Chart{}, p); }, p, "no series");
    plot::Chart mismatch;
    mismatch.add("loss", std::vector<double>{1, 2, 3}, std::vector<double>{1, 2});
    check_throws([&] { plot::save_chart(mismatch, p); }, p, "3 x values but 2 y values");
    plot::Chart empty;
    empty.add("nothing", std::vector<double>{}, std::vector<double>{});
    check_throws([&] { plot::save_chart(empty, p); }, p, "empty");
    plot::Chart nonpositive;
    nonpositive.log_y = true;
    nonpositive.add("zeros", std::vector<double>{1, 2}, std::vector<double>{0, -1});
    check_throws([&] { plot::save_chart(nonpositive, p); }, p, "log scale");
    check_throws([&] { plot::save_chart(sample_chart(), p, 10, 10); }, p, "out of range");

    plot::DecisionRegions r;
    r.grid_w = 3, r.grid_h = 3;
    r.grid_class = {0, 1};
    check_throws([&] { plot::save_regions(r, p); }, p, "needs 9");
    r.grid_class.assign(9, 0);
    r.px = {0.1};
    check_throws([&] { plot::save_regions(r, p); }, p, "must match");

    check_throws([&] { plot::save_image(plot::Image(3, 3, std::vector<float>(8)), p); }, p, "needs 9");
    check_throws([&] { plot::save_image(plot::Image(3, 3, std::vector<float>(9)), p, 0); }, p, "scale");

    plot::Confusion ragged;
    ragged.counts = {{1, 2}, {3}};
    check_throws([&] { plot::save_confusion(ragged, p); }, p, "square");

    check_throws([&] { plot::save_sheet(plot::Sheet{}, p); }, p, "no panels");
    plot::Sheet sheet;
    sheet.add(sample_chart()).add(plot::Chart{});
    check_throws([&] { plot::save_sheet(sheet, p); }, p, "panel 1");

    // A directory that does not exist: nothing to write into.
    std::string missing = tmp / "no/such/dir/out.png";
    check_throws([&] { plot::save_chart(sample_chart(), missing); }, missing, "cannot write");
    CHECK(tmp.files().empty());  // no temp files left behind
}
