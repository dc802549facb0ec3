// The generic backward pass. It collects the nodes that reach the root,
// walks them in reverse tape order (reverse recording order is a reverse
// topological order), and for each node applies its vector-Jacobian product
// to the gradient that flowed in, adding (+=) each result into the input's
// gradient: a tensor used by several ops receives the sum of their
// contributions (the multivariate chain rule). Nothing here recurses.
#include <algorithm>
#include <chrono>
#include <sstream>

#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/core/node.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/reduce.hpp>

namespace tapegrad {

namespace {

std::atomic<std::uint64_t> g_backward_pass{0};

template <class T>
bool uniquely_owned(const BasicTensor<T>& t) {
    return t.impl().use_count() == 1 && t.impl()->storage.use_count() == 1 && !t.grad_fn();
}

// grad += contribution, in place when nothing else can see the buffer.
template <class T>
void accumulate(BasicTensor<T>& grad, BasicTensor<T> contribution, bool create_graph) {
    if (!grad.defined()) {
        grad = std::move(contribution);
    } else if (!create_graph && uniquely_owned(grad) && grad.shape() == contribution.shape()) {
        xt::noalias(grad.mutable_value()) += contribution.value();
    } else {
        grad = grad + contribution;
    }
}

// A leaf's .grad persists across backward calls (accumulates until zeroed),
// so it must own its buffer: a contribution that others may still see is
// copied once.
template <class T>
void accumulate_leaf(detail::TensorImpl<T>& leaf, BasicTensor<T> contribution, bool create_graph) {
    auto& grad = leaf.grad;
    if (create_graph) {
        grad = grad.defined() ? grad + contribution : contribution;
    } else if (!grad.defined()) {
        grad = uniquely_owned(contribution) ? std::move(contribution)
                                            : BasicTensor<T>(Array<T>(contribution.value()));
    } else if (!grad.requires_grad() && grad.shape() == contribution.shape()) {
        xt::noalias(grad.mutable_value()) += contribution.value();
    } else {
        grad = (grad + contribution).detach();
    }
}

struct PauseHooks {
    Profiler* profiler;
    bool anomaly;
    PauseHooks(Profiler* p, bool a) : profiler(p), anomaly(a) {
        if (profiler) Profiler::exchange_current(nullptr);
        if (anomaly) set_anomaly_enabled(false);
    }
    ~PauseHooks() {
        if (profiler) Profiler::exchange_current(profiler);
        if (anomaly) set_anomaly_enabled(true);
    }
};

template <class T>
std::string where_in_graph(const detail::Node<T>& n) {
    return "'" + std::string(n.name) + "' (tape position " + std::to_string(n.seq) + ")";
}

// Where gradients go: into the leaves' .grad (backward), or, for grad(),
// only into the slots of the requested tensors.
template <class T>
struct Targets {
    const std::vector<BasicTensor<T>>* wrt = nullptr;
    std::vector<BasicTensor<T>>* out = nullptr;

    // Slot of a tensor given by its impl or by the node that produced it.
    template <class P>
    BasicTensor<T>* slot(const P* key) const {
        for (std::size_t k = 0; k < wrt->size(); ++k) {
            const auto& t = (*wrt)[k];
            if (static_cast<const void*>(t.impl().get()) == key ||
                (t.grad_fn() && static_cast<const void*>(t.grad_fn().get()) == key))
                return &(*out)[k];
        }
        return nullptr;
    }
};

template <class T>
void deliver_to_leaf(const Targets<T>& targets, detail::TensorImpl<T>& leaf, BasicTensor<T> g, bool create_graph) {
    if (!targets.wrt) {
        accumulate_leaf(leaf, std::move(g), create_graph);
    } else if (auto* slot = targets.slot(&leaf)) {
        accumulate(*slot, std::move(g), create_graph);
    }
}

template <class T>
void run_backward(const BasicTensor<T>& root, const BasicTensor<T>& seed, BackwardOptions options,
                  const Targets<T>& targets = {}) {
    if (options.create_graph) options.retain_graph = true;  // a recorded backward refers to saved values
    if (!root.requires_grad())
        throw GraphError("backward: the tensor does not require grad: none of the tensors it was computed from "
                         "has requires_grad set (or it was computed under NoGradGuard)");
    if (seed.shape() != root.shape())
        throw ShapeError("backward: the seed gradient has shape " + detail::shape_str(seed.shape()) +
                         " but the tensor has shape " + detail::shape_str(root.shape()));
    if (!root.grad_fn()) {
        deliver_to_leaf(targets, *root.impl(), seed, options.create_graph);
        return;
    }

    // Collect every node that reaches the root (iteratively).
    const std::uint64_t pass = g_backward_pass.fetch_add(1, std::memory_order_relaxed) + 1;
    std::vector<detail::Node<T>*> order;
    std::vector<detail::Node<T>*> stack{root.grad_fn().get()};
    root.grad_fn()->mark = pass;
    while (!stack.empty()) {
        auto* n = stack.back();
        stack.pop_back();
        if (n->released)
            throw GraphError("backward: the graph through " + where_in_graph(*n) +
                             " was already released by an earlier backward; pass "
                             "BackwardOptions{/*retain_graph=*/true} to the first backward to run backward twice");
        order.push_back(n);
        for (auto& e : n->inputs)
            if (e.fn && e.fn->mark != pass) {
                e.fn->mark = pass;
                stack.push_back(e.fn.get());
            }
    }
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->seq > b->seq; });

    // Without create_graph the VJPs run unrecorded, at plain xtensor cost.
    struct ModeRestore {
        bool previous = grad_enabled();
        ~ModeRestore() { set_grad_enabled(previous); }
    } restore;
    set_grad_enabled(options.create_graph);
    const bool anomaly = anomaly_enabled();
    Profiler* profiler = Profiler::current();

    root.grad_fn()->pending = seed;
    try {
        for (auto* n : order) {
            BasicTensor<T> g = std::move(n->pending);
            n->pending = BasicTensor<T>();
            if (!g.defined()) continue;  // no gradient reached this node
            if (targets.wrt) {
                if (auto* slot = targets.slot(n)) accumulate(*slot, g, options.create_graph);
            }

            auto started = profiler ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
            detail::VjpContext<T> ctx(*n, options.create_graph);
            detail::Grads<T> grads;
            {
                // The ops inside a VJP belong to this node: they are timed as
                // its backward and their values checked as its gradients.
                PauseHooks pause(profiler, anomaly);
                grads = n->vjp(ctx, g);
            }
            if (!options.retain_graph) {
                n->release();
                n->released = true;
            }
            if (grads.size() != n->inputs.size())
                throw GraphError("backward: " + where_in_graph(*n) + " returned " + std::to_string(grads.size()) +
                                 " gradients for " + std::to_string(n->inputs.size()) + " inputs");

            for (std::size_t i = 0; i < grads.size(); ++i) {
                auto& e = n->inputs[i];
                if (!e.needs_grad() || !grads[i].defined()) continue;
                BasicTensor<T> gi = std::move(grads[i]);
                if (gi.shape() != e.shape) gi = sum_to(gi, Shape(e.shape.begin(), e.shape.end()));
                if (anomaly)
                    detail::check_finite(gi.value(), "gradient of " + where_in_graph(*n) + " for input " +
                                                         std::to_string(i));
                if (e.fn) accumulate(e.fn->pending, std::move(gi), options.create_graph);
                else deliver_to_leaf(targets, *e.leaf, std::move(gi), options.create_graph);
            }
            if (profiler)
                profiler->add_backward(n->name, static_cast<std::uint64_t>(
                                                    std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                        std::chrono::steady_clock::now() - started)
                                                        .count()));
        }
    } catch (...) {
        for (auto* n : order) n->pending = BasicTensor<T>();  // the next backward starts clean
        throw;
    }
}

}  // namespace

template <class T>
void BasicTensor<T>::backward(BackwardOptions options) const {
    if (size() != 1)
        throw GraphError("backward: the tensor has shape " + detail::shape_str(shape()) +
                         ", not a single element; pass a seed gradient of that shape, e.g. "
                         "t.backward(ones_like(t))");
    run_backward(*this, BasicTensor<T>::full(shape_vector(), T(1)), options);
}

template <class T>
void BasicTensor<T>::backward(const BasicTensor<T>& seed, BackwardOptions options) const {
    run_backward(*this, seed, options);
}

template <class T>
std::vector<BasicTensor<T>> grad(const BasicTensor<T>& output, const std::vector<BasicTensor<T>>& inputs,
                                 const BasicTensor<T>& seed, BackwardOptions options) {
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (!inputs[k].defined() || !inputs[k].requires_grad())
            throw GraphError("grad: input " + std::to_string(k) + " does not require grad, so it has no gradient");
    if (!seed.defined() && output.size() != 1)
        throw GraphError("grad: the output has shape " + detail::shape_str(output.shape()) +
                         ", not a single element; pass a seed gradient of that shape");
    std::vector<BasicTensor<T>> out(inputs.size());
    Targets<T> targets{&inputs, &out};
    run_backward(output, seed.defined() ? seed : BasicTensor<T>::full(output.shape_vector(), T(1)), options, targets);
    return out;
}

template std::vector<Tensor> grad(const Tensor&, const std::vector<Tensor>&, const Tensor&, BackwardOptions);
template std::vector<Tensor64> grad(const Tensor64&, const std::vector<Tensor64>&, const Tensor64&, BackwardOptions);
template void BasicTensor<float>::backward(BackwardOptions) const;
template void BasicTensor<double>::backward(BackwardOptions) const;
template void BasicTensor<float>::backward(const BasicTensor<float>&, BackwardOptions) const;
template void BasicTensor<double>::backward(const BasicTensor<double>&, BackwardOptions) const;

}  // namespace tapegrad
