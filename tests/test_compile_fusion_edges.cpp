// Edge cases of fused runs with reductions over rows (docs/compile.md
// "Fusion"): odd row shapes around the block and 32 KiB limits, 3-D and 4-D
// values, full sums, row results read other than along rows, reshapes and
// broadcasts inside runs, second derivatives, NaN and inf. Every case
// compares a fused replay with an unfused one (==) and with eager mode
// (1e-12, float64).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using compile::StepInputs;

namespace {

using Body = std::function<std::vector<Tensor64>(const std::vector<Tensor64>&, const compile::Index&)>;

Tensor64 wave(const Shape& shape, double shift) {
    auto t = Tensor64::zeros(shape);
    t.modify([&](Array<double>& v) {
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = 3 * std::sin(0.37 * double(i) + shift);
    });
    return t;
}

std::vector<Array<double>> snapshot(const std::vector<Tensor64>& outs, const std::vector<Tensor64>& params) {
    std::vector<Array<double>> s;
    for (const auto& o : outs) s.push_back(o.value());
    for (const auto& p : params) s.push_back(p.grad().defined() ? p.grad().value() : Array<double>());
    return s;
}

bool same_bits(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }
bool close(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b));
}

// Fails the case with the first differing element of each value.
int compare(const char* what, const std::vector<Array<double>>& got, const std::vector<Array<double>>& want,
            bool exact) {
    int bad = 0;
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        if (got[k].shape() != want[k].shape()) {
            MESSAGE(what << ": value " << k << " shape differs");
            ++bad;
            continue;
        }
        std::size_t wrong = 0, first = 0;
        for (std::size_t i = 0; i < got[k].size(); ++i) {
            const double a = got[k].data()[i], b = want[k].data()[i];
            if (!(exact ? same_bits(a, b) : close(a, b)) && wrong++ == 0) first = i;
        }
        if (wrong) {
            MESSAGE(what << ": value " << k << ": " << wrong << " of " << got[k].size() << " elements differ, first at "
                         << first << ": " << got[k].data()[first] << " vs " << want[k].data()[first]);
            ++bad;
        }
    }
    return bad;
}

// Captures `body` fused and unfused, replays both three times on new inputs
// and compares them with each other and with eager mode.
void attack(const std::string& name, Body body, const std::vector<Tensor64>& params, const std::vector<Shape>& shapes,
            std::size_t label_count = 0, std::size_t classes = 1,
            std::function<void(std::vector<Tensor64>&)> poison = {}) {
    CAPTURE(name);
    auto inputs = [&](int r) {
        StepInputs<double> in;
        for (std::size_t k = 0; k < shapes.size(); ++k) in.tensors.push_back(wave(shapes[k], 0.3 * r + double(k)));
        if (poison) poison(in.tensors);
        if (label_count) {
            compile::Index labels(label_count);
            for (std::size_t i = 0; i < label_count; ++i) labels[i] = std::int64_t((i * 5 + std::size_t(r)) % classes);
            in.indices.push_back(labels);
        }
        return in;
    };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        for (auto p : params) p.zero_grad();
        static const compile::Index none;
        return body(in.tensors, in.indices.empty() ? none : in.indices[0]);
    };
    compile::CaptureOptions<double> off;
    off.fuse = false;
    auto fused = compile::capture<double>(step, inputs(0));
    auto plain = compile::capture<double>(step, inputs(0), off);
    int bad = 0;
    for (int r = 1; r <= 3; ++r) {
        CAPTURE(r);
        const auto in = inputs(r);
        const auto got = snapshot(fused(in), params);
        const auto base = snapshot(plain(in), params);
        const auto want = snapshot(step(in), params);
        bad += compare("fused vs unfused", got, base, true);
        bad += compare("fused vs eager", got, want, false);
        bad += compare("unfused vs eager", base, want, false);
    }
    if (bad) {
        std::ostringstream ops;
        for (const auto& o : fused.op_names()) ops << o << "\n";
        MESSAGE(name << ": fused program:\n" << ops.str());
    }
    CHECK(bad == 0);
}

Tensor64 param(const Shape& shape, double shift) { return wave(shape, shift).detach().requires_grad_(); }

std::string shp(const Shape& s) {
    std::string o = "[";
    for (auto d : s) o += std::to_string(d) + ",";
    return o + "]";
}

}  // namespace

TEST_CASE("compile fusion edges: softmax, log_softmax, logsumexp, LayerNorm, cross_entropy over odd row shapes") {
    for (const Shape& shape : {Shape{1, 2}, Shape{1, 7}, Shape{7, 2}, Shape{3, 1}, Shape{5, 513}, Shape{3, 511},
                               Shape{2, 4096}, Shape{2, 4097}, Shape{1, 4096}, Shape{513, 3}, Shape{1000, 7},
                               Shape{2, 1024}, Shape{3, 3}}) {
        const std::size_t cols = shape.back();
        nn::LayerNorm<double> norm(cols);
        auto v = param({cols}, 1.5);
        norm.weight = param({cols}, 0.2);
        norm.bias = param({cols}, 0.9);
        const std::vector<Tensor64> ps{v, norm.weight, norm.bias};
        attack("row ops " + shp(shape), [&, v](const std::vector<Tensor64>& x, const compile::Index& labels) {
            auto h = norm.forward(x[0]) * v;
            auto loss = nn::cross_entropy(h, labels) + sum(nn::softmax(h, -1) * nn::log_softmax(x[0], -1)) +
                        sum(logsumexp(h * 0.5, {-1}));
            loss.backward();
            return std::vector<Tensor64>{loss, h};
        }, ps, {shape}, shape[0], cols);
    }
}

TEST_CASE("compile fusion edges: 3-D and 4-D, reductions over the last axis and the last two, keepdims both ways") {
    for (const Shape& shape : {Shape{3, 5, 7}, Shape{2, 3, 4, 5}, Shape{4, 1, 6}, Shape{2, 3, 600}, Shape{5, 1, 1}}) {
        const std::size_t nd = shape.size();
        Shape tail2(shape.end() - 2, shape.end());
        auto w = param(tail2, 0.4);
        for (bool keep : {true, false}) {
            attack("last axis keep=" + std::to_string(keep) + " " + shp(shape),
                   [&, w, keep](const std::vector<Tensor64>& x, const compile::Index&) {
                       auto h = x[0] * w;
                       auto s = sum(h, {-1}, keep);
                       auto l = logsumexp(h, {-1}, keep);
                       auto m = keep ? h - s * 0.25 + l : h + 1.0;
                       auto loss = sum(m * m) + sum(exp(s * 0.01)) + sum(l);
                       loss.backward();
                       return std::vector<Tensor64>{loss, s, l};
                   }, {w}, {shape});
            attack("last two axes keep=" + std::to_string(keep) + " " + shp(shape),
                   [&, w, keep, nd](const std::vector<Tensor64>& x, const compile::Index&) {
                       auto h = x[0] * w;
                       auto s = sum(h, {std::int64_t(nd) - 2, std::int64_t(nd) - 1}, keep);
                       auto l = logsumexp(h, {-2, -1}, keep);
                       auto m = keep ? h - s * 0.1 - l : h * 2.0;
                       auto loss = sum(m * m) + sum(s * l);
                       loss.backward();
                       return std::vector<Tensor64>{loss, s, l, m};
                   }, {w}, {shape});
        }
    }
}

TEST_CASE("compile fusion edges: sums over all axes read back by wide ops") {
    for (const Shape& shape : {Shape{7, 9}, Shape{1, 300}, Shape{300, 1}, Shape{2, 2048}, Shape{64, 64}, Shape{3, 4, 5}}) {
        auto w = param(shape, 0.1);
        for (bool keep : {true, false}) {
            attack("all axes keep=" + std::to_string(keep) + " " + shp(shape),
                   [&, w, keep](const std::vector<Tensor64>& x, const compile::Index&) {
                       auto h = x[0] * w;
                       auto s = sum(h, {}, keep);
                       auto y = h - s * 0.01;
                       auto l = logsumexp(y, {}, keep);
                       auto loss = sum(exp(y - l)) + mean(y * y);
                       loss.backward();
                       return std::vector<Tensor64>{loss, s, l};
                   }, {w}, {shape});
        }
    }
}

TEST_CASE("compile fusion edges: row results read not along rows (square tensors, numpy alignment)") {
    for (std::size_t n : {2, 3, 7, 64, 100}) {
        const Shape shape{n, n};
        auto w = param(shape, 0.2);
        attack("[R] against [R,R] " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto s = sum(h, {-1});   // [R]: broadcast along columns
            auto y = h * s + h;
            auto l = logsumexp(y, {1});
            auto z = y - l;          // [R] again against [R, R]
            auto loss = sum(z * z);
            loss.backward();
            return std::vector<Tensor64>{loss, z};
        }, {w}, {shape});
        attack("[R,1] reshaped to [1,R] " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto s = sum(h, {-1}, true);
            auto t = reshape(s, {1, std::int64_t(n)});
            auto y = h * t - s;
            auto loss = sum(y * y);
            loss.backward();
            return std::vector<Tensor64>{loss, y};
        }, {w}, {shape});
        attack("broadcast_to of [R] to [R,R] " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto s = sum(h, {-1});
            auto b = broadcast_to(s, shape);
            auto y = h * b;
            auto loss = sum(y * y) + sum(logsumexp(y, {-1}));
            loss.backward();
            return std::vector<Tensor64>{loss, y};
        }, {w}, {shape});
        attack("[R,1] plus [R] to [R,R] " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto s = sum(h, {-1}, true);
            auto t = sum(h, {-1});
            auto y = s + t;          // [R, R]: s along rows, t along columns
            auto z = h * y;
            auto loss = sum(z * z);
            loss.backward();
            return std::vector<Tensor64>{loss, z};
        }, {w}, {shape});
    }
}

TEST_CASE("compile fusion edges: reshape and broadcast_to inside runs") {
    for (const Shape& shape : {Shape{6, 10}, Shape{3, 700}, Shape{700, 3}, Shape{1, 5}, Shape{5, 1}}) {
        const auto r = std::int64_t(shape[0]), c = std::int64_t(shape[1]);
        auto w = param(shape, 0.7);
        attack("reshape [R,C]->[C,R] softmax " + shp(shape), [&, w, r, c](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = exp(x[0] * w * 0.1);
            auto t = reshape(h, {c, r});
            auto sm = nn::softmax(t, -1);
            auto back = reshape(sm, {r, c});
            auto y = back * h + nn::log_softmax(h, -1);
            auto loss = sum(y * y);
            loss.backward();
            return std::vector<Tensor64>{loss, y};
        }, {w}, {shape});
        attack("broadcast_to leading axes " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto b = broadcast_to(h, {2, shape[0], shape[1]});
            auto y = b * 0.5 + 1.0;
            auto s = sum(y, {-1}, true);
            auto z = y - s;
            auto loss = sum(z * z);
            loss.backward();
            return std::vector<Tensor64>{loss, s};
        }, {w}, {shape});
        attack("two reductions with different cols " + shp(shape), [&, w, r, c](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto s1 = sum(h * h, {-1}, true);
            auto hr = reshape(h * 2.0, {r * c, 1});
            auto s2 = sum(reshape(hr, {c, r}), {-1}, true);
            auto y = h / (s1 + 1.0);
            auto loss = sum(y) + sum(s2 * s2);
            loss.backward();
            return std::vector<Tensor64>{loss, y, s1, s2};
        }, {w}, {shape});
    }
}

TEST_CASE("compile fusion edges: second derivatives through softmax, log_softmax, LayerNorm, logsumexp") {
    for (const Shape& shape : {Shape{4, 9}, Shape{3, 600}, Shape{1, 3}, Shape{37, 29}}) {
        const std::size_t cols = shape.back();
        nn::LayerNorm<double> norm(cols);
        auto v = param({cols}, 1.1);
        norm.weight = param({cols}, 0.3);
        norm.bias = param({cols}, 0.8);
        attack("double backward " + shp(shape), [&, v](const std::vector<Tensor64>& x, const compile::Index& labels) {
            auto h = norm.forward(x[0] * v);
            auto loss = nn::cross_entropy(h, labels) + sum(nn::softmax(h, -1) * nn::log_softmax(h * 0.7, -1)) +
                        sum(logsumexp(h, {-1}));
            auto g = grad(loss, {v, norm.weight}, {}, BackwardOptions{false, true});
            auto pen = loss + sum(g[0] * g[0]) + sum(g[1] * g[1]) * 0.5;
            pen.backward();
            return std::vector<Tensor64>{pen, g[0]};
        }, {v, norm.weight, norm.bias}, {shape}, shape[0], cols);
    }
}

TEST_CASE("compile fusion edges: NaN and inf inputs") {
    for (const Shape& shape : {Shape{4, 9}, Shape{3, 600}}) {
        auto w = param({shape[1]}, 0.4);
        auto poison = [](std::vector<Tensor64>& xs) {
            xs[0].modify([](Array<double>& a) {
                a.data()[0] = std::numeric_limits<double>::quiet_NaN();
                const std::size_t c = a.shape()[1];
                for (std::size_t i = c; i < 2 * c; ++i) a.data()[i] = -std::numeric_limits<double>::infinity();
                a.data()[2 * c + 1] = std::numeric_limits<double>::infinity();
            });
        };
        attack("nan/inf " + shp(shape), [&, w](const std::vector<Tensor64>& x, const compile::Index&) {
            auto h = x[0] * w;
            auto y = nn::softmax(h, -1) + nn::log_softmax(h, -1) + logsumexp(h, {-1}, true) + sum(h, {-1}, true);
            auto loss = sum(y * w);
            loss.backward();
            return std::vector<Tensor64>{loss, y};
        }, {w}, {shape}, 0, 1, poison);
    }
}

// ---- replays that write an input's .grad ----

namespace {
Array<double> copy_of(const Tensor64& t) { return t.value(); }
bool equal_arrays(const Array<double>& a, const Array<double>& b) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same_bits(a.data()[i], b.data()[i])) return false;
    return true;
}
Tensor64 leaf(const Shape& s, double shift) { return wave(s, shift).detach().requires_grad_(); }
}  // namespace
