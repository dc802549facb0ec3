// Linear: y = x · W + b with W stored [in, out], so the forward is a plain
// matmul (no transpose) and b broadcasts over the rows.
#pragma once

#include <cstddef>

#include <tapegrad/nn/module.hpp>

namespace tapegrad::nn {

template <class T>
class Linear : public BasicModule<T> {
public:
    // Xavier-uniform weights and zero bias, drawn from `gen` (re-initialise
    // with nn::init for another scheme).
    Linear(std::size_t in, std::size_t out, bool bias, Generator& gen);
    // Same, from nn::default_generator().
    Linear(std::size_t in, std::size_t out, bool bias = true) : Linear(in, out, bias, default_generator()) {}

    // x: [batch, in] (or [in]) -> [batch, out] (or [out]). ShapeError naming
    // the layer and both shapes if x's last axis is not `in`.
    BasicTensor<T> forward(const BasicTensor<T>& x) override;

    std::size_t in_features() const { return in_; }
    std::size_t out_features() const { return out_; }
    BasicTensor<T> weight;  // [in, out]
    BasicTensor<T> bias;    // [out], undefined without bias

protected:
    std::string extra_repr() const override;

private:
    std::size_t in_, out_;
};

extern template class Linear<float>;
extern template class Linear<double>;

}  // namespace tapegrad::nn
