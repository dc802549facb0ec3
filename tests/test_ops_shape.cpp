// Shape and indexing ops: reshape, broadcast_to, slice, concat, stack,
// index_select, gather, one_hot. Forward values, gradients and second
// derivatives against finite differences (float64), and errors.
//
// These ops are linear, so their second derivatives are checked on op(x)^2,
// which makes the backward graph run each op's adjoint on an x-dependent
// gradient (and so exercises the adjoint's own VJP).
#include <doctest/doctest.h>

#include <functional>
#include <limits>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

// 0, 1, 2, ... in the given shape.
Tensor64 iota(const Shape& shape) {
    Tensor64 t = Tensor64::zeros(shape);
    double v = 0;
    t.modify([&](auto& values) {
        for (auto& e : values) e = v++;
    });
    return t;
}

using UnaryOp = std::function<Tensor64(const Tensor64&)>;

}  // namespace

// Checks op on x alone (first and second derivatives, through op(x)^2) and
// with a partner broadcast against its result.
static void check_linear_op(const UnaryOp& op, const Tensor64& x, const Shape& partner) {
    TensorFunction plain = [op](const std::vector<Tensor64>& in) { return op(in[0]); };
    TensorFunction squared = [op](const std::vector<Tensor64>& in) { return op(in[0]) * op(in[0]); };
    TensorFunction broadcast = [op](const std::vector<Tensor64>& in) { return op(in[0]) * in[1]; };
    REQUIRE_GRADCHECK(plain, std::vector<Tensor64>{x});
    REQUIRE_GRADCHECK(squared, std::vector<Tensor64>{x});
    REQUIRE_GRADGRADCHECK(squared, std::vector<Tensor64>{x});
    std::vector<Tensor64> inputs{x, uniform(partner, 61)};
    REQUIRE_GRADCHECK(broadcast, inputs);
    REQUIRE_GRADGRADCHECK(broadcast, inputs);
}

TEST_CASE("ops: reshape") {
    Tensor64 x = iota({2, 3});
    expect_values(reshape(x, {3, 2}), {3, 2}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(x, {-1}), {6}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(x, {1, -1, 2}), {1, 3, 2}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(Tensor64::scalar(4.0), {1, 1}), {1, 1}, {4});
    expect_values(reshape(Tensor64::full({1, 1}, 4.0), {}), {}, {4});
    check_linear_op([](const Tensor64& v) { return reshape(v, {3, -1}); }, uniform({2, 3}, 62), {2});
    check_linear_op([](const Tensor64& v) { return reshape(v, {2, 2, 2}); }, uniform({8}, 63), {2, 1});
    check_linear_op([](const Tensor64& v) { return reshape(v, {1}); }, uniform({}, 64), {3});
    check_linear_op([](const Tensor64& v) { return reshape(v, {}); }, uniform({1, 1}, 65), {2});
    expect_error<ShapeError>([&] { reshape(x, {4, 2}); }, {"reshape", "[2, 3]", "6 elements", "[4, 2]"});
    expect_error<ShapeError>([&] { reshape(x, {-1, -1}); }, {"reshape", "-1"});
}

TEST_CASE("ops: broadcast_to") {
    expect_values(broadcast_to(Tensor64({1.0, 2.0}), {2, 2}), {2, 2}, {1, 2, 1, 2});
    expect_values(broadcast_to(iota({2, 1}) + 1.0, {2, 3}), {2, 3}, {1, 1, 1, 2, 2, 2});
    expect_values(broadcast_to(Tensor64::scalar(3.0), {2}), {2}, {3, 3});
    check_linear_op([](const Tensor64& v) { return broadcast_to(v, {2, 3}); }, uniform({3}, 66), {2, 1});
    check_linear_op([](const Tensor64& v) { return broadcast_to(v, {2, 3, 4}); }, uniform({3, 1}, 67), {4});
    check_linear_op([](const Tensor64& v) { return broadcast_to(v, {2, 2}); }, uniform({}, 68), {2});
    expect_error<ShapeError>([] { broadcast_to(Tensor64::zeros({3}), {4}); }, {"broadcast_to", "[3]", "[4]"});
    expect_error<ShapeError>([] { broadcast_to(Tensor64::zeros({2, 3}), {3}); }, {"broadcast_to", "[2, 3]", "[3]"});
}

TEST_CASE("ops: slice") {
    Tensor64 x = iota({3, 4});
    expect_values(slice(x, 0, 1, 3), {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
    expect_values(slice(x, -1, -2, 100), {3, 2}, {2, 3, 6, 7, 10, 11});  // negative start, clipped stop
    expect_values(slice(x, 1, 0, 4, 3), {3, 2}, {0, 3, 4, 7, 8, 11});
    expect_values(slice(x, 1, 1, -1, 2), {3, 1}, {1, 5, 9});
    CHECK(slice(x, 0, 2, 1).shape_vector() == Shape{0, 4});  // empty
    expect_values(slice(x, 1, 1, 4, std::numeric_limits<std::int64_t>::max()), {3, 1}, {1, 5, 9});
    check_linear_op([](const Tensor64& v) { return slice(v, 1, 1, 4, 2); }, uniform({2, 5, 3}, 69), {3});
    check_linear_op([](const Tensor64& v) { return slice(v, -1, -3, 5); }, uniform({2, 5}, 70), {2, 1});
    check_linear_op([](const Tensor64& v) { return slice(v, 0, 1, 2); }, uniform({4}, 71), {});
    // Positions not sliced get zero gradient.
    Tensor64 y({1.0, 2.0, 3.0, 4.0}, true);
    sum(slice(y, 0, 1, 4, 2)).backward();
    CHECK(y.grad().value() == xt::xarray<double>({0.0, 1.0, 0.0, 1.0}));
    expect_error<ValueError>([&] { slice(x, 0, 0, 2, 0); }, {"slice", "step", "0"});
    expect_error<ValueError>([&] { slice(x, 2, 0, 1); }, {"slice", "axis 2"});
    expect_error<ValueError>([] { slice(Tensor64::scalar(1.0), 0, 0, 1); }, {"slice", "axis 0"});
}

TEST_CASE("ops: concat") {
    Tensor64 a = iota({2, 1}), b = iota({2, 2}) + 10.0, c = iota({2, 3}) + 20.0;
    expect_values(concat<double>({a, b, c}, 1), {2, 6}, {0, 10, 11, 20, 21, 22, 1, 12, 13, 23, 24, 25});
    expect_values(concat<double>({b, c}, -1), {2, 5}, {10, 11, 20, 21, 22, 12, 13, 23, 24, 25});
    expect_values(concat<double>({a, a}, 0), {4, 1}, {0, 1, 0, 1});
    expect_values(concat<double>({a}, 0), {2, 1}, {0, 1});
    const std::vector<std::vector<Shape>> cases = {{{2, 1}, {2, 2}, {2, 3}}, {{1, 3}, {2, 3}}, {{4}, {2}}};
    const std::vector<std::ptrdiff_t> axes = {-1, 0, 0};
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        std::vector<Tensor64> inputs;
        for (std::size_t j = 0; j < cases[i].size(); ++j) inputs.push_back(uniform(cases[i][j], 72 + j));
        TensorFunction squared = [axis = axes[i]](const std::vector<Tensor64>& in) {
            auto y = concat(in, axis);
            return y * y;
        };
        REQUIRE_GRADCHECK(squared, inputs);
        REQUIRE_GRADGRADCHECK(squared, inputs);
    }
    // A broadcast partner, and an input that needs no gradient.
    TensorFunction f = [c](const std::vector<Tensor64>& in) { return concat<double>({in[0], c}, 1) * in[1]; };
    std::vector<Tensor64> inputs{uniform({2, 2}, 75), uniform({5}, 76)};
    REQUIRE_GRADCHECK(f, inputs);
    REQUIRE_GRADGRADCHECK(f, inputs);
    expect_error<ValueError>([] { concat(std::vector<Tensor64>{}); }, {"concat", "empty"});
    expect_error<ShapeError>([&] { concat<double>({b, iota({3, 3})}, 1); }, {"concat", "[2, 2]", "[3, 3]"});
    expect_error<ShapeError>([&] { concat<double>({b, iota({2})}, 0); }, {"concat", "[2, 2]", "[2]"});
    expect_error<ValueError>([&] { concat<double>({b, b}, 2); }, {"concat", "axis 2"});
}

TEST_CASE("ops: stack") {
    Tensor64 a({1.0, 2.0}), b({3.0, 4.0});
    expect_values(stack<double>({a, b}), {2, 2}, {1, 2, 3, 4});
    expect_values(stack<double>({a, b}, 1), {2, 2}, {1, 3, 2, 4});
    expect_values(stack<double>({a, b}, -1), {2, 2}, {1, 3, 2, 4});
    expect_values(stack<double>({Tensor64::scalar(5.0), Tensor64::scalar(6.0)}), {2}, {5, 6});
    for (const auto& [shape, axis] : std::vector<std::pair<Shape, std::ptrdiff_t>>{
             {{2, 3}, 1}, {{2, 3}, -1}, {{3}, 0}, {{}, 0}}) {
        CAPTURE(str(shape));
        CAPTURE(axis);
        std::vector<Tensor64> inputs{uniform(shape, 77), uniform(shape, 78), uniform(shape, 79)};
        TensorFunction squared = [axis = axis](const std::vector<Tensor64>& in) {
            auto y = stack(in, axis);
            return y * y;
        };
        REQUIRE_GRADCHECK(squared, inputs);
        REQUIRE_GRADGRADCHECK(squared, inputs);
    }
    TensorFunction f = [](const std::vector<Tensor64>& in) { return stack<double>({in[0], in[0]}, 0) * in[1]; };
    std::vector<Tensor64> inputs{uniform({3}, 80), uniform({2, 1}, 81)};
    REQUIRE_GRADCHECK(f, inputs);
    REQUIRE_GRADGRADCHECK(f, inputs);
    expect_error<ValueError>([] { stack(std::vector<Tensor64>{}); }, {"stack", "empty"});
    expect_error<ShapeError>([&] { stack<double>({a, Tensor64({1.0})}); }, {"stack", "[2]", "[1]"});
    expect_error<ValueError>([&] { stack<double>({a, b}, 2); }, {"stack", "axis 2"});
}

TEST_CASE("ops: index_select") {
    Tensor64 x = iota({3, 2});
    expect_values(index_select(x, 0, {2, 0, 2}), {3, 2}, {4, 5, 0, 1, 4, 5});
    expect_values(index_select(x, -1, {1}), {3, 1}, {1, 3, 5});
    CHECK(index_select(x, 0, {}).shape_vector() == Shape{0, 2});
    // Repeated indices add up their gradients.
    Tensor64 y({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}, true);
    sum(index_select(y, 0, {2, 0, 2})).backward();
    CHECK(y.grad().value() == xt::xarray<double>({{1.0, 1.0}, {0.0, 0.0}, {2.0, 2.0}}));
    check_linear_op([](const Tensor64& v) { return index_select(v, 0, {2, 0, 2, 1}); }, uniform({3, 2}, 82), {2});
    check_linear_op([](const Tensor64& v) { return index_select(v, 1, {1, 1}); }, uniform({2, 3, 2}, 83), {2, 1, 1});
    check_linear_op([](const Tensor64& v) { return index_select(v, -1, {0, 3}); }, uniform({4}, 84), {});
    expect_error<ValueError>([&] { index_select(x, 0, {1, 3}); }, {"index_select", "index 3", "size 3"});
    expect_error<ValueError>([&] { index_select(x, 1, {-1}); }, {"index_select", "index -1", "size 2"});
    expect_error<ValueError>([&] { index_select(x, 2, {0}); }, {"index_select", "axis 2"});
}

TEST_CASE("ops: gather picks along an axis (take_along_axis)") {
    Tensor64 x = iota({2, 3});
    // Each row's chosen columns.
    expect_values(gather(x, 1, {2, 0, 1, 1}, {2, 2}), {2, 2}, {2, 0, 4, 4});
    expect_values(gather(x, -1, {1, 2}, {2, 1}), {2, 1}, {1, 5});
    // Along axis 0: each column's chosen row.
    expect_values(gather(x, 0, {1, 0, 1}, {1, 3}), {1, 3}, {3, 1, 5});
    // Repeated picks add up their gradients.
    Tensor64 y = iota({2, 3}).requires_grad_();
    // (Not {2, 2, 0, 0}: g++ 12.2 -O2 with AVX-512 miscompiles that constant
    // list of 64-bit integers into {2, 2, 2, 2}.)
    sum(gather(y, 1, {2, 2, 1, 1}, {2, 2})).backward();
    INFO(y.grad().str());
    CHECK(y.grad().value() == xt::xarray<double>({{0.0, 0.0, 2.0}, {0.0, 2.0, 0.0}}));
    check_linear_op([](const Tensor64& v) { return gather(v, 1, {2, 0, 1, 1}, {2, 2}); }, uniform({2, 3}, 85),
                    {2});
    check_linear_op([](const Tensor64& v) { return gather(v, 1, {0, 1, 1, 0, 2, 2, 1, 0}, {2, 2, 2}); },
                    uniform({2, 3, 2}, 86), {2, 1, 1});
    check_linear_op([](const Tensor64& v) { return gather(v, 0, {3, 3, 1}, {3}); }, uniform({4}, 87), {});
    expect_error<ValueError>([&] { gather(x, 1, {0, 5}, {2, 1}); }, {"gather", "index 5", "size 3"});
    expect_error<ShapeError>([&] { gather(x, 1, {0, 1, 2, 0, 1, 2}, {3, 2}); }, {"gather", "[3, 2]", "[2, 3]"});
    expect_error<ShapeError>([&] { gather(x, 1, {0, 1, 2}, {2, 2}); }, {"gather", "[2, 2]", "3 indices"});
    expect_error<ValueError>([&] { gather(x, 2, {0}, {1}); }, {"gather", "axis 2"});
}

TEST_CASE("ops: one_hot has no gradient") {
    auto h = one_hot<double>({2, 0, 1}, 3);
    expect_values(h, {3, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0});
    CHECK_FALSE(h.requires_grad());
    CHECK(one_hot<float>({}, 4).shape_vector() == Shape{0, 4});
    expect_error<ValueError>([] { one_hot<double>({0, 3}, 3); }, {"one_hot", "label 3", "3 classes"});
    expect_error<ValueError>([] { one_hot<double>({-1}, 3); }, {"one_hot", "label -1"});
}
