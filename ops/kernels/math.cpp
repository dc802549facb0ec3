// Vectorised math on contiguous arrays and row-loop reductions.
//
// Functions go through xsimd batches directly (xtensor would do the same
// for a contiguous expression, but not for the compositions below, such as
// sigmoid's select, and not without building an expression per call).
// Reductions are loops over rows: along a row with SIMD batches (xtensor's
// reducer is ~8x slower along the last axis of a row-major array), across
// leading axes one output row updated row after row (contiguous loops).
#include <tapegrad/ops/kernels/math.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

namespace tapegrad::kernels {

namespace {

// The last n - i (< one batch) elements through f, in a batch padded with 1
// (finite for every function here).
template <class B, class T, class F>
void apply_tail(F& f, const T* p, T* o, std::size_t i, std::size_t n) {
    if (i >= n) return;
    alignas(64) T buf[B::size];
    std::fill(buf, buf + B::size, T(1));
    std::copy(p + i, p + n, buf);
    f(B::load_aligned(buf)).store_aligned(buf);
    std::copy(buf, buf + (n - i), o + i);
}

template <class T, class F>
void apply_batches(const T* p, T* o, std::size_t n, F f) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) f(B::load_unaligned(p + i)).store_unaligned(o + i);
    apply_tail<B>(f, p, o, i, n);  // the tail through the same code
}

// xsimd's exp (inside tanh and erf too) converts its scaled argument to an
// integer before it checks the range: for ±inf, NaN or a huge value (beyond
// about 1e9 in float) that conversion is undefined behaviour, whatever the
// result it then selects. So such arguments are clamped to [-1000, 1000],
// where exp, tanh and erf already give their limits (0 or inf, ±1): the
// results are those of the unclamped argument, and a NaN comes back as is.
template <class B>
auto ordinary(const B& v) {  // false for NaN
    const B bound(typename B::value_type(1000));
    return v >= -bound && v <= bound;
}

template <class B, class F>
B clamped(const B& v, F f) {
    const B bound(typename B::value_type(1000));
    const auto nan = xsimd::isnan(v);
    const B c = xsimd::min(xsimd::max(xsimd::select(nan, B(0), v), -bound), bound);
    return xsimd::select(nan, v, f(c));
}

template <class B>
B plain_exp(const B& v) {
    return xsimd::exp(v);
}

template <class B>
B clamped_exp(const B& v) {
    return clamped(v, plain_exp<B>);
}

// One batch, clamped only when needed (logsumexp's loops).
template <class B>
B exp_batch(const B& v) {
    return xsimd::all(ordinary(v)) ? plain_exp(v) : clamped_exp(v);
}

// y = f(x), with g instead (f with clamped arguments) on the runs of x that
// hold an argument outside [-1000, 1000] or NaN. Runs are checked before
// they are computed, so the loop over an ordinary run is the plain loop: a
// check and a branch in every batch made exp 1.8 times slower.
template <class T, class F, class G>
void apply_guarded(const T* p, T* o, std::size_t n, F f, G g) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size, run = 32 * lanes;
    std::size_t i = 0;
    while (i + lanes <= n) {
        const std::size_t end = i + std::min(run, (n - i) / lanes * lanes);
        auto ok = ordinary(B::load_unaligned(p + i));
        for (std::size_t j = i + lanes; j < end; j += lanes) ok = ok && ordinary(B::load_unaligned(p + j));
        if (xsimd::all(ok))
            for (; i < end; i += lanes) f(B::load_unaligned(p + i)).store_unaligned(o + i);
        else
            for (; i < end; i += lanes) g(B::load_unaligned(p + i)).store_unaligned(o + i);
    }
    apply_tail<B>(g, p, o, i, n);  // the tail through the guarded code
}

// sin and cos: xsimd's range reduction for large arguments (beyond about
// 1e5) shifts a negative integer left, undefined behaviour (found by the API
// fuzzer under clang's UBSan). Lanes outside [-1000, 1000] (and NaN) go
// through the C library; the others keep xsimd's result, bit for bit.
template <class B, class F, class S>
B scalar_for_large(const B& v, F f, S scalar) {
    using T = typename B::value_type;
    constexpr std::size_t lanes = B::size;
    const auto ok = ordinary(v);
    alignas(64) T in[lanes], out[lanes];
    v.store_aligned(in);
    f(xsimd::select(ok, v, B(0))).store_aligned(out);
    for (std::size_t j = 0; j < lanes; ++j)
        if (!(in[j] >= T(-1000) && in[j] <= T(1000))) out[j] = scalar(in[j]);
    return B::load_aligned(out);
}

// With e = exp(-|x|) in (0, 1]: 1/(1+e) for x >= 0, e/(1+e) for x < 0;
// e never overflows and both branches are finite. `exp` is xsimd's, or
// clamped.
template <class B, class E>
B sigmoid_batch(const B& v, E exp) {
    const B e = exp(-xsimd::abs(v));
    const B r = B(1) / (B(1) + e);
    return xsimd::select(v >= B(0), r, e * r);
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
template <class B, class E>
B softplus_batch(const B& v, E exp) {
    return xsimd::max(v, B(0)) + xsimd::log1p(exp(-xsimd::abs(v)));
}

// One row of n elements folded with SIMD batches: four independent
// accumulators (a sum's additions then overlap), combined at the end.
template <class T, class B, class Op>
T fold_row(const T* p, std::size_t n, T start, Op op) {
    constexpr std::size_t lanes = B::size;
    B acc[4] = {B(start), B(start), B(start), B(start)};
    std::size_t c = 0;
    for (; c + 4 * lanes <= n; c += 4 * lanes)
        for (std::size_t j = 0; j < 4; ++j) acc[j] = op(acc[j], B::load_unaligned(p + c + j * lanes));
    for (; c + lanes <= n; c += lanes) acc[0] = op(acc[0], B::load_unaligned(p + c));
    alignas(64) T part[lanes];
    op(op(acc[0], acc[1]), op(acc[2], acc[3])).store_aligned(part);
    T out = start;
    for (std::size_t j = 0; j < lanes; ++j) out = op(out, part[j]);
    for (; c < n; ++c) out = op(out, p[c]);
    return out;
}

template <class T>
T fold_row(Fold fold, const T* p, std::size_t n) {
    using B = xsimd::batch<T>;
    switch (fold) {
        case Fold::sum: return fold_row<T, B>(p, n, T(0), [](const auto& a, const auto& b) { return a + b; });
        case Fold::max:
            return fold_row<T, B>(p, n, p[0], [](const auto& a, const auto& b) { return xsimd::max(a, b); });
        default: return fold_row<T, B>(p, n, p[0], [](const auto& a, const auto& b) { return xsimd::min(a, b); });
    }
}

}  // namespace

template <class T>
void apply_n(Fn fn, const T* x, T* y, std::size_t n) {
    using B = xsimd::batch<T>;
    switch (fn) {
        case Fn::exp:
            return apply_guarded(x, y, n, plain_exp<B>, clamped_exp<B>);
        case Fn::log: return apply_batches(x, y, n, [](const B& v) { return xsimd::log(v); });
        case Fn::log1p: return apply_batches(x, y, n, [](const B& v) { return xsimd::log1p(v); });
        case Fn::sqrt: return apply_batches(x, y, n, [](const B& v) { return xsimd::sqrt(v); });
        case Fn::abs: return apply_batches(x, y, n, [](const B& v) { return xsimd::abs(v); });
        case Fn::tanh:
            return apply_guarded(x, y, n, [](const B& v) { return xsimd::tanh(v); },
                                 [](const B& v) { return clamped(v, [](const B& c) { return xsimd::tanh(c); }); });
        case Fn::erf:
            return apply_guarded(x, y, n, [](const B& v) { return xsimd::erf(v); },
                                 [](const B& v) { return clamped(v, [](const B& c) { return xsimd::erf(c); }); });
        case Fn::sin: {
            auto f = [](const B& v) { return xsimd::sin(v); };
            return apply_guarded(x, y, n, f, [f](const B& v) { return scalar_for_large(v, f, [](T a) { return std::sin(a); }); });
        }
        case Fn::cos: {
            auto f = [](const B& v) { return xsimd::cos(v); };
            return apply_guarded(x, y, n, f, [f](const B& v) { return scalar_for_large(v, f, [](T a) { return std::cos(a); }); });
        }
        case Fn::sigmoid:
            return apply_guarded(x, y, n, [](const B& v) { return sigmoid_batch(v, plain_exp<B>); },
                                 [](const B& v) { return sigmoid_batch(v, clamped_exp<B>); });
        case Fn::softplus:
            return apply_guarded(x, y, n, [](const B& v) { return softplus_batch(v, plain_exp<B>); },
                                 [](const B& v) { return softplus_batch(v, clamped_exp<B>); });
    }
}

template <class T>
Array<T> apply(Fn fn, const Array<T>& x) {
    Array<T> y = Array<T>::from_shape(x.shape());
    apply_n(fn, x.data(), y.data(), x.size());
    return y;
}

template <class T>
void fold_rows(Fold fold, const T* in, std::size_t rows, std::size_t cols, T* out) {
    for (std::size_t r = 0; r < rows; ++r) out[r] = cols ? fold_row(fold, in + r * cols, cols) : T(0);
}

template <class T>
Array<T> fold_inner(Fold fold, const Array<T>& x, std::size_t cols, const Dims& shape) {
    Array<T> out = Array<T>::from_shape(shape);
    fold_rows(fold, x.data(), out.size(), cols, out.data());
    return out;
}

namespace {
// o[c] = op(...op(op(x[0, c], x[1, c]), x[2, c])...) (first), or the rows
// folded into what o holds: the output row does not alias the input
// (restrict), so the loop over a row is one vectorised loop with no overlap
// checks, and a row of one SIMD batch (a bias of 16) stays in a register.
// Both paths apply the same op element by element, in the same order.
template <class T, class Op>
void fold_into_row(const T* x, std::size_t rows, std::size_t cols, T* __restrict o, bool first, Op op) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    if (rows == 0) return;
    const std::size_t r0 = first ? 1 : 0;
    if (cols == lanes) {
        B acc = first ? B::load_unaligned(x) : B::load_unaligned(o);
        for (std::size_t r = r0; r < rows; ++r) acc = op(acc, B::load_unaligned(x + r * cols));
        acc.store_unaligned(o);
        return;
    }
    if (first)
        for (std::size_t c = 0; c < cols; ++c) o[c] = x[c];
    for (std::size_t r = r0; r < rows; ++r) {
        const T* __restrict p = x + r * cols;
        for (std::size_t c = 0; c < cols; ++c) o[c] = op(o[c], p[c]);
    }
}
}  // namespace

template <class T>
void fold_columns(Fold fold, const T* in, std::size_t rows, std::size_t cols, T* out, bool first) {
    // Scalars and batches alike (a NaN in b is not taken by max or min, as before).
    auto select = [](const auto& take, const auto& b, const auto& a) {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, T>) return take ? b : a;
        else return decltype(a)(xsimd::select(take, b, a));
    };
    switch (fold) {
        case Fold::sum: fold_into_row(in, rows, cols, out, first, [](const auto& a, const auto& b) { return a + b; }); break;
        case Fold::max:
            fold_into_row(in, rows, cols, out, first, [&](const auto& a, const auto& b) { return select(b > a, b, a); });
            break;
        case Fold::min:
            fold_into_row(in, rows, cols, out, first, [&](const auto& a, const auto& b) { return select(b < a, b, a); });
            break;
    }
}

template <class T>
Array<T> fold_leading(Fold fold, const Array<T>& x, std::size_t k, const Dims& shape) {
    std::size_t rows = 1;
    for (std::size_t i = 0; i < k; ++i) rows *= x.shape()[i];
    Array<T> out = Array<T>::from_shape(shape);
    const std::size_t cols = out.size();
    T* o = out.data();
    if (cols == 0) return out;  // no columns, however many (empty) rows: nothing to loop over
    if (rows == 0) {  // a sum of nothing
        std::fill(o, o + cols, T(0));
        return out;
    }
    fold_columns(fold, x.data(), rows, cols, o, true);
    return out;
}

namespace {
// Shift by the maximum so exp never overflows; a slice whose maximum is
// infinite keeps shift 0 (all -inf then gives log 0 = -inf, +inf gives +inf).
template <class T>
T finite_or_zero(T m) {
    return std::isfinite(m) ? m : T(0);
}
}  // namespace

namespace {
// Rows shorter than a batch (the logits of a few classes): a batch per row
// would mostly hold padding, and the padding's -inf sends every row through
// the clamped exp. Instead a chunk of rows is shifted into one buffer, its
// exp computed in full batches, and the rows' sums and logs come after
// (log in batches too): 32 rows of 2 went from 1.8 us to ~0.1 us.
// One chunk of n rows: shifts and shifted values into buf (pass 1), or the
// rows' sums of buf into out (pass 2). C > 0 is the row length known at
// compile time (2, 3, 4 classes), so the row loops unroll; 0 reads `cols`.
template <std::size_t C, class T>
void short_rows_shift(const T* p, std::size_t n, std::size_t cols, T* buf, T* shift) {
    if constexpr (C > 0) cols = C;
    for (std::size_t r = 0; r < n; ++r) {
        const T* row = p + r * cols;
        T m = row[0];
        for (std::size_t c = 1; c < cols; ++c) m = row[c] > m ? row[c] : m;
        shift[r] = finite_or_zero(m);
        for (std::size_t c = 0; c < cols; ++c) buf[r * cols + c] = row[c] - shift[r];
    }
}
template <std::size_t C, class T>
void short_rows_sum(const T* buf, std::size_t n, std::size_t cols, T* out) {
    if constexpr (C > 0) cols = C;
    for (std::size_t r = 0; r < n; ++r) {
        T s = buf[r * cols];
        for (std::size_t c = 1; c < cols; ++c) s += buf[r * cols + c];
        out[r] = s;
    }
}

template <class T>
void logsumexp_short_rows(const T* x, std::size_t rows, std::size_t cols, T* out) {
    constexpr std::size_t chunk = 1024;  // elements per pass: the buffer stays in L1
    alignas(64) T buf[chunk];
    alignas(64) T shift[chunk];
    const std::size_t per = chunk / cols;
    for (std::size_t r0 = 0; r0 < rows; r0 += per) {
        const std::size_t n = std::min(per, rows - r0);
        const T* p = x + r0 * cols;
        T* o = out + r0;
        switch (cols) {
            case 2: short_rows_shift<2>(p, n, cols, buf, shift); break;
            case 3: short_rows_shift<3>(p, n, cols, buf, shift); break;
            case 4: short_rows_shift<4>(p, n, cols, buf, shift); break;
            default: short_rows_shift<0>(p, n, cols, buf, shift); break;
        }
        apply_n(Fn::exp, buf, buf, n * cols);
        switch (cols) {
            case 2: short_rows_sum<2>(buf, n, cols, o); break;
            case 3: short_rows_sum<3>(buf, n, cols, o); break;
            case 4: short_rows_sum<4>(buf, n, cols, o); break;
            default: short_rows_sum<0>(buf, n, cols, o); break;
        }
        apply_n(Fn::log, o, o, n);
        for (std::size_t r = 0; r < n; ++r) o[r] += shift[r];
    }
}
}  // namespace

template <class T>
void logsumexp_rows(const T* in, std::size_t rows, std::size_t cols, T* out) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    if (cols < lanes) return logsumexp_short_rows(in, rows, cols, out);
    fold_rows(Fold::max, in, rows, cols, out);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = in + r * cols;
        const T shift = finite_or_zero(out[r]);
        const B s(shift);
        B acc(T(0));
        std::size_t c = 0;
        for (; c + lanes <= cols; c += lanes) acc += exp_batch(B::load_unaligned(p + c) - s);
        if (c < cols) {  // tail padded with -inf: exp gives 0
            alignas(64) T buf[lanes];
            std::fill(buf, buf + lanes, -std::numeric_limits<T>::infinity());
            std::copy(p + c, p + cols, buf);
            acc += exp_batch(B::load_aligned(buf) - s);
        }
        out[r] = std::log(xsimd::hadd(acc)) + shift;
    }
}

template <class T>
Array<T> logsumexp_inner(const Array<T>& x, std::size_t cols, const Dims& shape) {
    Array<T> out = Array<T>::from_shape(shape);
    logsumexp_rows(x.data(), out.size(), cols, out.data());
    return out;
}

template <class T>
Array<T> logsumexp_leading(const Array<T>& x, std::size_t k, const Dims& shape) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    Array<T> shift = fold_leading(Fold::max, x, k, shape);
    const std::size_t cols = shift.size(), rows = cols ? x.size() / cols : 0;
    T* s = shift.data();
    for (std::size_t c = 0; c < cols; ++c) s[c] = finite_or_zero(s[c]);
    // Row after row, exp(x - shift) accumulated into the output row.
    Array<T> out = Array<T>::from_shape(shape);
    T* o = out.data();
    std::fill(o, o + cols, T(0));
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = x.data() + r * cols;
        std::size_t c = 0;
        for (; c + lanes <= cols; c += lanes)
            (B::load_unaligned(o + c) + exp_batch(B::load_unaligned(p + c) - B::load_unaligned(s + c)))
                .store_unaligned(o + c);
        for (; c < cols; ++c) o[c] += std::exp(p[c] - s[c]);
    }
    for (std::size_t c = 0; c < cols; ++c) o[c] = std::log(o[c]) + s[c];
    return out;
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
    template Array<T> apply(Fn, const Array<T>&);                                        \
    template void apply_n(Fn, const T*, T*, std::size_t);                                \
    template Array<T> fold_inner(Fold, const Array<T>&, std::size_t, const Dims&);       \
    template Array<T> fold_leading(Fold, const Array<T>&, std::size_t, const Dims&);     \
    template Array<T> logsumexp_inner(const Array<T>&, std::size_t, const Dims&);        \
    template void fold_rows(Fold, const T*, std::size_t, std::size_t, T*);               \
    template void fold_columns(Fold, const T*, std::size_t, std::size_t, T*, bool);      \
    template void logsumexp_rows(const T*, std::size_t, std::size_t, T*);                \
    template Array<T> logsumexp_leading(const Array<T>&, std::size_t, const Dims&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::kernels
