// Elementwise functions of one tensor.
#pragma once

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T> BasicTensor<T> exp(const BasicTensor<T>& x);
template <class T> BasicTensor<T> log(const BasicTensor<T>& x);
template <class T> BasicTensor<T> log1p(const BasicTensor<T>& x);
template <class T> BasicTensor<T> sqrt(const BasicTensor<T>& x);
template <class T> BasicTensor<T> abs(const BasicTensor<T>& x);   // subgradient 0 at x = 0
template <class T> BasicTensor<T> tanh(const BasicTensor<T>& x);
template <class T> BasicTensor<T> erf(const BasicTensor<T>& x);

// Not differentiable: results carry no graph (gradient zero almost everywhere).
template <class T> BasicTensor<T> sign(const BasicTensor<T>& x);  // -1, 0, 1
template <class T> BasicTensor<T> step(const BasicTensor<T>& x);  // 1 where x > 0, else 0

}  // namespace tapegrad
