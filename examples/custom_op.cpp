// Writing your own op: a fused bias + GELU with a hand-written backward,
// checked against finite differences and against the same function composed
// from built-in ops, then timed against it.
//
//   build/examples/custom_op           # a few seconds; picture in out/custom_op/
//   build/examples/custom_op --quick   # the smoke test: smaller timing runs
//
// y = gelu(x + b), the tanh form of GELU,
//   gelu(z) = ½ z (1 + tanh(c (z + a z³))),  c = √(2/π), a = 0.044715,
// with x of shape (..., d) and a bias b of shape (d): the activation of a
// transformer's feed-forward layer. Composed from ops it is about ten ops,
// each reading and writing the whole tensor and keeping its result for
// backward; fused it is one pass forward and one backward.
//
// It is written twice, once per flavour of backward that core/op.hpp offers:
// - bias_gelu: the VJP is written with tensor ops, so it can itself be
//   differentiated (create_graph, second derivatives, gradgradcheck);
// - bias_gelu_raw: the VJP is one fused xtensor expression, first order
//   only (create_graph through it is an error that names the op).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <xtensor/xmath.hpp>

#include <tapegrad/core/op.hpp>  // the op-writing API; tapegrad.hpp leaves it out
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"

using namespace tapegrad;

namespace {

constexpr double kC = 0.7978845608028654;  // √(2/π)
constexpr double kA = 0.044715;

template <class T>
std::string shape_string(const BasicTensor<T>& t) {
    std::string s = "(";
    for (std::size_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.shape()[i]);
    return s + (t.dim() == 1 ? ",)" : ")");
}

// Clear errors come first: with broadcasting left to xtensor, a bias of the
// wrong length would be an exception from deep inside it, naming no op.
template <class T>
void check_bias(const char* op, const BasicTensor<T>& x, const BasicTensor<T>& b) {
    if (x.dim() == 0 || b.dim() != 1 || b.shape()[0] != x.shape().back())
        throw ShapeError(std::string(op) + ": bias must have shape (" +
                         (x.dim() ? std::to_string(x.shape().back()) : std::string("d")) +
                         ",), the last axis of x; got x " + shape_string(x) + " and bias " + shape_string(b));
}

// gelu(x + b); the backward is written with tensor ops.
template <class T>
BasicTensor<T> bias_gelu(const BasicTensor<T>& x, const BasicTensor<T>& b) {
    check_bias("bias_gelu", x, b);
    Op<T> op("bias_gelu", {x, b});
    const Array<T> z = x.value() + b.value();
    auto y = op.output(T(0.5) * z * (T(1) + xt::tanh(T(kC) * (z + T(kA) * z * z * z))));
    return op.record(y, [sx = op.save(x), sb = op.save(b)](VjpContext<T>& ctx, const BasicTensor<T>& g) {
        // Recomputed from the saved inputs with tensor ops, so that under
        // create_graph the gradient is itself a function of x and b on the
        // graph. gelu'(z) = ½(1 + t) + ½ c z (1 - t²)(1 + 3a z²).
        auto z = ctx.unpack(sx) + ctx.unpack(sb);
        auto t = tanh((z + z * z * z * T(kA)) * T(kC));
        auto slope = (t + T(1)) * T(0.5) + z * (T(1) - t * t) * (z * z * T(3 * kA) + T(1)) * T(0.5 * kC);
        auto gz = g * slope;
        // Both inputs get gz: b's copy has x's shape and the engine sums it
        // down to (d), as for any broadcast input.
        return Grads<T>{gz, gz};
    });
}

// The same op with a raw backward: one fused pass on xtensor values.
template <class T>
BasicTensor<T> bias_gelu_raw(const BasicTensor<T>& x, const BasicTensor<T>& b) {
    check_bias("bias_gelu_raw", x, b);
    Op<T> op("bias_gelu_raw", {x, b});
    const Array<T> z = x.value() + b.value();
    auto y = op.output(T(0.5) * z * (T(1) + xt::tanh(T(kC) * (z + T(kA) * z * z * z))));
    return op.record_raw(y, [sx = op.save(x), sb = op.save(b)](VjpContext<T>& ctx, const Array<T>& g) {
        const Array<T> z = ctx.value(sx) + ctx.value(sb);
        const Array<T> t = xt::tanh(T(kC) * (z + T(kA) * z * z * z));
        Array<T> gz = g * (T(0.5) * (T(1) + t) + T(0.5 * kC) * z * (T(1) - t * t) * (T(1) + T(3 * kA) * z * z));
        RawGrads<T> grads(2);
        if (ctx.needs(1)) grads[1] = gz;  // summed down to (d) by the engine
        if (ctx.needs(0)) grads[0] = std::move(gz);
        return grads;
    });
}

// The reference: the same function from built-in ops (nn::gelu's tanh form
// is itself composed: pow, mul, add, tanh, ...).
template <class T>
BasicTensor<T> bias_gelu_composed(const BasicTensor<T>& x, const BasicTensor<T>& b) {
    return nn::gelu(x + b, nn::GeluApproximation::tanh);
}

template <class T>
using BiasGelu = std::function<BasicTensor<T>(const BasicTensor<T>&, const BasicTensor<T>&)>;

double max_abs_diff(const Tensor64& a, const Tensor64& b) {
    return a.defined() && b.defined() ? double(xt::amax(xt::abs(a.value() - b.value()))()) : INFINITY;
}

// Largest difference from the composed form in value, gradient (wrt x and
// b, for the cotangent v) and, when `second` is set, the derivative of
// <gradient, w> (second order).
double difference_from_composed(const BiasGelu<double>& f, const Tensor64& x0, const Tensor64& b0, const Tensor64& v,
                                const Tensor64& w, bool second) {
    double worst = 0;
    std::vector<Tensor64> results[2];
    int k = 0;
    for (const BiasGelu<double>& g : {f, BiasGelu<double>(bias_gelu_composed<double>)}) {
        auto x = x0.detach().requires_grad_(), b = b0.detach().requires_grad_();
        auto y = g(x, b);
        BackwardOptions keep;
        keep.create_graph = second;
        auto grads = grad(sum(y * v), {x, b}, {}, keep);
        results[k] = {y, grads[0], grads[1]};
        if (second) {
            auto gg = grad(sum(grads[0] * w), {x, b});
            results[k].push_back(gg[0]);
            results[k].push_back(gg[1]);
        }
        ++k;
    }
    for (std::size_t i = 0; i < results[0].size(); ++i) worst = std::max(worst, max_abs_diff(results[0][i], results[1][i]));
    return worst;
}

// Seconds per forward + backward (gradients wrt x and b), the fastest of
// `repeats` rounds of `inner` calls. float32, as a model would run it.
double time_forward_backward(const BiasGelu<float>& f, std::size_t rows, std::size_t cols, int repeats, int inner) {
    Generator gen(1);
    auto x = Tensor::randn({rows, cols}, gen, 0.f, 1.f, true);
    auto b = Tensor::randn({cols}, gen, 0.f, 1.f, true);
    auto seed = Tensor::randn({rows, cols}, gen);
    double best = INFINITY;
    for (int r = 0; r < repeats; ++r) {
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) {
            auto grads = grad(f(x, b), {x, b}, seed);
            if (grads[1].value()(0) == 12345.f) std::printf(" ");  // keeps the work observable
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / inner);
    }
    return best;
}

// What one forward puts on the tape: ops recorded and bytes saved for
// backward (the profiler counts both), float32.
std::pair<std::uint64_t, std::uint64_t> tape_cost(const BiasGelu<float>& f, std::size_t rows, std::size_t cols) {
    auto x = Tensor::zeros({rows, cols}, true), b = Tensor::zeros({cols}, true);
    Profiler prof;
    auto y = f(x, b);
    std::uint64_t ops = 0, bytes = 0;
    for (const auto& row : prof.rows()) ops += row.forward_count, bytes += row.saved_bytes;
    return {ops, bytes};
}

std::vector<double> values(const Tensor64& t) { return {t.value().begin(), t.value().end()}; }

}  // namespace

int program_main(int argc, char** argv) {
    std::uint64_t seed = 0;
    std::string out_dir = "out/custom_op";
    bool quick = false;
    CLI::App app{"A user-written fused op (bias + GELU) with a hand-written backward, in both flavours"};
    app.add_option("--seed", seed, "Random seed (test inputs)")->capture_default_str();
    app.add_option("--out-dir", out_dir, "Where the picture goes")->capture_default_str();
    app.add_flag("--quick", quick, "Smoke test: smaller timing runs");
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(out_dir);  // refused now, not after the work

    try {
        set_num_threads(1);
        Generator gen(seed);
        // Values of x + b spread over [-4, 4] and beyond, where GELU bends.
        auto x = Tensor64::randn({6, 5}, gen, 0.0, 2.0), b = Tensor64::randn({5}, gen, 0.0, 0.5);
        const auto options = GradcheckOptions::strict();
        auto as_fn = [](BiasGelu<double> f) {
            return [f](const std::vector<Tensor64>& in) { return f(in[0], in[1]); };
        };

        // 1. Finite differences, float64: both flavours first order, the
        // tensor flavour second order too.
        auto g1 = gradcheck(as_fn(bias_gelu<double>), {x, b}, options);
        auto g2 = gradgradcheck(as_fn(bias_gelu<double>), {x, b}, options);
        auto g3 = gradcheck(as_fn(bias_gelu_raw<double>), {x, b}, options);
        std::printf("bias_gelu     gradcheck:     %s\n", g1.message().c_str());
        std::printf("bias_gelu     gradgradcheck: %s\n", g2.message().c_str());
        std::printf("bias_gelu_raw gradcheck:     %s\n\n", g3.message().c_str());

        // 2. The composed form computes the same function and derivatives.
        auto v = Tensor64::randn({6, 5}, gen), w = Tensor64::randn({6, 5}, gen);
        const double diff_tensor = difference_from_composed(bias_gelu<double>, x, b, v, w, true);
        const double diff_raw = difference_from_composed(bias_gelu_raw<double>, x, b, v, w, false);
        std::printf("largest difference from gelu(x + b) composed of built-in ops:\n");
        std::printf("  bias_gelu     (value, gradient, second derivative): %.1e\n", diff_tensor);
        std::printf("  bias_gelu_raw (value, gradient):                    %.1e\n\n", diff_raw);

        // 3. Misuse: second order through the raw flavour, and a bias of the
        // wrong length, are clear errors that name the op.
        std::string raw_error, shape_error;
        try {
            auto xr = x.detach().requires_grad_();
            BackwardOptions keep;
            keep.create_graph = true;
            grad(sum(bias_gelu_raw(xr, b)), {xr}, {}, keep);
        } catch (const GraphError& e) {
            raw_error = e.what();
        }
        try {
            bias_gelu(x, Tensor64::zeros({4}));
        } catch (const ShapeError& e) {
            shape_error = e.what();
        }
        std::printf("create_graph through bias_gelu_raw: %s\n", raw_error.empty() ? "(no error)" : raw_error.c_str());
        std::printf("bias of the wrong length:           %s\n\n", shape_error.empty() ? "(no error)" : shape_error.c_str());

        // 4. Cost, for information only. Tape: ops and bytes one forward
        // records. Speed: it depends on the machine and its load, so the
        // claims below do not depend on it.
        std::printf("one forward on a 512 x 1024 float32 x: ops recorded, bytes saved for backward\n");
        for (auto [name, f] : {std::pair<const char*, BiasGelu<float>>{"composed", bias_gelu_composed<float>},
                               {"bias_gelu", bias_gelu<float>}, {"bias_gelu_raw", bias_gelu_raw<float>}}) {
            auto [ops, bytes] = tape_cost(f, 512, 1024);
            std::printf("  %-14s %3llu ops %8.2f MB\n", name, (unsigned long long)ops, bytes / 1e6);
        }
        std::printf("\nforward + backward, float32, one thread (fastest of several rounds):\n");
        std::printf("%12s %11s %11s %14s   composed / bias_gelu, / _raw\n", "size", "composed", "bias_gelu", "bias_gelu_raw");
        std::vector<std::pair<std::size_t, std::size_t>> sizes = {{64, 256}, {512, 1024}};
        if (quick) sizes = {{64, 256}};
        for (auto [rows, cols] : sizes) {
            const int inner = int(std::max<std::size_t>(1, (1u << 21) / (rows * cols)));
            const int repeats = quick ? 2 : 5;
            double tc = time_forward_backward(bias_gelu_composed<float>, rows, cols, repeats, inner);
            double tt = time_forward_backward(bias_gelu<float>, rows, cols, repeats, inner);
            double tr = time_forward_backward(bias_gelu_raw<float>, rows, cols, repeats, inner);
            char size[32];
            std::snprintf(size, sizeof size, "%zu x %zu", rows, cols);
            std::printf("%12s %8.0f us %8.0f us %11.0f us   %6.2fx %6.2fx\n", size, tc * 1e6, tt * 1e6, tr * 1e6, tc / tt,
                        tc / tr);
        }

        // Picture: the op and its first two derivatives in x, from autodiff
        // through the tensor flavour, with the composed form dashed on top.
        std::vector<double> grid;
        for (int i = 0; i <= 200; ++i) grid.push_back(-4.0 + 8.0 * i / 200);
        plot::Chart chart;
        chart.title = "bias_gelu(x, b = 0.5) and its derivatives by autodiff";
        chart.xlabel = "x";
        const char* names[] = {"y", "dy/dx", "d²y/dx²"};
        for (int fused = 1; fused >= 0; --fused) {
            auto xs = Tensor64::from_data(grid.data(), {grid.size()}, true);
            auto bias = Tensor64::full({grid.size()}, 0.5);  // one bias per element: (d) = (n)
            auto y = fused ? bias_gelu(xs, bias) : bias_gelu_composed(xs, bias);
            BackwardOptions keep;
            keep.create_graph = true;
            auto dy = grad(sum(y), {xs}, {}, keep)[0];
            auto d2y = grad(sum(dy), {xs})[0];
            const Tensor64 curves[] = {y, dy, d2y};
            for (int k = 0; k < 3; ++k) {
                if (fused) {
                    chart.add(names[k], grid, values(curves[k]));
                    continue;
                }
                std::vector<double> sparse_x, sparse_y, all = values(curves[k]);  // every 10th point
                for (std::size_t i = 0; i < grid.size(); i += 10) sparse_x.push_back(grid[i]), sparse_y.push_back(all[i]);
                chart.add(k == 0 ? "composed form" : "", sparse_x, sparse_y, plot::Style::Markers);
                chart.series.back().color = plot::Color{0.2, 0.2, 0.22};
            }
        }
        const auto dir = std::filesystem::path(out_dir);
        std::filesystem::create_directories(dir);
        plot::save_chart(chart, (dir / "bias_gelu.png").string());
        std::printf("\nwrote %s\n\n", (dir / "bias_gelu.png").c_str());

        const bool fd_ok = bool(g1) && bool(g2) && bool(g3);
        const bool same = diff_tensor < 1e-12 && diff_raw < 1e-12;
        const bool errors = raw_error.find("bias_gelu_raw") != std::string::npos &&
                            shape_error.find("bias_gelu") != std::string::npos;
        std::printf("%s: gradcheck (both flavours) and gradgradcheck (tensor flavour) pass in float64 (max abs error %.1e)\n",
                    fd_ok ? "CLAIM OK" : "CLAIM FAILED",
                    std::max({g1.max_abs_error, g2.max_abs_error, g3.max_abs_error}));
        std::printf("%s: the fused op equals the composed form to %.1e (need < 1e-12)\n",
                    same ? "CLAIM OK" : "CLAIM FAILED", std::max(diff_tensor, diff_raw));
        std::printf("%s: create_graph through the raw flavour and a wrong bias shape are errors naming the op\n",
                    errors ? "CLAIM OK" : "CLAIM FAILED");
        return fd_ok && same && errors ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
