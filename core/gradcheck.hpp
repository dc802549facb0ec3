// gradcheck: compares every element of every analytic gradient with central
// finite differences, in float64.
//
//   auto report = tapegrad::gradcheck(
//       [](const std::vector<Tensor64>& x) { return tapegrad::sum(x[0] * x[1]); },
//       {Tensor64::randn({3, 4}, gen), Tensor64::randn({4}, gen)});
//   if (!report) std::cerr << report.message();
//
// For a function with a non-scalar result, the check is done on
// F(x) = sum(f(x) * v) for a fixed random cotangent v, which exercises every
// vector-Jacobian product the function uses.
//
// An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
//
// What the settings can see, measured on 20,000 random graphs of tests/fuzz
// (float64; values of magnitude up to 30, kept 1e-2 from every kink):
//
// - The defaults (PyTorch's): a central difference with step eps = 1e-6,
//   atol = 1e-5, rtol = 1e-3. The difference is good to about 1e-8
//   absolute and 3e-7 relative where the gradient exceeds 1e-2 (rounding
//   in F, about 1e-16 * |F| / eps, outweighs the O(eps^2) truncation), but
//   the tolerance lets through any error below 0.1% of the gradient plus
//   1e-5: an exp whose VJP is scaled by 1 + 1e-4 passes.
//
// - GradcheckOptions::strict(), used by the graph fuzzer and the op tests:
//   the same central difference with step 1e-6 * max(1, |x|), atol = 1e-8,
//   rtol = 1e-6. An element that fails it is checked again, and judged,
//   against Richardson extrapolation of two central differences with steps
//   h = 1e-4 * max(1, |x|) and h / 2: (4 D(h/2) - D(h)) / 3 cancels the h^2
//   term, leaving O(h^4) truncation and less rounding (error measured below
//   1.5e-10 absolute and 1e-8 relative). Either way an element passes only
//   if its error is within the tolerance plus the estimate's own error: a
//   VJP off by 1e-4 relative fails wherever the gradient exceeds about 2e-4
//   in magnitude (tests/test_gradcheck.cpp). Costs 2 evaluations of f per
//   element, 6 for an element checked again. Needs f smooth within
//   1e-4 * max(1, |x|) of the point.
//
// No setting sees a relative error in a gradient element much smaller than
// atol / rtol (1e-2 for both): there only atol counts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

struct GradcheckOptions {
    double eps = 1e-6;        // finite-difference step
    double atol = 1e-5;
    double rtol = 1e-3;
    bool relative_step = false;  // steps scaled by max(1, |x|)
    // When > 0, an element that fails on the central difference is checked
    // again against Richardson extrapolation with this step (see above).
    double richardson_eps = 0;
    std::uint64_t seed = 0;      // for the random cotangent

    // Sharp settings (see above): catches a VJP off by 1e-4 relative.
    static GradcheckOptions strict();
};

// One compared element of one input's gradient.
struct GradcheckElement {
    std::size_t input = 0;           // position in the inputs
    std::vector<std::size_t> index;  // multi-dimensional index into that input
    double analytic = 0;
    double numeric = 0;

    double abs_error() const;
    double rel_error() const;  // |analytic - numeric| / |numeric| (0 if both are 0)
    std::string str() const;   // "input 1 [2, 0]: analytic 0.5 numeric 0.49"
};

struct GradcheckReport {
    bool passed = true;
    std::size_t checked = 0;   // elements compared
    std::size_t refined = 0;   // of those, checked again by Richardson extrapolation
    double max_abs_error = 0;  // over all elements
    double max_rel_error = 0;  // over all elements
    // The elements behind each maximum (often one element is all three).
    GradcheckElement worst_abs;  // largest |analytic - numeric|
    GradcheckElement worst_rel;  // largest relative error
    GradcheckElement worst;      // largest error / (atol + rtol * |numeric|): closest to failing, or failing worst
    double worst_ratio = 0;      // that quotient; the check passed iff it is <= 1
    std::string what;            // "gradient" or "second derivative"

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
