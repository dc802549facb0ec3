// gradcheck itself: what its settings can see (a VJP off by 1e-4 relative),
// and a report that names the element behind each maximum.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <tapegrad/core/op.hpp>
#include <tapegrad/tapegrad.hpp>

#include "graph_fuzz.hpp"

using namespace tapegrad;

namespace {

// exp whose VJP is scaled by `factor`: with factor 1 + 1e-4, a gradient
// wrong by 0.01%.
Tensor64 scaled_exp(const Tensor64& x, double factor) {
    detail::Op<double> op("scaled_exp", {x});
    auto y = op.output(xt::exp(x.value()));
    return op.record(y, [sy = op.save_output(y), factor](detail::VjpContext<double>& c, const Tensor64& g) {
        return detail::Grads<double>{g * c.unpack(sy) * factor};
    });
}

// x^2 with a VJP whose element k is scaled by factor[k].
Tensor64 skewed_square(const Tensor64& x, const xt::xarray<double>& factor) {
    detail::Op<double> op("skewed_square", {x});
    auto y = op.output(x.value() * x.value());
    return op.record(y, [sx = op.save(x), factor](detail::VjpContext<double>& c, const Tensor64& g) {
        return detail::Grads<double>{g * c.unpack(sx) * Tensor64(xt::xarray<double>(2.0 * factor))};
    });
}

// Functions of the kind the fuzzer builds, each using exp once: elementwise,
// through a reduction, a matmul, a normalisation and a log-sum-exp.
std::vector<TensorFunction> exp_graphs(double factor) {
    return {
        [factor](const std::vector<Tensor64>& x) { return scaled_exp(x[0], factor); },
        [factor](const std::vector<Tensor64>& x) { return sum(scaled_exp(x[0], factor) * x[1], {1}); },
        [factor](const std::vector<Tensor64>& x) { return matmul(scaled_exp(x[0] * 0.5, factor), transpose(x[1])); },
        [factor](const std::vector<Tensor64>& x) {
            auto e = scaled_exp(x[0], factor);
            return e / sum(e, {-1}, true);  // softmax: the error no longer cancels in the sum
        },
        [factor](const std::vector<Tensor64>& x) { return log(sum(scaled_exp(x[0] - x[1], factor), {0})); },
    };
}

std::vector<Tensor64> exp_inputs(std::uint64_t seed) {
    Generator gen(seed);
    return {Tensor64::rand({3, 4}, gen, -1.5, 1.5), Tensor64::rand({3, 4}, gen, -1.5, 1.5)};
}

}  // namespace

TEST_CASE("gradcheck: the fuzzer's strict settings catch a VJP off by 1e-4 relative; defaults do not") {
    const GradcheckOptions strict = fuzz::CheckOptions{}.gradcheck;
    CHECK(strict.rtol <= 1e-6);
    CHECK(strict.richardson_eps > 0);
    double correct_worst = 0, correct_rel = 0, mutated_best = INFINITY;
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        const auto inputs = exp_inputs(seed);
        const auto right = exp_graphs(1.0), wrong = exp_graphs(1.0 + 1e-4);
        for (std::size_t k = 0; k < right.size(); ++k) {
            CAPTURE(seed);
            CAPTURE(k);
            const auto good = gradcheck(right[k], inputs, strict);
            INFO(good.message());
            CHECK(good.passed);
            CHECK(good.worst_ratio < 0.1);  // correct: far inside the tolerance
            correct_worst = std::max(correct_worst, good.worst_ratio);
            correct_rel = std::max(correct_rel, good.worst_abs.rel_error());

            const auto bad = gradcheck(wrong[k], inputs, strict);
            INFO(bad.message());
            CHECK_FALSE(bad.passed);
            CHECK(bad.worst_ratio > 20);  // wrong: far outside
            // The error is the mutation: 1e-4 of the gradient.
            CHECK(bad.worst_abs.rel_error() == doctest::Approx(1e-4).epsilon(0.01));
            mutated_best = std::min(mutated_best, bad.worst_ratio);

            // PyTorch-compatible defaults (rtol 1e-3) cannot see it.
            CHECK(gradcheck(wrong[k], inputs).passed);
        }
    }
    MESSAGE("strict gradcheck: correct exp graphs at most " << correct_worst << " x tolerance (rel error "
                                                            << correct_rel << "); exp off by 1e-4 at least "
                                                            << mutated_best << " x tolerance");
}

TEST_CASE("gradcheck: strict settings catch the mutation in second derivatives too") {
    const GradcheckOptions strict = fuzz::CheckOptions{}.gradcheck;
    const auto inputs = exp_inputs(7);
    auto f = [](double factor) {
        return [factor](const std::vector<Tensor64>& x) { return sum(scaled_exp(x[0], factor) * x[1], {1}); };
    };
    const auto good = gradgradcheck(f(1.0), inputs, strict);
    INFO(good.message());
    CHECK(good.passed);
    const auto bad = gradgradcheck(f(1.0 + 1e-4), inputs, strict);
    INFO(bad.message());
    CHECK_FALSE(bad.passed);
}

TEST_CASE("gradcheck: the report names the element behind each maximum") {
    // Input 0 is right. Input 1 (3 x 2) has three wrong elements:
    //   [2, 0]: x = 3,    off by 2%  -> the largest absolute error (0.12 |v|)
    //   [1, 0]: x = 0.5,  off by 10% -> the largest error for atol 1e-3, rtol 1e-2
    //   [2, 1]: x = 1e-6, off by 50% -> the largest relative error, far below atol
    const xt::xarray<double> factor{{1.0, 1.0}, {1.1, 1.0}, {1.02, 1.5}};
    auto f = [&factor](const std::vector<Tensor64>& x) {
        return sum(x[0] * x[0]) + sum(skewed_square(x[1], factor));
    };
    const std::vector<Tensor64> inputs{Tensor64({0.5, -1.0}),
                                       Tensor64(xt::xarray<double>{{0.25, -1.0}, {0.5, 2.0}, {3.0, 1e-6}})};
    GradcheckOptions o;
    o.atol = 1e-3;
    o.rtol = 1e-2;
    const auto r = gradcheck(f, inputs, o);
    INFO(r.message());
    CHECK_FALSE(r.passed);
    CHECK(r.checked == 8);

    using Index = std::vector<std::size_t>;
    CHECK(r.worst_abs.input == 1);
    CHECK(r.worst_abs.index == Index{2, 0});
    CHECK(r.worst_abs.analytic / r.worst_abs.numeric == doctest::Approx(1.02));
    CHECK(r.max_abs_error == r.worst_abs.abs_error());

    CHECK(r.worst_rel.input == 1);
    CHECK(r.worst_rel.index == Index{2, 1});
    // The true gradient here is 2e-6 |v|: rounding in F shows at 1e-3 relative.
    CHECK(r.worst_rel.analytic / r.worst_rel.numeric == doctest::Approx(1.5).epsilon(0.01));
    CHECK(r.max_rel_error == doctest::Approx(0.5).epsilon(0.01));

    CHECK(r.worst.input == 1);
    CHECK(r.worst.index == Index{1, 0});
    CHECK(r.worst.analytic / r.worst.numeric == doctest::Approx(1.1));
    CHECK(r.worst_ratio == doctest::Approx(r.worst.abs_error() / (o.atol + o.rtol * std::abs(r.worst.numeric))));
    CHECK(r.worst_ratio > 1);

    // The numeric values are the true gradient 2x (times the cotangent).
    CHECK(r.worst.numeric / r.worst_abs.numeric == doctest::Approx(0.5 / 3.0));

    const std::string m = r.message();
    CHECK(m.find("FAILED") != std::string::npos);
    CHECK(m.find("largest abs error") != std::string::npos);
    CHECK(m.find("input 1 [2, 0]: analytic ") != std::string::npos);
    CHECK(m.find("input 1 [2, 1]: analytic ") != std::string::npos);
    CHECK(m.find("input 1 [1, 0]: analytic ") != std::string::npos);
}

TEST_CASE("gradcheck: a scalar input has the index [] and a passing report still names its worst element") {
    auto f = [](const std::vector<Tensor64>& x) { return x[0] * x[1]; };
    const auto r = gradcheck(f, {Tensor64({1.0, 2.0}), Tensor64::scalar(3.0)}, GradcheckOptions::strict());
    INFO(r.message());
    CHECK(r.passed);
    CHECK(r.checked == 3);
    CHECK(r.worst_ratio <= 1);
    for (const auto* e : {&r.worst, &r.worst_abs, &r.worst_rel}) CHECK(e->index.size() == (e->input == 0 ? 1u : 0u));
    const std::string m = r.message();
    CHECK(m.find("passed") != std::string::npos);
    CHECK(m.find("worst against the tolerance") != std::string::npos);
    CHECK(GradcheckElement{1, {}, 2.0, 2.0}.str() == "input 1 []: analytic 2 numeric 2");
}

TEST_CASE("gradcheck: Richardson extrapolation removes the step's truncation error") {
    // exp(x) at x = 2 with a large step: a central difference is off by
    // about h^2 / 6 relative, the extrapolated one by about h^4 / 120.
    auto f = [](const std::vector<Tensor64>& x) { return exp(x[0]); };
    GradcheckOptions central;
    central.eps = 1e-2;
    central.atol = central.rtol = 0;
    GradcheckOptions richardson = central;
    richardson.richardson_eps = 1e-2;  // zero tolerance: every element is checked again
    const auto a = gradcheck(f, {Tensor64::scalar(2.0)}, central);
    const auto b = gradcheck(f, {Tensor64::scalar(2.0)}, richardson);
    CHECK(a.max_rel_error == doctest::Approx(1e-4 / 6).epsilon(0.01));
    CHECK(b.max_rel_error < 1e-9);
    CHECK(b.max_rel_error > 0);
    CHECK(a.refined == 0);
    CHECK(b.refined == 1);
}

TEST_CASE("gradcheck: invalid settings are refused") {
    auto f = [](const std::vector<Tensor64>& x) { return x[0]; };
    GradcheckOptions o;
    o.eps = 0;
    CHECK_THROWS_AS(gradcheck(f, {Tensor64({1.0})}, o), ValueError);
    o = {};
    o.rtol = -1;
    CHECK_THROWS_AS(gradcheck(f, {Tensor64({1.0})}, o), ValueError);
}
