// Activations as compositions of tensor ops. Two rules keep them stable:
// never exponentiate a large positive number, and never let an unselected
// where() branch hold inf (its zero gradient times inf would be NaN).
#include <tapegrad/nn/activations.hpp>

#include <cmath>
#include <map>
#include <random>

#include <tapegrad/core/op.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/compare.hpp>
#include <tapegrad/ops/reduce.hpp>

namespace tapegrad::nn {

namespace {
template <class T>
BasicTensor<T> constant(T v) {
    return BasicTensor<T>::scalar(v);
}
}  // namespace

template <class T>
BasicTensor<T> identity(const BasicTensor<T>& x) {
    return x;
}

template <class T>
BasicTensor<T> threshold(const BasicTensor<T>& x, Scalar<T> at) {
    // The 0/1 values are a constant; where() with an all-false condition puts
    // them on x's graph with a zero gradient.
    BasicTensor<T> ones = step(add(x.detach(), -at));
    return where(constant<T>(0), x, ones);
}

template <class T>
BasicTensor<T> relu(const BasicTensor<T>& x) {
    return where(step(x), x, constant<T>(0));
}

template <class T>
BasicTensor<T> leaky_relu(const BasicTensor<T>& x, Scalar<T> alpha) {
    return where(step(x), x, x * alpha);
}

template <class T>
BasicTensor<T> prelu(const BasicTensor<T>& x, const BasicTensor<T>& slope) {
    // Checked here: the composition's own error would name only "mul".
    detail::check_broadcast("prelu", x.shape(), slope.shape());
    return where(step(x), x, x * slope);
}

template <class T>
BasicTensor<T> elu(const BasicTensor<T>& x, Scalar<T> alpha) {
    auto positive = step(x);
    // exp only sees the non-positive part, so large x cannot overflow.
    auto negative_part = where(positive, constant<T>(0), x);
    return where(positive, x, (exp(negative_part) - Scalar<T>(1)) * alpha);
}

template <class T>
BasicTensor<T> gelu(const BasicTensor<T>& x, GeluApproximation approx) {
    const T half = T(0.5);
    if (approx == GeluApproximation::tanh) {
        const T k = static_cast<T>(std::sqrt(2.0 / M_PI));
        auto inner = (x + x * x * x * T(0.044715)) * k;
        return x * (tanh(inner) + T(1)) * half;
    }
    return x * (erf(x * static_cast<T>(1.0 / std::sqrt(2.0))) + T(1)) * half;
}

template <class T>
BasicTensor<T> silu(const BasicTensor<T>& x, Scalar<T> beta) {
    return x * sigmoid(beta == Scalar<T>(1) ? x : x * beta);
}

template <class T>
BasicTensor<T> log_softmax(const BasicTensor<T>& x, std::ptrdiff_t axis) {
    return x - logsumexp(x, {axis}, true);
}

template <class T>
BasicTensor<T> softmax(const BasicTensor<T>& x, std::ptrdiff_t axis) {
    return exp(log_softmax(x, axis));
}

template <class T>
std::shared_ptr<BasicModule<T>> make_activation(const std::string& name) {
    using F = typename Activation<T>::Fn;
    static const std::map<std::string, std::pair<const char*, F>> table = {
        {"identity", {"Identity", [](const BasicTensor<T>& x) { return identity(x); }}},
        {"threshold", {"Threshold", [](const BasicTensor<T>& x) { return threshold(x); }}},
        {"sigmoid", {"Sigmoid", [](const BasicTensor<T>& x) { return sigmoid(x); }}},
        {"tanh", {"Tanh", [](const BasicTensor<T>& x) { return tanh(x); }}},
        {"relu", {"ReLU", [](const BasicTensor<T>& x) { return relu(x); }}},
        {"leaky_relu", {"LeakyReLU", [](const BasicTensor<T>& x) { return leaky_relu(x); }}},
        {"abs", {"Abs", [](const BasicTensor<T>& x) { return abs(x); }}},
        {"elu", {"ELU", [](const BasicTensor<T>& x) { return elu(x); }}},
        {"softplus", {"Softplus", [](const BasicTensor<T>& x) { return softplus(x); }}},
        {"gelu", {"GELU", [](const BasicTensor<T>& x) { return gelu(x); }}},
        {"gelu_tanh", {"GELUTanh", [](const BasicTensor<T>& x) { return gelu(x, GeluApproximation::tanh); }}},
        {"silu", {"SiLU", [](const BasicTensor<T>& x) { return silu(x); }}},
        {"softmax", {"Softmax", [](const BasicTensor<T>& x) { return softmax(x); }}},
        {"log_softmax", {"LogSoftmax", [](const BasicTensor<T>& x) { return log_softmax(x); }}},
    };
    auto it = table.find(name);
    if (it == table.end()) {
        std::string known;
        for (const auto& kv : table) known += (known.empty() ? "" : ", ") + kv.first;
        throw ValueError("make_activation: unknown activation '" + name + "' (known: " + known + ")");
    }
    return std::make_shared<Activation<T>>(it->second.first, it->second.second);
}

template <class T>
PReLU<T>::PReLU(std::size_t num_slopes, T init) : BasicModule<T>("PReLU") {
    if (num_slopes == 0) throw ValueError("PReLU: num_slopes must be at least 1");
    this->register_parameter("slope", slope, BasicTensor<T>::full({num_slopes}, init));
}

template <class T>
RReLU<T>::RReLU(T lower, T upper, std::uint64_t seed) : BasicModule<T>("RReLU"), lower_(lower), upper_(upper), gen_(seed) {
    this->register_generator("generator", gen_);
    if (!(lower >= T(0) && lower <= upper))
        throw ValueError("RReLU: need 0 <= lower <= upper, got lower=" + std::to_string(lower) +
                         " upper=" + std::to_string(upper));
}

template <class T>
BasicTensor<T> RReLU<T>::forward(const BasicTensor<T>& x) {
    // The random slopes are constants of this forward pass, not parameters,
    // drawn by an op of no inputs: a captured program draws new ones from
    // this generator on every replay.
    if (!this->is_training()) return prelu(x, constant<T>((lower_ + upper_) / T(2)));
    auto slopes = detail::no_grad_op<T>("rrelu_slopes", {}, [this, gen = &gen_, lo = lower_, hi = upper_,
                                                             shape = x.shape_vector()]() {
        if (!this->is_training()) detail::replayed_in_eval_mode("RReLU");
        Array<T> s = Array<T>::from_shape(shape);
        std::uniform_real_distribution<T> dist(lo, hi);
        auto& engine = gen->engine();
        for (auto& v : s) v = lo == hi ? lo : dist(engine);
        return s;
    });
    return prelu(x, slopes);
}

template <class T>
std::string RReLU<T>::extra_repr() const {
    return "lower=" + std::to_string(lower_) + ", upper=" + std::to_string(upper_);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                      \
    template BasicTensor<T> identity(const BasicTensor<T>&);                                        \
    template BasicTensor<T> threshold(const BasicTensor<T>&, Scalar<T>);                            \
    template BasicTensor<T> relu(const BasicTensor<T>&);                                            \
    template BasicTensor<T> leaky_relu(const BasicTensor<T>&, Scalar<T>);                           \
    template BasicTensor<T> prelu(const BasicTensor<T>&, const BasicTensor<T>&);                    \
    template BasicTensor<T> elu(const BasicTensor<T>&, Scalar<T>);                                  \
    template BasicTensor<T> gelu(const BasicTensor<T>&, GeluApproximation);                         \
    template BasicTensor<T> silu(const BasicTensor<T>&, Scalar<T>);                                 \
    template BasicTensor<T> softmax(const BasicTensor<T>&, std::ptrdiff_t);                         \
    template BasicTensor<T> log_softmax(const BasicTensor<T>&, std::ptrdiff_t);                     \
    template std::shared_ptr<BasicModule<T>> make_activation<T>(const std::string&);                \
    template class PReLU<T>;                                                                        \
    template class RReLU<T>;
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
