// How an op is written: its forward and its vector-Jacobian product side by
// side, in one function, registered once. Include only from ops/*.cpp.
//
//   template <class T>
//   BasicTensor<T> exp(const BasicTensor<T>& x) {
//       Op<T> op("exp", {x});
//       auto y = op.output(xt::exp(x.value()));
//       return op.record(y, [y = op.save_output(y)](auto& ctx, const BasicTensor<T>& g) {
//           return Grads<T>{g * ctx.unpack(y)};
//       });
//   }
//
// The VJP is written with tensor ops, so when backward runs with
// create_graph it is itself recorded (higher derivatives); otherwise
// backward runs under NoGrad and the same ops cost plain xtensor work.
// Gradients for broadcast inputs may keep the broadcast shape: the engine
// reduces them to the input's shape, once, for every op.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/profiler.hpp>

namespace tapegrad::detail {

std::string shape_str(const Shape& shape);
template <class S>
std::string shape_str(const S& shape) {
    return shape_str(Shape(shape.begin(), shape.end()));
}

// Throws ShapeError naming the op and both shapes unless numpy broadcasting
// can combine them.
void check_broadcast_shapes(const char* op, const Shape& a, const Shape& b);
template <class A, class B>
void check_broadcast(const char* op, const A& a, const B& b) {
    // Fast path: equal shapes always combine.
    if (a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin())) return;
    check_broadcast_shapes(op, Shape(a.begin(), a.end()), Shape(b.begin(), b.end()));
}
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Turns a possibly negative axis into an index in [0, ndim); ValueError
// naming the op otherwise.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);

// Throws AnomalyError when a value holds NaN or Inf. `what` says whose value.
template <class T>
void check_finite(const Array<T>& value, const std::string& what);

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
    bool needs(std::size_t input) const { return recording_ && edges_[input].needs_grad(); }

    // Wraps the forward value (an xtensor expression is evaluated once).
    template <class E>
    BasicTensor<T> output(E&& value) {
        BasicTensor<T> out{Array<T>(std::forward<E>(value))};
        if (anomaly_enabled()) check_finite(out.value(), "forward of '" + std::string(name_) + "'");
        return out;
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
    // one gradient per input.
    template <class F>
    BasicTensor<T> record(BasicTensor<T> out, F&& vjp) {
        if (recording_) {
            auto node = std::make_shared<FnNode<T, std::decay_t<F>>>(std::forward<F>(vjp));
            node->name = name_;
            node->seq = next_tape_position();
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

private:
    template <class It>
    void start(It first, It last) {
        profiler_ = Profiler::current();
        if (profiler_) started_ = std::chrono::steady_clock::now();
        if (!grad_enabled()) return;
        for (It it = first; it != last; ++it)
            if (it->defined() && it->requires_grad()) recording_ = true;
        if (!recording_) return;
        edges_.reserve(static_cast<std::size_t>(last - first));
        for (It it = first; it != last; ++it) {
            Edge<T> e;
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
    bool recording_ = false;
    std::vector<Edge<T>> edges_;
    std::size_t saved_bytes_ = 0;
    Profiler* profiler_ = nullptr;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace tapegrad::detail
