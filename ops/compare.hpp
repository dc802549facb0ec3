// Elementwise comparisons with broadcasting. They return 1 where the
// relation holds and 0 elsewhere, in the operands' element type, and are not
// differentiable (the result carries no graph).
#pragma once

#include <tapegrad/core/mixed_dtypes.hpp>
#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T> BasicTensor<T> eq(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> ne(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> lt(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> le(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> gt(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T> BasicTensor<T> ge(const BasicTensor<T>& a, const BasicTensor<T>& b);

TAPEGRAD_NO_MIXED(eq)
TAPEGRAD_NO_MIXED(ne)
TAPEGRAD_NO_MIXED(lt)
TAPEGRAD_NO_MIXED(le)
TAPEGRAD_NO_MIXED(gt)
TAPEGRAD_NO_MIXED(ge)

}  // namespace tapegrad
