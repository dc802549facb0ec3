// Optimiser updates as fused xtensor expressions assigned with xt::noalias
// into the parameter or a state buffer: no temporaries, no allocation.
#include <tapegrad/nn/optim.hpp>

#include <algorithm>
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/grad_mode.hpp>
#include <tapegrad/nn/shape_util.hpp>

namespace tapegrad::nn {

LearningRate::LearningRate(double lr) { set_lr(lr); }

void LearningRate::set_lr(double lr) {
    if (!(lr >= 0) || !std::isfinite(lr)) throw ValueError("optimizer: lr must be finite and >= 0, got " + std::to_string(lr));
    lr_ = lr;
}

template <class T>
Optimizer<T>::Optimizer(std::vector<BasicTensor<T>> params, double lr) : LearningRate(lr), params_(std::move(params)) {
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const auto& p = params_[i];
        if (!p.defined()) throw ValueError("optimizer: parameter " + std::to_string(i) + " is undefined");
        if (!p.is_leaf())
            throw ValueError("optimizer: parameter " + std::to_string(i) + " was produced by '" + p.op_name() +
                             "', not a leaf; an optimiser updates leaf tensors (detach it, or pass the leaf it was "
                             "computed from)");
        for (std::size_t j = 0; j < i; ++j)
            if (params_[j].same(p))
                throw ValueError("optimizer: parameter " + std::to_string(i) + " is parameter " + std::to_string(j) +
                                 " again; it would be updated twice per step");
    }
    updates_.assign(params_.size(), 0);
}

template <class T>
std::size_t Optimizer<T>::updates(std::size_t i) const {
    if (i >= updates_.size())
        throw ValueError("optimizer: updates(" + std::to_string(i) + ") but there are " +
                         std::to_string(updates_.size()) + " parameters");
    return updates_[i];
}

template <class T>
BasicTensor<T> Optimizer<T>::take_grad(std::size_t i) {
    auto g = params_[i].grad();
    if (g.defined()) ++updates_[i];
    return g;
}

template <class T>
void Optimizer<T>::zero_grad() {
    for (auto& p : params_) p.zero_grad();
}

template <class T>
std::vector<Array<T>>& Optimizer<T>::add_buffer(const std::string& name) {
    std::vector<Array<T>> zeros;
    for (const auto& p : params_) zeros.push_back(xt::zeros<T>(p.shape()));
    buffers_.emplace_back(name, std::move(zeros));
    return buffers_.back().second;
}

namespace {

const std::string kStep = "step";

std::string step_name(std::size_t i) { return kStep + "." + std::to_string(i); }

// A saved step count as a whole number; `name` for the error.
template <class T>
std::size_t step_count(const std::string& name, const Array<T>& a) {
    const T step = a();
    if (!(step >= T(0)) || step != std::floor(step))
        throw ValueError("optimizer load_state: '" + name + "' must be a whole number >= 0, got " + std::to_string(step));
    return static_cast<std::size_t>(step);
}

}  // namespace

template <class T>
StateDict<T> Optimizer<T>::state() const {
    StateDict<T> s;
    s.emplace_back("lr", Array<T>(static_cast<T>(lr())));
    s.emplace_back(kStep, Array<T>(static_cast<T>(steps_)));
    for (std::size_t i = 0; i < updates_.size(); ++i)
        s.emplace_back(step_name(i), Array<T>(static_cast<T>(updates_[i])));
    for (const auto& [name, arrays] : buffers_)
        for (std::size_t i = 0; i < arrays.size(); ++i) s.emplace_back(name + "." + std::to_string(i), arrays[i]);
    return s;
}

template <class T>
void Optimizer<T>::load_state(const StateDict<T>& state) {
    // Check everything first, so a bad state leaves the optimiser untouched.
    // Entries: lr, step, step.<i> for each parameter, then the buffers.
    auto expected = this->state();
    const std::size_t first_count = 2, first_buffer = first_count + updates_.size();
    std::vector<const Array<T>*> found(expected.size(), nullptr);
    for (const auto& [name, value] : state) {
        std::size_t k = 0;
        while (k < expected.size() && expected[k].first != name) ++k;
        if (k == expected.size()) throw ValueError("optimizer load_state: unexpected entry '" + name + "'");
        if (value.shape() != expected[k].second.shape())
            throw ShapeError("optimizer load_state: entry '" + name + "' has shape " + shape_string(value.shape()) +
                             ", expected " + shape_string(expected[k].second.shape()));
        found[k] = &value;
    }
    // A state from before per-parameter counts has none of them.
    const bool old_format = std::all_of(found.begin() + first_count, found.begin() + first_buffer,
                                        [](const auto* f) { return f == nullptr; });
    for (std::size_t k = 0; k < expected.size(); ++k)
        if (!found[k] && !(old_format && k >= first_count && k < first_buffer))
            throw ValueError("optimizer load_state: entry '" + expected[k].first + "' is missing");
    const std::size_t steps = step_count(kStep, *found[1]);
    std::vector<std::size_t> updates(updates_.size(), steps);
    if (!old_format)
        for (std::size_t i = 0; i < updates.size(); ++i) updates[i] = step_count(step_name(i), *found[first_count + i]);

    set_lr(static_cast<double>((*found[0])()));
    steps_ = steps;
    updates_ = std::move(updates);
    std::size_t k = first_buffer;
    for (auto& buffer : buffers_)
        for (auto& array : buffer.second) xt::noalias(array) = *found[k++];
}

template <class T>
SGD<T>::SGD(std::vector<BasicTensor<T>> params, double lr, double momentum, double weight_decay, bool nesterov)
    : Optimizer<T>(std::move(params), lr), momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {
    if (!(momentum >= 0 && momentum < 1)) throw ValueError("SGD: momentum must be in [0, 1), got " + std::to_string(momentum));
    if (!(weight_decay >= 0)) throw ValueError("SGD: weight_decay must be >= 0, got " + std::to_string(weight_decay));
    if (nesterov && momentum == 0) throw ValueError("SGD: nesterov needs a momentum > 0");
    if (momentum > 0) velocity_ = &this->add_buffer("momentum");
}

template <class T>
void SGD<T>::step() {
    NoGradGuard no_grad;
    const T lr = static_cast<T>(this->lr()), mu = static_cast<T>(momentum_), wd = static_cast<T>(weight_decay_);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        auto g_tensor = this->take_grad(i);
        if (!g_tensor.defined()) continue;
        const auto& g = g_tensor.value();
        this->params_[i].modify([&](auto& p) {
            if (!velocity_) {
                if (wd != T(0)) xt::noalias(p) = p - lr * (g + wd * p);
                else xt::noalias(p) -= lr * g;
                return;
            }
            auto& v = (*velocity_)[i];
            if (wd != T(0)) {
                xt::noalias(v) = mu * v + g + wd * p;
                if (nesterov_) xt::noalias(p) = p - lr * (g + wd * p + mu * v);
                else xt::noalias(p) -= lr * v;
            } else {
                xt::noalias(v) = mu * v + g;
                if (nesterov_) xt::noalias(p) -= lr * (g + mu * v);
                else xt::noalias(p) -= lr * v;
            }
        });
    }
    ++this->steps_;
}

template <class T>
Adam<T>::Adam(std::vector<BasicTensor<T>> params, double lr, double beta1, double beta2, double eps,
              double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, false) {}

template <class T>
Adam<T>::Adam(std::vector<BasicTensor<T>> params, double lr, double beta1, double beta2, double eps,
              double weight_decay, bool decoupled)
    : Optimizer<T>(std::move(params), lr),
      beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), decoupled_(decoupled) {
    const char* who = decoupled ? "AdamW" : "Adam";
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        throw ValueError(std::string(who) + ": betas must be in [0, 1), got " + std::to_string(beta1) + " and " +
                         std::to_string(beta2));
    if (!(eps > 0)) throw ValueError(std::string(who) + ": eps must be > 0, got " + std::to_string(eps));
    if (!(weight_decay >= 0))
        throw ValueError(std::string(who) + ": weight_decay must be >= 0, got " + std::to_string(weight_decay));
    m_ = &this->add_buffer("exp_avg");
    v_ = &this->add_buffer("exp_avg_sq");
}

template <class T>
void Adam<T>::step() {
    NoGradGuard no_grad;
    ++this->steps_;
    const T lr = static_cast<T>(this->lr()), b1 = static_cast<T>(beta1_), b2 = static_cast<T>(beta2_);
    const T eps = static_cast<T>(eps_), wd = static_cast<T>(weight_decay_);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        auto g_tensor = this->take_grad(i);
        if (!g_tensor.defined()) continue;
        // The parameter's own update count: skipped steps do not age its
        // moments, so they must not shrink its bias correction either.
        // In double: b^t underflows gracefully, no drift in float.
        const double t = static_cast<double>(this->updates_[i]);
        const T c1 = static_cast<T>(1 - std::pow(beta1_, t)), c2 = static_cast<T>(1 - std::pow(beta2_, t));
        const auto& g = g_tensor.value();
        auto& m = (*m_)[i];
        auto& v = (*v_)[i];
        this->params_[i].modify([&](auto& p) {
            if (decoupled_ && wd != T(0)) p *= T(1) - lr * wd;
            if (!decoupled_ && wd != T(0)) {
                xt::noalias(m) = b1 * m + (T(1) - b1) * (g + wd * p);
                xt::noalias(v) = b2 * v + (T(1) - b2) * xt::square(g + wd * p);
            } else {
                xt::noalias(m) = b1 * m + (T(1) - b1) * g;
                xt::noalias(v) = b2 * v + (T(1) - b2) * xt::square(g);
            }
            xt::noalias(p) -= lr * (m / c1) / (xt::sqrt(v / c2) + eps);
        });
    }
}

template class Optimizer<float>;
template class Optimizer<double>;
template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;

}  // namespace tapegrad::nn
