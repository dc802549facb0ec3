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
template <class T> BasicTensor<T> sin(const BasicTensor<T>& x);
template <class T> BasicTensor<T> cos(const BasicTensor<T>& x);
// 1 / (1 + e^-x) and log(1 + e^x), computed without overflow: only e^-|x| is
// ever formed, so +-1000 gives finite values and gradients in float32.
template <class T> BasicTensor<T> sigmoid(const BasicTensor<T>& x);
template <class T> BasicTensor<T> softplus(const BasicTensor<T>& x);

// Not differentiable: results carry no graph (gradient zero almost everywhere).
template <class T> BasicTensor<T> sign(const BasicTensor<T>& x);  // -1, 0, 1
template <class T> BasicTensor<T> step(const BasicTensor<T>& x);  // 1 where x > 0, else 0

}  // namespace tapegrad
