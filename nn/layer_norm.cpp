#include <tapegrad/nn/layer_norm.hpp>

#include <sstream>

#include <tapegrad/nn/shape_util.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad::nn {

template <class T>
LayerNorm<T>::LayerNorm(std::size_t normalized_size, T eps, bool affine)
    : BasicModule<T>("LayerNorm"), size_(normalized_size), eps_(eps) {
    if (normalized_size == 0) throw ValueError("LayerNorm: normalized_size must be positive");
    if (!(eps > T(0))) throw ValueError("LayerNorm: eps must be positive, got " + std::to_string(eps));
    if (affine) {
        this->register_parameter("weight", weight, BasicTensor<T>::ones({normalized_size}));
        this->register_parameter("bias", bias, BasicTensor<T>::zeros({normalized_size}));
    }
}

template <class T>
BasicTensor<T> LayerNorm<T>::forward(const BasicTensor<T>& x) {
    if (x.dim() == 0 || x.shape().back() != size_)
        throw ShapeError("LayerNorm(" + std::to_string(size_) + "): input shape " + shape_string(x.shape()) +
                         " must end in " + std::to_string(size_));
    auto centered = x - mean(x, {-1}, true);
    auto variance = mean(centered * centered, {-1}, true);
    auto y = centered / sqrt(variance + eps_);
    return weight.defined() ? y * weight + bias : y;
}

template <class T>
std::string LayerNorm<T>::extra_repr() const {
    std::ostringstream os;
    os << size_ << ", eps=" << eps_ << ", affine=" << (weight.defined() ? "true" : "false");
    return os.str();
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace tapegrad::nn
