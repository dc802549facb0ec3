// Capture and replay (core/compile/capture.hpp). The recorder is the
// capture sink every Op<T> reports to while a capture runs on the thread
// (core/op.hpp); it numbers every value it sees (a slot per storage) and
// appends one step per op.forward call. The program is then planned (dead
// steps dropped, each computed value freed after its last reader) and
// replayed as a flat loop over the steps. See docs/compile.md.
#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/compile/program.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <tapegrad/core/arena.hpp>
#include <tapegrad/core/memory.hpp>
#include <tapegrad/core/node.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>

namespace tapegrad::compile {

namespace {

using namespace internal;

// How errors name an external tensor: by its name in
// CaptureOptions::parameters when listed, else as `fallback` says.
template <class T>
std::string named(const Program<T>& p, const detail::TensorImpl<T>* impl, std::string fallback) {
    for (const auto& l : p.listed)
        if (l.impl == impl) return "parameter '" + l.name + "'";
    return fallback;
}

template <class T>
void install(detail::CaptureSink<T>* sink) {
    if constexpr (std::is_same_v<T, float>) detail::capture_sinks.f32 = sink;
    else detail::capture_sinks.f64 = sink;
    detail::captures_running.fetch_add(sink ? 1 : -1, std::memory_order_relaxed);
}

// Records one step function into a Program.
template <class T>
class Recorder final : public detail::CaptureSink<T> {
public:
    Recorder(Program<T>& p, const StepInputs<T>& inputs) : p_(p), inputs_(inputs) {
        for (std::size_t k = 0; k < inputs.tensors.size(); ++k) {
            const auto& t = inputs.tensors[k];
            if (!t.defined()) throw ValueError("capture: input " + std::to_string(k) + " is undefined");
            if (t.grad_fn())
                throw GraphError("capture: input " + std::to_string(k) + " was computed on a graph (by '" +
                                 t.op_name() +
                                 "'), so a backward through the step would reach tensors outside it; detach() "
                                 "it, or compute it inside the step from inputs that are leaves");
            if (slot_of_.count(t.impl()->storage.get()))
                throw ValueError("capture: input " + std::to_string(k) +
                                 " is the same tensor (or shares its value with) an earlier input; pass it once");
            p_.input_slot.push_back(new_slot(t, "input " + std::to_string(k)));
            p_.input_shape.push_back(t.shape_vector());
            p_.input_requires_grad.push_back(t.requires_grad());
            // Fresh gradients, as for parameters: a .grad from before would
            // be a constant the capture's backward adds to.
            if (t.requires_grad()) t.impl()->grad = BasicTensor<T>();
        }
        for (const auto& ix : inputs.indices) p_.index_size.push_back(ix.size());
    }

    void forward(const char* op, const std::vector<BasicTensor<T>>& inputs, const BasicTensor<T>& out,
                 detail::ForwardFn<T> fn, detail::BlockFn<T> block, detail::RowForm<T> rows) override {
        typename Program<T>::Step s{op, std::move(fn), std::move(block), std::move(rows), {}, none, {}};
        s.in.reserve(inputs.size());
        for (const auto& t : inputs) s.in.push_back(t.defined() ? slot_for(t, op) : none);
        s.out = new_slot(out, std::string("the output of '") + op + "' (op " + std::to_string(p_.steps.size()) + ")");
        computed_[s.out] = true;
        p_.steps.push_back(std::move(s));
        p_.recorded.push_back(op);
    }

    void inline_output(const char* op) override {
        throw GraphError("capture: '" + std::string(op) +
                         "' computes its forward inline (op.output(value)), so a captured program cannot compute it "
                         "again on new inputs; hand the forward to op.forward(fn) instead (core/op.hpp), or run this "
                         "step eagerly");
    }

    void raw_backward(const char* op) override {
        throw GraphError("capture: '" + std::string(op) +
                         "' has a backward written on raw values (record_raw), which captures no tensor ops: a "
                         "captured program replays VJPs written with tensor ops only; write its VJP with record(), "
                         "or run this step eagerly");
    }

    void index(const std::vector<std::int64_t>& given, std::shared_ptr<std::vector<std::int64_t>> stored) override {
        for (std::size_t k = 0; k < inputs_.indices.size(); ++k)
            if (&given == &inputs_.indices[k]) p_.bound.push_back({k, std::move(stored)});
        // Any other index is a constant of the program: the op keeps its copy.
    }

    // After the step returned: its outputs, the parameters' gradients, and
    // the check that nothing was written in place behind the recorder's back.
    void finish(const std::vector<BasicTensor<T>>& outs) {
        // An index input no op read: the step used a copy of it (`Index labels =
        // in.indices[0];`) or other labels, which would be constants of the
        // program, the capture batch's labels on every replay.
        for (std::size_t k = 0; k < inputs_.indices.size(); ++k) {
            bool read = false;
            for (const auto& b : p_.bound) read = read || b.input == k;
            if (!read)
                throw GraphError("capture: index input " + std::to_string(k) +
                                 " was read by no op; an op given a copy of it (Index labels = in.indices[" +
                                 std::to_string(k) +
                                 "]) or other labels would replay the capture batch's labels forever: pass "
                                 "in.indices[" + std::to_string(k) +
                                 "] itself to the loss or op (or leave it out of the inputs if the step does "
                                 "not use it)");
        }
        for (std::size_t k = 0; k < outs.size(); ++k) {
            if (!outs[k].defined()) throw ValueError("capture: output " + std::to_string(k) + " is undefined");
            p_.outputs.push_back(slot_for(outs[k], "the step's outputs"));
            p_.captured_outputs.push_back(BasicTensor<T>(Array<T>(outs[k].value())));
        }
        for (auto& e : p_.externals) {
            if (!e.parameter || !e.impl->grad.defined()) continue;
            auto it = slot_of_.find(e.impl->grad.impl()->storage.get());
            if (it == slot_of_.end() || !computed_[it->second])
                throw GraphError("capture: the gradient of a parameter of shape " + detail::shape_str(e.shape) +
                                 " was not computed by the step's ops (was .grad set by hand inside the step?)");
            p_.gradients.push_back({e.impl, it->second});
            // What eager mode leaves in .grad: the value, off the graph.
            e.impl->grad = BasicTensor<T>(Array<T>(e.impl->grad.value()));
        }
        // An input that requires grad: a replay writes its gradient into the
        // .grad of the tensor passed in that position.
        for (std::size_t k = 0; k < inputs_.tensors.size(); ++k) {
            const auto& impl = inputs_.tensors[k].impl();
            if (!impl->requires_grad || !impl->grad.defined()) continue;  // (a .grad from before it was frozen)
            auto it = slot_of_.find(impl->grad.impl()->storage.get());
            if (it == slot_of_.end() || !computed_[it->second])
                throw GraphError("capture: the gradient of input " + std::to_string(k) +
                                 " was not computed by the step's ops (was .grad set by hand inside the step?)");
            p_.gradients.push_back({{}, it->second, k});
            impl->grad = BasicTensor<T>(Array<T>(impl->grad.value()));
        }
        for (std::size_t s = 0; s < storages_.size(); ++s)
            if (storages_[s]->version != versions_[s])
                throw GraphError("capture: " + what_[s] +
                                 " was modified in place during the step; a captured program does not replay "
                                 "in-place writes (run an optimiser's update outside the captured step, and write "
                                 "into a copy, clone(x), inside it)");
    }

private:
    std::size_t new_slot(const BasicTensor<T>& t, std::string what) {
        const std::size_t s = p_.ptr.size();
        p_.ptr.push_back(nullptr);
        p_.values.emplace_back();
        p_.shape.push_back(t.shape_vector());
        slot_of_.emplace(t.impl()->storage.get(), s);
        storages_.push_back(t.impl()->storage);  // alive while capturing: storage addresses stay unique
        versions_.push_back(t.impl()->storage->version);
        what_.push_back(std::move(what));
        computed_.push_back(false);
        return s;
    }

    // The slot of a value an op reads: one seen before (an input, an earlier
    // op's result or a tensor sharing its value, as detach() does) or a new
    // external: a parameter or a constant.
    std::size_t slot_for(const BasicTensor<T>& t, const std::string& reader) {
        auto it = slot_of_.find(t.impl()->storage.get());
        if (it != slot_of_.end()) return it->second;
        if (t.grad_fn())
            throw GraphError("capture: " + reader + " reads a tensor computed before the capture on a graph (by '" +
                             t.op_name() + "'); pass it to the step as an input, or detach() it");
        const bool parameter = t.requires_grad();
        const std::size_t s = new_slot(t, named<T>(p_, t.impl().get(),
                                                   (parameter ? "a parameter of shape " : "a constant of shape ") +
                                                       detail::shape_str(t.shape())));
        // A captured step computes fresh gradients, as one that starts with
        // zero_grad: what .grad held before is not part of the program.
        if (parameter) t.impl()->grad = BasicTensor<T>();
        p_.externals.push_back({t.impl(), s, t.shape_vector(), parameter});
        return s;
    }

    Program<T>& p_;
    const StepInputs<T>& inputs_;
    std::unordered_map<const detail::Storage<T>*, std::size_t> slot_of_;
    std::vector<std::shared_ptr<detail::Storage<T>>> storages_;
    std::vector<std::uint64_t> versions_;
    std::vector<std::string> what_;  // each slot, for errors
    std::vector<bool> computed_;     // each slot: an op's result
};

// The recorder is this thread's capture sink while it lives.
template <class T>
struct SinkScope {
    explicit SinkScope(detail::CaptureSink<T>* sink) {
        if (detail::capture_sink<T>()) throw GraphError("capture: a capture is already running on this thread");
        install<T>(sink);
    }
    ~SinkScope() { install<T>(nullptr); }
    SinkScope(const SinkScope&) = delete;
    SinkScope& operator=(const SinkScope&) = delete;
};

// Dead steps dropped: nothing reads their result, no output or gradient is
// it. Steps of no inputs stay: they may draw from a generator, and eager
// mode draws.
template <class T>
void drop_dead(Program<T>& p) {
    std::vector<bool> live(p.ptr.size(), false);
    for (auto s : p.outputs) live[s] = true;
    for (auto& g : p.gradients) live[g.slot] = true;
    std::vector<bool> keep(p.steps.size(), false);
    for (std::size_t i = p.steps.size(); i-- > 0;) {
        auto& s = p.steps[i];
        keep[i] = live[s.out] || s.in.empty();
        if (!keep[i]) continue;
        for (auto in : s.in)
            if (in != none) live[in] = true;
    }
    std::vector<typename Program<T>::Step> kept;
    for (std::size_t i = 0; i < p.steps.size(); ++i)
        if (keep[i]) kept.push_back(std::move(p.steps[i]));
    p.removed = p.steps.size() - kept.size();
    p.steps = std::move(kept);
}

// The slots a step writes: its result, or a fused group's whole outputs.
template <class T>
const std::vector<std::size_t>& written(const Program<T>& p, const typename Program<T>::Step& s,
                                        std::vector<std::size_t>& one) {
    if (s.group != none) return p.groups[s.group].outputs;
    one.assign(1, s.out);
    return one;
}

// The plan: dead steps dropped, elementwise runs fused, then each computed
// value freed after its last reader.
template <class T>
void plan(Program<T>& p) {
    drop_dead<T>(p);
    if (p.options.fuse) fuse<T>(p);
    const auto pinned = pinned_slots<T>(p);
    std::vector<bool> computed(p.ptr.size(), false);
    std::vector<std::size_t> writer(p.ptr.size(), none), one;
    for (std::size_t i = 0; i < p.steps.size(); ++i)
        for (auto w : written<T>(p, p.steps[i], one)) {
            computed[w] = true;
            writer[w] = i;
        }
    std::vector<std::size_t> last(p.ptr.size(), none);
    std::size_t arity = 0;
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        arity = std::max(arity, p.steps[i].in.size());
        for (auto in : p.steps[i].in)
            if (in != none) last[in] = i;
    }
    for (auto& g : p.groups)
        for (auto& m : g.members) arity = std::max(arity, m.in.size());
    // Freed after the last reader; a value no later step reads (a row
    // result only its fused run read, a draw nobody used) after its writer.
    for (std::size_t s = 0; s < p.ptr.size(); ++s)
        if (computed[s] && !pinned[s]) p.steps[last[s] != none ? last[s] : writer[s]].release.push_back(s);
    // A copy of a value nobody reads afterwards (the engine's copy of a
    // gradient for .grad, say) takes the value's buffer instead.
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        auto& s = p.steps[i];
        if (std::strcmp(s.name, "clone") == 0 && s.in.size() == 1 && s.in[0] != none && computed[s.in[0]] &&
            !pinned[s.in[0]] && last[s.in[0]] == i)
            s.move = true;
    }
    p.args.assign(arity, nullptr);
    p.block_args.assign(arity, nullptr);
    // An output computed by the step, returned once and no gradient, hands
    // its buffer to the returned tensor instead of a copy.
    p.output_moves.assign(p.outputs.size(), false);
    for (std::size_t k = 0; k < p.outputs.size(); ++k) {
        const auto s = p.outputs[k];
        bool moves = computed[s] && std::count(p.outputs.begin(), p.outputs.end(), s) == 1;
        for (auto& g : p.gradients) moves = moves && g.slot != s;
        p.output_moves[k] = moves;
    }
    // Each value a replay does not need between replays is freed now.
    for (std::size_t s = 0; s < p.values.size(); ++s)
        if (!pinned[s]) p.values[s] = nothing<T>();
}

template <class T>
void check_inputs(const Program<T>& p, const StepInputs<T>& in) {
    if (in.tensors.size() != p.input_slot.size() || in.indices.size() != p.index_size.size())
        throw ValueError("compiled step: called with " + std::to_string(in.tensors.size()) + " tensors and " +
                         std::to_string(in.indices.size()) + " indices, but captured with " +
                         std::to_string(p.input_slot.size()) + " and " + std::to_string(p.index_size.size()));
    for (std::size_t k = 0; k < in.tensors.size(); ++k) {
        if (!in.tensors[k].defined()) throw ValueError("compiled step: input " + std::to_string(k) + " is undefined");
        const auto& shape = in.tensors[k].shape();
        const auto& want = p.input_shape[k];
        if (!std::equal(shape.begin(), shape.end(), want.begin(), want.end()))
            throw ShapeError("compiled step: input " + std::to_string(k) + " has shape " + detail::shape_str(shape) +
                             ", but the step was captured with shape " + detail::shape_str(want) +
                             "; capture again for this shape (shapes are part of the program)");
        for (std::size_t j = 0; j < k; ++j)
            if (in.tensors[j].impl()->storage == in.tensors[k].impl()->storage)
                throw ValueError("compiled step: inputs " + std::to_string(j) + " and " + std::to_string(k) +
                                 " are the same tensor (or share its value); pass each input once, as at capture");
        if (in.tensors[k].requires_grad() != p.input_requires_grad[k])
            throw ValueError("compiled step: input " + std::to_string(k) +
                             (p.input_requires_grad[k] ? " does not require grad, but did at capture"
                                                       : " requires grad, but did not at capture") +
                             " (whether its gradient is computed is part of the program); capture again");
    }
    for (std::size_t k = 0; k < in.indices.size(); ++k)
        if (in.indices[k].size() != p.index_size[k])
            throw ShapeError("compiled step: index input " + std::to_string(k) + " has " +
                             std::to_string(in.indices[k].size()) + " entries, but the step was captured with " +
                             std::to_string(p.index_size[k]) + "; capture again for this size");
}

template <class T>
void check_parameters(const Program<T>& p) {
    if (p.options.parameters) {
        auto now = p.options.parameters();
        for (std::size_t i = 0; i < std::max(now.size(), p.listed.size()); ++i) {
            if (i >= now.size())
                throw GraphError("compiled step: parameter '" + p.listed[i].name +
                                 "' was removed since capture; capture again");
            if (i >= p.listed.size())
                throw GraphError("compiled step: parameter '" + now[i].first + "' was added since capture; capture again");
            const auto& was = p.listed[i];
            if (now[i].first != was.name || now[i].second.impl().get() != was.impl)
                throw GraphError("compiled step: parameter '" + was.name + "' was replaced by " +
                                 (now[i].first == was.name ? "another tensor" : "'" + now[i].first + "'") +
                                 " since capture; the program reads the tensors it captured: capture again");
        }
    }
    for (const auto& e : p.externals) {
        if (e.impl->requires_grad != e.parameter) {
            // Frozen or unfrozen since capture: whether its gradient is
            // computed (and written to .grad) is part of the program.
            const std::string who =
                named<T>(p, e.impl.get(), (e.parameter ? "parameter of shape " : "tensor of shape ") +
                                              detail::shape_str(e.shape));
            throw GraphError("compiled step: " + who +
                             (e.parameter ? " no longer requires grad" : " requires grad now, but did not") +
                             " since capture (whether its gradient is computed is part of the program); capture "
                             "again");
        }
        const auto& shape = e.impl->storage->data.shape();
        if (!std::equal(shape.begin(), shape.end(), e.shape.begin(), e.shape.end())) {
            const std::string who = named<T>(p, e.impl.get(), e.parameter ? "a parameter" : "a constant");
            throw GraphError("compiled step: " + who + " was resized from " + detail::shape_str(e.shape) + " to " +
                             detail::shape_str(shape) + " since capture; capture again");
        }
    }
}

// Only the program sees t: nobody else holds it or its value, it is on no
// graph.
template <class T>
bool unshared(const BasicTensor<T>& t) {
    return t.defined() && !t.grad_fn() && t.impl().use_count() == 1 && t.impl()->storage.use_count() == 1;
}

// t can take a new value of this shape in its own buffer.
template <class T>
bool reusable(const BasicTensor<T>& t, const Array<T>& value) {
    return unshared(t) && t.shape() == value.shape();
}

// A replay's value into `t` (a gradient or an output): swapped into the
// buffer already there when nobody else sees it, else moved into a new
// tensor. The buffer `value` is left with is released at once (kept in the
// slot, it would be a second copy of every gradient between replays).
template <class T>
void hand_over(BasicTensor<T>& t, Array<T>& value) {
    if (!reusable(t, value)) {
        t = BasicTensor<T>(std::move(value));
    } else {
        std::swap(t.impl()->storage->data, value);
        ++t.impl()->storage->version;
    }
    value = nothing<T>();
}

// A replay's output: copied into the previous call's tensor when the caller
// let go of it, else into a new one.
template <class T>
void write_output(BasicTensor<T>& out, const Array<T>& value) {
    if (!reusable(out, value)) {
        out = BasicTensor<T>(Array<T>(value));
        return;
    }
    auto& data = out.impl()->storage->data;
    std::copy(value.data(), value.data() + value.size(), data.data());
    ++out.impl()->storage->version;
}

// The arena serves the steps' buffers between begin() and end().
struct ArenaScope {
    explicit ArenaScope(detail::Arena& a) : arena(a) { arena.begin(); }
    ~ArenaScope() { arena.end(); }
    ArenaScope(const ArenaScope&) = delete;
    ArenaScope& operator=(const ArenaScope&) = delete;
    detail::Arena& arena;
};

// The steps, in order, their buffers from the program's arena.
// The tensor whose .grad gradient g is, in this replay (null: a parameter
// that no longer exists).
template <class T>
std::shared_ptr<detail::TensorImpl<T>> grad_owner(const typename Program<T>::Gradient& g, const StepInputs<T>& in) {
    return g.input == none ? g.parameter.lock() : in.tensors[g.input].impl();
}

template <class T>
void run_steps(Program<T>& p, const StepInputs<T>& in) {
    // A replay that stopped on an error left values behind (in the arena,
    // perhaps): free them before it plans or serves again.
    if (!p.clean)
        for (auto& v : p.values) v = nothing<T>();
    p.clean = false;
    ArenaScope scope(p.arena);
    // The last replay's gradients are overwritten at the end: those nobody
    // else holds are released now, so that this replay's backward takes
    // their bytes again (from the arena, or from the buffer cache before the
    // plan is made; else both sets would be in memory at once).
    for (auto& g : p.gradients)
        if (auto owner = grad_owner<T>(g, in); owner && unshared(owner->grad)) owner->grad = BasicTensor<T>();
    for (auto& s : p.steps) {
        const std::size_t n = s.in.size();
        if (s.group != none) {
            run_fused<T>(p, p.groups[s.group]);
        } else if (s.move) {
            p.values[s.out] = std::move(p.values[s.in[0]]);
        } else {
            for (std::size_t i = 0; i < n; ++i) p.args[i] = s.in[i] == none ? nullptr : p.ptr[s.in[i]];
            p.values[s.out] = s.fn(p.args.data(), n);
        }
        if (s.out != none) p.ptr[s.out] = &p.values[s.out];
        for (auto r : s.release) p.values[r] = nothing<T>();
    }
    // The gradients it hands over are planned too, alive to its end. (Not
    // the outputs: callers keep losses in lists, and a buffer the caller
    // holds where the next replay planned its own makes it leave the plan.)
    for (auto& g : p.gradients) p.arena.keep(p.values[g.slot].data());
    p.clean = true;
}

template <class T>
const std::vector<BasicTensor<T>>& replay(Program<T>& p, const StepInputs<T>& in) {
    check_inputs<T>(p, in);
    check_parameters<T>(p);
    for (std::size_t k = 0; k < p.input_slot.size(); ++k) p.ptr[p.input_slot[k]] = &in.tensors[k].value();
    for (auto& e : p.externals) p.ptr[e.slot] = &e.impl->storage->data;
    for (auto& b : p.bound) *b.stored = in.indices[b.input];  // same size: no allocation
    run_steps<T>(p, in);
    p.latest.resize(p.outputs.size());
    for (std::size_t k = 0; k < p.outputs.size(); ++k) {
        if (p.output_moves[k]) hand_over(p.latest[k], p.values[p.outputs[k]]);
        else write_output(p.latest[k], *p.ptr[p.outputs[k]]);
    }
    for (auto& g : p.gradients) {
        if (auto owner = grad_owner<T>(g, in)) hand_over(owner->grad, p.values[g.slot]);
        else p.values[g.slot] = nothing<T>();
    }
    return p.latest;
}

template <class T>
std::unique_ptr<Program<T>> record(const StepFn<T>& step, const StepInputs<T>& example,
                                   const NamedParameters<T>& parameters = {}) {
    auto p = std::make_unique<Program<T>>();
    if (parameters)  // their names, for the guards' errors
        for (auto& [name, t] : parameters()) p->listed.push_back({name, t.impl().get(), t.shape_vector()});
    StepInputs<T> inputs = example;  // the index inputs are known by these copies' addresses
    Recorder<T> recorder(*p, inputs);
    std::vector<BasicTensor<T>> outs;
    {
        SinkScope<T> scope(&recorder);
        outs = step(inputs);
    }
    recorder.finish(outs);
    return p;
}

template <class T>
const std::vector<BasicTensor<T>>& verify(Program<T>& p, const StepInputs<T>& in) {
    check_inputs<T>(p, in);
    check_parameters<T>(p);
    auto again = record(p.step_fn, in);
    const auto& a = p.recorded;
    const auto& b = again->recorded;
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        const std::string was = i < a.size() ? "'" + std::string(a[i]) + "'" : "nothing (the program ended)";
        const std::string now = i < b.size() ? "'" + std::string(b[i]) + "'" : "nothing (the step ended)";
        if (was != now)
            throw GraphError("compiled step (verify): the step recorded another op sequence than at capture: op " +
                             std::to_string(i) + " was " + was + ", now " + now +
                             " (control flow that depends on tensor values is captured as the path taken then)");
    }
    p.latest = again->captured_outputs;
    return p.latest;
}

}  // namespace

template <class T>
CompiledStep<T>::CompiledStep() = default;
template <class T>
CompiledStep<T>::~CompiledStep() = default;
template <class T>
CompiledStep<T>::CompiledStep(CompiledStep&&) noexcept = default;
template <class T>
CompiledStep<T>& CompiledStep<T>::operator=(CompiledStep&&) noexcept = default;

template <class T>
const std::vector<BasicTensor<T>>& CompiledStep<T>::operator()(const StepInputs<T>& inputs) {
    if (!program_) throw GraphError("compiled step: empty (made by capture(), not default-constructed)");
    if (detail::capture_sink<T>()) throw GraphError("compiled step: replayed inside a capture, which would not see it");
    return program_->options.verify ? verify<T>(*program_, inputs) : replay<T>(*program_, inputs);
}

template <class T>
const std::vector<BasicTensor<T>>& CompiledStep<T>::captured_outputs() const {
    static const std::vector<BasicTensor<T>> nothing;
    return program_ ? program_->captured_outputs : nothing;
}

template <class T>
ProgramStats CompiledStep<T>::stats() const {
    ProgramStats s;
    if (!program_) return s;
    const auto& p = *program_;
    for (const auto& step : p.steps) s.steps += step.group == none ? 1 : p.groups[step.group].members.size();
    s.fused_groups = p.groups.size();
    for (const auto& g : p.groups) s.fused_ops += g.members.size();
    s.removed = p.removed;
    s.slots = p.ptr.size();
    for (const auto& e : p.externals) (e.parameter ? s.parameters : s.constants) += 1;
    s.gradients = p.gradients.size();
    s.bound_indices = p.bound.size();
    s.arena_bytes = p.arena.bytes();
    s.arena_buffers = p.arena.planned();
    s.arena_misses = p.arena.misses();
    s.arena_held = p.arena.held();
    return s;
}

template <class T>
std::vector<std::string> CompiledStep<T>::op_names() const {
    std::vector<std::string> names;
    if (program_)
        for (const auto& s : program_->steps) {
            if (s.group == none) {
                names.emplace_back(s.name);
                continue;
            }
            std::string fused = "fused(";
            for (const auto& m : program_->groups[s.group].members)
                fused += (fused.size() > 6 ? ", " : "") + std::string(m.name);
            names.push_back(fused + ")");
        }
    return names;
}

template <class T>
CompiledStep<T> capture(StepFn<T> step, const StepInputs<T>& example, CaptureOptions<T> options) {
    if (!step) throw ValueError("capture: the step function is empty");
    CompiledStep<T> compiled;
    compiled.program_ = record(step, example, options.parameters);
    auto& p = *compiled.program_;
    p.options = std::move(options);
    plan<T>(p);
    p.step_fn = std::move(step);
    // The capture ran the step eagerly with create_graph: its graph's buffers
    // are in this thread's cache now, more (and of other sizes) than a replay
    // needs. Replays would keep them; give them back to malloc instead.
    release_cached_memory();
    return compiled;
}

template class CompiledStep<float>;
template class CompiledStep<double>;
template CompiledStep<float> capture(StepFn<float>, const StepInputs<float>&, CaptureOptions<float>);
template CompiledStep<double> capture(StepFn<double>, const StepInputs<double>&, CaptureOptions<double>);

}  // namespace tapegrad::compile
