// Activation functions, composed from the tensor ops (no hand-written
// derivatives: autodiff differentiates the composition). Where a naive
// formula overflows, the composition avoids it: elu exponentiates only the
// non-positive part, log_softmax subtracts a logsumexp, so inputs of +-1000
// give finite values and finite gradients even in float32.
//
// At kinks (relu and friends at 0) the gradient is the left derivative,
// as in PyTorch: relu'(0) = 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad::nn {

// tanh, abs (absolute-value rectification), sigmoid and softplus are the
// ops themselves (ops/unary.hpp; sigmoid and softplus are primitives with
// their own VJP: one function each, so an unqualified sigmoid(x) is never
// ambiguous between tapegrad:: and tapegrad::nn::).
using tapegrad::abs;
using tapegrad::sigmoid;
using tapegrad::softplus;
using tapegrad::tanh;

template <class T> BasicTensor<T> identity(const BasicTensor<T>& x);
// 1 where x > at, else 0. Its gradient is zero everywhere (it is flat almost
// everywhere, and the jump has no useful derivative): the result stays on the
// graph, so a network using it still runs backward, but nothing learns
// through it. Use a smooth activation to train.
template <class T> BasicTensor<T> threshold(const BasicTensor<T>& x, Scalar<T> at = 0);
template <class T> BasicTensor<T> relu(const BasicTensor<T>& x);
template <class T> BasicTensor<T> leaky_relu(const BasicTensor<T>& x, Scalar<T> alpha = T(0.01));
// max(x, 0) + slope * min(x, 0); `slope` broadcasts against x (one slope, or
// one per feature of the last axis).
template <class T> BasicTensor<T> prelu(const BasicTensor<T>& x, const BasicTensor<T>& slope);
TAPEGRAD_NO_MIXED(prelu)
template <class T> BasicTensor<T> elu(const BasicTensor<T>& x, Scalar<T> alpha = 1);

enum class GeluApproximation { none, tanh };
// x * Phi(x) with the normal CDF Phi through erf, or the tanh approximation.
template <class T> BasicTensor<T> gelu(const BasicTensor<T>& x, GeluApproximation approx = GeluApproximation::none);
// x * sigmoid(beta * x); beta = 1 is SiLU.
template <class T> BasicTensor<T> silu(const BasicTensor<T>& x, Scalar<T> beta = 1);
template <class T> BasicTensor<T> swish(const BasicTensor<T>& x, Scalar<T> beta = 1) { return silu(x, beta); }

template <class T> BasicTensor<T> softmax(const BasicTensor<T>& x, std::ptrdiff_t axis = -1);
template <class T> BasicTensor<T> log_softmax(const BasicTensor<T>& x, std::ptrdiff_t axis = -1);

// A stateless activation as a module, for Sequential. Names: identity,
// threshold, sigmoid, tanh, relu, leaky_relu, abs, elu, softplus, gelu,
// gelu_tanh, silu, softmax, log_softmax (the last two along the last axis).
template <class T>
class Activation : public BasicModule<T> {
public:
    using Fn = std::function<BasicTensor<T>(const BasicTensor<T>&)>;
    Activation(std::string type_name, Fn fn) : BasicModule<T>(std::move(type_name)), fn_(std::move(fn)) {}
    BasicTensor<T> forward(const BasicTensor<T>& x) override { return fn_(x); }

private:
    Fn fn_;
};

// The module for a name listed above; ValueError naming it if unknown.
template <class T> std::shared_ptr<BasicModule<T>> make_activation(const std::string& name);

// PReLU: leaky ReLU whose negative slope is learned. `num_slopes` is 1 (one
// shared slope) or the size of the input's last axis.
template <class T>
class PReLU : public BasicModule<T> {
public:
    explicit PReLU(std::size_t num_slopes = 1, T init = T(0.25));
    BasicTensor<T> forward(const BasicTensor<T>& x) override { return prelu(x, slope); }
    BasicTensor<T> slope;

protected:
    std::string extra_repr() const override { return "num_slopes=" + std::to_string(slope.size()); }
};

// Randomized leaky ReLU: in training each element's negative slope is drawn
// uniformly from [lower, upper]; in evaluation it is the mean (lower+upper)/2.
template <class T>
class RReLU : public BasicModule<T> {
public:
    explicit RReLU(T lower = T(1) / 8, T upper = T(1) / 3, std::uint64_t seed = 0);
    BasicTensor<T> forward(const BasicTensor<T>& x) override;
    Generator& generator() { return gen_; }

protected:
    std::string extra_repr() const override;

private:
    T lower_, upper_;
    Generator gen_;
};

extern template class PReLU<float>;
extern template class PReLU<double>;
extern template class RReLU<float>;
extern template class RReLU<double>;

}  // namespace tapegrad::nn
