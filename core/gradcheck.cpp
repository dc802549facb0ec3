#include <tapegrad/core/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/reduce.hpp>

namespace tapegrad {

GradcheckOptions GradcheckOptions::strict() {
    GradcheckOptions o;
    o.eps = 1e-6;
    o.richardson_eps = 1e-4;
    o.atol = 1e-8;
    o.rtol = 1e-6;
    o.relative_step = true;
    return o;
}

double GradcheckElement::abs_error() const { return std::abs(analytic - numeric); }

double GradcheckElement::rel_error() const {
    const double err = abs_error();
    return err == 0 ? 0.0 : err / std::abs(numeric);  // inf when numeric is 0 and analytic is not
}

std::string GradcheckElement::str() const {
    std::ostringstream os;
    os.precision(10);
    os << "input " << input << " [";
    for (std::size_t d = 0; d < index.size(); ++d) os << (d ? ", " : "") << index[d];
    os << "]: analytic " << analytic << " numeric " << numeric;
    return os.str();
}

std::string GradcheckReport::message() const {
    std::ostringstream os;
    os.precision(3);
    os << "gradcheck (" << what << "): " << (passed ? "passed" : "FAILED") << ", " << checked
       << " elements";
    if (refined) os << " (" << refined << " checked again by Richardson extrapolation)";
    os << ", max abs error " << max_abs_error << ", max rel error " << max_rel_error;
    if (checked) {
        os << "\n  worst against the tolerance (error " << worst_ratio << " x tolerance): " << worst.str();
        os << "\n  largest abs error " << worst_abs.abs_error() << ": " << worst_abs.str();
        os << "\n  largest rel error " << worst_rel.rel_error() << ": " << worst_rel.str();
    }
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

// |analytic - numeric| / (atol + rtol |numeric|): the element passes iff <= 1.
double tolerance_ratio(const GradcheckElement& e, const GradcheckOptions& o) {
    const double err = e.abs_error();
    if (err == 0) return 0;  // also with zero tolerances
    const double ratio = err / (o.atol + o.rtol * std::abs(e.numeric));
    return std::isnan(ratio) ? INFINITY : ratio;
}

// Row-major multi-dimensional index of flat element k.
std::vector<std::size_t> unravel(std::size_t k, const Shape& shape) {
    std::vector<std::size_t> index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = k % shape[d];
        k /= shape[d];
    }
    return index;
}

// Central difference (F(x + h) - F(x - h)) / 2h in the element xk of the
// leaves.
// Central difference in element k of input i, with step h.
double central_difference(const TensorFunction& f, std::vector<Tensor64>& leaves, std::size_t i, std::size_t k,
                          double h, Tensor64& v, Generator& gen) {
    auto set = [&](double value) { leaves[i].modify([&](auto& x) { x.data()[k] = value; }); };
    const double x = leaves[i].value().data()[k];
    // The step actually taken: x + h and x - h are rounded.
    const double plus_x = x + h, minus_x = x - h;
    set(plus_x);
    const double plus = project(f, leaves, v, gen).item();
    set(minus_x);
    const double minus = project(f, leaves, v, gen).item();
    set(x);
    return (plus - minus) / (plus_x - minus_x);
}

double step(double eps, double x, const GradcheckOptions& o) {
    return o.relative_step ? eps * std::max(1.0, std::abs(x)) : eps;
}

GradcheckReport check(const TensorFunction& f, const std::vector<Tensor64>& inputs, const GradcheckOptions& o,
                      const char* what) {
    if (!(o.eps > 0) || !(o.richardson_eps >= 0) || !(o.atol >= 0) || !(o.rtol >= 0))
        throw ValueError("gradcheck: eps must be > 0 and richardson_eps, atol, rtol >= 0 (got eps " +
                         std::to_string(o.eps) + ", richardson_eps " + std::to_string(o.richardson_eps) + ", atol " +
                         std::to_string(o.atol) + ", rtol " + std::to_string(o.rtol) + ")");
    Generator gen(o.seed);
    Tensor64 v;
    // Fresh leaves, so the caller's tensors and their .grad are untouched.
    std::vector<Tensor64> leaves;
    for (const auto& x : inputs) leaves.emplace_back(Array<double>(x.value()), true);

    Tensor64 out = project(f, leaves, v, gen);
    std::vector<Tensor64> analytic = out.requires_grad() ? grad(out, leaves) : std::vector<Tensor64>(leaves.size());

    GradcheckReport r;
    r.what = what;
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        const Shape shape = leaves[i].shape_vector();
        for (std::size_t k = 0; k < leaves[i].size(); ++k) {
            GradcheckElement e;
            e.input = i;
            e.analytic = analytic[i].defined() ? analytic[i].value().data()[k] : 0.0;
            const double xk = leaves[i].value().data()[k];
            e.numeric = central_difference(f, leaves, i, k, step(o.eps, xk, o), v, gen);
            double ratio = tolerance_ratio(e, o);
            if (o.richardson_eps > 0 && !(ratio <= 1)) {
                // D(h) = F' + c h^2 + O(h^4), so (4 D(h/2) - D(h)) / 3 = F' + O(h^4):
                // a larger step, hence less rounding, without the truncation error.
                const double h = step(o.richardson_eps, xk, o);
                e.numeric = (4 * central_difference(f, leaves, i, k, h / 2, v, gen) -
                             central_difference(f, leaves, i, k, h, v, gen)) / 3;
                ratio = tolerance_ratio(e, o);
                ++r.refined;
            }
            const double err = e.abs_error(), rel = e.rel_error();
            ++r.checked;
            if (!(ratio <= 1)) r.passed = false;
            // The first element wins ties; a NaN error beats any number.
            auto worse = [](double candidate, double current) {
                return !std::isnan(current) && (std::isnan(candidate) || candidate > current);
            };
            auto take = [&](GradcheckElement& slot) {
                slot = e;
                slot.index = unravel(k, shape);
            };
            if (r.checked == 1 || worse(err, r.max_abs_error)) {
                r.max_abs_error = err;
                take(r.worst_abs);
            }
            if (r.checked == 1 || worse(rel, r.max_rel_error)) {
                r.max_rel_error = rel;
                take(r.worst_rel);
            }
            if (r.checked == 1 || ratio > r.worst_ratio) {
                r.worst_ratio = ratio;
                take(r.worst);
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
