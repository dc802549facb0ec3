#include <tapegrad/nn/linear.hpp>

#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/shape_util.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad::nn {

template <class T>
Linear<T>::Linear(std::size_t in, std::size_t out, bool with_bias, Generator& gen)
    : BasicModule<T>("Linear"), in_(in), out_(out) {
    if (in == 0 || out == 0)
        throw ValueError("Linear: in and out must be positive, got in=" + std::to_string(in) +
                         " out=" + std::to_string(out));
    this->register_parameter("weight", weight, BasicTensor<T>::zeros({in, out}));
    init::xavier_uniform_(weight, gen);
    if (with_bias) this->register_parameter("bias", bias, BasicTensor<T>::zeros({out}));
}

template <class T>
BasicTensor<T> Linear<T>::forward(const BasicTensor<T>& x) {
    const auto& s = x.shape();
    if (s.empty() || s.size() > 2 || s.back() != in_)
        throw ShapeError("Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) + "): input shape " +
                         shape_string(s) + " does not fit weight shape " + shape_string(weight.shape()) +
                         " (expected [batch, " + std::to_string(in_) + "])");
    if (s.size() == 1) {  // a single sample: treat it as a batch of one
        auto y = forward(reshape(x, {1, static_cast<std::int64_t>(in_)}));
        return reshape(y, {static_cast<std::int64_t>(out_)});
    }
    auto y = matmul(x, weight);
    return bias.defined() ? y + bias : y;
}

template <class T>
std::string Linear<T>::extra_repr() const {
    return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", bias=" + (bias.defined() ? "true" : "false");
}

template class Linear<float>;
template class Linear<double>;

}  // namespace tapegrad::nn
