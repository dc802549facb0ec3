// The kernel layer (ops/kernels/) against plain reference loops: every
// broadcast pattern of the elementwise kernel (equal, scalar, row, column,
// outer, general, zero-size, 0-d; one, two and three operands), the
// vectorised functions at every tail length, and the row-loop reductions,
// in float and double. Tensor values are always contiguous containers, so
// there is no strided-input case to test.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmath.hpp>

#include <tapegrad/ops/kernels/elementwise.hpp>
#include <tapegrad/ops/kernels/gemm.hpp>
#include <tapegrad/ops/kernels/math.hpp>
#include <tapegrad/tapegrad.hpp>

namespace {

using tapegrad::Array;
using tapegrad::kernels::Dims;

template <class T>
Array<T> random_array(const Dims& shape, std::mt19937& gen, T lo = T(-2), T hi = T(2)) {
    Array<T> a = Array<T>::from_shape(shape);
    std::uniform_real_distribution<T> dist(lo, hi);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = dist(gen);
    return a;
}

// The element of `a` that numpy broadcasting pairs with the output's flat
// index `flat` (output shape `out`).
template <class T>
T at(const Array<T>& a, const Dims& out, std::size_t flat) {
    std::vector<std::size_t> index(out.size());
    for (std::size_t i = out.size(); i-- > 0;) {
        index[i] = out[i] ? flat % out[i] : 0;
        flat = out[i] ? flat / out[i] : 0;
    }
    std::size_t offset = 0;
    const std::size_t lead = out.size() - a.dimension();
    for (std::size_t i = 0; i < a.dimension(); ++i)
        offset = offset * a.shape()[i] + (a.shape()[i] == 1 ? 0 : index[lead + i]);
    return a.data()[offset];
}

struct Pattern {
    const char* name;
    Dims a, b, c;
};

// Every pattern the kernel distinguishes, and some that collapse to them.
const std::vector<Pattern>& patterns() {
    static const std::vector<Pattern> p{
        {"equal", {7, 37}, {7, 37}, {7, 37}},
        {"scalar 0-d", {7, 37}, {}, {7, 37}},
        {"scalar (1, 1)", {7, 37}, {1, 1}, {}},
        {"row (1, N)", {7, 37}, {1, 37}, {7, 37}},
        {"vector (N,)", {7, 37}, {37}, {1, 37}},
        {"column (M, 1)", {7, 37}, {7, 1}, {7, 37}},
        {"column on the left", {7, 1}, {7, 37}, {7, 1}},
        {"outer (M, 1) x (1, N)", {7, 1}, {1, 37}, {7, 37}},
        {"general 3-d", {3, 1, 19}, {1, 4, 19}, {3, 4, 1}},
        {"middle axis", {3, 5, 19}, {3, 1, 19}, {1, 5, 1}},
        {"size-1 axes everywhere", {1, 3, 1, 17}, {2, 1, 1, 17}, {1}},
        {"0-d only", {}, {}, {}},
        {"one element", {1}, {1, 1}, {}},
        {"zero-size", {0, 5}, {1, 5}, {0, 1}},
        {"zero-size broadcast", {4, 0}, {4, 1}, {}},
        {"long row (tail)", {3, 1001}, {1001}, {3, 1}},
        {"short rows: a bias of 2", {32, 2}, {2}, {32, 1}},
        {"short rows: a column, 3 wide", {9, 1}, {9, 3}, {1, 3}},
        {"short rows: 7 wide, both broadcast", {5, 1}, {1, 7}, {5, 7}},
    };
    return p;
}

template <class T>
void check_patterns() {
    std::mt19937 gen(7);
    for (const auto& p : patterns()) {
        CAPTURE(p.name);
        auto a = random_array<T>(p.a, gen), b = random_array<T>(p.b, gen), c = random_array<T>(p.c, gen);
        // A third of the conditions are zero, and a few elements tie.
        for (std::size_t i = 0; i < c.size(); i += 3) c.data()[i] = 0;
        if (a.size() && b.size()) b.data()[0] = a.data()[0];

        auto sub = tapegrad::kernels::map<T>([](T x, T y) { return x - y; }, a, b);
        auto pick = tapegrad::kernels::map<T>([](T k, T x, T y) { return k != 0 ? x : y; }, c, a, b);
        const Dims out2 = tapegrad::kernels::broadcast_dims({&p.a, &p.b});
        const Dims out3 = tapegrad::kernels::broadcast_dims({&p.c, &out2});
        REQUIRE(tapegrad::kernels::dims(sub.shape()) == out2);
        REQUIRE(tapegrad::kernels::dims(pick.shape()) == out3);
        for (std::size_t i = 0; i < sub.size(); ++i) CHECK(sub.data()[i] == at(a, out2, i) - at(b, out2, i));
        for (std::size_t i = 0; i < pick.size(); ++i)
            CHECK(pick.data()[i] == (at(c, out3, i) != 0 ? at(a, out3, i) : at(b, out3, i)));

        // The same through the public ops, against xtensor's broadcasting.
        tapegrad::BasicTensor<T> ta(a), tb(b), tc(c);
        const Array<T> ref_add = a + b, ref_mul = a * b, ref_max = xt::maximum(a, b);
        CHECK(tapegrad::add(ta, tb).value() == ref_add);
        CHECK(tapegrad::mul(ta, tb).value() == ref_mul);
        CHECK(tapegrad::maximum(ta, tb).value() == ref_max);
        CHECK(tapegrad::where(tc, ta, tb).value() == pick);
        CHECK(tapegrad::broadcast_to(tb, tapegrad::Shape(out3.begin(), out3.end())).value() ==
              Array<T>(xt::broadcast(b, out3)));
    }
}

TEST_CASE("kernels: broadcast patterns match a per-element reference (float, double)") {
    check_patterns<float>();
    check_patterns<double>();
}

TEST_CASE("kernels: plan collapses shapes to rows with contiguous or repeated operands") {
    using tapegrad::kernels::plan;
    Dims m{256, 1000}, col{256, 1}, row{1, 1000}, general_a{16, 1, 1000}, general_b{1, 16, 1000};
    auto same = plan<2>(m, {&m, &m});
    CHECK(same.shape == Dims{256000});  // one long contiguous row
    auto c = plan<2>(m, {&m, &col});
    CHECK(c.shape == Dims{256, 1000});
    CHECK(c.strides[1] == Dims{1, 0});  // the column repeats along each row
    auto r = plan<2>(m, {&m, &row});
    CHECK(r.strides[1] == Dims{0, 1});
    Dims out{16, 16, 1000};
    auto g = plan<2>(out, {&general_a, &general_b});
    CHECK(g.shape == out);
    CHECK(g.strides[0] == Dims{1000, 0, 1});
    CHECK(g.strides[1] == Dims{0, 1000, 1});
}

template <class T>
void check_functions() {
    using tapegrad::kernels::Fn;
    std::mt19937 gen(11);
    const T tol = std::is_same_v<T, float> ? T(4e-6) : T(1e-13);
    struct Case {
        Fn fn;
        T lo, hi;
        T (*ref)(T);
    };
    const std::vector<Case> cases{
        {Fn::exp, -20, 20, [](T x) { return std::exp(x); }},
        {Fn::log, T(1e-3), 100, [](T x) { return std::log(x); }},
        {Fn::log1p, T(-0.9), 10, [](T x) { return std::log1p(x); }},
        {Fn::sqrt, 0, 100, [](T x) { return std::sqrt(x); }},
        {Fn::abs, -5, 5, [](T x) { return std::abs(x); }},
        {Fn::tanh, -10, 10, [](T x) { return std::tanh(x); }},
        {Fn::erf, -4, 4, [](T x) { return std::erf(x); }},
        {Fn::sin, -6, 6, [](T x) { return std::sin(x); }},
        {Fn::cos, -6, 6, [](T x) { return std::cos(x); }},
        {Fn::sigmoid, -30, 30, [](T x) { return T(1) / (T(1) + std::exp(-x)); }},
        {Fn::softplus, -30, 30, [](T x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }},
    };
    for (const auto& c : cases)
        for (std::size_t n : {0, 1, 3, 15, 16, 17, 100}) {  // every tail length of a batch
            CAPTURE(int(c.fn));
            CAPTURE(n);
            auto x = random_array<T>({n}, gen, c.lo, c.hi);
            auto y = tapegrad::kernels::apply(c.fn, x);
            REQUIRE(y.size() == n);
            for (std::size_t i = 0; i < n; ++i) {
                const T want = c.ref(x.data()[i]);
                CHECK(std::abs(y.data()[i] - want) <= tol * std::max(T(1), std::abs(want)));
            }
        }
    // Special values.
    const T inf = std::numeric_limits<T>::infinity();
    Array<T> special = {-inf, T(-1000), T(0), T(1000), inf};
    auto e = tapegrad::kernels::apply(Fn::exp, special);
    CHECK(e.data()[0] == 0);
    CHECK(e.data()[4] == inf);
    auto s = tapegrad::kernels::apply(Fn::sigmoid, special);
    CHECK(s.data()[0] == 0);
    CHECK(s.data()[1] == 0);
    CHECK(s.data()[2] == T(0.5));
    CHECK(s.data()[3] == 1);
    CHECK(s.data()[4] == 1);
    auto l = tapegrad::kernels::apply(Fn::log, Array<T>{T(0), T(1), inf});
    CHECK(l.data()[0] == -inf);
    CHECK(l.data()[1] == 0);
    CHECK(l.data()[2] == inf);
}

TEST_CASE("kernels: vectorised functions match the C library at every tail length (float, double)") {
    check_functions<float>();
    check_functions<double>();
}

// Arguments where exp, tanh and erf have reached their limits, and those
// beyond any range: xsimd's exp converts its scaled argument to an integer,
// undefined behaviour for ±inf, NaN and huge values (clang's UBSan reported
// it from the API fuzzer), so the kernels clamp the argument first. The
// results must be the C library's, and NaN must stay NaN.
template <class T>
void check_function_limits() {
    using tapegrad::kernels::Fn;
    using L = std::numeric_limits<T>;
    const T inf = L::infinity();
    const std::vector<T> limits{-inf, inf, L::lowest(), L::max(), T(-1e30), T(1e30), T(-1e10), T(1e10),
                                T(-5e4), T(5e4), T(-2000), T(2000), T(-800), T(800)};
    struct Case {
        Fn fn;
        T (*ref)(T);
    };
    const std::vector<Case> cases{
        {Fn::exp, [](T x) { return std::exp(x); }},
        {Fn::tanh, [](T x) { return std::tanh(x); }},
        {Fn::erf, [](T x) { return std::erf(x); }},
        {Fn::sigmoid, [](T x) { return T(1) / (T(1) + std::exp(-x)); }},
        {Fn::softplus, [](T x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }},
    };
    for (const auto& c : cases) {
        CAPTURE(int(c.fn));
        // Every value at every lane position: the tail goes through its own buffer.
        for (std::size_t pad : {0, 1, 5}) {
            Array<T> x = Array<T>::from_shape({limits.size() + 2 + pad});
            std::fill(x.data(), x.data() + x.size(), T(0.5));
            std::copy(limits.begin(), limits.end(), x.data() + pad);
            x.data()[pad + limits.size()] = L::quiet_NaN();
            x.data()[pad + limits.size() + 1] = -L::quiet_NaN();
            const auto y = tapegrad::kernels::apply(c.fn, x);
            for (std::size_t i = 0; i < limits.size(); ++i) {
                CAPTURE(limits[i]);
                CHECK(y.data()[pad + i] == c.ref(limits[i]));
            }
            CHECK(std::isnan(y.data()[pad + limits.size()]));
            CHECK(std::isnan(y.data()[pad + limits.size() + 1]));
        }
    }
    // Signed zeros pass through tanh and erf; exp(±0) is 1.
    const Array<T> zeros{T(0), -T(0)};
    for (Fn fn : {Fn::tanh, Fn::erf}) {
        const auto y = tapegrad::kernels::apply(fn, zeros);
        CHECK((y.data()[0] == 0 && !std::signbit(y.data()[0])));
        CHECK((y.data()[1] == 0 && std::signbit(y.data()[1])));
    }
    const auto e = tapegrad::kernels::apply(Fn::exp, zeros);
    CHECK((e.data()[0] == 1 && e.data()[1] == 1));
    // logsumexp: a row of -inf (and the -inf padding of a tail) gives -inf,
    // +inf gives +inf, NaN stays NaN.
    Array<T> rows = Array<T>::from_shape({3, 5});
    std::fill(rows.data(), rows.data() + 15, -inf);
    rows.data()[6] = inf;
    rows.data()[10] = L::quiet_NaN();
    const auto inner = tapegrad::kernels::logsumexp_inner(rows, 5, Dims{3});
    CHECK(inner.data()[0] == -inf);
    CHECK(inner.data()[1] == inf);
    CHECK(std::isnan(inner.data()[2]));
    const auto leading = tapegrad::kernels::logsumexp_leading(rows, 1, Dims{5});
    CHECK(std::isnan(leading.data()[0]));
    CHECK(leading.data()[1] == inf);
    CHECK(leading.data()[2] == -inf);
}

TEST_CASE("kernels: exp, tanh, erf, sigmoid and softplus give the C library's limits for ±inf, NaN and huge arguments") {
    check_function_limits<float>();
    check_function_limits<double>();
}

// sin and cos of huge arguments: xsimd's large-argument range reduction
// shifts a negative integer left (undefined behaviour, reported by clang's
// UBSan from the API fuzzer), so such lanes go through the C library. Their
// results must be the C library's; ordinary lanes beside them keep the
// vectorised result bit for bit; ±inf and NaN give NaN.
template <class T>
void check_trig_large() {
    using tapegrad::kernels::Fn;
    using L = std::numeric_limits<T>;
    const std::vector<T> large{T(1e30), T(-1e30), T(1e10), T(-3e6), T(1e5), T(1001), L::max(), L::lowest()};
    for (Fn fn : {Fn::sin, Fn::cos}) {
        CAPTURE(int(fn));
        T (*ref)(T) = fn == Fn::sin ? [](T x) { return std::sin(x); } : [](T x) { return std::cos(x); };
        Array<T> ordinary = Array<T>::from_shape({64});
        for (std::size_t i = 0; i < ordinary.size(); ++i) ordinary.data()[i] = T(0.37) * T(i) - T(9);
        const auto plain = tapegrad::kernels::apply(fn, ordinary);
        for (std::size_t at : {0, 3, 17, 63}) {
            for (T v : large) {
                CAPTURE(at);
                CAPTURE(v);
                Array<T> x = ordinary;
                x.data()[at] = v;
                const auto y = tapegrad::kernels::apply(fn, x);
                CHECK(y.data()[at] == ref(v));
                for (std::size_t i = 0; i < x.size(); ++i)
                    if (i != at) CHECK(y.data()[i] == plain.data()[i]);
            }
            for (T v : {L::infinity(), -L::infinity(), L::quiet_NaN()}) {
                Array<T> x = ordinary;
                x.data()[at] = v;
                CHECK(std::isnan(tapegrad::kernels::apply(fn, x).data()[at]));
            }
        }
    }
}

TEST_CASE("kernels: sin and cos of huge arguments are the C library's, ordinary lanes unchanged") {
    check_trig_large<float>();
    check_trig_large<double>();
}

template <class T>
void check_reductions() {
    using tapegrad::kernels::Fold;
    std::mt19937 gen(5);
    const T tol = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
    // Rows shorter than a SIMD batch (logsumexp's chunked path, with row
    // lengths 2, 3 and 4 compiled apart; 500 rows of 3 take two chunks),
    // exactly one batch, longer. Columns of one batch (fold_leading keeps
    // them in a register): 16 floats, 8 doubles.
    for (Dims shape : {Dims{7, 1}, Dims{40, 2}, Dims{9, 3}, Dims{500, 3}, Dims{6, 4}, Dims{7, 37}, Dims{2, 3, 1001},
                       Dims{1, 16}, Dims{5, 16}, Dims{5, 8}, Dims{0, 5}, Dims{5, 0}}) {
        CAPTURE(shape.size());
        auto x = random_array<T>(shape, gen, T(-3), T(3));
        const std::size_t cols = shape.back(), rows = cols ? x.size() / cols : 0;
        if (cols > 0) {
            if (x.size()) x.data()[0] = -std::numeric_limits<T>::infinity();  // logsumexp must cope
            Dims kept = shape;
            kept.back() = 1;
            auto sum = tapegrad::kernels::fold_inner(Fold::sum, x, cols, kept);
            auto mx = tapegrad::kernels::fold_inner(Fold::max, x, cols, kept);
            auto mn = tapegrad::kernels::fold_inner(Fold::min, x, cols, kept);
            auto lse = tapegrad::kernels::logsumexp_inner(x, cols, kept);
            REQUIRE(tapegrad::kernels::dims(lse.shape()) == kept);
            for (std::size_t r = 0; r < rows; ++r) {
                double s = 0, e = 0;
                T hi = x.data()[r * cols], lo = hi;
                for (std::size_t c = 0; c < cols; ++c) {
                    const T v = x.data()[r * cols + c];
                    s += v;
                    e += std::exp(double(v));
                    hi = std::max(hi, v);
                    lo = std::min(lo, v);
                }
                if (std::isinf(s)) CHECK(sum.data()[r] == T(s));
                else CHECK(std::abs(double(sum.data()[r]) - s) <= tol * (1 + std::abs(s)));
                CHECK(mx.data()[r] == hi);
                CHECK(mn.data()[r] == lo);
                const double want = std::log(e);
                if (std::isinf(want)) CHECK(lse.data()[r] == T(want));
                else CHECK(std::abs(double(lse.data()[r]) - want) <= tol * (1 + std::abs(want)));
            }
        }
        // The leading axis.
        Dims kept = shape;
        kept[0] = 1;
        auto lead = tapegrad::kernels::fold_leading(Fold::sum, x, 1, kept);
        REQUIRE(tapegrad::kernels::dims(lead.shape()) == kept);
        const std::size_t width = lead.size();
        for (std::size_t c = 0; c < width; ++c) {
            double s = 0;
            T hi = -std::numeric_limits<T>::infinity();
            for (std::size_t r = 0; r < shape[0]; ++r) {
                s += x.data()[r * width + c];
                hi = std::max(hi, x.data()[r * width + c]);
            }
            if (std::isinf(s)) CHECK(lead.data()[c] == T(s));
            else CHECK(std::abs(double(lead.data()[c]) - s) <= tol * (1 + std::abs(s)));
            if (shape[0] > 0) CHECK(tapegrad::kernels::fold_leading(Fold::max, x, 1, kept).data()[c] == hi);
            if (shape[0] > 0 && c > 0) {  // column 0 holds the -inf
                double e = 0;
                for (std::size_t r = 0; r < shape[0]; ++r) e += std::exp(double(x.data()[r * width + c]));
                const double got = tapegrad::kernels::logsumexp_leading(x, 1, kept).data()[c];
                CHECK(std::abs(got - std::log(e)) <= tol * (1 + std::abs(std::log(e))));
            }
        }
        // Everything at once: one run of all elements.
        if (x.size()) {
            double s = 0;
            for (std::size_t i = 0; i < x.size(); ++i) s += x.data()[i];
            const double got = tapegrad::kernels::fold_inner(Fold::sum, x, x.size(), Dims{}).data()[0];
            if (std::isinf(s)) CHECK(got == s);
            else CHECK(std::abs(got - s) <= tol * (1 + std::abs(s)));
        }
    }
    // An all -inf row gives -inf; +inf gives +inf.
    const T inf = std::numeric_limits<T>::infinity();
    Array<T> edge = {{-inf, -inf, -inf}, {T(1), inf, T(2)}};
    auto lse = tapegrad::kernels::logsumexp_inner(edge, 3, Dims{2, 1});
    CHECK(lse.data()[0] == -inf);
    CHECK(lse.data()[1] == inf);
    Array<T> columns = {{-inf, T(1), -inf}, {-inf, inf, T(2)}};  // the same over the leading axis
    auto lead = tapegrad::kernels::logsumexp_leading(columns, 1, Dims{1, 3});
    CHECK(lead.data()[0] == -inf);
    CHECK(lead.data()[1] == inf);
    CHECK(lead.data()[2] == doctest::Approx(2.0));
}

TEST_CASE("kernels: reductions over the last and the leading axis match a reference (float, double)") {
    check_reductions<float>();
    check_reductions<double>();
}

// small_gemm against a plain triple loop: every transpose, beta 0 (C not
// read: it starts as NaN) and beta 1, sizes around the tiles' edges (rows
// in tiles of 8, 4, 2, 1; columns in 1 to 5 SIMD batches, partial ones).
template <class T>
void check_small_gemm() {
    std::mt19937 gen(11);
    const T tol = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::size_t ran = 0;
    for (std::size_t m : {1, 2, 3, 7, 8, 9, 15, 32})
        for (std::size_t n : {1, 2, 5, 8, 16, 17, 33, 64, 70})
            for (std::size_t k : {1, 2, 16, 31})
                for (int flags = 0; flags < 8; ++flags) {
                    const bool ta = flags & 1, tb = flags & 2;
                    const T beta = (flags & 4) ? T(1) : T(0);
                    CAPTURE(m);
                    CAPTURE(n);
                    CAPTURE(k);
                    CAPTURE(flags);
                    auto a = random_array<T>(Dims{m * k}, gen), b = random_array<T>(Dims{k * n}, gen);
                    Array<T> c = beta == T(0) ? Array<T>(xt::xarray<T>(xt::broadcast(nan, {m * n})))
                                              : random_array<T>(Dims{m * n}, gen);
                    const Array<T> before = c;
                    if (!tapegrad::kernels::small_gemm(a.data(), ta, b.data(), tb, c.data(), m, n, k, beta)) continue;
                    ++ran;
                    for (std::size_t i = 0; i < m; ++i)
                        for (std::size_t j = 0; j < n; ++j) {
                            double want = beta == T(0) ? 0.0 : double(before.data()[i * n + j]);
                            for (std::size_t p = 0; p < k; ++p)
                                want += double(ta ? a.data()[p * m + i] : a.data()[i * k + p]) *
                                        double(tb ? b.data()[j * k + p] : b.data()[p * n + j]);
                            REQUIRE(std::abs(double(c.data()[i * n + j]) - want) <= tol * (1 + std::abs(want)) * k);
                        }
                }
    CHECK(ran > 1000);  // most of these sizes are small enough
    // Too large: left to BLAS, C untouched.
    Array<T> big = Array<T>::from_shape({64 * 64});
    big.fill(T(7));
    const Array<T> ones = xt::ones<T>({64 * 64});
    CHECK_FALSE(tapegrad::kernels::small_gemm(ones.data(), false, ones.data(), false, big.data(), 64, 64, 64, T(0)));
    CHECK(big.data()[0] == T(7));
}

TEST_CASE("kernels: small matrix products match a reference for every transpose (float, double)") {
    check_small_gemm<float>();
    check_small_gemm<double>();
}

}  // namespace
