// BasicTensor<T>: an N-d array of float or double that records the
// differentiable ops applied to it, so backward() can compute gradients.
//
// A tensor is a cheap handle (a shared pointer): copies share the value, the
// gradient and the graph. The value is an Array<T> (core/array.hpp),
// reachable without a copy through value().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <tapegrad/core/array.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/generator.hpp>
#include <tapegrad/core/grad_mode.hpp>

namespace tapegrad {

using Shape = std::vector<std::size_t>;

template <class T>
class BasicTensor;
using Tensor = BasicTensor<float>;     // float32, the default for models
using Tensor64 = BasicTensor<double>;  // float64, for gradient checks

namespace detail {
template <class T>
struct Node;
template <class T>
struct TensorImpl;
template <class T>
struct Hooks;
struct HookEntry;

// The value of a tensor. Shared between a tensor and the nodes that saved it
// for backward; the version counts in-place writes so a node can tell that a
// value it saved has changed since.
template <class T>
struct Storage {
    Array<T> data;
    std::uint64_t version = 0;
    Storage() = default;
    explicit Storage(Array<T>&& value) noexcept : data(std::move(value)) {}
};

template <class T>
struct identity {
    using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;  // blocks deduction of scalars
}  // namespace detail

// Removes a hook registered with register_hook or register_grad_ready_hook.
// Dropping the handle keeps the hook (as the tensor lives); remove() is
// idempotent, may be called from any thread and from inside a hook, and does
// nothing once the tensor is gone.
class HookHandle {
public:
    HookHandle() = default;
    explicit HookHandle(std::weak_ptr<detail::HookEntry> entry) : entry_(std::move(entry)) {}
    void remove() noexcept;
    bool active() const noexcept;  // registered, not removed, and its tensor still alive

private:
    std::weak_ptr<detail::HookEntry> entry_;
};

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
    auto modify(F&& write);
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

    // Hooks (docs/engine.md, "Hooks"). register_hook: on any tensor that
    // requires grad; during backward() and grad(), `fn(g)` sees the complete
    // gradient flowing into this tensor for this pass and may return a
    // replacement of the same shape (or nothing / an undefined tensor to
    // keep g). Do not write into g: return a new tensor.
    // register_grad_ready_hook: on leaves, during backward() only; `fn(g)`
    // runs as soon as the leaf's gradient for this pass is complete (the last
    // op using the leaf has run), with that gradient: what will be added to
    // .grad when the pass succeeds.
    // A hook must not capture this tensor by value (it would own its own
    // tensor and never be freed): capture by reference or t.detach().
    template <class F>
    HookHandle register_hook(F&& fn);
    template <class F>
    HookHandle register_grad_ready_hook(F&& fn);

    // Backward from this tensor. Without a seed, the tensor must have one
    // element and the seed is 1.
    void backward(BackwardOptions options = {}) const;
    void backward(const BasicTensor& seed, BackwardOptions options = {}) const;

    // The node that produced this tensor ("" for a leaf).
    const char* op_name() const;

    // A copy in another element type, detached from the graph.
    template <class U>
    BasicTensor<U> to() const;

    // ---- Short forms, as a libtorch user writes them. Thin forwards to the
    // free functions of ops/ (defined in ops/methods.cpp), so each op keeps
    // one implementation.

    // Any sequence of integers is a shape where a Shape is expected:
    // Tensor::ones(t.shape()), x.reshape(y.shape()), std::array<int, 2>.
    template <class S, class Exact = Shape>
    using if_dims = std::enable_if_t<
        !std::is_same_v<S, Exact> &&
            std::is_integral_v<std::decay_t<decltype(*std::begin(std::declval<const S&>()))>>,
        int>;
    template <class S, if_dims<S> = 0>
    static BasicTensor zeros(const S& shape, bool requires_grad = false) {
        return zeros(Shape(std::begin(shape), std::end(shape)), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor ones(const S& shape, bool requires_grad = false) {
        return ones(Shape(std::begin(shape), std::end(shape)), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor full(const S& shape, T value, bool requires_grad = false) {
        return full(Shape(std::begin(shape), std::end(shape)), value, requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor from_data(const T* data, const S& shape, bool requires_grad = false) {
        return from_data(data, Shape(std::begin(shape), std::end(shape)), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor randn(const S& shape, Generator& gen, T mean = T(0), T stddev = T(1),
                             bool requires_grad = false) {
        return randn(Shape(std::begin(shape), std::end(shape)), gen, mean, stddev, requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor rand(const S& shape, Generator& gen, T low = T(0), T high = T(1), bool requires_grad = false) {
        return rand(Shape(std::begin(shape), std::end(shape)), gen, low, high, requires_grad);
    }
    // Without a Generator: from this thread's default_generator() (manual_seed).
    static BasicTensor randn(const Shape& shape, T mean = T(0), T stddev = T(1), bool requires_grad = false);
    static BasicTensor rand(const Shape& shape, T low = T(0), T high = T(1), bool requires_grad = false);
    template <class S, if_dims<S> = 0>
    static BasicTensor randn(const S& shape, T mean = T(0), T stddev = T(1), bool requires_grad = false) {
        return randn(Shape(std::begin(shape), std::end(shape)), mean, stddev, requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor rand(const S& shape, T low = T(0), T high = T(1), bool requires_grad = false) {
        return rand(Shape(std::begin(shape), std::end(shape)), low, high, requires_grad);
    }

    // randn(shape, true) / rand(shape, true) mean requires_grad, as for
    // zeros/ones/full (not mean = 1 or low = 1).
    static BasicTensor randn(const Shape& shape, bool requires_grad) { return randn(shape, T(0), T(1), requires_grad); }
    static BasicTensor rand(const Shape& shape, bool requires_grad) { return rand(shape, T(0), T(1), requires_grad); }
    static BasicTensor randn(const Shape& shape, Generator& gen, bool requires_grad) {
        return randn(shape, gen, T(0), T(1), requires_grad);
    }
    static BasicTensor rand(const Shape& shape, Generator& gen, bool requires_grad) {
        return rand(shape, gen, T(0), T(1), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor randn(const S& shape, bool requires_grad) {
        return randn(Shape(std::begin(shape), std::end(shape)), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor rand(const S& shape, bool requires_grad) {
        return rand(Shape(std::begin(shape), std::end(shape)), requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor randn(const S& shape, Generator& gen, bool requires_grad) {
        return randn(Shape(std::begin(shape), std::end(shape)), gen, requires_grad);
    }
    template <class S, if_dims<S> = 0>
    static BasicTensor rand(const S& shape, Generator& gen, bool requires_grad) {
        return rand(Shape(std::begin(shape), std::end(shape)), gen, requires_grad);
    }

    template <class U>
    U item() const {  // x.item<float>(), x.item<int>()
        return static_cast<U>(item());
    }

    // Reductions: x.sum(), x.sum(1), x.sum({0, 2}, true); likewise mean,
    // max, min, logsumexp (see ops/reduce.hpp).
    template <class I>
    using if_axis = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int>;
    BasicTensor sum(const std::vector<std::ptrdiff_t>& axes = {}, bool keepdims = false) const;
    BasicTensor mean(const std::vector<std::ptrdiff_t>& axes = {}, bool keepdims = false) const;
    BasicTensor max(const std::vector<std::ptrdiff_t>& axes = {}, bool keepdims = false) const;
    BasicTensor min(const std::vector<std::ptrdiff_t>& axes = {}, bool keepdims = false) const;
    BasicTensor logsumexp(const std::vector<std::ptrdiff_t>& axes = {}, bool keepdims = false) const;
    template <class I, if_axis<I> = 0>
    BasicTensor sum(I axis, bool keepdims = false) const { return sum(one_axis(axis), keepdims); }
    template <class I, if_axis<I> = 0>
    BasicTensor mean(I axis, bool keepdims = false) const { return mean(one_axis(axis), keepdims); }
    template <class I, if_axis<I> = 0>
    BasicTensor max(I axis, bool keepdims = false) const { return max(one_axis(axis), keepdims); }
    template <class I, if_axis<I> = 0>
    BasicTensor min(I axis, bool keepdims = false) const { return min(one_axis(axis), keepdims); }
    template <class I, if_axis<I> = 0>
    BasicTensor logsumexp(I axis, bool keepdims = false) const { return logsumexp(one_axis(axis), keepdims); }
    template <class I>
    static std::vector<std::ptrdiff_t> one_axis(I axis) { return {static_cast<std::ptrdiff_t>(axis)}; }

    // Elementwise (ops/unary.hpp, ops/arithmetic.hpp).
    BasicTensor exp() const;
    BasicTensor log() const;
    BasicTensor log1p() const;
    BasicTensor sqrt() const;
    BasicTensor abs() const;
    BasicTensor tanh() const;
    BasicTensor erf() const;
    BasicTensor sigmoid() const;
    BasicTensor softplus() const;
    BasicTensor sin() const;
    BasicTensor cos() const;
    BasicTensor pow(T exponent) const;
    BasicTensor pow(const BasicTensor& exponent) const;
    BasicTensor clamp(T lo, T hi) const;

    // Products and shapes (ops/linalg.hpp, ops/shape.hpp).
    BasicTensor matmul(const BasicTensor& other) const;
    BasicTensor transpose() const;
    BasicTensor transpose(std::ptrdiff_t axis0, std::ptrdiff_t axis1) const;
    BasicTensor permute(const std::vector<std::size_t>& perm) const;
    BasicTensor reshape(const std::vector<std::int64_t>& shape) const;  // one -1 is inferred
    template <class S, if_dims<S, std::vector<std::int64_t>> = 0>
    BasicTensor reshape(const S& shape) const {
        return reshape(std::vector<std::int64_t>(std::begin(shape), std::end(shape)));
    }
    BasicTensor broadcast_to(const Shape& shape) const;
    template <class S, if_dims<S> = 0>
    BasicTensor broadcast_to(const S& shape) const {
        return broadcast_to(Shape(std::begin(shape), std::end(shape)));
    }

    // float32 with float64: a readable compile error (see ops/arithmetic.hpp).
    template <class U, std::enable_if_t<!std::is_same_v<U, T>, int> = 0>
    BasicTensor matmul(const BasicTensor<U>&) const {
        static_assert(std::is_same_v<U, T>, "tapegrad: matmul: cannot mix float32 and float64 tensors; convert one "
                                            "with .to<float>() or .to<double>()");
        return {};
    }
    template <class U, std::enable_if_t<!std::is_same_v<U, T>, int> = 0>
    BasicTensor pow(const BasicTensor<U>&) const {
        static_assert(std::is_same_v<U, T>, "tapegrad: pow: cannot mix float32 and float64 tensors; convert one "
                                            "with .to<float>() or .to<double>()");
        return {};
    }
    // ---- End of the short forms.

    // Engine internals.
    explicit BasicTensor(std::shared_ptr<detail::TensorImpl<T>> impl) : impl_(std::move(impl)) {}
    const std::shared_ptr<detail::TensorImpl<T>>& impl() const { return impl_; }
    const std::shared_ptr<detail::Node<T>>& grad_fn() const;
    bool same(const BasicTensor& other) const { return impl_ == other.impl_; }

private:
    using HookFn = std::function<BasicTensor(const BasicTensor&)>;
    HookHandle add_hook(HookFn fn, bool ready);
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
    std::shared_ptr<Hooks<T>> hooks;  // a leaf's hooks (a non-leaf's are on its node)

    explicit TensorImpl(std::shared_ptr<Storage<T>> s) : storage(std::move(s)) {}
    ~TensorImpl();  // releases long graphs without recursion
};

// A tensor's records (its TensorImpl, and a new Storage taking `value`
// without another move) from the thread's record cache: only the value's
// buffer is a tensor buffer, and no record calls malloc in steady state.
template <class T>
std::shared_ptr<TensorImpl<T>> make_tensor_impl(Array<T>&& value, bool requires_grad = false);
template <class T>
std::shared_ptr<TensorImpl<T>> make_tensor_impl(std::shared_ptr<Storage<T>> storage);

}  // namespace detail

template <class T>
template <class F>
auto BasicTensor<T>::modify(F&& write) {
    auto& storage = *checked().storage;
    struct Bump {  // also when write throws: it may have written part of the value
        detail::Storage<T>& s;
        ~Bump() { ++s.version; }
    } bump{storage};
    using Result = decltype(write(storage.data));
    // What `write` returns must not give access to the value after it ends.
    static_assert(!std::is_reference_v<Result> && !std::is_pointer_v<Result> &&
                      !xt::is_xexpression<std::decay_t<Result>>::value,
                  "tapegrad: modify: the write may return a plain value (a number, a flag), not a reference, "
                  "pointer, xtensor view or expression of the value: those could write past the version check");
    const shape_type before = storage.data.shape();
    if constexpr (std::is_void_v<Result>) {
        write(storage.data);
        check_modified_shape(before);
    } else {
        Result result = write(storage.data);
        check_modified_shape(before);
        return result;
    }
}

template <class T>
template <class F>
HookHandle BasicTensor<T>::register_hook(F&& fn) {
    using R = std::invoke_result_t<std::decay_t<F>&, const BasicTensor&>;
    static_assert(std::is_void_v<R> || std::is_convertible_v<R, BasicTensor>,
                  "tapegrad: register_hook: the hook takes the gradient (const Tensor&) and returns a "
                  "replacement Tensor or nothing");
    if constexpr (std::is_void_v<R>)
        return add_hook([f = std::forward<F>(fn)](const BasicTensor& g) mutable {
            f(g);
            return BasicTensor();
        }, false);
    else
        return add_hook(HookFn(std::forward<F>(fn)), false);
}

template <class T>
template <class F>
HookHandle BasicTensor<T>::register_grad_ready_hook(F&& fn) {
    static_assert(std::is_invocable_v<std::decay_t<F>&, const BasicTensor&>,
                  "tapegrad: register_grad_ready_hook: the hook takes the leaf's gradient (const Tensor&)");
    return add_hook([f = std::forward<F>(fn)](const BasicTensor& g) mutable {
        f(g);
        return BasicTensor();
    }, true);
}

template <class T>
template <class U>
BasicTensor<U> BasicTensor<T>::to() const {
    return BasicTensor<U>(Array<U>(value()));
}

extern template class BasicTensor<float>;
extern template class BasicTensor<double>;

}  // namespace tapegrad
