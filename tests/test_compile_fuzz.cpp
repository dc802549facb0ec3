// Every program of the random-graph fuzzer that CI checks against finite
// differences (tests/fuzz/ci_batches.hpp: the same seeds), captured and
// replayed, in float64 and in float32: each program's value and the
// gradients of all its inputs (second derivatives too for smooth programs)
// are captured as one step, replayed three times on new input values, and
// compared with eager mode on the same values, within 1e-12 relative in
// float64 and 1e-6 in float32, the tolerances of tests/test_compile.cpp.
// (A replay runs the same kernels as eager mode; on all these programs the
// two are in fact equal bit for bit, in both dtypes.) The programs are
// generated in float64; the float32 runs take the same input values
// rounded to float. Programs with
// the op capture refuses (the user op with a raw VJP, see docs/compile.md)
// must fail to capture with an error naming it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/tapegrad.hpp>

#include "ci_batches.hpp"
#include "graph_fuzz.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_TEST_ASAN 1
#endif
#endif

using namespace tapegrad;
using namespace tapegrad::fuzz;

namespace {

// The share of each batch a run replays. Under AddressSanitizer (scripts/test
// runs that build twice) the float32 variant takes the first quarter of each
// batch: it is the float64 variant's code but for the dtype, the float64
// variant replays every seed there, and all seeds in float32 as well would
// double this file's sanitizer time (about 55 s more CPU per pass). Release
// replays every seed in both.
#ifdef TAPEGRAD_TEST_ASAN
template <class T>
constexpr int kShareDivisor = std::is_same_v<T, float> ? 4 : 1;
#else
template <class T>
constexpr int kShareDivisor = 1;
#endif

// The program's output and every input's gradient of sum(output); for
// smooth programs also the gradient of the sum of squared gradients.
template <class T>
std::vector<BasicTensor<T>> value_and_grads(const Program& p, const std::vector<BasicTensor<T>>& xs) {
    auto y = run(p, xs);
    std::vector<BasicTensor<T>> out{y};
    if (!y.requires_grad()) return out;
    auto gs = grad(y, xs, BasicTensor<T>::ones(y.shape_vector()), BackwardOptions{true, p.smooth});
    BasicTensor<T> squares;
    for (const auto& g : gs) {
        if (!g.defined()) continue;
        out.push_back(g);
        if (p.smooth && g.requires_grad()) squares = squares.defined() ? squares + sum(g * g) : sum(g * g);
    }
    if (squares.defined())
        for (const auto& gg : grad(squares, xs))
            if (gg.defined()) out.push_back(gg);
    return out;
}

// The program's inputs, each element moved by a small relative amount (new
// values, same side of every kink), in float64, then rounded to T.
template <class T>
std::vector<BasicTensor<T>> leaves(const Program& p, double shift) {
    std::vector<BasicTensor<T>> xs;
    for (std::size_t k = 0; k < p.inputs.size(); ++k) {
        Array<double> v = p.inputs[k];
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] *= 1 + shift * std::sin(double(i + 3 * k + 1));
        xs.emplace_back(Array<T>(xt::cast<T>(v)), true);
    }
    return xs;
}

template <class T>
constexpr double kRtol = std::is_same_v<T, float> ? 1e-6 : 1e-12;

// |a - b| <= rtol max(1, |b|) elementwise, NaN matching NaN.
template <class T>
std::string differs(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    if (a.shape_vector() != b.shape_vector()) return "shapes differ";
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double x = a.value().data()[i], y = b.value().data()[i];
        if (std::isnan(x) && std::isnan(y)) continue;
        if (x == y) continue;
        if (!(std::abs(x - y) <= kRtol<T> * std::max(1.0, std::abs(y)))) {
            char buf[120];
            std::snprintf(buf, sizeof buf, "element %zu: replay %.17g, eager %.17g", i, x, y);
            return buf;
        }
    }
    return "";
}

bool refused_op(const Program& p, const std::string& message) {
    for (const auto& in : p.code)
        if (in.op == Op::user_raw && message.find(std::string("'") + op_name(in.op)) != std::string::npos)
            return true;
    return false;
}

template <class T>
void run_captured(const CiBatch& batch) {
    const auto [first_seed, all, smooth] = batch;
    // TAPEGRAD_FUZZ_GRAPHS scales the batches as for tests/test_fuzz_graphs.cpp.
    const char* scale = std::getenv("TAPEGRAD_FUZZ_GRAPHS");
    const int scaled = scale && *scale ? std::max(1, int(std::atoll(scale) * all / ci_graphs())) : all;
    const int graphs = std::max(1, scaled / kShareDivisor<T>);
    GenerateOptions gen;
    gen.smooth_only = smooth;
    int replayed = 0, refused = 0, failures = 0, fused = 0;
    for (int i = 0; i < graphs && failures < 3; ++i) {
        const auto seed = first_seed + std::uint64_t(i);
        const Program p = generate(seed, gen);
        compile::StepFn<T> step = [&p](const compile::StepInputs<T>& in) { return value_and_grads(p, in.tensors); };
        compile::CompiledStep<T> compiled;
        try {
            compiled = compile::capture<T>(step, {leaves<T>(p, 0), {}});
        } catch (const GraphError& e) {
            if (refused_op(p, e.what())) {
                ++refused;
                continue;
            }
            ++failures;
            FAIL_CHECK("seed " << seed << ": capture failed: " << e.what());
            continue;
        }
        if (compiled.stats().fused_groups > 0) ++fused;
        for (int r = 1; r <= 3; ++r) {
            const auto xs = leaves<T>(p, 1e-3 * r);
            const auto got = compiled({xs, {}});
            const auto fresh = leaves<T>(p, 1e-3 * r);  // eager on leaves of its own
            const auto want = value_and_grads(p, fresh);
            std::string why = got.size() == want.size() ? "" : "output count differs";
            for (std::size_t k = 0; why.empty() && k < got.size(); ++k) {
                why = differs(got[k], want[k]);
                if (!why.empty()) why = "output " + std::to_string(k) + ": " + why;
            }
            if (!why.empty()) {
                ++failures;
                FAIL_CHECK("seed " << seed << ", replay " << r << ": " << why);
                break;
            }
        }
        ++replayed;
    }
    MESSAGE(replayed << " programs captured and replayed 3 times (" << fused << " with fused runs), " << refused
                     << " refused (the raw-VJP user op)");
    CHECK(failures == 0);
    CHECK(replayed > graphs / 2);
}

}  // namespace

TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 1") {
    run_captured<double>(kCiBatches[0]);
}
TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 2") {
    run_captured<double>(kCiBatches[1]);
}
TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 3") {
    run_captured<double>(kCiBatches[2]);
}
TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 4") {
    run_captured<double>(kCiBatches[3]);
}
TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 5") {
    run_captured<double>(kCiBatches[4]);
}
TEST_CASE("compile fuzz: float64 programs replayed equal eager, first derivatives, batch 6") {
    run_captured<double>(kCiBatches[5]);
}
TEST_CASE("compile fuzz: float64 smooth programs replayed equal eager, second derivatives, batch 1") {
    run_captured<double>(kCiBatches[6]);
}
TEST_CASE("compile fuzz: float64 smooth programs replayed equal eager, second derivatives, batch 2") {
    run_captured<double>(kCiBatches[7]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 1") {
    run_captured<float>(kCiBatches[0]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 2") {
    run_captured<float>(kCiBatches[1]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 3") {
    run_captured<float>(kCiBatches[2]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 4") {
    run_captured<float>(kCiBatches[3]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 5") {
    run_captured<float>(kCiBatches[4]);
}
TEST_CASE("compile fuzz: float32 programs replayed equal eager, first derivatives, batch 6") {
    run_captured<float>(kCiBatches[5]);
}
TEST_CASE("compile fuzz: float32 smooth programs replayed equal eager, second derivatives, batch 1") {
    run_captured<float>(kCiBatches[6]);
}
TEST_CASE("compile fuzz: float32 smooth programs replayed equal eager, second derivatives, batch 2") {
    run_captured<float>(kCiBatches[7]);
}
