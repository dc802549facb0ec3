// The elementwise kernel every elementwise op and VJP goes through: numpy
// broadcasting of up to three operands, evaluated row by row.
//
//   Array<T> y = kernels::map([](T a, T b) { return a + b; }, a, b);
//
// Why not an xtensor expression: xtensor's broadcasting stepper walks a
// broadcast operand element by element in scalar code, so `a - m` with m of
// shape (M, 1) ran at 2.6 ns per element against 0.1 for equal shapes
// (docs in bench/README.md). Here the shapes are first collapsed (size-1
// output axes dropped, axes merged wherever every operand stays contiguous
// across them), so the innermost axis is as long as it can be, and along it
// every operand either steps one element at a time or repeats one value.
// Each row then goes to a loop compiled for exactly that pattern, which the
// compiler vectorises: equal shapes are one long row, a row bias (1, N) or
// (N,) is M rows of (contiguous, contiguous), a column (M, 1) is M rows of
// (contiguous, repeated), a scalar is one row of (contiguous, repeated), and
// any other broadcast is rows of one of those patterns.
//
// Operands are tapegrad::Array values: row-major containers, so always
// contiguous. Shapes must be broadcast-compatible (ops check first and
// throw a ShapeError naming themselves).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <tapegrad/core/array.hpp>

namespace tapegrad::kernels {

// Shapes and strides inline up to 8 axes: planning an op allocates nothing
// (a heap allocation costs more than a 4-element op).
using Dims = xt::svector<std::size_t, 8>;

// The output walked as rows: `shape` after collapsing (at least one axis),
// and every operand's element stride along each collapsed axis (0 where it
// is broadcast). Along the last axis each stride is 0 or 1.
template <std::size_t N>
struct Walk {
    Dims shape;
    std::array<Dims, N> strides;
};

template <class S>
Dims dims(const S& s) {
    return Dims(s.begin(), s.end());
}

// numpy's broadcast shape of compatible shapes.
inline Dims broadcast_dims(std::initializer_list<const Dims*> shapes) {
    std::size_t rank = 0;
    for (auto* s : shapes) rank = std::max(rank, s->size());
    Dims out(rank, 1);
    for (auto* s : shapes)
        for (std::size_t i = 0; i < s->size(); ++i) {
            const std::size_t d = (*s)[i];
            if (d != 1) out[rank - s->size() + i] = d;
        }
    return out;
}

template <std::size_t N>
Walk<N> plan(const Dims& out, const std::array<const Dims*, N>& in) {
    const std::size_t rank = out.size();
    // Strides of each operand, aligned to the output's axes.
    std::array<Dims, N> full;
    for (std::size_t k = 0; k < N; ++k) {
        const Dims& s = *in[k];
        full[k].assign(rank, 0);
        std::size_t step = 1;
        for (std::size_t i = s.size(); i-- > 0;) {
            full[k][rank - s.size() + i] = s[i] == 1 ? 0 : step;
            step *= s[i];
        }
    }
    Walk<N> w;
    for (std::size_t i = 0; i < rank; ++i) {
        if (out[i] == 1) continue;  // visits one element: no axis needed
        bool merge = !w.shape.empty();
        for (std::size_t k = 0; k < N && merge; ++k)
            merge = w.strides[k].back() == full[k][i] * out[i];
        if (merge) {
            w.shape.back() *= out[i];
            for (std::size_t k = 0; k < N; ++k) w.strides[k].back() = full[k][i];
        } else {
            w.shape.push_back(out[i]);
            for (std::size_t k = 0; k < N; ++k) w.strides[k].push_back(full[k][i]);
        }
    }
    if (w.shape.empty()) {  // one element (0-d, or all axes of size 1)
        w.shape.push_back(1);
        for (auto& s : w.strides) s.push_back(0);
    }
    return w;
}

namespace detail {

// One row of n outputs; bit k of Mask says operand k is contiguous along
// the row (else its one value repeats). Mask is a template parameter so
// every index below is a compile-time pattern the vectoriser understands.
template <unsigned Mask, class T, std::size_t N, class F, std::size_t... K>
void row(std::size_t n, T* out, const std::array<const T*, N>& p, F& f, std::index_sequence<K...>) {
    const std::array<const T*, N> q = p;
    for (std::size_t j = 0; j < n; ++j) out[j] = f(q[K][((Mask >> K) & 1u) ? j : 0]...);
}

template <unsigned Mask, class T, std::size_t N, class F>
void row_for(unsigned mask, std::size_t n, T* out, const std::array<const T*, N>& p, F& f) {
    if constexpr (Mask + 1 < (1u << N)) {
        if (mask != Mask) return row_for<Mask + 1>(mask, n, out, p, f);
    }
    row<Mask>(n, out, p, f, std::make_index_sequence<N>{});
}

// Rows of n outputs, rows·n in all, operand k's element (r, j) at
// p[k][r·outer[k] + j·inner[k]]: one loop nest for short rows (a bias of 2
// classes, a column of 2), where a row call per row cost more than the row.
template <class T, std::size_t N, class F, std::size_t... K>
void short_rows(std::size_t rows, std::size_t n, T* out, const std::array<const T*, N>& p,
                const std::array<std::size_t, N>& outer, const std::array<std::size_t, N>& inner, F& f,
                std::index_sequence<K...>) {
    for (std::size_t r = 0; r < rows; ++r, out += n)
        for (std::size_t j = 0; j < n; ++j) out[j] = f(p[K][r * outer[K] + j * inner[K]]...);
}

}  // namespace detail

// out[i] = f(in_0[i], ..., in_{N-1}[i]) over the broadcast index space
// `shape` (which the inputs' shapes must broadcast to).
template <class T, class F, class... A>
Array<T> map_to(const Dims& shape, F f, const A&... in) {
    constexpr std::size_t N = sizeof...(A);
    Array<T> out = Array<T>::from_shape(shape);
    if (out.size() == 0) return out;
    const std::array<Dims, N> shapes{dims(in.shape())...};
    std::array<const Dims*, N> ptrs;
    for (std::size_t k = 0; k < N; ++k) ptrs[k] = &shapes[k];
    const Walk<N> w = plan<N>(shape, ptrs);
    const std::size_t outer = w.shape.size() - 1, n = w.shape.back();
    unsigned mask = 0;
    for (std::size_t k = 0; k < N; ++k)
        if (w.strides[k].back() == 1) mask |= 1u << k;
    const std::array<const T*, N> base{in.data()...};
    if (outer == 1 && n < 8) {
        std::array<std::size_t, N> so, si;
        for (std::size_t k = 0; k < N; ++k) {
            so[k] = w.strides[k][0];
            si[k] = w.strides[k][1];
        }
        detail::short_rows(w.shape[0], n, out.data(), base, so, si, f, std::make_index_sequence<N>{});
        return out;
    }
    std::array<const T*, N> p = base;
    Dims index(outer, 0);
    T* o = out.data();
    for (std::size_t rows = out.size() / n; rows-- > 0; o += n) {
        detail::row_for<0>(mask, n, o, p, f);
        // Next row: an odometer over the outer axes.
        for (std::size_t a = outer; a-- > 0;) {
            for (std::size_t k = 0; k < N; ++k) p[k] += w.strides[k][a];
            if (++index[a] < w.shape[a]) break;
            for (std::size_t k = 0; k < N; ++k) p[k] -= w.strides[k][a] * w.shape[a];
            index[a] = 0;
        }
    }
    return out;
}

// The same with the output shape the inputs broadcast to.
template <class T, class F, class A0, class... A>
Array<T> map(F f, const A0& in0, const A&... in) {
    const auto& s0 = in0.shape();
    [[maybe_unused]] auto same = [&s0](const auto& s) { return s.size() == s0.size() && std::equal(s.begin(), s.end(), s0.begin()); };
    if ((same(in.shape()) && ...)) {  // equal shapes, the common case: one contiguous row, nothing to plan
        Array<T> out = Array<T>::from_shape(s0);
        const std::array<const T*, 1 + sizeof...(A)> p{in0.data(), in.data()...};
        detail::row<(1u << (1 + sizeof...(A))) - 1>(out.size(), out.data(), p, f,
                                                    std::make_index_sequence<1 + sizeof...(A)>{});
        return out;
    }
    Dims out = dims(s0);
    if constexpr (sizeof...(A) > 0)
        for (const Dims& s : {dims(in.shape())...}) out = broadcast_dims({&out, &s});
    return map_to<T>(out, f, in0, in...);
}

// An elementwise op's forward, from its function of one element of each
// input: hand it to Op::forward (core/op.hpp), as
//
//   auto y = op.forward(kernels::elementwise<T, 2>([](T x, T y) { return x + y; }));
//
// Called on whole arrays it is map() (numpy broadcasting). Its block() runs
// the same function on n contiguous elements, each operand either contiguous
// (bit k of `contiguous` set) or one value repeated: a captured program
// (core/compile/) runs chains of such ops block by block in one loop
// (fusion), with the same per-element arithmetic as map().
template <class T, std::size_t N, class F>
struct Elementwise {
    F f;

    template <std::size_t M = N, std::enable_if_t<M == 1, int> = 0>
    Array<T> operator()(const Array<T>& a) const {
        return map<T>(f, a);
    }
    template <std::size_t M = N, std::enable_if_t<M == 2, int> = 0>
    Array<T> operator()(const Array<T>& a, const Array<T>& b) const {
        return map<T>(f, a, b);
    }
    template <std::size_t M = N, std::enable_if_t<M == 3, int> = 0>
    Array<T> operator()(const Array<T>& a, const Array<T>& b, const Array<T>& c) const {
        return map<T>(f, a, b, c);
    }
    void block(T* out, const T* const* in, unsigned contiguous, std::size_t n) const {
        std::array<const T*, N> p;
        std::copy(in, in + N, p.begin());
        detail::row_for<0>(contiguous, n, out, p, f);
    }
};

// The forward of an op that moves elements without changing them
// (reshape, broadcast_to): `whole` on whole arrays; block() copies its one
// input's block (or repeats its one value), so a captured program can keep
// such an op inside a fused run, its input read in the output's order
// (same element count, or broadcast to the output).
template <class T, class F>
struct Copy {
    F whole;
    Array<T> operator()(const Array<T>& a) const { return whole(a); }
    void block(T* out, const T* const* in, unsigned contiguous, std::size_t n) const {
        if (contiguous & 1u) std::copy(in[0], in[0] + n, out);
        else std::fill(out, out + n, in[0][0]);
    }
};
template <class T, class F>
Copy<T, F> copy(F whole) {
    return {std::move(whole)};
}

template <class T, std::size_t N, class F>
Elementwise<T, N, F> elementwise(F f) {
    static_assert(N >= 1 && N <= 3, "kernels::elementwise: 1 to 3 inputs");
    // Called as const: a function that keeps state between elements (a
    // mutable lambda) would see it restart at every block of a fused replay.
    static_assert((N == 1 && std::is_invocable_r_v<T, const F&, T>) ||
                      (N == 2 && std::is_invocable_r_v<T, const F&, T, T>) ||
                      (N == 3 && std::is_invocable_r_v<T, const F&, T, T, T>),
                  "kernels::elementwise<T, N>(f): f takes N values of type T and returns one, and is callable "
                  "as const (no mutable lambda: it must not keep state between elements)");
    return {std::move(f)};
}

}  // namespace tapegrad::kernels
