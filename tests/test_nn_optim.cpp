// Optimisers: one- and two-step values against numbers worked out by hand,
// state round trips, allocation-free in-place updates, and the schedules.
#include <doctest/doctest.h>

#include <cmath>

#include <tapegrad/nn/optim.hpp>
#include <tapegrad/nn/schedule.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace nn = tapegrad::nn;

namespace {

// A parameter [1, -2] whose gradient is set by hand.
Tensor64 param() { return Tensor64({1.0, -2.0}, true); }

void step_with(nn::Optimizer<double>& opt, Tensor64& p, std::initializer_list<double> g) {
    p.set_grad(Tensor64(xt::xarray<double>(g)));
    opt.step();
}

void check_value(const Tensor64& p, double a, double b) {
    CHECK(p.value()(0) == doctest::Approx(a).epsilon(1e-12));
    CHECK(p.value()(1) == doctest::Approx(b).epsilon(1e-12));
}

// Gradients used for the two-step Adam checks.
const std::initializer_list<double> kG1{0.5, -1.0}, kG2{0.1, 0.3};

}  // namespace

TEST_CASE("nn: SGD step, with and without weight decay") {
    auto p = param();
    nn::SGD<double> sgd({p}, 0.1);
    step_with(sgd, p, {0.5, -1.0});
    check_value(p, 0.95, -1.9);  // p - 0.1 g

    auto q = param();
    nn::SGD<double> decayed({q}, 0.1, 0, 0.1);
    step_with(decayed, q, {0.5, -1.0});
    check_value(q, 1 - 0.1 * (0.5 + 0.1), -2 - 0.1 * (-1.0 - 0.2));  // g + 0.1 p = [0.6, -1.2]
}

TEST_CASE("nn: SGD momentum and Nesterov over two steps") {
    auto p = param();
    nn::SGD<double> sgd({p}, 0.1, 0.9);
    step_with(sgd, p, {0.5, -1.0});
    check_value(p, 0.95, -1.9);  // v = g
    step_with(sgd, p, {0.5, -1.0});
    check_value(p, 0.95 - 0.1 * 0.95, -1.9 + 0.1 * 1.9);  // v = 0.9 g + g = 1.9 g

    auto q = param();
    nn::SGD<double> nesterov({q}, 0.1, 0.9, 0, true);
    step_with(nesterov, q, {0.5, -1.0});
    check_value(q, 1 - 0.1 * (0.5 + 0.9 * 0.5), -2 + 0.1 * (1 + 0.9));  // update g + 0.9 v, v = g
    step_with(nesterov, q, {0.5, -1.0});
    check_value(q, 0.905 - 0.1 * (0.5 + 0.9 * 0.95), -1.81 + 0.1 * (1 + 0.9 * 1.9));  // v = 1.9 g
    CHECK_THROWS_AS(nn::SGD<double>({param()}, 0.1, 0, 0, true), ValueError);
}

TEST_CASE("nn: Adam over two steps") {
    auto p = param();
    nn::Adam<double> adam({p}, 0.1);
    step_with(adam, p, kG1);
    // Step 1: bias correction makes m^ = g and v^ = g^2, so the step is lr * sign(g).
    check_value(p, 1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1 / (1 + 1e-8));
    step_with(adam, p, kG2);
    // Element 0: m = 0.9*0.05 + 0.1*0.1 = 0.055, v = 0.999*0.00025 + 0.001*0.01 = 0.00025975,
    // m^ = 0.055/0.19, v^ = 0.00025975/0.001999, p = p1 - 0.1 m^/(sqrt(v^) + 1e-8).
    const double p0 = 1 - 0.1 * 0.5 / (0.5 + 1e-8);
    CHECK(p.value()(0) == doctest::Approx(p0 - 0.1 * (0.055 / 0.19) / (std::sqrt(0.00025975 / 0.001999) + 1e-8)));
    check_value(p, 0.8196959063846518, -1.8572151424292265);
    CHECK(adam.steps() == 2);
}

TEST_CASE("nn: Adam with L2 weight decay and AdamW with decoupled decay differ as they should") {
    auto p = param();
    nn::Adam<double> adam({p}, 0.1, 0.9, 0.999, 1e-8, 0.1);
    step_with(adam, p, kG1);
    // Step 1 with g + 0.1 p = [0.6, -1.2]: still lr * sign.
    check_value(p, 1 - 0.1 * 0.6 / (0.6 + 1e-8), -2 + 0.1 * 1.2 / (1.2 + 1e-8));
    step_with(adam, p, kG2);
    check_value(p, 0.8136483454297575, -1.8400703555381717);

    auto q = param();
    nn::AdamW<double> adamw({q}, 0.1, 0.9, 0.999, 1e-8, 0.1);
    step_with(adamw, q, kG1);
    // Step 1: p (1 - lr wd) - lr sign(g).
    check_value(q, 1 * 0.99 - 0.1 * 0.5 / (0.5 + 1e-8), -2 * 0.99 + 0.1 / (1 + 1e-8));
    step_with(adamw, q, kG2);
    check_value(q, 0.8007959063646517, -1.8184151424192265);
}

TEST_CASE("nn: a step updates in place, without recording or reallocating, and skips absent gradients") {
    auto p = param();
    Tensor64 unused({3.0}, true);
    nn::Adam<double> adam({p, unused}, 0.1);
    const double* data = p.value().data();
    const auto version = p.version();
    step_with(adam, p, {0.5, -1.0});
    CHECK(p.value().data() == data);  // same buffer
    CHECK(p.version() > version);     // saved copies of the old value are caught
    CHECK(p.is_leaf());
    CHECK(unused.value()(0) == 3.0);
    adam.zero_grad();
    CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn: optimiser state round trip and its errors") {
    auto p = param();
    nn::Adam<double> adam({p}, 0.1);
    step_with(adam, p, kG1);
    auto state = adam.state();
    std::vector<std::string> names;
    for (const auto& e : state) names.push_back(e.first);
    CHECK(names == std::vector<std::string>{"lr", "step", "step.0", "exp_avg.0", "exp_avg_sq.0"});

    // A fresh optimiser over a copy of the parameter continues identically.
    Tensor64 q(xt::xarray<double>(p.value()), true);
    nn::Adam<double> resumed({q}, 0.5);
    resumed.load_state(state);
    CHECK(resumed.lr() == 0.1);
    CHECK(resumed.steps() == 1);
    step_with(adam, p, kG2);
    step_with(resumed, q, kG2);
    CHECK(q.value() == p.value());

    auto bad_shape = state;
    bad_shape[3].second = xt::zeros<double>({3});
    CHECK_THROWS_WITH_AS(resumed.load_state(bad_shape),
                         doctest::Contains("entry 'exp_avg.0' has shape [3], expected [2]"), ShapeError);
    auto missing = state;
    missing.pop_back();
    CHECK_THROWS_WITH_AS(resumed.load_state(missing), doctest::Contains("'exp_avg_sq.0' is missing"), ValueError);
    auto extra = state;
    extra.emplace_back("momentum.0", xt::zeros<double>({2}));
    CHECK_THROWS_WITH_AS(resumed.load_state(extra), doctest::Contains("unexpected entry 'momentum.0'"), ValueError);
    auto fractional = state;
    fractional[2].second = xt::xarray<double>(1.5);
    CHECK_THROWS_WITH_AS(resumed.load_state(fractional), doctest::Contains("'step.0' must be a whole number >= 0, got 1.5"),
                         ValueError);
    CHECK(resumed.steps() == 2);  // the failed loads changed nothing
    CHECK(resumed.updates(0) == 2);

    nn::SGD<double> sgd({param()}, 0.1, 0.9);
    CHECK(sgd.state().size() == 4);  // lr, step, step.0, momentum.0
    CHECK_THROWS_WITH_AS(sgd.updates(1), doctest::Contains("updates(1) but there are 1 parameters"), ValueError);
}

TEST_CASE("nn: a state saved before per-parameter step counts loads with every count = its global step") {
    // Parameter 1 skips the second step, so its own count (1) differs from
    // the global one (2); the old format had only the global "step".
    auto p = param(), q = param();
    nn::Adam<double> adam({p, q}, 0.1);
    p.set_grad(Tensor64({0.5, -1.0}));
    q.set_grad(Tensor64({0.2, 0.1}));
    adam.step();
    q.zero_grad();
    step_with(adam, p, kG2);
    REQUIRE(adam.updates(0) == 2);
    REQUIRE(adam.updates(1) == 1);
    nn::StateDict<double> old_format;
    for (const auto& entry : adam.state())
        if (entry.first.rfind("step.", 0) != 0) old_format.push_back(entry);
    REQUIRE(old_format.size() == 6);  // lr, step, exp_avg.{0,1}, exp_avg_sq.{0,1}

    Tensor64 p2(xt::xarray<double>(p.value()), true), q2(xt::xarray<double>(q.value()), true);
    nn::Adam<double> resumed({p2, q2}, 0.5);
    resumed.load_state(old_format);
    CHECK(resumed.steps() == 2);
    CHECK(resumed.updates(0) == 2);
    CHECK(resumed.updates(1) == 2);  // what the old optimiser used for every parameter
    // The next step of parameter 0 is the same as the original's (same t = 3).
    step_with(adam, p, kG1);
    step_with(resumed, p2, kG1);
    CHECK(p2.value() == p.value());

    // Some counts but not all: refused, naming the missing one.
    auto partial = old_format;
    partial.emplace_back("step.0", xt::xarray<double>(2.0));
    CHECK_THROWS_WITH_AS(resumed.load_state(partial), doctest::Contains("entry 'step.1' is missing"), ValueError);
}

TEST_CASE("nn: step and cosine learning-rate schedules") {
    nn::SGD<double> sgd({param()}, 0.1);
    nn::StepLR step(sgd, 3, 0.5);
    const double expected[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025};
    for (std::size_t e = 0; e < 7; ++e) CHECK(step.lr_at(e) == doctest::Approx(expected[e]));
    for (int i = 0; i < 3; ++i) step.step();
    CHECK(sgd.lr() == doctest::Approx(0.05));

    nn::Adam<double> adam({param()}, 1.0);
    nn::CosineLR cosine(adam, 4);
    CHECK(cosine.lr_at(0) == doctest::Approx(1.0));
    CHECK(cosine.lr_at(1) == doctest::Approx(0.8535533905932737));
    CHECK(cosine.lr_at(2) == doctest::Approx(0.5));
    CHECK(cosine.lr_at(3) == doctest::Approx(0.14644660940672627));
    CHECK(cosine.lr_at(4) == doctest::Approx(0.0));
    CHECK(cosine.lr_at(9) == doctest::Approx(0.0));
    cosine.step();
    CHECK(adam.lr() == doctest::Approx(0.8535533905932737));
    nn::CosineLR floor(adam, 4, 0.1);
    CHECK(floor.lr_at(2) == doctest::Approx(0.1 + (0.8535533905932737 - 0.1) * 0.5));  // base is the current lr
    CHECK_THROWS_AS(nn::StepLR(sgd, 0), ValueError);
}
