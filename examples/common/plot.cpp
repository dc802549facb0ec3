// Cairo implementation of examples/common/plot.hpp.
//
// Every figure kind has three parts: problem() checks the input and returns
// a reason or "", draw_*() renders into a Box of a cairo context (so a Sheet
// can reuse it for its cells), and save_*() ties the two to write_png().
#include "plot.hpp"

#include <cairo.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <tuple>

namespace tapegrad::plot {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
    throw std::runtime_error("tapegrad::plot: " + path + ": " + reason);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

bool finite(double v) { return std::isfinite(v); }

// ------------------------------------------------------------ look & feel

// DejaVu Sans ships with fontconfig on Debian; fontconfig substitutes
// another sans face if it is missing.
constexpr const char* kFontFace = "DejaVu Sans";

const Color kWhite{1, 1, 1};
const Color kText{0.15, 0.15, 0.17};
const Color kMuted{0.36, 0.37, 0.40};
const Color kGrid{0.90, 0.91, 0.92};
const Color kMinorGrid{0.95, 0.955, 0.96};
const Color kFrame{0.55, 0.56, 0.58};

constexpr double kPad = 10;         // outer margin of every figure
constexpr double kTitleSize = 15;   // figure titles
constexpr double kLabelSize = 12.5; // axis labels, captions
constexpr double kTickSize = 11;    // tick labels, legend
constexpr double kTickLen = 4;
constexpr double kCaptionBand = 24; // Sheet caption strip (documented in the header)
constexpr double kSheetTitleBand = 44;

Color mix(Color a, Color b, double t) {  // (1-t)*a + t*b
    return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

void set_color(cairo_t* cr, Color c, double alpha = 1.0) {
    cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

struct Box {
    double x = 0, y = 0, w = 0, h = 0;
    double right() const { return x + w; }
    double bottom() const { return y + h; }
    bool contains(double px, double py) const {
        return px >= x && px <= right() && py >= y && py <= bottom();
    }
};

// ------------------------------------------------------------------ text

struct Font {
    double size = kTickSize;
    bool bold = false;
};

void use_font(cairo_t* cr, Font f) {
    cairo_select_font_face(cr, kFontFace, CAIRO_FONT_SLANT_NORMAL,
                           f.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, f.size);
}

double text_width(cairo_t* cr, const std::string& s, Font f) {
    use_font(cr, f);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    return e.x_advance;
}

// A label with an optional superscript, so log axes can read 10^-3 properly.
struct Label {
    std::string base, sup;
};

double label_width(cairo_t* cr, const Label& l, Font f) {
    double w = text_width(cr, l.base, f);
    if (!l.sup.empty()) w += 1 + text_width(cr, l.sup, {f.size * 0.72, f.bold});
    return w;
}

enum class Align { Left, Center, Right };

// Draws l so that y is the middle of its capital letters and x is its left
// edge, centre or right edge. With `vertical` the text reads bottom-to-top
// and (x, y) is the centre of the rotated line's anchor.
void draw_label(cairo_t* cr, const Label& l, double x, double y, Align align, Font f, Color c,
                bool vertical = false) {
    double w = label_width(cr, l, f);
    double dx = align == Align::Left ? 0 : align == Align::Center ? -w / 2 : -w;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    if (vertical) cairo_rotate(cr, -M_PI / 2);
    set_color(cr, c);
    double baseline = 0.36 * f.size;  // ~half the cap height of DejaVu Sans
    use_font(cr, f);
    cairo_move_to(cr, dx, baseline);
    cairo_show_text(cr, l.base.c_str());
    if (!l.sup.empty()) {
        double bw = text_width(cr, l.base, f);
        use_font(cr, {f.size * 0.72, f.bold});
        cairo_move_to(cr, dx + bw + 1, baseline - 0.45 * f.size);
        cairo_show_text(cr, l.sup.c_str());
    }
    cairo_restore(cr);
}

void draw_text(cairo_t* cr, const std::string& s, double x, double y, Align align, Font f,
               Color c, bool vertical = false) {
    draw_label(cr, {s, ""}, x, y, align, f, c, vertical);
}

// Shortens s with an ellipsis until it fits max_w (long captions in small
// sheet cells would otherwise run into their neighbours).
std::string fit_text(cairo_t* cr, std::string s, Font f, double max_w) {
    if (text_width(cr, s, f) <= max_w) return s;
    while (!s.empty()) {
        s.pop_back();
        while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
        if (text_width(cr, s + "\u2026", f) <= max_w) return s + "\u2026";
    }
    return s;
}

// ----------------------------------------------------------------- axes

struct Tick {
    double pos;  // in axis coordinates (log10 of the value on a log axis)
    Label label;
    bool major;  // minor ticks get a faint grid line and no label
};

// An axis maps [lo, hi] (log10 values when log) onto pixels.
struct Axis {
    double lo = 0, hi = 1;
    bool log = false;
    std::vector<Tick> ticks;
    double unit(double v) const {  // value -> [0, 1]
        double a = log ? std::log10(v) : v;
        return (a - lo) / (hi - lo);
    }
};

// 1, 2 or 5 times a power of ten: steps people can add up in their heads.
double nice_step(double raw) {
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

// "−3" with U+2212 MINUS SIGN: a hyphen looks too short next to digits.
std::string typographic_minus(std::string s) {
    if (!s.empty() && s[0] == '-') s.replace(0, 1, "\u2212");
    return s;
}

std::string format_tick(double v, double step) {
    if (std::fabs(v) < step * 1e-6) v = 0;  // no "-0" or 1e-17
    char buf[64];
    double big = std::fabs(v);
    if (big >= 1e6 || (step < 1e-4 && v != 0)) {
        std::snprintf(buf, sizeof buf, "%.3g", v);
    } else {
        int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
        std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    }
    return typographic_minus(buf);
}

std::vector<Tick> linear_ticks(double lo, double hi, double pixels, double spacing) {
    int target = std::max(2, static_cast<int>(pixels / spacing));
    double step = nice_step((hi - lo) / target);
    std::vector<Tick> ticks;
    long k0 = static_cast<long>(std::ceil(lo / step - 1e-9));
    long k1 = static_cast<long>(std::floor(hi / step + 1e-9));
    for (long k = k0; k <= k1; ++k) {
        double v = k * step;
        ticks.push_back({v, {format_tick(v, step), ""}, true});
    }
    return ticks;
}

// Decades labelled 10^k; within a single decade fall back to linear steps
// of the value (positions still logarithmic).
std::vector<Tick> log_ticks(double lo, double hi, double pixels, double spacing) {
    int d0 = static_cast<int>(std::ceil(lo - 1e-9));
    int d1 = static_cast<int>(std::floor(hi + 1e-9));
    std::vector<Tick> ticks;
    if (d1 - d0 + 1 >= 2) {
        int target = std::max(2, static_cast<int>(pixels / spacing));
        int need = std::max(1, static_cast<int>(std::ceil((d1 - d0 + 1.0) / target)));
        int every = 1;  // label every 1, 2, 3, 5, 10, ... decades
        for (int e : {1, 2, 3, 5, 10, 20, 50, 100})
            if ((every = e) >= need) break;
        for (int d = d0 - 1; d <= d1; ++d) {
            if (d >= d0 && d % every == 0) ticks.push_back({double(d), {"10", typographic_minus(std::to_string(d))}, true});
            if (every > 1) continue;
            for (int m = 2; m <= 9; ++m) {
                double p = d + std::log10(double(m));
                if (p > lo && p < hi) ticks.push_back({p, {}, false});
            }
        }
        return ticks;
    }
    for (Tick t : linear_ticks(std::pow(10.0, lo), std::pow(10.0, hi), pixels, spacing)) {
        double v = t.pos;
        if (v <= 0) continue;
        t.pos = std::log10(v);
        ticks.push_back(t);
    }
    return ticks;
}

void make_ticks(Axis& a, double pixels, double spacing) {
    a.ticks = a.log ? log_ticks(a.lo, a.hi, pixels, spacing) : linear_ticks(a.lo, a.hi, pixels, spacing);
}

// Widens [lo, hi] by frac of its span on each side; a flat range gets a
// sensible size so a constant series is still drawn mid-plot.
std::pair<double, double> padded(double lo, double hi, double frac) {
    if (hi == lo) {
        double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
        return {lo - d, hi + d};
    }
    double s = hi - lo;
    return {lo - s * frac, hi + s * frac};
}

// Where the plot area ends up, with the axes' final ticks.
struct Frame {
    Box area;
    Axis x, y;
    double px(double v) const { return area.x + x.unit(v) * area.w; }
    double py(double v) const { return area.bottom() - y.unit(v) * area.h; }
};

struct AxisText {
    std::string title, xlabel, ylabel;
};

double title_band(const std::string& title) { return title.empty() ? 4 : kTitleSize * 1.2 + 12; }

// Lays out the title, tick labels and axis labels around the plot area in
// `outer`. equal_aspect keeps data units the same size on both axes.
Frame layout_frame(cairo_t* cr, Box outer, const AxisText& text, Axis x, Axis y, bool equal_aspect) {
    const Font tick{kTickSize};
    double top = outer.y + kPad + title_band(text.title);
    double bottom_band = kPad + kTickLen + 6 + kTickSize + (text.xlabel.empty() ? 0 : kLabelSize + 10);
    double plot_h = std::max(20.0, outer.bottom() - bottom_band - top);
    make_ticks(y, plot_h, 42);
    double ytick_w = 0;
    for (const Tick& t : y.ticks) ytick_w = std::max(ytick_w, label_width(cr, t.label, tick));
    double left = kPad + (text.ylabel.empty() ? 0 : kLabelSize + 10) + ytick_w + kTickLen + 5;
    double right = kPad + 14;  // room for half of the last x tick label
    double plot_w = std::max(20.0, outer.w - left - right);

    Box area{outer.x + left, top, plot_w, plot_h};
    if (equal_aspect) {
        double ux = (x.hi - x.lo) / area.w, uy = (y.hi - y.lo) / area.h;
        if (ux > uy) {
            double h = (y.hi - y.lo) / ux;
            area.y += (area.h - h) / 2;
            area.h = h;
        } else {
            double w = (x.hi - x.lo) / uy;
            area.x += (area.w - w) / 2;
            area.w = w;
        }
        make_ticks(y, area.h, 42);
    }
    // Space x ticks so their labels never touch.
    double spacing = 80;
    for (int attempt = 0; attempt < 6; ++attempt) {
        make_ticks(x, area.w, spacing);
        double widest = 0;
        for (const Tick& t : x.ticks) widest = std::max(widest, label_width(cr, t.label, tick));
        int majors = 0;
        for (const Tick& t : x.ticks) majors += t.major;
        if (majors < 2 || area.w / majors >= widest + 14) break;
        spacing *= 1.5;
    }
    return {area, x, y};
}

void draw_frame_back(cairo_t* cr, const Frame& f) {
    const Box& a = f.area;
    set_color(cr, kWhite);
    cairo_rectangle(cr, a.x, a.y, a.w, a.h);
    cairo_fill(cr);
    cairo_set_line_width(cr, 1);
    for (bool major : {false, true}) {
        set_color(cr, major ? kGrid : kMinorGrid);
        for (const Tick& t : f.x.ticks) {
            if (t.major != major) continue;
            double px = std::round(a.x + (t.pos - f.x.lo) / (f.x.hi - f.x.lo) * a.w) + 0.5;
            cairo_move_to(cr, px, a.y);
            cairo_line_to(cr, px, a.bottom());
        }
        for (const Tick& t : f.y.ticks) {
            if (t.major != major) continue;
            double py = std::round(a.bottom() - (t.pos - f.y.lo) / (f.y.hi - f.y.lo) * a.h) + 0.5;
            cairo_move_to(cr, a.x, py);
            cairo_line_to(cr, a.right(), py);
        }
        cairo_stroke(cr);
    }
}

// Frame, ticks, tick labels, axis labels and title, drawn over the data.
void draw_frame_front(cairo_t* cr, const Frame& f, Box outer, const AxisText& text) {
    const Box& a = f.area;
    const Font tick{kTickSize};
    cairo_set_line_width(cr, 1);
    set_color(cr, kFrame);
    cairo_rectangle(cr, std::round(a.x) + 0.5, std::round(a.y) + 0.5, std::round(a.w),
                    std::round(a.h));
    cairo_stroke(cr);
    for (const Tick& t : f.x.ticks) {
        if (!t.major) continue;
        double px = std::round(a.x + (t.pos - f.x.lo) / (f.x.hi - f.x.lo) * a.w) + 0.5;
        cairo_move_to(cr, px, std::round(a.bottom()) + 0.5);
        cairo_line_to(cr, px, std::round(a.bottom()) + 0.5 + kTickLen);
        cairo_stroke(cr);
        draw_label(cr, t.label, px, a.bottom() + kTickLen + 6 + kTickSize / 2, Align::Center, tick, kMuted);
    }
    double ytick_w = 0;
    for (const Tick& t : f.y.ticks) {
        if (!t.major) continue;
        ytick_w = std::max(ytick_w, label_width(cr, t.label, tick));
        double py = std::round(a.bottom() - (t.pos - f.y.lo) / (f.y.hi - f.y.lo) * a.h) + 0.5;
        cairo_move_to(cr, std::round(a.x) + 0.5, py);
        cairo_line_to(cr, std::round(a.x) + 0.5 - kTickLen, py);
        cairo_stroke(cr);
        draw_label(cr, t.label, a.x - kTickLen - 4, py, Align::Right, tick, kMuted);
    }
    if (!text.xlabel.empty()) {
        double y = a.bottom() + kTickLen + 6 + kTickSize + 8 + kLabelSize / 2;
        draw_text(cr, text.xlabel, a.x + a.w / 2, y, Align::Center, {kLabelSize}, kText);
    }
    if (!text.ylabel.empty()) {
        double x = a.x - kTickLen - 6 - ytick_w - 8 - kLabelSize / 2;
        draw_text(cr, text.ylabel, x, a.y + a.h / 2, Align::Center, {kLabelSize}, kText, true);
    }
    if (!text.title.empty()) {
        // Centred over the plot area (which an equal-aspect plot may have
        // shrunk), kept inside the figure.
        Font tf{kTitleSize, true};
        std::string t = fit_text(cr, text.title, tf, outer.w - 2 * kPad);
        double half = text_width(cr, t, tf) / 2;
        double cx = std::clamp(a.x + a.w / 2, outer.x + kPad + half, outer.right() - kPad - half);
        double cy = a.y - title_band(text.title) + kTitleSize * 0.6;
        draw_text(cr, t, cx, cy, Align::Center, tf, kText);
    }
}

// ---------------------------------------------------------------- markers

void marker_path(cairo_t* cr, double x, double y, double r, int shape) {
    switch (((shape % 5) + 5) % 5) {
        case 0: cairo_new_sub_path(cr); cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
        case 1: cairo_rectangle(cr, x - r * 0.88, y - r * 0.88, r * 1.76, r * 1.76); break;
        case 2:  // triangle up
            cairo_move_to(cr, x, y - r * 1.15);
            cairo_line_to(cr, x + r * 1.05, y + r * 0.75);
            cairo_line_to(cr, x - r * 1.05, y + r * 0.75);
            cairo_close_path(cr);
            break;
        case 3:  // diamond
            cairo_move_to(cr, x, y - r * 1.2);
            cairo_line_to(cr, x + r * 1.2, y);
            cairo_line_to(cr, x, y + r * 1.2);
            cairo_line_to(cr, x - r * 1.2, y);
            cairo_close_path(cr);
            break;
        default:  // triangle down
            cairo_move_to(cr, x, y + r * 1.15);
            cairo_line_to(cr, x + r * 1.05, y - r * 0.75);
            cairo_line_to(cr, x - r * 1.05, y - r * 0.75);
            cairo_close_path(cr);
            break;
    }
}

// A white rim keeps overlapping points and points on tinted regions apart.
void draw_marker(cairo_t* cr, double x, double y, double r, int shape, Color fill) {
    marker_path(cr, x, y, r, shape);
    set_color(cr, fill);
    cairo_fill_preserve(cr);
    set_color(cr, kWhite, 0.9);
    cairo_set_line_width(cr, std::max(0.6, r * 0.25));
    cairo_stroke(cr);
}

void set_line_style(cairo_t* cr, Style style, double width) {
    cairo_set_line_width(cr, width);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (style == Style::Dashed) {
        const double dash[] = {7, 4.5};
        cairo_set_dash(cr, dash, 2, 0);
    } else {
        cairo_set_dash(cr, nullptr, 0, 0);
    }
}

// ----------------------------------------------------------------- legend

struct LegendEntry {
    std::string name;
    Color color;
    Style style;
    int shape;
    double band_alpha = 0;  // > 0: a Band, shown as a filled swatch
};

// Puts the legend in the corner of the plot area that hides the fewest of
// `occupied` (pixel positions of the data), preferring the top right.
void draw_legend(cairo_t* cr, const std::vector<LegendEntry>& entries, Box area,
                 const std::vector<std::pair<double, double>>& occupied) {
    if (entries.empty()) return;
    double n = double(entries.size());
    double row = std::min(18.0, (area.h - 16) / n);
    if (row < 7) return;  // no room: better no legend than an unreadable one
    Font f{std::min(kTickSize, row * 0.66)};
    double sample = 24, inner = 7;
    double text_w = 0;
    for (const auto& e : entries) text_w = std::max(text_w, text_width(cr, e.name, f));
    double w = std::min(inner + sample + 6 + text_w + inner, area.w - 16);
    double h = n * row + 2 * 5;
    const double inset = 8;
    Box corners[] = {{area.right() - inset - w, area.y + inset, w, h},
                     {area.x + inset, area.y + inset, w, h},
                     {area.right() - inset - w, area.bottom() - inset - h, w, h},
                     {area.x + inset, area.bottom() - inset - h, w, h}};
    Box best = corners[0];
    size_t best_hits = std::numeric_limits<size_t>::max();
    for (const Box& c : corners) {
        size_t hits = 0;
        for (const auto& p : occupied) hits += c.contains(p.first, p.second);
        if (hits < best_hits) best = c, best_hits = hits;
    }
    cairo_save(cr);
    cairo_rectangle(cr, best.x + 0.5, best.y + 0.5, best.w, best.h);
    set_color(cr, kWhite, 0.88);
    cairo_fill_preserve(cr);
    set_color(cr, kFrame, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        double cy = best.y + 5 + row * (i + 0.5);
        double sx = best.x + inner;
        if (e.band_alpha > 0) {
            cairo_rectangle(cr, sx, cy - row * 0.3, sample, row * 0.6);
            set_color(cr, e.color, e.band_alpha);
            cairo_fill(cr);
        } else if (e.style != Style::Markers) {
            set_line_style(cr, e.style, 2.2);
            set_color(cr, e.color);
            cairo_move_to(cr, sx, cy);
            cairo_line_to(cr, sx + sample, cy);
            cairo_stroke(cr);
            set_line_style(cr, Style::Line, 1);
        }
        if (e.band_alpha == 0 && (e.style == Style::Markers || e.style == Style::LineMarkers))
            draw_marker(cr, sx + sample / 2, cy, std::min(4.0, row * 0.25), e.shape, e.color);
        std::string name = fit_text(cr, e.name, f, best.w - (inner + sample + 6 + inner));
        draw_text(cr, name, sx + sample + 6, cy, Align::Left, f, kText);
    }
    cairo_restore(cr);
}

// ----------------------------------------------------------------- charts

std::string series_label(const Series& s, size_t i) {
    return s.name.empty() ? "series " + std::to_string(i) : "series " + quoted(s.name);
}

bool usable(const Chart& c, double x, double y) {
    return finite(x) && finite(y) && (!c.log_y || y > 0);
}

std::string band_label(const Band& b, size_t i) {
    return b.name.empty() ? "band " + std::to_string(i) : "band " + quoted(b.name);
}

std::string problem(const Chart& c) {
    if (c.series.empty() && c.bands.empty()) return "chart has no series";
    size_t points = 0;
    for (size_t i = 0; i < c.bands.size(); ++i) {
        const Band& b = c.bands[i];
        if (b.lo.size() != b.x.size() || b.hi.size() != b.x.size())
            return band_label(b, i) + " has " + std::to_string(b.x.size()) + " x values but " +
                   std::to_string(b.lo.size()) + " lo and " + std::to_string(b.hi.size()) + " hi values";
        if (b.x.empty()) return band_label(b, i) + " is empty";
        if (!(b.alpha > 0 && b.alpha <= 1)) return band_label(b, i) + " needs alpha in (0, 1]";
        for (size_t k = 0; k < b.x.size(); ++k) points += usable(c, b.x[k], b.lo[k]) && usable(c, b.x[k], b.hi[k]);
    }
    for (size_t i = 0; i < c.series.size(); ++i) {
        const Series& s = c.series[i];
        if (s.x.size() != s.y.size())
            return series_label(s, i) + " has " + std::to_string(s.x.size()) + " x values but " +
                   std::to_string(s.y.size()) + " y values";
        if (s.x.empty()) return series_label(s, i) + " is empty";
        for (size_t k = 0; k < s.x.size(); ++k) points += usable(c, s.x[k], s.y[k]);
    }
    if (points == 0)
        return c.log_y ? "no finite positive y values to draw on a log scale" : "no finite points to draw";
    if (c.x_range && !(finite(c.x_range->first) && finite(c.x_range->second) && c.x_range->first < c.x_range->second))
        return "x_range must be finite with min < max";
    if (c.y_range && !(finite(c.y_range->first) && finite(c.y_range->second) && c.y_range->first < c.y_range->second))
        return "y_range must be finite with min < max";
    if (c.y_range && c.log_y && c.y_range->first <= 0) return "y_range must be positive on a log scale";
    return {};
}

// Fills each run of usable points: along hi left to right, back along lo.
void draw_band(cairo_t* cr, const Chart& c, const Frame& f, const Band& b, Color color,
               std::vector<std::pair<double, double>>& occupied) {
    set_color(cr, color, b.alpha);
    size_t k = 0;
    while (k < b.x.size()) {
        auto ok = [&](size_t j) { return usable(c, b.x[j], b.lo[j]) && usable(c, b.x[j], b.hi[j]); };
        if (!ok(k)) { ++k; continue; }
        size_t end = k;
        while (end < b.x.size() && ok(end)) ++end;
        for (size_t j = k; j < end; ++j) {
            cairo_line_to(cr, f.px(b.x[j]), f.py(b.hi[j]));
            occupied.emplace_back(f.px(b.x[j]), f.py(b.hi[j]));
            occupied.emplace_back(f.px(b.x[j]), f.py(b.lo[j]));
        }
        for (size_t j = end; j-- > k;) cairo_line_to(cr, f.px(b.x[j]), f.py(b.lo[j]));
        cairo_close_path(cr);
        cairo_fill(cr);
        k = end;
    }
}

void draw_chart(cairo_t* cr, const Chart& c, Box box) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (const Series& s : c.series)
        for (size_t k = 0; k < s.x.size(); ++k) {
            if (!usable(c, s.x[k], s.y[k])) continue;
            double y = c.log_y ? std::log10(s.y[k]) : s.y[k];
            xmin = std::min(xmin, s.x[k]), xmax = std::max(xmax, s.x[k]);
            ymin = std::min(ymin, y), ymax = std::max(ymax, y);
        }
    for (const Band& b : c.bands)
        for (size_t k = 0; k < b.x.size(); ++k) {
            if (!usable(c, b.x[k], b.lo[k]) || !usable(c, b.x[k], b.hi[k])) continue;
            double lo = c.log_y ? std::log10(b.lo[k]) : b.lo[k], hi = c.log_y ? std::log10(b.hi[k]) : b.hi[k];
            xmin = std::min(xmin, b.x[k]), xmax = std::max(xmax, b.x[k]);
            ymin = std::min({ymin, lo, hi}), ymax = std::max({ymax, lo, hi});
        }
    Axis x, y;
    std::tie(x.lo, x.hi) = c.x_range ? *c.x_range : padded(xmin, xmax, 0.03);
    if (c.y_range)
        std::tie(y.lo, y.hi) = c.log_y ? std::make_pair(std::log10(c.y_range->first), std::log10(c.y_range->second))
                                       : *c.y_range;
    else
        std::tie(y.lo, y.hi) = padded(ymin, ymax, 0.05);
    y.log = c.log_y;
    AxisText text{c.title, c.xlabel, c.ylabel};
    Frame f = layout_frame(cr, box, text, x, y, false);
    draw_frame_back(cr, f);

    std::vector<std::pair<double, double>> occupied;
    std::vector<LegendEntry> legend;
    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y, f.area.w, f.area.h);
    cairo_clip(cr);
    for (size_t i = 0; i < c.bands.size(); ++i) {
        const Band& b = c.bands[i];
        Color color = b.color ? *b.color : palette(int(i));
        draw_band(cr, c, f, b, color, occupied);
        if (!b.name.empty()) legend.push_back({b.name, color, Style::Line, 0, b.alpha});
    }
    for (size_t i = 0; i < c.series.size(); ++i) {
        const Series& s = c.series[i];
        Color color = s.color ? *s.color : palette(int(i));
        std::vector<std::pair<double, double>> pts;  // NaN pair = break
        for (size_t k = 0; k < s.x.size(); ++k) {
            if (usable(c, s.x[k], s.y[k]))
                pts.emplace_back(f.px(s.x[k]), f.py(s.y[k]));
            else
                pts.emplace_back(NAN, NAN);
        }
        if (s.style != Style::Markers) {
            set_line_style(cr, s.style, 2.2);
            set_color(cr, color);
            bool pen = false;
            for (size_t k = 0; k < pts.size(); ++k) {
                auto [px, py] = pts[k];
                if (!finite(px)) { pen = false; continue; }
                if (pen) {
                    // Sample the segment so legend placement sees lines too.
                    auto [qx, qy] = pts[k - 1];
                    int steps = std::min(200, int(std::hypot(px - qx, py - qy) / 6));
                    for (int t = 1; t < steps; ++t)
                        occupied.emplace_back(qx + (px - qx) * t / steps, qy + (py - qy) * t / steps);
                    cairo_line_to(cr, px, py);
                } else {
                    cairo_move_to(cr, px, py);
                }
                pen = true;
            }
            cairo_stroke(cr);
            set_line_style(cr, Style::Line, 1);
        }
        if (s.style == Style::Markers || s.style == Style::LineMarkers) {
            double r = pts.size() > 2000 ? 2 : pts.size() > 300 ? 2.8 : 3.6;
            for (auto [px, py] : pts)
                if (finite(px)) draw_marker(cr, px, py, r, 0, color);
        }
        for (auto p : pts)
            if (finite(p.first)) occupied.push_back(p);
        if (!s.name.empty()) legend.push_back({s.name, color, s.style, 0});
    }
    cairo_restore(cr);
    draw_frame_front(cr, f, box, text);
    if (c.legend) draw_legend(cr, legend, f.area, occupied);
}

// ------------------------------------------------------- decision regions

size_t grid_cells(const DecisionRegions& r) { return size_t(r.grid_w) * size_t(r.grid_h); }

int region_classes(const DecisionRegions& r) {
    int k = int(r.class_names.size());
    if (!r.grid_prob.empty()) k = std::max(k, std::max(2, int(r.grid_prob.size() / grid_cells(r))));
    for (int c : r.grid_class) k = std::max(k, c + 1);
    for (int c : r.plabel) k = std::max(k, c + 1);
    return std::max(k, 1);
}

std::string problem(const DecisionRegions& r) {
    if (!(finite(r.x_min) && finite(r.x_max) && r.x_min < r.x_max && finite(r.y_min) &&
          finite(r.y_max) && r.y_min < r.y_max))
        return "region box must be finite with x_min < x_max and y_min < y_max";
    if (r.grid_w <= 0 || r.grid_h <= 0)
        return "grid is " + std::to_string(r.grid_w) + "x" + std::to_string(r.grid_h) +
               "; both sides must be positive";
    size_t cells = grid_cells(r);
    if (r.grid_class.empty() && r.grid_prob.empty()) return "no grid values: set grid_class or grid_prob";
    if (!r.grid_class.empty() && !r.grid_prob.empty()) return "set grid_class or grid_prob, not both";
    if (!r.grid_class.empty()) {
        if (r.grid_class.size() != cells)
            return "grid_class has " + std::to_string(r.grid_class.size()) + " values but the " +
                   std::to_string(r.grid_w) + "x" + std::to_string(r.grid_h) + " grid needs " +
                   std::to_string(cells);
        for (size_t i = 0; i < cells; ++i)
            if (r.grid_class[i] < 0)
                return "grid_class[" + std::to_string(i) + "] = " + std::to_string(r.grid_class[i]) +
                       " is not a class index";
    } else {
        if (r.grid_prob.size() % cells != 0)
            return "grid_prob has " + std::to_string(r.grid_prob.size()) +
                   " values, not a multiple of the " + std::to_string(cells) + " grid cells";
        for (size_t i = 0; i < r.grid_prob.size(); ++i)
            if (!finite(r.grid_prob[i]) || r.grid_prob[i] < 0)
                return "grid_prob[" + std::to_string(i) + "] is not a probability";
    }
    if (r.px.size() != r.py.size() || r.px.size() != r.plabel.size())
        return "points have " + std::to_string(r.px.size()) + " x, " + std::to_string(r.py.size()) +
               " y and " + std::to_string(r.plabel.size()) + " labels; they must match";
    for (size_t i = 0; i < r.plabel.size(); ++i)
        if (r.plabel[i] < 0)
            return "plabel[" + std::to_string(i) + "] = " + std::to_string(r.plabel[i]) + " is not a class index";
    return {};
}

Color cell_color(const DecisionRegions& r, size_t cell) {
    if (!r.grid_class.empty()) return region_color(r.grid_class[cell]);
    size_t k = r.grid_prob.size() / grid_cells(r);
    const double* p = &r.grid_prob[cell * k];
    if (k == 1) return mix(region_color(0), region_color(1), std::clamp(p[0], 0.0, 1.0));
    double sum = 0;
    Color c{0, 0, 0};
    for (size_t j = 0; j < k; ++j) {
        Color t = region_color(int(j));
        c.r += p[j] * t.r, c.g += p[j] * t.g, c.b += p[j] * t.b;
        sum += p[j];
    }
    if (sum <= 0) return kWhite;
    return {c.r / sum, c.g / sum, c.b / sum};
}

uint32_t pack_rgb(Color c) {
    auto ch = [](double v) { return uint32_t(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
    return (ch(c.r) << 16) | (ch(c.g) << 8) | ch(c.b);
}

// RAII for cairo objects.
struct SurfaceRef {
    cairo_surface_t* s;
    explicit SurfaceRef(cairo_surface_t* surface) : s(surface) {}
    ~SurfaceRef() { cairo_surface_destroy(s); }
    SurfaceRef(const SurfaceRef&) = delete;
    SurfaceRef& operator=(const SurfaceRef&) = delete;
};

void draw_regions(cairo_t* cr, const DecisionRegions& r, Box box) {
    int classes = region_classes(r);
    Axis x, y;
    x.lo = r.x_min, x.hi = r.x_max, y.lo = r.y_min, y.hi = r.y_max;
    AxisText text{r.title, r.xlabel, r.ylabel};
    Frame f = layout_frame(cr, box, text, x, y, true);

    // The class map as a grid_w x grid_h image (top row = highest y),
    // stretched over the plot area.
    SurfaceRef raster(cairo_image_surface_create(CAIRO_FORMAT_RGB24, r.grid_w, r.grid_h));
    cairo_surface_flush(raster.s);
    unsigned char* data = cairo_image_surface_get_data(raster.s);
    int stride = cairo_image_surface_get_stride(raster.s);
    for (int j = 0; j < r.grid_h; ++j) {
        auto* row = reinterpret_cast<uint32_t*>(data + size_t(r.grid_h - 1 - j) * stride);
        for (int i = 0; i < r.grid_w; ++i) row[i] = pack_rgb(cell_color(r, size_t(j) * r.grid_w + i));
    }
    cairo_surface_mark_dirty(raster.s);
    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y, f.area.w, f.area.h);
    cairo_clip(cr);
    cairo_translate(cr, f.area.x, f.area.y);
    cairo_scale(cr, f.area.w / r.grid_w, f.area.h / r.grid_h);
    cairo_set_source_surface(cr, raster.s, 0, 0);
    cairo_pattern_t* pat = cairo_get_source(cr);
    cairo_pattern_set_extend(pat, CAIRO_EXTEND_PAD);
    // Hard class maps keep crisp cells; probability maps are smooth fields.
    cairo_pattern_set_filter(pat, r.grid_class.empty() ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);

    std::vector<std::pair<double, double>> occupied;
    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y, f.area.w, f.area.h);
    cairo_clip(cr);
    size_t n = r.px.size();
    double radius = n > 2000 ? 2.2 : n > 400 ? 3 : 4;
    for (size_t i = 0; i < n; ++i) {
        if (!finite(r.px[i]) || !finite(r.py[i])) continue;
        double px = f.px(r.px[i]), py = f.py(r.py[i]);
        draw_marker(cr, px, py, radius, r.plabel[i], palette(r.plabel[i]));
        occupied.emplace_back(px, py);
    }
    cairo_restore(cr);
    draw_frame_front(cr, f, box, text);

    std::vector<LegendEntry> legend;
    if (r.legend && (!r.px.empty() || !r.class_names.empty()))
        for (int k = 0; k < classes; ++k) {
            std::string name = k < int(r.class_names.size()) ? r.class_names[k] : "class " + std::to_string(k);
            legend.push_back({name, palette(k), Style::Markers, k});
        }
    draw_legend(cr, legend, f.area, occupied);
}

// ------------------------------------------------------- confusion matrix

std::string problem(const Confusion& c) {
    size_t n = c.counts.size();
    if (n == 0) return "confusion matrix is empty";
    for (size_t i = 0; i < n; ++i) {
        if (c.counts[i].size() != n)
            return "confusion matrix must be square: row " + std::to_string(i) + " has " +
                   std::to_string(c.counts[i].size()) + " entries, expected " + std::to_string(n);
        for (double v : c.counts[i])
            if (!finite(v) || v < 0) return "confusion matrix counts must be finite and non-negative";
    }
    if (!c.class_names.empty() && c.class_names.size() != n)
        return std::to_string(c.class_names.size()) + " class names for a " + std::to_string(n) + "x" +
               std::to_string(n) + " confusion matrix";
    return {};
}

// White through mid blue to navy: a sequential map, readable in grayscale.
Color heat(double t) {
    const Color a{0.969, 0.984, 1.0}, b{0.42, 0.68, 0.84}, c{0.031, 0.188, 0.42};
    t = std::clamp(t, 0.0, 1.0);
    return t < 0.5 ? mix(a, b, t * 2) : mix(b, c, (t - 0.5) * 2);
}

std::string format_count(double v) {
    char buf[32];
    if (v == std::floor(v) && v < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

void draw_confusion(cairo_t* cr, const Confusion& c, Box box) {
    const size_t n = c.counts.size();
    std::vector<std::string> names = c.class_names;
    for (size_t i = names.size(); i < n; ++i) names.push_back(std::to_string(i));
    // Class names go left of the rows and under the columns (turned upright
    // when wider than a cell). Shrink their font until a cell is tall enough
    // for one line; if even 6 px text does not fit, leave the names out.
    double top = box.y + kPad + title_band(c.title) + 4;
    Font tick{kTickSize};
    double name_w = 0, cell = 0, names_h = 0, left = 0, avail_w = 0;
    bool upright = false, show_names = true;
    for (;;) {
        name_w = 0;
        if (show_names)
            for (const auto& s : names) name_w = std::max(name_w, text_width(cr, s, tick));
        left = kPad + kLabelSize + 12 + (show_names ? name_w + 8 : 0);
        avail_w = box.w - left - kPad;
        double below = kPad + kLabelSize + 18;
        cell = std::floor(std::min(avail_w, box.h - top - below - (show_names ? tick.size : 0)) / double(n));
        upright = show_names && name_w > cell - 4;
        names_h = !show_names ? 0 : upright ? name_w : tick.size;
        cell = std::floor(std::min(avail_w, box.h - top - below - names_h) / double(n));
        if (!show_names || cell >= tick.size * 1.25) break;
        if (tick.size > 6) tick.size -= 0.5;
        else show_names = false;
    }
    cell = std::max(cell, 2.0);
    double side = cell * n;
    double mx = box.x + left + std::max(0.0, (avail_w - side) / 2), my = top;

    for (size_t t = 0; t < n; ++t) {
        double row_sum = 0;
        for (double v : c.counts[t]) row_sum += v;
        for (size_t p = 0; p < n; ++p) {
            double v = c.counts[t][p];
            double frac = row_sum > 0 ? v / row_sum : 0;
            double x = mx + p * cell, y = my + t * cell;
            set_color(cr, heat(frac));
            cairo_rectangle(cr, x + 0.5, y + 0.5, cell - 1, cell - 1);
            cairo_fill(cr);
            Color ink = frac > 0.55 ? kWhite : kText;
            Font f{std::clamp(cell * 0.3, 7.0, 16.0), frac > 0.55};
            std::string s = format_count(v);
            while (f.size > 6 && text_width(cr, s, f) > cell - 4) f.size -= 0.5;
            if (f.size <= 6) continue;  // too small to read: colour alone
            bool show_pct = cell >= 46 && row_sum > 0;
            double cy = y + cell / 2 - (show_pct ? f.size * 0.45 : 0);
            draw_text(cr, s, x + cell / 2, cy, Align::Center, f, ink);
            if (show_pct) {
                char pct[16];
                std::snprintf(pct, sizeof pct, "%.0f%%", frac * 100);
                draw_text(cr, pct, x + cell / 2, cy + f.size * 1.15, Align::Center,
                          {f.size * 0.7}, mix(ink, heat(frac), 0.25));
            }
        }
    }
    set_color(cr, kFrame);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, std::round(mx) + 0.5, std::round(my) + 0.5, side - 1, side - 1);
    cairo_stroke(cr);

    for (size_t i = 0; i < n && show_names; ++i) {
        double mid = std::round(i * cell + cell / 2);
        draw_text(cr, names[i], mx - 6, my + mid, Align::Right, tick, kMuted);
        if (upright)
            draw_text(cr, names[i], mx + mid, my + side + 6, Align::Right, tick, kMuted, true);
        else
            draw_text(cr, names[i], mx + mid, my + side + 6 + kTickSize / 2, Align::Center, tick, kMuted);
    }
    draw_text(cr, "predicted class", mx + side / 2, my + side + 6 + names_h + 10 + kLabelSize / 2,
              Align::Center, {kLabelSize}, kText);
    draw_text(cr, "true class", mx - (show_names ? name_w + 16 : 8) - kLabelSize / 2, my + side / 2, Align::Center,
              {kLabelSize}, kText, true);
    if (!c.title.empty()) {
        Font tf{kTitleSize, true};
        draw_text(cr, fit_text(cr, c.title, tf, box.w - 2 * kPad), box.x + box.w / 2,
                  box.y + kPad + kTitleSize * 0.6, Align::Center, tf, kText);
    }
}

// ----------------------------------------------------------------- images

std::string problem(const Image& im) {
    if (im.width <= 0 || im.height <= 0)
        return "image is " + std::to_string(im.width) + "x" + std::to_string(im.height) +
               "; both sides must be positive";
    size_t want = size_t(im.width) * size_t(im.height);
    if (im.pixels.size() != want)
        return "image has " + std::to_string(im.pixels.size()) + " pixels but " + std::to_string(im.width) +
               "x" + std::to_string(im.height) + " needs " + std::to_string(want);
    return {};
}

uint32_t gray(float v) {
    if (!(v > 0)) v = 0;  // also NaN
    uint32_t g = uint32_t(std::lround(std::min(v, 1.0f) * 255.0f));
    return (g << 16) | (g << 8) | g;
}

// The image at scale `s` (nearest neighbour) with its top left at (x, y).
void fill_image(cairo_surface_t* dst, const Image& im, int x, int y, int s) {
    cairo_surface_flush(dst);
    unsigned char* data = cairo_image_surface_get_data(dst);
    int stride = cairo_image_surface_get_stride(dst);
    int dw = cairo_image_surface_get_width(dst), dh = cairo_image_surface_get_height(dst);
    for (int r = 0; r < im.height * s; ++r) {
        int py = y + r;
        if (py < 0 || py >= dh) continue;
        auto* row = reinterpret_cast<uint32_t*>(data + size_t(py) * stride);
        const float* src = &im.pixels[size_t(r / s) * im.width];
        for (int c = 0; c < im.width * s; ++c) {
            int px = x + c;
            if (px >= 0 && px < dw) row[px] = gray(src[c / s]);
        }
    }
    cairo_surface_mark_dirty(dst);
}

// In a sheet cell: the largest whole enlargement that fits (a fractional
// shrink if even 1x does not), centred, with a hairline border so white
// edges stay visible on the white sheet.
void draw_image(cairo_t* cr, const Image& im, Box box) {
    double fit = std::min((box.w - 2 * kPad) / im.width, (box.h - 2 * kPad) / im.height);
    double s = fit >= 1 ? std::floor(fit) : std::max(fit, 0.01);
    double w = im.width * s, h = im.height * s;
    double x = std::round(box.x + (box.w - w) / 2), y = std::round(box.y + (box.h - h) / 2);
    SurfaceRef src(cairo_image_surface_create(CAIRO_FORMAT_RGB24, im.width, im.height));
    fill_image(src.s, im, 0, 0, 1);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, s, s);
    cairo_set_source_surface(cr, src.s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), s >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    set_color(cr, kFrame, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x - 0.5, y - 0.5, w + 1, h + 1);
    cairo_stroke(cr);
}

// ----------------------------------------------------------------- output

std::string check_size(int w, int h, int min_w, int min_h) {
    if (w < min_w || h < min_h || w > 16384 || h > 16384)
        return "size " + std::to_string(w) + "x" + std::to_string(h) + " is out of range (" +
               std::to_string(min_w) + "x" + std::to_string(min_h) + " to 16384x16384)";
    return {};
}

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_PLOT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_PLOT_ASAN 1
#endif
#endif

// cairo and fontconfig keep font caches for the whole process, which
// LeakSanitizer reports at exit and so fails sanitizer test runs. In
// AddressSanitizer builds only, free them from an exit handler (registered
// after LeakSanitizer's, so it runs first). FcFini is looked up at run time
// because only cairo links fontconfig; normal builds do nothing here.
void release_font_caches_at_exit() {
#ifdef TAPEGRAD_PLOT_ASAN
    static const bool registered = [] {
        return std::atexit([] {
            cairo_debug_reset_static_data();
            if (void* fini = dlsym(RTLD_DEFAULT, "FcFini")) reinterpret_cast<void (*)()>(fini)();
        }) == 0;
    }();
    (void)registered;
#endif
}

// An opaque white canvas.
struct Canvas {
    cairo_surface_t* surface;
    cairo_t* cr;
    Canvas(int w, int h, const std::string& path)
        : surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h)), cr(cairo_create(surface)) {
        if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
            cairo_destroy(cr);
            cairo_surface_destroy(surface);
            fail(path, "cannot allocate a " + std::to_string(w) + "x" + std::to_string(h) + " image");
        }
        release_font_caches_at_exit();
        set_color(cr, kWhite);
        cairo_paint(cr);
    }
    ~Canvas() {
        cairo_destroy(cr);
        cairo_surface_destroy(surface);
    }
    Canvas(const Canvas&) = delete;
    Canvas& operator=(const Canvas&) = delete;
};

struct PngSink {
    FILE* file;
    int error = 0;
};

cairo_status_t write_chunk(void* closure, const unsigned char* data, unsigned int length) {
    auto* sink = static_cast<PngSink*>(closure);
    if (std::fwrite(data, 1, length, sink->file) != length) {
        sink->error = errno ? errno : EIO;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

// Writes next to the target and renames over it: rename() within a
// directory is atomic, so a viewer or a concurrent run never sees a
// truncated PNG, and a failed write leaves any previous file intact.
void write_png(cairo_surface_t* surface, const std::string& path) {
    if (path.empty()) fail(path, "empty file name");
    cairo_surface_flush(surface);
    static std::atomic<unsigned> counter{0};
    std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    FILE* file = std::fopen(tmp.c_str(), "wb");
    if (!file) fail(path, std::string("cannot write: ") + std::strerror(errno));
    PngSink sink{file};
    cairo_status_t status = cairo_surface_write_to_png_stream(surface, write_chunk, &sink);
    bool closed = std::fclose(file) == 0;
    int close_errno = errno;
    if (status != CAIRO_STATUS_SUCCESS || !closed) {
        std::remove(tmp.c_str());
        std::string why = sink.error ? std::strerror(sink.error)
                          : !closed  ? std::strerror(close_errno)
                                     : cairo_status_to_string(status);
        fail(path, "cannot write: " + why);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        fail(path, std::string("cannot write: ") + std::strerror(e));
    }
}

template <class Figure>
void require_ok(const Figure& fig, const std::string& path) {
    std::string p = problem(fig);
    if (!p.empty()) fail(path, p);
}

void require_size(int w, int h, int min_w, int min_h, const std::string& path) {
    std::string p = check_size(w, h, min_w, min_h);
    if (!p.empty()) fail(path, p);
}

constexpr int kMinPlotW = 160, kMinPlotH = 120;

void draw_panel(cairo_t* cr, const Panel& p, Box box) {
    std::visit(
        [&](const auto& fig) {
            using T = std::decay_t<decltype(fig)>;
            if constexpr (std::is_same_v<T, Chart>) draw_chart(cr, fig, box);
            else if constexpr (std::is_same_v<T, DecisionRegions>) draw_regions(cr, fig, box);
            else if constexpr (std::is_same_v<T, Confusion>) draw_confusion(cr, fig, box);
            else draw_image(cr, fig, box);
        },
        p.content);
}

}  // namespace

// ------------------------------------------------------------- public API

Color palette(int i) {
    // A ten-colour qualitative palette: distinct hues that stay apart for
    // common colour-vision deficiencies when paired with marker shapes.
    static const Color colors[] = {
        {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
        {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
        {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};
    return colors[((i % 10) + 10) % 10];
}

Color region_color(int i) { return mix(kWhite, palette(i), 0.28); }

std::vector<double> DecisionRegions::grid_inputs() const {
    std::vector<double> out;
    if (grid_w <= 0 || grid_h <= 0) return out;
    out.reserve(size_t(grid_w) * grid_h * 2);
    double dx = (x_max - x_min) / grid_w, dy = (y_max - y_min) / grid_h;
    for (int j = 0; j < grid_h; ++j)
        for (int i = 0; i < grid_w; ++i) {
            out.push_back(x_min + (i + 0.5) * dx);
            out.push_back(y_min + (j + 0.5) * dy);
        }
    return out;
}

Confusion Confusion::from_labels(const std::vector<int>& truth, const std::vector<int>& predicted,
                                 int num_classes) {
    auto bad = [](const std::string& why) {
        return std::runtime_error("tapegrad::plot: Confusion::from_labels: " + why);
    };
    if (num_classes <= 0) throw bad("num_classes must be positive, got " + std::to_string(num_classes));
    if (truth.size() != predicted.size())
        throw bad(std::to_string(truth.size()) + " true labels but " + std::to_string(predicted.size()) +
                  " predictions");
    Confusion c;
    c.counts.assign(size_t(num_classes), std::vector<double>(size_t(num_classes), 0.0));
    for (size_t i = 0; i < truth.size(); ++i) {
        int t = truth[i], p = predicted[i];
        if (t < 0 || t >= num_classes || p < 0 || p >= num_classes)
            throw bad("sample " + std::to_string(i) + " has labels " + std::to_string(t) + " -> " +
                      std::to_string(p) + ", outside [0, " + std::to_string(num_classes) + ")");
        c.counts[t][p] += 1;
    }
    return c;
}

void save_chart(const Chart& chart, const std::string& path, int width, int height) {
    require_ok(chart, path);
    require_size(width, height, kMinPlotW, kMinPlotH, path);
    Canvas canvas(width, height, path);
    draw_chart(canvas.cr, chart, {0, 0, double(width), double(height)});
    write_png(canvas.surface, path);
}

void save_regions(const DecisionRegions& regions, const std::string& path, int width, int height) {
    require_ok(regions, path);
    require_size(width, height, kMinPlotW, kMinPlotH, path);
    Canvas canvas(width, height, path);
    draw_regions(canvas.cr, regions, {0, 0, double(width), double(height)});
    write_png(canvas.surface, path);
}

void save_confusion(const Confusion& confusion, const std::string& path, int width, int height) {
    require_ok(confusion, path);
    require_size(width, height, kMinPlotW, kMinPlotH, path);
    Canvas canvas(width, height, path);
    draw_confusion(canvas.cr, confusion, {0, 0, double(width), double(height)});
    write_png(canvas.surface, path);
}

void save_image(const Image& image, const std::string& path, int scale) {
    require_ok(image, path);
    if (scale < 1) fail(path, "scale must be at least 1, got " + std::to_string(scale));
    long long w = 1LL * image.width * scale, h = 1LL * image.height * scale;
    if (w > 16384 || h > 16384)
        fail(path, "scaled image " + std::to_string(w) + "x" + std::to_string(h) +
                       " exceeds 16384x16384");
    Canvas canvas(int(w), int(h), path);
    fill_image(canvas.surface, image, 0, 0, scale);
    write_png(canvas.surface, path);
}

void save_sheet(const Sheet& sheet, const std::string& path) {
    if (sheet.panels.empty()) fail(path, "sheet has no panels");
    if (sheet.columns < 0) fail(path, "columns must be >= 0, got " + std::to_string(sheet.columns));
    bool captions = false;
    for (size_t i = 0; i < sheet.panels.size(); ++i) {
        const Panel& p = sheet.panels[i];
        std::string why = std::visit([](const auto& fig) { return problem(fig); }, p.content);
        if (!why.empty()) fail(path, "panel " + std::to_string(i) + ": " + why);
        captions |= !p.caption.empty();
    }
    require_size(sheet.cell_width, sheet.cell_height, 80, captions ? 80 : 56, path);
    int n = int(sheet.panels.size());
    int cols = sheet.columns > 0 ? std::min(sheet.columns, n)
                                 : int(std::ceil(std::sqrt(double(n)) - 1e-9));
    int rows = (n + cols - 1) / cols;
    long long w = 1LL * cols * sheet.cell_width;
    long long h = 1LL * rows * sheet.cell_height + (sheet.title.empty() ? 0 : int(kSheetTitleBand));
    if (w > 16384 || h > 16384)
        fail(path, "sheet " + std::to_string(w) + "x" + std::to_string(h) + " exceeds 16384x16384");
    Canvas canvas(int(w), int(h), path);
    cairo_t* cr = canvas.cr;
    double top = 0;
    if (!sheet.title.empty()) {
        Font tf{kTitleSize + 3, true};
        draw_text(cr, fit_text(cr, sheet.title, tf, w - 2 * kPad), w / 2.0, kSheetTitleBand / 2 + 2,
                  Align::Center, tf, kText);
        top = kSheetTitleBand;
    }
    for (int i = 0; i < n; ++i) {
        const Panel& p = sheet.panels[i];
        Box cell{double((i % cols) * sheet.cell_width), top + double((i / cols) * sheet.cell_height),
                 double(sheet.cell_width), double(sheet.cell_height)};
        Box fig = cell;
        if (captions) fig.h -= kCaptionBand;
        cairo_save(cr);
        cairo_rectangle(cr, cell.x, cell.y, cell.w, cell.h);
        cairo_clip(cr);
        draw_panel(cr, p, fig);
        if (!p.caption.empty()) {
            Font cf{kLabelSize};
            draw_text(cr, fit_text(cr, p.caption, cf, cell.w - 2 * kPad), cell.x + cell.w / 2,
                      fig.bottom() + kCaptionBand / 2 - 2, Align::Center, cf, kText);
        }
        cairo_restore(cr);
    }
    write_png(canvas.surface, path);
}

}  // namespace tapegrad::plot
