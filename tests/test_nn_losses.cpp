// Losses: known values for each reduction, float64 gradchecks, stability at
// +-1000 in float32, and the errors for bad labels and shapes.
#include <doctest/doctest.h>

#include <cmath>

#include <tapegrad/nn/activations.hpp>
#include <tapegrad/nn/losses.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using nn::Reduction;

namespace {

constexpr Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

void require_grad(const GradcheckReport& report) {
    INFO(report.message());
    REQUIRE(report);
}

bool all_finite(const Tensor& t) {
    for (float v : t.value())
        if (!std::isfinite(v)) return false;
    return true;
}

}  // namespace

TEST_CASE("nn: mse_loss values for each reduction, and gradient") {
    Tensor64 p({1.0, 2.0, 3.0}), t({1.0, 1.0, 1.0});
    CHECK(nn::mse_loss(p, t).item() == doctest::Approx(5.0 / 3.0));
    CHECK(nn::mse_loss(p, t, Reduction::sum).item() == doctest::Approx(5.0));
    CHECK(nn::mse_loss(p, t, Reduction::none).value() == xt::xarray<double>({0.0, 1.0, 4.0}));
    Generator gen(1);
    for (auto r : kReductions)
        require_grad(strict_gradcheck([r](const std::vector<Tensor64>& x) { return nn::mse_loss(x[0], x[1], r); },
                                      {Tensor64::randn({3, 2}, gen), Tensor64::randn({3, 2}, gen)}));
}

TEST_CASE("nn: binary_cross_entropy on probabilities") {
    Tensor64 p({0.9, 0.2}), t({1.0, 0.0});
    CHECK(nn::binary_cross_entropy(p, t).item() == doctest::Approx((-std::log(0.9) - std::log(0.8)) / 2));
    CHECK(nn::binary_cross_entropy(p, t, Reduction::sum).item() == doctest::Approx(-std::log(0.9) - std::log(0.8)));
    // Saturated probabilities are clamped: large but finite.
    double saturated = nn::binary_cross_entropy(Tensor64({0.0}), Tensor64({1.0})).item();
    CHECK(std::isfinite(saturated));
    CHECK(saturated > 30);
    Generator gen(2);
    for (auto r : kReductions)
        require_grad(strict_gradcheck(
            [r](const std::vector<Tensor64>& x) { return nn::binary_cross_entropy(x[0], x[1], r); },
            {Tensor64::rand({2, 3}, gen, 0.05, 0.95), Tensor64::rand({2, 3}, gen)}));
}

TEST_CASE("nn: binary_cross_entropy_with_logits matches the probability form") {
    Tensor64 z({0.0, 2.0, -1.0}), t({1.0, 0.0, 1.0});
    auto none = nn::binary_cross_entropy_with_logits(z, t, Reduction::none).value();
    CHECK(none(0) == doctest::Approx(std::log(2.0)));
    CHECK(none(1) == doctest::Approx(2.1269280110429727));
    CHECK(none(2) == doctest::Approx(1.3132616875182228));
    CHECK(nn::binary_cross_entropy_with_logits(z, t).item() ==
          doctest::Approx(nn::binary_cross_entropy(nn::sigmoid(z), t).item()));
    Generator gen(3);
    for (auto r : kReductions)
        require_grad(strict_gradcheck(
            [r](const std::vector<Tensor64>& x) { return nn::binary_cross_entropy_with_logits(x[0], x[1], r); },
            {Tensor64::randn({2, 3}, gen, 0, 3), Tensor64::rand({2, 3}, gen)}));
}

TEST_CASE("nn: cross_entropy from logits and nll_loss on log-probabilities") {
    Tensor64 logits({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}});
    Index labels{2, 0};
    const double row0 = -std::log(0.6652409557748219), row1 = std::log(3.0);
    CHECK(nn::cross_entropy(logits, labels).item() == doctest::Approx((row0 + row1) / 2));
    CHECK(nn::cross_entropy(logits, labels, Reduction::sum).item() == doctest::Approx(row0 + row1));
    auto per_row = nn::cross_entropy(logits, labels, Reduction::none);
    CHECK(per_row.shape_vector() == Shape{2});
    CHECK(per_row.value()(0) == doctest::Approx(row0));
    CHECK(nn::nll_loss(nn::log_softmax(logits), labels).item() == doctest::Approx((row0 + row1) / 2));

    // Gradient of the mean: (softmax - one_hot) / batch.
    Tensor64 z({{1.0, 2.0, 3.0}}, true);
    nn::cross_entropy(z, Index{0}).backward();
    auto s = nn::softmax(z).value();
    CHECK(z.grad().value()(0, 0) == doctest::Approx(s(0, 0) - 1));
    CHECK(z.grad().value()(0, 2) == doctest::Approx(s(0, 2)));

    Generator gen(4);
    Index many{0, 3, 1, 3, 2};
    for (auto r : kReductions) {
        require_grad(strict_gradcheck([&](const std::vector<Tensor64>& x) { return nn::cross_entropy(x[0], many, r); },
                                      {Tensor64::randn({5, 4}, gen, 0, 2)}));
        require_grad(strict_gradcheck([&](const std::vector<Tensor64>& x) { return nn::nll_loss(x[0], many, r); },
                                      {Tensor64::randn({5, 4}, gen)}));
    }
}

TEST_CASE("nn: a label out of range names the label and the number of classes") {
    Tensor64 logits = Tensor64::zeros({2, 3});
    CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, Index{0, 3}),
                         doctest::Contains("label 3 (at position 1) is out of range for 3 classes"), ValueError);
    CHECK_THROWS_WITH_AS(nn::nll_loss(logits, Index{-1, 0}), doctest::Contains("label -1"), ValueError);
}

TEST_CASE("nn: shape mismatches name the loss and both shapes") {
    Tensor64 a = Tensor64::zeros({2, 3}), b = Tensor64::zeros({3, 2});
    CHECK_THROWS_WITH_AS(nn::mse_loss(a, b), doctest::Contains("mse_loss: input shape [2, 3] and target shape [3, 2]"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(nn::binary_cross_entropy(a, b), doctest::Contains("binary_cross_entropy: input shape [2, 3]"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(nn::binary_cross_entropy_with_logits(a, b), doctest::Contains("[3, 2]"), ShapeError);
    CHECK_THROWS_WITH_AS(nn::cross_entropy(a, Index{0, 1, 2}),
                         doctest::Contains("cross_entropy: input shape [2, 3] has 2 rows but labels shape is [3]"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(nn::nll_loss(Tensor64::zeros({3}), Index{0}), doctest::Contains("nll_loss"), ShapeError);
}

TEST_CASE("nn: float32 losses are finite with finite gradients at +-1000") {
    Tensor z({{-1000.f, 1000.f}, {1000.f, -1000.f}}, true);
    Tensor t({{1.f, 0.f}, {1.f, 0.f}});
    auto check = [&](const char* name, const Tensor& loss) {
        INFO(name);
        REQUIRE(std::isfinite(loss.item()));
        z.zero_grad();
        loss.backward();
        REQUIRE(z.grad().defined());
        CHECK(all_finite(z.grad()));
    };
    auto bce_logits = nn::binary_cross_entropy_with_logits(z, t);
    CHECK(bce_logits.item() == doctest::Approx(2000.0 / 4));  // row 0 is wrong by 1000 twice, row 1 right
    check("bce_with_logits", bce_logits);
    check("bce on sigmoid", nn::binary_cross_entropy(nn::sigmoid(z), t));
    auto ce = nn::cross_entropy(z, Index{0, 0});
    CHECK(ce.item() == doctest::Approx(1000.0));  // row 0 is wrong by 2000, row 1 right
    check("cross_entropy", ce);
    check("nll_loss", nn::nll_loss(nn::log_softmax(z), Index{1, 1}));
    check("mse", nn::mse_loss(z, t));
}
