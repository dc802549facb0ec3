// The API fuzzer's decoder and checks (see api_fuzz.hpp).
//
// An input is a program: its first byte picks float32 or float64, then each
// call takes one byte for its kind and as many bytes as its arguments need
// (a missing byte reads as 0, so every byte string is a program). Values
// come from tables that hold the interesting cases: zero and huge dimensions
// (2^40, 2^62, SIZE_MAX), negative and huge axes and indices, NaN, ±inf,
// denormals and the extremes of the type. Tensors live in a small pool that
// the calls read and extend; modules and one optimiser live beside it.
//
// Sizes: tensors stay small (at most kMaxKept elements in the pool) unless a
// shape is deliberately huge, and then the library must refuse it (an
// element count that overflows is a ValueError) or run out of the fuzzer's
// memory budget (std::bad_alloc from the allocator: a legitimately huge
// tensor), never wrap around.
#include "api_fuzz.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <sstream>

#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_FUZZ_ASAN 1
#endif
#endif

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tapegrad::fuzz {

namespace {

// --- the call kinds ---------------------------------------------------------

enum Kind : std::size_t {
    k_create, k_unary, k_binary, k_scalar_op, k_reduce, k_softmax, k_reshape, k_broadcast_to, k_sum_to,
    k_transpose, k_permute, k_slice, k_join, k_index_select, k_gather, k_matmul, k_loss, k_metric,
    k_module_new, k_module_forward, k_init, k_optimizer_new, k_optimizer_step, k_clip_grad, k_schedule,
    k_backward, k_grad_fn, k_grad_access, k_set_grad, k_modify, k_item, k_convert, k_checkpoint,
    k_count
};

const std::vector<std::string> kKindNames = {
    "create", "unary", "binary", "scalar_op", "reduce", "softmax", "reshape", "broadcast_to", "sum_to",
    "transpose", "permute", "slice", "concat/stack", "index_select", "gather", "matmul", "loss", "metric",
    "module_new", "module_forward", "init", "optimizer_new", "optimizer_step", "clip_grad", "schedule",
    "backward", "grad()", "grad_access", "set_grad", "modify", "item/str", "to<U>", "checkpoint"};

std::vector<std::size_t>& counts() {
    static std::vector<std::size_t> c(k_count, 0);
    return c;
}
std::vector<double>& seconds() {
    static std::vector<double> s(k_count, 0);
    return s;
}

// --- value tables -----------------------------------------------------------

// Small tensors keep an input fast (about a millisecond under ASan): the
// pool keeps none above kMaxKept elements, and arange makes none above
// kMaxArange. Shapes stay arbitrary: dimensions are 0-4 or huge (2^31 and
// up), so a huge shape is refused or out of the memory budget at once.
constexpr std::size_t kMaxKept = 4096;
constexpr long double kMaxArange = 256;

constexpr std::size_t kHugeDims[] = {std::size_t(1) << 31, (std::size_t(1) << 32) + 1, std::size_t(1) << 40,
                                     std::size_t(1) << 59, std::size_t(1) << 62, SIZE_MAX};
constexpr std::int64_t kInts[] = {-3, -2, -1, 0, 1, 2, 3, 4, 5, 0, 1, 2, INT64_MIN, INT64_MAX,
                                  std::int64_t(1) << 40, -(std::int64_t(1) << 40), std::int64_t(1) << 62, 7};

template <class T>
T scalar_from(std::uint8_t b) {
    using L = std::numeric_limits<T>;
    const T table[] = {T(0), -T(0), T(1), -T(1), T(0.5), T(2), T(3), T(-2.5), T(0.25), T(0.75), T(1e-3), T(100),
                       T(1e30), T(-1e30), L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(),
                       -L::denorm_min(), L::min(), L::max(), L::lowest(), L::epsilon(), T(1) - L::epsilon(),
                       T(1) + L::epsilon(), T(0.1), T(-0.1), T(0.9), T(1e-8), T(5), T(-7), T(0.999)};
    return table[b % std::size(table)];
}

const char* const kActivations[] = {"relu",  "tanh",     "gelu",  "sigmoid", "silu", "elu",   "leaky_relu",
                                    "softplus", "identity", "prelu", "rrelu",  "swish", "bogus", ""};

struct Reader {
    const std::uint8_t* p;
    std::size_t n, i = 0;
    bool done() const { return i >= n; }
    std::uint8_t u8() { return i < n ? p[i++] : 0; }
    bool bit() { return u8() & 1; }
    std::size_t below(std::size_t k) { return k ? u8() % k : 0; }
    // Mostly 0-4; one in five from the huge table.
    std::size_t dim() {
        const std::uint8_t b = u8();
        return b < 205 ? b % 5 : kHugeDims[b % std::size(kHugeDims)];
    }
    std::int64_t integer() { return kInts[u8() % std::size(kInts)]; }
    Shape shape(std::size_t max_rank = 4) {
        Shape s(below(max_rank + 1));
        for (auto& d : s) d = dim();
        return s;
    }
    std::vector<std::int64_t> ints(std::size_t max_count) {
        std::vector<std::int64_t> v(below(max_count + 1));
        for (auto& x : v) x = integer();
        return v;
    }
    template <class T>
    T scalar() {
        return scalar_from<T>(u8());
    }
};

// Flags a broken contract; the first one ends the input.
struct Finding {
    std::string what;
};

std::string shape_text(const Shape& s) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << ']';
    return os.str();
}

// --- the executor -----------------------------------------------------------

template <class T>
class Executor {
public:
    using Tensor_ = BasicTensor<T>;
    Executor(Reader& in, ApiRunResult& result, std::string scratch)
        : in_(in), r_(result), scratch_(std::move(scratch)), gen_(in.u8()) {}

    void run() {
        for (int calls = 0; calls < 48 && !in_.done(); ++calls) {
            const auto kind = static_cast<Kind>(in_.below(k_count));
            ++counts()[kind];
            const auto start = std::chrono::steady_clock::now();
            step(kind);
            seconds()[kind] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
    }

private:
    Reader& in_;
    ApiRunResult& r_;
    std::string scratch_;
    Generator gen_;
    std::vector<Tensor_> pool_;
    std::vector<std::shared_ptr<nn::BasicModule<T>>> modules_;
    std::unique_ptr<nn::Optimizer<T>> optimizer_;

    [[noreturn]] void fail(const std::string& what) { throw Finding{what}; }

    // Runs one API call. A tapegrad::Error must name one of `names`; a
    // std::bad_alloc is the memory budget; anything else is a finding.
    template <class F>
    bool call(const char* what, std::initializer_list<const char*> names, F&& f) {
        ++r_.calls;
        try {
            f();
            return true;
        } catch (const Finding&) {
            throw;
        } catch (const Error& e) {
            ++r_.refused;
            const std::string m = e.what();
            for (const char* n : names)
                if (m.find(n) != std::string::npos) return false;
            fail(std::string(what) + ": the error does not name the op: " + m);
        } catch (const std::bad_alloc&) {
            ++r_.too_big;
            return false;
        } catch (const std::exception& e) {
            fail(std::string(what) + ": threw a " + typeid(e).name() + ", not a tapegrad::Error: " + e.what());
        } catch (...) {
            fail(std::string(what) + ": threw something that is not a std::exception");
        }
    }

    // A returned tensor is defined and its element count is its shape's.
    void check(const Tensor_& t, const char* what) {
        if (!t.defined()) fail(std::string(what) + ": returned an undefined tensor");
        std::size_t count = 1;
        for (std::size_t d : t.shape())
            if (__builtin_mul_overflow(count, d, &count)) fail(std::string(what) + ": shape overflows");
        if (count != t.size()) fail(std::string(what) + ": size differs from the shape's element count");
        if (t.size() && !t.value().data()) fail(std::string(what) + ": no data");
    }
    void check_shape(const Tensor_& t, const Shape& expected, const char* what) {
        check(t, what);
        if (t.shape_vector() != expected)
            fail(std::string(what) + ": shape " + shape_text(t.shape_vector()) + ", expected " + shape_text(expected));
    }
    void keep(const Tensor_& t) {
        if (t.size() > kMaxKept) return;
        if (pool_.size() < 10) pool_.push_back(t);
        else pool_[in_.below(pool_.size())] = t;
    }
    Tensor_& any() {
        if (pool_.empty()) pool_.push_back(Tensor_::scalar(T(1.5), true));
        return pool_[in_.below(pool_.size())];
    }
    Index index(std::size_t max_count) {
        const auto v = in_.ints(max_count);
        return Index(v.begin(), v.end());
    }
    static Shape broadcast(const Shape& a, const Shape& b) {
        Shape out(std::max(a.size(), b.size()));
        for (std::size_t i = 0; i < out.size(); ++i) {
            const std::size_t da = i < a.size() ? a[a.size() - 1 - i] : 1, db = i < b.size() ? b[b.size() - 1 - i] : 1;
            out[out.size() - 1 - i] = da == 1 ? db : da;
        }
        return out;
    }

    void step(Kind kind);
    void create();
    void unary();
    void binary();
    void scalar_op();
    void reduce();
    void join();
    void loss();
    void module_new();
    void optimizer_new();
    void backward();
    void checkpoint();
};

template <class T>
void Executor<T>::create() {
    const auto kind = in_.below(10);
    const Shape s = in_.shape();
    const bool rg = in_.bit();
    const T a = in_.template scalar<T>(), b = in_.template scalar<T>();
    Tensor_ t;
    bool ok = false;
    switch (kind) {
        case 0: ok = call("zeros", {"full"}, [&] { t = Tensor_::zeros(s, rg); }); break;
        case 1: ok = call("ones", {"full"}, [&] { t = Tensor_::ones(s, rg); }); break;
        case 2: ok = call("full", {"full"}, [&] { t = Tensor_::full(s, a, rg); }); break;
        case 3: ok = call("randn", {"randn"}, [&] { t = Tensor_::randn(s, gen_, a, b, rg); }); break;
        case 4: ok = call("rand", {"rand"}, [&] { t = Tensor_::rand(s, gen_, a, b, rg); }); break;
        case 5: {
            // A real buffer when the shape is small, else none at all.
            std::vector<T> data(64);
            for (auto& v : data) v = in_.template scalar<T>();
            std::size_t count = 1;
            bool small = true;
            for (auto d : s) small = small && !__builtin_mul_overflow(count, d, &count) && count <= data.size();
            const bool null = !small || in_.bit();
            ok = call("from_data", {"from_data"}, [&] { t = Tensor_::from_data(null ? nullptr : data.data(), s, rg); });
            if (ok && null && t.size() != 0) fail("from_data: read a null pointer");
            break;
        }
        case 6: {
            const T step = in_.template scalar<T>();
            // A mid-size count (1e5 elements, say) tests nothing a small one
            // does not; counts beyond 2^31 are refused or out of budget at once.
            const long double count = (static_cast<long double>(b) - a) / step;
            if (std::isfinite(count) && count > kMaxArange && count < 0x1p31L) return;
            ok = call("arange", {"arange"}, [&] { t = Tensor_::arange(a, b, step); });
            break;
        }
        case 7: ok = call("scalar", {"scalar"}, [&] { t = Tensor_::scalar(a, rg); }); break;
        case 8: ok = call("literal", {"tensor"}, [&] { t = Tensor_({{a, b}, {b, a}}, rg); }); break;
        default: {
            const auto labels = index(6);
            const std::size_t classes = in_.dim();
            ok = call("one_hot", {"one_hot"}, [&] { t = one_hot<T>(labels, classes); });
            if (ok) check_shape(t, Shape{labels.size(), classes}, "one_hot");
        }
    }
    if (ok) {
        if (kind <= 5) check_shape(t, s, "creation");
        check(t, "creation");
        keep(t);
    }
}

template <class T>
void Executor<T>::unary() {
    const Tensor_ x = any();
    const auto which = in_.below(24);
    const T s = in_.template scalar<T>();
    static const char* names[] = {"exp",  "log",        "log1p",      "sqrt",    "abs",      "tanh",
                                  "erf",  "sigmoid",    "softplus",   "sin",     "cos",      "sign",
                                  "step", "neg",        "relu",       "leaky_relu", "elu",   "gelu",
                                  "silu", "threshold",  "identity",   "clone",   "detach",   "gelu"};
    Tensor_ y;
    const bool ok = call(names[which], {names[which]}, [&] {
        switch (which) {
            case 0: y = exp(x); break;
            case 1: y = log(x); break;
            case 2: y = x.log1p(); break;
            case 3: y = sqrt(x); break;
            case 4: y = abs(x); break;
            case 5: y = tanh(x); break;
            case 6: y = erf(x); break;
            case 7: y = sigmoid(x); break;
            case 8: y = softplus(x); break;
            case 9: y = sin(x); break;
            case 10: y = cos(x); break;
            case 11: y = sign(x); break;
            case 12: y = tapegrad::step(x); break;
            case 13: y = neg(x); break;
            case 14: y = nn::relu(x); break;
            case 15: y = nn::leaky_relu(x, s); break;
            case 16: y = nn::elu(x, s); break;
            case 17: y = nn::gelu(x); break;
            case 18: y = nn::silu(x, s); break;
            case 19: y = nn::threshold(x, s); break;
            case 20: y = nn::identity(x); break;
            case 21: y = clone(x); break;
            case 22: y = x.detach(); break;
            default: y = nn::gelu(x, nn::GeluApproximation::tanh); break;
        }
    });
    if (ok) {
        check_shape(y, x.shape_vector(), names[which]);
        keep(y);
    }
}

template <class T>
void Executor<T>::binary() {
    const Tensor_ a = any(), b = any();
    const auto which = in_.below(15);
    static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                  "ne",  "lt",  "le",  "gt",  "ge",  "where",   "prelu"};
    Tensor_ y;
    Tensor_ c = which == 13 ? any() : Tensor_();
    const bool ok = call(names[which], {names[which]}, [&] {
        switch (which) {
            case 0: y = a + b; break;
            case 1: y = a - b; break;
            case 2: y = a * b; break;
            case 3: y = a / b; break;
            case 4: y = pow(a, b); break;
            case 5: y = maximum(a, b); break;
            case 6: y = minimum(a, b); break;
            case 7: y = eq(a, b); break;
            case 8: y = ne(a, b); break;
            case 9: y = lt(a, b); break;
            case 10: y = le(a, b); break;
            case 11: y = gt(a, b); break;
            case 12: y = ge(a, b); break;
            case 13: y = where(c, a, b); break;
            default: y = nn::prelu(a, b); break;
        }
    });
    if (!ok) return;
    check(y, names[which]);
    if (which < 13) {
        check_shape(y, broadcast(a.shape_vector(), b.shape_vector()), names[which]);
        if (which >= 7)
            for (std::size_t i = 0; i < y.size(); ++i)
                if (y.value().data()[i] != T(0) && y.value().data()[i] != T(1)) fail("comparison: not 0 or 1");
    }
    keep(y);
}

template <class T>
void Executor<T>::scalar_op() {
    const Tensor_ x = any();
    const auto which = in_.below(11);
    const T s = in_.template scalar<T>(), t = in_.template scalar<T>();
    static const char* names[] = {"add", "mul", "rsub", "rdiv", "pow", "maximum", "minimum", "clamp",
                                  "full_like", "sub", "div"};
    Tensor_ y;
    const bool ok = call(names[which], {names[which]}, [&] {
        switch (which) {
            case 0: y = x + s; break;
            case 1: y = x * s; break;
            case 2: y = s - x; break;
            case 3: y = s / x; break;
            case 4: y = pow(x, s); break;
            case 5: y = maximum(x, s); break;
            case 6: y = minimum(x, s); break;
            case 7: y = clamp(x, s, t); break;
            case 8: y = full_like(x, s); break;
            case 9: y = x - s; break;
            default: y = x / s; break;
        }
    });
    if (ok) {
        check_shape(y, x.shape_vector(), names[which]);
        keep(y);
    }
}

template <class T>
void Executor<T>::reduce() {
    const Tensor_ x = any();
    const auto which = in_.below(5);
    const auto ints = in_.ints(3);
    const std::vector<std::ptrdiff_t> axes(ints.begin(), ints.end());
    const bool keepdims = in_.bit();
    static const char* names[] = {"sum", "mean", "max", "min", "logsumexp"};
    Tensor_ y;
    const bool ok = call(names[which], {names[which]}, [&] {
        switch (which) {
            case 0: y = sum(x, axes, keepdims); break;
            case 1: y = mean(x, axes, keepdims); break;
            case 2: y = tapegrad::max(x, axes, keepdims); break;
            case 3: y = tapegrad::min(x, axes, keepdims); break;
            default: y = logsumexp(x, axes, keepdims); break;
        }
    });
    if (!ok) return;
    check(y, names[which]);
    if (keepdims && y.dim() != x.dim()) fail(std::string(names[which]) + ": keepdims changed the rank");
    if (axes.empty() && !keepdims && y.dim() != 0) fail(std::string(names[which]) + ": a full reduction is not 0-d");
    keep(y);
}

template <class T>
void Executor<T>::join() {
    std::vector<Tensor_> xs(in_.below(4));
    for (auto& x : xs) x = any();
    const auto axis = in_.integer();
    const bool stacked = in_.bit();
    Tensor_ y;
    const bool ok = call(stacked ? "stack" : "concat", {stacked ? "stack" : "concat"}, [&] {
        y = stacked ? stack(xs, std::ptrdiff_t(axis)) : concat(xs, std::ptrdiff_t(axis));
    });
    if (ok) {
        check(y, "concat/stack");
        keep(y);
    }
}

template <class T>
void Executor<T>::loss() {
    const Tensor_ a = any(), b = any();
    const auto which = in_.below(5);
    const auto reduction = static_cast<nn::Reduction>(in_.below(3));
    const Index labels = index(5);
    static const char* names[] = {"mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                                  "cross_entropy", "nll_loss"};
    Tensor_ y;
    const bool ok = call(names[which], {names[which]}, [&] {
        switch (which) {
            case 0: y = nn::mse_loss(a, b, reduction); break;
            case 1: y = nn::binary_cross_entropy(a, b, reduction); break;
            case 2: y = nn::binary_cross_entropy_with_logits(a, b, reduction); break;
            case 3: y = nn::cross_entropy(a, labels, reduction); break;
            default: y = nn::nll_loss(a, labels, reduction); break;
        }
    });
    if (!ok) return;
    check(y, names[which]);
    if (reduction != nn::Reduction::none && y.dim() != 0) fail(std::string(names[which]) + ": reduced loss not 0-d");
    keep(y);
}

template <class T>
void Executor<T>::module_new() {
    const auto which = in_.below(6);
    std::shared_ptr<nn::BasicModule<T>> m;
    const std::size_t a = in_.dim(), b = in_.dim();
    const T s = in_.template scalar<T>();
    const bool flag = in_.bit();
    const char* act = kActivations[in_.below(std::size(kActivations))];
    const bool ok = call("module", {"Linear", "LayerNorm", "MLP", "Dropout", "make_activation", "PReLU", "RReLU",
                                    "full"},
                         [&] {
                             switch (which) {
                                 case 0: m = std::make_shared<nn::Linear<T>>(a, b, flag, gen_); break;
                                 case 1: m = std::make_shared<nn::LayerNorm<T>>(a, s, flag); break;
                                 case 2: {
                                     std::vector<std::size_t> sizes{a, b};
                                     if (flag) sizes.push_back(in_.dim());
                                     m = std::make_shared<nn::MLP<T>>(sizes, act, nn::Head::identity, gen_);
                                     break;
                                 }
                                 case 3: m = std::make_shared<nn::Dropout<T>>(s, a); break;
                                 default: m = nn::make_activation<T>(act); break;
                             }
                         });
    if (!ok) return;
    for (const auto& p : m->parameters()) check(p, "module parameter");
    if (modules_.size() < 3) modules_.push_back(m);
    else modules_[in_.below(3)] = m;
}

template <class T>
void Executor<T>::optimizer_new() {
    std::vector<Tensor_> params;
    if (!modules_.empty() && in_.bit()) {
        params = modules_[in_.below(modules_.size())]->parameters();
    } else {
        for (std::size_t i = in_.below(3); i > 0; --i) params.push_back(any());
    }
    const auto which = in_.below(3);
    const double lr = in_.template scalar<double>(), h1 = in_.template scalar<double>(),
                 h2 = in_.template scalar<double>(), wd = in_.template scalar<double>();
    const bool flag = in_.bit();
    std::unique_ptr<nn::Optimizer<T>> o;
    const bool ok = call("optimizer", {"optimizer", "SGD", "Adam", "AdamW"}, [&] {
        switch (which) {
            case 0: o = std::make_unique<nn::SGD<T>>(params, lr, h1, wd, flag); break;
            case 1: o = std::make_unique<nn::Adam<T>>(params, lr, h1, h2, in_.template scalar<double>(), wd); break;
            default: o = std::make_unique<nn::AdamW<T>>(params, lr, h1, h2, in_.template scalar<double>(), wd); break;
        }
    });
    if (ok) optimizer_ = std::move(o);
}

template <class T>
void Executor<T>::backward() {
    const Tensor_ y = any();
    BackwardOptions options;
    options.retain_graph = in_.bit();
    options.create_graph = in_.bit();
    const auto seed_kind = in_.below(3);
    const Tensor_ seed = seed_kind == 0 ? Tensor_() : seed_kind == 1 ? ones_like(y) : any();
    const bool ok = call("backward", {"backward"}, [&] {
        if (seed.defined()) y.backward(seed, options);
        else y.backward(options);
    });
    if (!ok) return;
    // Every gradient has its tensor's shape.
    for (const auto& t : pool_)
        if (t.is_leaf() && t.requires_grad()) {
            const auto g = t.grad();
            if (g.defined()) check_shape(g, t.shape_vector(), "backward: a leaf's gradient");
        }
}

template <class T>
void Executor<T>::checkpoint() {
    if (modules_.empty()) return;
    auto& m = *modules_[in_.below(modules_.size())];
    auto& other = *modules_[in_.below(modules_.size())];
    const std::string path = scratch_ + "/model.npz";
    const bool with_optimizer = optimizer_ && in_.bit();
    const bool saved = call("save_checkpoint", {"save_checkpoint", "save_npz"}, [&] {
        if (with_optimizer) nn::save_checkpoint(path, m, *optimizer_);
        else nn::save_checkpoint(path, m);
    });
    if (!saved) return;
    // A round trip restores every parameter bit for bit.
    std::vector<Array<T>> before;
    for (const auto& p : m.parameters()) before.push_back(p.value());
    for (auto& p : m.parameters()) p.modify([](auto& v) { v.fill(T(7)); });
    const bool loaded = call("load_checkpoint", {"load_checkpoint"}, [&] { nn::load_checkpoint(path, m); });
    if (!loaded) fail("load_checkpoint: refused the checkpoint it just saved");
    const auto after = m.parameters();
    for (std::size_t i = 0; i < after.size(); ++i)
        if (after[i].value().size() != before[i].size() ||
            std::memcmp(after[i].value().data(), before[i].data(), before[i].size() * sizeof(T)) != 0)
            fail("checkpoint: a save/load round trip changed a parameter");
    // Into another module: loads if the architecture matches, else an error.
    call("load_checkpoint", {"load_checkpoint"}, [&] { nn::load_checkpoint(path, other); });
    // A truncated file is an error naming the file's reader or the load.
    const auto bytes = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, bytes * in_.u8() / 256);
    call("load_checkpoint", {"load_checkpoint", "load_npz", "npz"}, [&] { nn::load_checkpoint(path, other); });
}

template <class T>
void Executor<T>::step(Kind kind) {
    switch (kind) {
        case k_create: create(); break;
        case k_unary: unary(); break;
        case k_binary: binary(); break;
        case k_scalar_op: scalar_op(); break;
        case k_reduce: reduce(); break;
        case k_softmax: {
            const Tensor_ x = any();
            const auto axis = std::ptrdiff_t(in_.integer());
            const bool log_form = in_.bit();
            Tensor_ y;
            if (call("softmax", {"softmax", "logsumexp"},
                     [&] { y = log_form ? nn::log_softmax(x, axis) : nn::softmax(x, axis); })) {
                check_shape(y, x.shape_vector(), "softmax");
                keep(y);
            }
            break;
        }
        case k_reshape: {
            const Tensor_ x = any();
            const auto target = in_.ints(4);
            Tensor_ y;
            if (call("reshape", {"reshape"}, [&] { y = reshape(x, target); })) {
                check(y, "reshape");
                if (y.size() != x.size()) fail("reshape: element count changed");
                keep(y);
            }
            break;
        }
        case k_broadcast_to: {
            const Tensor_ x = any();
            const Shape s = in_.shape();
            Tensor_ y;
            if (call("broadcast_to", {"broadcast_to"}, [&] { y = broadcast_to(x, s); })) {
                check_shape(y, s, "broadcast_to");
                keep(y);
            }
            break;
        }
        case k_sum_to: {
            const Tensor_ x = any();
            const Shape s = in_.shape();
            Tensor_ y;
            if (call("sum_to", {"sum_to"}, [&] { y = sum_to(x, s); })) {
                check_shape(y, s, "sum_to");
                keep(y);
            }
            break;
        }
        case k_transpose: {
            const Tensor_ x = any();
            const bool plain = in_.bit();
            const auto a = std::ptrdiff_t(in_.integer()), b = std::ptrdiff_t(in_.integer());
            Tensor_ y;
            if (call("transpose", {"transpose", "permute"}, [&] { y = plain ? transpose(x) : transpose(x, a, b); })) {
                check(y, "transpose");
                keep(y);
            }
            break;
        }
        case k_permute: {
            const Tensor_ x = any();
            std::vector<std::size_t> perm(in_.below(5));
            for (auto& p : perm) p = in_.bit() ? in_.below(4) : std::size_t(in_.integer());
            Tensor_ y;
            if (call("permute", {"permute"}, [&] { y = permute(x, perm); })) {
                check(y, "permute");
                keep(y);
            }
            break;
        }
        case k_slice: {
            const Tensor_ x = any();
            const auto axis = std::ptrdiff_t(in_.integer());
            const auto start = in_.integer(), stop = in_.integer(), step = in_.integer();
            Tensor_ y;
            if (call("slice", {"slice"}, [&] { y = slice(x, axis, start, stop, step); })) {
                check(y, "slice");
                keep(y);
            }
            break;
        }
        case k_join: join(); break;
        case k_index_select: {
            const Tensor_ x = any();
            const auto axis = std::ptrdiff_t(in_.integer());
            const Index idx = index(5);
            Tensor_ y;
            if (call("index_select", {"index_select"}, [&] { y = index_select(x, axis, idx); })) {
                check(y, "index_select");
                keep(y);
            }
            break;
        }
        case k_gather: {
            const Tensor_ x = any();
            const auto axis = std::ptrdiff_t(in_.integer());
            // Mostly an index of x's shape (so that it fits), else arbitrary.
            Shape s = in_.bit() ? x.shape_vector() : in_.shape();
            if (!s.empty() && in_.bit()) s[in_.below(s.size())] = in_.dim();
            std::size_t count = 1;
            bool small = true;
            for (auto d : s) small = small && !__builtin_mul_overflow(count, d, &count) && count <= 64;
            Index idx(small ? count : in_.below(8));
            for (auto& i : idx) i = in_.bit() ? std::int64_t(in_.below(3)) : in_.integer();
            Tensor_ y;
            if (call("gather", {"gather"}, [&] { y = gather(x, axis, idx, s); })) {
                check_shape(y, s, "gather");
                keep(y);
            }
            break;
        }
        case k_matmul: {
            const Tensor_ a = any(), b = any();
            const bool ta = in_.bit(), tb = in_.bit();
            Tensor_ y;
            if (call("matmul", {"matmul"}, [&] { y = matmul(a, b, ta, tb); })) {
                check(y, "matmul");
                keep(y);
            }
            break;
        }
        case k_loss: loss(); break;
        case k_metric: {
            const Tensor_ x = any();
            const Index labels = index(5);
            const auto classes = in_.dim();
            const auto which = in_.below(3);
            call("metric", {"predict_classes", "accuracy", "confusion_matrix"}, [&] {
                if (which == 0) (void)nn::predict_classes(x);
                else if (which == 1) (void)nn::accuracy(x, labels);
                else (void)nn::confusion_matrix(labels, labels, classes);
            });
            break;
        }
        case k_module_new: module_new(); break;
        case k_module_forward: {
            if (modules_.empty()) break;
            auto& m = *modules_[in_.below(modules_.size())];
            const Tensor_ x = any();
            m.train(in_.bit());
            Tensor_ y;
            if (call("module forward",
                     {"Linear", "LayerNorm", "MLP", "Dropout", "PReLU", "prelu", "RReLU", "rrelu", "Sequential"},
                     [&] { y = m(x); })) {
                check(y, "module forward");
                keep(y);
            }
            break;
        }
        case k_init: {
            Tensor_ t = any();
            const auto which = in_.below(7);
            const T a = in_.template scalar<T>(), b = in_.template scalar<T>();
            call("init", {"init", "modify"}, [&] {
                switch (which) {
                    case 0: nn::init::constant_(t, a); break;
                    case 1: nn::init::normal_(t, gen_, a, b); break;
                    case 2: nn::init::uniform_(t, gen_, a, b); break;
                    case 3: nn::init::xavier_normal_(t, gen_, a); break;
                    case 4: nn::init::xavier_uniform_(t, gen_, a); break;
                    case 5: nn::init::he_normal_(t, gen_); break;
                    default: nn::init::classic_(t, gen_); break;
                }
            });
            break;
        }
        case k_optimizer_new: optimizer_new(); break;
        case k_optimizer_step: {
            if (!optimizer_) break;
            const auto which = in_.below(3);
            const double lr = in_.template scalar<double>();
            call("optimizer step", {"optimizer", "SGD", "Adam", "AdamW", "set_lr", "lr"}, [&] {
                if (which == 0) optimizer_->step();
                else if (which == 1) optimizer_->zero_grad();
                else optimizer_->set_lr(lr);
            });
            break;
        }
        case k_clip_grad: {
            std::vector<Tensor_> params;
            for (std::size_t i = in_.below(3); i > 0; --i) params.push_back(any());
            const double a = in_.template scalar<double>(), b = in_.template scalar<double>();
            const bool by_norm = in_.bit();
            call("clip_grad", {"clip_grad_norm_", "clip_grad_value_"}, [&] {
                if (by_norm) (void)nn::clip_grad_norm_(params, a, b);
                else nn::clip_grad_value_(params, a);
            });
            break;
        }
        case k_schedule: {
            if (!optimizer_) break;
            const std::size_t n = in_.dim();
            const double g = in_.template scalar<double>();
            const bool cosine = in_.bit();
            const auto steps = in_.below(4);
            call("schedule", {"StepLR", "CosineLR", "optimizer", "lr"}, [&] {
                std::unique_ptr<nn::Schedule> s;
                if (cosine) s = std::make_unique<nn::CosineLR>(*optimizer_, n, g);
                else s = std::make_unique<nn::StepLR>(*optimizer_, n, g);
                for (std::size_t i = 0; i < steps; ++i) s->step();
            });
            break;
        }
        case k_backward: backward(); break;
        case k_grad_fn: {
            const Tensor_ y = any();
            std::vector<Tensor_> xs(in_.below(3));
            for (auto& x : xs) x = any();
            BackwardOptions options;
            options.retain_graph = in_.bit();
            options.create_graph = in_.bit();
            const Tensor_ seed = in_.bit() ? Tensor_() : any();
            std::vector<Tensor_> gs;
            if (call("grad", {"grad", "backward"}, [&] { gs = tapegrad::grad(y, xs, seed, options); })) {
                if (gs.size() != xs.size()) fail("grad: one gradient per input expected");
                for (std::size_t i = 0; i < gs.size(); ++i)
                    if (gs[i].defined()) {
                        check_shape(gs[i], xs[i].shape_vector(), "grad");
                        keep(gs[i]);
                    }
            }
            break;
        }
        case k_grad_access: {
            Tensor_ t = any();
            const auto which = in_.below(4);
            Tensor_ g;
            if (call("grad access", {"grad", "retain_grad", "requires_grad_"}, [&] {
                    if (which == 0) g = t.grad();
                    else if (which == 1) t.retain_grad();
                    else if (which == 2) t.requires_grad_(in_.bit());
                    else t.zero_grad();
                }) &&
                g.defined()) {
                check_shape(g, t.shape_vector(), "grad()");
                keep(g);
            }
            break;
        }
        case k_set_grad: {
            Tensor_ t = any();
            const Tensor_ g = any();
            call("set_grad", {"set_grad"}, [&] { t.set_grad(g); });
            break;
        }
        case k_modify: {
            Tensor_ t = any();
            const T v = in_.template scalar<T>();
            const bool reshape_it = in_.bit();
            call("modify", {"modify"}, [&] {
                t.modify([&](auto& a) {
                    if (reshape_it) a.resize({a.size() + 1});  // not allowed: the shape must stay
                    else if (a.size()) a.data()[0] = v;
                });
            });
            break;
        }
        case k_item: {
            const Tensor_ t = any();
            call("item", {"item"}, [&] {
                (void)t.item();
                (void)t.str();
            });
            break;
        }
        case k_convert: {
            const Tensor_ t = any();
            if (in_.bit()) {
                BasicTensor<float> f;
                if (call("to", {"to"}, [&] { f = t.template to<float>(); }) && f.shape() != t.shape())
                    fail("to<float>: shape changed");
            } else {
                BasicTensor<double> d;
                if (call("to", {"to"}, [&] { d = t.template to<double>(); }) && d.shape() != t.shape())
                    fail("to<double>: shape changed");
            }
            break;
        }
        case k_checkpoint: checkpoint(); break;
        case k_count: break;
    }
}

}  // namespace

ApiRunResult run_api_input(const std::uint8_t* data, std::size_t size, const std::string& scratch) {
    ApiRunResult result;
    Reader in{data, size};
    try {
        if (in.bit()) {
            Executor<float> e(in, result, scratch);
            e.run();
        } else {
            Executor<double> e(in, result, scratch);
            e.run();
        }
    } catch (const Finding& f) {
        result.failure = f.what;
    }
    return result;
}

std::string scratch_root() {
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path().string();
}

void limit_memory(std::size_t megabytes) {
#if TAPEGRAD_FUZZ_ASAN
    (void)megabytes;  // ASan maps terabytes of shadow memory: its max_allocation_size_mb is the limit
#else
    const rlim_t bytes = rlim_t(megabytes) << 20;
    const rlimit limit{bytes, bytes};
    setrlimit(RLIMIT_AS, &limit);
#endif
}

const std::vector<std::string>& api_call_names() { return kKindNames; }
const std::vector<std::size_t>& api_call_counts() { return counts(); }
const std::vector<double>& api_call_seconds() { return seconds(); }

}  // namespace tapegrad::fuzz

#if TAPEGRAD_FUZZ_ASAN
// The memory budget under AddressSanitizer: an allocation above 256 MiB
// returns null, which tapegrad's allocator turns into std::bad_alloc (a
// legitimately huge tensor), instead of an out-of-memory report. Options
// from ASAN_OPTIONS are applied on top of these.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1:max_allocation_size_mb=256"; }
#endif
