#include <tapegrad/nn/init.hpp>

#include <cmath>
#include <random>

namespace tapegrad::nn::init {

template <class T>
std::pair<std::size_t, std::size_t> fans(const BasicTensor<T>& w) {
    const auto& s = w.shape();
    if (s.empty()) throw ValueError("init: a 0-d tensor has no fan_in/fan_out");
    if (s.size() == 1) return {s[0], s[0]};
    std::size_t in = 1;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) in *= s[i];
    return {in, s.back()};
}

template <class T>
void constant_(BasicTensor<T>& t, Scalar<T> value) {
    t.modify([&](auto& v) { v.fill(value); });
}

template <class T>
void normal_(BasicTensor<T>& t, Generator& gen, Scalar<T> mean, Scalar<T> stddev) {
    if (!(stddev >= T(0))) throw ValueError("init::normal_: stddev must be >= 0, got " + std::to_string(stddev));
    std::normal_distribution<T> dist(mean, stddev);
    t.modify([&](auto& values) {
        for (auto& v : values) v = stddev == T(0) ? mean : dist(gen.engine());
    });
}

template <class T>
void uniform_(BasicTensor<T>& t, Generator& gen, Scalar<T> low, Scalar<T> high) {
    if (!(low <= high))
        throw ValueError("init::uniform_: need low <= high, got " + std::to_string(low) + " and " + std::to_string(high));
    std::uniform_real_distribution<T> dist(low, high);
    t.modify([&](auto& values) {
        for (auto& v : values) v = low == high ? low : dist(gen.engine());
    });
}

namespace {
template <class T>
void need_fan_in(const BasicTensor<T>& w, std::size_t fan, const char* who) {
    if (fan == 0) throw ValueError(std::string("init::") + who + ": the tensor is empty (zero fan)");
}
}  // namespace

template <class T>
void classic_(BasicTensor<T>& w, Generator& gen) {
    auto [in, out] = fans(w);
    need_fan_in(w, in, "classic_");
    normal_(w, gen, T(0), static_cast<T>(1 / std::sqrt(double(in))));
}

template <class T>
void xavier_normal_(BasicTensor<T>& w, Generator& gen, Scalar<T> gain) {
    auto [in, out] = fans(w);
    need_fan_in(w, in + out, "xavier_normal_");
    normal_(w, gen, T(0), static_cast<T>(gain * std::sqrt(2.0 / double(in + out))));
}

template <class T>
void xavier_uniform_(BasicTensor<T>& w, Generator& gen, Scalar<T> gain) {
    auto [in, out] = fans(w);
    need_fan_in(w, in + out, "xavier_uniform_");
    // U(-a, a) has variance a^2/3, so a = gain * sqrt(6 / (in + out)).
    const T a = static_cast<T>(gain * std::sqrt(6.0 / double(in + out)));
    uniform_(w, gen, -a, a);
}

template <class T>
void he_normal_(BasicTensor<T>& w, Generator& gen) {
    auto [in, out] = fans(w);
    need_fan_in(w, in, "he_normal_");
    normal_(w, gen, T(0), static_cast<T>(std::sqrt(2.0 / double(in))));
}

template <class T>
void he_uniform_(BasicTensor<T>& w, Generator& gen) {
    auto [in, out] = fans(w);
    need_fan_in(w, in, "he_uniform_");
    const T a = static_cast<T>(std::sqrt(6.0 / double(in)));
    uniform_(w, gen, -a, a);
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

template <class T>
void initialize(ModuleBase<T>& module, Scheme weights, Generator& gen, Bias bias) {
    // Parameters in registration order, so the draws (and the network) depend
    // only on the seed and the architecture.
    for (auto& [name, p] : module.named_parameters()) {
        if (ends_with(name, "weight") && p.dim() == 2) {
            switch (weights) {
                case Scheme::classic: classic_(p, gen); break;
                case Scheme::xavier_normal: xavier_normal_(p, gen); break;
                case Scheme::xavier_uniform: xavier_uniform_(p, gen); break;
                case Scheme::he_normal: he_normal_(p, gen); break;
                case Scheme::he_uniform: he_uniform_(p, gen); break;
            }
        } else if (ends_with(name, "bias")) {
            if (bias.kind == Bias::Kind::normal) normal_(p, gen, T(0), static_cast<T>(bias.value));
            else constant_(p, static_cast<T>(bias.value));
        }
    }
}

#define TAPEGRAD_INSTANTIATE(T)                                                              \
    template std::pair<std::size_t, std::size_t> fans(const BasicTensor<T>&);               \
    template void constant_(BasicTensor<T>&, Scalar<T>);                                    \
    template void normal_(BasicTensor<T>&, Generator&, Scalar<T>, Scalar<T>);               \
    template void uniform_(BasicTensor<T>&, Generator&, Scalar<T>, Scalar<T>);              \
    template void classic_(BasicTensor<T>&, Generator&);                                    \
    template void xavier_normal_(BasicTensor<T>&, Generator&, Scalar<T>);                   \
    template void xavier_uniform_(BasicTensor<T>&, Generator&, Scalar<T>);                  \
    template void he_normal_(BasicTensor<T>&, Generator&);                                  \
    template void he_uniform_(BasicTensor<T>&, Generator&);                                 \
    template void initialize(ModuleBase<T>&, Scheme, Generator&, Bias);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn::init
