#include <tapegrad/nn/sequential.hpp>

namespace tapegrad::nn {

template <class T>
Sequential<T>::Sequential(std::vector<std::shared_ptr<BasicModule<T>>> layers) : Sequential() {
    for (auto& l : layers) push_back(std::move(l));
}

template <class T>
void Sequential<T>::push_back(std::shared_ptr<BasicModule<T>> layer) {
    this->register_module(std::to_string(layers_.size()), layer);
    layers_.push_back(std::move(layer));
}

template <class T>
BasicTensor<T> Sequential<T>::forward(const BasicTensor<T>& x) {
    BasicTensor<T> y = x;
    for (auto& l : layers_) y = l->forward(y);
    return y;
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace tapegrad::nn
