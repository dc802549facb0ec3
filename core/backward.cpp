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
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {

namespace {

std::atomic<std::uint64_t> g_backward_pass{0};

// Nobody else can see t's buffer: no other handle, no view, no saved copy.
// Only then may a gradient be written in place.
template <class T>
bool sole_owner(const BasicTensor<T>& t) {
    return t.impl().use_count() == 1 && t.impl()->storage.use_count() == 1;
}

// t with a buffer of its own. Under create_graph a copy stays on the graph
// (clone) so it can be differentiated again; otherwise gradients carry no
// graph.
template <class T>
BasicTensor<T> own(BasicTensor<T> t, bool create_graph) {
    if (create_graph && t.requires_grad()) return sole_owner(t) ? t : clone(t);
    if (sole_owner(t) && !t.grad_fn()) return t;
    return BasicTensor<T>(Array<T>(t.value()));
}

// sum += contribution may write into sum's buffer: nobody else sees it, it
// is not on a graph, and no graph is being recorded.
template <class T>
bool can_add_in_place(const BasicTensor<T>& sum, const BasicTensor<T>& contribution, bool create_graph) {
    return !create_graph && sole_owner(sum) && !sum.grad_fn() && sum.shape() == contribution.shape();
}

template <class T>
void add_in_place(BasicTensor<T>& sum, const BasicTensor<T>& contribution) {
    xt::noalias(sum.impl()->storage->data) += contribution.value();
}

// sum += contribution: in place when nothing else can see sum's buffer,
// otherwise into a new tensor (copy on write).
template <class T>
void accumulate(BasicTensor<T>& sum, BasicTensor<T> contribution, bool create_graph) {
    if (!sum.defined()) {
        sum = std::move(contribution);
    } else if (can_add_in_place(sum, contribution, create_graph)) {
        add_in_place(sum, contribution);
    } else {
        sum = sum + contribution;
    }
}

struct GradModeScope {
    bool previous = grad_enabled();
    explicit GradModeScope(bool on) { set_grad_enabled(on); }
    ~GradModeScope() { set_grad_enabled(previous); }
};

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

// Where gradients go: into .grad of the leaves (and of retain_grad()
// tensors) for backward(), or only into the slots of the requested tensors
// for grad().
template <class T>
struct Targets {
    const std::vector<BasicTensor<T>>* wrt = nullptr;  // distinct tensors
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

// Gradients bound for .grad wait here until the whole pass has succeeded: a
// backward that throws part-way leaves every .grad as it was.
template <class T>
class Staged {
public:
    explicit Staged(std::uint64_t pass) : pass_(pass) {}

    void add(std::shared_ptr<detail::TensorImpl<T>> t, BasicTensor<T> g, bool create_graph) {
        if (!t->requires_grad) return;  // frozen (requires_grad_(false)) since the forward
        if (t->staged_pass > pass_) {  // a backward nested in a VJP staged it since: look it up
            for (std::size_t i = 0; i < items_.size(); ++i)
                if (items_[i].tensor == t) {
                    t->staged_pass = pass_;
                    t->staged_index = i;
                }
        }
        if (t->staged_pass == pass_) {
            accumulate(items_[t->staged_index].grad, std::move(g), create_graph);
            return;
        }
        t->staged_pass = pass_;
        t->staged_index = items_.size();
        items_.push_back({std::move(t), std::move(g)});
    }

    // .grad += staged, for every tensor. Everything that can throw (new
    // buffers, recorded sums) happens before the first .grad changes.
    void commit(bool create_graph) {
        for (auto& item : items_) {
            auto& grad = item.tensor->grad;
            item.in_place = grad.defined() && can_add_in_place(grad, item.grad, create_graph);
            if (item.in_place) continue;
            // A new sum owns its buffer already; a first gradient may be shared.
            item.grad = grad.defined() ? grad + item.grad : own(std::move(item.grad), create_graph);
        }
        for (auto& item : items_) {
            if (item.in_place) add_in_place(item.tensor->grad, item.grad);
            else item.tensor->grad = std::move(item.grad);
        }
    }

private:
    struct Item {
        std::shared_ptr<detail::TensorImpl<T>> tensor;
        BasicTensor<T> grad;
        bool in_place = false;
    };
    std::uint64_t pass_;
    std::vector<Item> items_;
};

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
    const std::uint64_t pass = g_backward_pass.fetch_add(1, std::memory_order_relaxed) + 1;
    // Without create_graph the VJPs run unrecorded, at plain xtensor cost.
    GradModeScope mode(options.create_graph);
    Staged<T> staged(pass);

    if (!root.grad_fn()) {
        if (targets.wrt) {
            if (auto* slot = targets.slot(root.impl().get())) accumulate(*slot, seed, options.create_graph);
        } else {
            staged.add(root.impl(), seed, options.create_graph);
            staged.commit(options.create_graph);
        }
        return;
    }

    // Collect every node that reaches the root (iteratively), in reverse
    // tape order.
    std::vector<detail::Node<T>*> order;
    std::vector<detail::Node<T>*> stack{root.grad_fn().get()};
    root.grad_fn()->mark = pass;
    while (!stack.empty()) {
        auto* n = stack.back();
        stack.pop_back();
        order.push_back(n);
        for (auto& e : n->inputs)
            if (e.fn && e.fn->mark != pass) {
                e.fn->mark = pass;
                stack.push_back(e.fn.get());
            }
    }
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->seq > b->seq; });

    // A backward started inside a VJP (a nested backward or grad()) may not
    // touch the nodes of the pass that is running: their pending gradients,
    // marks and saved values belong to it.
    for (auto* n : order)
        if (n->running_pass)
            throw GraphError("backward: " + where_in_graph(*n) +
                             " belongs to a backward that is still running (this backward or grad() was called "
                             "inside a VJP or hook of it); run it on a separate graph (detach the inputs)");
    struct Running {
        std::vector<detail::Node<T>*>& nodes;
        ~Running() {
            for (auto* n : nodes) n->running_pass = 0;
        }
    } running{order};
    for (auto* n : order) n->running_pass = pass;

    // grad() runs only the nodes between the root and a requested tensor:
    // walking up the tape, a node is needed when one of its inputs is
    // requested or is needed itself.
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        auto* n = *it;
        n->needed = !targets.wrt;
        for (auto& e : n->inputs) {
            if (n->needed) break;
            if (e.fn) n->needed = e.fn->needed || targets.slot(e.fn.get());
            else if (auto leaf = e.leaf.lock()) n->needed = targets.slot(leaf.get()) != nullptr;
        }
    }
    for (auto* n : order)
        if (n->needed && n->released)
            throw GraphError("backward: the graph through " + where_in_graph(*n) +
                             " was already released by an earlier backward; pass "
                             "BackwardOptions{/*retain_graph=*/true} to the first backward to run backward twice");

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
            } else if (auto kept = n->retained.lock()) {
                staged.add(std::move(kept), g, options.create_graph);
            }
            if (!n->needed) continue;

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
                if (!grads[i].defined()) continue;
                std::shared_ptr<detail::TensorImpl<T>> leaf;
                if (!e.fn) {
                    leaf = e.leaf.lock();
                    if (!leaf) continue;  // a constant, or a leaf nobody holds any more
                }
                BasicTensor<T> gi = std::move(grads[i]);
                if (gi.shape() != e.shape) gi = sum_to(gi, Shape(e.shape.begin(), e.shape.end()));
                if (anomaly)
                    detail::check_finite(gi.value(), "gradient of " + where_in_graph(*n) + " for input " +
                                                         std::to_string(i));
                if (e.fn) accumulate(e.fn->pending, std::move(gi), options.create_graph);
                else if (!targets.wrt) staged.add(std::move(leaf), std::move(gi), options.create_graph);
                else if (auto* slot = targets.slot(leaf.get())) accumulate(*slot, std::move(gi), options.create_graph);
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
    staged.commit(options.create_graph);
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
    if (!seed.defined()) return backward(options);  // backward({}, options): no seed, as in grad()
    run_backward(*this, seed, options);
}

template <class T>
std::vector<BasicTensor<T>> grad(const BasicTensor<T>& output, const std::vector<BasicTensor<T>>& inputs,
                                 const BasicTensor<T>& seed, BackwardOptions options) {
    // A tensor requested twice is computed once and returned in both slots.
    std::vector<BasicTensor<T>> distinct;
    std::vector<std::size_t> slot_of(inputs.size());
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        if (!inputs[k].defined() || !inputs[k].requires_grad())
            throw GraphError("grad: input " + std::to_string(k) + " does not require grad, so it has no gradient");
        auto same = std::find_if(distinct.begin(), distinct.end(), [&](const auto& d) { return d.same(inputs[k]); });
        slot_of[k] = static_cast<std::size_t>(same - distinct.begin());
        if (same == distinct.end()) distinct.push_back(inputs[k]);
    }
    if (!seed.defined() && output.size() != 1)
        throw GraphError("grad: the output has shape " + detail::shape_str(output.shape()) +
                         ", not a single element; pass a seed gradient of that shape");
    std::vector<BasicTensor<T>> found(distinct.size());
    Targets<T> targets{&distinct, &found};
    run_backward(output, seed.defined() ? seed : BasicTensor<T>::full(output.shape_vector(), T(1)), options, targets);

    // Every result gets a buffer of its own: none is the seed, another
    // result, or a buffer the graph still uses.
    std::vector<BasicTensor<T>> out(inputs.size());
    for (std::size_t k = 0; k < inputs.size(); ++k) out[k] = found[slot_of[k]];
    found.clear();
    GradModeScope mode(options.create_graph);
    for (auto& r : out)
        if (r.defined()) r = own(std::move(r), options.create_graph);
    return out;
}

template std::vector<Tensor> grad(const Tensor&, const std::vector<Tensor>&, const Tensor&, BackwardOptions);
template std::vector<Tensor64> grad(const Tensor64&, const std::vector<Tensor64>&, const Tensor64&, BackwardOptions);
template void BasicTensor<float>::backward(BackwardOptions) const;
template void BasicTensor<double>::backward(BackwardOptions) const;
template void BasicTensor<float>::backward(const BasicTensor<float>&, BackwardOptions) const;
template void BasicTensor<double>::backward(const BasicTensor<double>&, BackwardOptions) const;

}  // namespace tapegrad
