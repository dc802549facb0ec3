// Vectorised math on contiguous arrays and row-loop reductions.
//
// Functions go through xsimd batches directly (xtensor would do the same
// for a contiguous expression, but not for the compositions below, such as
// sigmoid's select, and not without building an expression per call).
// Reductions are plain loops over rows with independent partial results,
// which the compiler vectorises without reordering any one sum: xtensor's
// reducer is ~8x slower along the last axis of a row-major array.
#include <tapegrad/ops/kernels/math.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

namespace tapegrad::kernels {

namespace {

template <class T, class F>
Array<T> apply_batches(const Array<T>& x, F f) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    Array<T> y = Array<T>::from_shape(x.shape());
    const std::size_t n = x.size();
    const T* p = x.data();
    T* o = y.data();
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) f(B::load_unaligned(p + i)).store_unaligned(o + i);
    if (i < n) {  // the tail through the same code, padded with 1 (finite for every fn)
        alignas(64) T buf[lanes];
        std::fill(buf, buf + lanes, T(1));
        std::copy(p + i, p + n, buf);
        f(B::load_aligned(buf)).store_aligned(buf);
        std::copy(buf, buf + (n - i), o + i);
    }
    return y;
}

template <class B>
B sigmoid_batch(const B& v) {
    // With e = exp(-|x|) in (0, 1]: 1/(1+e) for x >= 0, e/(1+e) for x < 0;
    // e never overflows and both branches are finite.
    const B e = xsimd::exp(-xsimd::abs(v));
    const B r = B(1) / (B(1) + e);
    return xsimd::select(v >= B(0), r, e * r);
}

template <class T, class Op>
void fold_rows(const T* x, std::size_t rows, std::size_t cols, bool from_zero, T* out, Op op) {
    constexpr std::size_t lanes = 16;
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = x + r * cols;
        const T start = from_zero ? T(0) : p[0];
        T part[lanes];
        std::fill(part, part + lanes, start);
        std::size_t c = 0;
        for (; c + lanes <= cols; c += lanes)
            for (std::size_t j = 0; j < lanes; ++j) part[j] = op(part[j], p[c + j]);
        T acc = start;
        for (std::size_t j = 0; j < lanes; ++j) acc = op(acc, part[j]);
        for (; c < cols; ++c) acc = op(acc, p[c]);
        out[r] = acc;
    }
}

template <class T>
Dims last_kept(const Array<T>& x) {
    Dims shape = dims(x.shape());
    shape.back() = 1;
    return shape;
}

}  // namespace

template <class T>
Array<T> apply(Fn fn, const Array<T>& x) {
    using B = xsimd::batch<T>;
    switch (fn) {
        case Fn::exp: return apply_batches(x, [](const B& v) { return xsimd::exp(v); });
        case Fn::log: return apply_batches(x, [](const B& v) { return xsimd::log(v); });
        case Fn::log1p: return apply_batches(x, [](const B& v) { return xsimd::log1p(v); });
        case Fn::sqrt: return apply_batches(x, [](const B& v) { return xsimd::sqrt(v); });
        case Fn::abs: return apply_batches(x, [](const B& v) { return xsimd::abs(v); });
        case Fn::tanh: return apply_batches(x, [](const B& v) { return xsimd::tanh(v); });
        case Fn::erf: return apply_batches(x, [](const B& v) { return xsimd::erf(v); });
        case Fn::sin: return apply_batches(x, [](const B& v) { return xsimd::sin(v); });
        case Fn::cos: return apply_batches(x, [](const B& v) { return xsimd::cos(v); });
        case Fn::sigmoid: return apply_batches(x, [](const B& v) { return sigmoid_batch(v); });
        case Fn::softplus:  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
            return apply_batches(x, [](const B& v) {
                return xsimd::max(v, B(0)) + xsimd::log1p(xsimd::exp(-xsimd::abs(v)));
            });
    }
    return x;
}

template <class T>
Array<T> fold_last(Fold fold, const Array<T>& x) {
    const std::size_t cols = x.shape().back(), rows = x.size() / cols;
    Array<T> out = Array<T>::from_shape(last_kept(x));
    switch (fold) {
        case Fold::sum: fold_rows(x.data(), rows, cols, true, out.data(), [](T a, T b) { return a + b; }); break;
        case Fold::max: fold_rows(x.data(), rows, cols, false, out.data(), [](T a, T b) { return b > a ? b : a; }); break;
        case Fold::min: fold_rows(x.data(), rows, cols, false, out.data(), [](T a, T b) { return b < a ? b : a; }); break;
    }
    return out;
}

template <class T>
Array<T> fold_leading(Fold fold, const Array<T>& x, std::size_t k, const Dims& shape) {
    std::size_t rows = 1;
    for (std::size_t i = 0; i < k; ++i) rows *= x.shape()[i];
    Array<T> out = Array<T>::from_shape(shape);
    const std::size_t cols = out.size();
    T* o = out.data();
    if (rows == 0) {  // a sum of nothing
        std::fill(o, o + cols, T(0));
        return out;
    }
    // Row after row folded into the output row: a contiguous loop.
    std::copy(x.data(), x.data() + cols, o);
    for (std::size_t r = 1; r < rows; ++r) {
        const T* p = x.data() + r * cols;
        switch (fold) {
            case Fold::sum: for (std::size_t c = 0; c < cols; ++c) o[c] += p[c]; break;
            case Fold::max: for (std::size_t c = 0; c < cols; ++c) o[c] = p[c] > o[c] ? p[c] : o[c]; break;
            case Fold::min: for (std::size_t c = 0; c < cols; ++c) o[c] = p[c] < o[c] ? p[c] : o[c]; break;
        }
    }
    return out;
}

template <class T>
Array<T> logsumexp_last(const Array<T>& x) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    const std::size_t cols = x.shape().back(), rows = x.size() / cols;
    Array<T> out = fold_last(Fold::max, x);
    constexpr T minus_inf = -std::numeric_limits<T>::infinity();
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = x.data() + r * cols;
        // Shift by the maximum so exp never overflows; a row whose maximum
        // is infinite keeps shift 0 (all -inf gives log 0 = -inf).
        const T shift = std::isfinite(out.data()[r]) ? out.data()[r] : T(0);
        const B s(shift);
        B acc(T(0));
        std::size_t c = 0;
        for (; c + lanes <= cols; c += lanes) acc += xsimd::exp(B::load_unaligned(p + c) - s);
        if (c < cols) {  // tail padded with -inf: exp gives 0
            alignas(64) T buf[lanes];
            std::fill(buf, buf + lanes, minus_inf);
            std::copy(p + c, p + cols, buf);
            acc += xsimd::exp(B::load_aligned(buf) - s);
        }
        out.data()[r] = std::log(xsimd::hadd(acc)) + shift;
    }
    return out;
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
    template Array<T> apply(Fn, const Array<T>&);                                        \
    template Array<T> fold_last(Fold, const Array<T>&);                                  \
    template Array<T> fold_leading(Fold, const Array<T>&, std::size_t, const Dims&);     \
    template Array<T> logsumexp_last(const Array<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::kernels
