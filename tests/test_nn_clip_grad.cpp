// Gradient clipping against hand computations: the total norm over every
// gradient, the PyTorch scale max_norm / (norm + 1e-6) applied only when it
// is below 1, the infinity and 1-norms, undefined gradients skipped, and
// clamping by value.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <tapegrad/nn/clip_grad.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {
// Two parameters with gradients [3, -4] and [[12, 0]]: L2 norm 13, L1 19, Linf 12.
std::vector<Tensor64> params_with_grads() {
    Tensor64 a = Tensor64::zeros({2}, true), b = Tensor64::zeros({1, 2}, true);
    a.set_grad(Tensor64({3.0, -4.0}));
    b.set_grad(Tensor64({{12.0, 0.0}}));
    return {a, b};
}
}  // namespace

TEST_CASE("nn: clip_grad_norm_ scales every gradient by max_norm / (total + 1e-6)") {
    auto p = params_with_grads();
    const double total = nn::clip_grad_norm_(p, 6.5);
    CHECK(total == doctest::Approx(13.0).epsilon(1e-15));
    const double scale = 6.5 / (13.0 + 1e-6);
    CHECK(p[0].grad().value()(0) == doctest::Approx(3.0 * scale).epsilon(1e-15));
    CHECK(p[0].grad().value()(1) == doctest::Approx(-4.0 * scale).epsilon(1e-15));
    CHECK(p[1].grad().value()(0, 0) == doctest::Approx(12.0 * scale).epsilon(1e-15));
    // The clipped norm is max_norm (up to the 1e-6).
    CHECK(nn::clip_grad_norm_(p, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
}

TEST_CASE("nn: clip_grad_norm_ leaves gradients alone when the norm is within max_norm") {
    auto p = params_with_grads();
    CHECK(nn::clip_grad_norm_(p, 13.0) == doctest::Approx(13.0));  // scale 13/(13+1e-6) < 1: clipped, barely
    CHECK(p[0].grad().value()(0) == doctest::Approx(3.0 * 13.0 / (13.0 + 1e-6)).epsilon(1e-15));
    auto q = params_with_grads();
    CHECK(nn::clip_grad_norm_(q, 14.0) == doctest::Approx(13.0));
    CHECK(q[0].grad().value() == xt::xarray<double>({3.0, -4.0}));
    CHECK(q[1].grad().value() == xt::xarray<double>({{12.0, 0.0}}));
}

TEST_CASE("nn: clip_grad_norm_ with the infinity, 1 and 3 norms") {
    const double inf = std::numeric_limits<double>::infinity();
    auto p = params_with_grads();
    CHECK(nn::clip_grad_norm_(p, 6.0, inf) == 12.0);
    CHECK(p[1].grad().value()(0, 0) == doctest::Approx(12.0 * 6.0 / (12.0 + 1e-6)).epsilon(1e-15));
    auto q = params_with_grads();
    CHECK(nn::clip_grad_norm_(q, 100.0, 1.0) == 19.0);
    auto r = params_with_grads();
    CHECK(nn::clip_grad_norm_(r, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64.0 + 1728.0)).epsilon(1e-14));
}

TEST_CASE("nn: clip_grad_norm_ skips undefined gradients and works on float32 after backward") {
    Tensor w({1.f, 2.f}, true), unused({5.f}, true);
    sum(w * w).backward();  // grad 2w = [2, 4], norm sqrt(20)
    std::vector<Tensor> params{w, unused};
    CHECK(nn::clip_grad_norm_(params, 1.0) == doctest::Approx(std::sqrt(20.0)).epsilon(1e-7));
    CHECK_FALSE(unused.grad().defined());
    const double n = std::hypot(w.grad().value()(0), w.grad().value()(1));
    CHECK(n == doctest::Approx(1.0).epsilon(1e-6));
    expect_error<ValueError>([&] { nn::clip_grad_norm_(params, -1.0); }, {"clip_grad_norm_", "max_norm", "-1"});
    expect_error<ValueError>([&] { nn::clip_grad_norm_(params, 1.0, 0.0); }, {"clip_grad_norm_", "norm_type"});
}

TEST_CASE("nn: clip_grad_value_ clamps each element to [-clip, clip]") {
    auto p = params_with_grads();
    nn::clip_grad_value_(p, 3.5);
    CHECK(p[0].grad().value() == xt::xarray<double>({3.0, -3.5}));
    CHECK(p[1].grad().value() == xt::xarray<double>({{3.5, 0.0}}));
    expect_error<ValueError>([&] { nn::clip_grad_value_(p, -0.5); }, {"clip_grad_value_", "clip"});
}
