// tapegrad_bench_ops: one benchmark per op, size and mode.
//
// Names are op/<op>/<shape>/<mode>, e.g. op/add/1024/fwdbwd or
// op/matmul/B128_784x256/TN/fwd; filter with --benchmark_filter=<regex>.
// Modes:
//   nograd  forward under NoGradGuard: the value alone, nothing recorded
//   fwd     forward with inputs that require grad: value + graph node
//   fwdbwd  forward, then backward with a seed of ones (gradients accumulate
//           into the inputs' .grad as in training)
// Counters: items_per_second (elements of the main input), bytes_per_second
// (forward memory traffic, for elementwise ops), FLOPS (matmul), allocs and
// alloc_bytes (heap allocations of one iteration).
//
// To add an op: add a Case in register_all() with the inputs it needs and
// the function to time; everything else is generic.
#include <functional>
#include <tuple>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#include "bench_common.hpp"

namespace {

using tapegrad::Shape;
using tapegrad::Tensor;

enum class Mode { nograd, fwd, fwdbwd };
const char* mode_name(Mode m) { return m == Mode::nograd ? "nograd" : m == Mode::fwd ? "fwd" : "fwdbwd"; }

enum class Init { normal, positive };

struct Input {
    Shape shape;
    Init init = Init::normal;
};

struct Case {
    std::string name;  // op/<op>/<shape>
    std::vector<Input> inputs;
    std::function<Tensor(const std::vector<Tensor>&)> fn;
    double items = 0;      // per iteration
    double fwd_bytes = 0;  // per iteration, forward only (0: not reported)
    double flops = 0;      // per iteration for fwd; fwdbwd uses bwd_flops in addition
    double bwd_flops = 0;
};

std::vector<Tensor> make_inputs(const Case& c, bool requires_grad) {
    tapegrad::Generator gen(1234);
    std::vector<Tensor> xs;
    for (const auto& in : c.inputs) {
        xs.push_back(in.init == Init::positive ? Tensor::rand(in.shape, gen, 0.5f, 1.5f, requires_grad)
                                               : Tensor::randn(in.shape, gen, 0.0f, 1.0f, requires_grad));
    }
    return xs;
}

void run_case(benchmark::State& state, const Case& c, Mode mode) {
    bench::set_threads(1);
    auto xs = make_inputs(c, mode != Mode::nograd);
    Tensor seed;
    auto once = [&] {
        if (mode == Mode::nograd) {
            tapegrad::NoGradGuard no_grad;
            Tensor y = c.fn(xs);
            benchmark::DoNotOptimize(y.value().data());
            return;
        }
        Tensor y = c.fn(xs);
        if (mode == Mode::fwdbwd) {
            if (!seed.defined()) seed = Tensor::ones(y.shape_vector());
            y.backward(seed);
        }
        benchmark::DoNotOptimize(y.value().data());
    };
    once();  // warm-up; creates the seed and the inputs' .grad buffers
    bench::report_allocs(state, once);
    for (auto _ : state) once();

    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * c.items));
    if (c.fwd_bytes > 0 && mode != Mode::fwdbwd)
        state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.fwd_bytes));
    if (c.flops > 0)
        state.counters["FLOPS"] = benchmark::Counter(c.flops + (mode == Mode::fwdbwd ? c.bwd_flops : 0.0),
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

std::string dims(const Shape& s) {
    std::string out;
    for (auto d : s) out += (out.empty() ? "" : "x") + std::to_string(d);
    return out;
}

// The kernel table (bench/README.md, "Kernel layer"): every elementwise op
// in every broadcast case, the unary functions and the reductions, float32
// at 256x1000, named kernel/<op>/<case>. scripts/compare reports each in
// ns per output element next to the op's equal-shape case.
void register_kernel_cases(std::vector<Case>& cases) {
    const std::size_t m = 256, n = 1000;
    struct Broadcast {
        const char* name;
        Shape a, b;  // the output is 256x1000 (general: 16x16x1000)
    };
    const std::vector<Broadcast> broadcasts{{"equal", {m, n}, {m, n}},   {"scalar", {m, n}, {}},
                                            {"row", {m, n}, {1, n}},     {"vector", {m, n}, {n}},
                                            {"column", {m, n}, {m, 1}},  {"outer", {m, 1}, {1, n}},
                                            {"general", {16, 1, n}, {1, 16, n}}};
    using Binary = Tensor (*)(const Tensor&, const Tensor&);
    const std::vector<std::pair<const char*, Binary>> binaries{
        {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
        {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
        {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
        {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
        {"maximum", [](const Tensor& a, const Tensor& b) { return tapegrad::maximum(a, b); }},
        {"where", [](const Tensor& a, const Tensor& b) { return tapegrad::where(a, a, b); }}};
    const double out = double(m * n);
    for (const auto& [op, f] : binaries)
        for (const auto& bc : broadcasts)
            cases.push_back({std::string("kernel/") + op + "/" + bc.name,
                             {{bc.a, Init::normal}, {bc.b, Init::positive}},
                             [f = f](const std::vector<Tensor>& x) { return f(x[0], x[1]); }, out});
    using Unary = Tensor (*)(const Tensor&);
    const std::vector<std::tuple<const char*, Init, Unary>> unaries{
        {"exp", Init::normal, [](const Tensor& x) { return tapegrad::exp(x); }},
        {"log", Init::positive, [](const Tensor& x) { return tapegrad::log(x); }},
        {"tanh", Init::normal, [](const Tensor& x) { return tapegrad::tanh(x); }},
        {"erf", Init::normal, [](const Tensor& x) { return tapegrad::erf(x); }},
        {"sigmoid", Init::normal, [](const Tensor& x) { return tapegrad::sigmoid(x); }}};
    for (const auto& [op, init, f] : unaries)
        cases.push_back({std::string("kernel/") + op + "/equal", {{{m, n}, init}},
                         [f = f](const std::vector<Tensor>& x) { return f(x[0]); }, out});
    using Reduce = Tensor (*)(const Tensor&, const tapegrad::Axes&, bool);
    const std::vector<std::pair<const char*, Reduce>> reductions{
        {"sum", [](const Tensor& x, const tapegrad::Axes& a, bool k) { return tapegrad::sum(x, a, k); }},
        {"mean", [](const Tensor& x, const tapegrad::Axes& a, bool k) { return tapegrad::mean(x, a, k); }},
        {"max", [](const Tensor& x, const tapegrad::Axes& a, bool k) { return tapegrad::max(x, a, k); }},
        {"logsumexp", [](const Tensor& x, const tapegrad::Axes& a, bool k) { return tapegrad::logsumexp(x, a, k); }}};
    for (const auto& [op, f] : reductions)
        for (std::int64_t axis : {1, 0})
            cases.push_back({std::string("kernel/") + op + "/axis" + std::to_string(axis), {{{m, n}}},
                             [f = f, axis](const std::vector<Tensor>& x) { return f(x[0], {axis}, true); }, out});
}

void register_all() {
    std::vector<Case> cases;
    const float bytes = sizeof(float);

    // Elementwise ops and activations on 4, 1 Ki and 1 Mi elements.
    for (std::size_t n : {std::size_t(4), std::size_t(1) << 10, std::size_t(1) << 20}) {
        const std::string size = std::to_string(n);
        auto unary = [&](const char* op, Init init, Tensor (*f)(const Tensor&)) {
            cases.push_back({std::string("op/") + op + "/" + size, {{{n}, init}},
                             [f](const std::vector<Tensor>& x) { return f(x[0]); }, double(n), 2 * n * bytes});
        };
        auto binary = [&](const char* op, Init init, Tensor (*f)(const Tensor&, const Tensor&)) {
            cases.push_back({std::string("op/") + op + "/" + size, {{{n}, Init::normal}, {{n}, init}},
                             [f](const std::vector<Tensor>& x) { return f(x[0], x[1]); }, double(n), 3 * n * bytes});
        };
        binary("add", Init::normal, [](const Tensor& a, const Tensor& b) { return a + b; });
        binary("mul", Init::normal, [](const Tensor& a, const Tensor& b) { return a * b; });
        binary("div", Init::positive, [](const Tensor& a, const Tensor& b) { return a / b; });
        unary("relu", Init::normal, [](const Tensor& x) { return tapegrad::maximum(x, 0.0f); });
        unary("tanh", Init::normal, [](const Tensor& x) { return tapegrad::tanh(x); });
        unary("exp", Init::normal, [](const Tensor& x) { return tapegrad::exp(x); });
        unary("log", Init::positive, [](const Tensor& x) { return tapegrad::log(x); });
    }

    // Broadcast add of a bias: [B, n] + [n] (the backward sums over B).
    for (auto [b, n] : {std::pair<std::size_t, std::size_t>{32, 16}, {128, 256}, {1024, 1024}}) {
        cases.push_back({"op/bias_add/" + std::to_string(b) + "x" + std::to_string(n), {{{b, n}}, {{n}}},
                         [](const std::vector<Tensor>& x) { return x[0] + x[1]; }, double(b * n),
                         (2 * b * n + n) * bytes});
    }

    // Reductions along each axis of a matrix, and over all of it.
    for (auto [r, c] : {std::pair<std::size_t, std::size_t>{128, 256}, {1024, 1024}}) {
        const Shape s{r, c};
        const std::string shape = dims(s);
        const double items = double(r * c);
        cases.push_back({"op/sum_axis0/" + shape, {{s}}, [](const std::vector<Tensor>& x) { return tapegrad::sum(x[0], {0}); }, items});
        cases.push_back({"op/sum_axis1/" + shape, {{s}}, [](const std::vector<Tensor>& x) { return tapegrad::sum(x[0], {1}); }, items});
        cases.push_back({"op/sum_all/" + shape, {{s}}, [](const std::vector<Tensor>& x) { return tapegrad::sum(x[0]); }, items});
        cases.push_back({"op/max_axis1/" + shape, {{s}}, [](const std::vector<Tensor>& x) { return tapegrad::max(x[0], {1}); }, items});
        cases.push_back({"op/logsumexp_axis1/" + shape, {{s}},
                         [](const std::vector<Tensor>& x) { return tapegrad::logsumexp(x[0], {1}); }, items});
    }

    // Matrix products of MLP layers [B, in] -> [B, out]: the forward X·W (NN)
    // and the backward's dX = G·Wᵀ (NT) and dW = Xᵀ·G (TN). Each is 2·B·in·out
    // FLOPs; fwdbwd of a product needs both operands' gradients (2 more each).
    struct Layer {
        std::size_t b, in, out;
    };
    for (auto L : {Layer{32, 2, 16}, Layer{32, 16, 16}, Layer{128, 784, 256}, Layer{128, 256, 256},
                   Layer{128, 256, 10}, Layer{1024, 1024, 1024}}) {
        const std::string layer = "B" + std::to_string(L.b) + "_" + std::to_string(L.in) + "x" + std::to_string(L.out);
        const double flops = 2.0 * double(L.b) * double(L.in) * double(L.out);
        cases.push_back({"op/matmul/" + layer + "/NN", {{{L.b, L.in}}, {{L.in, L.out}}},
                         [](const std::vector<Tensor>& x) { return tapegrad::matmul(x[0], x[1]); }, double(L.b * L.out),
                         0, flops, 2 * flops});
        cases.push_back({"op/matmul/" + layer + "/NT", {{{L.b, L.out}}, {{L.in, L.out}}},
                         [](const std::vector<Tensor>& x) { return tapegrad::matmul(x[0], x[1], false, true); },
                         double(L.b * L.in), 0, flops, 2 * flops});
        cases.push_back({"op/matmul/" + layer + "/TN", {{{L.b, L.in}}, {{L.b, L.out}}},
                         [](const std::vector<Tensor>& x) { return tapegrad::matmul(x[0], x[1], true, false); },
                         double(L.in * L.out), 0, flops, 2 * flops});
    }

    // Softmax cross-entropy on logits [B, C]: mean(logsumexp(z) - z[label]).
    for (auto [b, c] : {std::pair<std::size_t, std::size_t>{32, 2}, {128, 10}, {1024, 10}, {128, 1000}}) {
        tapegrad::Index labels(b);
        for (std::size_t i = 0; i < b; ++i) labels[i] = std::int64_t((i * 7) % c);
        cases.push_back({"op/softmax_xent/" + std::to_string(b) + "x" + std::to_string(c), {{{b, c}}},
                         [labels, b](const std::vector<Tensor>& x) {
                             Tensor lse = tapegrad::logsumexp(x[0], {1}, true);
                             Tensor picked = tapegrad::gather(x[0], 1, labels, Shape{b, 1});
                             return tapegrad::mean(lse - picked);
                         },
                         double(b * c)});
    }

    register_kernel_cases(cases);

    for (const auto& c : cases)
        for (Mode m : {Mode::nograd, Mode::fwd, Mode::fwdbwd}) {
            auto* b = benchmark::RegisterBenchmark((c.name + "/" + mode_name(m)).c_str(),
                                                   [c, m](benchmark::State& s) { run_case(s, c, m); });
            b->UseRealTime();
            b->Unit(benchmark::kMicrosecond);
        }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    bench::add_context();
    benchmark::AddCustomContext("threads", "1 (OpenBLAS)");
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
