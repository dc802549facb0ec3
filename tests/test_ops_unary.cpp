// Elementwise functions of one tensor: forward values against <cmath>,
// gradients and second derivatives against finite differences (float64),
// subgradients, the non-differentiable ops, and tanh's second derivative
// against its closed form.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

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
