// Functional transforms: derivatives of a function of tensors, as values.
//
//   using namespace tapegrad::functional;
//   auto f = [](const std::vector<Tensor64>& x) { return (x[0].tanh() * x[1]).sum(); };
//   auto [y, g] = vjp(f, {a, b});              // y = f(a, b), g = {df/da, df/db}
//   auto H = hessian(f, {a, b});               // H[i][j]: shape of input i ++ input j
//   auto J = jacobian([](const Tensor64& x) { return x.exp(); }, x);   // shape x ++ x
//
// Each transform calls f on copies of the inputs, so the caller's tensors are
// neither changed nor given a .grad. With Options::create_graph the results
// stay on the graph (connected to inputs that require grad), so transforms
// compose: the jacobian of a function that returns a vjp, a loss on a
// Hessian-vector product. Without it they are plain values.
//
// jvp and hvp use reverse mode only: jvp is the derivative of a VJP with
// respect to its (dummy) cotangent, hvp the gradient of <grad f, v>.
// jacobian and hessian run one backward pass per output element.
#pragma once

#include <functional>
#include <initializer_list>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// A function of several tensors returning one: what the transforms and
// checkpoint() take (BasicTensorFunction<double> is gradcheck's TensorFunction).
template <class T>
using BasicTensorFunction = std::function<BasicTensor<T>(const std::vector<BasicTensor<T>>&)>;
// A function of one tensor returning one.
template <class T>
using UnaryTensorFunction = std::function<BasicTensor<T>(const BasicTensor<T>&)>;

namespace functional {

// The function parameter is not used to deduce T (a lambda is no
// std::function): T comes from the tensors.
template <class T>
using Fn = detail::identity_t<BasicTensorFunction<T>>;  // not deduced: T comes from the tensors
template <class T>
using Fn1 = detail::identity_t<UnaryTensorFunction<T>>;

struct Options {
    bool create_graph = false;  // results on the graph, differentiable again
};

template <class T>
struct VjpResult {
    BasicTensor<T> output;               // f(inputs)
    std::vector<BasicTensor<T>> grads;   // v^T J_k for every input k (zeros where f ignores it)
};
template <class T>
struct JvpResult {
    BasicTensor<T> output;   // f(inputs)
    BasicTensor<T> tangent;  // sum_k J_k t_k, shaped like the output
};
template <class T>
struct HvpResult {
    BasicTensor<T> output;             // f(inputs), one element
    std::vector<BasicTensor<T>> hvp;   // sum_j H_kj v_j for every input k
};

// v must have the output's shape; without v the output must have one
// element (v = 1). ShapeError otherwise.
template <class T>
VjpResult<T> vjp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs, const BasicTensor<T>& v = {},
                 Options options = {});
// One tangent per input, shaped like it.
template <class T>
JvpResult<T> jvp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs,
                 const std::vector<BasicTensor<T>>& tangents, Options options = {});
// One Jacobian per input, of shape output ++ input.
template <class T>
std::vector<BasicTensor<T>> jacobian(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs,
                                     Options options = {});
// f must return one element. H[i][j] has shape input i ++ input j.
template <class T>
std::vector<std::vector<BasicTensor<T>>> hessian(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs,
                                                 Options options = {});
// f must return one element; one v per input, shaped like it.
template <class T>
HvpResult<T> hvp(const Fn<T>& f, const std::vector<BasicTensor<T>>& inputs,
                 const std::vector<BasicTensor<T>>& v, Options options = {});

// ---- Convenience forms: braced lists of inputs ({x, w}) and functions of
// one tensor. Callables are converted to std::function here.

template <class T>
VjpResult<T> vjp(const Fn<T>& f, std::initializer_list<BasicTensor<T>> inputs, const BasicTensor<T>& v = {},
                 Options options = {}) {
    return vjp<T>(f, std::vector<BasicTensor<T>>(inputs), v, options);
}
template <class T>
JvpResult<T> jvp(const Fn<T>& f, std::initializer_list<BasicTensor<T>> inputs,
                 std::initializer_list<BasicTensor<T>> tangents, Options options = {}) {
    return jvp<T>(f, std::vector<BasicTensor<T>>(inputs), std::vector<BasicTensor<T>>(tangents), options);
}
template <class T>
std::vector<BasicTensor<T>> jacobian(const Fn<T>& f, std::initializer_list<BasicTensor<T>> inputs,
                                     Options options = {}) {
    return jacobian<T>(f, std::vector<BasicTensor<T>>(inputs), options);
}
template <class T>
std::vector<std::vector<BasicTensor<T>>> hessian(const Fn<T>& f, std::initializer_list<BasicTensor<T>> inputs,
                                                 Options options = {}) {
    return hessian<T>(f, std::vector<BasicTensor<T>>(inputs), options);
}
template <class T>
HvpResult<T> hvp(const Fn<T>& f, std::initializer_list<BasicTensor<T>> inputs, std::initializer_list<BasicTensor<T>> v,
                 Options options = {}) {
    return hvp<T>(f, std::vector<BasicTensor<T>>(inputs), std::vector<BasicTensor<T>>(v), options);
}

namespace detail_functional {
template <class T>
BasicTensorFunction<T> on_first(UnaryTensorFunction<T> f) {
    return [f = std::move(f)](const std::vector<BasicTensor<T>>& x) { return f(x[0]); };
}
}  // namespace detail_functional

// f of one tensor: the same results for the one input.
template <class T>
VjpResult<T> vjp(const Fn1<T>& f, const BasicTensor<T>& x, const BasicTensor<T>& v = {}, Options options = {}) {
    return vjp<T>(detail_functional::on_first<T>(f), {x}, v, options);
}
template <class T>
JvpResult<T> jvp(const Fn1<T>& f, const BasicTensor<T>& x, const BasicTensor<T>& t, Options options = {}) {
    return jvp<T>(detail_functional::on_first<T>(f), {x}, {t}, options);
}
template <class T>
BasicTensor<T> jacobian(const Fn1<T>& f, const BasicTensor<T>& x, Options options = {}) {
    return jacobian<T>(detail_functional::on_first<T>(f), {x}, options)[0];
}
template <class T>
BasicTensor<T> hessian(const Fn1<T>& f, const BasicTensor<T>& x, Options options = {}) {
    return hessian<T>(detail_functional::on_first<T>(f), {x}, options)[0][0];
}
template <class T>
HvpResult<T> hvp(const Fn1<T>& f, const BasicTensor<T>& x, const BasicTensor<T>& v, Options options = {}) {
    return hvp<T>(detail_functional::on_first<T>(f), {x}, {v}, options);
}

}  // namespace functional
}  // namespace tapegrad
