// Capture and replay (core/compile/capture.hpp). The recorder is the
// capture sink every Op<T> reports to while a capture runs on the thread
// (core/op.hpp); it numbers every value it sees (a slot per storage) and
// appends one step per op.forward call. The program is then planned (dead
// steps dropped, each computed value freed after its last reader) and
// replayed as a flat loop over the steps. See docs/compile.md.
#include <tapegrad/core/compile/capture.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/op.hpp>

namespace tapegrad::compile {

namespace {
constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
}

template <class T>
struct CompiledStep<T>::Program {
    struct Step {
        const char* name;
        detail::ForwardFn<T> fn;
        std::vector<std::size_t> in;       // slots read (none: an undefined input)
        std::size_t out;                   // slot written
        std::vector<std::size_t> release;  // computed slots whose last reader this is
        bool move = false;                 // a clone of a value read by nothing after it: take its buffer
    };
    // A tensor from outside the step: a parameter (a leaf that requires
    // grad) or a constant. Read live on every replay: an optimiser's update
    // between replays is seen.
    struct External {
        std::shared_ptr<detail::TensorImpl<T>> impl;
        std::size_t slot;
        Shape shape;
        bool parameter;
    };
    struct Gradient {
        std::weak_ptr<detail::TensorImpl<T>> parameter;
        std::size_t slot;
    };
    struct BoundIndex {
        std::size_t input;  // StepInputs::indices position
        std::shared_ptr<Index> stored;
    };
    struct Listed {  // CaptureOptions::parameters at capture
        std::string name;
        const detail::TensorImpl<T>* impl;
        Shape shape;
    };

    std::vector<Step> steps;
    std::vector<const char*> recorded;  // every op captured, in order (for verify)
    std::size_t removed = 0;
    std::vector<Array<T>> values;       // computed slots
    std::vector<const Array<T>*> ptr;   // every slot's current value
    std::vector<std::size_t> input_slot;
    std::vector<Shape> input_shape;
    std::vector<std::size_t> index_size;
    std::vector<External> externals;
    std::vector<BoundIndex> bound;
    std::vector<std::size_t> outputs;
    std::vector<Gradient> gradients;
    std::vector<Listed> listed;
    std::vector<BasicTensor<T>> captured_outputs;
    std::vector<BasicTensor<T>> latest;  // the outputs of the last call
    std::vector<const Array<T>*> args;  // scratch for a step's inputs
    StepFn<T> step_fn;                  // kept for verify
    CaptureOptions<T> options;
};

namespace {

template <class T>
using Program = typename CompiledStep<T>::Program;

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
            if (slot_of_.count(t.impl()->storage.get()))
                throw ValueError("capture: input " + std::to_string(k) +
                                 " is the same tensor (or shares its value with) an earlier input; pass it once");
            p_.input_slot.push_back(new_slot(t, "input " + std::to_string(k)));
            p_.input_shape.push_back(t.shape_vector());
        }
        for (const auto& ix : inputs.indices) p_.index_size.push_back(ix.size());
    }

    void forward(const char* op, const std::vector<BasicTensor<T>>& inputs, const BasicTensor<T>& out,
                 detail::ForwardFn<T> fn) override {
        typename Program<T>::Step s{op, std::move(fn), {}, none, {}};
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
        const std::size_t s = new_slot(t, parameter ? "a parameter of shape " + detail::shape_str(t.shape())
                                                    : "a constant of shape " + detail::shape_str(t.shape()));
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

// Dead steps dropped (nothing reads their result, no output or gradient
// is it), then each computed value freed after its last reader. Steps of no
// inputs stay: they may draw from a generator, and eager mode draws.
template <class T>
void plan(Program<T>& p) {
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

    std::vector<bool> computed(p.ptr.size(), false), pinned(p.ptr.size(), false);
    for (auto& s : p.steps) computed[s.out] = true;
    for (auto s : p.outputs) pinned[s] = true;
    for (auto& g : p.gradients) pinned[g.slot] = true;
    std::vector<std::size_t> last(p.ptr.size(), none);
    std::size_t arity = 0;
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        arity = std::max(arity, p.steps[i].in.size());
        for (auto in : p.steps[i].in)
            if (in != none) last[in] = i;
    }
    for (std::size_t s = 0; s < p.ptr.size(); ++s)
        if (computed[s] && !pinned[s] && last[s] != none) p.steps[last[s]].release.push_back(s);
    // A copy of a value nobody reads afterwards (the engine's copy of a
    // gradient for .grad, say) takes the value's buffer instead.
    for (std::size_t i = 0; i < p.steps.size(); ++i) {
        auto& s = p.steps[i];
        if (std::strcmp(s.name, "clone") == 0 && s.in.size() == 1 && s.in[0] != none && computed[s.in[0]] &&
            !pinned[s.in[0]] && last[s.in[0]] == i)
            s.move = true;
    }
    p.args.assign(arity, nullptr);
    // Each value a replay does not need between replays is freed now.
    for (std::size_t s = 0; s < p.values.size(); ++s)
        if (!pinned[s]) p.values[s] = Array<T>();
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
        const auto& shape = e.impl->storage->data.shape();
        if (!std::equal(shape.begin(), shape.end(), e.shape.begin(), e.shape.end())) {
            std::string who = e.parameter ? "a parameter" : "a constant";
            for (const auto& l : p.listed)
                if (l.impl == e.impl.get()) who = "parameter '" + l.name + "'";
            throw GraphError("compiled step: " + who + " was resized from " + detail::shape_str(e.shape) + " to " +
                             detail::shape_str(shape) + " since capture; capture again");
        }
    }
}

// t can take a new value of this shape in its own buffer: nobody else
// holds it, it is on no graph.
template <class T>
bool reusable(const BasicTensor<T>& t, const Array<T>& value) {
    return t.defined() && !t.grad_fn() && t.impl().use_count() == 1 && t.impl()->storage.use_count() == 1 &&
           t.shape() == value.shape();
}

// A replay's gradient into .grad: swapped into the buffer already there when
// nobody else sees it (no allocation), else as a new tensor.
template <class T>
void write_grad(detail::TensorImpl<T>& param, Array<T>& value) {
    auto& g = param.grad;
    if (!reusable(g, value)) {
        g = BasicTensor<T>(std::move(value));
        return;
    }
    std::swap(g.impl()->storage->data, value);
    ++g.impl()->storage->version;
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

template <class T>
const std::vector<BasicTensor<T>>& replay(Program<T>& p, const StepInputs<T>& in) {
    check_inputs<T>(p, in);
    check_parameters<T>(p);
    for (std::size_t k = 0; k < p.input_slot.size(); ++k) p.ptr[p.input_slot[k]] = &in.tensors[k].value();
    for (auto& e : p.externals) p.ptr[e.slot] = &e.impl->storage->data;
    for (auto& b : p.bound) *b.stored = in.indices[b.input];  // same size: no allocation
    for (auto& s : p.steps) {
        const std::size_t n = s.in.size();
        if (s.move) {
            p.values[s.out] = std::move(p.values[s.in[0]]);
        } else {
            for (std::size_t i = 0; i < n; ++i) p.args[i] = s.in[i] == none ? nullptr : p.ptr[s.in[i]];
            p.values[s.out] = s.fn(p.args.data(), n);
        }
        p.ptr[s.out] = &p.values[s.out];
        for (auto r : s.release) p.values[r] = Array<T>();
    }
    p.latest.resize(p.outputs.size());
    for (std::size_t k = 0; k < p.outputs.size(); ++k) write_output(p.latest[k], *p.ptr[p.outputs[k]]);
    for (auto& g : p.gradients)
        if (auto param = g.parameter.lock()) write_grad(*param, p.values[g.slot]);
    return p.latest;
}

template <class T>
std::unique_ptr<Program<T>> record(const StepFn<T>& step, const StepInputs<T>& example) {
    auto p = std::make_unique<Program<T>>();
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
    s.steps = p.steps.size();
    s.removed = p.removed;
    s.slots = p.ptr.size();
    for (const auto& e : p.externals) (e.parameter ? s.parameters : s.constants) += 1;
    s.gradients = p.gradients.size();
    s.bound_indices = p.bound.size();
    return s;
}

template <class T>
std::vector<std::string> CompiledStep<T>::op_names() const {
    std::vector<std::string> names;
    if (program_)
        for (const auto& s : program_->steps) names.emplace_back(s.name);
    return names;
}

template <class T>
CompiledStep<T> capture(StepFn<T> step, const StepInputs<T>& example, CaptureOptions<T> options) {
    if (!step) throw ValueError("capture: the step function is empty");
    CompiledStep<T> compiled;
    compiled.program_ = record(step, example);
    auto& p = *compiled.program_;
    if (options.parameters)
        for (auto& [name, t] : options.parameters())
            p.listed.push_back({name, t.impl().get(), t.shape_vector()});
    plan<T>(p);
    p.step_fn = std::move(step);
    p.options = std::move(options);
    return compiled;
}

template class CompiledStep<float>;
template class CompiledStep<double>;
template CompiledStep<float> capture(StepFn<float>, const StepInputs<float>&, CaptureOptions<float>);
template CompiledStep<double> capture(StepFn<double>, const StepInputs<double>&, CaptureOptions<double>);

}  // namespace tapegrad::compile
