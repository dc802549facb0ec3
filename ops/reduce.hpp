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

// One axis: sum(x, 1), mean(x, -1, true). (A braced {1} is the list form.)
#define TAPEGRAD_ONE_AXIS(name)                                                              \
    template <class T, class I, typename BasicTensor<T>::template if_axis<I> = 0>            \
    BasicTensor<T> name(const BasicTensor<T>& x, I axis, bool keepdims = false) {            \
        return name(x, Axes{static_cast<std::ptrdiff_t>(axis)}, keepdims);                    \
    }
TAPEGRAD_ONE_AXIS(sum)
TAPEGRAD_ONE_AXIS(mean)
TAPEGRAD_ONE_AXIS(max)
TAPEGRAD_ONE_AXIS(min)
TAPEGRAD_ONE_AXIS(logsumexp)
#undef TAPEGRAD_ONE_AXIS

// Sums a broadcast tensor back down to `shape` (the adjoint of
// broadcast_to). The engine uses it for every broadcast input.
template <class T> BasicTensor<T> sum_to(const BasicTensor<T>& x, const Shape& shape);
template <class T, class S, typename BasicTensor<T>::template if_dims<S> = 0>
BasicTensor<T> sum_to(const BasicTensor<T>& x, const S& shape) {
    return sum_to(x, Shape(std::begin(shape), std::end(shape)));
}

}  // namespace tapegrad
