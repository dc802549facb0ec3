// Elementwise comparisons with broadcasting. They return 1 where the
// relation holds and 0 elsewhere, in the operands' element type, and are not
// differentiable (the result carries no graph).
#pragma once

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T> BasicTensor<T> eq(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> ne(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> lt(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> le(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> gt(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> ge(const BasicTensor<T>& a, const BasicTensor<T>& b);

}  // namespace tapegrad
