// Elementwise arithmetic ops: forward values, gradients and second
// derivatives against finite differences (float64), the documented
// subgradients at ties and bounds, and the errors of misuse (including the
// graph errors a user meets first: seeds, retain_graph, in-place writes).
#include <doctest/doctest.h>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

// Binary shape cases: equal shapes, a broadcast row, a 0-d operand, and a
// two-sided broadcast.
const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 3}, {}}, {{}, {3}}, {{3, 1}, {1, 4}}};
const std::vector<Shape> kUnaryShapes = {{}, {4}, {2, 3}};

}  // namespace

TEST_CASE("ops: add sub mul div forward values with broadcasting") {
    Tensor64 a({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    Tensor64 b({10.0, 20.0, 40.0});
    expect_values(a + b, {2, 3}, {11, 22, 43, 14, 25, 46});
    expect_values(a - b, {2, 3}, {-9, -18, -37, -6, -15, -34});
    expect_values(a * b, {2, 3}, {10, 40, 120, 40, 100, 240});
    expect_values(a / b, {2, 3}, {0.1, 0.1, 0.075, 0.4, 0.25, 0.15});
    expect_values(-a, {2, 3}, {-1, -2, -3, -4, -5, -6});
    expect_values(a * Tensor64::scalar(2.0), {2, 3}, {2, 4, 6, 8, 10, 12});
}

TEST_CASE("ops: add sub mul div gradients on equal, broadcast and 0-d shapes") {
    const std::vector<std::pair<std::string, TensorFunction>> ops = {
        {"add", [](const std::vector<Tensor64>& x) { return x[0] + x[1]; }},
        {"sub", [](const std::vector<Tensor64>& x) { return x[0] - x[1]; }},
        {"mul", [](const std::vector<Tensor64>& x) { return x[0] * x[1]; }},
        {"div", [](const std::vector<Tensor64>& x) { return x[0] / x[1]; }},
    };
    for (const auto& [name, f] : ops)
        for (const auto& [sa, sb] : kBinaryShapes) {
            CAPTURE(name);
            CAPTURE(str(sa));
            CAPTURE(str(sb));
            // Denominators kept away from 0.
            std::vector<Tensor64> inputs{uniform(sa, 1), uniform(sb, 2, 0.5, 2.0)};
            REQUIRE_GRADCHECK(f, inputs);
            REQUIRE_GRADGRADCHECK(f, inputs);
        }
}

TEST_CASE("ops: neg and the tensor-scalar forms on both sides") {
    Tensor64 x({1.0, -2.0, 4.0});
    expect_values(x + 2.0, {3}, {3, 0, 6});
    expect_values(2.0 + x, {3}, {3, 0, 6});
    expect_values(x - 2.0, {3}, {-1, -4, 2});
    expect_values(2.0 - x, {3}, {1, 4, -2});
    expect_values(x * 3.0, {3}, {3, -6, 12});
    expect_values(3.0 * x, {3}, {3, -6, 12});
    expect_values(x / 4.0, {3}, {0.25, -0.5, 1});
    expect_values(4.0 / x, {3}, {4, -2, 1});

    const std::vector<TensorFunction> ops = {
        [](const std::vector<Tensor64>& x) { return -x[0]; },
        [](const std::vector<Tensor64>& x) { return x[0] + 2.0; },
        [](const std::vector<Tensor64>& x) { return 2.0 + x[0]; },
        [](const std::vector<Tensor64>& x) { return x[0] - 2.0; },
        [](const std::vector<Tensor64>& x) { return 2.0 - x[0]; },
        [](const std::vector<Tensor64>& x) { return x[0] * 3.0; },
        [](const std::vector<Tensor64>& x) { return 3.0 * x[0]; },
        [](const std::vector<Tensor64>& x) { return x[0] / 4.0; },
        [](const std::vector<Tensor64>& x) { return 4.0 / x[0]; },
        // Composed with a product so the second derivative is not zero.
        [](const std::vector<Tensor64>& x) { return (2.0 - x[0]) * (x[0] + 1.0) / 3.0; },
    };
    for (std::size_t i = 0; i < ops.size(); ++i)
        for (const auto& shape : kUnaryShapes) {
            CAPTURE(i);
            CAPTURE(str(shape));
            std::vector<Tensor64> inputs{uniform(shape, 3, 0.5, 2.0)};
            REQUIRE_GRADCHECK(ops[i], inputs);
            REQUIRE_GRADGRADCHECK(ops[i], inputs);
        }
}

TEST_CASE("ops: pow with a scalar exponent") {
    expect_values(pow(Tensor64({2.0, 3.0}), 2.0), {2}, {4, 9});
    expect_values(pow(Tensor64({4.0, 9.0}), 0.5), {2}, {2, 3});
    for (double p : {0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.5}) {
        for (const auto& shape : kUnaryShapes) {
            CAPTURE(p);
            CAPTURE(str(shape));
            TensorFunction f = [p](const std::vector<Tensor64>& x) { return pow(x[0], p); };
            std::vector<Tensor64> inputs{uniform(shape, 4, 0.5, 2.0)};
            REQUIRE_GRADCHECK(f, inputs);
            REQUIRE_GRADGRADCHECK(f, inputs);
        }
    }
    // Integer powers of negative numbers are fine too.
    TensorFunction cube = [](const std::vector<Tensor64>& x) { return pow(x[0], 3.0); };
    REQUIRE_GRADGRADCHECK(cube, std::vector<Tensor64>{uniform({5}, 5, -2.0, -0.5)});
    // p*x^(p-1) is 0 at x = 0 for p >= 1.
    Tensor64 zero({0.0}, true);
    sum(pow(zero, 2.0)).backward();
    CHECK(zero.grad().item() == 0.0);
}

TEST_CASE("ops: pow with a tensor exponent") {
    expect_values(pow(Tensor64({2.0, 9.0}), Tensor64({3.0, 0.5})), {2}, {8, 3});
    TensorFunction f = [](const std::vector<Tensor64>& x) { return pow(x[0], x[1]); };
    for (const auto& [sx, sp] : kBinaryShapes) {
        CAPTURE(str(sx));
        CAPTURE(str(sp));
        std::vector<Tensor64> inputs{uniform(sx, 6, 0.5, 2.0), uniform(sp, 7, -1.5, 2.5)};
        REQUIRE_GRADCHECK(f, inputs);
        REQUIRE_GRADGRADCHECK(f, inputs);
    }
    // d/dp x^p = x^p log x is taken as 0 at x = 0 (log undefined).
    Tensor64 x({0.0, 2.0}, true), p({2.0, 3.0}, true);
    sum(pow(x, p)).backward();
    CHECK(p.grad().value()(0) == 0.0);
    CHECK(p.grad().value()(1) == doctest::Approx(8 * std::log(2.0)));
}

TEST_CASE("ops: maximum and minimum gradients away from ties") {
    Tensor64 a({1.0, 5.0, -2.0}), b({3.0, 4.0, -1.0});
    expect_values(maximum(a, b), {3}, {3, 5, -1});
    expect_values(minimum(a, b), {3}, {1, 4, -2});
    expect_values(maximum(a, 0.0), {3}, {1, 5, 0});
    expect_values(minimum(a, 0.0), {3}, {0, 0, -2});
    const std::vector<TensorFunction> binary = {
        [](const std::vector<Tensor64>& x) { return maximum(x[0], x[1]); },
        [](const std::vector<Tensor64>& x) { return minimum(x[0], x[1]); },
        // Times the input, for a non-zero second derivative.
        [](const std::vector<Tensor64>& x) { return maximum(x[0], x[1]) * x[0]; },
    };
    for (std::size_t i = 0; i < binary.size(); ++i)
        for (const auto& [sa, sb] : kBinaryShapes) {
            CAPTURE(i);
            CAPTURE(str(sa));
            CAPTURE(str(sb));
            // Random values never tie within the finite-difference step.
            std::vector<Tensor64> inputs{uniform(sa, 8), uniform(sb, 9)};
            REQUIRE_GRADCHECK(binary[i], inputs);
            REQUIRE_GRADGRADCHECK(binary[i], inputs);
        }
    const std::vector<TensorFunction> scalar = {
        [](const std::vector<Tensor64>& x) { return maximum(x[0], 0.1); },
        [](const std::vector<Tensor64>& x) { return minimum(x[0], 0.1); },
        [](const std::vector<Tensor64>& x) { return minimum(x[0], 0.1) * x[0]; },
    };
    for (std::size_t i = 0; i < scalar.size(); ++i)
        for (const auto& shape : kUnaryShapes) {
            CAPTURE(i);
            CAPTURE(str(shape));
            std::vector<Tensor64> inputs{uniform(shape, 10)};
            REQUIRE_GRADCHECK(scalar[i], inputs);
            REQUIRE_GRADGRADCHECK(scalar[i], inputs);
        }
}

TEST_CASE("ops: maximum and minimum split the gradient at ties") {
    Tensor64 x({1.0, -2.0}, true);
    sum(maximum(x, x)).backward();  // both halves reach x: total 1
    CHECK(x.grad().value() == xt::xarray<double>({1.0, 1.0}));

    Tensor64 a({2.0, 1.0}, true), b({2.0, 3.0}, true);
    sum(minimum(a, b)).backward();
    CHECK(a.grad().value() == xt::xarray<double>({0.5, 1.0}));
    CHECK(b.grad().value() == xt::xarray<double>({0.5, 0.0}));

    Tensor64 c({0.0, 1.0, -1.0}, true);
    sum(maximum(c, 0.0)).backward();  // against a constant: half at the tie
    CHECK(c.grad().value() == xt::xarray<double>({0.5, 1.0, 0.0}));
}

TEST_CASE("ops: where picks by condition and routes gradients") {
    Tensor64 cond({{1.0, 0.0, 1.0}, {0.0, 0.0, 1.0}});
    expect_values(where(cond, Tensor64({1.0, 2.0, 3.0}), Tensor64::scalar(-1.0)), {2, 3}, {1, -1, 3, -1, -1, 3});
    const std::vector<std::pair<Shape, Shape>> shapes = {{{2, 3}, {2, 3}}, {{3}, {}}, {{}, {2, 1}}};
    for (const auto& [sa, sb] : shapes) {
        CAPTURE(str(sa));
        CAPTURE(str(sb));
        // The condition is a constant: it is not differentiable.
        TensorFunction f = [cond](const std::vector<Tensor64>& x) { return where(cond, x[0], x[1]) * x[0]; };
        std::vector<Tensor64> inputs{uniform(sa, 11), uniform(sb, 12)};
        REQUIRE_GRADCHECK(f, inputs);
        REQUIRE_GRADGRADCHECK(f, inputs);
    }
    Tensor64 c({1.0, 0.0}, true);
    sum(where(c, Tensor64({1.0, 2.0}), Tensor64({3.0, 4.0}))).backward();
    CHECK_FALSE(c.grad().defined());
}

TEST_CASE("ops: clamp limits values; gradient 1 inside and at the bounds, 0 outside") {
    Tensor64 x({-2.0, -1.0, 0.5, 1.0, 3.0}, true);
    auto y = clamp(x, -1.0, 1.0);
    expect_values(y, {5}, {-1, -1, 0.5, 1, 1});
    sum(y).backward();
    CHECK(x.grad().value() == xt::xarray<double>({0.0, 1.0, 1.0, 1.0, 0.0}));

    TensorFunction f = [](const std::vector<Tensor64>& x) { return clamp(x[0], -0.5, 0.5) * x[0]; };
    for (const auto& shape : kUnaryShapes) {
        CAPTURE(str(shape));
        // Values at least 0.05 away from the bounds.
        Tensor64 v = uniform(shape, 13, -1, 1);
        v.modify([](auto& values) {
            for (auto& e : values)
                if (std::abs(std::abs(e) - 0.5) < 0.05) e += 0.1;
        });
        std::vector<Tensor64> inputs{v};
        REQUIRE_GRADCHECK(f, inputs);
        REQUIRE_GRADGRADCHECK(f, inputs);
    }
    expect_error<ValueError>([] { clamp(Tensor64({1.0}), 1.0, -1.0); }, {"clamp", "lo=1", "hi=-1"});
}

TEST_CASE("ops: comparisons carry no graph") {
    Tensor64 a({1.0, 2.0, 3.0}, true), b({2.0, 2.0, 2.0}, true);
    expect_values(eq(a, b), {3}, {0, 1, 0});
    expect_values(ne(a, b), {3}, {1, 0, 1});
    expect_values(lt(a, b), {3}, {1, 0, 0});
    expect_values(le(a, b), {3}, {1, 1, 0});
    expect_values(gt(a, b), {3}, {0, 0, 1});
    expect_values(ge(a, b), {3}, {0, 1, 1});
    for (const auto& t : {eq(a, b), ne(a, b), lt(a, b), le(a, b), gt(a, b), ge(a, b)}) {
        CHECK_FALSE(t.requires_grad());
        CHECK(t.is_leaf());
    }
    expect_error<ShapeError>([&] { lt(a, Tensor64({1.0, 2.0})); }, {"lt", "[3]", "[2]"});
}

TEST_CASE("ops: broadcast mismatch names the op and both shapes") {
    expect_error<ShapeError>([] { Tensor64::zeros({2, 3}) + Tensor64::zeros({4}); }, {"add", "[2, 3]", "[4]"});
    expect_error<ShapeError>([] { Tensor64::zeros({2, 3}) * Tensor64::zeros({2, 1, 2}); },
                             {"mul", "[2, 3]", "[2, 1, 2]"});
    expect_error<ShapeError>([] { pow(Tensor64::zeros({3}), Tensor64::zeros({2})); }, {"pow", "[3]", "[2]"});
    expect_error<ShapeError>([] { maximum(Tensor64::zeros({3}), Tensor64::zeros({2})); },
                             {"maximum", "[3]", "[2]"});
}

TEST_CASE("ops: backward errors - seed, retain_graph, in-place writes, no grad") {
    SUBCASE("a non-scalar needs a seed") {
        Tensor64 x({1.0, 2.0}, true);
        auto y = x * 2.0;
        expect_error<GraphError>([&] { y.backward(); }, {"backward", "[2]", "seed"});
        y.backward(Tensor64({1.0, 1.0}));  // with a seed it works
        CHECK(x.grad().value() == xt::xarray<double>({2.0, 2.0}));
    }
    SUBCASE("backward twice needs retain_graph") {
        Tensor64 x({1.0, 2.0}, true);
        auto y = sum(x * x);
        y.backward();
        expect_error<GraphError>([&] { y.backward(); }, {"retain_graph", "released"});
    }
    SUBCASE("retain_graph allows a second backward") {
        Tensor64 x({1.0, 2.0}, true);
        auto y = sum(x * x);
        y.backward(BackwardOptions{true});
        y.backward();
        CHECK(x.grad().value() == xt::xarray<double>({4.0, 8.0}));  // 2x, twice
    }
    SUBCASE("a saved tensor modified in place") {
        Tensor64 x({1.0, 2.0}, true);
        auto h = x * 2.0;
        auto y = sum(h * h);  // mul saves h
        h.modify([](auto& v) { v(0) = 7.0; });
        expect_error<GraphError>([&] { y.backward(); }, {"modified in place", "mul"});
    }
    SUBCASE("a tensor that does not require grad") {
        Tensor64 x({1.0, 2.0});
        expect_error<GraphError>([&] { sum(x * x).backward(); }, {"does not require grad"});
    }
}
