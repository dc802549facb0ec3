#include <tapegrad/nn/schedule.hpp>

#include <cmath>
#include <string>

namespace tapegrad::nn {

void Schedule::step() {
    ++epoch_;
    opt_.set_lr(lr_at(epoch_));
}

StepLR::StepLR(LearningRate& optimizer, std::size_t step_size, double gamma)
    : Schedule(optimizer), step_size_(step_size), gamma_(gamma) {
    if (step_size == 0) throw ValueError("StepLR: step_size must be positive");
    if (!(gamma >= 0)) throw ValueError("StepLR: gamma must be >= 0, got " + std::to_string(gamma));
}

double StepLR::lr_at(std::size_t epoch) const {
    return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineLR::CosineLR(LearningRate& optimizer, std::size_t t_max, double min_lr)
    : Schedule(optimizer), t_max_(t_max), min_lr_(min_lr) {
    if (t_max == 0) throw ValueError("CosineLR: t_max must be positive");
    if (!(min_lr >= 0)) throw ValueError("CosineLR: min_lr must be >= 0, got " + std::to_string(min_lr));
}

double CosineLR::lr_at(std::size_t epoch) const {
    if (epoch >= t_max_) return min_lr_;
    const double progress = static_cast<double>(epoch) / static_cast<double>(t_max_);
    return min_lr_ + (base_lr() - min_lr_) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace tapegrad::nn
