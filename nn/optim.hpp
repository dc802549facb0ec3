// Optimisers over a list of parameters: SGD (momentum, Nesterov, weight
// decay), Adam (L2 weight decay folded into the gradient) and AdamW (weight
// decay decoupled from the gradient).
//
//   nn::Adam<float> opt(model.parameters(), 1e-3);
//   opt.zero_grad(); loss.backward(); opt.step();
//
// step() writes each parameter's value in place (modify(), under
// NoGradGuard), with fused xtensor expressions into state buffers allocated
// once at construction: a step allocates nothing.
//
// Skipped parameters follow torch.optim: a parameter whose gradient is
// undefined on a step (an expert the router sent no rows, a frozen branch)
// is left alone entirely: its value, its state buffers and its own update
// count stay as they are. Adam's bias correction uses that per-parameter
// count, not the number of step() calls, so a parameter updated on steps 1,
// 2 and 5 takes its third step with t = 3, as in PyTorch.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::nn {

// Named arrays, in a fixed order: the optimiser's state for checkpoints.
template <class T>
using StateDict = std::vector<std::pair<std::string, Array<T>>>;

// What a learning-rate schedule needs, whatever the element type.
class LearningRate {
public:
    explicit LearningRate(double lr);
    virtual ~LearningRate() = default;
    double lr() const { return lr_; }
    void set_lr(double lr);

private:
    double lr_;
};

template <class T>
class Optimizer : public LearningRate {
public:
    Optimizer(std::vector<BasicTensor<T>> params, double lr);
    Optimizer(const Optimizer&) = delete;  // subclasses point into their buffers
    Optimizer& operator=(const Optimizer&) = delete;
    virtual void step() = 0;
    void zero_grad();
    const std::vector<BasicTensor<T>>& params() const { return params_; }
    std::size_t steps() const { return steps_; }  // step() calls so far
    // Updates parameter i has received: the step() calls in which its
    // gradient was defined.
    std::size_t updates(std::size_t i) const;

    // "lr", "step" (0-d), "step.<i>" (0-d, updates(i)) per parameter, then one
    // array per parameter and buffer, named "<buffer>.<parameter index>"
    // (e.g. "exp_avg.0").
    StateDict<T> state() const;
    // Restores a state() of an optimiser of the same kind over parameters of
    // the same shapes. All-or-nothing: a missing or unexpected entry is a
    // ValueError naming it, a wrong shape a ShapeError naming the entry and
    // both shapes, a step count that is not a whole number >= 0 a ValueError,
    // and nothing is changed.
    //
    // A state saved before tapegrad counted updates per parameter has only
    // "step". It still loads: every parameter's count becomes that "step",
    // which is the t the old optimiser gave every parameter, so the next
    // step() continues exactly as the old one would have. A state with some
    // "step.<i>" but not all is refused (missing entry).
    void load_state(const StateDict<T>& state);

protected:
    // A zero buffer per parameter, saved in state() under `name`.
    std::vector<Array<T>>& add_buffer(const std::string& name);
    // The parameter's gradient if it has one this step, after counting the
    // update; undefined (and nothing counted) if it is to be skipped.
    BasicTensor<T> take_grad(std::size_t i);
    std::vector<BasicTensor<T>> params_;
    std::size_t steps_ = 0;
    std::vector<std::size_t> updates_;  // per parameter

private:
    // A deque: add_buffer's references stay valid as buffers are added.
    std::deque<std::pair<std::string, std::vector<Array<T>>>> buffers_;
};

// d = g + wd p; v = momentum v + d; p -= lr (nesterov ? d + momentum v : v).
// Without momentum: p -= lr d. As torch.optim.SGD with dampening 0: its
// momentum buffer starts as d on a parameter's first update, which is what
// momentum * 0 + d gives; a skipped step leaves v as it is.
template <class T>
class SGD : public Optimizer<T> {
public:
    SGD(std::vector<BasicTensor<T>> params, double lr, double momentum = 0, double weight_decay = 0,
        bool nesterov = false);
    void step() override;

private:
    double momentum_, weight_decay_;
    bool nesterov_;
    std::vector<Array<T>>* velocity_ = nullptr;
};

// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps), with g += wd p (Adam),
// where t = updates(i), the parameter's own update count including this one
// (torch.optim.Adam's per-parameter state["step"]).
template <class T>
class Adam : public Optimizer<T> {
public:
    Adam(std::vector<BasicTensor<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
         double eps = 1e-8, double weight_decay = 0);
    void step() override;

protected:
    Adam(std::vector<BasicTensor<T>> params, double lr, double beta1, double beta2, double eps, double weight_decay,
         bool decoupled);

private:
    double beta1_, beta2_, eps_, weight_decay_;
    bool decoupled_;
    std::vector<Array<T>>* m_ = nullptr;
    std::vector<Array<T>>* v_ = nullptr;
};

// Adam with decoupled weight decay: p -= lr wd p before the Adam update, so
// the decay does not pass through the adaptive scaling (Loshchilov & Hutter).
template <class T>
class AdamW : public Adam<T> {
public:
    AdamW(std::vector<BasicTensor<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
          double eps = 1e-8, double weight_decay = 0.01)
        : Adam<T>(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template class SGD<float>;
extern template class SGD<double>;
extern template class Adam<float>;
extern template class Adam<double>;

}  // namespace tapegrad::nn
