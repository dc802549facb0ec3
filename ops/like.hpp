// New tensors with another tensor's shape and element type (never its graph
// or requires_grad): zeros_like(t), randn_like(t), ...
#pragma once

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T>
BasicTensor<T> zeros_like(const BasicTensor<T>& t, bool requires_grad = false) {
    return BasicTensor<T>::zeros(t.shape(), requires_grad);
}
template <class T>
BasicTensor<T> ones_like(const BasicTensor<T>& t, bool requires_grad = false) {
    return BasicTensor<T>::ones(t.shape(), requires_grad);
}
template <class T>
BasicTensor<T> full_like(const BasicTensor<T>& t, detail::identity_t<T> value, bool requires_grad = false) {
    return BasicTensor<T>::full(t.shape(), value, requires_grad);
}
// N(0, 1) and U[0, 1), from `gen` or this thread's default_generator().
template <class T>
BasicTensor<T> randn_like(const BasicTensor<T>& t, Generator& gen = default_generator()) {
    return BasicTensor<T>::randn(t.shape(), gen);
}
template <class T>
BasicTensor<T> rand_like(const BasicTensor<T>& t, Generator& gen = default_generator()) {
    return BasicTensor<T>::rand(t.shape(), gen);
}

}  // namespace tapegrad
