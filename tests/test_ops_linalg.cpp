// Matrix products (every rank combination and transpose flag) and axis
// permutations: forward values against a naive reference, gradients and
// second derivatives against finite differences (float64), errors, and a
// Hessian-vector product through create_graph.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

// Element (i, j) of op(matrix `batch`) of t, where op transposes when asked
// and a 2-D or batch-of-1 tensor is the same matrix in every batch.
double element(const Tensor64& t, std::size_t batch, std::size_t i, std::size_t j, bool transposed) {
    const auto& s = t.shape();
    const std::size_t rows = s[t.dim() - 2], cols = s[t.dim() - 1];
    const std::size_t b = t.dim() == 3 && s[0] > 1 ? batch : 0;
    if (transposed) std::swap(i, j);
    return t.value().data()[(b * rows + i) * cols + j];
}

// The product by its definition, as a flat list in row-major order.
std::vector<double> reference(const Tensor64& a, const Tensor64& b, bool ta, bool tb, const Shape& out) {
    const std::size_t m = out[out.size() - 2], n = out[out.size() - 1];
    const std::size_t k = ta ? a.shape()[a.dim() - 2] : a.shape()[a.dim() - 1];
    const std::size_t batches = out.size() == 3 ? out[0] : 1;
    std::vector<double> c;
    for (std::size_t p = 0; p < batches; ++p)
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                double acc = 0;
                for (std::size_t q = 0; q < k; ++q) acc += element(a, p, i, q, ta) * element(b, p, q, j, tb);
                c.push_back(acc);
            }
    return c;
}

// A stored operand shape: [rows, cols] of op(x), swapped when transposed,
// behind a batch axis unless batch is 0.
Shape stored(std::size_t batch, std::size_t rows, std::size_t cols, bool transposed) {
    if (transposed) std::swap(rows, cols);
    return batch ? Shape{batch, rows, cols} : Shape{rows, cols};
}

}  // namespace

TEST_CASE("ops: matmul forward values") {
    Tensor64 a({{1.0, 2.0}, {3.0, 4.0}}), b({{5.0, 6.0}, {7.0, 8.0}});
    CHECK(matmul(a, b).value() == xt::xarray<double>({{19.0, 22.0}, {43.0, 50.0}}));
    CHECK(matmul(a, b, true, false).value() == xt::xarray<double>({{26.0, 30.0}, {38.0, 44.0}}));
    CHECK(matmul(a, b, false, true).value() == xt::xarray<double>({{17.0, 23.0}, {39.0, 53.0}}));
    // Empty inner dimension: zeros.
    CHECK(matmul(Tensor64::ones({2, 0}), Tensor64::ones({0, 3})).value() == Tensor64::zeros({2, 3}).value());
    CHECK(matmul(Tensor64::ones({0, 2}), Tensor64::ones({2, 3})).shape_vector() == Shape{0, 3});
}

TEST_CASE("ops: matmul every rank combination and transpose flag") {
    // Batch sizes of a and b (0: a 2-D matrix shared by every batch).
    const std::vector<std::pair<std::size_t, std::size_t>> batches = {
        {0, 0}, {3, 3}, {1, 3}, {3, 1}, {1, 1}, {3, 0}, {0, 3}, {1, 0}, {0, 1}};
    const std::size_t m = 2, k = 3, n = 4;
    for (const auto& [ba, bb] : batches)
        for (int flags = 0; flags < 4; ++flags) {
            const bool ta = flags & 1, tb = flags & 2;
            CAPTURE(ba);
            CAPTURE(bb);
            CAPTURE(ta);
            CAPTURE(tb);
            std::vector<Tensor64> inputs{uniform(stored(ba, m, k, ta), 41), uniform(stored(bb, k, n, tb), 42)};
            TensorFunction f = [ta, tb](const std::vector<Tensor64>& x) {
                return ta || tb ? matmul(x[0], x[1], ta, tb) : matmul(x[0], x[1]);
            };
            Tensor64 c = f(inputs);
            const std::size_t batch = std::max(ba, bb);
            const Shape out = ba || bb ? Shape{batch, m, n} : Shape{m, n};
            REQUIRE(c.shape_vector() == out);
            const auto want = reference(inputs[0], inputs[1], ta, tb, out);
            for (std::size_t i = 0; i < want.size(); ++i) CHECK(c.value().data()[i] == doctest::Approx(want[i]));
            REQUIRE_GRADCHECK(f, inputs);
            REQUIRE_GRADGRADCHECK(f, inputs);
        }
}

TEST_CASE("ops: matmul at sizes past BLAS blocking, and in float32") {
    // [4, 7, 33] x [33, 5]ᵀ-stored, against the definition and finite differences.
    std::vector<Tensor64> inputs{uniform({4, 7, 33}, 54), uniform({5, 33}, 55)};
    TensorFunction f = [](const std::vector<Tensor64>& x) { return matmul(x[0], x[1], false, true); };
    const auto want = reference(inputs[0], inputs[1], false, true, {4, 7, 5});
    const Tensor64 c = f(inputs);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(c.value().data()[i] == doctest::Approx(want[i]));
    REQUIRE_GRADCHECK(f, inputs);
    // float32 gives the float64 result to float precision.
    const Tensor c32 = matmul(inputs[0].to<float>(), inputs[1].to<float>(), false, true);
    for (std::size_t i = 0; i < want.size(); ++i)
        CHECK(c32.value().data()[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("ops: matmul gradient of a shared operand is summed by the product itself") {
    // [b, m, k] x [k, n]: the [k, n] gradient is one gemm over the flattened
    // rows, not a [b, k, n] tensor reduced afterwards.
    Tensor64 a = uniform({5, 2, 3}, 43).requires_grad_();
    Tensor64 w = uniform({3, 4}, 44).requires_grad_();
    auto gw = grad(sum(matmul(a, w)), {w}, {}, BackwardOptions{true, true})[0];
    CHECK(gw.shape_vector() == Shape{3, 4});
    CHECK(std::string(gw.op_name()) == "matmul_batch_sum");
    // A batch of 1 keeps its batch axis.
    Tensor64 w1 = uniform({1, 3, 4}, 45).requires_grad_();
    auto gw1 = grad(sum(matmul(a, w1)), {w1}, {}, BackwardOptions{true, true})[0];
    CHECK(gw1.shape_vector() == Shape{1, 3, 4});
    // Values: Σ_batches aᵀ·1.
    for (std::size_t q = 0; q < 3; ++q) {
        double col = 0;
        for (std::size_t p = 0; p < 5; ++p)
            for (std::size_t i = 0; i < 2; ++i) col += a.value()(p, i, q);
        for (std::size_t j = 0; j < 4; ++j) {
            CHECK(gw.value()(q, j) == doctest::Approx(col));
            CHECK(gw1.value()(0, q, j) == doctest::Approx(col));
        }
    }
}

TEST_CASE("ops: matmul skips the gradient of an input that needs none") {
    Tensor64 a = uniform({2, 3}, 46).requires_grad_();
    Tensor64 b = uniform({3, 2}, 47);
    sum(matmul(a, b)).backward();
    CHECK(a.grad().shape_vector() == Shape{2, 3});
    CHECK_FALSE(b.grad().defined());
}

TEST_CASE("ops: matmul shape errors name the op and both shapes") {
    expect_error<ShapeError>([] { matmul(Tensor64::zeros({2, 3}), Tensor64::zeros({4, 5})); },
                             {"matmul", "[2, 3]", "[4, 5]", "3 vs 4"});
    expect_error<ShapeError>([] { matmul(Tensor64::zeros({2, 3}), Tensor64::zeros({2, 3}), false, false); },
                             {"matmul", "[2, 3]"});
    expect_error<ShapeError>([] { matmul(Tensor64::zeros({3}), Tensor64::zeros({3, 2})); },
                             {"matmul", "[3]", "[3, 2]", "2-D"});
    expect_error<ShapeError>([] { matmul(Tensor64::zeros({1, 2, 3, 4}), Tensor64::zeros({4, 2})); },
                             {"matmul", "[1, 2, 3, 4]"});
    expect_error<ShapeError>([] { matmul(Tensor64::zeros({2, 2, 3}), Tensor64::zeros({3, 3, 4})); },
                             {"matmul", "[2, 2, 3]", "[3, 3, 4]", "batch"});
}

TEST_CASE("ops: transpose and permute") {
    Tensor64 x = uniform({2, 3, 4}, 48);
    auto t = transpose(x);
    auto s = transpose(x, 1, -1);
    auto p = permute(x, {1, 2, 0});
    REQUIRE(t.shape_vector() == Shape{4, 3, 2});
    REQUIRE(s.shape_vector() == Shape{2, 4, 3});
    REQUIRE(p.shape_vector() == Shape{3, 4, 2});
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t k = 0; k < 4; ++k) {
                CHECK(t.value()(k, j, i) == x.value()(i, j, k));
                CHECK(s.value()(i, k, j) == x.value()(i, j, k));
                CHECK(p.value()(j, k, i) == x.value()(i, j, k));
            }
    CHECK(transpose(Tensor64({{1.0, 2.0}})).shape_vector() == Shape{2, 1});

    struct Case {
        std::string name;
        std::function<Tensor64(const Tensor64&)> op;
        Shape partner;  // broadcasts against the result
    };
    const std::vector<Case> cases = {
        {"transpose", [](const Tensor64& v) { return transpose(v); }, {2}},
        {"transpose(0, -1)", [](const Tensor64& v) { return transpose(v, 0, -1); }, {3, 1}},
        {"permute", [](const Tensor64& v) { return permute(v, {2, 0, 1}); }, {2, 1}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        TensorFunction f = [op = c.op](const std::vector<Tensor64>& in) { return op(in[0]) * op(in[0]); };
        REQUIRE_GRADCHECK(f, std::vector<Tensor64>{x});
        REQUIRE_GRADGRADCHECK(f, std::vector<Tensor64>{x});
        TensorFunction g = [op = c.op](const std::vector<Tensor64>& in) { return op(in[0]) * in[1]; };
        std::vector<Tensor64> inputs{x, uniform(c.partner, 49)};
        REQUIRE_GRADCHECK(g, inputs);
        REQUIRE_GRADGRADCHECK(g, inputs);
    }
    // Fewer dimensions: a matrix, a vector and a 0-d tensor.
    for (const Shape& shape : {Shape{3, 2}, Shape{3}, Shape{}}) {
        CAPTURE(str(shape));
        TensorFunction f = [](const std::vector<Tensor64>& in) { return transpose(in[0]) * transpose(in[0]); };
        REQUIRE_GRADCHECK(f, std::vector<Tensor64>{uniform(shape, 50)});
        REQUIRE_GRADGRADCHECK(f, std::vector<Tensor64>{uniform(shape, 50)});
    }
    expect_error<ValueError>([&] { permute(x, {0, 0, 1}); }, {"permute", "[0, 0, 1]", "[2, 3, 4]"});
    expect_error<ValueError>([&] { permute(x, {0, 1}); }, {"permute", "[0, 1]"});
    expect_error<ValueError>([&] { transpose(x, 0, 3); }, {"transpose", "axis 3"});
}

TEST_CASE("ops: Hessian-vector product through create_graph matches finite differences") {
    // f(x) = sum(tanh(A·x)^2); H·v by differentiating <grad f, v>.
    const Tensor64 A = uniform({4, 3}, 51);
    const Tensor64 v = uniform({3, 1}, 52);
    auto f = [&A](const Tensor64& x) {
        auto t = tanh(matmul(A, x));
        return sum(t * t);
    };
    auto gradient = [&f](const Tensor64& x) { return grad(f(x), {x})[0]; };
    Tensor64 x = uniform({3, 1}, 53).requires_grad_();
    auto g = grad(f(x), {x}, {}, BackwardOptions{true, true})[0];
    REQUIRE(g.requires_grad());
    auto hv = grad(sum(g * v), {x})[0];
    REQUIRE(hv.shape_vector() == Shape{3, 1});

    const double eps = 1e-5;
    Tensor64 plus(xt::xarray<double>(x.value() + eps * v.value()), true);
    Tensor64 minus(xt::xarray<double>(x.value() - eps * v.value()), true);
    auto gp = gradient(plus), gm = gradient(minus);
    // The closed form: Aᵀ·diag(2(1-t²)(1-3t²))·A·v with t = tanh(A·x).
    for (std::size_t i = 0; i < 3; ++i) {
        double exact = 0;
        for (std::size_t r = 0; r < 4; ++r) {
            double u = 0, av = 0;
            for (std::size_t q = 0; q < 3; ++q) {
                u += A.value()(r, q) * x.value()(q, 0);
                av += A.value()(r, q) * v.value()(q, 0);
            }
            const double t = std::tanh(u);
            exact += A.value()(r, i) * 2 * (1 - t * t) * (1 - 3 * t * t) * av;
        }
        CAPTURE(i);
        CHECK(hv.value()(i, 0) == doctest::Approx((gp.value()(i, 0) - gm.value()(i, 0)) / (2 * eps)).epsilon(1e-6));
        CHECK(hv.value()(i, 0) == doctest::Approx(exact).epsilon(1e-10));
    }
}
