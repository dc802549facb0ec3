// BasicTensor<T>: an N-d array of float or double that records the
// differentiable ops applied to it, so backward() can compute gradients.
//
// A tensor is a cheap handle (a shared pointer): copies share the value, the
// gradient and the graph. The value is an Array<T> (core/array.hpp),
// reachable without a copy through value().
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <tapegrad/core/array.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/grad_mode.hpp>

namespace tapegrad {

using Shape = std::vector<std::size_t>;

template <class T>
class BasicTensor;
using Tensor = BasicTensor<float>;     // float32, the default for models
using Tensor64 = BasicTensor<double>;  // float64, for gradient checks

// Seedable source of randomness for rand/randn/initialisers/dropout. Same
// seed, same numbers, on every run.
class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
    void seed(std::uint64_t s) { engine_.seed(s); }
    std::mt19937_64& engine() { return engine_; }

private:
    std::mt19937_64 engine_;
};

namespace detail {
template <class T>
struct Node;
template <class T>
struct TensorImpl;

// The value of a tensor. Shared between a tensor and the nodes that saved it
// for backward; the version counts in-place writes so a node can tell that a
// value it saved has changed since.
template <class T>
struct Storage {
    Array<T> data;
    std::uint64_t version = 0;
};

template <class T>
struct identity {
    using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;  // blocks deduction of scalars
}  // namespace detail

struct BackwardOptions {
    bool retain_graph = false;  // keep saved values for another backward
    bool create_graph = false;  // record backward itself (higher derivatives)
};

template <class T>
class BasicTensor {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "tapegrad tensors hold float (float32) or double (float64)");

public:
    using value_type = T;
    using array_type = Array<T>;
    using shape_type = typename array_type::shape_type;

    BasicTensor() = default;  // an undefined tensor: defined() is false
    explicit BasicTensor(array_type value, bool requires_grad = false);
    BasicTensor(xt::nested_initializer_list_t<T, 1> values, bool requires_grad = false);
    BasicTensor(xt::nested_initializer_list_t<T, 2> values, bool requires_grad = false);
    BasicTensor(xt::nested_initializer_list_t<T, 3> values, bool requires_grad = false);

    // Creation.
    static BasicTensor scalar(T value, bool requires_grad = false);
    static BasicTensor from_data(const T* data, const Shape& shape, bool requires_grad = false);
    static BasicTensor zeros(const Shape& shape, bool requires_grad = false);
    static BasicTensor ones(const Shape& shape, bool requires_grad = false);
    static BasicTensor full(const Shape& shape, T value, bool requires_grad = false);
    static BasicTensor arange(T start, T stop, T step = T(1));
    static BasicTensor randn(const Shape& shape, Generator& gen, T mean = T(0), T stddev = T(1),
                             bool requires_grad = false);
    static BasicTensor rand(const Shape& shape, Generator& gen, T low = T(0), T high = T(1),
                            bool requires_grad = false);

    // Inspection.
    bool defined() const noexcept { return impl_ != nullptr; }
    const array_type& value() const;  // no copy
    const shape_type& shape() const { return value().shape(); }
    Shape shape_vector() const;
    std::size_t dim() const { return value().dimension(); }
    std::size_t size() const { return value().size(); }
    T item() const;  // the value of a one-element tensor
    std::string str() const;

    // Writes into the value in place:  w.modify([](auto& v) { v(0) = 10; });
    // `write` receives the value (array_type&) and may change its elements,
    // not its shape. The version is bumped when `write` returns or throws,
    // so a node that saved this tensor earlier refuses to run backward with
    // the changed value. The reference lives only inside `write`: no kept
    // reference can write past the check. Returns what `write` returns.
    template <class F>
    decltype(auto) modify(F&& write);
    std::uint64_t version() const;  // counts modify() calls on this value (shared with detach())

    // Gradients.
    bool requires_grad() const;
    BasicTensor& requires_grad_(bool on = true);  // leaves only
    bool is_leaf() const;                          // not produced by a recorded op
    // The gradient backward() left here: undefined until backward reaches
    // the tensor. A non-leaf keeps one only after retain_grad() (asking
    // without it is a GraphError). The gradient owns its buffer: backward
    // never writes into a buffer that another tensor or handle can see.
    BasicTensor grad() const;
    BasicTensor& retain_grad();  // keep this non-leaf's gradient in grad() (call before backward)
    bool retains_grad() const;
    void set_grad(BasicTensor g);  // stores g, or a copy of it when g's buffer is shared
    void zero_grad();  // drop the gradient: grad() is undefined until the next backward
    BasicTensor detach() const;  // same value, no graph, no requires_grad

    // Backward from this tensor. Without a seed, the tensor must have one
    // element and the seed is 1.
    void backward(BackwardOptions options = {}) const;
    void backward(const BasicTensor& seed, BackwardOptions options = {}) const;

    // The node that produced this tensor ("" for a leaf).
    const char* op_name() const;

    // A copy in another element type, detached from the graph.
    template <class U>
    BasicTensor<U> to() const;

    // Engine internals.
    explicit BasicTensor(std::shared_ptr<detail::TensorImpl<T>> impl) : impl_(std::move(impl)) {}
    const std::shared_ptr<detail::TensorImpl<T>>& impl() const { return impl_; }
    const std::shared_ptr<detail::Node<T>>& grad_fn() const;
    bool same(const BasicTensor& other) const { return impl_ == other.impl_; }

private:
    detail::TensorImpl<T>& checked() const;
    void check_modified_shape(const shape_type& before) const;
    std::shared_ptr<detail::TensorImpl<T>> impl_;
};

template <class T>
std::ostream& operator<<(std::ostream& os, const BasicTensor<T>& t);

namespace detail {

template <class T>
struct TensorImpl {
    std::shared_ptr<Storage<T>> storage;
    std::shared_ptr<Node<T>> grad_fn;  // null for leaves
    BasicTensor<T> grad;
    bool requires_grad = false;
    // Backward bookkeeping: a pass collects this tensor's gradient at
    // staged_index of its list and stores it in .grad only when it succeeds.
    std::uint64_t staged_pass = 0;
    std::size_t staged_index = 0;

    explicit TensorImpl(std::shared_ptr<Storage<T>> s) : storage(std::move(s)) {}
    ~TensorImpl();  // releases long graphs without recursion
};

}  // namespace detail

template <class T>
template <class F>
decltype(auto) BasicTensor<T>::modify(F&& write) {
    auto& storage = *checked().storage;
    struct Bump {  // also when write throws: it may have written part of the value
        detail::Storage<T>& s;
        ~Bump() { ++s.version; }
    } bump{storage};
    const shape_type before = storage.data.shape();
    if constexpr (std::is_void_v<decltype(write(storage.data))>) {
        write(storage.data);
        check_modified_shape(before);
    } else {
        decltype(auto) result = write(storage.data);
        check_modified_shape(before);
        return result;
    }
}

template <class T>
template <class U>
BasicTensor<U> BasicTensor<T>::to() const {
    return BasicTensor<U>(Array<U>(value()));
}

extern template class BasicTensor<float>;
extern template class BasicTensor<double>;

}  // namespace tapegrad
