// Activations: known values, float64 gradchecks, and finite values and
// gradients at +-1000 in float32 for the ones that exponentiate.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <tapegrad/nn/activations.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;

namespace {

void check_values(const Tensor64& y, std::initializer_list<double> expected, double tol = 1e-12) {
    REQUIRE(y.size() == expected.size());
    std::size_t i = 0;
    for (double e : expected) {
        INFO("element " << i);
        CHECK(y.value().data()[i++] == doctest::Approx(e).epsilon(tol));
    }
}

// gradcheck of a one-input function at a random [3, 4] point.
GradcheckReport check_grad(const std::function<Tensor64(const Tensor64&)>& f, std::uint64_t seed = 1) {
    Generator gen(seed);
    return strict_gradcheck([&](const std::vector<Tensor64>& x) { return f(x[0]); },
                            {Tensor64::randn({3, 4}, gen, 0, 2)});
}

bool all_finite(const Tensor& t) {
    for (float v : t.value())
        if (!std::isfinite(v)) return false;
    return true;
}

// Value and gradient of f at +-1000 (and a few ordinary points) in float32.
void check_stable(const char* name, const std::function<Tensor(const Tensor&)>& f) {
    INFO(name);
    Tensor x({-1000.f, -30.f, -1.f, 0.f, 1.f, 30.f, 1000.f}, true);
    Tensor y = f(x);
    CHECK(all_finite(y));
    sum(y).backward();
    REQUIRE(x.grad().defined());
    CHECK(all_finite(x.grad()));
}

}  // namespace

TEST_CASE("nn: identity, threshold, abs and tanh values") {
    Tensor64 x({-2.0, 0.0, 0.5, 3.0});
    check_values(nn::identity(x), {-2.0, 0.0, 0.5, 3.0});
    check_values(nn::threshold(x), {0.0, 0.0, 1.0, 1.0});
    check_values(nn::threshold(x, 1.0), {0.0, 0.0, 0.0, 1.0});
    check_values(nn::abs(x), {2.0, 0.0, 0.5, 3.0});
    check_values(nn::tanh(x), {std::tanh(-2.0), 0.0, 0.46211715726000974, std::tanh(3.0)});
}

TEST_CASE("nn: threshold has zero gradient everywhere but stays on the graph") {
    Tensor64 x({-2.0, -1e-9, 0.0, 1e-9, 3.0}, true);
    Tensor64 y = nn::threshold(x);
    CHECK(y.requires_grad());  // a network using it still runs backward
    sum(y * 5.0).backward();
    CHECK(x.grad().value() == xt::xarray<double>({0, 0, 0, 0, 0}));
    auto report = check_grad([](const Tensor64& x) { return nn::threshold(x, 0.3); });
    INFO(report.message());
    REQUIRE(report);
}

TEST_CASE("nn: sigmoid values and gradient") {
    check_values(nn::sigmoid(Tensor64({-2.0, 0.0, 2.0})), {0.11920292202211755, 0.5, 0.8807970779778823});
    auto report = check_grad([](const Tensor64& x) { return nn::sigmoid(x); });
    INFO(report.message());
    REQUIRE(report);
}

TEST_CASE("nn: smooth activations have the right gradient exactly at 0") {
    // abs() has subgradient 0 at 0, so a composition through |x| can lose the
    // derivative there (sigmoid'(0) came out 0 instead of 1/4 before the fix).
    Tensor64 x({0.0}, true);
    sum(nn::sigmoid(x)).backward();
    CHECK(x.grad().item() == doctest::Approx(0.25));
    using F = std::function<Tensor64(const Tensor64&)>;
    for (const auto& [name, f] : std::vector<std::pair<const char*, F>>{
             {"sigmoid", [](const Tensor64& x) { return nn::sigmoid(x); }},
             {"softplus", [](const Tensor64& x) { return nn::softplus(x); }},
             {"silu", [](const Tensor64& x) { return nn::silu(x); }},
             {"swish", [](const Tensor64& x) { return nn::swish(x, 1.7); }},
             {"tanh", [](const Tensor64& x) { return nn::tanh(x); }},
             {"elu", [](const Tensor64& x) { return nn::elu(x); }},
             {"gelu", [](const Tensor64& x) { return nn::gelu(x); }},
             {"gelu_tanh", [](const Tensor64& x) { return nn::gelu(x, nn::GeluApproximation::tanh); }},
             {"log_softmax", [](const Tensor64& x) { return nn::log_softmax(x); }}}) {
        auto report =
            strict_gradcheck([&](const std::vector<Tensor64>& in) { return f(in[0]); }, {Tensor64({0.0, 0.0, 1.0})});
        INFO(name << ": " << report.message());
        REQUIRE(report);
    }
}

TEST_CASE("nn: relu and leaky_relu values, left derivative at 0") {
    Tensor64 x({-2.0, 0.0, 3.0}, true);
    check_values(nn::relu(x), {0.0, 0.0, 3.0});
    check_values(nn::leaky_relu(x, 0.1), {-0.2, 0.0, 3.0});
    sum(nn::relu(x)).backward();
    CHECK(x.grad().value() == xt::xarray<double>({0.0, 0.0, 1.0}));
    for (auto f : {std::function<Tensor64(const Tensor64&)>([](const Tensor64& x) { return nn::relu(x); }),
                   std::function<Tensor64(const Tensor64&)>([](const Tensor64& x) { return nn::leaky_relu(x, 0.2); })}) {
        auto report = check_grad(f);
        INFO(report.message());
        REQUIRE(report);
    }
}

TEST_CASE("nn: abs and tanh gradients") {
    for (auto f : {std::function<Tensor64(const Tensor64&)>([](const Tensor64& x) { return nn::abs(x); }),
                   std::function<Tensor64(const Tensor64&)>([](const Tensor64& x) { return nn::tanh(x); }),
                   std::function<Tensor64(const Tensor64&)>([](const Tensor64& x) { return nn::identity(x); })}) {
        auto report = check_grad(f);
        INFO(report.message());
        REQUIRE(report);
    }
}

TEST_CASE("nn: elu values and gradient") {
    check_values(nn::elu(Tensor64({-1.0, 0.0, 2.0}), 1.5), {1.5 * (std::exp(-1.0) - 1), 0.0, 2.0});
    auto report = check_grad([](const Tensor64& x) { return nn::elu(x, 0.7); });
    INFO(report.message());
    REQUIRE(report);
}

TEST_CASE("nn: softplus values and gradient (exact 1/2 at 0)") {
    Tensor64 x({-2.0, 0.0, 2.0}, true);
    check_values(nn::softplus(x), {0.12692801104297263, 0.6931471805599453, 2.1269280110429727});
    sum(nn::softplus(x)).backward();
    CHECK(x.grad().value()(1) == doctest::Approx(0.5));
    auto report = check_grad([](const Tensor64& x) { return nn::softplus(x); });
    INFO(report.message());
    REQUIRE(report);
}

TEST_CASE("nn: gelu exact and tanh approximation") {
    Tensor64 x({1.0, -0.5});
    check_values(nn::gelu(x), {0.8413447460685429, -0.15426876936299344});
    check_values(nn::gelu(x, nn::GeluApproximation::tanh), {0.8411919906082768, -0.15428599017485606});
    for (auto approx : {nn::GeluApproximation::none, nn::GeluApproximation::tanh}) {
        auto report = check_grad([approx](const Tensor64& x) { return nn::gelu(x, approx); });
        INFO(report.message());
        REQUIRE(report);
    }
}

TEST_CASE("nn: silu and swish") {
    check_values(nn::silu(Tensor64({1.0, 0.0})), {0.7310585786300049, 0.0});
    check_values(nn::swish(Tensor64({1.0}), 2.0), {0.8807970779778823});
    for (double beta : {1.0, 1.7}) {
        auto report = check_grad([beta](const Tensor64& x) { return nn::swish(x, beta); });
        INFO(report.message());
        REQUIRE(report);
    }
}

TEST_CASE("nn: softmax and log_softmax along an axis") {
    Tensor64 x({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}});
    check_values(nn::softmax(x), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 1 / 3.0, 1 / 3.0,
                                  1 / 3.0});
    check_values(nn::log_softmax(x, 1), {std::log(0.09003057317038046), std::log(0.24472847105479767),
                                         std::log(0.6652409557748219), -std::log(3.0), -std::log(3.0),
                                         -std::log(3.0)});
    // Along axis 0 the columns sum to 1.
    auto s0 = nn::softmax(x, 0);
    CHECK(s0.value()(0, 2) + s0.value()(1, 2) == doctest::Approx(1.0));
    for (std::ptrdiff_t axis : {0, 1, -1}) {
        auto r1 = check_grad([axis](const Tensor64& x) { return nn::softmax(x, axis); });
        auto r2 = check_grad([axis](const Tensor64& x) { return nn::log_softmax(x, axis); });
        INFO(r1.message() << " / " << r2.message());
        REQUIRE(r1);
        REQUIRE(r2);
    }
}

TEST_CASE("nn: PReLU learns its slope") {
    nn::PReLU<double> act;
    CHECK(act.named_parameters().at(0).first == "slope");
    Tensor64 x({-4.0, 2.0}, true);
    check_values(act(x), {-1.0, 2.0});
    sum(act(x)).backward();
    CHECK(act.slope.grad().item() == doctest::Approx(-4.0));  // d/d slope = the negative inputs
    CHECK(x.grad().value() == xt::xarray<double>({0.25, 1.0}));

    nn::PReLU<double> per_feature(4, 0.1);
    Generator gen(3);
    auto report = strict_gradcheck(
        [&](const std::vector<Tensor64>& in) {
            per_feature.parameter("slope") = in[1];
            return per_feature(in[0]);
        },
        {Tensor64::randn({3, 4}, gen), Tensor64::rand({4}, gen, 0, 1)});
    INFO(report.message());
    REQUIRE(report);
}

TEST_CASE("nn: RReLU draws slopes in [lower, upper] in training, uses the mean in eval") {
    nn::RReLU<double> act(0.1, 0.3, 42);
    Tensor64 x = Tensor64::full({1000}, -1.0);
    auto y = act(x).value();
    auto [lo, hi] = std::minmax_element(y.begin(), y.end());
    CHECK(*hi <= -0.1);
    CHECK(*lo >= -0.3);
    CHECK(*hi - *lo > 0.1);  // really random
    act.eval();
    check_values(act(Tensor64({-2.0, 3.0})), {-0.4, 3.0});

    // Gradcheck in eval mode (deterministic) and in training with a reseeded
    // generator per call, so both finite-difference evaluations see the same slopes.
    auto report = check_grad([&](const Tensor64& x) { return act(x); });
    INFO(report.message());
    REQUIRE(report);
    act.train();
    auto report_train = check_grad([&](const Tensor64& x) {
        act.generator().seed(7);
        return act(x);
    });
    INFO(report_train.message());
    REQUIRE(report_train);
}

TEST_CASE("nn: make_activation by name, and unknown names are rejected") {
    Tensor64 x({-1.0, 2.0});
    CHECK(nn::make_activation<double>("relu")->forward(x).value() == xt::xarray<double>({0.0, 2.0}));
    CHECK(nn::make_activation<double>("gelu_tanh")->type_name() == "GELUTanh");
    CHECK_THROWS_WITH_AS(nn::make_activation<double>("swoosh"), doctest::Contains("swoosh"), ValueError);
}

TEST_CASE("nn: float32 activations are finite with finite gradients at +-1000") {
    check_stable("sigmoid", [](const Tensor& x) { return nn::sigmoid(x); });
    check_stable("softplus", [](const Tensor& x) { return nn::softplus(x); });
    check_stable("silu", [](const Tensor& x) { return nn::silu(x); });
    check_stable("elu", [](const Tensor& x) { return nn::elu(x); });
    check_stable("gelu", [](const Tensor& x) { return nn::gelu(x); });
    check_stable("log_softmax", [](const Tensor& x) { return nn::log_softmax(reshape(x, {1, -1})); });
    check_stable("softmax", [](const Tensor& x) { return nn::softmax(reshape(x, {1, -1})) * x; });

    Tensor x({-1000.f, 1000.f});
    auto s = nn::sigmoid(x).value();
    CHECK(s(0) == 0.f);
    CHECK(s(1) == 1.f);
    CHECK(nn::softplus(x).value()(1) == 1000.f);
    auto ls = nn::log_softmax(Tensor({{-1000.f, 0.f, 1000.f}})).value();
    CHECK(ls(0, 2) == 0.f);
    CHECK(ls(0, 0) == -2000.f);
}
