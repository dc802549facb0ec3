// A compiled tape: run a training step once under capture, then replay it
// on new inputs without building a graph or dispatching per op.
//
//   auto step = [&](const compile::StepInputs<float>& in) {
//       model.zero_grad();
//       auto loss = nn::cross_entropy(model.forward(in.tensors[0]), in.indices[0]);
//       loss.backward();
//       return std::vector<Tensor>{loss};
//   };
//   auto compiled = compile::capture<float>(step, {{batch}, {labels}});
//   for (...) {                                     // every later batch:
//       auto loss = compiled({{batch}, {labels}})[0];  // .grad of every parameter is written
//       optimizer.step();                          // outside: replays read parameters live
//   }
//
// Capture runs the step once, eagerly (it is a real step: its outputs are
// captured_outputs(), its gradients are in .grad), and records every op's
// forward callable (Op::forward, core/op.hpp) over numbered value slots. Its
// backward runs with create_graph, so the VJPs' own tensor ops are recorded
// by the same path: the program holds forward and backward as one flat list.
// What is recorded, what is refused and why: docs/compile.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::compile {

using Index = std::vector<std::int64_t>;  // as ops/indexing.hpp

// What a step takes per batch. Everything that changes from batch to batch
// is an input, never a constant of the program: the tensors (the batch) and
// the integer indices (the class labels of a cross-entropy, gather's index).
template <class T>
struct StepInputs {
    std::vector<BasicTensor<T>> tensors;
    std::vector<Index> indices;
};

// The step: takes its inputs, returns the tensors a replay hands back (the
// loss, say). It may call backward (parameters' gradients go to .grad on
// every replay) or grad() (return the gradients as outputs).
template <class T>
using StepFn = std::function<std::vector<BasicTensor<T>>(const StepInputs<T>&)>;

// The parameters as a module lists them (nn::Module::named_parameters).
template <class T>
using NamedParameters = std::function<std::vector<std::pair<std::string, BasicTensor<T>>>()>;

template <class T>
struct CaptureOptions {
    // When set, called at capture and before every replay: a parameter
    // added, removed, replaced by another tensor or resized since capture
    // is a GraphError naming it. Unset, parameters are the leaves the step
    // used, and only their shapes are checked.
    NamedParameters<T> parameters;
    // Debug check: every call runs the step eagerly under a new capture and
    // compares the recorded op sequence with the program's (an `if` on a
    // tensor's value that went the other way shows up as a GraphError
    // naming the first differing op). The call's results are the eager ones.
    bool verify = false;
    // Runs of elementwise ops replayed as one blocked loop (docs/compile.md,
    // "Fusion"). Off: every op makes its own pass (for comparisons; the
    // results are the same, element by element).
    bool fuse = true;
};

// What a program holds, for tests, benchmarks and curiosity.
struct ProgramStats {
    std::size_t steps = 0;        // ops replayed, those inside fused runs counted one by one
    std::size_t fused_groups = 0; // runs of elementwise ops replayed as one blocked loop
    std::size_t fused_ops = 0;    // ops in those runs
    std::size_t removed = 0;      // ops captured but dropped (nothing reads their result)
    std::size_t slots = 0;        // values: inputs, parameters, constants, results
    std::size_t parameters = 0;   // leaves that require grad, read live on every replay
    std::size_t constants = 0;    // other tensors from outside the step, read live too
    std::size_t gradients = 0;    // parameters and inputs whose .grad a replay writes
    std::size_t bound_indices = 0;  // index copies rebound to the index inputs
    // The memory plan (docs/compile.md, "Memory plan"), made from the first
    // replay's buffer requests: 0 before it, and with the buffer cache off.
    std::size_t arena_bytes = 0;    // the one block every later replay's temporaries live in
    std::size_t arena_buffers = 0;  // requests per replay served from it
    std::size_t arena_misses = 0;   // replays whose requests left the plan (then planned again)
    std::size_t arena_held = 0;     // requests the buffer cache served: a gradient the caller kept sat in their bytes
};

template <class T>
class CompiledStep;

// Runs `step` once on `example` under capture and returns the program.
// Errors name what cannot be captured: an op whose forward was computed
// inline (op.output), a raw VJP reached by backward, a grad-ready hook, an
// in-place write during the step, a tensor of an earlier graph.
template <class T>
CompiledStep<T> capture(StepFn<T> step, const StepInputs<T>& example, CaptureOptions<T> options = {});

template <class T>
class CompiledStep {
public:
    CompiledStep();
    ~CompiledStep();
    CompiledStep(CompiledStep&&) noexcept;
    CompiledStep& operator=(CompiledStep&&) noexcept;

    // Runs the program on new inputs of the captured shapes; returns the
    // step's outputs and writes each parameter's gradient to its .grad (as
    // the step's own backward would after zero_grad). A different input
    // count or shape is a ValueError / ShapeError naming the input and both
    // shapes; capture again for a new shape (the last, smaller batch).
    // The outputs are tensors of their own; those the caller no longer
    // holds are reused by the next call (no allocation), as are the .grad
    // buffers nobody else holds. The returned vector is the program's and
    // the next call refills it: copy the tensors you keep
    // (Tensor loss = compiled(in)[0]), not a reference to the vector.
    // A parameter frozen or unfrozen (requires_grad) since capture is a
    // GraphError naming it.
    const std::vector<BasicTensor<T>>& operator()(const StepInputs<T>& inputs);

    // The outputs of the capture run (the first step).
    const std::vector<BasicTensor<T>>& captured_outputs() const;
    ProgramStats stats() const;
    // The program in replay order: one entry per replayed step, a fused
    // run as one entry "fused(mul, erf, add)" (so fewer entries than
    // stats().steps, which counts the ops inside runs). The names are the
    // ops', backward ones included (sum_to, gather_backward, broadcast_to).
    std::vector<std::string> op_names() const;

    struct Program;  // core/compile/capture.cpp

private:
    template <class U>
    friend CompiledStep<U> capture(StepFn<U> step, const StepInputs<U>& example, CaptureOptions<U> options);
    std::unique_ptr<Program> program_;
};

}  // namespace tapegrad::compile
