// Elementwise arithmetic with numpy broadcasting: + - * / and unary -,
// pow, maximum/minimum, where, clamp. Tensor-scalar forms accept a plain
// number on either side.
#pragma once

#include <type_traits>

#include <tapegrad/core/mixed_dtypes.hpp>
#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T> using Scalar = detail::identity_t<T>;

template <class T> BasicTensor<T> add(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> sub(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> mul(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> div(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> neg(const BasicTensor<T>& a);

// Tensor-scalar forms (no scalar tensor is built; cheaper on the tape).
template <class T> BasicTensor<T> add(const BasicTensor<T>& a, Scalar<T> b);
template <class T> BasicTensor<T> mul(const BasicTensor<T>& a, Scalar<T> b);
template <class T> BasicTensor<T> rsub(Scalar<T> a, const BasicTensor<T>& b);  // a - b
template <class T> BasicTensor<T> rdiv(Scalar<T> a, const BasicTensor<T>& b);  // a / b

// x^p. For a scalar exponent the gradient is p*x^(p-1) (0 at x=0 for p>=1).
// For a tensor exponent d/dp = x^p*log(x), defined for x > 0 (x = 0 gives 0).
template <class T> BasicTensor<T> pow(const BasicTensor<T>& x, Scalar<T> p);
template <class T> BasicTensor<T> pow(const BasicTensor<T>& x, const BasicTensor<T>& p);

// At ties (a == b) the gradient is split evenly between both operands, so
// maximum(x, x) has gradient 1 with respect to x (as in PyTorch).
template <class T> BasicTensor<T> maximum(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> minimum(const BasicTensor<T>& a, const BasicTensor<T>& b);
// Against a constant: at a tie the tensor gets half the gradient.
template <class T> BasicTensor<T> maximum(const BasicTensor<T>& a, Scalar<T> b);
template <class T> BasicTensor<T> minimum(const BasicTensor<T>& a, Scalar<T> b);

// cond != 0 picks a, else b. cond gets no gradient.
template <class T> BasicTensor<T> where(const BasicTensor<T>& cond, const BasicTensor<T>& a, const BasicTensor<T>& b);
// Limits to [lo, hi]; gradient 1 strictly inside, 0 outside, 1 at the bounds.
template <class T> BasicTensor<T> clamp(const BasicTensor<T>& x, Scalar<T> lo, Scalar<T> hi);

// Operators.
template <class T> BasicTensor<T> operator+(const BasicTensor<T>& a, const BasicTensor<T>& b) { return add(a, b); }
template <class T> BasicTensor<T> operator-(const BasicTensor<T>& a, const BasicTensor<T>& b) { return sub(a, b); }
template <class T> BasicTensor<T> operator*(const BasicTensor<T>& a, const BasicTensor<T>& b) { return mul(a, b); }
template <class T> BasicTensor<T> operator/(const BasicTensor<T>& a, const BasicTensor<T>& b) { return div(a, b); }
template <class T> BasicTensor<T> operator-(const BasicTensor<T>& a) { return neg(a); }
template <class T> BasicTensor<T> operator+(const BasicTensor<T>& a, Scalar<T> b) { return add(a, b); }
template <class T> BasicTensor<T> operator+(Scalar<T> a, const BasicTensor<T>& b) { return add(b, a); }
template <class T> BasicTensor<T> operator-(const BasicTensor<T>& a, Scalar<T> b) { return add(a, -b); }
template <class T> BasicTensor<T> operator-(Scalar<T> a, const BasicTensor<T>& b) { return rsub(a, b); }
template <class T> BasicTensor<T> operator*(const BasicTensor<T>& a, Scalar<T> b) { return mul(a, b); }
template <class T> BasicTensor<T> operator*(Scalar<T> a, const BasicTensor<T>& b) { return mul(b, a); }
template <class T> BasicTensor<T> operator/(const BasicTensor<T>& a, Scalar<T> b) { return mul(a, Scalar<T>(1) / b); }
template <class T> BasicTensor<T> operator/(Scalar<T> a, const BasicTensor<T>& b) { return rdiv(a, b); }

// float32 with float64: a compile error naming the op (core/mixed_dtypes.hpp).
TAPEGRAD_NO_MIXED(operator+)
TAPEGRAD_NO_MIXED(operator-)
TAPEGRAD_NO_MIXED(operator*)
TAPEGRAD_NO_MIXED(operator/)
TAPEGRAD_NO_MIXED(add)
TAPEGRAD_NO_MIXED(sub)
TAPEGRAD_NO_MIXED(mul)
TAPEGRAD_NO_MIXED(div)
TAPEGRAD_NO_MIXED(pow)
TAPEGRAD_NO_MIXED(maximum)
TAPEGRAD_NO_MIXED(minimum)
template <class C, class A, class B, std::enable_if_t<detail::mixed_dtypes<C, A, B>, int> = 0>
BasicTensor<A> where(const BasicTensor<C>&, const BasicTensor<A>&, const BasicTensor<B>&) {
    static_assert(!detail::mixed_dtypes<C, A, B>, TAPEGRAD_MIXED_MESSAGE("where"));
    return {};
}

}  // namespace tapegrad
