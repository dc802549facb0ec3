// Random-graph fuzzing: generation, execution, preconditions, shrinking and
// the C++ reproducer. See graph_fuzz.hpp.
#include "graph_fuzz.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tapegrad::fuzz {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct OpInfo {
    Op op;
    const char* name;
    bool smooth;    // allowed in programs checked for second derivatives
    bool constant;  // result carries no gradient
};

// Every op, in enum order.
const OpInfo kOps[] = {
    {Op::input, "input", true, false},
    {Op::one_hot, "one_hot", false, true},
    {Op::add, "add", true, false},
    {Op::sub, "sub", true, false},
    {Op::mul, "mul", true, false},
    {Op::div, "div", true, false},
    {Op::neg, "neg", true, false},
    {Op::add_scalar, "add_scalar", true, false},
    {Op::mul_scalar, "mul_scalar", true, false},
    {Op::rsub, "rsub", true, false},
    {Op::rdiv, "rdiv", true, false},
    {Op::pow_scalar, "pow_scalar", true, false},
    {Op::pow_tensor, "pow_tensor", true, false},
    {Op::maximum, "maximum", false, false},
    {Op::minimum, "minimum", false, false},
    {Op::maximum_scalar, "maximum_scalar", false, false},
    {Op::minimum_scalar, "minimum_scalar", false, false},
    {Op::where, "where", false, false},
    {Op::clamp, "clamp", false, false},
    {Op::exp, "exp", true, false},
    {Op::log, "log", true, false},
    {Op::log1p, "log1p", true, false},
    {Op::sqrt, "sqrt", true, false},
    {Op::abs, "abs", false, false},
    {Op::tanh, "tanh", true, false},
    {Op::erf, "erf", true, false},
    {Op::sin, "sin", true, false},
    {Op::cos, "cos", true, false},
    {Op::sign, "sign", false, true},
    {Op::step, "step", false, true},
    {Op::eq, "eq", false, true},
    {Op::ne, "ne", false, true},
    {Op::lt, "lt", false, true},
    {Op::le, "le", false, true},
    {Op::gt, "gt", false, true},
    {Op::ge, "ge", false, true},
    {Op::sum, "sum", true, false},
    {Op::mean, "mean", true, false},
    {Op::max, "max", false, false},
    {Op::min, "min", false, false},
    {Op::logsumexp, "logsumexp", true, false},
    {Op::sum_to, "sum_to", true, false},
    {Op::matmul, "matmul", true, false},
    {Op::transpose, "transpose", true, false},
    {Op::transpose_axes, "transpose_axes", true, false},
    {Op::permute, "permute", true, false},
    // Linear algebra: structured matrices, then LAPACK ops on well-conditioned
    // matrices made from the drawn value (general() and positive_definite()).
    {Op::tril, "tril", true, false},
    {Op::triu, "triu", true, false},
    {Op::diagonal, "diagonal", true, false},
    {Op::diag_embed, "diag_embed", true, false},
    {Op::solve, "solve", true, false},
    {Op::inv, "inv", true, false},
    {Op::det, "det", true, false},
    {Op::slogdet, "slogdet", true, false},
    {Op::cholesky, "cholesky", true, false},
    {Op::triangular_solve, "triangular_solve", true, false},
    {Op::reshape, "reshape", true, false},
    {Op::broadcast_to, "broadcast_to", true, false},
    {Op::clone, "clone", true, false},
    {Op::detach, "detach", true, false},
    {Op::slice, "slice", true, false},
    {Op::concat, "concat", true, false},
    {Op::stack, "stack", true, false},
    {Op::index_select, "index_select", true, false},
    {Op::gather, "gather", true, false},
    {Op::identity, "nn::identity", true, false},
    {Op::threshold, "nn::threshold", false, false},
    {Op::sigmoid, "nn::sigmoid", true, false},
    {Op::relu, "nn::relu", false, false},
    {Op::leaky_relu, "nn::leaky_relu", false, false},
    {Op::prelu, "nn::prelu", false, false},
    {Op::elu, "nn::elu", false, false},
    {Op::softplus, "nn::softplus", true, false},
    {Op::gelu, "nn::gelu", true, false},
    {Op::gelu_tanh, "nn::gelu_tanh", true, false},
    {Op::silu, "nn::silu", true, false},
    {Op::softmax, "nn::softmax", true, false},
    {Op::log_softmax, "nn::log_softmax", true, false},
    {Op::mse_loss, "nn::mse_loss", true, false},
    {Op::bce, "nn::binary_cross_entropy", false, false},
    {Op::bce_with_logits, "nn::binary_cross_entropy_with_logits", true, false},
    {Op::cross_entropy, "nn::cross_entropy", true, false},
    {Op::nll_loss, "nn::nll_loss", true, false},
    {Op::linear, "nn::Linear", true, false},
    {Op::layer_norm, "nn::LayerNorm", true, false},
    {Op::user_tensor, "fuzz::user_mul_tanh", true, false},
    {Op::user_raw, "fuzz::user_raw_mul_sin", false, false},  // first order only (raw backward)
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == kNumOps, "kOps lists every op");

const OpInfo& info(Op op) { return kOps[static_cast<int>(op)]; }

std::size_t numel(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::size_t(1), std::multiplies<std::size_t>());
}

Axes to_axes(const std::vector<std::int64_t>& v) { return Axes(v.begin(), v.end()); }

nn::Reduction reduction_of(int r) {
    return r == 1 ? nn::Reduction::sum : r == 2 ? nn::Reduction::none : nn::Reduction::mean;
}
const char* reduction_name(int r) {
    return r == 1 ? "nn::Reduction::sum" : r == 2 ? "nn::Reduction::none" : "nn::Reduction::mean";
}

// ------------------------------------------------------------ execution

// Square matrices x (..., n, n) made safe for the decompositions, smoothly:
// I + tanh(x)/(2n) is strictly diagonally dominant (each row's off-diagonal
// sum < 1/2 < its diagonal), so far from singular with a determinant in
// (0.5^n, 1.5^n); I + tanh(x)·tanh(x)ᵀ/n is positive definite with
// eigenvalues in [1, 2]. The reproducer prints the same expressions.
template <class T>
BasicTensor<T> general(const BasicTensor<T>& x) {
    const std::size_t n = x.shape().back();
    return eye<T>(n) + tanh(x) * (0.5 / double(n));
}
template <class T>
BasicTensor<T> positive_definite(const BasicTensor<T>& x) {
    const std::size_t n = x.shape().back();
    auto t = tanh(x);
    return eye<T>(n) + matmul(t, t, false, true) * (1.0 / double(n));
}

// One instruction on tensors of either dtype: the generator and gradcheck
// run it in float64; tests/test_compile_fuzz.cpp also in float32 (the
// scalar parameters are then rounded to float, in eager and replay alike).
template <class T>
BasicTensor<T> exec(const Instr& in, const std::vector<BasicTensor<T>>& v, const std::vector<BasicTensor<T>>& inputs) {
    auto a = [&](std::size_t i) -> const BasicTensor<T>& { return v[static_cast<std::size_t>(in.args[i])]; };
    auto all = [&] {
        std::vector<BasicTensor<T>> xs;
        for (int id : in.args) xs.push_back(v[static_cast<std::size_t>(id)]);
        return xs;
    };
    const Index rest(in.ints.begin() + (in.ints.empty() ? 0 : 1), in.ints.end());
    switch (in.op) {
        case Op::input: return inputs[static_cast<std::size_t>(in.input)];
        case Op::one_hot: return one_hot<T>(in.ints, in.shape2[0]);
        case Op::add: return a(0) + a(1);
        case Op::sub: return a(0) - a(1);
        case Op::mul: return a(0) * a(1);
        case Op::div: return a(0) / a(1);
        case Op::neg: return -a(0);
        case Op::add_scalar: return a(0) + in.s0;
        case Op::mul_scalar: return a(0) * in.s0;
        case Op::rsub: return in.s0 - a(0);
        case Op::rdiv: return in.s0 / a(0);
        case Op::pow_scalar: return pow(a(0), in.s0);
        case Op::pow_tensor: return pow(a(0), a(1));
        case Op::maximum: return maximum(a(0), a(1));
        case Op::minimum: return minimum(a(0), a(1));
        case Op::maximum_scalar: return maximum(a(0), in.s0);
        case Op::minimum_scalar: return minimum(a(0), in.s0);
        case Op::where: return where(a(0), a(1), a(2));
        case Op::clamp: return clamp(a(0), in.s0, in.s1);
        case Op::exp: return exp(a(0));
        case Op::log: return log(a(0));
        case Op::log1p: return log1p(a(0));
        case Op::sqrt: return sqrt(a(0));
        case Op::abs: return abs(a(0));
        case Op::tanh: return tanh(a(0));
        case Op::erf: return erf(a(0));
        case Op::sin: return sin(a(0));
        case Op::cos: return cos(a(0));
        case Op::sign: return sign(a(0));
        case Op::step: return step(a(0));
        case Op::eq: return eq(a(0), a(1));
        case Op::ne: return ne(a(0), a(1));
        case Op::lt: return lt(a(0), a(1));
        case Op::le: return le(a(0), a(1));
        case Op::gt: return gt(a(0), a(1));
        case Op::ge: return ge(a(0), a(1));
        case Op::sum: return sum(a(0), to_axes(in.ints), in.f0);
        case Op::mean: return mean(a(0), to_axes(in.ints), in.f0);
        case Op::max: return tapegrad::max(a(0), to_axes(in.ints), in.f0);
        case Op::min: return tapegrad::min(a(0), to_axes(in.ints), in.f0);
        case Op::logsumexp: return logsumexp(a(0), to_axes(in.ints), in.f0);
        case Op::sum_to: return sum_to(a(0), in.shape2);
        case Op::matmul: return in.f0 || in.f1 ? matmul(a(0), a(1), in.f0, in.f1) : matmul(a(0), a(1));
        case Op::transpose: return transpose(a(0));
        case Op::transpose_axes: return transpose(a(0), in.ints[0], in.ints[1]);
        case Op::permute: return permute(a(0), std::vector<std::size_t>(in.ints.begin(), in.ints.end()));
        case Op::tril: return tril(a(0), in.ints[0]);
        case Op::triu: return triu(a(0), in.ints[0]);
        case Op::diagonal: return diagonal(a(0));
        case Op::diag_embed: return diag_embed(a(0));
        case Op::solve: return solve(general(a(0)), a(1));
        case Op::inv: return inv(general(a(0)));
        case Op::det: return det(general(a(0)));
        case Op::slogdet: return slogdet(general(a(0))).logabsdet;
        case Op::cholesky: return cholesky(positive_definite(a(0)));
        case Op::triangular_solve: return triangular_solve(general(a(0)), a(1), in.f0, in.f1, in.ints[0] != 0);
        case Op::reshape: return reshape(a(0), in.ints);
        case Op::broadcast_to: return broadcast_to(a(0), in.shape2);
        case Op::clone: return clone(a(0));
        case Op::detach: return a(0).detach() + (a(0) - a(0).detach());
        case Op::slice: return slice(a(0), in.ints[0], in.ints[1], in.ints[2], in.ints[3]);
        case Op::concat: return concat(all(), in.ints[0]);
        case Op::stack: return stack(all(), in.ints[0]);
        case Op::index_select: return index_select(a(0), in.ints[0], rest);
        case Op::gather: return gather(a(0), in.ints[0], rest, in.shape2);
        case Op::identity: return nn::identity(a(0));
        case Op::threshold: return nn::threshold(a(0), in.s0);
        case Op::sigmoid: return nn::sigmoid(a(0));
        case Op::relu: return nn::relu(a(0));
        case Op::leaky_relu: return nn::leaky_relu(a(0), in.s0);
        case Op::prelu: return nn::prelu(a(0), a(1));
        case Op::elu: return nn::elu(a(0), in.s0);
        case Op::softplus: return nn::softplus(a(0));
        case Op::gelu: return nn::gelu(a(0));
        case Op::gelu_tanh: return nn::gelu(a(0), nn::GeluApproximation::tanh);
        case Op::silu: return nn::silu(a(0), in.s0);
        case Op::softmax: return nn::softmax(a(0), in.ints[0]);
        case Op::log_softmax: return nn::log_softmax(a(0), in.ints[0]);
        case Op::mse_loss: return nn::mse_loss(a(0), a(1), reduction_of(in.reduction));
        case Op::bce: return nn::binary_cross_entropy(a(0), a(1), reduction_of(in.reduction));
        case Op::bce_with_logits: return nn::binary_cross_entropy_with_logits(a(0), a(1), reduction_of(in.reduction));
        case Op::cross_entropy: return nn::cross_entropy(a(0), in.ints, reduction_of(in.reduction));
        case Op::nll_loss: return nn::nll_loss(a(0), in.ints, reduction_of(in.reduction));
        case Op::linear: {
            Generator g(0);
            const auto& w = a(1);
            nn::Linear<T> m(w.shape()[0], w.shape()[1], in.f0, g);
            m.parameter("weight") = w;
            if (in.f0) m.parameter("bias") = a(2);
            return m(a(0));
        }
        case Op::layer_norm: {
            nn::LayerNorm<T> m(a(0).shape().back(), T(1e-5), in.f0);
            if (in.f0) {
                m.parameter("weight") = a(1);
                m.parameter("bias") = a(2);
            }
            return m(a(0));
        }
        case Op::user_tensor: return user_mul_tanh(a(0), a(1));
        case Op::user_raw: return user_raw_mul_sin(a(0), a(1));
        case Op::count_: break;
    }
    throw std::logic_error("graph_fuzz: unknown op");
}

// ------------------------------------------------------------ preconditions

double min_abs(const Array<double>& x) { return x.size() ? double(xt::amin(xt::abs(x))()) : kInf; }
double min_abs_diff(const Array<double>& a, const Array<double>& b) {
    Array<double> d = xt::abs(a - b);
    return d.size() ? double(xt::amin(d)()) : kInf;
}
double min_value(const Array<double>& x) { return x.size() ? double(xt::amin(x)()) : kInf; }
double max_value(const Array<double>& x) { return x.size() ? double(xt::amax(x)()) : -kInf; }

bool is_integer(double p) { return p == std::floor(p); }

// Why `in` may not be used on these values ("" if it may).
std::string precondition(const Instr& in, const std::vector<Tensor64>& v, const Tensor64& out,
                         const GenerateOptions& o) {
    auto a = [&](std::size_t i) -> const Array<double>& { return v[static_cast<std::size_t>(in.args[i])].value(); };
    const double m = o.kink_margin;
    const double domain = 0.25;  // log, sqrt, 1/x and x^p stay this far inside their domain
    char buf[160];
    auto fail = [&](const char* why, double got) {
        std::snprintf(buf, sizeof buf, "%s (%.3g)", why, got);
        return std::string(buf);
    };

    if (out.size() > o.max_elements) return fail("too many elements", double(out.size()));
    for (double x : out.value())
        if (!std::isfinite(x)) return "non-finite result";
    if (!in.relaxed && out.size() && double(xt::amax(xt::abs(out.value()))()) > o.max_magnitude)
        return fail("result too large", double(xt::amax(xt::abs(out.value()))()));

    switch (in.op) {
        case Op::div:
            if (min_abs(a(1)) < domain) return fail("denominator near 0", min_abs(a(1)));
            break;
        case Op::rdiv:
            if (min_abs(a(0)) < domain) return fail("denominator near 0", min_abs(a(0)));
            break;
        case Op::pow_scalar:
            if ((!is_integer(in.s0) || in.s0 < 0) && min_value(a(0)) < domain)
                return fail("base not positive", min_value(a(0)));
            break;
        case Op::pow_tensor:
            if (min_value(a(0)) < domain) return fail("base not positive", min_value(a(0)));
            break;
        case Op::log:
        case Op::sqrt:
            if (min_value(a(0)) < domain) return fail("argument not positive", min_value(a(0)));
            break;
        case Op::log1p:
            if (min_value(a(0)) < domain - 1) return fail("argument near -1", min_value(a(0)));
            break;
        case Op::maximum:
        case Op::minimum:
        case Op::ne:
        case Op::lt:
        case Op::le:
        case Op::gt:
        case Op::ge:
            if (min_abs_diff(a(0), a(1)) < m) return fail("operands nearly tie", min_abs_diff(a(0), a(1)));
            break;
        case Op::eq:
            if (in.args[0] != in.args[1] && min_abs_diff(a(0), a(1)) < m)
                return fail("operands nearly tie", min_abs_diff(a(0), a(1)));
            break;
        case Op::maximum_scalar:
        case Op::minimum_scalar:
        case Op::threshold:
            if (min_abs(a(0) - in.s0) < m) return fail("argument near the kink", min_abs(a(0) - in.s0));
            break;
        case Op::clamp:
            if (std::min(min_abs(a(0) - in.s0), min_abs(a(0) - in.s1)) < m)
                return fail("argument near a bound", std::min(min_abs(a(0) - in.s0), min_abs(a(0) - in.s1)));
            break;
        case Op::abs:
        case Op::sign:
        case Op::step:
        case Op::relu:
        case Op::leaky_relu:
        case Op::prelu:
        case Op::elu:
            if (min_abs(a(0)) < m) return fail("argument near the kink at 0", min_abs(a(0)));
            break;
        case Op::max:
        case Op::min: {
            // Exactly one element of each reduced group within the margin of
            // the extreme: no ties, no near-ties.
            const auto& x = a(0);
            if (x.dimension() == 0) break;
            Shape in_shape(x.shape().begin(), x.shape().end());
            std::vector<std::size_t> axes;
            if (in.ints.empty()) {
                for (std::size_t i = 0; i < in_shape.size(); ++i) axes.push_back(i);
            } else {
                for (auto ax : in.ints)
                    axes.push_back(static_cast<std::size_t>(ax < 0 ? ax + std::int64_t(in_shape.size()) : ax));
                std::sort(axes.begin(), axes.end());
            }
            const bool largest = in.op == Op::max;
            Array<double> ext = largest ? Array<double>(xt::amax(x, axes)) : Array<double>(xt::amin(x, axes));
            Shape kept = in_shape;
            for (auto ax : axes) kept[ax] = 1;
            ext.reshape(kept);
            Array<double> close = xt::cast<double>(xt::abs(x - ext) < m);
            Array<double> counts = xt::sum(close, axes);
            if (counts.size() && max_value(counts) > 1) return "near-tie at the extreme";
            break;
        }
        case Op::bce:
            if (min_value(a(0)) < m || max_value(a(0)) > 1 - m)
                return fail("probability near 0 or 1", std::min(min_value(a(0)), 1 - max_value(a(0))));
            break;
        case Op::layer_norm: {
            // 1/sqrt(var + eps) must stay moderate for finite differences.
            const auto& x = a(0);
            const std::size_t last = x.dimension() - 1;
            if (x.shape()[last] > 1) {
                Array<double> mu = xt::mean(x, {last}, xt::keep_dims);
                Array<double> var = xt::mean(xt::square(x - mu), {last});
                if (min_value(var) < 0.05) return fail("row variance too small", min_value(var));
            }
            break;
        }
        default: break;
    }
    return "";
}

// ------------------------------------------------------------ program surgery

std::vector<Tensor64> values(const Program& p, const std::vector<Tensor64>& inputs) {
    std::vector<Tensor64> v;
    v.reserve(p.code.size());
    for (const auto& in : p.code) v.push_back(exec(in, v, inputs));
    return v;
}

// Keeps the instructions `output` depends on, renumbered in order; unused
// inputs are dropped.
Program compact(const Program& p, int output) {
    std::vector<bool> live(p.code.size(), false);
    live[static_cast<std::size_t>(output)] = true;
    for (int k = output; k >= 0; --k)
        if (live[static_cast<std::size_t>(k)])
            for (int a : p.code[static_cast<std::size_t>(k)].args) live[static_cast<std::size_t>(a)] = true;
    Program q;
    q.seed = p.seed;
    q.smooth = p.smooth;
    std::vector<int> id(p.code.size(), -1);
    for (std::size_t k = 0; k < p.code.size(); ++k) {
        if (!live[k]) continue;
        Instr in = p.code[k];
        for (int& a : in.args) a = id[static_cast<std::size_t>(a)];
        if (in.op == Op::input) {
            q.inputs.push_back(p.inputs[static_cast<std::size_t>(in.input)]);
            in.input = static_cast<int>(q.inputs.size()) - 1;
        }
        id[k] = static_cast<int>(q.code.size());
        q.code.push_back(std::move(in));
    }
    q.output = id[static_cast<std::size_t>(output)];
    return q;
}

bool is_constant_value(const Program& p, int id) {
    const Instr& in = p.code[static_cast<std::size_t>(id)];
    if (in.op == Op::input) return false;
    if (info(in.op).constant) return true;
    return std::all_of(in.args.begin(), in.args.end(), [&](int a) { return is_constant_value(p, a); });
}

// ------------------------------------------------------------ random numbers

class Rng {
public:
    explicit Rng(std::uint64_t seed) : engine_(seed) {}
    // Uniform in [lo, hi].
    int uniform(int lo, int hi) {
        return lo + static_cast<int>(engine_() % static_cast<std::uint64_t>(hi - lo + 1));
    }
    double real(double lo, double hi) {
        return lo + (hi - lo) * (static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0));
    }
    bool coin(double p = 0.5) { return real(0, 1) < p; }
    double normal() {
        // Box-Muller: the same numbers on every standard library.
        double u1 = real(1e-12, 1), u2 = real(0, 1);
        return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    }
    template <class V>
    auto& choice(V& v) {
        return v[static_cast<std::size_t>(uniform(0, static_cast<int>(v.size()) - 1))];
    }
    template <class V>
    void shuffle(V& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(uniform(0, int(i) - 1))]);
    }

private:
    std::mt19937_64 engine_;
};

// ------------------------------------------------------------ generation

enum class Dist { normal, positive, probability };

// Thrown when an op rejects arguments the generator considers valid.
struct Rejected : std::runtime_error {
    Program program;
    Rejected(Program p, const std::string& what) : std::runtime_error(what), program(std::move(p)) {}
};

class Generator_ {
public:
    Generator_(std::uint64_t seed, const GenerateOptions& o) : rng_(seed), o_(o) {
        p_.seed = seed;
        p_.smooth = o.smooth_only;
    }

    Program build() {
        const int target = rng_.uniform(o_.min_ops, o_.max_ops);
        new_input(random_shape(), Dist::normal);
        int ops = 0;
        for (int attempt = 0; ops < target && attempt < target * 12; ++attempt) {
            const std::size_t before = p_.code.size();
            if (step()) ++ops;
            else truncate(before);
        }
        finish();
        return compact(p_, p_.output);
    }

private:
    // -------- program state

    int emit(Instr in) {
        Tensor64 out;
        try {
            NoGradGuard no_grad;
            out = exec(in, vals_, leaves_);
        } catch (const std::exception& e) {
            Program failing = p_;
            in.shape = {};
            failing.code.push_back(in);
            failing.output = static_cast<int>(failing.code.size()) - 1;
            throw Rejected(compact(failing, failing.output),
                           std::string(op_name(in.op)) + " threw on arguments the generator considers valid: " +
                               e.what());
        }
        if (!precondition(in, vals_, out, o_).empty()) return -1;
        in.shape = out.shape_vector();
        p_.code.push_back(std::move(in));
        vals_.push_back(out);
        return static_cast<int>(p_.code.size()) - 1;
    }

    // Undo everything emitted after the program had `size` instructions.
    void truncate(std::size_t size) {
        while (p_.code.size() > size) {
            if (p_.code.back().op == Op::input) {
                input_elements_ -= p_.inputs.back().size();
                p_.inputs.pop_back();
                leaves_.pop_back();
            }
            p_.code.pop_back();
            vals_.pop_back();
        }
    }

    const Shape& shape(int id) const { return p_.code[static_cast<std::size_t>(id)].shape; }
    const Array<double>& value(int id) const { return vals_[static_cast<std::size_t>(id)].value(); }
    bool allowed(Op op) const { return !o_.smooth_only || info(op).smooth; }

    int new_input(const Shape& s, Dist d = Dist::normal) {
        const std::size_t n = numel(s);
        if (n == 0 || n > o_.max_elements || input_elements_ + n > o_.max_input_elements) return -1;
        Array<double> x = Array<double>::from_shape(s);
        for (auto& e : x) {
            switch (d) {
                case Dist::normal: e = rng_.normal(); break;
                case Dist::positive: e = rng_.real(0.4, 2.0); break;
                case Dist::probability: e = rng_.real(0.1, 0.9); break;
            }
        }
        Instr in;
        in.op = Op::input;
        in.input = static_cast<int>(p_.inputs.size());
        p_.inputs.push_back(x);
        leaves_.emplace_back(x);
        input_elements_ += n;
        const int id = emit(in);
        if (id < 0) {  // cannot happen for inputs, but keep the books straight
            input_elements_ -= n;
            p_.inputs.pop_back();
            leaves_.pop_back();
        }
        return id;
    }

    // An existing differentiable value satisfying `ok`: half the time the
    // most recent one (deep chains), else any (fan-out, reuse); -1 if none.
    int pick(const std::function<bool(const Shape&)>& ok = nullptr) {
        std::vector<int> any, results, unused;
        std::vector<bool> used(p_.code.size(), false);
        for (const auto& in : p_.code)
            for (int a : in.args) used[static_cast<std::size_t>(a)] = true;
        for (int id = 0; id < static_cast<int>(p_.code.size()); ++id) {
            if (is_constant_value(p_, id) || (ok && !ok(shape(id)))) continue;
            any.push_back(id);
            if (p_.code[static_cast<std::size_t>(id)].op == Op::input) continue;
            results.push_back(id);
            if (!used[static_cast<std::size_t>(id)]) unused.push_back(id);
        }
        if (any.empty()) return -1;
        const double r = rng_.real(0, 1);
        if (r < 0.45 && !results.empty()) return results.back();  // deep chains
        if (r < 0.75 && !unused.empty()) return rng_.choice(unused);
        return rng_.choice(any);  // fan-out and reused inputs
    }

    // An existing value satisfying `ok` with probability `reuse`, else a new
    // input of shape `make()`.
    int operand(const std::function<bool(const Shape&)>& ok, const std::function<Shape()>& make, double reuse = 0.5,
                Dist d = Dist::normal) {
        if (rng_.coin(reuse)) {
            int id = pick(ok);
            if (id >= 0) return id;
        }
        return new_input(make(), d);
    }

    // -------- shapes

    Shape random_shape(int min_rank = 0, int max_rank = 3) {
        static const int weights[] = {1, 3, 4, 3};  // rank 0..3
        int total = 0;
        for (int r = min_rank; r <= max_rank; ++r) total += weights[r];
        int pick = rng_.uniform(1, total), rank = min_rank;
        for (int r = min_rank; r <= max_rank; ++r) {
            pick -= weights[r];
            if (pick <= 0) {
                rank = r;
                break;
            }
        }
        Shape s;
        for (int i = 0; i < rank; ++i) s.push_back(static_cast<std::size_t>(rng_.uniform(1, rank == 3 ? 3 : 4)));
        return s;
    }

    // A shape that broadcasts against `s`.
    Shape partner(const Shape& s) {
        Shape t = s;
        switch (rng_.uniform(0, 4)) {
            case 0: break;  // same shape
            case 1:         // a suffix
                t.erase(t.begin(), t.begin() + rng_.uniform(0, static_cast<int>(t.size())));
                break;
            case 2:  // some dimensions 1
                for (auto& d : t)
                    if (rng_.coin(0.5)) d = 1;
                break;
            case 3:  // a suffix with some dimensions 1
                t.erase(t.begin(), t.begin() + rng_.uniform(0, static_cast<int>(t.size())));
                for (auto& d : t)
                    if (rng_.coin(0.4)) d = 1;
                break;
            case 4:  // one more leading dimension (s broadcasts up)
                if (t.size() < 3) t.insert(t.begin(), static_cast<std::size_t>(rng_.uniform(1, 3)));
                break;
        }
        return t;
    }

    static bool broadcastable(const Shape& a, const Shape& b, Shape* out = nullptr) {
        Shape r(std::max(a.size(), b.size()));
        for (std::size_t i = 0; i < r.size(); ++i) {
            std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
            if (da != db && da != 1 && db != 1) return false;
            r[r.size() - 1 - i] = std::max(da, db);
        }
        if (out) *out = r;
        return true;
    }

    bool fits_with(const Shape& a, const Shape& b) const {
        Shape r;
        return broadcastable(a, b, &r) && numel(r) <= o_.max_elements && r.size() <= 3;
    }

    // A second operand for an elementwise op with `a`.
    int partner_of(int a, Dist d = Dist::normal) {
        if (rng_.coin(0.12)) return a;  // the same value twice
        const Shape sa = shape(a);
        for (int tries = 0; tries < 4; ++tries) {
            int id = operand([&](const Shape& s) { return fits_with(sa, s); }, [&] { return partner(sa); }, 0.45, d);
            if (id >= 0 && fits_with(sa, shape(id))) return id;
        }
        return -1;
    }

    // -------- repairs: values moved into an op's domain or off its kinks

    // A positive version of value x (>= 0.25 everywhere), by a smooth map.
    int positive(int x) {
        if (min_value(value(x)) >= 0.3) return x;
        Instr in;
        switch (rng_.uniform(0, 2)) {
            case 0: {  // x*x + 0.5
                in.op = Op::mul;
                in.args = {x, x};
                int sq = emit(in);
                if (sq < 0) return -1;
                Instr add;
                add.op = Op::add_scalar;
                add.args = {sq};
                add.s0 = 0.5;
                return emit(add);
            }
            case 1: {  // sigmoid(x) + 0.3
                in.op = Op::sigmoid;
                in.args = {x};
                int s = emit(in);
                if (s < 0) return -1;
                Instr add;
                add.op = Op::add_scalar;
                add.args = {s};
                add.s0 = 0.3;
                return emit(add);
            }
            default: {  // exp(tanh(x))
                in.op = Op::tanh;
                in.args = {x};
                int t = emit(in);
                if (t < 0) return -1;
                Instr e;
                e.op = Op::exp;
                e.args = {t};
                return emit(e);
            }
        }
    }

    // Emits `in`; if its preconditions fail, tries again with its first
    // argument shifted by a constant (x + c) a few times.
    int emit_shifting(Instr in) {
        const std::size_t before = p_.code.size();
        int id = emit(in);
        if (id >= 0) return id;
        static const double shifts[] = {0.05, -0.05, 0.15, -0.15, 0.3, -0.3, 0.6, -0.6};
        for (int t = 0; t < 4; ++t) {
            Instr sh;
            sh.op = Op::add_scalar;
            sh.args = {in.args[0]};
            sh.s0 = shifts[rng_.uniform(0, 7)];
            int s = emit(sh);
            if (s < 0) continue;
            Instr moved = in;
            moved.args[0] = s;
            id = emit(moved);
            if (id >= 0) return id;
            truncate(before);
        }
        return -1;
    }

    // -------- one random op

    bool step() {
        static const Op candidates[] = {
            Op::add, Op::sub, Op::mul, Op::div, Op::neg, Op::add_scalar, Op::mul_scalar, Op::rsub, Op::rdiv,
            Op::pow_scalar, Op::pow_tensor, Op::maximum, Op::minimum, Op::maximum_scalar, Op::minimum_scalar,
            Op::where, Op::clamp, Op::exp, Op::log, Op::log1p, Op::sqrt, Op::abs, Op::tanh, Op::erf, Op::sin, Op::cos, Op::sign,
            Op::step, Op::eq, Op::sum, Op::mean, Op::max, Op::min, Op::logsumexp, Op::sum_to, Op::matmul,
            Op::transpose, Op::transpose_axes, Op::permute, Op::reshape, Op::broadcast_to, Op::clone, Op::detach, Op::slice,
            Op::concat, Op::stack, Op::index_select, Op::gather, Op::one_hot, Op::identity, Op::threshold,
            Op::sigmoid, Op::relu, Op::leaky_relu, Op::prelu, Op::elu, Op::softplus, Op::gelu, Op::gelu_tanh,
            Op::silu, Op::softmax, Op::log_softmax, Op::mse_loss, Op::bce, Op::bce_with_logits, Op::cross_entropy,
            Op::nll_loss, Op::linear, Op::layer_norm,
            Op::tril, Op::triu, Op::diagonal, Op::diag_embed, Op::solve, Op::inv, Op::det, Op::slogdet,
            Op::cholesky, Op::triangular_solve,
            Op::user_tensor, Op::user_raw,
            // matmul and broadcasting binaries twice as often
            Op::matmul, Op::add, Op::mul, Op::sub};
        const Op op = candidates[rng_.uniform(0, static_cast<int>(sizeof(candidates) / sizeof(candidates[0])) - 1)];
        if (!allowed(op)) return false;
        return build(op) >= 0;
    }

    int unary(Op op, int x, double s0 = 0, double s1 = 0) {
        Instr in;
        in.op = op;
        in.args = {x};
        in.s0 = s0;
        in.s1 = s1;
        return emit(in);
    }

    int build(Op op) {
        Instr in;
        in.op = op;
        switch (op) {
            case Op::add:
            case Op::sub:
            case Op::mul:
            case Op::user_tensor:
            case Op::user_raw:
            case Op::maximum:
            case Op::minimum: {
                int a = operand(nullptr, [&] { return random_shape(); }, 0.85);
                if (a < 0) return -1;
                int b = partner_of(a);
                if (b < 0) return -1;
                in.args = rng_.coin() ? std::vector<int>{a, b} : std::vector<int>{b, a};
                if (op == Op::maximum || op == Op::minimum) return emit_shifting(in);
                return emit(in);
            }
            case Op::div: {
                int a = operand(nullptr, [&] { return random_shape(); }, 0.85);
                if (a < 0) return -1;
                int b = partner_of(a);
                if (b < 0) return -1;
                if (min_abs(value(b)) < 0.3) {
                    b = positive(b);
                    if (b >= 0 && rng_.coin(0.3)) b = unary(Op::neg, b);
                }
                if (b < 0) return -1;
                in.args = {a, b};
                return emit(in);
            }
            case Op::pow_tensor: {
                int a = operand(nullptr, [&] { return random_shape(); }, 0.85, Dist::positive);
                if (a < 0 || (a = positive(a)) < 0) return -1;
                int b = partner_of(a);
                if (b < 0) return -1;
                in.args = {a, b};
                return emit(in);
            }
            case Op::neg:
            case Op::exp:
            case Op::tanh:
            case Op::erf:
            case Op::sin:
            case Op::cos:
            case Op::clone:
            case Op::identity:
            case Op::sigmoid:
            case Op::softplus:
            case Op::gelu:
            case Op::gelu_tanh: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                return x < 0 ? -1 : unary(op, x);
            }
            case Op::add_scalar:
            case Op::mul_scalar:
            case Op::rsub: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                return x < 0 ? -1 : unary(op, x, std::round(rng_.real(-2, 2) * 8) / 8);
            }
            case Op::rdiv: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                if (min_abs(value(x)) < 0.3 && (x = positive(x)) < 0) return -1;
                return unary(op, x, rng_.coin() ? 1.0 : -0.5);
            }
            case Op::pow_scalar: {
                static const double powers[] = {2, 3, 0.5, 1.5, -1, -0.5, 0, 1};
                const double p = powers[rng_.uniform(0, 7)];
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                if ((!is_integer(p) || p < 0) && (x = positive(x)) < 0) return -1;
                return unary(op, x, p);
            }
            case Op::log:
            case Op::sqrt: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9, Dist::positive);
                if (x < 0 || (x = positive(x)) < 0) return -1;
                return unary(op, x);
            }
            case Op::log1p: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9, Dist::positive);
                if (x < 0) return -1;
                if (min_value(value(x)) < -0.7 && (x = positive(x)) < 0) return -1;
                return unary(op, x);
            }
            case Op::abs:
            case Op::relu:
            case Op::elu:
            case Op::leaky_relu:
            case Op::threshold:
            case Op::maximum_scalar:
            case Op::minimum_scalar: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                in.args = {x};
                if (op == Op::elu) in.s0 = rng_.coin() ? 1.0 : 0.5;
                if (op == Op::leaky_relu) in.s0 = rng_.coin() ? 0.01 : 0.2;
                if (op == Op::threshold || op == Op::maximum_scalar || op == Op::minimum_scalar)
                    in.s0 = std::round(rng_.real(-1, 1) * 4) / 4;
                return emit_shifting(in);
            }
            case Op::clamp: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                in.args = {x};
                in.s0 = std::round(rng_.real(-1.5, 0.5) * 4) / 4;
                in.s1 = in.s0 + std::round(rng_.real(0.25, 2) * 4) / 4;
                return emit_shifting(in);
            }
            case Op::sign:
            case Op::step:
            case Op::eq:
            case Op::where:
                return masked(op);
            case Op::one_hot: {
                // mul(x, one_hot(labels, classes)): keeps one entry per row.
                int x = operand([](const Shape& s) { return s.size() == 2; }, [&] { return random_shape(2, 2); }, 0.8);
                if (x < 0) return -1;
                Instr oh;
                oh.op = Op::one_hot;
                oh.shape2 = {shape(x)[1]};
                for (std::size_t i = 0; i < shape(x)[0]; ++i) oh.ints.push_back(rng_.uniform(0, int(shape(x)[1]) - 1));
                int h = emit(oh);
                if (h < 0) return -1;
                in.op = Op::mul;
                in.args = rng_.coin() ? std::vector<int>{x, h} : std::vector<int>{h, x};
                return emit(in);
            }
            case Op::detach: {
                int y = operand(nullptr, [&] { return random_shape(); }, 0.9);
                return y < 0 ? -1 : unary(Op::detach, y);
            }
            case Op::sum:
            case Op::mean:
            case Op::max:
            case Op::min:
            case Op::logsumexp: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                const int rank = static_cast<int>(shape(x).size());
                in.args = {x};
                if (rank > 0 && rng_.coin(0.75)) {
                    std::vector<int> all(static_cast<std::size_t>(rank));
                    std::iota(all.begin(), all.end(), 0);
                    rng_.shuffle(all);
                    const int k = rng_.uniform(1, rank);
                    for (int i = 0; i < k; ++i)
                        in.ints.push_back(rng_.coin(0.3) ? all[static_cast<std::size_t>(i)] - rank : all[static_cast<std::size_t>(i)]);
                }
                in.f0 = rng_.coin();
                return emit(in);
            }
            case Op::sum_to: {
                int x = operand([](const Shape& s) { return !s.empty(); }, [&] { return random_shape(1); }, 0.9);
                if (x < 0) return -1;
                Shape t = shape(x);
                t.erase(t.begin(), t.begin() + rng_.uniform(0, static_cast<int>(t.size())));
                for (auto& d : t)
                    if (rng_.coin(0.5)) d = 1;
                in.args = {x};
                in.shape2 = t;
                return emit(in);
            }
            case Op::matmul: return matmul();
            case Op::tril:
            case Op::triu:
            case Op::diagonal: {
                int x = operand([](const Shape& s) { return s.size() >= 2; }, [&] { return random_shape(2); }, 0.9);
                if (x < 0) return -1;
                in.args = {x};
                if (op != Op::diagonal) in.ints = {rng_.uniform(-1, 1)};
                return emit(in);
            }
            case Op::diag_embed: {
                int x = operand([](const Shape& s) { return s.size() == 1 || s.size() == 2; },
                                [&] { return random_shape(1, 2); }, 0.9);
                return x < 0 ? -1 : unary(op, x);
            }
            case Op::inv:
            case Op::det:
            case Op::slogdet:
            case Op::cholesky: {
                int x = square_operand();
                return x < 0 ? -1 : unary(op, x);
            }
            case Op::solve:
            case Op::triangular_solve: {
                int a = square_operand();
                if (a < 0) return -1;
                Shape sb = shape(a);
                sb.back() = static_cast<std::size_t>(rng_.uniform(1, 3));  // right-hand sides
                int b = operand([&](const Shape& s) { return s == sb; }, [&] { return sb; }, 0.4);
                if (b < 0) return -1;
                in.args = {a, b};
                if (op == Op::triangular_solve) {
                    in.f0 = rng_.coin();  // upper
                    in.f1 = rng_.coin();  // transpose
                    in.ints = {rng_.coin(0.3) ? 1 : 0};  // unit diagonal
                }
                return emit(in);
            }
            case Op::transpose: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                return x < 0 ? -1 : unary(op, x);
            }
            case Op::transpose_axes:
            case Op::permute: {
                int x = operand([](const Shape& s) { return s.size() >= 2; }, [&] { return random_shape(2); }, 0.9);
                if (x < 0) return -1;
                const int rank = static_cast<int>(shape(x).size());
                in.args = {x};
                if (op == Op::transpose_axes) {
                    int a0 = rng_.uniform(0, rank - 1), a1 = rng_.uniform(0, rank - 2);
                    if (a1 >= a0) ++a1;
                    in.ints = {rng_.coin(0.3) ? a0 - rank : a0, rng_.coin(0.3) ? a1 - rank : a1};
                } else {
                    std::vector<int> perm(static_cast<std::size_t>(rank));
                    std::iota(perm.begin(), perm.end(), 0);
                    rng_.shuffle(perm);
                    in.ints.assign(perm.begin(), perm.end());
                }
                return emit(in);
            }
            case Op::reshape: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                std::size_t n = numel(shape(x));
                std::vector<std::int64_t> dims;
                const int rank = rng_.uniform(n == 1 ? 0 : 1, 3);
                for (int i = 0; i < rank - 1; ++i) {
                    std::vector<std::size_t> divisors;
                    for (std::size_t d = 1; d <= n; ++d)
                        if (n % d == 0) divisors.push_back(d);
                    std::size_t d = rng_.choice(divisors);
                    dims.push_back(static_cast<std::int64_t>(d));
                    n /= d;
                }
                if (rank > 0) dims.push_back(static_cast<std::int64_t>(n));
                if (rank > 0 && rng_.coin(0.3)) dims[static_cast<std::size_t>(rng_.uniform(0, rank - 1))] = -1;
                in.args = {x};
                in.ints = dims;
                return emit(in);
            }
            case Op::broadcast_to: {
                int x = operand(nullptr, [&] { return random_shape(0, 2); }, 0.9);
                if (x < 0) return -1;
                Shape t = shape(x);
                for (auto& d : t)
                    if (d == 1 && rng_.coin(0.7)) d = static_cast<std::size_t>(rng_.uniform(2, 3));
                if (t.size() < 3 && (t == shape(x) || rng_.coin(0.5))) t.insert(t.begin(), std::size_t(rng_.uniform(1, 3)));
                in.args = {x};
                in.shape2 = t;
                return emit(in);
            }
            case Op::slice: {
                int x = operand([](const Shape& s) { return !s.empty(); }, [&] { return random_shape(1); }, 0.9);
                if (x < 0) return -1;
                const int rank = static_cast<int>(shape(x).size());
                const int axis = rng_.uniform(0, rank - 1);
                const int n = static_cast<int>(shape(x)[static_cast<std::size_t>(axis)]);
                const int start = rng_.uniform(0, n - 1), stop = rng_.uniform(start + 1, n + 1);
                // Python-style bounds: negative ones count from the end, a
                // stop past the end is clipped.
                const int start_arg = rng_.coin(0.3) ? start - n : start;
                const int stop_arg = stop < n && rng_.coin(0.3) ? stop - n : stop;
                in.args = {x};
                in.ints = {rng_.coin(0.3) ? axis - rank : axis, start_arg, stop_arg, rng_.uniform(1, 2)};
                return emit(in);
            }
            case Op::concat:
            case Op::stack: return join(op);
            case Op::index_select:
            case Op::gather: {
                int x = operand([](const Shape& s) { return !s.empty(); }, [&] { return random_shape(1); }, 0.9);
                if (x < 0) return -1;
                const int rank = static_cast<int>(shape(x).size());
                const int axis = rng_.uniform(0, rank - 1);
                const int n = static_cast<int>(shape(x)[static_cast<std::size_t>(axis)]);
                in.args = {x};
                in.ints = {rng_.coin(0.3) ? axis - rank : axis};
                std::size_t count = 0;
                if (op == Op::index_select) {
                    count = static_cast<std::size_t>(rng_.uniform(1, 4));
                } else {
                    in.shape2 = shape(x);
                    in.shape2[static_cast<std::size_t>(axis)] = static_cast<std::size_t>(rng_.uniform(1, 3));
                    count = numel(in.shape2);
                }
                for (std::size_t i = 0; i < count; ++i) in.ints.push_back(rng_.uniform(0, n - 1));
                return emit(in);
            }
            case Op::prelu: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                Shape ss;
                if (!shape(x).empty() && rng_.coin()) ss = {shape(x).back()};
                else if (rng_.coin()) ss = {1};
                int slope = new_input(ss);
                if (slope < 0) return -1;
                in.args = {x, slope};
                return emit_shifting(in);
            }
            case Op::silu: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                static const double betas[] = {1, 0.5, 2};
                return x < 0 ? -1 : unary(op, x, betas[rng_.uniform(0, 2)]);
            }
            case Op::softmax:
            case Op::log_softmax: {
                int x = operand([](const Shape& s) { return !s.empty(); }, [&] { return random_shape(1); }, 0.9);
                if (x < 0) return -1;
                const int rank = static_cast<int>(shape(x).size());
                in.args = {x};
                in.ints = {rng_.coin(0.5) ? -1 : rng_.uniform(0, rank - 1)};
                return emit(in);
            }
            case Op::mse_loss:
            case Op::bce:
            case Op::bce_with_logits: {
                int x = operand(nullptr, [&] { return random_shape(); }, 0.9);
                if (x < 0) return -1;
                if (op == Op::bce && (x = unary(Op::sigmoid, x)) < 0) return -1;
                const Shape sx = shape(x);
                int t = op == Op::mse_loss ? operand([&](const Shape& s) { return s == sx; }, [&] { return sx; }, 0.4)
                                           : new_input(sx, Dist::probability);
                if (t < 0) return -1;
                in.args = {x, t};
                in.reduction = rng_.uniform(0, 2);
                return emit(in);
            }
            case Op::cross_entropy:
            case Op::nll_loss: {
                int x = operand([](const Shape& s) { return s.size() == 2; }, [&] { return random_shape(2, 2); }, 0.8);
                if (x < 0) return -1;
                if (op == Op::nll_loss && rng_.coin()) {
                    Instr ls;
                    ls.op = Op::log_softmax;
                    ls.args = {x};
                    ls.ints = {1};
                    if ((x = emit(ls)) < 0) return -1;
                }
                in.args = {x};
                for (std::size_t i = 0; i < shape(x)[0]; ++i) in.ints.push_back(rng_.uniform(0, int(shape(x)[1]) - 1));
                in.reduction = rng_.uniform(0, 2);
                return emit(in);
            }
            case Op::linear: {
                int x = operand([](const Shape& s) { return s.size() == 1 || s.size() == 2; },
                                [&] { return random_shape(1, 2); }, 0.8);
                if (x < 0) return -1;
                const std::size_t fin = shape(x).back(), fout = static_cast<std::size_t>(rng_.uniform(1, 4));
                int w = operand([&](const Shape& s) { return s == Shape{fin, fout}; }, [&] { return Shape{fin, fout}; }, 0.3);
                if (w < 0) return -1;
                in.args = {x, w};
                in.f0 = rng_.coin(0.7);
                if (in.f0) {
                    int b = new_input({fout});
                    if (b < 0) return -1;
                    in.args.push_back(b);
                }
                return emit(in);
            }
            case Op::layer_norm: {
                int x = operand([](const Shape& s) { return !s.empty(); }, [&] { return random_shape(1); }, 0.9);
                if (x < 0) return -1;
                in.args = {x};
                in.f0 = rng_.coin(0.7);
                if (in.f0) {
                    const Shape s{shape(x).back()};
                    int w = new_input(s), b = w < 0 ? -1 : new_input(s);
                    if (b < 0) return -1;
                    in.args.push_back(w);
                    in.args.push_back(b);
                }
                return emit(in);
            }
            default: return -1;
        }
    }

    // Comparisons, sign/step and where: constant masks that select or scale.
    int masked(Op op) {
        int a = operand(nullptr, [&] { return random_shape(); }, 0.85);
        if (a < 0) return -1;
        int mask = -1;
        if (op == Op::sign || op == Op::step) {
            int u = partner_of(a);
            if (u < 0) return -1;
            Instr m;
            m.op = op;
            m.args = {u};
            mask = emit_shifting(m);
        } else {
            // A comparison of u against w.
            int u = partner_of(a);
            if (u < 0) return -1;
            static const Op cmps[] = {Op::eq, Op::ne, Op::lt, Op::le, Op::gt, Op::ge};
            Instr m;
            m.op = cmps[rng_.uniform(0, 5)];
            int w = m.op == Op::eq && rng_.coin(0.5) ? u : partner_of(u);
            if (w < 0 || !fits_with(shape(u), shape(w))) return -1;
            m.args = {u, w};
            mask = emit(m);
        }
        if (mask < 0 || !fits_with(shape(a), shape(mask))) return -1;
        if (op == Op::where || (op != Op::eq && rng_.coin(0.5))) {
            int b = partner_of(a);
            if (b < 0) return -1;
            Shape ab;
            if (!broadcastable(shape(a), shape(b), &ab) || !fits_with(ab, shape(mask))) return -1;
            Instr w;
            w.op = Op::where;
            w.args = {mask, a, b};
            return emit(w);
        }
        Instr mul;
        mul.op = Op::mul;
        mul.args = {a, mask};
        return emit(mul);
    }

    // A matrix or a batch of matrices, square (made well conditioned by the op).
    int square_operand() {
        return operand(
            [](const Shape& s) { return (s.size() == 2 || s.size() == 3) && s[s.size() - 1] == s[s.size() - 2]; },
            [&] {
                const auto n = static_cast<std::size_t>(rng_.uniform(1, 3));
                return rng_.coin() ? Shape{n, n} : Shape{static_cast<std::size_t>(rng_.uniform(1, 3)), n, n};
            },
            0.6);
    }

    int matmul() {
        // Variants: 2-D x 2-D, 3-D x 3-D, 3-D x 2-D, 2-D x 3-D, and a batch
        // of 1 broadcast against a batch; each operand possibly transposed.
        const int variant = rng_.uniform(0, 5);
        const bool ta = rng_.coin(0.25), tb = rng_.coin(0.25);
        const std::size_t ra = (variant == 0 || variant == 3) ? 2 : 3, rb = (variant == 0 || variant == 2) ? 2 : 3;
        int a = operand([&](const Shape& s) { return s.size() == ra; },
                        [&] { return random_shape(static_cast<int>(ra), static_cast<int>(ra)); }, 0.8);
        if (a < 0) return -1;
        Shape sa = shape(a);
        const std::size_t k = ta ? sa[ra - 2] : sa[ra - 1];
        std::size_t batch = ra == 3 ? sa[0] : static_cast<std::size_t>(rng_.uniform(1, 3));
        if (variant == 4) batch = ra == 3 ? 1 : batch;  // b's batch of 1 against a's batch
        if (variant == 5 && ra == 3) batch = sa[0] == 1 ? static_cast<std::size_t>(rng_.uniform(1, 3)) : sa[0];
        const std::size_t n = static_cast<std::size_t>(rng_.uniform(1, 4));
        Shape sb = tb ? Shape{n, k} : Shape{k, n};
        if (rb == 3) sb.insert(sb.begin(), batch);
        int b = operand([&](const Shape& s) { return s == sb; }, [&] { return sb; }, 0.4);
        if (b < 0) return -1;
        Instr in;
        in.op = Op::matmul;
        in.args = {a, b};
        in.f0 = ta;
        in.f1 = tb;
        return emit(in);
    }

    int join(Op op) {
        const bool stack = op == Op::stack;
        int x = operand([&](const Shape& s) { return stack ? s.size() <= 2 : !s.empty(); },
                        [&] { return random_shape(stack ? 0 : 1, 2); }, 0.85);
        if (x < 0) return -1;
        const Shape sx = shape(x);
        const int rank = static_cast<int>(sx.size());
        const int axis = stack ? rng_.uniform(0, rank) : rng_.uniform(0, rank - 1);
        const int parts = rng_.uniform(2, 3);
        Instr in;
        in.op = op;
        in.args = {x};
        for (int i = 1; i < parts; ++i) {
            if (rng_.coin(0.25)) {  // the same tensor again
                in.args.push_back(x);
                continue;
            }
            Shape s = sx;
            if (!stack) s[static_cast<std::size_t>(axis)] = static_cast<std::size_t>(rng_.uniform(1, 3));
            auto same_except_axis = [&](const Shape& t) {
                if (t.size() != sx.size()) return false;
                for (std::size_t d = 0; d < t.size(); ++d)
                    if (t[d] != sx[d] && (stack || d != static_cast<std::size_t>(axis))) return false;
                return true;
            };
            int y = operand(same_except_axis, [&] { return s; }, 0.4);
            if (y < 0) return -1;
            in.args.push_back(y);
        }
        rng_.shuffle(in.args);
        const int out_rank = stack ? rank + 1 : rank;
        in.ints = {rng_.coin(0.3) ? axis - out_rank : axis};
        return emit(in);
    }

    // The output: the one unused result, or the mean of each unused result
    // added up (so every branch of the DAG is differentiated).
    void finish() {
        std::vector<bool> used(p_.code.size(), false);
        for (const auto& in : p_.code)
            for (int a : in.args) used[static_cast<std::size_t>(a)] = true;
        std::vector<int> sinks;
        for (int id = 0; id < static_cast<int>(p_.code.size()); ++id)
            if (!used[static_cast<std::size_t>(id)] && p_.code[static_cast<std::size_t>(id)].op != Op::input &&
                !is_constant_value(p_, id))
                sinks.push_back(id);
        if (sinks.empty()) {
            int t = unary(Op::tanh, 0);
            sinks.push_back(t >= 0 ? t : 0);
        }
        if (sinks.size() == 1) {
            p_.output = sinks[0];
            return;
        }
        int total = -1;
        for (int s : sinks) {
            Instr m;
            m.op = Op::mean;
            m.args = {s};
            m.relaxed = true;
            int id = emit(m);
            if (total < 0) {
                total = id;
            } else {
                Instr add;
                add.op = Op::add;
                add.args = {total, id};
                add.relaxed = true;
                total = emit(add);
            }
        }
        p_.output = total;
    }

    Rng rng_;
    const GenerateOptions& o_;
    Program p_;
    std::vector<Tensor64> vals_;    // value of each instruction (no graph)
    std::vector<Tensor64> leaves_;  // the inputs as tensors
    std::size_t input_elements_ = 0;
};

// ------------------------------------------------------------ printing

std::string num(double x) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", x);
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

template <class V>
std::string list(const V& v) {
    std::string s = "{";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "}";
}

std::string shape_text(const Shape& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

void nested(std::ostringstream& os, const Array<double>& x, std::size_t dim, std::size_t& flat) {
    os << '{';
    const std::size_t n = x.shape()[dim];
    for (std::size_t i = 0; i < n; ++i) {
        if (i) os << ", ";
        if (dim + 1 == x.dimension()) os << num(x.data()[flat++]);
        else nested(os, x, dim + 1, flat);
    }
    os << '}';
}

std::string tensor_literal(const Array<double>& x) {
    if (x.dimension() == 0) return "Tensor64::scalar(" + num(x()) + ")";
    std::ostringstream os;
    std::size_t flat = 0;
    if (x.dimension() >= 2 && x.shape().back() == 1) {
        // Nested lists with one-element rows, {{1.5}} or {{1}, {2}}, are
        // ambiguous to the compiler: spell out the elements and the shape.
        Shape shape(x.shape().begin(), x.shape().end());
        os << "Tensor64::from_data(std::vector<double>";
        Array<double> flat_x = x;
        flat_x.reshape({x.size()});
        nested(os, flat_x, 0, flat);
        os << ".data(), Shape" << list(shape) << ")";
        return os.str();
    }
    os << "Tensor64(xt::xarray<double>";
    nested(os, x, 0, flat);
    os << ")";
    return os.str();
}

// general(x) as C++ source.
std::string general_expr(const std::string& x) {
    return "eye<double>(" + x + ".shape().back()) + tanh(" + x + ") * (0.5 / double(" + x + ".shape().back()))";
}

std::string expr(const Instr& in) {
    auto t = [&](std::size_t i) { return "t" + std::to_string(in.args[i]); };
    auto all = [&] {
        std::string s = "{";
        for (std::size_t i = 0; i < in.args.size(); ++i) s += (i ? ", " : "") + t(i);
        return s + "}";
    };
    const std::vector<std::int64_t> rest(in.ints.begin() + (in.ints.empty() ? 0 : 1), in.ints.end());
    const std::string keep = in.f0 ? "true" : "false";
    switch (in.op) {
        case Op::input: return "in[" + std::to_string(in.input) + "]";
        case Op::one_hot: return "one_hot<double>(" + list(in.ints) + ", " + std::to_string(in.shape2[0]) + ")";
        case Op::add: return t(0) + " + " + t(1);
        case Op::sub: return t(0) + " - " + t(1);
        case Op::mul: return t(0) + " * " + t(1);
        case Op::div: return t(0) + " / " + t(1);
        case Op::neg: return "-" + t(0);
        case Op::add_scalar: return t(0) + " + " + num(in.s0);
        case Op::mul_scalar: return t(0) + " * " + num(in.s0);
        case Op::rsub: return num(in.s0) + " - " + t(0);
        case Op::rdiv: return num(in.s0) + " / " + t(0);
        case Op::pow_scalar: return "pow(" + t(0) + ", " + num(in.s0) + ")";
        case Op::pow_tensor: return "pow(" + t(0) + ", " + t(1) + ")";
        case Op::maximum: return "maximum(" + t(0) + ", " + t(1) + ")";
        case Op::minimum: return "minimum(" + t(0) + ", " + t(1) + ")";
        case Op::maximum_scalar: return "maximum(" + t(0) + ", " + num(in.s0) + ")";
        case Op::minimum_scalar: return "minimum(" + t(0) + ", " + num(in.s0) + ")";
        case Op::where: return "where(" + t(0) + ", " + t(1) + ", " + t(2) + ")";
        case Op::clamp: return "clamp(" + t(0) + ", " + num(in.s0) + ", " + num(in.s1) + ")";
        case Op::sum:
        case Op::mean:
        case Op::max:
        case Op::min:
        case Op::logsumexp: {
            const std::string f = in.op == Op::max ? "tapegrad::max" : in.op == Op::min ? "tapegrad::min" : op_name(in.op);
            if (in.ints.empty() && !in.f0) return f + "(" + t(0) + ")";
            return f + "(" + t(0) + ", " + list(in.ints) + ", " + keep + ")";
        }
        case Op::sum_to: return "sum_to(" + t(0) + ", " + list(in.shape2) + ")";
        case Op::matmul:
            if (in.f0 || in.f1)
                return "matmul(" + t(0) + ", " + t(1) + ", " + (in.f0 ? "true" : "false") + ", " +
                       (in.f1 ? "true" : "false") + ")";
            return "matmul(" + t(0) + ", " + t(1) + ")";
        case Op::transpose: return "transpose(" + t(0) + ")";
        case Op::transpose_axes:
            return "transpose(" + t(0) + ", " + std::to_string(in.ints[0]) + ", " + std::to_string(in.ints[1]) + ")";
        case Op::permute: return "permute(" + t(0) + ", " + list(in.ints) + ")";
        case Op::reshape: return "reshape(" + t(0) + ", " + list(in.ints) + ")";
        case Op::broadcast_to: return "broadcast_to(" + t(0) + ", " + list(in.shape2) + ")";
        case Op::clone: return "clone(" + t(0) + ")";
        case Op::detach: return t(0) + ".detach() + (" + t(0) + " - " + t(0) + ".detach())";
        case Op::slice:
            return "slice(" + t(0) + ", " + std::to_string(in.ints[0]) + ", " + std::to_string(in.ints[1]) + ", " +
                   std::to_string(in.ints[2]) + ", " + std::to_string(in.ints[3]) + ")";
        case Op::concat: return "concat<double>(" + all() + ", " + std::to_string(in.ints[0]) + ")";
        case Op::stack: return "stack<double>(" + all() + ", " + std::to_string(in.ints[0]) + ")";
        case Op::index_select: return "index_select(" + t(0) + ", " + std::to_string(in.ints[0]) + ", " + list(rest) + ")";
        case Op::gather:
            return "gather(" + t(0) + ", " + std::to_string(in.ints[0]) + ", " + list(rest) + ", " + list(in.shape2) + ")";
        case Op::threshold: return "nn::threshold(" + t(0) + ", " + num(in.s0) + ")";
        case Op::leaky_relu:
        case Op::elu:
        case Op::silu: return std::string(op_name(in.op)) + "(" + t(0) + ", " + num(in.s0) + ")";
        case Op::prelu: return "nn::prelu(" + t(0) + ", " + t(1) + ")";
        case Op::gelu_tanh: return "nn::gelu(" + t(0) + ", nn::GeluApproximation::tanh)";
        case Op::tril:
        case Op::triu: return std::string(op_name(in.op)) + "(" + t(0) + ", " + std::to_string(in.ints[0]) + ")";
        case Op::solve: return "solve(" + general_expr(t(0)) + ", " + t(1) + ")";
        case Op::inv:
        case Op::det: return std::string(op_name(in.op)) + "(" + general_expr(t(0)) + ")";
        case Op::slogdet: return "slogdet(" + general_expr(t(0)) + ").logabsdet";
        case Op::cholesky: {
            const std::string n = "double(" + t(0) + ".shape().back())";
            return "cholesky(eye<double>(" + t(0) + ".shape().back()) + matmul(tanh(" + t(0) + "), tanh(" + t(0) +
                   "), false, true) * (1.0 / " + n + "))";
        }
        case Op::triangular_solve:
            return "triangular_solve(" + general_expr(t(0)) + ", " + t(1) + ", " + (in.f0 ? "true" : "false") + ", " +
                   (in.f1 ? "true" : "false") + ", " + (in.ints[0] ? "true" : "false") + ")";
        case Op::softmax:
        case Op::log_softmax: return std::string(op_name(in.op)) + "(" + t(0) + ", " + std::to_string(in.ints[0]) + ")";
        case Op::mse_loss:
        case Op::bce:
        case Op::bce_with_logits:
            return std::string(op_name(in.op)) + "(" + t(0) + ", " + t(1) + ", " + reduction_name(in.reduction) + ")";
        case Op::cross_entropy:
        case Op::nll_loss:
            return std::string(op_name(in.op)) + "(" + t(0) + ", " + list(in.ints) + ", " +
                   reduction_name(in.reduction) + ")";
        case Op::linear:
            return "[&] { Generator g; nn::Linear<double> m(" + t(1) + ".shape()[0], " + t(1) + ".shape()[1], " +
                   (in.f0 ? "true" : "false") + ", g); m.parameter(\"weight\") = " + t(1) + ";" +
                   (in.f0 ? " m.parameter(\"bias\") = " + t(2) + ";" : std::string()) + " return m(" + t(0) + "); }()";
        case Op::layer_norm:
            return "[&] { nn::LayerNorm<double> m(" + t(0) + ".shape().back(), 1e-5, " + (in.f0 ? "true" : "false") +
                   ");" +
                   (in.f0 ? " m.parameter(\"weight\") = " + t(1) + "; m.parameter(\"bias\") = " + t(2) + ";"
                          : std::string()) +
                   " return m(" + t(0) + "); }()";
        case Op::eq:
        case Op::ne:
        case Op::lt:
        case Op::le:
        case Op::gt:
        case Op::ge:
        case Op::user_tensor:
        case Op::user_raw: return std::string(op_name(in.op)) + "(" + t(0) + ", " + t(1) + ")";
        default: return std::string(op_name(in.op)) + "(" + t(0) + ")";
    }
}

}  // namespace

const char* op_name(Op op) { return info(op).name; }

template <class T>
BasicTensor<T> user_mul_tanh(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    tapegrad::Op<T> op("fuzz::user_mul_tanh", {a, b});
    auto y = op.forward([](const Array<T>& u, const Array<T>& v) { return Array<T>(u * xt::tanh(v)); });
    return op.record(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& ctx, const BasicTensor<T>& g) {
        auto t = ctx.unpack(sb).tanh();
        Grads<T> grads(2);
        if (ctx.needs(0)) grads[0] = g * t;
        if (ctx.needs(1)) grads[1] = g * ctx.unpack(sa) * (T(1) - t * t);
        return grads;
    });
}

template <class T>
BasicTensor<T> user_raw_mul_sin(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    tapegrad::Op<T> op("fuzz::user_raw_mul_sin", {a, b});
    auto y = op.forward([](const Array<T>& u, const Array<T>& v) { return Array<T>(u * xt::sin(v)); });
    return op.record_raw(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& ctx, const Array<T>& g) {
        RawGrads<T> grads(2);
        if (ctx.needs(0)) grads[0] = g * xt::sin(ctx.value(sb));
        if (ctx.needs(1)) grads[1] = g * ctx.value(sa) * xt::cos(ctx.value(sb));
        return grads;
    });
}

std::size_t Program::num_ops() const {
    return static_cast<std::size_t>(std::count_if(code.begin(), code.end(), [](const Instr& i) { return i.op != Op::input; }));
}

Program generate(std::uint64_t seed, const GenerateOptions& options) {
    return Generator_(seed, options).build();
}

std::vector<Tensor64> input_tensors(const Program& p) {
    std::vector<Tensor64> t;
    for (const auto& x : p.inputs) t.emplace_back(x);
    return t;
}

template <class T>
BasicTensor<T> run(const Program& p, const std::vector<BasicTensor<T>>& inputs) {
    std::vector<BasicTensor<T>> v;
    v.reserve(p.code.size());
    for (std::size_t k = 0; k <= static_cast<std::size_t>(p.output); ++k) v.push_back(exec(p.code[k], v, inputs));
    return v[static_cast<std::size_t>(p.output)];
}

std::string admissible(const Program& p, const GenerateOptions& options) {
    NoGradGuard no_grad;
    const auto inputs = input_tensors(p);
    std::vector<Tensor64> v;
    for (std::size_t k = 0; k < p.code.size(); ++k) {
        Tensor64 out;
        try {
            out = exec(p.code[k], v, inputs);
        } catch (const std::exception& e) {
            return "t" + std::to_string(k) + " threw: " + e.what();
        }
        std::string why = precondition(p.code[k], v, out, options);
        if (!why.empty()) return "t" + std::to_string(k) + " (" + op_name(p.code[k].op) + "): " + why;
        v.push_back(out);
    }
    return "";
}

CheckResult check(const Program& p, const CheckOptions& options) {
    CheckResult r;
    const auto inputs = input_tensors(p);
    auto f = [&p](const std::vector<Tensor64>& x) { return run(p, x); };
    try {
        r.what = "gradient";
        auto report = gradcheck(f, inputs, options.gradcheck);
        auto tally = [&r](const GradcheckReport& g) {
            r.worst_ratio = std::max(r.worst_ratio, g.worst_ratio);
            r.refined += g.refined;
        };
        tally(report);
        if (!report.passed) {
            r.passed = false;
            r.message = report.message();
            return r;
        }
        if (p.smooth && options.second_order) {
            r.what = "second derivative";
            report = gradgradcheck(f, inputs, options.gradcheck);
            tally(report);
            if (!report.passed) {
                r.passed = false;
                r.message = report.message();
                return r;
            }
        }
    } catch (const std::exception& e) {
        r.passed = false;
        r.message = r.what + " check threw: " + e.what();
        r.what = "exception";
    }
    return r;
}

Program shrink(const Program& p, const CheckOptions& options, const GenerateOptions& gen) {
    const CheckResult original = check(p, options);
    if (original.passed) return p;
    auto still_fails = [&](const Program& q) {
        if (!admissible(q, gen).empty()) return false;
        CheckResult r = check(q, options);
        return !r.passed && r.what == original.what;
    };
    Program best = p;
    for (bool changed = true; changed;) {
        changed = false;
        // 1. An earlier value as the output (smallest first).
        std::vector<Program> candidates;
        for (int k = 0; k < static_cast<int>(best.code.size()); ++k)
            if (k != best.output && best.code[static_cast<std::size_t>(k)].op != Op::input && !is_constant_value(best, k))
                candidates.push_back(compact(best, k));
        std::stable_sort(candidates.begin(), candidates.end(),
                         [](const Program& a, const Program& b) { return a.num_ops() < b.num_ops(); });
        for (const auto& q : candidates) {
            if (q.num_ops() < best.num_ops() && still_fails(q)) {
                best = q;
                changed = true;
                break;
            }
        }
        if (changed) continue;
        // 2. Bypass an op: use one of its arguments of the same shape instead.
        for (std::size_t k = 0; k < best.code.size() && !changed; ++k) {
            const Instr& in = best.code[k];
            if (in.op == Op::input) continue;
            for (int a : in.args) {
                if (best.code[static_cast<std::size_t>(a)].shape != in.shape || is_constant_value(best, a)) continue;
                Program q = best;
                for (std::size_t j = k + 1; j < q.code.size(); ++j)
                    for (int& u : q.code[j].args)
                        if (u == static_cast<int>(k)) u = a;
                int out = q.output == static_cast<int>(k) ? a : q.output;
                if (q.code[static_cast<std::size_t>(out)].op == Op::input) continue;  // keep at least one op
                q = compact(q, out);
                if (q.num_ops() < best.num_ops() && still_fails(q)) {
                    best = q;
                    changed = true;
                    break;
                }
            }
        }
    }
    return best;
}

std::string to_cpp(const Program& p, const std::string& title) {
    std::ostringstream os;
    os << "TEST_CASE(\"" << title << "\") {\n";
    os << "    // " << p.num_ops() << " ops on " << p.inputs.size() << " inputs; tests/fuzz/graph_fuzz seed " << p.seed
       << (p.smooth ? " (smooth ops: second derivatives checked too)" : "") << "\n";
    os << "    auto f = [](const std::vector<Tensor64>& in) {\n";
    std::size_t width = 0;
    std::vector<std::string> lines;
    for (std::size_t k = 0; k < p.code.size(); ++k) {
        lines.push_back("        auto t" + std::to_string(k) + " = " + expr(p.code[k]) + ";");
        width = std::max(width, lines.back().size());
    }
    for (std::size_t k = 0; k < p.code.size(); ++k) {
        std::string comment = "// " + shape_text(p.code[k].shape);
        if (p.code[k].op != Op::input) {
            comment += " <- " + std::string(op_name(p.code[k].op)) + " of";
            for (int a : p.code[k].args) comment += " " + shape_text(p.code[static_cast<std::size_t>(a)].shape);
        }
        os << lines[k] << std::string(width - lines[k].size() + 2, ' ') << comment << "\n";
    }
    os << "        return t" << p.output << ";\n    };\n";
    os << "    std::vector<Tensor64> inputs{\n";
    for (const auto& x : p.inputs) os << "        " << tensor_literal(x) << ",\n";
    os << "    };\n";
    os << "    auto report = gradcheck(f, inputs, GradcheckOptions::strict());\n";
    os << "    CHECK_MESSAGE(report.passed, report.message());\n";
    if (p.smooth) {
        os << "    auto second = gradgradcheck(f, inputs, GradcheckOptions::strict());\n";
        os << "    CHECK_MESSAGE(second.passed, second.message());\n";
    }
    os << "}\n";
    return os.str();
}

FuzzOutcome fuzz_one(std::uint64_t seed, const GenerateOptions& gen, const CheckOptions& check_options,
                     std::map<Op, std::size_t>* coverage) {
    FuzzOutcome out;
    Program p;
    try {
        p = generate(seed, gen);
    } catch (const Rejected& e) {
        out.passed = false;
        out.report = "graph fuzz seed " + std::to_string(seed) + ": " + e.what() + "\nreproducer:\n" +
                     to_cpp(e.program, "fuzz repro: seed " + std::to_string(seed) + " (op threw)");
        return out;
    }
    out.ops = p.num_ops();
    out.second_order = p.smooth && check_options.second_order;
    if (coverage)
        for (const auto& in : p.code) ++(*coverage)[in.op];
    CheckResult r = check(p, check_options);
    out.worst_ratio = r.worst_ratio;
    out.refined = r.refined;
    if (r.passed) return out;
    out.passed = false;
    Program small = shrink(p, check_options, gen);
    CheckResult rs = check(small, check_options);
    std::ostringstream os;
    os << "graph fuzz seed " << seed << ": " << r.what << " check FAILED\n  " << r.message << "\n";
    os << "minimised from " << p.num_ops() << " to " << small.num_ops() << " ops (" << rs.message << ")\n";
    os << "reproducer (paste into a test file with `using namespace tapegrad;`):\n";
    os << to_cpp(small, "fuzz repro: seed " + std::to_string(seed));
    out.report = os.str();
    return out;
}

// The dtypes programs run in (graph_fuzz.hpp).
template Tensor run(const Program&, const std::vector<Tensor>&);
template Tensor64 run(const Program&, const std::vector<Tensor64>&);
template Tensor user_mul_tanh(const Tensor&, const Tensor&);
template Tensor64 user_mul_tanh(const Tensor64&, const Tensor64&);
template Tensor user_raw_mul_sin(const Tensor&, const Tensor&);
template Tensor64 user_raw_mul_sin(const Tensor64&, const Tensor64&);

}  // namespace tapegrad::fuzz
