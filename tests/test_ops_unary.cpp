// Elementwise functions of one tensor: forward values against <cmath>,
// gradients and second derivatives against finite differences (float64),
// subgradients, the non-differentiable ops, and tanh's second derivative
// against its closed form.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <utility>

#include <tapegrad/nn/activations.hpp>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

const std::vector<Shape> kShapes = {{}, {4}, {2, 3}};

struct UnaryCase {
    std::string name;
    std::function<Tensor64(const Tensor64&)> op;
    double (*reference)(double);
    double lo, hi;  // input range: inside the domain, away from kinks
};

}  // namespace

TEST_CASE("ops: unary functions - values, gradients and second derivatives") {
    const std::vector<UnaryCase> cases = {
        {"exp", [](const Tensor64& x) { return exp(x); }, [](double v) { return std::exp(v); }, -2, 2},
        {"log", [](const Tensor64& x) { return log(x); }, [](double v) { return std::log(v); }, 0.2, 3},
        {"log1p", [](const Tensor64& x) { return log1p(x); }, [](double v) { return std::log1p(v); }, -0.8, 3},
        {"sqrt", [](const Tensor64& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.2, 3},
        {"abs", [](const Tensor64& x) { return abs(x); }, [](double v) { return std::abs(v); }, 0.1, 2},
        {"abs-", [](const Tensor64& x) { return abs(x); }, [](double v) { return std::abs(v); }, -2, -0.1},
        {"tanh", [](const Tensor64& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -2, 2},
        {"erf", [](const Tensor64& x) { return erf(x); }, [](double v) { return std::erf(v); }, -2, 2},
        {"sin", [](const Tensor64& x) { return sin(x); }, [](double v) { return std::sin(v); }, -3, 3},
        {"cos", [](const Tensor64& x) { return cos(x); }, [](double v) { return std::cos(v); }, -3, 3},
        {"sigmoid", [](const Tensor64& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }, -4, 4},
        {"softplus", [](const Tensor64& x) { return softplus(x); }, [](double v) { return std::log1p(std::exp(v)); }, -4, 4},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        for (const auto& shape : kShapes) {
            CAPTURE(str(shape));
            Tensor64 x = uniform(shape, 21, c.lo, c.hi);
            Tensor64 y = c.op(x);
            REQUIRE(y.shape_vector() == shape);
            for (std::size_t i = 0; i < x.size(); ++i)
                CHECK(y.value().data()[i] == doctest::Approx(c.reference(x.value().data()[i])).epsilon(1e-12));
            TensorFunction f = [op = c.op](const std::vector<Tensor64>& in) { return op(in[0]); };
            // Times the input as well, so that even abs has a second derivative.
            TensorFunction g = [op = c.op](const std::vector<Tensor64>& in) { return op(in[0]) * in[0]; };
            REQUIRE_GRADCHECK(f, std::vector<Tensor64>{x});
            REQUIRE_GRADGRADCHECK(f, std::vector<Tensor64>{x});
            REQUIRE_GRADGRADCHECK(g, std::vector<Tensor64>{x});
        }
    }
}

TEST_CASE("ops: unary functions broadcast inside compositions") {
    // exp(x + b) with a broadcast bias: the unary op's gradient flows back
    // through the broadcasting add to both shapes.
    TensorFunction f = [](const std::vector<Tensor64>& x) { return tanh(exp(x[0] + x[1]) * x[1]); };
    std::vector<Tensor64> inputs{uniform({2, 3}, 22), uniform({3}, 23)};
    REQUIRE_GRADCHECK(f, inputs);
    REQUIRE_GRADGRADCHECK(f, inputs);
}

TEST_CASE("ops: abs has subgradient 0 at 0") {
    Tensor64 x({-1.5, 0.0, 2.0}, true);
    sum(abs(x)).backward();
    CHECK(x.grad().value() == xt::xarray<double>({-1.0, 0.0, 1.0}));
}

TEST_CASE("ops: sign and step have values but no graph") {
    Tensor64 x({-1.5, 0.0, 2.0}, true);
    auto s = sign(x);
    auto t = step(x);
    CHECK(s.value() == xt::xarray<double>({-1.0, 0.0, 1.0}));
    CHECK(t.value() == xt::xarray<double>({0.0, 0.0, 1.0}));
    CHECK_FALSE(s.requires_grad());
    CHECK_FALSE(t.requires_grad());
    CHECK(s.is_leaf());
    // Used in an expression, they are constants: d(x * step(x))/dx = step(x).
    sum(x * t).backward();
    CHECK(x.grad().value() == xt::xarray<double>({0.0, 0.0, 1.0}));
}

TEST_CASE("ops: tanh second derivative matches the closed form and finite differences") {
    const std::vector<double> points = {-1.7, -0.3, 0.0, 0.4, 2.1};
    Tensor64 x = Tensor64::from_data(points.data(), {points.size()}, true);
    // First derivative with create_graph, then differentiate it again.
    auto d1 = grad(sum(tanh(x)), {x}, {}, BackwardOptions{true, true})[0];
    REQUIRE(d1.requires_grad());
    auto d2 = grad(sum(d1), {x}, {}, BackwardOptions{true, true})[0];  // recorded too
    const double eps = 1e-5;
    for (std::size_t i = 0; i < points.size(); ++i) {
        const double v = points[i], t = std::tanh(v);
        CAPTURE(v);
        CHECK(d1.value()(i) == doctest::Approx(1 - t * t).epsilon(1e-12));
        CHECK(d2.value()(i) == doctest::Approx(-2 * t * (1 - t * t)).epsilon(1e-12));
        // Central difference of the first derivative 1 - tanh^2.
        auto first = [](double u) { return 1 - std::tanh(u) * std::tanh(u); };
        CHECK(d2.value()(i) == doctest::Approx((first(v + eps) - first(v - eps)) / (2 * eps)).epsilon(1e-6));
    }
    // And the third, through the recorded second.
    auto d3 = grad(sum(d2), {x})[0];
    for (std::size_t i = 0; i < points.size(); ++i) {
        const double t = std::tanh(points[i]);
        CHECK(d3.value()(i) == doctest::Approx(-2 * (1 - t * t) * (1 - 3 * t * t)).epsilon(1e-10));
    }
}

TEST_CASE("ops: sigmoid and softplus stay finite at +-1000 in float32") {
    Tensor x({-1000.f, -100.f, -20.f, 0.f, 20.f, 100.f, 1000.f}, true);
    auto s = sigmoid(x);
    auto p = softplus(x);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = x.value()(i);
        CAPTURE(v);
        CHECK(std::isfinite(s.value()(i)));
        CHECK(std::isfinite(p.value()(i)));
        CHECK(s.value()(i) == doctest::Approx(1 / (1 + std::exp(-v))).epsilon(1e-6));
        CHECK(p.value()(i) == doctest::Approx(v > 30 ? v : std::log1p(std::exp(v))).epsilon(1e-6));
    }
    CHECK(s.value()(0) == 0.f);
    CHECK(s.value()(6) == 1.f);
    CHECK(p.value()(0) == 0.f);
    CHECK(p.value()(6) == 1000.f);
    // Gradients: sigmoid' = s(1-s) is 0 at the ends, 1/4 at 0; softplus' = sigmoid.
    auto ds = grad(sum(s), {x})[0];
    auto dp = grad(sum(p), {x})[0];
    for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(std::isfinite(ds.value()(i)));
        CHECK(dp.value()(i) == doctest::Approx(s.value()(i)));
    }
    CHECK(ds.value()(0) == 0.f);
    CHECK(ds.value()(3) == 0.25f);
    CHECK(ds.value()(6) == 0.f);
    CHECK(dp.value()(3) == 0.5f);
    // Second derivatives at the ends are finite too.
    auto d1 = grad(sum(sigmoid(x)), {x}, {}, BackwardOptions{true, true})[0];
    auto d2 = grad(sum(d1), {x})[0];
    for (double v : d2.value()) CHECK(std::isfinite(v));
}

TEST_CASE("ops: sigmoid and softplus equal their compositions from primitives") {
    // The formulas they replace as nn:: activations, composed from exp, log1p
    // and where: same values and the same first and second derivatives.
    Tensor64 x({-7.5, -1.25, -0.5, 0.0, 0.3, 2.0, 9.0}, true);
    auto composed_sigmoid = [](const Tensor64& v) { return rdiv(1.0, exp(-v) + 1.0); };
    auto composed_softplus = [](const Tensor64& v) { return maximum(v, 0.0) + log1p(exp(-abs(v))); };
    for (auto [core, composed] : {std::pair<std::function<Tensor64(const Tensor64&)>, std::function<Tensor64(const Tensor64&)>>{
                                      [](const Tensor64& v) { return sigmoid(v); }, composed_sigmoid},
                                  {[](const Tensor64& v) { return softplus(v); }, composed_softplus}}) {
        auto a = core(x), b = composed(x);
        for (std::size_t i = 0; i < x.size(); ++i) CHECK(a.value()(i) == doctest::Approx(b.value()(i)).epsilon(1e-14));
        auto da = grad(sum(a), {x}, {}, BackwardOptions{true, true})[0];
        auto db = grad(sum(b), {x}, {}, BackwardOptions{true, true})[0];
        auto dda = grad(sum(da), {x})[0];
        auto ddb = grad(sum(db), {x})[0];
        for (std::size_t i = 0; i < x.size(); ++i) {
            CHECK(da.value()(i) == doctest::Approx(db.value()(i)).epsilon(1e-12));
            if (x.value()(i) != 0.0)  // the composed softplus has a kink in abs at 0
                CHECK(dda.value()(i) == doctest::Approx(ddb.value()(i)).epsilon(1e-10));
        }
    }
    // nn:: names the same functions.
    CHECK(nn::sigmoid(x).value() == sigmoid(x).value());
    CHECK(std::string(nn::softplus(x).op_name()) == "softplus");
}

TEST_CASE("ops: sin and cos derivatives against the closed forms") {
    Tensor64 x({-2.0, -0.5, 0.0, 1.0, 3.0}, true);
    auto ds = grad(sum(sin(x)), {x}, {}, BackwardOptions{true, true})[0];
    auto dds = grad(sum(ds), {x})[0];
    auto dc = grad(sum(cos(x)), {x})[0];
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = x.value()(i);
        CHECK(ds.value()(i) == doctest::Approx(std::cos(v)).epsilon(1e-14));
        CHECK(dds.value()(i) == doctest::Approx(-std::sin(v)).epsilon(1e-14));
        CHECK(dc.value()(i) == doctest::Approx(-std::sin(v)).epsilon(1e-14));
    }
}
