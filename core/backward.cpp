// The generic backward pass. It collects the nodes that reach the root,
// walks them in reverse tape order (reverse recording order is a reverse
// topological order), and for each node applies its vector-Jacobian product
// to the gradient that flowed in, adding (+=) each result into the input's
// gradient: a tensor used by several ops receives the sum of their
// contributions (the multivariate chain rule). Nothing here recurses.
#include <algorithm>
#include <chrono>
#include <sstream>
#include <unordered_map>

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
// Under capture every copy is an op (clone), so the program makes it again.
template <class T>
BasicTensor<T> own(BasicTensor<T> t, bool create_graph) {
    if ((create_graph && t.requires_grad()) || detail::capture_sink<T>()) return sole_owner(t) ? t : clone(t);
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

// The ops inside a VJP or a tensor hook belong to the node being run: they
// are timed as its backward and their values checked as its gradients.
struct PauseChecks {
    Profiler* profiler;
    bool anomaly;
    PauseChecks(Profiler* p, bool a) : profiler(p), anomaly(a) {
        if (profiler) Profiler::exchange_current(nullptr);
        if (anomaly) set_anomaly_enabled(false);
    }
    ~PauseChecks() {
        if (profiler) Profiler::exchange_current(profiler);
        if (anomaly) set_anomaly_enabled(true);
    }
};

template <class T>
std::string where_in_graph(const detail::Node<T>& n) {
    return "'" + std::string(n.name) + "' (tape position " + std::to_string(n.seq) + ")";
}

// A VJP's gradient for an input may have the input's shape or a shape the
// input broadcasts to (the engine sums it down); nothing else.
template <class S>
bool broadcasts_to(const S& input, const S& grad) {
    if (grad.size() < input.size()) return false;
    const std::size_t lead = grad.size() - input.size();
    for (std::size_t d = 0; d < input.size(); ++d)
        if (input[d] != 1 && input[d] != grad[lead + d]) return false;
    return true;
}

// Every VJP's result, built-in or user-written, before anything uses it.
// (Its element type is checked by the compiler: Grads<T> holds tensors of T.)
template <class T>
void check_vjp_result(const detail::Node<T>& n, const detail::Grads<T>& grads) {
    if (grads.size() != n.inputs.size())
        throw GraphError("backward: " + where_in_graph(n) + " returned " + std::to_string(grads.size()) +
                         " gradients for " + std::to_string(n.inputs.size()) + " inputs");
    for (std::size_t i = 0; i < grads.size(); ++i) {
        if (!grads[i].defined()) continue;  // no gradient for this input
        const auto& want = n.inputs[i].shape;
        const auto& got = grads[i].shape();
        if (got == want || broadcasts_to(want, got)) continue;
        throw GraphError("backward: " + where_in_graph(n) + " returned a gradient of shape " +
                         detail::shape_str(got) + " for input " + std::to_string(i) + ", which has shape " +
                         detail::shape_str(want) + "; a VJP must return the input's shape or a shape the input "
                         "broadcasts to");
    }
}

// Runs a tensor's register_hook hooks in registration order on its complete
// gradient g; each sees the previous one's result. `owner()` names the
// tensor for errors.
template <class T, class Owner>
BasicTensor<T> run_grad_hooks(const detail::Hooks<T>& hooks, BasicTensor<T> g, Owner owner) {
    if (hooks.on_grad.empty()) return g;
    auto list = hooks.on_grad;  // a hook registered by a hook runs from the next pass on
    for (auto& h : list) {
        if (h->removed.load(std::memory_order_relaxed)) continue;
        BasicTensor<T> r = h->fn(g);
        if (!r.defined()) continue;  // kept g
        if (r.shape() != g.shape())
            throw GraphError("backward: a hook on " + owner() + " returned a gradient of shape " +
                             detail::shape_str(r.shape()) + " for a gradient of shape " +
                             detail::shape_str(g.shape()) + "; a hook returns the same shape, or nothing");
        g = std::move(r);
    }
    return g;
}

template <class T>
void run_ready_hooks(const detail::Hooks<T>& hooks, const BasicTensor<T>& g) {
    if (hooks.on_ready.empty()) return;
    if (detail::capture_sink<T>())  // it returns nothing: all it does is a side effect, which replay cannot repeat
        throw GraphError("capture: a leaf of shape " + detail::shape_str(g.shape()) +
                         " has a grad-ready hook (register_grad_ready_hook); a captured program would run it only "
                         "once, at capture, not on replays: remove the hook, or run this step eagerly");
    auto list = hooks.on_ready;
    for (auto& h : list)
        if (!h->removed.load(std::memory_order_relaxed)) h->fn(g);
}

template <class T>
std::string leaf_name(const detail::TensorImpl<T>& leaf) {
    return "a leaf of shape " + detail::shape_str(leaf.storage->data.shape());
}

// Leaves with hooks, and how many edges into each are still to run in this
// pass: when the count reaches 0 the leaf's gradient is complete, and its
// hooks run then, while the pass goes on.
template <class T>
class HookedLeaves {
public:
    // Counts the edges of the nodes that will run.
    void count(const std::vector<detail::Node<T>*>& order) {
        for (auto* n : order) {
            if (!n->needed) continue;
            for (auto& e : n->inputs) {
                if (e.fn) continue;
                auto leaf = e.leaf.lock();
                if (!leaf || !leaf->hooks) continue;
                auto [it, fresh] = index_.try_emplace(leaf.get(), items_.size());
                if (fresh) items_.push_back({std::move(leaf), 0});
                ++items_[it->second].edges_left;
            }
        }
    }
    // After node n ran (or had no gradient to run with): calls done(leaf)
    // for each leaf whose last edge this was.
    template <class Done>
    void ran(const detail::Node<T>& n, Done&& done) {
        if (items_.empty() || !n.needed) return;
        for (auto& e : n.inputs) {
            if (e.fn) continue;
            auto leaf = e.leaf.lock();
            if (!leaf) continue;
            auto it = index_.find(leaf.get());
            if (it != index_.end() && --items_[it->second].edges_left == 0) done(items_[it->second].leaf);
        }
    }

private:
    struct Item {
        std::shared_ptr<detail::TensorImpl<T>> leaf;
        std::size_t edges_left;
    };
    std::vector<Item> items_;
    std::unordered_map<const detail::TensorImpl<T>*, std::size_t> index_;
};

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
        if (locate(*t)) {
            accumulate(items_[t->staged_index].grad, std::move(g), create_graph);
            return;
        }
        t->staged_pass = pass_;
        t->staged_index = items_.size();
        items_.push_back({std::move(t), std::move(g)});
    }

    // The gradient staged for t in this pass, or null.
    BasicTensor<T>* find(detail::TensorImpl<T>& t) { return locate(t) ? &items_[t.staged_index].grad : nullptr; }

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
    // True when t has a gradient staged in this pass (staged_index is then its place).
    bool locate(detail::TensorImpl<T>& t) {
        if (t.staged_pass > pass_) {  // a backward nested in a VJP staged it since: look it up
            for (std::size_t i = 0; i < items_.size(); ++i)
                if (items_[i].tensor.get() == &t) {
                    t.staged_pass = pass_;
                    t.staged_index = i;
                }
        }
        return t.staged_pass == pass_;
    }

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
    // A captured backward is recorded (its VJPs' ops become program steps).
    if (detail::capture_sink<T>()) options.create_graph = true;
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

    const bool anomaly = anomaly_enabled();
    Profiler* profiler = Profiler::current();

    // A leaf's gradient for this pass is complete: its register_hook hooks
    // may replace it, then (backward() only) its grad-ready hooks see it.
    const bool leaf_hooks = !detail::SkipLeafHooks::active();  // see SkipLeafHooks (checkpoint)
    auto leaf_done = [&](const std::shared_ptr<detail::TensorImpl<T>>& leaf) {
        if (!leaf->hooks || !leaf_hooks) return;
        BasicTensor<T>* g = targets.wrt ? targets.slot(leaf.get()) : staged.find(*leaf);
        if (!g || !g->defined()) return;  // no gradient reached it (or it is frozen, or not requested)
        PauseChecks pause(profiler, anomaly);
        *g = run_grad_hooks(*leaf->hooks, std::move(*g), [&] { return leaf_name(*leaf); });
        if (!targets.wrt) run_ready_hooks(*leaf->hooks, *g);
    };

    if (!root.grad_fn()) {
        if (targets.wrt) {
            if (auto* slot = targets.slot(root.impl().get())) accumulate(*slot, seed, options.create_graph);
        } else {
            staged.add(root.impl(), seed, options.create_graph);
        }
        leaf_done(root.impl());
        if (!targets.wrt) staged.commit(options.create_graph);
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

    HookedLeaves<T> hooked;
    if (detail::any_hooks()) hooked.count(order);

    // One node: take the gradient that flowed in, deliver it, run the VJP,
    // pass its results on.
    auto step = [&](detail::Node<T>* n) {
        BasicTensor<T> g = std::move(n->pending);
        n->pending = BasicTensor<T>();
        if (!g.defined()) return;  // no gradient reached this node
        if (n->hooks) {
            PauseChecks pause(profiler, anomaly);
            g = run_grad_hooks(*n->hooks, std::move(g), [&] { return "the output of " + where_in_graph(*n); });
        }
        if (targets.wrt) {
            if (auto* slot = targets.slot(n)) accumulate(*slot, g, options.create_graph);
        } else if (auto kept = n->retained.lock()) {
            staged.add(std::move(kept), g, options.create_graph);
        }
        if (!n->needed) return;

        auto started = profiler ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
        VjpContext<T> ctx(*n, options.create_graph);
        detail::Grads<T> grads;
        {
            PauseChecks pause(profiler, anomaly);
            grads = n->vjp(ctx, g);
        }
        check_vjp_result(*n, grads);
        if (!options.retain_graph) {
            n->release();
            n->released = true;
        }

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
    };

    root.grad_fn()->pending = seed;
    try {
        for (auto* n : order) {
            step(n);
            hooked.ran(*n, leaf_done);
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
