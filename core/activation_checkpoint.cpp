#include <tapegrad/core/activation_checkpoint.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <unordered_set>

#include <tapegrad/core/autograd.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/indexing.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {
namespace {

using detail::Grads;
using detail::Op;
using detail::VjpContext;

// The random state fn saw in the forward: this thread's default generator
// first, then the caller's generators.
struct RandomState {
    std::vector<Generator*> extra;
    std::vector<Generator> states;

    explicit RandomState(std::vector<Generator*> generators) : extra(std::move(generators)) {
        states.push_back(default_generator());
        for (auto* g : extra) states.push_back(*g);
    }
    // The generators as seen from the calling thread (the default one is
    // per thread: backward may run on another thread than the forward).
    std::vector<Generator*> targets() const {
        std::vector<Generator*> t{&default_generator()};
        t.insert(t.end(), extra.begin(), extra.end());
        return t;
    }
};

// Adds to a RandomState, before their first draw inside fn, the generators
// fn draws from that nobody listed (a Dropout's or an RReLU's own): without
// their state the recomputation would draw new masks and the gradients
// would be wrong with no error. Nested checkpoints tell the outer one too.
class WatchGenerators final : public detail::GeneratorWatch {
public:
    explicit WatchGenerators(RandomState& r) : r_(r) {
        outer = detail::generator_watch;
        detail::generator_watch = this;
    }
    ~WatchGenerators() { detail::generator_watch = outer; }
    WatchGenerators(const WatchGenerators&) = delete;
    WatchGenerators& operator=(const WatchGenerators&) = delete;

    void drawing_from(Generator& gen) override {
        if (outer) outer->drawing_from(gen);
        if (&gen == &default_generator()) return;  // always replayed
        if (std::find(r_.extra.begin(), r_.extra.end(), &gen) != r_.extra.end()) return;
        r_.extra.push_back(&gen);
        r_.states.push_back(gen);
    }

private:
    RandomState& r_;
};

// Sets the generators to the forward's state for a recomputation and puts
// back the state they had, also when fn throws.
class Replay {
public:
    explicit Replay(const RandomState& r) : targets_(r.targets()) {
        for (std::size_t i = 0; i < targets_.size(); ++i) {
            before_.push_back(*targets_[i]);
            *targets_[i] = r.states[i];
        }
    }
    ~Replay() {
        for (std::size_t i = 0; i < targets_.size(); ++i) *targets_[i] = before_[i];
    }
    Replay(const Replay&) = delete;
    Replay& operator=(const Replay&) = delete;

private:
    std::vector<Generator*> targets_;
    std::vector<Generator> before_;
};

// The ops inside fn's forward are not listed by the profiler: their graph is
// dropped, and the checkpoint op reports what it keeps.
struct PauseProfiler {
    Profiler* paused = Profiler::exchange_current(nullptr);
    ~PauseProfiler() { Profiler::exchange_current(paused); }
};

// New leaves holding the inputs' values (same storage, same version), so fn
// records a graph of its own that starts here.
template <class T>
std::vector<BasicTensor<T>> fresh_leaves(const std::vector<BasicTensor<T>>& values, const std::vector<bool>& needs) {
    std::vector<BasicTensor<T>> xs;
    for (std::size_t k = 0; k < values.size(); ++k) {
        auto x = values[k].detach();
        if (needs[k]) x.requires_grad_(true);
        xs.push_back(std::move(x));
    }
    return xs;
}

// The leaves that require grad and that fn's graph reaches besides its own
// inputs: the parameters it closes over. Nodes recorded before `first` were
// made outside fn; reaching one means fn closed over a non-leaf.
template <class T>
std::vector<BasicTensor<T>> closed_over(const BasicTensor<T>& y, const std::vector<BasicTensor<T>>& own,
                                        std::uint64_t first) {
    std::vector<BasicTensor<T>> found;
    std::unordered_set<const void*> seen;
    for (const auto& x : own) seen.insert(x.impl().get());
    if (!y.grad_fn()) {  // fn returned one of its inputs, or a parameter as it is
        if (!seen.count(y.impl().get())) found.push_back(y);
        return found;
    }
    std::vector<detail::Node<T>*> stack{y.grad_fn().get()};
    seen.insert(stack.back());
    while (!stack.empty()) {
        auto* n = stack.back();
        stack.pop_back();
        for (auto& e : n->inputs) {
            if (e.fn) {
                if (e.fn->seq < first)
                    throw GraphError("checkpoint: the function uses a tensor that requires grad and was computed "
                                     "outside it (by '" + std::string(e.fn->name) + "', tape position " +
                                     std::to_string(e.fn->seq) + "); pass it as one of checkpoint's inputs (only "
                                     "leaves, such as parameters, may be captured)");
                if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
            } else if (auto leaf = e.leaf.lock()) {
                if (seen.insert(leaf.get()).second) found.push_back(BasicTensor<T>(std::move(leaf)));
            }
        }
    }
    return found;
}

// What backward needs: fn, its random state, and the parameters it closes
// over (weakly: the graph never owns a tensor that requires grad).
template <class T>
struct Recompute {
    BasicTensorFunction<T> fn;
    RandomState random;
    std::vector<std::weak_ptr<detail::TensorImpl<T>>> params;

    BasicTensor<T> run(const std::vector<BasicTensor<T>>& xs, const typename BasicTensor<T>::shape_type& shape) const {
        BasicTensor<T> y;
        {
            Replay replay(random);
            EnableGradGuard recording;
            y = fn(xs);
        }
        if (!y.defined() || y.shape() != shape)
            throw GraphError("checkpoint: the recomputation in backward returned shape " +
                             (y.defined() ? detail::shape_str(y.shape()) : std::string("(undefined)")) +
                             " but the forward returned " + detail::shape_str(shape) +
                             "; the function must compute the same thing every time");
        return y;
    }

    // Gradients for inputs ++ params (undefined where not needed) of
    // <fn(xs), g>, with the graph of fn recomputed from xs.
    Grads<T> gradients(const std::vector<BasicTensor<T>>& xs, const BasicTensor<T>& g,
                       const std::vector<bool>& needs, bool create_graph) const {
        const auto y = run(xs, g.shape());
        std::vector<BasicTensor<T>> wrt;
        std::vector<std::size_t> slot;
        for (std::size_t k = 0; k < needs.size(); ++k) {
            if (!needs[k]) continue;
            BasicTensor<T> t = k < xs.size() ? xs[k] : BasicTensor<T>(params[k - xs.size()].lock());
            if (!t.defined() || !t.requires_grad()) continue;  // gone, or frozen since the forward
            wrt.push_back(std::move(t));
            slot.push_back(k);
        }
        Grads<T> grads(needs.size());
        if (wrt.empty() || !y.requires_grad()) return grads;
        // The captured parameters' hooks run in the outer pass, once, on
        // their whole gradient; not here on the part from inside fn.
        detail::SkipLeafHooks outer_pass_runs_them;
        auto found = grad(y, wrt, g, {create_graph, create_graph});
        for (std::size_t j = 0; j < wrt.size(); ++j) grads[slot[j]] = std::move(found[j]);
        return grads;
    }
};

// Second order: the VJP of a checkpoint, as a function of (inputs, g), is
// itself checkpointed, so it is on the graph and recomputes in its own
// backward. Its gradients travel as one flat tensor.
template <class T>
Grads<T> recorded_gradients(const std::shared_ptr<const Recompute<T>>& r, const std::vector<BasicTensor<T>>& xs,
                            const BasicTensor<T>& g, const std::vector<bool>& needs) {
    std::vector<Shape> shapes(needs.size());  // of each gradient, for zeros where fn ignores an input
    for (std::size_t k = 0; k < needs.size(); ++k) {
        if (k < xs.size()) shapes[k] = xs[k].shape_vector();
        else if (auto p = r->params[k - xs.size()].lock()) shapes[k] = BasicTensor<T>(std::move(p)).shape_vector();
    }
    auto vjp_fn = [r, needs, shapes, n = xs.size()](const std::vector<BasicTensor<T>>& zs) {
        const std::vector<BasicTensor<T>> inner(zs.begin(), zs.begin() + std::ptrdiff_t(n));
        auto grads = r->gradients(inner, zs[n], needs, /*create_graph=*/true);
        std::vector<BasicTensor<T>> flat;
        for (std::size_t k = 0; k < needs.size(); ++k) {
            if (!needs[k]) continue;
            if (!grads[k].defined()) grads[k] = BasicTensor<T>::zeros(shapes[k]);
            flat.push_back(reshape(grads[k], std::vector<std::int64_t>{-1}));
        }
        return flat.empty() ? BasicTensor<T>::zeros(Shape{0}) : concat(flat, 0);
    };
    std::vector<BasicTensor<T>> zs = xs;
    zs.push_back(g);
    // The inner checkpoint finds the parameters again (they are captured).
    auto flat = checkpoint<T>(vjp_fn, zs, CheckpointOptions{r->random.extra});
    Grads<T> grads(needs.size());
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < needs.size(); ++k) {
        if (!needs[k]) continue;
        std::int64_t size = 1;
        for (auto d : shapes[k]) size *= std::int64_t(d);
        grads[k] = reshape(slice(flat, 0, offset, offset + size),
                           std::vector<std::int64_t>(shapes[k].begin(), shapes[k].end()));
        offset += size;
    }
    return grads;
}

}  // namespace

template <class T>
BasicTensor<T> checkpoint(const functional::Fn<T>& fn, const std::vector<BasicTensor<T>>& inputs,
                          const CheckpointOptions& options) {
    if (!fn) throw ValueError("checkpoint: the function is empty");
    if (detail::capture_sink<T>())
        throw GraphError("checkpoint: cannot run under capture (core/compile/): it runs its function again inside "
                         "backward, with its own record of random state, which a captured program does not replay; "
                         "call the function directly in a captured step");
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (!inputs[k].defined()) throw ValueError("checkpoint: input " + std::to_string(k) + " is undefined");
    if (!grad_enabled()) return fn(inputs);  // nothing is recorded, so nothing to recompute

    auto r = std::make_shared<Recompute<T>>(Recompute<T>{fn, RandomState(options.generators), {}});
    std::vector<bool> needs;
    std::vector<std::uint64_t> versions;
    for (const auto& x : inputs) {
        needs.push_back(x.requires_grad());
        versions.push_back(x.version());
    }
    const auto xs = fresh_leaves(inputs, needs);
    const auto first = detail::next_tape_position();
    BasicTensor<T> y;
    {
        PauseProfiler pause;
        WatchGenerators watch(r->random);
        y = fn(xs);
    }
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].version() != versions[k])
            throw GraphError("checkpoint: the function wrote into its input " + std::to_string(k) + " (shape " +
                             detail::shape_str(inputs[k].shape()) + ") in place; backward would recompute it from "
                             "the changed value. Write into a copy instead (clone(x))");
    if (!y.defined()) throw ValueError("checkpoint: the function returned an undefined tensor");
    if (!y.requires_grad()) return y;

    const auto params = closed_over(y, xs, first);
    std::vector<BasicTensor<T>> all = inputs;
    all.insert(all.end(), params.begin(), params.end());
    for (const auto& p : params) r->params.push_back(p.impl());

    Op<T> op("checkpoint", all);
    // fn's value, without fn's graph (dropped here: that is the saving).
    BasicTensor<T> out(std::make_shared<detail::TensorImpl<T>>(y.impl()->storage));
    y = BasicTensor<T>();
    std::vector<detail::Saved<T>> saved;
    for (const auto& t : all) saved.push_back(op.save(t));
    const std::size_t n = inputs.size();
    return op.record(out, [r = std::shared_ptr<const Recompute<T>>(r), saved = std::move(saved), n](
                              VjpContext<T>& c, const BasicTensor<T>& g) {
        std::vector<BasicTensor<T>> values;  // unpacking checks every version
        for (const auto& s : saved) values.push_back(c.unpack(s));
        std::vector<bool> needs;
        for (std::size_t k = 0; k < saved.size(); ++k) needs.push_back(c.needs(k));
        const std::vector<BasicTensor<T>> inputs(values.begin(), values.begin() + std::ptrdiff_t(n));
        if (c.create_graph()) return recorded_gradients(r, inputs, g, needs);
        const std::vector<bool> input_needs(needs.begin(), needs.begin() + std::ptrdiff_t(n));
        return r->gradients(fresh_leaves(inputs, input_needs), g, needs, false);
    });
}

template Tensor checkpoint(const functional::Fn<float>&, const std::vector<Tensor>&, const CheckpointOptions&);
template Tensor64 checkpoint(const functional::Fn<double>&, const std::vector<Tensor64>&, const CheckpointOptions&);

}  // namespace tapegrad
