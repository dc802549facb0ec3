// The graph: a Node is one recorded op. It knows its inputs (the DAG's
// edges), what it saved, and its vector-Jacobian product. Nodes are numbered
// in recording order; that numbering is the tape, and since an op can only
// consume tensors that already exist, it is a topological order.
//
// Nodes are owned by the tensors that need them (a tensor owns the node that
// produced it, a node owns its inputs' nodes), so the graph of a result that
// nobody keeps is freed with it: forward passes without backward do not
// accumulate memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::detail {

template <class T>
using Grads = std::vector<BasicTensor<T>>;

// One input of a node. Exactly one of fn/leaf is set when the input needs a
// gradient; neither when it does not (data, constants).
//
// The graph never owns a leaf: a leaf's .grad may hold a graph (after a
// backward with create_graph), and a graph owning the leaf would close an
// ownership cycle leaf -> .grad -> graph -> leaf that is never freed. A leaf
// nobody holds any more needs no gradient (nobody can read it).
template <class T>
struct Edge {
    std::shared_ptr<Node<T>> fn;        // the node that produced a non-leaf input
    std::weak_ptr<TensorImpl<T>> leaf;  // a leaf that requires grad
    typename Array<T>::shape_type shape;  // reduce broadcast gradients to this
    bool needs_grad() const { return fn != nullptr || !leaf.expired(); }
};

template <class T>
class VjpContext;

template <class T>
struct Node : std::enable_shared_from_this<Node<T>> {
    const char* name = "";
    std::uint64_t seq = 0;  // tape position
    std::vector<Edge<T>> inputs;
    typename Array<T>::shape_type out_shape;
    std::size_t saved_bytes = 0;  // for the profiler

    // Backward bookkeeping.
    std::uint64_t mark = 0;
    BasicTensor<T> pending;  // sum of the gradients flowing in
    bool released = false;
    bool needed = true;  // lies between the root and a requested tensor (grad())
    std::uint64_t running_pass = 0;  // the backward pass working on this node now, if any
    std::weak_ptr<TensorImpl<T>> retained;  // the output, when retain_grad() was called on it

    Node();
    virtual ~Node();
    // One gradient per input (undefined where the input needs none).
    virtual Grads<T> vjp(VjpContext<T>& ctx, const BasicTensor<T>& grad) = 0;
    // Drop what was saved for backward (after a backward without retain_graph).
    virtual void release() = 0;
};

// A node whose vector-Jacobian product is the lambda written beside the
// op's forward. The lambda owns what the op saved.
template <class T, class F>
struct FnNode final : Node<T> {
    std::optional<F> fn;
    explicit FnNode(F&& f) : fn(std::move(f)) {}
    Grads<T> vjp(VjpContext<T>& ctx, const BasicTensor<T>& grad) override {
        if (!fn) throw GraphError(std::string("backward: '") + this->name + "' was released (its saved values are gone)");
        return (*fn)(ctx, grad);
    }
    void release() override { fn.reset(); }
};

// Gives up a reference to a node. When it was the last one, the node is
// destroyed from a thread-local work list instead of recursively, so a chain
// of a million nodes cannot overflow the stack.
template <class T>
void release_node(std::shared_ptr<Node<T>>&& node) noexcept;

std::uint64_t next_tape_position() noexcept;

// A tensor an op saved for backward: remembers the version it had, so a
// later in-place write is caught instead of silently giving wrong gradients.
//
// A saved tensor is kept by its value, its node and a weak reference, never
// owned (see Edge: a gradient kept in .grad may hold a graph that saved this
// very tensor, and owning it would close a cycle; a constant saved today may
// be made to require grad tomorrow). Unpacked, it is the original tensor
// while it lives, or its value re-attached to its node under create_graph,
// so second derivatives reach it.
template <class T>
struct Saved {
    std::shared_ptr<Storage<T>> storage;    // the value,
    std::weak_ptr<TensorImpl<T>> original;  // the tensor itself while it lives,
    std::shared_ptr<Node<T>> grad_fn;       // and its node (non-leaves)
    std::uint64_t version = 0;
};

// An op's own output saved for backward. Only the value is kept (keeping the
// tensor would make the node own itself); when backward builds a graph the
// value is re-attached to the node that produced it.
template <class T>
struct SavedOutput {
    std::shared_ptr<Storage<T>> storage;
    std::uint64_t version = 0;
};

template <class T>
class VjpContext {
public:
    VjpContext(Node<T>& node, bool create_graph) : node_(node), create_graph_(create_graph) {}
    bool needs(std::size_t input) const { return node_.inputs[input].needs_grad(); }
    bool create_graph() const { return create_graph_; }
    BasicTensor<T> unpack(const Saved<T>& s) const;
    BasicTensor<T> unpack(const SavedOutput<T>& s) const;

private:
    [[noreturn]] void modified(std::uint64_t saved, std::uint64_t now) const;
    Node<T>& node_;
    bool create_graph_;
};

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
    auto impl = std::make_shared<TensorImpl<T>>(s.storage);
    if (create_graph_ && s.grad_fn) {
        impl->grad_fn = s.grad_fn;
        impl->requires_grad = true;
    }
    return BasicTensor<T>(std::move(impl));
}

template <class T>
BasicTensor<T> VjpContext<T>::unpack(const SavedOutput<T>& s) const {
    if (s.storage->version != s.version) modified(s.version, s.storage->version);
    auto impl = std::make_shared<TensorImpl<T>>(s.storage);
    if (create_graph_) {
        impl->grad_fn = node_.shared_from_this();
        impl->requires_grad = true;
    }
    return BasicTensor<T>(std::move(impl));
}

}  // namespace tapegrad::detail
