// Linear algebra on LAPACK (solve, inv, det, slogdet, cholesky,
// triangular_solve) and the structured-matrix ops their VJPs use (eye,
// tril/triu, diagonal, diag_embed): values against known results, first and
// second derivatives against finite differences (float64, strict), batched
// over one and two leading axes, float32 forward, and errors on singular or
// indefinite matrices naming the op and the batch index.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {

std::size_t last(const Tensor64& t) { return t.shape()[t.dim() - 1]; }

// Random matrices plus n·I: far from singular.
Tensor64 well_conditioned(const Shape& shape, std::uint64_t seed) {
    const std::size_t n = shape.back();
    return uniform(shape, seed) + eye<double>(n) * double(n);
}

// b·bᵀ + n·I for random b: symmetric positive definite.
Tensor64 spd(const Shape& shape, std::uint64_t seed) {
    const std::size_t n = shape.back();
    auto b = uniform(shape, seed).reshape({-1, std::int64_t(n), std::int64_t(n)});
    return (matmul(b, b, false, true) + eye<double>(n) * double(n)).reshape(shape);
}

Tensor64 sym(const Tensor64& a) { return (a + transpose(a, -2, -1)) * 0.5; }

// max |a - b| over all elements.
double max_diff(const Tensor64& a, const Tensor64& b) {
    REQUIRE(a.shape_vector() == b.shape_vector());
    return xt::amax(xt::abs(a.value() - b.value()))();
}

// Matrix products over any leading axes, for checks.
Tensor64 mm(const Tensor64& a, const Tensor64& b) {
    const auto n = std::int64_t(a.shape()[a.dim() - 2]), k = std::int64_t(b.shape()[b.dim() - 1]);
    auto c = matmul(a.reshape({-1, n, std::int64_t(last(a))}), b.reshape({-1, std::int64_t(last(a)), k}));
    auto shape = b.shape_vector();
    shape[shape.size() - 2] = std::size_t(n);
    return c.reshape(shape);
}

// Batch shapes every op is checked with: none, one axis, two axes.
const std::vector<Shape> kBatches = {{}, {2}, {2, 2}};

Shape with(Shape batch, std::size_t rows, std::size_t cols) {
    batch.push_back(rows);
    batch.push_back(cols);
    return batch;
}

void check_first_and_second(const TensorFunction& f, const std::vector<Tensor64>& inputs) {
    REQUIRE_GRADCHECK(f, inputs);
    REQUIRE_GRADGRADCHECK(f, inputs);
}

}  // namespace

TEST_CASE("linalg: eye, tril, triu, diagonal, diag_embed values") {
    CHECK(eye<double>(3).value() == xt::xarray<double>({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));
    CHECK(eye<float>(0).shape_vector() == Shape{0, 0});
    Tensor64 x({{1, 2, 3}, {4, 5, 6}});
    CHECK(tril(x).value() == xt::xarray<double>({{1, 0, 0}, {4, 5, 0}}));
    CHECK(tril(x, -1).value() == xt::xarray<double>({{0, 0, 0}, {4, 0, 0}}));
    CHECK(tril(x, 1).value() == xt::xarray<double>({{1, 2, 0}, {4, 5, 6}}));
    CHECK(triu(x).value() == xt::xarray<double>({{1, 2, 3}, {0, 5, 6}}));
    CHECK(triu(x, 1).value() == xt::xarray<double>({{0, 2, 3}, {0, 0, 6}}));
    CHECK(diagonal(x).value() == xt::xarray<double>({1, 5}));
    CHECK(diag_embed(Tensor64({1.0, 2.0})).value() == xt::xarray<double>({{1, 0}, {0, 2}}));
    // Batched: every matrix on its own.
    Tensor64 b({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}});
    CHECK(diagonal(b).value() == xt::xarray<double>({{1, 4}, {5, 8}}));
    CHECK(triu(b).value() == xt::xarray<double>({{{1, 2}, {0, 4}}, {{5, 6}, {0, 8}}}));
    CHECK(diag_embed(diagonal(b)).value() == xt::xarray<double>({{{1, 0}, {0, 4}}, {{5, 0}, {0, 8}}}));
}

TEST_CASE("linalg: tril, triu, diagonal, diag_embed gradients") {
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        for (std::int64_t k : {-1, 0, 1}) {
            CAPTURE(k);
            check_first_and_second([k](const auto& x) { return tril(x[0] * x[0], k); }, {uniform(with(batch, 3, 4), 1)});
            check_first_and_second([k](const auto& x) { return triu(x[0] * x[0], k); }, {uniform(with(batch, 4, 3), 2)});
        }
        check_first_and_second([](const auto& x) { return diagonal(x[0] * x[0]); }, {uniform(with(batch, 3, 2), 3)});
        Shape vec = batch;
        vec.push_back(3);
        check_first_and_second([](const auto& x) { return diag_embed(x[0] * x[0]); }, {uniform(vec, 4)});
    }
}

TEST_CASE("linalg: structure ops refuse a tensor of too low rank") {
    expect_error<ShapeError>([] { tril(Tensor64({1.0, 2.0})); }, {"tril", "[2]"});
    expect_error<ShapeError>([] { triu(Tensor64({1.0, 2.0})); }, {"triu", "[2]"});
    expect_error<ShapeError>([] { diagonal(Tensor64({1.0, 2.0})); }, {"diagonal", "[2]"});
    expect_error<ShapeError>([] { diag_embed(Tensor64::scalar(1.0)); }, {"diag_embed", "[]"});
}

TEST_CASE("linalg: solve and inv values") {
    Tensor64 a({{6, 1, 1}, {4, -2, 5}, {2, 8, 7}}), x({{1, -1}, {2, 0.5}, {-3, 2}});
    auto b = matmul(a, x);
    CHECK(max_diff(solve(a, b), x) < 1e-12);
    CHECK(max_diff(matmul(inv(a), a), eye<double>(3)) < 1e-12);
    CHECK(max_diff(matmul(a, inv(a)), eye<double>(3)) < 1e-12);
    // [[2, 1], [1, 1]]⁻¹ = [[1, -1], [-1, 2]] exactly.
    CHECK(max_diff(inv(Tensor64({{2, 1}, {1, 1}})), Tensor64({{1, -1}, {-1, 2}})) < 1e-15);
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        auto m = well_conditioned(with(batch, 4, 4), 10);
        auto rhs = uniform(with(batch, 4, 3), 11);
        CHECK(max_diff(mm(m, solve(m, rhs)), rhs) < 1e-12);
        CHECK(max_diff(mm(inv(m), m), broadcast_to(eye<double>(4), m.shape())) < 1e-12);
    }
    // Empty: no matrices, or 0×0 ones.
    CHECK(solve(Tensor64::zeros({0, 2, 2}), Tensor64::zeros({0, 2, 1})).shape_vector() == Shape{0, 2, 1});
    CHECK(inv(Tensor64::zeros({0, 0})).shape_vector() == Shape{0, 0});
}

TEST_CASE("linalg: solve and inv gradients, batched and not") {
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        std::vector<Tensor64> in{well_conditioned(with(batch, 3, 3), 20), uniform(with(batch, 3, 2), 21)};
        check_first_and_second([](const auto& x) { return solve(x[0], x[1]); }, in);
        check_first_and_second([](const auto& x) { return inv(x[0]); }, {in[0]});
    }
}

TEST_CASE("linalg: solve gradient when only one input needs it") {
    auto a = well_conditioned({3, 3}, 30), b = uniform({3, 2}, 31);
    a.requires_grad_();
    sum(solve(a, b)).backward();
    auto ga = a.grad().value();
    a.zero_grad();
    auto b2 = b.detach();
    b2.requires_grad_();
    auto a2 = a.detach();
    sum(solve(a2, b2)).backward();
    // d sum(a⁻¹b)/db = a⁻ᵀ·1 and d/da = -(a⁻ᵀ·1)·xᵀ.
    auto ones = Tensor64::ones({3, 2});
    auto gb = solve(transpose(a2), ones);
    CHECK(max_diff(b2.grad(), gb) < 1e-12);
    CHECK(max_diff(Tensor64(ga), -matmul(gb, solve(a2, b), false, true)) < 1e-12);
}

TEST_CASE("linalg: det and slogdet values") {
    Tensor64 a({{6, 1, 1}, {4, -2, 5}, {2, 8, 7}});
    CHECK(det(a).item() == doctest::Approx(-306.0).epsilon(1e-14));
    auto [sign, logabs] = slogdet(a);
    CHECK(sign.item() == -1.0);
    CHECK(logabs.item() == doctest::Approx(std::log(306.0)).epsilon(1e-14));
    CHECK_FALSE(sign.requires_grad());
    // A row exchange, a singular matrix (0, not an error) and an empty one (1).
    CHECK(det(Tensor64({{0, 1}, {1, 0}})).item() == -1.0);
    CHECK(det(Tensor64({{1, 2}, {2, 4}})).item() == 0.0);
    CHECK(det(Tensor64::zeros({0, 0})).item() == 1.0);
    Tensor64 batch({{{2, 0}, {0, 3}}, {{1, 2}, {2, 4}}, {{0, 1}, {1, 0}}});
    CHECK(det(batch).value() == xt::xarray<double>({6, 0, -1}));
    auto s = slogdet(batch);
    CHECK(s.sign.value() == xt::xarray<double>({1, 0, -1}));
    CHECK(s.logabsdet.value()(0) == doctest::Approx(std::log(6.0)));
    CHECK(s.logabsdet.value()(1) == -std::numeric_limits<double>::infinity());
    CHECK(s.logabsdet.value()(2) == 0.0);
    // det(a·b) = det(a)·det(b) on random batches of two leading axes.
    auto m = well_conditioned({2, 3, 4, 4}, 40), n = well_conditioned({2, 3, 4, 4}, 41);
    CHECK(max_diff(det(mm(m, n)), det(m) * det(n)) < 1e-9 * xt::amax(xt::abs(det(mm(m, n)).value()))());
}

TEST_CASE("linalg: det and slogdet gradients, batched and not") {
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        // Negate one row so some determinants are negative.
        auto a = well_conditioned(with(batch, 3, 3), 50) * Tensor64({1.0, -1.0, 1.0}).reshape({3, 1});
        check_first_and_second([](const auto& x) { return det(x[0]); }, {a});
        check_first_and_second([](const auto& x) { return slogdet(x[0]).logabsdet; }, {a});
    }
}

TEST_CASE("linalg: cholesky values") {
    Tensor64 a({{4, 12, -16}, {12, 37, -43}, {-16, -43, 98}});
    CHECK(max_diff(cholesky(a), Tensor64({{2, 0, 0}, {6, 1, 0}, {-8, 5, 3}})) < 1e-13);
    // Only the lower triangle is read.
    CHECK(max_diff(cholesky(tril(a)), cholesky(a)) == 0.0);
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        auto m = spd(with(batch, 5, 5), 60);
        auto l = cholesky(m);
        CHECK(max_diff(l, tril(l)) == 0.0);
        CHECK(max_diff(mm(l, transpose(l, -2, -1)), m) < 1e-12);
        // log det through the factor, as a Gaussian-process likelihood takes it.
        CHECK(max_diff(sum(log(diagonal(l)), {-1}) * 2.0, slogdet(m).logabsdet) < 1e-12);
    }
}

TEST_CASE("linalg: cholesky gradients (symmetric input), batched and not") {
    for (const auto& batch : kBatches) {
        CAPTURE(str(batch));
        check_first_and_second([](const auto& x) { return cholesky(sym(x[0])); }, {spd(with(batch, 3, 3), 70)});
    }
    // The gradient is symmetric and agrees with slogdet's: log det a = 2·Σ log l_ii.
    auto a = spd({4, 4}, 71);
    a.requires_grad_();
    (sum(log(diagonal(cholesky(a)))) * 2.0).backward();
    auto via_cholesky = a.grad().value();
    CHECK(xt::amax(xt::abs(via_cholesky - xt::transpose(via_cholesky)))() < 1e-14);
    a.zero_grad();
    slogdet(a).logabsdet.backward();
    CHECK(xt::amax(xt::abs(via_cholesky - a.grad().value()))() < 1e-12);
}

TEST_CASE("linalg: triangular_solve values and gradients, every flag") {
    for (int flags = 0; flags < 8; ++flags) {
        const bool upper = flags & 1, trans = flags & 2, unit = flags & 4;
        CAPTURE(upper);
        CAPTURE(trans);
        CAPTURE(unit);
        for (const auto& batch : kBatches) {
            CAPTURE(str(batch));
            auto a = well_conditioned(with(batch, 3, 3), 80), b = uniform(with(batch, 3, 2), 81);
            // The matrix that is solved with, built by hand.
            auto t = upper ? triu(a, unit ? 1 : 0) : tril(a, unit ? -1 : 0);
            if (unit) t = t + eye<double>(3);
            if (trans) t = transpose(t, -2, -1);
            CHECK(max_diff(triangular_solve(a, b, upper, trans, unit), solve(t, b)) < 1e-12);
            check_first_and_second(
                [=](const auto& x) { return triangular_solve(x[0], x[1], upper, trans, unit); }, {a, b});
        }
    }
}

TEST_CASE("linalg: float32 forward agrees with float64") {
    auto a64 = well_conditioned({2, 4, 4}, 90), b64 = uniform({2, 4, 3}, 91), s64 = spd({2, 4, 4}, 92);
    auto a = a64.to<float>(), b = b64.to<float>(), s = s64.to<float>();
    auto close = [](const Tensor& f, const Tensor64& d) { return max_diff(f.to<double>(), d) < 1e-4; };
    CHECK(close(solve(a, b), solve(a64, b64)));
    CHECK(close(inv(a), inv(a64)));
    CHECK(close(det(a) / 100.0f, det(a64) / 100.0));
    CHECK(close(slogdet(a).logabsdet, slogdet(a64).logabsdet));
    CHECK(close(cholesky(s), cholesky(s64)));
    CHECK(close(triangular_solve(a, b, true), triangular_solve(a64, b64, true)));
    // float32 gradients run (their values are checked in float64 above).
    a.requires_grad_();
    (sum(solve(a, b)) + sum(inv(a))).backward();
    CHECK(a.grad().shape_vector() == Shape{2, 4, 4});
}

TEST_CASE("linalg: a singular or indefinite matrix names the op and the batch index") {
    Tensor64 singular3({{{2, 0}, {0, 3}}, {{1, 2}, {2, 4}}, {{1, 0}, {0, 1}}});
    auto rhs = Tensor64::ones({3, 2, 1});
    expect_error<ValueError>([&] { solve(singular3, rhs); }, {"solve", "batch index 1", "singular", "getrf info 2"});
    expect_error<ValueError>([&] { inv(singular3); }, {"inv", "batch index 1", "singular"});
    expect_error<ValueError>([&] { inv(Tensor64({{0, 0}, {0, 1}})); }, {"inv: the matrix is singular", "info 1"});
    // Two leading axes: the index is a tuple.
    auto two = singular3.reshape({3, 1, 2, 2});
    expect_error<ValueError>([&] { inv(two); }, {"inv", "batch index [1, 0]"});
    expect_error<ValueError>([&] { triangular_solve(Tensor64({{{1, 0}, {1, 1}}, {{1, 0}, {1, 0}}}),
                                                    Tensor64::ones({2, 2, 1}), false); },
                             {"triangular_solve", "batch index 1", "singular", "trtrs info 2"});
    // A unit diagonal is never singular.
    CHECK_NOTHROW(triangular_solve(Tensor64({{0, 0}, {1, 0}}), Tensor64::ones({2, 1}), false, false, true));
    Tensor64 indefinite({{{4, 0}, {0, 4}}, {{1, 0}, {0, 1}}, {{1, 2}, {2, 1}}});
    expect_error<ValueError>([&] { cholesky(indefinite); },
                             {"cholesky", "batch index 2", "not positive definite", "potrf info 2"});
    // det and slogdet of a singular matrix are values; their gradients are not.
    Tensor64 a(singular3.value(), true);
    auto d = det(a);
    CHECK(d.value() == xt::xarray<double>({6, 0, 1}));
    expect_error<ValueError>([&] { sum(d).backward(); }, {"det", "batch index 1", "singular"});
    expect_error<ValueError>([&] { sum(slogdet(a).logabsdet).backward(); }, {"slogdet", "batch index 1", "-inf"});
}

TEST_CASE("linalg: shapes that do not fit name the op and both shapes") {
    auto a = Tensor64::ones({3, 3}), r = Tensor64::ones({2, 3});
    expect_error<ShapeError>([&] { solve(a, Tensor64::ones({4, 2})); }, {"solve", "[3, 3]", "[4, 2]"});
    expect_error<ShapeError>([&] { solve(Tensor64::ones({2, 3, 3}), Tensor64::ones({3, 3, 1})); },
                             {"solve", "[2, 3, 3]", "[3, 3, 1]"});
    expect_error<ShapeError>([&] { solve(a, Tensor64::ones({3})); }, {"solve", "[3, 3]", "[3]"});
    expect_error<ShapeError>([&] { triangular_solve(a, Tensor64::ones({2, 1}), true); },
                             {"triangular_solve", "[3, 3]", "[2, 1]"});
    expect_error<ShapeError>([&] { solve(r, r); }, {"solve", "square", "[2, 3]"});
    expect_error<ShapeError>([&] { inv(r); }, {"inv", "[2, 3]"});
    expect_error<ShapeError>([&] { det(Tensor64({1.0, 2.0})); }, {"det", "[2]"});
    expect_error<ShapeError>([&] { slogdet(r); }, {"slogdet", "[2, 3]"});
    expect_error<ShapeError>([&] { cholesky(r); }, {"cholesky", "[2, 3]"});
}
