#include <tapegrad/core/gradcheck.hpp>

#include <cmath>
#include <sstream>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/reduce.hpp>

namespace tapegrad {

std::string GradcheckReport::message() const {
    std::ostringstream os;
    os.precision(6);
    os << "gradcheck (" << what << "): " << (passed ? "passed" : "FAILED") << ", " << checked
       << " elements, max abs error " << max_abs_error << ", max rel error " << max_rel_error;
    if (checked)
        os << "; worst: input " << worst_input << " element " << worst_element << " analytic " << worst_analytic
           << " numeric " << worst_numeric;
    return os.str();
}

namespace {

// sum(f(x) * v): a scalar whose gradient is the VJP of f with cotangent v.
Tensor64 project(const TensorFunction& f, const std::vector<Tensor64>& x, Tensor64& v, Generator& gen) {
    Tensor64 y = f(x);
    if (!y.defined()) throw ValueError("gradcheck: the function returned an undefined tensor");
    if (!v.defined()) v = Tensor64::randn(y.shape_vector(), gen);
    if (v.shape() != y.shape())
        throw ShapeError("gradcheck: the function's output shape changed between calls");
    return sum(y * v);
}

GradcheckReport check(const TensorFunction& f, const std::vector<Tensor64>& inputs, const GradcheckOptions& o,
                      const char* what) {
    Generator gen(o.seed);
    Tensor64 v;
    // Fresh leaves, so the caller's tensors and their .grad are untouched.
    std::vector<Tensor64> leaves;
    for (const auto& x : inputs) leaves.emplace_back(Array<double>(x.value()), true);

    Tensor64 out = project(f, leaves, v, gen);
    std::vector<Tensor64> analytic = out.requires_grad() ? grad(out, leaves) : std::vector<Tensor64>(leaves.size());

    GradcheckReport r;
    r.what = what;
    double worst_ratio = -1;
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        for (std::size_t k = 0; k < leaves[i].size(); ++k) {
            auto set = [&](double value) { leaves[i].modify([&](auto& x) { x.data()[k] = value; }); };
            const double saved = leaves[i].value().data()[k];
            set(saved + o.eps);
            double plus = project(f, leaves, v, gen).item();
            set(saved - o.eps);
            double minus = project(f, leaves, v, gen).item();
            set(saved);
            double numeric = (plus - minus) / (2 * o.eps);
            double a = analytic[i].defined() ? analytic[i].value().data()[k] : 0.0;
            double err = std::abs(a - numeric);
            double ratio = err / (o.atol + o.rtol * std::abs(numeric));
            ++r.checked;
            r.max_abs_error = std::max(r.max_abs_error, err);
            r.max_rel_error = std::max(r.max_rel_error, err / std::max(std::abs(numeric), 1e-300));
            if (!(ratio <= 1)) r.passed = false;  // also catches NaN
            if (!(ratio <= worst_ratio) ) {
                worst_ratio = std::isnan(ratio) ? INFINITY : ratio;
                r.worst_input = i;
                r.worst_element = k;
                r.worst_analytic = a;
                r.worst_numeric = numeric;
            }
        }
    }
    return r;
}

}  // namespace

GradcheckReport gradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs, const GradcheckOptions& o) {
    return check(f, inputs, o, "gradient");
}

GradcheckReport gradgradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs,
                              const GradcheckOptions& o) {
    Generator gen(o.seed + 1);
    auto v = std::make_shared<Tensor64>();
    auto w = std::make_shared<std::vector<Tensor64>>();
    // h(x) = sum_i <d sum(f(x) * v) / dx_i, w_i>, whose gradient needs the
    // second derivatives of every op in f.
    TensorFunction h = [&f, v, w, &gen](const std::vector<Tensor64>& x) {
        EnableGradGuard recording;  // the finite differences call h under NoGradGuard
        Tensor64 out = project(f, x, *v, gen);
        if (!out.requires_grad()) return Tensor64::scalar(0);
        auto grads = grad(out, x, Tensor64(), BackwardOptions{true, true});
        if (w->empty())
            for (const auto& xi : x) w->push_back(Tensor64::randn(xi.shape_vector(), gen));
        Tensor64 total = Tensor64::scalar(0);
        for (std::size_t i = 0; i < x.size(); ++i)
            if (grads[i].defined()) total = total + sum(grads[i] * (*w)[i]);
        return total;
    };
    return check(h, inputs, o, "second derivative");
}

}  // namespace tapegrad
