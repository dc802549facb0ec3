// LayerNorm: normalises each sample over its last axis to zero mean and unit
// variance (biased variance, eps inside the square root), then applies a
// learned gain ("weight", init 1) and shift ("bias", init 0) when affine.
#pragma once

#include <cstddef>

#include <tapegrad/nn/module.hpp>

namespace tapegrad::nn {

template <class T>
class LayerNorm : public BasicModule<T> {
public:
    explicit LayerNorm(std::size_t normalized_size, T eps = T(1e-5), bool elementwise_affine = true);
    // ShapeError naming the layer and both sizes if x's last axis differs.
    BasicTensor<T> forward(const BasicTensor<T>& x) override;
    BasicTensor<T> weight;  // [normalized_size], undefined without affine
    BasicTensor<T> bias;

protected:
    std::string extra_repr() const override;

private:
    std::size_t size_;
    T eps_;
};

extern template class LayerNorm<float>;
extern template class LayerNorm<double>;

}  // namespace tapegrad::nn
