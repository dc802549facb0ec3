#include <tapegrad/nn/clip_grad.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/grad_mode.hpp>

namespace tapegrad::nn {

namespace {
// Each tensor once, so one listed twice is neither counted nor scaled twice.
// Only tensors that keep a .grad qualify: a tensor computed by an op has
// none (it would be a bug upstream, e.g. a parameter list built from outputs).
template <class T>
std::vector<BasicTensor<T>> distinct(const char* who, const std::vector<BasicTensor<T>>& params) {
    std::vector<BasicTensor<T>> out;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto& p = params[i];
        if (!p.defined()) throw ValueError(std::string(who) + ": tensor " + std::to_string(i) + " is undefined");
        if (!p.is_leaf() && !p.retains_grad())
            throw ValueError(std::string(who) + ": tensor " + std::to_string(i) + " was produced by '" + p.op_name() +
                             "', not a parameter: it keeps no .grad (pass leaves, or call retain_grad() on it)");
        if (std::none_of(out.begin(), out.end(), [&](const auto& q) { return q.same(p); })) out.push_back(p);
    }
    return out;
}
}  // namespace

template <class T>
double clip_grad_norm_(const std::vector<BasicTensor<T>>& listed, double max_norm, double norm_type) {
    const auto params = distinct("clip_grad_norm_", listed);
    if (!(max_norm >= 0)) throw ValueError("clip_grad_norm_: max_norm must be >= 0, got " + std::to_string(max_norm));
    if (!(norm_type > 0))
        throw ValueError("clip_grad_norm_: norm_type must be > 0 (or infinity), got " + std::to_string(norm_type));
    const bool inf_norm = std::isinf(norm_type);
    // Accumulated in double so that float32 gradients of many parameters
    // do not lose the small ones.
    double acc = 0;
    for (const auto& p : params) {
        const auto g = p.grad();
        if (!g.defined()) continue;
        for (T v : g.value()) {
            const double a = std::abs(static_cast<double>(v));
            if (inf_norm) acc = std::max(acc, a);
            else if (norm_type == 2) acc += a * a;
            else if (norm_type == 1) acc += a;
            else acc += std::pow(a, norm_type);
        }
    }
    const double total = inf_norm ? acc : norm_type == 2 ? std::sqrt(acc) : std::pow(acc, 1 / norm_type);
    const double scale = max_norm / (total + 1e-6);
    if (scale < 1) {
        NoGradGuard no_grad;
        for (const auto& p : params) {
            auto g = p.grad();
            if (g.defined()) g.modify([&](auto& v) { v *= static_cast<T>(scale); });
        }
    }
    return total;
}

template <class T>
void clip_grad_value_(const std::vector<BasicTensor<T>>& listed, double clip) {
    const auto params = distinct("clip_grad_value_", listed);
    if (!(clip >= 0)) throw ValueError("clip_grad_value_: clip must be >= 0, got " + std::to_string(clip));
    NoGradGuard no_grad;
    const T c = static_cast<T>(clip);
    for (const auto& p : params) {
        auto g = p.grad();
        if (!g.defined()) continue;
        g.modify([&](auto& v) { xt::noalias(v) = xt::clip(v, -c, c); });
    }
}

#define TAPEGRAD_INSTANTIATE(T)                                                            \
    template double clip_grad_norm_(const std::vector<BasicTensor<T>>&, double, double); \
    template void clip_grad_value_(const std::vector<BasicTensor<T>>&, double);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
