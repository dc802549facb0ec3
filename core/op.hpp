// Writing an op: its forward and its vector-Jacobian product (VJP) side by
// side, in one function. This is the mechanism every built-in op of ops/
// uses, and it is public: include <tapegrad/core/op.hpp> and write your own
// ops in your own files the same way (README, "Writing your own op").
//
//   template <class T>
//   BasicTensor<T> exp(const BasicTensor<T>& x) {
//       Op<T> op("exp", {x});                        // name (for errors and the profiler), inputs
//       auto y = op.forward([](const Array<T>& v) {  // forward on the inputs' xtensor values
//           return Array<T>(xt::exp(v));
//       });
//       return op.record(y, [sy = op.save_output(y)](VjpContext<T>& ctx, const BasicTensor<T>& g) {
//           return Grads<T>{g * ctx.unpack(sy)};     // one gradient per input
//       });
//   }
//
// Two flavours of backward:
// - record(out, vjp): the VJP is written with tensor ops. When backward runs
//   with create_graph it is itself recorded, so second derivatives work;
//   otherwise it runs under NoGrad at the cost of plain xtensor work.
// - record_raw(out, vjp): the VJP is written on Array<T> values
//   (`RawGrads<T> vjp(VjpContext<T>&, const Array<T>& g)`), for kernels
//   with no tensor-op form. First order only: a backward with create_graph
//   that reaches it throws GraphError naming the op.
//
// The forward is a callable over the inputs' arrays, one `const Array<T>&`
// parameter per input in order (or one ArrayList<T> for any number), with
// the op's attributes (axes, scalars) captured by value: it must read its
// inputs only through its parameters. Eager mode calls it once, at once. A
// captured program (core/compile/) keeps it and calls it again on every
// replay, with new input values. op.output(value) still takes a value
// computed inline, but such an op cannot be captured (capture refuses it,
// naming the op). A value with no gradient computed from tensors (a mask,
// a sign) is an op too, without record(): see no_grad_op below.
//
// Saved tensors (op.save(input), op.save_output(out)) are checked against
// in-place writes when unpacked. op.needs(i) / ctx.needs(i) say whether input
// i wants a gradient. Return one entry for every input, also for those that
// want none: an undefined tensor there (in record_raw, any array, e.g. an
// empty one). The engine checks what a VJP returns:
// one gradient per input, each of the input's shape or of a shape the input
// broadcasts to (it is then summed down, once, for every op); anything else
// is a GraphError naming the op, its tape position and both shapes.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <type_traits>
#include <cmath>
#include <sstream>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/profiler.hpp>

namespace tapegrad {

namespace detail {
// While one lives on this thread, backward passes that start leave leaves'
// hooks alone. checkpoint's inner grad() differentiates the real parameters
// its function captured; their hooks belong to the outer pass, which runs
// them once, on the whole gradient (the inner pass sees only part of it).
class SkipLeafHooks {
public:
    SkipLeafHooks();
    ~SkipLeafHooks();
    SkipLeafHooks(const SkipLeafHooks&) = delete;
    SkipLeafHooks& operator=(const SkipLeafHooks&) = delete;
    static bool active();
};
// ValueError: needs(i) asked about an input the op does not have.
[[noreturn]] void input_out_of_range(const char* op, std::size_t input, std::size_t inputs);
// GraphError: record() on a tensor that is not this op's new output, or a second record().
[[noreturn]] void bad_record_target(const char* op, bool twice);
}  // namespace detail

// Gradients of a raw (record_raw) VJP: one array per input.
template <class T>
using RawGrads = std::vector<Array<T>>;

// A tensor an op saved for backward: remembers the version it had, so a
// later in-place write is caught instead of silently giving wrong gradients.
//
// A saved tensor is kept by its value, its node and a weak reference, never
// owned (see docs/engine.md: a gradient kept in .grad may hold a graph that
// saved this very tensor, and owning it would close a cycle; a constant saved
// today may be made to require grad tomorrow). Unpacked, it is the original
// tensor while it lives, or its value re-attached to its node under
// create_graph, so second derivatives reach it.
template <class T>
struct Saved {
    std::shared_ptr<detail::Storage<T>> storage;    // the value,
    std::weak_ptr<detail::TensorImpl<T>> original;  // the tensor itself while it lives,
    std::shared_ptr<detail::Node<T>> grad_fn;       // and its node (non-leaves)
    std::uint64_t version = 0;
};

// An op's own output saved for backward. Only the value is kept (keeping the
// tensor would make the node own itself); when backward builds a graph the
// value is re-attached to the node that produced it.
template <class T>
struct SavedOutput {
    std::shared_ptr<detail::Storage<T>> storage;
    std::uint64_t version = 0;
};

// What a VJP sees besides the incoming gradient.
template <class T>
class VjpContext {
public:
    VjpContext(detail::Node<T>& node, bool create_graph) : node_(node), create_graph_(create_graph) {}
    bool needs(std::size_t input) const {
        if (input >= node_.inputs.size()) detail::input_out_of_range(node_.name, input, node_.inputs.size());
        return node_.inputs[input].needs_grad();
    }
    std::size_t inputs() const { return node_.inputs.size(); }
    bool create_graph() const { return create_graph_; }
    const char* op_name() const { return node_.name; }
    std::uint64_t tape_position() const { return node_.seq; }

    // A saved tensor, after checking it was not modified in place since.
    BasicTensor<T> unpack(const Saved<T>& s) const;
    BasicTensor<T> unpack(const SavedOutput<T>& s) const;
    // Only its value (no tensor is made), same check: for raw VJPs.
    const Array<T>& value(const Saved<T>& s) const;
    const Array<T>& value(const SavedOutput<T>& s) const;

private:
    [[noreturn]] void modified(std::uint64_t saved, std::uint64_t now) const;
    detail::Node<T>& node_;
    bool create_graph_;
};

}  // namespace tapegrad

namespace tapegrad::detail {

using tapegrad::RawGrads;
using tapegrad::Saved;
using tapegrad::SavedOutput;

// Throws the GraphError for a record_raw VJP reached by a create_graph backward.
[[noreturn]] void raw_vjp_under_create_graph(const char* op, std::uint64_t tape_position);

std::string shape_str(const Shape& shape);
template <class S>
std::string shape_str(const S& shape) {
    return shape_str(Shape(shape.begin(), shape.end()));
}

// Throws ShapeError naming the op and both shapes unless numpy broadcasting
// can combine them.
void check_broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// `from` broadcasts to `to` itself (numpy's rules, `to` unchanged).
template <class A, class B>
bool broadcasts_into(const A& from, const B& to) {
    if (from.size() > to.size()) return false;
    for (std::size_t i = 1; i <= from.size(); ++i) {
        const auto d = from[from.size() - i];
        if (d != 1 && d != to[to.size() - i]) return false;
    }
    return true;
}
template <class A, class B>
void check_broadcast(const char* op, const A& a, const B& b) {
    // Fast paths, no allocation: equal shapes, or one broadcast into the
    // other (a bias row, a column, a scalar), whose result is a tensor that
    // exists (its element count was checked when it was made).
    if (a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin())) return;
    if (broadcasts_into(a, b) || broadcasts_into(b, a)) return;
    check_broadcast_shapes(op, Shape(a.begin(), a.end()), Shape(b.begin(), b.end()));
}
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Turns a possibly negative axis into an index in [0, ndim); ValueError
// naming the op otherwise.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);

// Throws AnomalyError when a value holds NaN or Inf. `what` says whose value.
template <class T>
void check_finite(const Array<T>& value, const std::string& what);

}  // namespace tapegrad::detail

namespace tapegrad {

// The input arrays of an op with any number of inputs (concat, stack), as
// its forward callable sees them.
template <class T>
struct ArrayList {
    const Array<T>* const* items;
    std::size_t count;
    const Array<T>& operator[](std::size_t i) const { return *items[i]; }
    std::size_t size() const { return count; }
};

}  // namespace tapegrad

namespace tapegrad::detail {

using tapegrad::ArrayList;

// An op's forward, kept by a captured program: its callable over the input
// arrays (core/compile/ replays it).
template <class T>
using ForwardFn = std::function<Array<T>(const Array<T>* const* inputs, std::size_t count)>;

// The forward of an elementwise op on one block of n elements: out[i] from
// in[k][i] (bit k of `contiguous` set) or in[k][0] (a value repeated). A
// forward callable with such a `block` member (kernels::elementwise,
// kernels::Unary) lets a captured program fuse the op with its neighbours.
template <class T>
using BlockFn = std::function<void(T* out, const T* const* in, unsigned contiguous, std::size_t n)>;

template <class T, class F, class = void>
struct has_block : std::false_type {};
template <class T, class F>
struct has_block<T, F, std::void_t<decltype(std::declval<const F&>().block(
                           std::declval<T*>(), std::declval<const T* const*>(), 0u, std::size_t{}))>>
    : std::true_type {};

// The forward of a reduction of an input laid out as rows of `cols`
// elements, on `rows` contiguous rows: over the trailing axes, out[r] from
// in[r * cols, ...); over the leading axes (`leading`), the rows folded into
// out's one row of cols (starting from the first row when `first`, else
// into what out holds). A forward callable with such a `rows` member and
// `cols` and `leading` members (kernels::RowReduction) lets a captured
// program fold the reduction into a fused run of elementwise ops.
template <class T>
struct RowForm {
    std::function<void(T* out, const T* in, std::size_t rows, bool first)> fn;
    std::size_t cols = 0;
    bool leading = false;
};

template <class T, class F, class = void>
struct has_rows : std::false_type {};
template <class T, class F>
struct has_rows<T, F, std::void_t<decltype(std::declval<const F&>().rows(std::declval<T*>(), std::declval<const T*>(),
                                                                         std::size_t{}, bool{})),
                                  decltype(std::size_t{std::declval<const F&>().cols}),
                                  decltype(bool{std::declval<const F&>().leading})>> : std::true_type {};

// What a running capture (core/compile/capture.cpp) is told by every op on
// its thread. Null when none runs: eager mode pays one thread-local load.
template <class T>
class CaptureSink {
public:
    // op.forward(fn) made `out` from `inputs` (all of them, in order);
    // `block` is set when the op is elementwise (see BlockFn), `rows` when it
    // is a reduction over its trailing axes (see RowForm).
    virtual void forward(const char* op, const std::vector<BasicTensor<T>>& inputs, const BasicTensor<T>& out,
                         ForwardFn<T> fn, BlockFn<T> block, RowForm<T> rows) = 0;
    // op.output(value): a value computed inline, which cannot be replayed.
    virtual void inline_output(const char* op) = 0;
    // A backward reached a record_raw VJP (no tensor ops to record).
    virtual void raw_backward(const char* op) = 0;
    // An op copied the integer index `given` into `stored` (gather's
    // labels): a program input when `given` is one, rebound on every replay.
    virtual void index(const std::vector<std::int64_t>& given, std::shared_ptr<std::vector<std::int64_t>> stored) = 0;

protected:
    ~CaptureSink() = default;
};
struct CaptureSinks {
    CaptureSink<float>* f32 = nullptr;
    CaptureSink<double>* f64 = nullptr;
};
extern thread_local CaptureSinks capture_sinks;
// Captures running on any thread: while there are none (eager mode), an op
// skips the thread-local lookup (a plain load instead of a call).
extern std::atomic<int> captures_running;
template <class T>
CaptureSink<T>* capture_sink() noexcept {
    if (captures_running.load(std::memory_order_relaxed) == 0) return nullptr;
    if constexpr (std::is_same_v<T, float>) return capture_sinks.f32;
    else return capture_sinks.f64;
}

// GraphError: a forward callable that takes another number of arrays than
// the op has inputs.
[[noreturn]] void forward_arity(const char* op, std::size_t takes, std::size_t inputs);

template <class T, class F>
decltype(auto) call_forward(F& f, const Array<T>* const* in, std::size_t n, const char* op) {
    using A = const Array<T>&;
    if constexpr (std::is_invocable_v<F&, ArrayList<T>>) {
        return f(ArrayList<T>{in, n});
    } else if constexpr (std::is_invocable_v<F&>) {
        if (n != 0) forward_arity(op, 0, n);
        return f();
    } else if constexpr (std::is_invocable_v<F&, A>) {
        if (n != 1) forward_arity(op, 1, n);
        return f(*in[0]);
    } else if constexpr (std::is_invocable_v<F&, A, A>) {
        if (n != 2) forward_arity(op, 2, n);
        return f(*in[0], *in[1]);
    } else if constexpr (std::is_invocable_v<F&, A, A, A>) {
        if (n != 3) forward_arity(op, 3, n);
        return f(*in[0], *in[1], *in[2]);
    } else {
        static_assert(std::is_invocable_v<F&, ArrayList<T>>,
                      "op.forward(fn): fn takes the op's input values, one const Array<T>& per input (at most 3), "
                      "or one ArrayList<T>");
    }
}

}  // namespace tapegrad::detail

namespace tapegrad {

// Records one op: Op<T> op("name", {inputs...}); then output(), save(),
// record(). See the top of this file.
template <class T>
class Op {
public:
    Op(const char* name, std::initializer_list<BasicTensor<T>> inputs) : name_(name) {
        start(inputs.begin(), inputs.end());
    }
    Op(const char* name, const std::vector<BasicTensor<T>>& inputs) : name_(name) {
        start(inputs.begin(), inputs.end());
    }

    // True when the result will be on the graph.
    bool recording() const { return recording_; }
    bool needs(std::size_t input) const {
        if (input >= inputs_) detail::input_out_of_range(name_, input, inputs_);
        return recording_ && edges_[input].needs_grad();
    }

    // Runs the forward callable on the inputs' values and wraps the result
    // (see the top of this file). Under capture the callable is also kept.
    template <class F>
    BasicTensor<T> forward(F&& fn) {
        const Array<T>* const* in = inputs_ > in_.size() ? in_many_.data() : in_.data();
        if constexpr (detail::has_block<T, std::decay_t<F>>::value) {
            // An elementwise forward broadcasts its inputs: a ShapeError naming
            // the op when they do not (a user op has no check of its own).
            for (std::size_t i = 0; i < inputs_; ++i)
                for (std::size_t j = i + 1; j < inputs_; ++j)
                    if (in[i] && in[j]) detail::check_broadcast(name_, in[i]->shape(), in[j]->shape());
        }
        BasicTensor<T> out = wrap(detail::call_forward<T>(fn, in, inputs_, name_));
        if (auto* sink = sink_) {
            using Fn = std::decay_t<F>;
            detail::BlockFn<T> block;
            if constexpr (detail::has_block<T, Fn>::value)
                block = [f = Fn(fn)](T* o, const T* const* i, unsigned contiguous, std::size_t n) {
                    f.block(o, i, contiguous, n);
                };
            detail::RowForm<T> rows;
            if constexpr (detail::has_rows<T, Fn>::value)
                rows = {[f = Fn(fn)](T* o, const T* i, std::size_t r, bool first) { f.rows(o, i, r, first); },
                        fn.cols, fn.leading};
            sink->forward(name_, kept_, out, [f = Fn(std::forward<F>(fn)), name = name_](
                                                 const Array<T>* const* args, std::size_t n) mutable {
                return Array<T>(detail::call_forward<T>(f, args, n, name));
            }, std::move(block), std::move(rows));
        }
        return out;
    }

    // Wraps a forward value computed inline (an xtensor expression is
    // evaluated once). Such an op cannot be captured: prefer forward(fn).
    template <class E>
    BasicTensor<T> output(E&& value) {
        if (sink_) sink_->inline_output(name_);
        return wrap(std::forward<E>(value));
    }

    Saved<T> save(const BasicTensor<T>& input) {
        if (!input.defined()) return {};
        if (recording_) saved_bytes_ += input.size() * sizeof(T);
        return Saved<T>{input.impl()->storage, input.impl(), input.grad_fn(), input.version()};  // see Saved
    }
    SavedOutput<T> save_output(const BasicTensor<T>& out) {
        if (recording_) saved_bytes_ += out.size() * sizeof(T);
        return SavedOutput<T>{out.impl()->storage, out.version()};
    }

    // Attaches the node to `out` when recording. `vjp(ctx, grad)` returns
    // one gradient per input (Grads<T>), written with tensor ops.
    template <class F>
    BasicTensor<T> record(BasicTensor<T> out, F&& vjp) {
        // `out` must be this op's new tensor (from output()): recording onto
        // an input or another op's result would silently turn it into this
        // op's output.
        if (recorded_ || !out.defined() || out.impl()->grad_fn || out.impl()->requires_grad)
            detail::bad_record_target(name_, recorded_);
        recorded_ = true;
        if (recording_) {
            // Node and control block in one block from the thread's record
            // cache (docs/engine.md, "Where graph memory comes from").
            using N = detail::FnNode<T, std::decay_t<F>>;
            auto node = std::allocate_shared<N>(detail::RecordAllocator<N>(), std::decay_t<F>(std::forward<F>(vjp)));  // also a named lambda
            node->name = name_;
            node->seq = detail::next_tape_position();
            node->inputs = std::move(edges_);
            node->out_shape = out.shape();
            node->saved_bytes = saved_bytes_;
            out.impl()->grad_fn = std::move(node);
            out.impl()->requires_grad = true;
        }
        if (profiler_) {
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - started_).count();
            profiler_->add_forward(name_, static_cast<std::uint64_t>(ns), saved_bytes_);
        }
        return out;
    }

    // The same with a VJP on raw values: `vjp(ctx, g)` gets the incoming
    // gradient as a const Array<T>& and returns RawGrads<T>, one array per
    // input (one for every input; those with !ctx.needs(i) are ignored). It cannot
    // be differentiated again: create_graph through it is a GraphError.
    template <class F>
    BasicTensor<T> record_raw(BasicTensor<T> out, F&& vjp) {
        return record(std::move(out), [f = std::forward<F>(vjp)](VjpContext<T>& ctx, const BasicTensor<T>& g) mutable {
            if (ctx.create_graph()) {
                if (auto* sink = detail::capture_sink<T>()) sink->raw_backward(ctx.op_name());
                detail::raw_vjp_under_create_graph(ctx.op_name(), ctx.tape_position());
            }
            RawGrads<T> raw = f(ctx, g.value());
            Grads<T> grads(raw.size());
            for (std::size_t i = 0; i < raw.size(); ++i)
                if (i < ctx.inputs() && ctx.needs(i)) grads[i] = BasicTensor<T>(std::move(raw[i]));
            return grads;
        });
    }

private:
    template <class E>
    BasicTensor<T> wrap(E&& value) {
        // An Array<T> rvalue is moved into the tensor once; an expression is evaluated once.
        BasicTensor<T> out;
        if constexpr (std::is_same_v<std::remove_cv_t<std::remove_reference_t<E>>, Array<T>> &&
                      !std::is_lvalue_reference_v<E> && !std::is_const_v<std::remove_reference_t<E>>)
            out = BasicTensor<T>(detail::make_tensor_impl<T>(std::move(value)));
        else
            out = BasicTensor<T>(detail::make_tensor_impl<T>(Array<T>(std::forward<E>(value))));
        if (anomaly_enabled()) detail::check_finite(out.value(), "forward of '" + std::string(name_) + "'");
        return out;
    }

    template <class It>
    void start(It first, It last) {
        inputs_ = static_cast<std::size_t>(last - first);
        // The inputs' values, for forward(fn); the tensors themselves under capture.
        const Array<T>** in = in_.data();
        if (inputs_ > in_.size()) {
            in_many_.resize(inputs_);
            in = in_many_.data();
        }
        for (It it = first; it != last; ++it) *in++ = it->defined() ? &it->value() : nullptr;
        sink_ = detail::capture_sink<T>();
        if (sink_) kept_.assign(first, last);
        profiler_ = Profiler::current();
        if (profiler_) started_ = std::chrono::steady_clock::now();
        if (!grad_enabled()) return;
        for (It it = first; it != last; ++it)
            if (it->defined() && it->requires_grad()) recording_ = true;
        if (!recording_) return;
        edges_.reserve(static_cast<std::size_t>(last - first));
        for (It it = first; it != last; ++it) {
            detail::Edge<T> e;
            if (it->defined()) {
                e.shape = it->shape();
                if (it->requires_grad()) {
                    if (it->grad_fn()) e.fn = it->grad_fn();
                    else e.leaf = it->impl();
                }
            }
            edges_.push_back(std::move(e));
        }
    }

    const char* name_;
    std::array<const Array<T>*, 3> in_;  // the first inputs_ are set by start()
    std::vector<const Array<T>*> in_many_;  // more than 3 inputs (concat, stack)
    std::vector<BasicTensor<T>> kept_;      // only under capture
    detail::CaptureSink<T>* sink_ = nullptr;  // the capture running when the op started, if any
    bool recording_ = false;
    detail::Edges<T> edges_;
    std::size_t saved_bytes_ = 0;
    std::size_t inputs_ = 0;
    bool recorded_ = false;
    Profiler* profiler_ = nullptr;
    std::chrono::steady_clock::time_point started_;
};

// A value with no gradient computed from tensors (a mask, a sign, a
// comparison): an op without a VJP, so that a captured program computes it
// again on every replay (a BasicTensor<T>(array) made from their values
// would be a constant of the program). `fn` is a forward callable as for
// Op::forward.
template <class T, class F>
BasicTensor<T> no_grad_op(const char* name, std::initializer_list<BasicTensor<T>> inputs, F&& fn) {
    if (!detail::capture_sink<T>() && inputs.size() <= 3) {  // eager: the value is all there is to make
        std::array<const Array<T>*, 3> in{};
        std::size_t n = 0;
        for (const auto& t : inputs) in[n++] = t.defined() ? &t.value() : nullptr;
        return BasicTensor<T>(Array<T>(detail::call_forward<T>(fn, in.data(), n, name)));
    }
    NoGradGuard off;  // no edges to build: the result is off the graph
    Op<T> op(name, inputs);
    return op.forward(std::forward<F>(fn));
}

template <class T>
BasicTensor<T> VjpContext<T>::unpack(const Saved<T>& s) const {
    if (!s.storage) return {};
    if (s.storage->version != s.version) modified(s.version, s.storage->version);
    // Under create_graph the tensor itself (its gradient flows on); without,
    // only its value, off the graph, as a VJP that records ops of its own
    // must see it.
    auto original = s.original.lock();
    if (original && (create_graph_ || !original->requires_grad)) return BasicTensor<T>(std::move(original));
    // The value, re-attached to its node under create_graph if the tensor
    // is gone (a leaf nobody holds needs no gradient).
    auto impl = detail::make_tensor_impl<T>(s.storage);
    if (create_graph_ && s.grad_fn) {
        impl->grad_fn = s.grad_fn;
        impl->requires_grad = true;
    }
    return BasicTensor<T>(std::move(impl));
}

template <class T>
BasicTensor<T> VjpContext<T>::unpack(const SavedOutput<T>& s) const {
    if (!s.storage) return {};  // nothing was saved (as for Saved)
    if (s.storage->version != s.version) modified(s.version, s.storage->version);
    auto impl = detail::make_tensor_impl<T>(s.storage);
    if (create_graph_) {
        impl->grad_fn = node_.shared_from_this();
        impl->requires_grad = true;
    }
    return BasicTensor<T>(std::move(impl));
}

template <class T>
const Array<T>& VjpContext<T>::value(const Saved<T>& s) const {
    if (!s.storage) throw GraphError(std::string("backward: '") + node_.name + "' unpacked a saved tensor that was undefined");
    if (s.storage->version != s.version) modified(s.version, s.storage->version);
    return s.storage->data;
}

template <class T>
const Array<T>& VjpContext<T>::value(const SavedOutput<T>& s) const {
    if (!s.storage) throw GraphError(std::string("backward: '") + node_.name + "' unpacked a saved output that was undefined");
    if (s.storage->version != s.version) modified(s.version, s.storage->version);
    return s.storage->data;
}

}  // namespace tapegrad

// The spelling used inside the library (ops/*.cpp: using detail::Op; ...).
namespace tapegrad::detail {
using tapegrad::no_grad_op;
using tapegrad::Op;
}  // namespace tapegrad::detail
