// MLP: Linear layers of the given sizes with a hidden activation between
// them and an output head, built as a Sequential named "layers" (parameter
// names "layers.0.weight", "layers.0.bias", "layers.2.weight", ...).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <tapegrad/nn/module.hpp>
#include <tapegrad/nn/sequential.hpp>

namespace tapegrad::nn {

// What follows the last Linear. identity leaves logits (pair it with the
// *_with_logits / cross_entropy losses, which are the stable choice).
enum class Head { identity, sigmoid, softmax };

template <class T>
class MLP : public BasicModule<T> {
public:
    // sizes = {in, hidden..., out} (at least two); `activation` is a
    // make_activation() name. Weights as Linear's default, from `gen`.
    MLP(const std::vector<std::size_t>& sizes, const std::string& activation, Head head, Generator& gen);
    MLP(const std::vector<std::size_t>& sizes, const std::string& activation = "relu", Head head = Head::identity)
        : MLP(sizes, activation, head, default_generator()) {}

    BasicTensor<T> forward(const BasicTensor<T>& x) override { return layers->forward(x); }
    std::shared_ptr<Sequential<T>> layers;
};

extern template class MLP<float>;
extern template class MLP<double>;

}  // namespace tapegrad::nn
