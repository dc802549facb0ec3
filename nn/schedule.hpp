// Learning-rate schedules. Each remembers the optimiser's lr at construction
// as the base and sets optimizer.lr() for an epoch:
//
//   nn::CosineLR schedule(opt, 100);
//   for (epoch...) { train(...); schedule.step(); }
//
// lr_at(epoch) is the pure formula, for plotting or tests.
#pragma once

#include <cstddef>

#include <tapegrad/nn/optim.hpp>

namespace tapegrad::nn {

class Schedule {
public:
    explicit Schedule(LearningRate& optimizer) : opt_(optimizer), base_lr_(optimizer.lr()) {}
    virtual ~Schedule() = default;
    virtual double lr_at(std::size_t epoch) const = 0;
    // Advances one epoch and sets the optimiser's lr for it.
    void step();
    std::size_t epoch() const { return epoch_; }
    // Moves to `epoch` (epochs completed) for a resumed run, leaving the
    // optimiser's lr alone: the run checkpoint restores that with the rest
    // of the optimiser's state.
    void set_epoch(std::size_t epoch) { epoch_ = epoch; }
    double base_lr() const { return base_lr_; }

private:
    LearningRate& opt_;
    double base_lr_;
    std::size_t epoch_ = 0;
};

// base_lr * gamma^floor(epoch / step_size).
class StepLR : public Schedule {
public:
    StepLR(LearningRate& optimizer, std::size_t step_size, double gamma = 0.1);
    double lr_at(std::size_t epoch) const override;

private:
    std::size_t step_size_;
    double gamma_;
};

// Half a cosine from base_lr (epoch 0) down to min_lr (epoch t_max), then
// min_lr onwards (no restarts).
class CosineLR : public Schedule {
public:
    CosineLR(LearningRate& optimizer, std::size_t t_max, double min_lr = 0);
    double lr_at(std::size_t epoch) const override;

private:
    std::size_t t_max_;
    double min_lr_;
};

}  // namespace tapegrad::nn
