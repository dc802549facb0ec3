#include <tapegrad/nn/mlp.hpp>

#include <tapegrad/nn/activations.hpp>
#include <tapegrad/nn/linear.hpp>

namespace tapegrad::nn {

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, const std::string& activation, Head head, Generator& gen)
    : BasicModule<T>("MLP") {
    if (sizes.size() < 2) throw ValueError("MLP: need at least an input and an output size, got " +
                                           std::to_string(sizes.size()) + " sizes");
    make_activation<T>(activation);  // an unknown name fails even without hidden layers
    layers = this->register_module("layers", std::make_shared<Sequential<T>>());
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        layers->push_back(std::make_shared<Linear<T>>(sizes[i], sizes[i + 1], true, gen));
        if (i + 2 < sizes.size()) layers->push_back(make_activation<T>(activation));
    }
    if (head == Head::sigmoid) layers->push_back(make_activation<T>("sigmoid"));
    if (head == Head::softmax) layers->push_back(make_activation<T>("softmax"));
}

template class MLP<float>;
template class MLP<double>;

}  // namespace tapegrad::nn
