// Fusion in compiled steps (core/compile/capture.cpp, docs/compile.md
// "Fusion"): runs of elementwise ops replay as one blocked loop. The
// arithmetic per element is each op's own, so a fused replay of built-in ops
// must equal the unfused one element for element (==, not a tolerance), and both eager
// mode within 1e-12 (float64) / 1e-6 (float32).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <tuple>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using compile::StepInputs;

namespace {

template <class T>
BasicTensor<T> ramp(const Shape& shape, double shift) {
    auto t = BasicTensor<T>::zeros(shape);
    t.modify([&](Array<T>& v) {
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = T(3 * std::sin(0.37 * double(i) + shift));
    });
    return t;
}

template <class T>
bool identical(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    if (a.shape_vector() != b.shape_vector()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const T x = a.value().data()[i], y = b.value().data()[i];
        if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
    }
    return true;
}

using op_test::rel_diff;

// GELU, SiLU and a tanh chain on one input, a row of weights (a broadcast
// operand: a boundary of the runs), a one-element parameter (a repeated
// operand inside the runs), and softplus of the sum: forward and backward
// are mostly elementwise.
template <class T>
struct Activations {
    BasicTensor<T> w, s;
    explicit Activations(std::size_t cols)
        : w(ramp<T>({cols}, 0.5).detach().requires_grad_()), s(BasicTensor<T>::full({1}, T(0.75), true)) {}
    std::vector<BasicTensor<T>> step(const BasicTensor<T>& x) {
        w.zero_grad();
        s.zero_grad();
        auto h = nn::gelu(x * w) + nn::silu(x) * s - tanh(x * T(0.5)) * T(2);
        auto loss = sum(softplus(h) * h);
        loss.backward();
        return {loss, h};
    }
};

template <class T>
void check_fused_equals_unfused(const Shape& shape) {
    CAPTURE(detail::shape_str(shape));
    const std::size_t cols = shape.back();
    Activations<T> fused_model(cols), plain_model(cols), eager_model(cols);
    auto step_of = [](Activations<T>& m) {
        return compile::StepFn<T>([&m](const StepInputs<T>& in) { return m.step(in.tensors[0]); });
    };
    compile::CaptureOptions<T> off;
    off.fuse = false;
    auto fused = compile::capture<T>(step_of(fused_model), {{ramp<T>(shape, 0)}, {}});
    auto plain = compile::capture<T>(step_of(plain_model), {{ramp<T>(shape, 0)}, {}}, off);
    CHECK(plain.stats().fused_groups == 0);
    const auto stats = fused.stats();
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    if (n > 0) {
        CHECK(stats.fused_groups >= 1);       // the forward and the backward runs (one, through a sum of one row)
        CHECK(stats.fused_ops >= 12);
        CHECK(stats.steps == plain.stats().steps);  // every op is still there
    }
    for (int r = 1; r <= 3; ++r) {
        CAPTURE(r);
        const auto x = ramp<T>(shape, 0.1 * r);
        const auto got = fused({{x}, {}});
        const auto base = plain({{x}, {}});
        const auto want = eager_model.step(x);
        for (std::size_t k = 0; k < 2; ++k) {
            CHECK(identical(got[k], base[k]));
            CHECK(rel_diff(got[k], want[k]) <= (std::is_same_v<T, double> ? 1e-12 : 1e-5));
        }
        CHECK(identical(fused_model.w.grad(), plain_model.w.grad()));
        CHECK(identical(fused_model.s.grad(), plain_model.s.grad()));
        CHECK(rel_diff(fused_model.w.grad(), eager_model.w.grad()) <= (std::is_same_v<T, double> ? 1e-12 : 1e-5));
        CHECK(rel_diff(fused_model.s.grad(), eager_model.s.grad()) <= (std::is_same_v<T, double> ? 1e-12 : 1e-5));
    }
}

}  // namespace

TEST_CASE("compile fusion: fused replay equals the unfused one element for element, and eager mode") {
    // Block boundaries: a block is 4 KiB (512 doubles, 1024 floats); these
    // shapes end inside a block, on one, after several, and hold one value.
    for (const Shape& shape : {Shape{37, 29}, Shape{4, 256}, Shape{3, 1000}, Shape{1, 1}, Shape{1, 7}})
        check_fused_equals_unfused<double>(shape);
    for (const Shape& shape : {Shape{37, 29}, Shape{8, 256}, Shape{5, 999}})
        check_fused_equals_unfused<float>(shape);
}

TEST_CASE("compile fusion: an empty input fuses nothing and still replays") {
    check_fused_equals_unfused<double>(Shape{0, 5});
}

TEST_CASE("compile fusion: op_names shows each fused run with its ops") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        w.zero_grad();
        auto y = exp(in.tensors[0] * w) + Scalar<double>(1);
        auto loss = sum(tanh(y));
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0, 3.0})}, {}});
    const auto names = compiled.op_names();
    REQUIRE(names.size() == 1);  // the sum over the (one) row joins the run
    CHECK(names[0] == "fused(mul, exp, add_scalar, tanh, sum)");
    CHECK(compiled.stats().fused_ops == 5);
    auto got = compiled({{Tensor64({-1.0, 0.5, 0.25})}, {}})[0].item();
    double want = 0;
    const double x[] = {-1.0, 0.5, 0.25}, ws[] = {0.5, -1.0, 2.0};
    for (int i = 0; i < 3; ++i) want += std::tanh(std::exp(x[i] * ws[i]) + 1);
    CHECK(got == doctest::Approx(want).epsilon(1e-14));
}

TEST_CASE("compile fusion: a value read after its run is written whole, one read only inside stays in a row") {
    // h is read by the backward (a later run): written whole; exp(x) feeds
    // only the next op of its run.
    Tensor64 x0({0.1, 0.2, 0.3, 0.4});
    Tensor64 w({1.0, 2.0, 3.0, 4.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        w.zero_grad();
        auto h = exp(in.tensors[0]) * w;
        auto loss = sum(h * h);
        loss.backward();
        return std::vector<Tensor64>{loss, h};
    };
    auto compiled = compile::capture<double>(step, {{x0}, {}});
    for (double shift : {0.0, 0.5, -1.0}) {
        Tensor64 x({0.1 + shift, 0.2, 0.3 - shift, 0.4});
        const auto out = compiled({{x}, {}});
        auto gw = Tensor64(Array<double>(w.grad().value()));
        w.zero_grad();
        auto h = exp(x) * w;
        auto loss = sum(h * h);
        loss.backward();
        CHECK(rel_diff(out[0], loss) <= 1e-14);
        CHECK(rel_diff(out[1], h) <= 1e-14);
        CHECK(rel_diff(gw, w.grad()) <= 1e-14);
    }
}

namespace {
// A user op in the README's style: its forward as a function of one element.
Tensor64 user_add(const Tensor64& a, const Tensor64& b) {
    Op<double> op("user::add", {a, b});
    auto y = op.forward(kernels::elementwise<double, 2>([](double x, double z) { return x + z; }));
    return op.record(y, [](VjpContext<double>&, const Tensor64& g) { return Grads<double>{g, g}; });
}
}  // namespace

TEST_CASE("compile fusion: an elementwise forward checks that its inputs broadcast, naming the op") {
    CHECK_THROWS_WITH_AS(user_add(Tensor64({1.0, 2.0, 3.0}), Tensor64::ones({7})),
                         doctest::Contains("user::add"), ShapeError);
    CHECK(user_add(Tensor64({1.0, 2.0, 3.0}), Tensor64::ones({2, 3})).shape_vector() == Shape{2, 3});
}

TEST_CASE("compile fusion: where and clamp select the gradient, so an inf beside a zero mask gives 0, not NaN") {
    // sqrt(relu(w x)) at w x <= 0: d sqrt = inf, relu's mask 0: the gradient is 0
    // eagerly, with create_graph and replayed (relu is where(step(x), x, 0)).
    Tensor64 w({-1.0, 4.0, -9.0, 16.0}, true);
    auto f = [&](const Tensor64& x) { return sum(sqrt(nn::relu(w * x)) + sqrt(clamp(w * x, 0.0, 100.0))); };
    const Tensor64 x = Tensor64::ones({4});
    f(x).backward();
    const Tensor64 eager = Tensor64(Array<double>(w.grad().value()));
    const auto second = grad(f(x), {w}, {}, BackwardOptions{false, true})[0];
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        w.zero_grad();
        f(in.tensors[0]).backward();
        return std::vector<Tensor64>{};
    };
    auto compiled = compile::capture<double>(step, {{x}, {}});
    compiled({{x}, {}});
    for (std::size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(std::isfinite(eager.value()(i)));
        CHECK(second.value()(i) == eager.value()(i));
        CHECK(w.grad().value()(i) == eager.value()(i));
    }
    CHECK(eager.value()(0) == 0.0);
}

namespace {

// LayerNorm, softmax, log-softmax and a cross-entropy over the last axis:
// elementwise ops around reductions over rows, forward and backward.
template <class T>
struct RowOps {
    nn::LayerNorm<T> norm;
    BasicTensor<T> v;
    explicit RowOps(std::size_t cols) : norm(cols), v(ramp<T>({cols}, 1.5).detach().requires_grad_()) {}
    std::vector<BasicTensor<T>> step(const BasicTensor<T>& x, const compile::Index& labels) {
        for (auto* p : {&norm.weight, &norm.bias, &v}) p->zero_grad();
        auto h = norm.forward(x) * v;
        auto loss = nn::cross_entropy(h, labels) + sum(nn::softmax(h, -1) * nn::log_softmax(x, -1)) +
                    sum(logsumexp(h * T(0.5), {-1}));
        loss.backward();
        return {loss, h};
    }
};

template <class T>
void check_row_fusion(const Shape& shape, bool expect_reductions_fused) {
    CAPTURE(detail::shape_str(shape));
    const std::size_t cols = shape.back();
    RowOps<T> fused_model(cols), plain_model(cols), eager_model(cols);
    auto step_of = [](RowOps<T>& m) {
        return compile::StepFn<T>([&m](const StepInputs<T>& in) { return m.step(in.tensors[0], in.indices[0]); });
    };
    compile::Index labels(shape[0]);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t((i * 5) % cols);
    compile::CaptureOptions<T> off;
    off.fuse = false;
    auto fused = compile::capture<T>(step_of(fused_model), {{ramp<T>(shape, 0)}, {labels}});
    auto plain = compile::capture<T>(step_of(plain_model), {{ramp<T>(shape, 0)}, {labels}}, off);
    auto in_runs = [&](std::initializer_list<const char*> ops) {
        std::size_t found = 0;
        for (const auto& name : fused.op_names())
            if (name.rfind("fused(", 0) == 0)
                for (const char* op : ops)
                    for (std::size_t at = name.find(op); at != std::string::npos; at = name.find(op, at + 1)) ++found;
        return found;
    };
    if (expect_reductions_fused) {
        CHECK(in_runs({"sum,", "sum)", "sum_to", "logsumexp"}) >= 8);  // LayerNorm's, softmax's, in both passes
        CHECK(in_runs({"logsumexp"}) >= 2);
    } else {
        CHECK(in_runs({"logsumexp"}) == 0);  // (the loss's mean over the batch, rows of 2, still joins)
    }
    CHECK(fused.stats().steps == plain.stats().steps);
    for (int r = 1; r <= 3; ++r) {
        CAPTURE(r);
        const auto x = ramp<T>(shape, 0.3 * r);
        const auto got = fused({{x}, {labels}});
        const auto base = plain({{x}, {labels}});
        const auto want = eager_model.step(x, labels);
        const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
        for (std::size_t k = 0; k < 2; ++k) {
            CHECK(identical(got[k], base[k]));
            CHECK(rel_diff(got[k], want[k]) <= tol);
        }
        for (auto [f, p, e] : {std::tuple{&fused_model.norm.weight, &plain_model.norm.weight, &eager_model.norm.weight},
                               std::tuple{&fused_model.norm.bias, &plain_model.norm.bias, &eager_model.norm.bias},
                               std::tuple{&fused_model.v, &plain_model.v, &eager_model.v}}) {
            CHECK(identical(f->grad(), p->grad()));
            CHECK(rel_diff(f->grad(), e->grad()) <= tol);
        }
    }
}

}  // namespace

TEST_CASE("compile fusion: reductions over rows join the runs around them (LayerNorm, softmax, cross-entropy)") {
    // Rows shorter than a block (several per block, a partial last block),
    // a row of exactly a block, rows longer than a block (one per block),
    // one row, and rows too long to join a run (they stay steps of their own).
    for (const Shape& shape : {Shape{37, 29}, Shape{9, 512}, Shape{4, 1500}, Shape{1, 64}})
        check_row_fusion<double>(shape, true);
    check_row_fusion<double>(Shape{2, 5000}, false);
    for (const Shape& shape : {Shape{37, 29}, Shape{3, 1024}, Shape{2, 3000}}) check_row_fusion<float>(shape, true);
}
