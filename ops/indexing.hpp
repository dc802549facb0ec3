// Slicing, joining and indexing along an axis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

using Index = std::vector<std::int64_t>;

// Elements start, start+step, ... < stop along `axis` (negative start/stop
// count from the end, as in Python; step > 0).
template <class T>
BasicTensor<T> slice(const BasicTensor<T>& x, std::ptrdiff_t axis, std::int64_t start, std::int64_t stop,
                     std::int64_t step = 1);
template <class T> BasicTensor<T> concat(const std::vector<BasicTensor<T>>& xs, std::ptrdiff_t axis = 0);
template <class T> BasicTensor<T> stack(const std::vector<BasicTensor<T>>& xs, std::ptrdiff_t axis = 0);
// Braced lists deduce the element type: concat({a, b}, 1), stack({a, b}).
template <class T>
BasicTensor<T> concat(std::initializer_list<BasicTensor<T>> xs, std::ptrdiff_t axis = 0) {
    return concat(std::vector<BasicTensor<T>>(xs), axis);
}
template <class T>
BasicTensor<T> stack(std::initializer_list<BasicTensor<T>> xs, std::ptrdiff_t axis = 0) {
    return stack(std::vector<BasicTensor<T>>(xs), axis);
}
// Picks whole slices along `axis` by index (indices may repeat; their
// gradients add up).
template <class T> BasicTensor<T> index_select(const BasicTensor<T>& x, std::ptrdiff_t axis, const Index& indices);
// out[i][j] = x[i][index[i][j]] along `axis` (numpy take_along_axis): index
// has x's shape except along `axis`. Used to pick each row's target class.
template <class T>
BasicTensor<T> gather(const BasicTensor<T>& x, std::ptrdiff_t axis, const Index& index, const Shape& index_shape);
namespace detail {
// gather of one class label per row of [batch, classes] scores, for a loss:
// a label out of range, also one a compiled step's replay is given, is a
// ValueError naming `loss`, the label, its position and the classes.
template <class T>
BasicTensor<T> gather_labels(const char* loss, const BasicTensor<T>& scores, const Index& labels);
}  // namespace detail
// Rows of one-hot vectors, [labels.size(), num_classes]. No gradient.
template <class T> BasicTensor<T> one_hot(const Index& labels, std::size_t num_classes);
}  // namespace tapegrad
