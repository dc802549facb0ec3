// A training step the example programs run either compiled (the default) or
// eagerly (--eager): the same step function both ways, so a run with the
// same seed gives the same numbers up to float rounding.
//
//   program::TrainingStep<float> step([&](const compile::StepInputs<float>& in) {
//       model.zero_grad();
//       auto loss = nn::mse_loss(model(in.tensors[0]), in.tensors[1]);
//       loss.backward();
//       return std::vector<Tensor>{loss};
//   }, eager);
//   for (...) {
//       double loss = step({{x, y}}).front().item();   // every parameter's .grad is written
//       opt.step();                                    // eager, outside the program
//   }
//
// Compiled, the first call with a given set of input shapes captures the
// step (that call is a real, eager step) and later calls with those shapes
// replay its program (docs/compile.md). A captured program only takes the
// shapes it was captured with, so one is kept per set of shapes: the short
// last batch of an epoch gets a program of its own.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <tapegrad/core/compile/capture.hpp>

namespace program {

// The help text of every training program's --eager flag.
inline constexpr const char* kEagerHelp =
    "Run each training step eagerly (build the graph every step) instead of replaying a compiled step";

template <class T>
class TrainingStep {
public:
    using Inputs = tapegrad::compile::StepInputs<T>;
    using Outputs = std::vector<tapegrad::BasicTensor<T>>;

    // `parameters`, if given, is checked before every replay (a parameter
    // replaced since capture is an error naming it, not a silent use of the old one).
    TrainingStep(tapegrad::compile::StepFn<T> step, bool eager,
                 tapegrad::compile::NamedParameters<T> parameters = {})
        : step_(std::move(step)), eager_(eager) {
        options_.parameters = std::move(parameters);
    }

    // Runs one step on `inputs`; returns the step's outputs (valid until the next call).
    const Outputs& operator()(const Inputs& inputs) {
        if (eager_) return eager_outputs_ = step_(inputs);
        auto key = shapes_of(inputs);
        auto found = programs_.find(key);
        if (found == programs_.end()) {
            auto compiled = tapegrad::compile::capture<T>(step_, inputs, options_);
            found = programs_.emplace(std::move(key), std::move(compiled)).first;
            return found->second.captured_outputs();
        }
        return found->second(inputs);
    }

    bool eager() const { return eager_; }
    std::size_t programs() const { return programs_.size(); }

private:
    // Every input tensor's rank and dimensions, then every index's length.
    static std::vector<std::size_t> shapes_of(const Inputs& inputs) {
        std::vector<std::size_t> key;
        for (const auto& t : inputs.tensors) {
            const auto& shape = t.shape();
            key.push_back(shape.size());
            key.insert(key.end(), shape.begin(), shape.end());
        }
        for (const auto& index : inputs.indices) key.push_back(index.size());
        return key;
    }

    tapegrad::compile::StepFn<T> step_;
    bool eager_;
    tapegrad::compile::CaptureOptions<T> options_;
    std::map<std::vector<std::size_t>, tapegrad::compile::CompiledStep<T>> programs_;
    Outputs eager_outputs_;
};

// The usual step: drop the gradients of `params`, compute `loss` from the
// inputs, run backward; the step returns the loss, then `extra` outputs the
// loss function appends (a prediction to report, say).
template <class T>
using LossFn = std::function<std::vector<tapegrad::BasicTensor<T>>(const tapegrad::compile::StepInputs<T>&)>;

template <class T>
TrainingStep<T> backward_step(std::vector<tapegrad::BasicTensor<T>> params, LossFn<T> loss, bool eager) {
    return TrainingStep<T>(
        [params = std::move(params), loss = std::move(loss)](const tapegrad::compile::StepInputs<T>& in) {
            for (auto p : params) p.zero_grad();
            auto outputs = loss(in);
            outputs.front().backward();
            return outputs;
        },
        eager);
}

}  // namespace program
