// Elementwise functions of one tensor: forward and vector-Jacobian product
// side by side. Derivatives that are functions of the output (exp, tanh,
// sqrt) reuse the saved output instead of recomputing.
#include <tapegrad/ops/unary.hpp>

#include <cmath>

#include <xtensor/xmath.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/kernels/math.hpp>

namespace tapegrad {

using detail::Grads;
using detail::no_grad_op;
using detail::Op;
using detail::VjpContext;
using kernels::Fn;

template <class T>
BasicTensor<T> exp(const BasicTensor<T>& x) {
    Op<T> op("exp", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::exp});
    return op.record(y, [sy = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g * c.unpack(sy)};
    });
}

template <class T>
BasicTensor<T> log(const BasicTensor<T>& x) {
    Op<T> op("log", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::log});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g / c.unpack(sx)};
    });
}

template <class T>
BasicTensor<T> log1p(const BasicTensor<T>& x) {
    Op<T> op("log1p", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::log1p});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g / (c.unpack(sx) + Scalar<T>(1))};
    });
}

template <class T>
BasicTensor<T> sqrt(const BasicTensor<T>& x) {
    Op<T> op("sqrt", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::sqrt});
    return op.record(y, [sy = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g / (c.unpack(sy) * Scalar<T>(2))};  // 1 / (2 sqrt(x))
    });
}

template <class T>
BasicTensor<T> abs(const BasicTensor<T>& x) {
    Op<T> op("abs", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::abs});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g * sign(c.unpack(sx))};  // subgradient 0 at 0
    });
}

template <class T>
BasicTensor<T> tanh(const BasicTensor<T>& x) {
    Op<T> op("tanh", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::tanh});
    return op.record(y, [sy = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        auto t = c.unpack(sy);
        return Grads<T>{g * (Scalar<T>(1) - t * t)};
    });
}

template <class T>
BasicTensor<T> erf(const BasicTensor<T>& x) {
    Op<T> op("erf", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::erf});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        // d erf(x)/dx = 2/sqrt(pi) exp(-x^2)
        const auto& v = c.unpack(sx);
        return Grads<T>{g * exp(neg(v * v)) * Scalar<T>(2.0 / std::sqrt(M_PI))};
    });
}

template <class T>
BasicTensor<T> sin(const BasicTensor<T>& x) {
    Op<T> op("sin", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::sin});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g * cos(c.unpack(sx))};
    });
}

template <class T>
BasicTensor<T> cos(const BasicTensor<T>& x) {
    Op<T> op("cos", {x});
    auto y = op.forward(kernels::Unary<T>{Fn::cos});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{neg(g * sin(c.unpack(sx)))};
    });
}

template <class T>
BasicTensor<T> sigmoid(const BasicTensor<T>& x) {
    Op<T> op("sigmoid", {x});
    // Computed from exp(-|x|), which never overflows (kernels/math.cpp).
    auto y = op.forward(kernels::Unary<T>{Fn::sigmoid});
    return op.record(y, [sy = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        auto s = c.unpack(sy);  // sigmoid' = s (1 - s): 0, not NaN, where s saturates
        return Grads<T>{g * s * rsub(Scalar<T>(1), s)};
    });
}

template <class T>
BasicTensor<T> softplus(const BasicTensor<T>& x) {
    Op<T> op("softplus", {x});
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|) (kernels/math.cpp).
    auto y = op.forward(kernels::Unary<T>{Fn::softplus});
    return op.record(y, [sx = op.save(x)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g * sigmoid(c.unpack(sx))};  // a recorded op: second derivatives work
    });
}

template <class T>
BasicTensor<T> sign(const BasicTensor<T>& x) {
    return no_grad_op<T>("sign", {x}, kernels::elementwise<T, 1>([](T e) { return e > T(0) ? T(1) : e < T(0) ? T(-1) : T(0); }));
}

template <class T>
BasicTensor<T> step(const BasicTensor<T>& x) {
    return no_grad_op<T>("step", {x}, kernels::elementwise<T, 1>([](T e) { return e > T(0) ? T(1) : T(0); }));
}

#define TAPEGRAD_INSTANTIATE(T)                          \
    template BasicTensor<T> exp(const BasicTensor<T>&);   \
    template BasicTensor<T> log(const BasicTensor<T>&);   \
    template BasicTensor<T> log1p(const BasicTensor<T>&); \
    template BasicTensor<T> sqrt(const BasicTensor<T>&);  \
    template BasicTensor<T> abs(const BasicTensor<T>&);   \
    template BasicTensor<T> tanh(const BasicTensor<T>&);  \
    template BasicTensor<T> erf(const BasicTensor<T>&);   \
    template BasicTensor<T> sin(const BasicTensor<T>&);   \
    template BasicTensor<T> cos(const BasicTensor<T>&);   \
    template BasicTensor<T> sigmoid(const BasicTensor<T>&); \
    template BasicTensor<T> softplus(const BasicTensor<T>&); \
    template BasicTensor<T> sign(const BasicTensor<T>&);  \
    template BasicTensor<T> step(const BasicTensor<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
