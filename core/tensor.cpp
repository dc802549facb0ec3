// BasicTensor<T>: creation, inspection, gradient bookkeeping.
#include <tapegrad/core/tensor.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xrandom.hpp>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/numel.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {

namespace detail {
template <class T>
std::shared_ptr<TensorImpl<T>> make_tensor_impl(std::shared_ptr<Storage<T>> storage) {
    return std::allocate_shared<TensorImpl<T>>(RecordAllocator<TensorImpl<T>>(), std::move(storage));
}
template <class T>
std::shared_ptr<TensorImpl<T>> make_tensor_impl(Array<T>&& value, bool requires_grad) {
    auto impl = make_tensor_impl(std::allocate_shared<Storage<T>>(RecordAllocator<Storage<T>>(), std::move(value)));
    impl->requires_grad = requires_grad;
    return impl;
}
template std::shared_ptr<TensorImpl<float>> make_tensor_impl(std::shared_ptr<Storage<float>>);
template std::shared_ptr<TensorImpl<double>> make_tensor_impl(std::shared_ptr<Storage<double>>);
template std::shared_ptr<TensorImpl<float>> make_tensor_impl(Array<float>&&, bool);
template std::shared_ptr<TensorImpl<double>> make_tensor_impl(Array<double>&&, bool);
}  // namespace detail

template <class T>
BasicTensor<T>::BasicTensor(array_type value, bool requires_grad)
    : impl_(detail::make_tensor_impl<T>(std::move(value), requires_grad)) {}

template <class T>
BasicTensor<T>::BasicTensor(xt::nested_initializer_list_t<T, 1> values, bool requires_grad)
    : BasicTensor(array_type(values), requires_grad) {}
template <class T>
BasicTensor<T>::BasicTensor(xt::nested_initializer_list_t<T, 2> values, bool requires_grad)
    : BasicTensor(array_type(values), requires_grad) {}
template <class T>
BasicTensor<T>::BasicTensor(xt::nested_initializer_list_t<T, 3> values, bool requires_grad)
    : BasicTensor(array_type(values), requires_grad) {}

template <class T>
BasicTensor<T> BasicTensor<T>::scalar(T value, bool requires_grad) {
    return BasicTensor(array_type(value), requires_grad);
}

template <class T>
BasicTensor<T> BasicTensor<T>::from_data(const T* data, const Shape& shape, bool requires_grad) {
    if (detail::checked_numel("from_data", shape) != 0 && !data)
        throw ValueError("from_data: null data pointer for shape " + detail::shape_str(shape) +
                         " (only an empty shape may come without data)");
    array_type a = array_type::from_shape(shape);
    std::copy(data, data + a.size(), a.data());
    return BasicTensor(std::move(a), requires_grad);
}

template <class T>
BasicTensor<T> BasicTensor<T>::zeros(const Shape& shape, bool requires_grad) {
    return full(shape, T(0), requires_grad);
}
template <class T>
BasicTensor<T> BasicTensor<T>::ones(const Shape& shape, bool requires_grad) {
    return full(shape, T(1), requires_grad);
}
template <class T>
BasicTensor<T> BasicTensor<T>::full(const Shape& shape, T value, bool requires_grad) {
    detail::checked_numel("full", shape);  // also zeros and ones
    array_type a = array_type::from_shape(shape);
    a.fill(value);
    return BasicTensor(std::move(a), requires_grad);
}

template <class T>
BasicTensor<T> BasicTensor<T>::arange(T start, T stop, T step) {
    if (step == T(0)) throw ValueError("arange: step must not be 0");
    if (!std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
        throw ValueError("arange: start, stop and step must be finite, got " + std::to_string(start) + ", " +
                         std::to_string(stop) + " and " + std::to_string(step));
    // Counted here, not by xt::arange: it casts a negative or huge count to
    // size_t unchecked and allocates inside noexcept code (std::terminate
    // instead of std::bad_alloc).
    const T count = std::ceil((stop - start) / step);
    if (!(count <= T(detail::max_numel)))
        throw ValueError("arange: " + std::to_string(count) + " elements from " + std::to_string(start) + " to " +
                         std::to_string(stop) + " in steps of " + std::to_string(step) + " are too many");
    array_type a = array_type::from_shape({count > T(0) ? static_cast<std::size_t>(count) : std::size_t(0)});
    T* out = a.data();
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = start + step * static_cast<T>(i);
    return BasicTensor(std::move(a));
}

template <class T>
BasicTensor<T> BasicTensor<T>::randn(const Shape& shape, Generator& gen, T mean, T stddev, bool requires_grad) {
    if (!(stddev >= T(0))) throw ValueError("randn: stddev must be >= 0, got " + std::to_string(stddev));
    detail::checked_numel("randn", shape);
    array_type a = array_type::from_shape(shape);
    std::normal_distribution<T> dist(mean, stddev);
    auto& engine = gen.engine();
    for (auto& v : a) v = stddev == T(0) ? mean : dist(engine);
    return BasicTensor(std::move(a), requires_grad);
}

template <class T>
BasicTensor<T> BasicTensor<T>::rand(const Shape& shape, Generator& gen, T low, T high, bool requires_grad) {
    if (!(low <= high))
        throw ValueError("rand: low must be <= high, got " + std::to_string(low) + " and " + std::to_string(high));
    if (!std::isfinite(high - low))
        throw ValueError("rand: low and high must be finite and high - low representable, got " +
                         std::to_string(low) + " and " + std::to_string(high));
    detail::checked_numel("rand", shape);
    array_type a = array_type::from_shape(shape);
    std::uniform_real_distribution<T> dist(low, high);
    auto& engine = gen.engine();
    for (auto& v : a) v = low == high ? low : dist(engine);
    return BasicTensor(std::move(a), requires_grad);
}

template <class T>
detail::TensorImpl<T>& BasicTensor<T>::checked() const {
    if (!impl_) throw GraphError("tapegrad: use of an undefined tensor (default-constructed or an absent gradient)");
    return *impl_;
}

template <class T>
const typename BasicTensor<T>::array_type& BasicTensor<T>::value() const {
    return checked().storage->data;
}

template <class T>
Shape BasicTensor<T>::shape_vector() const {
    return Shape(shape().begin(), shape().end());
}

template <class T>
T BasicTensor<T>::item() const {
    if (size() != 1)
        throw ValueError("item: the tensor must have exactly one element, its shape is " +
                         detail::shape_str(shape()));
    return *value().data();
}

template <class T>
std::string BasicTensor<T>::str() const {
    std::ostringstream os;
    os << *this;
    return os.str();
}

template <class T>
void BasicTensor<T>::check_modified_shape(const shape_type& before) const {
    auto& data = checked().storage->data;
    const shape_type now = data.shape();
    if (now.size() != before.size() || !std::equal(now.begin(), now.end(), before.begin())) {
        // The old elements are gone; put the shape back so nothing downstream
        // sees a tensor of the wrong size, and make the lost values loud.
        data.resize(before);
        data.fill(std::numeric_limits<T>::quiet_NaN());
        throw ShapeError("modify: the write changed the tensor's shape from " + detail::shape_str(before) + " to " +
                         detail::shape_str(now) + "; modify may change elements only (make a new tensor instead). "
                         "The shape is restored and the value filled with NaN");
    }
}

template <class T>
std::uint64_t BasicTensor<T>::version() const {
    return checked().storage->version;
}

template <class T>
bool BasicTensor<T>::requires_grad() const {
    return checked().requires_grad;
}

template <class T>
BasicTensor<T>& BasicTensor<T>::requires_grad_(bool on) {
    auto& impl = checked();
    if (impl.grad_fn && !on)
        throw GraphError("requires_grad_(false): only leaf tensors can stop requiring grad; this tensor was "
                         "produced by '" + std::string(impl.grad_fn->name) + "' (use detach())");
    if (!impl.grad_fn) impl.requires_grad = on;
    return *this;
}

template <class T>
bool BasicTensor<T>::is_leaf() const {
    return checked().grad_fn == nullptr;
}

template <class T>
BasicTensor<T> BasicTensor<T>::grad() const {
    auto& impl = checked();
    if (impl.grad_fn && !impl.grad.defined() && !retains_grad())
        throw GraphError("grad(): this tensor was produced by '" + std::string(impl.grad_fn->name) +
                         "', not a leaf, and backward keeps only the gradients of leaves; call retain_grad() on it "
                         "before backward, or use tapegrad::grad(output, {tensor})");
    return impl.grad;
}

template <class T>
BasicTensor<T>& BasicTensor<T>::retain_grad() {
    auto& impl = checked();
    if (!impl.requires_grad)
        throw GraphError("retain_grad: the tensor does not require grad, so backward never reaches it");
    if (impl.grad_fn) impl.grad_fn->retained = impl_;
    return *this;
}

template <class T>
bool BasicTensor<T>::retains_grad() const {
    auto& impl = checked();
    return impl.grad_fn ? impl.grad_fn->retained.lock() == impl_ : impl.requires_grad;
}

template <class T>
void BasicTensor<T>::set_grad(BasicTensor g) {
    auto& impl = checked();
    if (g.defined() && g.shape() != shape())
        throw ShapeError("set_grad: gradient shape " + detail::shape_str(g.shape()) +
                         " does not match tensor shape " + detail::shape_str(shape()));
    // .grad owns its buffer, so backward may add into it in place.
    if (g.defined() && (g.impl().use_count() != 1 || g.impl()->storage.use_count() != 1))
        g = g.requires_grad() ? clone(g) : BasicTensor(array_type(g.value()));
    impl.grad = std::move(g);
}

template <class T>
void BasicTensor<T>::zero_grad() {
    // Dropping the gradient (rather than filling it with zeros) lets the
    // next backward move its result in instead of adding it to zeros.
    checked().grad = BasicTensor();
}

template <class T>
BasicTensor<T> BasicTensor<T>::detach() const {
    auto impl = detail::make_tensor_impl<T>(checked().storage);
    return BasicTensor(std::move(impl));
}

template <class T>
const char* BasicTensor<T>::op_name() const {
    auto& fn = checked().grad_fn;
    return fn ? fn->name : "";
}

template <class T>
const std::shared_ptr<detail::Node<T>>& BasicTensor<T>::grad_fn() const {
    return checked().grad_fn;
}

template <class T>
std::ostream& operator<<(std::ostream& os, const BasicTensor<T>& t) {
    if (!t.defined()) return os << "tensor(undefined)";
    os << "tensor(" << t.value();
    if (t.grad_fn()) os << ", op=" << t.op_name();
    else if (t.requires_grad()) os << ", requires_grad";
    return os << ")";
}

template class BasicTensor<float>;
template class BasicTensor<double>;
template std::ostream& operator<<(std::ostream&, const BasicTensor<float>&);
template std::ostream& operator<<(std::ostream&, const BasicTensor<double>&);

}  // namespace tapegrad
