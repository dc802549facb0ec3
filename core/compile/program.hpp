// The captured program behind a CompiledStep (core/compile/capture.hpp):
// shared by the recorder and replay (capture.cpp) and the fusion pass
// (fuse.cpp). Internal: not part of the API. See docs/compile.md.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <tapegrad/core/arena.hpp>
#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>

namespace tapegrad::compile {

namespace internal {
constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
}

template <class T>
struct CompiledStep<T>::Program {
    static constexpr std::size_t none = internal::none;
    struct Step {
        const char* name;
        detail::ForwardFn<T> fn;
        detail::BlockFn<T> block;          // set for elementwise ops: fusable
        detail::RowForm<T> rows;           // set for reductions over the trailing axes: fusable too
        std::vector<std::size_t> in;       // slots read (none: an undefined input)
        std::size_t out;                   // slot written (a fused group: none, see Fused::outputs)
        std::vector<std::size_t> release;  // computed slots whose last reader this is
        bool move = false;                 // a clone of a value read by nothing after it: take its buffer
        std::size_t group = none;          // a fused group of elementwise steps (groups[group]) instead of fn
    };
    // Consecutive elementwise steps (and reductions over rows), run block by
    // block: each block of every value stays in cache from the step that
    // writes it to the last that reads it. See fuse.cpp.
    struct Operand {
        // A scratch row, a slot's array, a slot's one value, or a slot
        // broadcast to the member's shape (a bias row, a column of row
        // means): copied for each block into the scratch row `copy_row` first.
        enum Kind { row, whole, repeated, expanded } kind;
        std::size_t index;  // row number, or slot
        std::size_t copy_row = 0;
        kernels::Walk<1> walk{};  // expanded: the slot's strides along the output's (collapsed) axes
    };
    struct Member {
        const char* name;
        detail::BlockFn<T> block;     // an elementwise op, or
        detail::RowForm<T> rows;      // a reduction of the block's rows (in[0]: the block, out: their results)
        std::vector<Operand> in;
        Operand out;
        unsigned contiguous = 0;  // bit k: input k steps along the block
        bool per_row = false;     // over the run's row results (one element per row of the block)
    };
    struct Fused {
        std::vector<Member> members;
        std::vector<std::size_t> outputs;  // slots written whole
        std::size_t elements = 0;          // of the run's wide values
        std::size_t cols = 0;              // a row's length, when the run reduces rows (else 0)
        std::size_t block = 0;             // elements per block (whole rows when cols > 0)
        std::size_t rows = 0;              // scratch rows it uses
        std::size_t stride = 0;            // elements per scratch row (a block and a cache line)
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
    // A .grad a replay writes: a parameter's, or that of the tensor passed
    // as input `input` (one that requires grad, for a step that calls
    // backward into it).
    struct Gradient {
        std::weak_ptr<detail::TensorImpl<T>> parameter;
        std::size_t slot;
        std::size_t input = none;
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
    std::vector<Fused> groups;
    std::vector<const char*> recorded;  // every op captured, in order (for verify)
    std::size_t removed = 0;
    std::vector<Shape> shape;           // every slot's shape (fixed by the guards)
    detail::Arena arena;                // the replays' planned buffers (declared before the values in it)
    bool clean = true;                  // the last replay ran to its end (else values may hold buffers)
    std::vector<Array<T>> values;       // computed slots
    std::vector<const Array<T>*> ptr;   // every slot's current value
    std::vector<std::size_t> input_slot;
    std::vector<Shape> input_shape;
    std::vector<bool> input_requires_grad;
    std::vector<std::size_t> index_size;
    std::vector<External> externals;
    std::vector<BoundIndex> bound;
    std::vector<std::size_t> outputs;
    std::vector<Gradient> gradients;
    std::vector<Listed> listed;
    std::vector<BasicTensor<T>> captured_outputs;
    std::vector<BasicTensor<T>> latest;  // the outputs of the last call
    std::vector<bool> output_moves;      // output k's buffer can be handed over (see plan)
    std::vector<const Array<T>*> args;  // scratch for a step's inputs
    std::vector<const T*> block_args;   // ... and a fused member's
    StepFn<T> step_fn;                  // kept for verify
    CaptureOptions<T> options;
};

namespace internal {

template <class T>
using Program = typename CompiledStep<T>::Program;

// A value that holds no buffer: xtensor's Array<T>() holds one element.
template <class T>
Array<T> nothing() {
    return Array<T>::from_shape(typename Array<T>::shape_type{0});
}

inline std::size_t elements(const Shape& shape) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

// Slots a replay must keep after its steps: the outputs and gradients.
template <class T>
std::vector<bool> pinned_slots(const Program<T>& p) {
    std::vector<bool> pinned(p.ptr.size(), false);
    for (auto s : p.outputs) pinned[s] = true;
    for (auto& g : p.gradients) pinned[g.slot] = true;
    return pinned;
}

// The fusion pass and a fused group's replay (fuse.cpp).
template <class T>
void fuse(Program<T>& p);
template <class T>
void run_fused(Program<T>& p, typename Program<T>::Fused& g);

}  // namespace internal
}  // namespace tapegrad::compile
