#include <tapegrad/nn/dropout.hpp>

#include <sstream>

#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/compare.hpp>

namespace tapegrad::nn {

template <class T>
Dropout<T>::Dropout(T p, std::uint64_t seed) : BasicModule<T>("Dropout"), p_(p), gen_(seed) {
    this->register_generator("generator", gen_);
    if (!(p >= T(0) && p <= T(1))) throw ValueError("Dropout: p must be in [0, 1], got " + std::to_string(p));
}

template <class T>
BasicTensor<T> Dropout<T>::forward(const BasicTensor<T>& x) {
    if (!this->is_training() || p_ == T(0)) return x;
    if (p_ == T(1)) return x * BasicTensor<T>::zeros(x.shape_vector());
    // The mask is a constant of this pass: keep (u >= p) scaled by 1/(1-p).
    auto u = BasicTensor<T>::rand(x.shape_vector(), gen_);
    auto mask = ge(u, BasicTensor<T>::scalar(p_)) * (T(1) / (T(1) - p_));
    return x * mask;
}

template <class T>
std::string Dropout<T>::extra_repr() const {
    std::ostringstream os;
    os << "p=" << p_;
    return os.str();
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace tapegrad::nn
