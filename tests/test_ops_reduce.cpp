// Reductions: forward values over all elements and over axes (negative,
// several, keepdims), gradients and second derivatives against finite
// differences (float64), tie splitting for max/min, sum_to, and errors.
#include <doctest/doctest.h>

#include <cmath>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

using Reducer = BasicTensor<double> (*)(const BasicTensor<double>&, const Axes&, bool);

struct AxesCase {
    Axes axes;
    bool keepdims;
    Shape out;  // for a [2, 3, 4] input
};
const std::vector<AxesCase> kAxes = {
    {{}, false, {}},           {{}, true, {1, 1, 1}},   {{0}, false, {3, 4}}, {{-1}, false, {2, 3}},
    {{-1}, true, {2, 3, 1}}, {{0, 2}, false, {3}},    {{2, -3}, true, {1, 3, 1}}, {{0, 1, 2}, false, {}},
};

}  // namespace

TEST_CASE("ops: reductions forward values") {
    Tensor64 x({{1.0, 5.0, 3.0}, {4.0, 2.0, 6.0}});
    expect_values(sum(x), {}, {21});
    expect_values(sum(x, {0}), {3}, {5, 7, 9});
    expect_values(sum(x, {-1}, true), {2, 1}, {9, 12});
    expect_values(mean(x), {}, {3.5});
    expect_values(mean(x, {1}), {2}, {3, 4});
    expect_values(max(x), {}, {6});
    expect_values(max(x, {0}), {3}, {4, 5, 6});
    expect_values(min(x, {-1}, true), {2, 1}, {1, 2});
    expect_values(min(x, {0, 1}), {}, {1});
    expect_values(logsumexp(x, {1}), {2}, {std::log(std::exp(1.0) + std::exp(5.0) + std::exp(3.0)),
                                           std::log(std::exp(4.0) + std::exp(2.0) + std::exp(6.0))});
    // Stable for large values, and -inf slices give -inf.
    expect_values(logsumexp(Tensor64({1000.0, 1000.0})), {}, {1000 + std::log(2.0)});
    CHECK(logsumexp(Tensor64({-INFINITY, -INFINITY})).item() == -INFINITY);
    // A 0-d tensor reduces to itself.
    expect_values(sum(Tensor64::scalar(2.5)), {}, {2.5});
    expect_values(max(Tensor64::scalar(2.5)), {}, {2.5});
}

TEST_CASE("ops: reductions over axes - shapes, gradients and second derivatives") {
    const std::vector<std::pair<std::string, Reducer>> reducers = {
        {"sum", &sum<double>}, {"mean", &mean<double>}, {"max", &max<double>},
        {"min", &min<double>}, {"logsumexp", &logsumexp<double>}};
    const Tensor64 x = uniform({2, 3, 4}, 31);  // distinct values: no ties
    for (const auto& [name, reduce] : reducers)
        for (const auto& c : kAxes) {
            CAPTURE(name);
            CAPTURE(c.keepdims);
            CAPTURE(str(c.out));
            CHECK(reduce(x, c.axes, c.keepdims).shape_vector() == c.out);
            // Squared, so that even sum and max have second derivatives.
            TensorFunction f = [reduce = reduce, c = c](const std::vector<Tensor64>& in) {
                auto r = reduce(in[0], c.axes, c.keepdims);
                return r * r;
            };
            REQUIRE_GRADCHECK(f, std::vector<Tensor64>{x});
            REQUIRE_GRADGRADCHECK(f, std::vector<Tensor64>{x});
        }
}

TEST_CASE("ops: reductions of 0-d and broadcast inputs") {
    const std::vector<Reducer> reducers = {&sum<double>, &mean<double>, &max<double>, &min<double>,
                                           &logsumexp<double>};
    for (std::size_t i = 0; i < reducers.size(); ++i) {
        CAPTURE(i);
        // A 0-d input, and a reduction of a broadcast product.
        TensorFunction scalar = [r = reducers[i]](const std::vector<Tensor64>& in) {
            return r(in[0] * in[0], {}, false);
        };
        TensorFunction broadcast = [r = reducers[i]](const std::vector<Tensor64>& in) {
            return r(in[0] * in[1], {-1}, false);
        };
        REQUIRE_GRADCHECK(scalar, std::vector<Tensor64>{Tensor64::scalar(0.7)});
        REQUIRE_GRADGRADCHECK(scalar, std::vector<Tensor64>{Tensor64::scalar(0.7)});
        std::vector<Tensor64> inputs{uniform({3, 1}, 32), uniform({4}, 33)};
        REQUIRE_GRADCHECK(broadcast, inputs);
        REQUIRE_GRADGRADCHECK(broadcast, inputs);
    }
}

TEST_CASE("ops: max and min split the gradient evenly among ties") {
    Tensor64 x({{1.0, 3.0, 3.0}, {2.0, 2.0, 2.0}}, true);
    sum(max(x, {1})).backward();
    CHECK(x.grad().value() == xt::xarray<double>({{0.0, 0.5, 0.5}, {1.0 / 3, 1.0 / 3, 1.0 / 3}}));
    x.zero_grad();
    min(x).backward();  // a unique minimum takes it all
    CHECK(x.grad().value() == xt::xarray<double>({{1.0, 0.0, 0.0}, {0.0, 0.0, 0.0}}));
    x.zero_grad();
    max(x).backward();
    CHECK(x.grad().value() == xt::xarray<double>({{0.0, 0.5, 0.5}, {0.0, 0.0, 0.0}}));
}

TEST_CASE("ops: sum_to reduces broadcast shapes") {
    Tensor64 x = Tensor64::ones({2, 3, 4});
    expect_values(sum_to(x, {3, 1}), {3, 1}, {8, 8, 8});
    expect_values(sum_to(x, {4}), {4}, {6, 6, 6, 6});
    expect_values(sum_to(x, {}), {}, {24});
    expect_values(sum_to(x, {1, 3, 4}), {1, 3, 4}, std::vector<double>(12, 2.0));
    CHECK(sum_to(x, {2, 3, 4}).same(x));  // nothing to reduce
    for (const Shape& target : {Shape{3, 1}, Shape{4}, Shape{}, Shape{2, 1, 4}}) {
        CAPTURE(str(target));
        TensorFunction f = [target](const std::vector<Tensor64>& in) {
            auto s = sum_to(in[0], target);
            return s * s;
        };
        std::vector<Tensor64> inputs{uniform({2, 3, 4}, 34)};
        REQUIRE_GRADCHECK(f, inputs);
        REQUIRE_GRADGRADCHECK(f, inputs);
    }
    expect_error<ShapeError>([&] { sum_to(x, {5}); }, {"sum_to", "[2, 3, 4]", "[5]"});
}

TEST_CASE("ops: reduction errors name the op and the axis") {
    Tensor64 x = Tensor64::zeros({2, 3});
    expect_error<ValueError>([&] { sum(x, {2}); }, {"sum", "axis 2", "out of range", "2 dimensions"});
    expect_error<ValueError>([&] { max(x, {-3}); }, {"max", "axis -3"});
    expect_error<ValueError>([&] { mean(x, {0, -2}); }, {"mean", "twice"});
    expect_error<ValueError>([] { max(Tensor64::zeros({0, 3}), {0}); }, {"max", "empty", "[0, 3]"});
}
