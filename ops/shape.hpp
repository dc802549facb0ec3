// Ops that change a tensor's shape but not its values: reshape, broadcast,
// clone, detach. Slicing, joining and indexing live in indexing.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// One dimension may be -1 (inferred).
template <class T> BasicTensor<T> reshape(const BasicTensor<T>& x, const std::vector<std::int64_t>& shape);
template <class T> BasicTensor<T> broadcast_to(const BasicTensor<T>& x, const Shape& shape);
// Any sequence of integers as the shape: reshape(x, y.shape()).
template <class T, class S, typename BasicTensor<T>::template if_dims<S, std::vector<std::int64_t>> = 0>
BasicTensor<T> reshape(const BasicTensor<T>& x, const S& shape) {
    return reshape(x, std::vector<std::int64_t>(std::begin(shape), std::end(shape)));
}
template <class T, class S, typename BasicTensor<T>::template if_dims<S> = 0>
BasicTensor<T> broadcast_to(const BasicTensor<T>& x, const S& shape) {
    return broadcast_to(x, Shape(std::begin(shape), std::end(shape)));
}
// A copy with a buffer of its own, on the graph (the gradient passes through).
template <class T> BasicTensor<T> clone(const BasicTensor<T>& x);
// Same value, cut from the graph (stop-gradient).
template <class T> BasicTensor<T> detach(const BasicTensor<T>& x) { return x.detach(); }

}  // namespace tapegrad
