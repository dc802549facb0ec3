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

#include <functional>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// One gradient per input of an op (undefined where the input gets none).
template <class T>
using Grads = std::vector<BasicTensor<T>>;
template <class T>
class VjpContext;

}  // namespace tapegrad

namespace tapegrad::detail {

using tapegrad::Grads;
using tapegrad::VjpContext;

// A hook registered on a tensor. The list that holds it owns it; a
// HookHandle only observes it, so a handle outliving its tensor is harmless.
// `removed` is atomic: remove() may be called from any thread.
struct HookEntry {
    std::atomic<bool> removed{false};
};

// The hooks of one tensor: on the TensorImpl of a leaf, on the Node of a
// non-leaf (so they run even when the user dropped the tensor's handle).
template <class T>
struct Hooks {
    struct Entry : HookEntry {
        std::function<BasicTensor<T>(const BasicTensor<T>&)> fn;  // returns a replacement or undefined
    };
    std::vector<std::shared_ptr<Entry>> on_grad;   // register_hook
    std::vector<std::shared_ptr<Entry>> on_ready;  // register_grad_ready_hook (leaves)

    Hooks();  // counted, so a pass can skip all hook work while no tensor has any
    ~Hooks();
    Hooks(const Hooks&) = delete;
    Hooks& operator=(const Hooks&) = delete;
};
bool any_hooks() noexcept;

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
    typename Array<T>::shape_type shape;  // reduce broadcast gradients to this (inline up to 4 dimensions)
    bool needs_grad() const { return fn != nullptr || !leaf.expired(); }
};

// A node's inputs, in the thread's record cache like the node itself.
template <class T>
using Edges = std::vector<Edge<T>, RecordAllocator<Edge<T>>>;

template <class T>
struct Node : std::enable_shared_from_this<Node<T>> {
    const char* name = "";
    std::uint64_t seq = 0;  // tape position
    Edges<T> inputs;
    typename Array<T>::shape_type out_shape;
    std::size_t saved_bytes = 0;  // for the profiler

    // Backward bookkeeping.
    std::uint64_t mark = 0;
    BasicTensor<T> pending;  // sum of the gradients flowing in
    bool released = false;
    bool needed = true;  // lies between the root and a requested tensor (grad())
    std::uint64_t running_pass = 0;  // the backward pass working on this node now, if any
    std::weak_ptr<TensorImpl<T>> retained;  // the output, when retain_grad() was called on it
    std::shared_ptr<Hooks<T>> hooks;        // the output's register_hook hooks, if any

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

}  // namespace tapegrad::detail
