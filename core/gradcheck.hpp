// gradcheck: compares every element of every analytic gradient with central
// finite differences, in float64.
//
//   auto report = tapegrad::gradcheck(
//       [](const std::vector<Tensor64>& x) { return tapegrad::sum(x[0] * x[1]); },
//       {Tensor64::randn({3, 4}, gen), Tensor64::randn({4}, gen)});
//   if (!report) std::cerr << report.message();
//
// For a function with a non-scalar result, the check is done on
// sum(f(x) * v) for a fixed random cotangent v, which exercises every
// vector-Jacobian product the function uses.
//
// An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
// Defaults: step eps = 1e-6, atol = 1e-5, rtol = 1e-3 (central differences
// have error O(eps^2) from curvature and O(1e-16/eps) from rounding).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
    std::uint64_t seed = 0;  // for the random cotangent
};

struct GradcheckReport {
    bool passed = true;
    std::size_t checked = 0;       // elements compared
    double max_abs_error = 0;      // over all elements
    double max_rel_error = 0;      // |a - n| / max(|n|, tiny), over all elements
    // The element that came closest to failing (or failed worst).
    std::size_t worst_input = 0;
    std::size_t worst_element = 0;  // flat index into that input
    double worst_analytic = 0;
    double worst_numeric = 0;
    std::string what;  // "gradient" or "second derivative"

    explicit operator bool() const { return passed; }
    std::string message() const;
};

using TensorFunction = std::function<Tensor64(const std::vector<Tensor64>&)>;

// First derivatives of f at `inputs` (their values are used; they need not
// require grad).
GradcheckReport gradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs,
                          const GradcheckOptions& options = {});

// Second derivatives: checks the derivative of <grad f(x), w> (computed with
// create_graph) against finite differences, for a fixed random w.
GradcheckReport gradgradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs,
                              const GradcheckOptions& options = {});

}  // namespace tapegrad
