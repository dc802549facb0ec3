#include <tapegrad/nn/dropout.hpp>

#include <random>
#include <sstream>

#include <tapegrad/core/op.hpp>

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
    // The mask is a constant of this pass: keep (u >= p) scaled by 1/(1-p),
    // u uniform in [0, 1). It is drawn by an op of no inputs, so a captured
    // program draws a new mask from this generator on every replay.
    auto mask = detail::no_grad_op<T>("dropout_mask", {}, [this, gen = &gen_, p = p_, shape = x.shape_vector()]() {
        if (!this->is_training()) detail::replayed_in_eval_mode("Dropout");
        Array<T> m = Array<T>::from_shape(shape);
        std::uniform_real_distribution<T> dist(T(0), T(1));
        auto& engine = gen->engine();
        const T scale = T(1) / (T(1) - p);
        for (auto& v : m) v = dist(engine) >= p ? scale : T(0);
        return m;
    });
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
