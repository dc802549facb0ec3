// Activation checkpointing: trade compute for memory on deep models.
//
//   auto block = [&](const Tensor& h) { return layer3(relu(layer2(relu(layer1(h))))); };
//   auto h = checkpoint(block, x);   // block's activations are not kept
//
// checkpoint(fn, inputs) runs fn without keeping its graph and records one
// op, "checkpoint", that saves only fn's inputs. Its backward runs fn again
// on them (with recording on) and backpropagates through that fresh graph,
// so the activations inside fn live only while its own backward runs.
//
// - Parameters fn closes over (a Linear inside it) get their gradients: the
//   leaves that require grad and that fn reaches are found in the forward
//   and become inputs of the checkpoint op. A tensor computed outside fn
//   that requires grad (not a leaf) must be passed in `inputs` instead.
//   Capture modules and parameters by reference: the op keeps fn, and the
//   graph must not own a tensor that requires grad.
// - Randomness: the recomputation sees the same random numbers. The state of
//   this thread's default generator at the forward (and of every generator
//   in CheckpointOptions::generators, e.g. a Dropout's) is restored before fn
//   runs again and put back afterwards, so dropout masks match and the
//   numbers drawn after backward are the ones they would have been.
// - fn must be deterministic and must not write into its inputs (modify()):
//   a changed input would be recomputed from the changed value, so
//   checkpoint refuses it with a GraphError. Inputs or captured parameters
//   changed after the forward are caught by the usual version check.
// - Works in backward() and grad(), and under create_graph (the gradient of
//   a checkpoint is itself recorded as a checkpoint, so second derivatives
//   recompute too).
//
// Named checkpoint after the technique; the files written by
// nn::save_checkpoint / nn::load_checkpoint (nn/checkpoint.hpp) are another
// thing, in another namespace.
#pragma once

#include <initializer_list>
#include <vector>

#include <tapegrad/core/functional.hpp>

namespace tapegrad {

struct CheckpointOptions {
    // Generators fn draws from besides this thread's default generator.
    // They must outlive the backward.
    std::vector<Generator*> generators;
};

template <class T>
BasicTensor<T> checkpoint(const functional::Fn<T>& fn, const std::vector<BasicTensor<T>>& inputs,
                          const CheckpointOptions& options = {});

template <class T>
BasicTensor<T> checkpoint(const functional::Fn<T>& fn, std::initializer_list<BasicTensor<T>> inputs,
                          const CheckpointOptions& options = {}) {
    return checkpoint<T>(fn, std::vector<BasicTensor<T>>(inputs), options);
}

// fn of one tensor.
template <class T>
BasicTensor<T> checkpoint(const functional::Fn1<T>& fn, const BasicTensor<T>& x, const CheckpointOptions& options = {}) {
    return checkpoint<T>(functional::detail_functional::on_first<T>(fn), {x}, options);
}

}  // namespace tapegrad
