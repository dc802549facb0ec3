// Reductions over all elements (no axes given) or over the given axes.
// Negative axes count from the end; keepdims keeps reduced axes as size 1.
#pragma once

#include <cstddef>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

using Axes = std::vector<std::ptrdiff_t>;

template <class T> BasicTensor<T> sum(const BasicTensor<T>& x, const Axes& axes = {}, bool keepdims = false);
template <class T> BasicTensor<T> mean(const BasicTensor<T>& x, const Axes& axes = {}, bool keepdims = false);
// max/min: the gradient goes to the maximal (minimal) elements, split evenly
// among ties.
template <class T> BasicTensor<T> max(const BasicTensor<T>& x, const Axes& axes = {}, bool keepdims = false);
template <class T> BasicTensor<T> min(const BasicTensor<T>& x, const Axes& axes = {}, bool keepdims = false);
// log(sum(exp(x))) computed stably (shifted by the maximum).
template <class T> BasicTensor<T> logsumexp(const BasicTensor<T>& x, const Axes& axes = {}, bool keepdims = false);

// Sums a broadcast tensor back down to `shape` (the adjoint of
// broadcast_to). The engine uses it for every broadcast input.
template <class T> BasicTensor<T> sum_to(const BasicTensor<T>& x, const Shape& shape);

}  // namespace tapegrad
