#include <tapegrad/core/functional.hpp>

#include <string>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/indexing.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad::functional {
namespace {

using detail::shape_str;

// The tensors f is called on. Copies, so f cannot change the caller's
// values and no .grad of theirs is touched. Under create_graph an input that
// requires grad is copied on the graph (clone), so results stay
// differentiable with respect to it: that is how transforms compose.
template <class T>
std::vector<BasicTensor<T>> prepare(const char* name, const std::vector<BasicTensor<T>>& inputs, bool create_graph) {
    std::vector<BasicTensor<T>> xs;
    xs.reserve(inputs.size());
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const auto& x = inputs[k];
        if (!x.defined()) throw ValueError(std::string(name) + ": input " + std::to_string(k) + " is undefined");
        if (create_graph && x.requires_grad()) {
            xs.push_back(clone(x));
        } else if (detail::capture_sink<T>()) {  // the copy an op, so a captured program copies the new value
            auto copy = clone(x.detach());
            copy.requires_grad_(true);
            xs.push_back(copy);
        } else {
            xs.push_back(BasicTensor<T>(Array<T>(x.value()), /*requires_grad=*/true));
        }
    }
    return xs;
}

template <class T>
BasicTensor<T> call(const char* name, const BasicTensorFunction<T>& f, const std::vector<BasicTensor<T>>& xs) {
    if (!f) throw ValueError(std::string(name) + ": the function is empty");
    auto y = f(xs);
    if (!y.defined()) throw ValueError(std::string(name) + ": the function returned an undefined tensor");
    return y;
}

template <class T>
void require_scalar(const char* name, const BasicTensor<T>& y) {
    if (y.size() != 1)
        throw ShapeError(std::string(name) + ": the function must return one element (a scalar), but it returned shape " +
                         shape_str(y.shape()));
}

// One tensor per input, each shaped like its input: what jvp and hvp take.
template <class T>
void require_like(const char* name, const char* what, const std::vector<BasicTensor<T>>& given,
                  const std::vector<BasicTensor<T>>& inputs) {
    if (given.size() != inputs.size())
        throw ValueError(std::string(name) + ": " + std::to_string(given.size()) + " " + what + "s for " +
                         std::to_string(inputs.size()) + " inputs; pass one per input");
    for (std::size_t k = 0; k < given.size(); ++k)
        if (!given[k].defined() || given[k].shape() != inputs[k].shape())
            throw ShapeError(std::string(name) + ": " + what + " " + std::to_string(k) + " has shape " +
                             (given[k].defined() ? shape_str(given[k].shape()) : std::string("(undefined)")) +
                             " but input " + std::to_string(k) + " has shape " + shape_str(inputs[k].shape()));
}

// d<y, v>/d xs, with zeros where y does not depend on an input.
template <class T>
std::vector<BasicTensor<T>> pullback(const BasicTensor<T>& y, const std::vector<BasicTensor<T>>& xs,
                                     const BasicTensor<T>& v, bool create_graph, bool retain_graph) {
    std::vector<BasicTensor<T>> gs(xs.size());
    if (y.requires_grad()) gs = grad(y, xs, v, {retain_graph, create_graph});
    for (std::size_t k = 0; k < xs.size(); ++k)
        if (!gs[k].defined()) gs[k] = BasicTensor<T>::zeros(xs[k].shape_vector());
    return gs;
}

// sum_k <a_k, b_k>, undefined when no term is on the graph.
template <class T>
BasicTensor<T> inner(const std::vector<BasicTensor<T>>& a, const std::vector<BasicTensor<T>>& b) {
    BasicTensor<T> s;
    for (std::size_t k = 0; k < a.size(); ++k) {
        if (!a[k].requires_grad()) continue;
        auto term = sum(a[k] * b[k]);
        s = s.defined() ? s + term : term;
    }
    return s;
}

template <class T>
BasicTensor<T> result(const BasicTensor<T>& y, bool create_graph) {
    return create_graph ? y : y.detach();
}

template <class T>
std::vector<std::int64_t> joined(const typename BasicTensor<T>::shape_type& a,
                                 const typename BasicTensor<T>::shape_type& b) {
    std::vector<std::int64_t> s(a.begin(), a.end());
    s.insert(s.end(), b.begin(), b.end());
    return s;
}

// J[o][k] = d ys[o] / d xs[k], of shape ys[o] ++ xs[k]: one backward pass
// per output element, seeded with a unit vector (row e of J is e^T J).
template <class T>
std::vector<std::vector<BasicTensor<T>>> jacobians(const std::vector<BasicTensor<T>>& ys,
                                                   const std::vector<BasicTensor<T>>& xs, bool create_graph) {
    std::vector<std::vector<BasicTensor<T>>> out;
    for (const auto& y : ys) {
        std::vector<std::vector<BasicTensor<T>>> rows(xs.size());
        for (std::size_t e = 0; e < y.size(); ++e) {
            Array<T> unit = xt::zeros<T>(y.shape());
            unit.flat(e) = T(1);
            auto gs = pullback(y, xs, BasicTensor<T>(std::move(unit)), create_graph, /*retain_graph=*/true);
            for (std::size_t k = 0; k < xs.size(); ++k) rows[k].push_back(std::move(gs[k]));
        }
        std::vector<BasicTensor<T>> per_input;
        for (std::size_t k = 0; k < xs.size(); ++k) {
            const auto shape = joined<T>(y.shape(), xs[k].shape());
            if (rows[k].empty()) per_input.push_back(BasicTensor<T>::zeros(Shape(shape.begin(), shape.end())));
            else per_input.push_back(reshape(stack(rows[k], 0), shape));
        }
        out.push_back(std::move(per_input));
    }
    return out;
}

}  // namespace

template <class T>
VjpResult<T> vjp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs, const BasicTensor<T>& v, Options options) {
    EnableGradGuard recording;
    auto xs = prepare("vjp", inputs, options.create_graph);
    auto y = call("vjp", f, xs);
    if (!v.defined() && y.size() != 1)
        throw ShapeError("vjp: the function returned shape " + shape_str(y.shape()) +
                         ", not one element; pass v of that shape");
    if (v.defined() && v.shape() != y.shape())
        throw ShapeError("vjp: v has shape " + shape_str(v.shape()) + " but the function returned shape " +
                         shape_str(y.shape()));
    const auto seed = v.defined() ? v : BasicTensor<T>::ones(y.shape_vector());
    auto gs = pullback(y, xs, options.create_graph ? seed : seed.detach(), options.create_graph, false);
    return {result(y, options.create_graph), std::move(gs)};
}

template <class T>
JvpResult<T> jvp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs, const std::vector<BasicTensor<T>>& tangents,
                 Options options) {
    EnableGradGuard recording;
    require_like("jvp", "tangent", tangents, inputs);
    auto xs = prepare("jvp", inputs, options.create_graph);
    auto y = call("jvp", f, xs);
    // J t = d/du <J^T u, t> for a dummy cotangent u: J^T u is linear in u.
    auto u = BasicTensor<T>::zeros(y.shape_vector(), /*requires_grad=*/true);
    auto jt_u = pullback(y, xs, u, /*create_graph=*/true, /*retain_graph=*/true);
    std::vector<BasicTensor<T>> ts;
    for (const auto& t : tangents) ts.push_back(options.create_graph ? t : t.detach());
    auto s = inner(jt_u, ts);
    BasicTensor<T> tangent;
    if (s.defined()) tangent = grad(s, {u}, {}, {false, options.create_graph})[0];
    if (!tangent.defined()) tangent = BasicTensor<T>::zeros(y.shape_vector());
    return {result(y, options.create_graph), tangent};
}

template <class T>
std::vector<BasicTensor<T>> jacobian(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs, Options options) {
    EnableGradGuard recording;
    auto xs = prepare("jacobian", inputs, options.create_graph);
    auto y = call("jacobian", f, xs);
    return jacobians<T>({y}, xs, options.create_graph)[0];
}

template <class T>
std::vector<std::vector<BasicTensor<T>>> hessian(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs,
                                                 Options options) {
    EnableGradGuard recording;
    auto xs = prepare("hessian", inputs, options.create_graph);
    auto y = call("hessian", f, xs);
    require_scalar("hessian", y);
    // The Jacobian of the gradient: the gradient must itself be on the graph.
    auto gs = pullback(y, xs, BasicTensor<T>::ones(y.shape_vector()), /*create_graph=*/true, /*retain_graph=*/true);
    return jacobians(gs, xs, options.create_graph);
}

template <class T>
HvpResult<T> hvp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs, const std::vector<BasicTensor<T>>& v,
                 Options options) {
    EnableGradGuard recording;
    require_like("hvp", "v", v, inputs);
    auto xs = prepare("hvp", inputs, options.create_graph);
    auto y = call("hvp", f, xs);
    require_scalar("hvp", y);
    auto gs = pullback(y, xs, BasicTensor<T>::ones(y.shape_vector()), /*create_graph=*/true, /*retain_graph=*/true);
    std::vector<BasicTensor<T>> vs;
    for (const auto& t : v) vs.push_back(options.create_graph ? t : t.detach());
    // H v = d<grad f, v>/dx.
    auto s = inner(gs, vs);
    std::vector<BasicTensor<T>> hv(xs.size());
    if (s.defined()) hv = pullback(s, xs, BasicTensor<T>::ones(s.shape_vector()), options.create_graph, false);
    for (std::size_t k = 0; k < xs.size(); ++k)
        if (!hv[k].defined()) hv[k] = BasicTensor<T>::zeros(xs[k].shape_vector());
    return {result(y, options.create_graph), std::move(hv)};
}

#define TAPEGRAD_FUNCTIONAL(T)                                                                                        \
    template VjpResult<T> vjp(const Fn<T>&, const std::vector<BasicTensor<T>>&, const BasicTensor<T>&, Options);     \
    template JvpResult<T> jvp(const Fn<T>&, const std::vector<BasicTensor<T>>&, const std::vector<BasicTensor<T>>&,  \
                              Options);                                                                               \
    template std::vector<BasicTensor<T>> jacobian(const Fn<T>&, const std::vector<BasicTensor<T>>&, Options);        \
    template std::vector<std::vector<BasicTensor<T>>> hessian(const Fn<T>&, const std::vector<BasicTensor<T>>&,      \
                                                              Options);                                               \
    template HvpResult<T> hvp(const Fn<T>&, const std::vector<BasicTensor<T>>&, const std::vector<BasicTensor<T>>&,  \
                              Options);
TAPEGRAD_FUNCTIONAL(float)
TAPEGRAD_FUNCTIONAL(double)
#undef TAPEGRAD_FUNCTIONAL

}  // namespace tapegrad::functional
