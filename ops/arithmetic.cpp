// Elementwise arithmetic: each op's forward and vector-Jacobian product side
// by side. Gradients may keep the broadcast shape; the engine reduces them
// to each input's shape.
#include <tapegrad/ops/arithmetic.hpp>

#include <algorithm>
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>
#include <tapegrad/ops/compare.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad {

using detail::Grads;
using detail::no_grad_op;
using detail::Op;
using detail::VjpContext;
using kernels::map;

template <class T>
BasicTensor<T> add(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    detail::check_broadcast("add", a.shape(), b.shape());
    Op<T> op("add", {a, b});
    auto y = op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x + y; }));
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g, g}; });
}

template <class T>
BasicTensor<T> sub(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    detail::check_broadcast("sub", a.shape(), b.shape());
    Op<T> op("sub", {a, b});
    auto y = op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x - y; }));
    return op.record(y, [](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g, c.needs(1) ? neg(g) : BasicTensor<T>()};
    });
}

template <class T>
BasicTensor<T> mul(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    detail::check_broadcast("mul", a.shape(), b.shape());
    Op<T> op("mul", {a, b});
    auto y = op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x * y; }));
    return op.record(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{c.needs(0) ? g * c.unpack(sb) : BasicTensor<T>(),
                        c.needs(1) ? g * c.unpack(sa) : BasicTensor<T>()};
    });
}

template <class T>
BasicTensor<T> div(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    detail::check_broadcast("div", a.shape(), b.shape());
    Op<T> op("div", {a, b});
    auto y = op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x / y; }));
    return op.record(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& c, const BasicTensor<T>& g) {
        const auto& b = c.unpack(sb);
        BasicTensor<T> ga = g / b;  // d(a/b)/da = 1/b
        // d(a/b)/db = -a/b^2 = -(g/b) * (a/b)
        return Grads<T>{ga, c.needs(1) ? neg(ga * c.unpack(sa) / b) : BasicTensor<T>()};
    });
}

template <class T>
BasicTensor<T> neg(const BasicTensor<T>& a) {
    Op<T> op("neg", {a});
    auto y = op.forward(kernels::elementwise<T, 1>([](T x) { return -x; }));
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{neg(g)}; });
}

template <class T>
BasicTensor<T> add(const BasicTensor<T>& a, Scalar<T> b) {
    Op<T> op("add_scalar", {a});
    auto y = op.forward(kernels::elementwise<T, 1>([b = T(b)](T x) { return x + b; }));
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g}; });
}

template <class T>
BasicTensor<T> mul(const BasicTensor<T>& a, Scalar<T> b) {
    Op<T> op("mul_scalar", {a});
    auto y = op.forward(kernels::elementwise<T, 1>([b = T(b)](T x) { return x * b; }));
    return op.record(y, [b](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g * b}; });
}

template <class T>
BasicTensor<T> rsub(Scalar<T> a, const BasicTensor<T>& b) {
    Op<T> op("rsub_scalar", {b});
    auto y = op.forward(kernels::elementwise<T, 1>([a = T(a)](T x) { return a - x; }));
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{neg(g)}; });
}

template <class T>
BasicTensor<T> rdiv(Scalar<T> a, const BasicTensor<T>& b) {
    Op<T> op("rdiv_scalar", {b});
    auto y = op.forward(kernels::elementwise<T, 1>([a = T(a)](T x) { return a / x; }));
    // d(a/b)/db = -a/b^2 = -y/b
    return op.record(y, [sy = op.save_output(y), sb = op.save(b)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{neg(g * c.unpack(sy) / c.unpack(sb))};
    });
}

template <class T>
BasicTensor<T> pow(const BasicTensor<T>& x, Scalar<T> p) {
    Op<T> op("pow_scalar", {x});
    // std::pow per element: xsimd's vectorised pow with a scalar exponent is
    // wrong at special values (0^0 = 0, 0^-1 = 0, inf^0 = NaN), so pow(x, 0)
    // at x = 0 was 0 (found by the graph fuzzer).
    const T e = p;
    auto y = e == T(2) ? op.forward(kernels::elementwise<T, 1>([](T v) { return v * v; }))
                       : op.forward(kernels::elementwise<T, 1>([e](T v) { return std::pow(v, e); }));
    return op.record(y, [sx = op.save(x), p](VjpContext<T>& c, const BasicTensor<T>& g) {
        if (p == Scalar<T>(0)) return Grads<T>{g * Scalar<T>(0)};
        if (p == Scalar<T>(1)) return Grads<T>{g};
        return Grads<T>{g * pow(c.unpack(sx), p - Scalar<T>(1)) * p};
    });
}

template <class T>
BasicTensor<T> pow(const BasicTensor<T>& x, const BasicTensor<T>& p) {
    detail::check_broadcast("pow", x.shape(), p.shape());
    Op<T> op("pow", {x, p});
    // std::pow per element, as for a scalar exponent (see pow_elements):
    // xsimd's pow is wrong at 0^0, inf^0, NaN^0 and 0^-1, and converts NaN
    // and huge intermediates to integers (undefined behaviour; found by the
    // API fuzzer under clang's UBSan).
    auto y = op.forward(kernels::elementwise<T, 2>([](T a, T b) { return std::pow(a, b); }));
    return op.record(y, [sx = op.save(x), sp = op.save(p), sy = op.save_output(y)](VjpContext<T>& c,
                                                                                 const BasicTensor<T>& g) {
        const auto& x = c.unpack(sx);
        const auto& p = c.unpack(sp);
        BasicTensor<T> gx, gp;
        if (c.needs(0)) gx = g * p * pow(x, p - Scalar<T>(1));
        if (c.needs(1)) {
            // d/dp x^p = x^p log x, taken as 0 where x <= 0 (log undefined).
            auto positive = gt(x, BasicTensor<T>::scalar(0));
            gp = g * c.unpack(sy) * log(where(positive, x, BasicTensor<T>::scalar(1)));
        }
        return Grads<T>{gx, gp};
    });
}

namespace {
// The subgradient of max(a, b) (min when !greater) with respect to a: 1
// where a wins, 0 where b wins, 1/2 at ties; with respect to b it is 1 - that.
template <class T>
T win(T a, T b, bool greater) {
    return (greater ? a > b : a < b) ? T(1) : a == b ? T(0.5) : T(0);
}

template <class T>
BasicTensor<T> extremum(const char* name, const BasicTensor<T>& a, const BasicTensor<T>& b, bool greater) {
    detail::check_broadcast(name, a.shape(), b.shape());
    Op<T> op(name, {a, b});
    auto y = greater ? op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x > y ? x : y; }))
                     : op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x < y ? x : y; }));
    return op.record(y, [sa = op.save(a), sb = op.save(b), greater](VjpContext<T>& c, const BasicTensor<T>& g) {
        const auto &va = c.unpack(sa).value(), &vb = c.unpack(sb).value();
        if (!c.create_graph()) {  // one pass per input instead of a mask and a product
            auto part = [&](bool for_a) {
                return BasicTensor<T>(map<T>([greater, for_a](T g, T x, T y) {
                    const T w = win(x, y, greater);
                    return g * (for_a ? w : T(1) - w);
                }, g.value(), va, vb));
            };
            return Grads<T>{c.needs(0) ? part(true) : BasicTensor<T>(), c.needs(1) ? part(false) : BasicTensor<T>()};
        }
        auto mask = no_grad_op<T>("extremum_mask", {c.unpack(sa), c.unpack(sb)},
                                kernels::elementwise<T, 2>([greater](T u, T v) { return win(u, v, greater); }));
        return Grads<T>{c.needs(0) ? g * mask : BasicTensor<T>(), c.needs(1) ? g * (Scalar<T>(1) - mask) : BasicTensor<T>()};
    });
}

template <class T>
BasicTensor<T> extremum(const char* name, const BasicTensor<T>& a, T b, bool greater) {
    Op<T> op(name, {a});
    auto y = greater ? op.forward(kernels::elementwise<T, 1>([b](T x) { return x > b ? x : b; }))
                     : op.forward(kernels::elementwise<T, 1>([b](T x) { return x < b ? x : b; }));
    return op.record(y, [sa = op.save(a), b, greater](VjpContext<T>& c, const BasicTensor<T>& g) {
        const auto& v = c.unpack(sa).value();
        if (!c.create_graph())  // one pass: g where a wins, g/2 at ties, else 0
            return Grads<T>{BasicTensor<T>(map<T>([b, greater](T g, T x) { return g * win(x, b, greater); }, g.value(), v))};
        return Grads<T>{g * no_grad_op<T>("extremum_mask", {c.unpack(sa)},
                                                 kernels::elementwise<T, 1>([b, greater](T u) { return win(u, b, greater); }))};
    });
}
}  // namespace

template <class T>
BasicTensor<T> maximum(const BasicTensor<T>& a, const BasicTensor<T>& b) { return extremum("maximum", a, b, true); }
template <class T>
BasicTensor<T> minimum(const BasicTensor<T>& a, const BasicTensor<T>& b) { return extremum("minimum", a, b, false); }
template <class T>
BasicTensor<T> maximum(const BasicTensor<T>& a, Scalar<T> b) { return extremum<T>("maximum_scalar", a, b, true); }
template <class T>
BasicTensor<T> minimum(const BasicTensor<T>& a, Scalar<T> b) { return extremum<T>("minimum_scalar", a, b, false); }

template <class T>
BasicTensor<T> where(const BasicTensor<T>& cond, const BasicTensor<T>& a, const BasicTensor<T>& b) {
    detail::check_broadcast("where", cond.shape(), a.shape());
    detail::check_broadcast("where", cond.shape(), b.shape());
    detail::check_broadcast("where", a.shape(), b.shape());
    Op<T> op("where", {cond, a, b});
    auto y = op.forward(kernels::elementwise<T, 3>([](T k, T x, T y) { return k != T(0) ? x : y; }));
    return op.record(y, [sc = op.save(cond)](VjpContext<T>& c, const BasicTensor<T>& g) {
        const auto& cv = c.unpack(sc).value();
        if (!c.create_graph()) {  // one pass per input instead of a mask and a product
            auto part = [&](bool keep) {
                return BasicTensor<T>(map<T>([keep](T c, T g) { return (c != T(0)) == keep ? g : T(0); }, cv, g.value()));
            };
            return Grads<T>{BasicTensor<T>(), c.needs(1) ? part(true) : BasicTensor<T>(),
                            c.needs(2) ? part(false) : BasicTensor<T>()};
        }
        // Selected, not multiplied by a 0/1 mask: an inf or NaN in g where the
        // other input was chosen stays out (inf * 0 is NaN), as without create_graph.
        const auto cond = c.unpack(sc);
        const auto zero = BasicTensor<T>::scalar(T(0));
        return Grads<T>{BasicTensor<T>(), c.needs(1) ? where(cond, g, zero) : BasicTensor<T>(),
                        c.needs(2) ? where(cond, zero, g) : BasicTensor<T>()};
    });
}

template <class T>
BasicTensor<T> clamp(const BasicTensor<T>& x, Scalar<T> lo, Scalar<T> hi) {
    if (!(lo <= hi))
        throw ValueError("clamp: lo must be <= hi, got lo=" + std::to_string(lo) + " hi=" + std::to_string(hi));
    Op<T> op("clamp", {x});
    auto y = op.forward(kernels::elementwise<T, 1>([lo = T(lo), hi = T(hi)](T v) { return v < lo ? lo : hi < v ? hi : v; }));
    return op.record(y, [sx = op.save(x), lo, hi](VjpContext<T>& c, const BasicTensor<T>& g) {
        auto inside = no_grad_op<T>("clamp_mask", {c.unpack(sx)},
                                           kernels::elementwise<T, 1>([lo = T(lo), hi = T(hi)](T v) {
                                               return v >= lo && v <= hi ? T(1) : T(0);
                                           }));
        return Grads<T>{where(inside, g, BasicTensor<T>::scalar(T(0)))};  // selected: inf * 0 would be NaN
    });
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
    template BasicTensor<T> add(const BasicTensor<T>&, const BasicTensor<T>&);                   \
    template BasicTensor<T> sub(const BasicTensor<T>&, const BasicTensor<T>&);                   \
    template BasicTensor<T> mul(const BasicTensor<T>&, const BasicTensor<T>&);                   \
    template BasicTensor<T> div(const BasicTensor<T>&, const BasicTensor<T>&);                   \
    template BasicTensor<T> neg(const BasicTensor<T>&);                                          \
    template BasicTensor<T> add(const BasicTensor<T>&, Scalar<T>);                               \
    template BasicTensor<T> mul(const BasicTensor<T>&, Scalar<T>);                               \
    template BasicTensor<T> rsub(Scalar<T>, const BasicTensor<T>&);                              \
    template BasicTensor<T> rdiv(Scalar<T>, const BasicTensor<T>&);                              \
    template BasicTensor<T> pow(const BasicTensor<T>&, Scalar<T>);                               \
    template BasicTensor<T> pow(const BasicTensor<T>&, const BasicTensor<T>&);                   \
    template BasicTensor<T> maximum(const BasicTensor<T>&, const BasicTensor<T>&);               \
    template BasicTensor<T> minimum(const BasicTensor<T>&, const BasicTensor<T>&);               \
    template BasicTensor<T> maximum(const BasicTensor<T>&, Scalar<T>);                           \
    template BasicTensor<T> minimum(const BasicTensor<T>&, Scalar<T>);                           \
    template BasicTensor<T> where(const BasicTensor<T>&, const BasicTensor<T>&, const BasicTensor<T>&); \
    template BasicTensor<T> clamp(const BasicTensor<T>&, Scalar<T>, Scalar<T>);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
