// The member short forms of BasicTensor (x.sum(1), x.exp(), x.matmul(w)),
// each a forward to the free function that implements the op, and the
// factories that draw from the default generator.
#include <tapegrad/core/tensor.hpp>

#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad {

template <class T>
BasicTensor<T> BasicTensor<T>::randn(const Shape& shape, T mean, T stddev, bool requires_grad) {
    return randn(shape, default_generator(), mean, stddev, requires_grad);
}
template <class T>
BasicTensor<T> BasicTensor<T>::rand(const Shape& shape, T low, T high, bool requires_grad) {
    return rand(shape, default_generator(), low, high, requires_grad);
}

#define TAPEGRAD_REDUCTION(name)                                                          \
    template <class T>                                                                    \
    BasicTensor<T> BasicTensor<T>::name(const Axes& axes, bool keepdims) const {          \
        return tapegrad::name(*this, axes, keepdims);                                     \
    }
TAPEGRAD_REDUCTION(sum)
TAPEGRAD_REDUCTION(mean)
TAPEGRAD_REDUCTION(max)
TAPEGRAD_REDUCTION(min)
TAPEGRAD_REDUCTION(logsumexp)
#undef TAPEGRAD_REDUCTION

#define TAPEGRAD_UNARY(name) \
    template <class T>       \
    BasicTensor<T> BasicTensor<T>::name() const { return tapegrad::name(*this); }
TAPEGRAD_UNARY(exp)
TAPEGRAD_UNARY(log)
TAPEGRAD_UNARY(log1p)
TAPEGRAD_UNARY(sqrt)
TAPEGRAD_UNARY(abs)
TAPEGRAD_UNARY(tanh)
TAPEGRAD_UNARY(erf)
TAPEGRAD_UNARY(sigmoid)
TAPEGRAD_UNARY(softplus)
TAPEGRAD_UNARY(sin)
TAPEGRAD_UNARY(cos)
TAPEGRAD_UNARY(transpose)
#undef TAPEGRAD_UNARY

template <class T>
BasicTensor<T> BasicTensor<T>::pow(T exponent) const { return tapegrad::pow(*this, exponent); }
template <class T>
BasicTensor<T> BasicTensor<T>::pow(const BasicTensor& exponent) const { return tapegrad::pow(*this, exponent); }
template <class T>
BasicTensor<T> BasicTensor<T>::clamp(T lo, T hi) const { return tapegrad::clamp(*this, lo, hi); }
template <class T>
BasicTensor<T> BasicTensor<T>::matmul(const BasicTensor& other) const { return tapegrad::matmul(*this, other); }
template <class T>
BasicTensor<T> BasicTensor<T>::transpose(std::ptrdiff_t axis0, std::ptrdiff_t axis1) const {
    return tapegrad::transpose(*this, axis0, axis1);
}
template <class T>
BasicTensor<T> BasicTensor<T>::permute(const std::vector<std::size_t>& perm) const {
    return tapegrad::permute(*this, perm);
}
template <class T>
BasicTensor<T> BasicTensor<T>::reshape(const std::vector<std::int64_t>& shape) const {
    return tapegrad::reshape(*this, shape);
}
template <class T>
BasicTensor<T> BasicTensor<T>::broadcast_to(const Shape& shape) const { return tapegrad::broadcast_to(*this, shape); }

// Members of a class template are instantiated one by one here: the class
// itself is instantiated in core/tensor.cpp, which does not see these bodies.
#define TAPEGRAD_INSTANTIATE(T)                                                               \
    template BasicTensor<T> BasicTensor<T>::randn(const Shape&, T, T, bool);                  \
    template BasicTensor<T> BasicTensor<T>::rand(const Shape&, T, T, bool);                   \
    template BasicTensor<T> BasicTensor<T>::sum(const Axes&, bool) const;                     \
    template BasicTensor<T> BasicTensor<T>::mean(const Axes&, bool) const;                    \
    template BasicTensor<T> BasicTensor<T>::max(const Axes&, bool) const;                     \
    template BasicTensor<T> BasicTensor<T>::min(const Axes&, bool) const;                     \
    template BasicTensor<T> BasicTensor<T>::logsumexp(const Axes&, bool) const;               \
    template BasicTensor<T> BasicTensor<T>::exp() const;                                      \
    template BasicTensor<T> BasicTensor<T>::log() const;                                      \
    template BasicTensor<T> BasicTensor<T>::log1p() const;                                    \
    template BasicTensor<T> BasicTensor<T>::sqrt() const;                                     \
    template BasicTensor<T> BasicTensor<T>::abs() const;                                      \
    template BasicTensor<T> BasicTensor<T>::tanh() const;                                     \
    template BasicTensor<T> BasicTensor<T>::erf() const;                                      \
    template BasicTensor<T> BasicTensor<T>::sigmoid() const;                                  \
    template BasicTensor<T> BasicTensor<T>::softplus() const;                                 \
    template BasicTensor<T> BasicTensor<T>::sin() const;                                      \
    template BasicTensor<T> BasicTensor<T>::cos() const;                                      \
    template BasicTensor<T> BasicTensor<T>::pow(T) const;                                     \
    template BasicTensor<T> BasicTensor<T>::pow(const BasicTensor<T>&) const;                 \
    template BasicTensor<T> BasicTensor<T>::clamp(T, T) const;                                \
    template BasicTensor<T> BasicTensor<T>::matmul(const BasicTensor<T>&) const;              \
    template BasicTensor<T> BasicTensor<T>::transpose() const;                                \
    template BasicTensor<T> BasicTensor<T>::transpose(std::ptrdiff_t, std::ptrdiff_t) const;  \
    template BasicTensor<T> BasicTensor<T>::permute(const std::vector<std::size_t>&) const;   \
    template BasicTensor<T> BasicTensor<T>::reshape(const std::vector<std::int64_t>&) const;  \
    template BasicTensor<T> BasicTensor<T>::broadcast_to(const Shape&) const;
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
