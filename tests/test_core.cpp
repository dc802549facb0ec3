// Core features around the engine: grad mode, memory, gradcheck itself,
// anomaly detection, profiler, DOT export.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include <tapegrad/core/op.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {
// An op with a deliberately wrong VJP (derivative of x^3 taken as 2x^2):
// gradcheck must catch it.
Tensor64 wrong_cube(const Tensor64& x) {
    detail::Op<double> op("wrong_cube", {x});
    auto y = op.output(x.value() * x.value() * x.value());
    return op.record(y, [sx = op.save(x)](detail::VjpContext<double>& c, const Tensor64& g) {
        const auto& v = c.unpack(sx);
        return detail::Grads<double>{g * v * v * 2.0};
    });
}

std::size_t resident_kib() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * 4;
}
}  // namespace

TEST_CASE("core: gradcheck passes a right gradient and reports a wrong one") {
    Generator gen(1);
    auto x = Tensor64::randn({3, 2}, gen);
    auto good = gradcheck([](const std::vector<Tensor64>& in) { return in[0] * in[0] * in[0]; }, {x});
    INFO(good.message());
    CHECK(good.passed);
    CHECK(good.checked == 6);

    auto bad = gradcheck([](const std::vector<Tensor64>& in) { return wrong_cube(in[0]); }, {x});
    CHECK_FALSE(bad.passed);
    CHECK(bad.message().find("FAILED") != std::string::npos);
    CHECK(bad.worst.input == 0);
    CHECK(bad.max_abs_error > 0.01);
}

TEST_CASE("core: gradgradcheck catches a wrong second derivative") {
    Generator gen(2);
    auto x = Tensor64::randn({4}, gen);
    auto good = gradgradcheck([](const std::vector<Tensor64>& in) { return tanh(in[0]) * in[0]; }, {x});
    INFO(good.message());
    CHECK(good.passed);
    // A VJP computed on raw values instead of tensor ops drops out of the
    // second-order graph; gradgradcheck must notice.
    auto opaque = [](const std::vector<Tensor64>& in) {
        detail::Op<double> op("opaque_square", {in[0]});
        auto y = op.output(in[0].value() * in[0].value());
        return op.record(y, [sx = op.save(in[0])](detail::VjpContext<double>& c, const Tensor64& g) {
            // Constant-folded derivative: the graph of g*2x is lost.
            return detail::Grads<double>{Tensor64(xt::xarray<double>(g.value() * c.unpack(sx).value() * 2.0))};
        });
    };
    auto bad = gradgradcheck(opaque, {x});
    CHECK_FALSE(bad.passed);
}

TEST_CASE("core: NoGradGuard records nothing and restores the mode") {
    Tensor64 x({1.0, 2.0}, true);
    {
        NoGradGuard guard;
        auto y = x * 2.0;
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
        {
            EnableGradGuard on;
            CHECK((x * 2.0).requires_grad());
        }
        CHECK_FALSE(grad_enabled());
    }
    CHECK(grad_enabled());
    CHECK((x * 2.0).requires_grad());
}

TEST_CASE("core: detach cuts the graph but shares the value") {
    Tensor64 x({1.0, 2.0}, true);
    auto y = (x * 3.0).detach();
    CHECK_FALSE(y.requires_grad());
    auto z = sum(y * x);
    z.backward();
    CHECK(x.grad().value() == xt::xarray<double>({3.0, 6.0}));
}

TEST_CASE("core: 100,000 forward passes without backward do not grow memory") {
    Generator gen(3);
    auto w = Tensor::randn({8, 8}, gen, 0.0f, 0.1f, true);
    auto b = Tensor::zeros({8}, true);
    auto x = Tensor::randn({4, 8}, gen);
    const auto nodes_before = live_graph_nodes();
    auto forward = [&] { return sum(tanh(x * 0.5f + b) * 2.0f); };
    for (int i = 0; i < 1000; ++i) forward();  // warm up the allocator
    const auto rss_before = resident_kib();
    std::size_t recorded = 0;
    for (int i = 0; i < 100000; ++i) recorded += forward().is_leaf() ? 0 : 1;
    CHECK(recorded == 100000);
    CHECK(live_graph_nodes() == nodes_before);
#if !defined(__SANITIZE_ADDRESS__)  // ASan quarantines freed memory: RSS grows by design
    CHECK(resident_kib() < rss_before + 4096);  // 100k graphs would be hundreds of MiB
#else
    (void)rss_before;
#endif
}

TEST_CASE("core: the graph of a result is freed when the result goes away") {
    Tensor64 x({1.0, 2.0}, true);
    const auto before = live_graph_nodes();
    {
        auto y = exp(x) * x + 1.0;
        CHECK(live_graph_nodes() == before + 3);
    }
    CHECK(live_graph_nodes() == before);
}

TEST_CASE("core: anomaly mode names the op that produced NaN, and is off by default") {
    Tensor64 x({-1.0, 4.0}, true);
    CHECK_NOTHROW(log(x));  // NaN passes silently by default
    DetectAnomalyGuard anomaly;
    try {
        log(x);
        FAIL("expected an AnomalyError");
    } catch (const AnomalyError& e) {
        CHECK(std::string(e.what()).find("'log'") != std::string::npos);
        CHECK(std::string(e.what()).find("NaN") != std::string::npos);
    }
    // A gradient anomaly names the node and the input: d sqrt(x)/dx at 0 is Inf.
    Tensor64 z({0.0, 1.0}, true);
    auto s = sum(sqrt(z));
    try {
        s.backward();
        FAIL("expected an AnomalyError");
    } catch (const AnomalyError& e) {
        std::string msg = e.what();
        CHECK(msg.find("gradient of 'sqrt'") != std::string::npos);
        CHECK(msg.find("input 0") != std::string::npos);
        CHECK(msg.find("tape position") != std::string::npos);
    }
}

TEST_CASE("core: profiler counts ops and times both passes") {
    Tensor64 x({1.0, 2.0, 3.0}, true);
    Profiler prof;
    auto y = sum(tanh(x) * x);
    y.backward();
    auto rows = prof.rows();
    auto find = [&](const std::string& op) {
        for (auto& r : rows)
            if (r.op == op) return r;
        return Profiler::Row{};
    };
    CHECK(find("tanh").forward_count == 1);
    CHECK(find("tanh").backward_count == 1);
    CHECK(find("tanh").saved_bytes == 3 * sizeof(double));
    CHECK(find("mul").forward_count == 1);
    CHECK(prof.table().find("tanh") != std::string::npos);
}

TEST_CASE("core: DOT export shows ops, shapes and leaves") {
    Tensor64 w = Tensor64::ones({2, 3}, true);
    Tensor64 x = Tensor64::ones({2, 3});
    auto y = sum(w * x);
    auto dot = to_dot(y);
    CHECK(dot.rfind("digraph", 0) == 0);
    CHECK(dot.find("mul") != std::string::npos);
    CHECK(dot.find("sum") != std::string::npos);
    CHECK(dot.find("leaf [2, 3]") != std::string::npos);
    CHECK(dot.find("const [2, 3]") != std::string::npos);
    CHECK(dot.find("->") != std::string::npos);
}

TEST_CASE("core: grad() returns gradients without touching .grad") {
    Tensor64 x({1.0, 2.0}, true);
    auto y = sum(x * x * x);
    auto g = grad(y, {x});
    CHECK(g[0].value() == xt::xarray<double>({3.0, 12.0}));
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("core: create_graph gives a differentiable gradient (Hessian-vector product)") {
    // f(x) = sum(x^3): H = diag(6x), so H v = 6 x v.
    Tensor64 x({1.0, -2.0, 0.5}, true);
    Tensor64 v({1.0, 2.0, 3.0});
    auto g = grad(sum(x * x * x), {x}, {}, BackwardOptions{true, true})[0];
    CHECK(g.requires_grad());
    auto hv = grad(sum(g * v), {x})[0];
    CHECK(hv.value() == xt::xarray<double>({6.0, -24.0, 9.0}));
}

TEST_CASE("core: creation functions and item") {
    Generator a(7), b(7);
    CHECK(Tensor::randn({3}, a).value() == Tensor::randn({3}, b).value());
    CHECK(Tensor64::arange(0.0, 3.0).value() == xt::xarray<double>({0.0, 1.0, 2.0}));
    CHECK(Tensor64::full({2}, 4.0).value() == xt::xarray<double>({4.0, 4.0}));
    CHECK(Tensor64::scalar(5.0).item() == 5.0);
    CHECK_THROWS_AS(Tensor64::zeros({2}).item(), ValueError);
    auto r = Tensor64::rand({1000}, a, -1.0, 1.0);
    CHECK(xt::amin(r.value())() >= -1.0);
    CHECK(xt::amax(r.value())() < 1.0);
    const double data[] = {1, 2, 3, 4, 5, 6};
    CHECK(Tensor64::from_data(data, {2, 3}).shape_vector() == Shape{2, 3});
    CHECK(Tensor64({{1.0, 2.0}, {3.0, 4.0}}).shape_vector() == Shape{2, 2});
    CHECK(Tensor64({1.0, 2.0}).to<float>().value() == xt::xarray<float>({1.0f, 2.0f}));
}
