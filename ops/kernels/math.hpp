// Vectorised functions of contiguous arrays (xsimd batches directly) and
// the reductions along the last or leading axes, as row loops. Used by
// ops/unary.cpp and ops/reduce.cpp, and through them by every VJP written
// with those ops. Instantiated for float and double in math.cpp.
#pragma once

#include <algorithm>
#include <cstddef>

#include <tapegrad/ops/kernels/elementwise.hpp>

namespace tapegrad::kernels {

enum class Fn { exp, log, log1p, sqrt, abs, tanh, erf, sin, cos, sigmoid, softplus };

// y[i] = fn(x[i]), same shape. Every element, the last partial batch
// included, goes through the same SIMD code, so a value's result does not
// depend on where it sits in the array.
template <class T>
Array<T> apply(Fn fn, const Array<T>& x);
// The same on n contiguous elements, x to y (a block of a fused loop,
// core/compile/). Each element's result is the one apply() gives it.
template <class T>
void apply_n(Fn fn, const T* x, T* y, std::size_t n);

// fn as an op's forward (Op::forward), fusable like kernels::elementwise:
//   auto y = op.forward(kernels::Unary<T>{Fn::exp});
template <class T>
struct Unary {
    Fn fn;
    Array<T> operator()(const Array<T>& x) const { return apply(fn, x); }
    void block(T* out, const T* const* in, unsigned contiguous, std::size_t n) const {
        if (contiguous & 1u) return apply_n(fn, in[0], out, n);
        T v;  // one value repeated (a single-element input)
        apply_n(fn, in[0], &v, 1);
        std::fill(out, out + n, v);
    }
};

enum class Fold { sum, max, min };

// Folds each run of `cols` consecutive elements of x (its trailing axes,
// or all of it) into one value; `shape` is the result's shape, with
// x.size() / cols elements. max and min need cols > 0; a sum of none is 0.
template <class T>
Array<T> fold_inner(Fold fold, const Array<T>& x, std::size_t cols, const Dims& shape);

// Folds the leading `k` axes of x into one row of the remaining axes, given
// the result's shape `shape` (whose size is that row's). Leading axes must
// be non-empty for max/min.
template <class T>
Array<T> fold_leading(Fold fold, const Array<T>& x, std::size_t k, const Dims& shape);

// log(sum(exp(x))) over runs of `cols` consecutive elements (cols > 0), or
// over the leading `k` axes; shapes as above. A slice of -inf gives -inf, a
// +inf gives +inf, NaN propagates.
template <class T>
Array<T> logsumexp_inner(const Array<T>& x, std::size_t cols, const Dims& shape);
template <class T>
Array<T> logsumexp_leading(const Array<T>& x, std::size_t k, const Dims& shape);

// The row loops of fold_inner and logsumexp_inner on raw rows: out[r] from
// in[r * cols, (r + 1) * cols). The whole-array forms call these, and so
// does a fused replay on a block of rows, so both give the same bits.
template <class T>
void fold_rows(Fold fold, const T* in, std::size_t rows, std::size_t cols, T* out);
template <class T>
void logsumexp_rows(const T* in, std::size_t rows, std::size_t cols, T* out);
// fold_leading's loop: rows of `cols` elements folded into out (first: out
// starts as the first row; else the rows are folded into what out holds),
// so a fused replay can fold a block of rows at a time, in the same order.
template <class T>
void fold_columns(Fold fold, const T* in, std::size_t rows, std::size_t cols, T* out, bool first);

// The forward of a reduction handed to Op::forward (core/op.hpp) when its
// input is rows of `cols` elements: over the trailing axes (each row to one
// value) or over the leading ones (the rows folded into one row of `cols`).
// Called on whole arrays it is `whole`; rows() runs the same loop on `rows`
// contiguous rows (leading: into what `out` holds unless `first`), so a
// captured program can fold the reduction into a fused run of elementwise
// ops (core/compile/fuse.cpp, "Fusion").
template <class T, class F>
struct RowReduction {
    F whole;
    std::size_t cols;
    Fold fold;
    bool logsumexp;  // log(sum(exp)) instead of `fold`
    bool leading;    // over the leading axes (a bias gradient's sum over the batch)
    Array<T> operator()(const Array<T>& x) const { return whole(x); }
    void rows(T* out, const T* in, std::size_t rows, bool first) const {
        if (leading) fold_columns(fold, in, rows, cols, out, first);
        else if (logsumexp) logsumexp_rows(in, rows, cols, out);
        else fold_rows(fold, in, rows, cols, out);
    }
};
template <class T, class F>
RowReduction<T, F> row_reduction(F whole, std::size_t cols, Fold fold, bool logsumexp = false) {
    return {std::move(whole), cols, fold, logsumexp, false};
}
template <class T, class F>
RowReduction<T, F> leading_reduction(F whole, std::size_t cols, Fold fold) {
    return {std::move(whole), cols, fold, false, true};
}

}  // namespace tapegrad::kernels
