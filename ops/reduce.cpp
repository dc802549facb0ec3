// Reductions: forward and vector-Jacobian product side by side. Along the
// last or the leading axes they are the row loops of ops/kernels/math.cpp;
// other axes use xtensor's immediate evaluation (about 10x faster than
// lazy along an axis, see the shared notes).
#include <tapegrad/ops/reduce.hpp>

#include <algorithm>
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>
#include <tapegrad/ops/kernels/math.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::VjpContext;
using kernels::map;

namespace {

// Which axes a reduction covers, and the shapes it produces.
struct Reduction {
    std::vector<std::size_t> axes;  // sorted, unique
    Shape kept;                     // reduced axes as 1 (keepdims shape)
    Shape out;                      // the result's shape
    std::size_t count = 1;          // elements folded into each result
};

Reduction plan(const char* op, const Shape& in, const Axes& axes, bool keepdims) {
    Reduction r;
    if (axes.empty()) {
        for (std::size_t i = 0; i < in.size(); ++i) r.axes.push_back(i);
    } else {
        for (auto a : axes) r.axes.push_back(detail::normalize_axis(op, a, in.size()));
        std::sort(r.axes.begin(), r.axes.end());
        if (std::adjacent_find(r.axes.begin(), r.axes.end()) != r.axes.end())
            throw ValueError(std::string(op) + ": an axis is given twice");
    }
    r.kept = in;
    for (auto a : r.axes) {
        r.count *= in[a];
        r.kept[a] = 1;
    }
    for (std::size_t i = 0; i < in.size(); ++i)
        if (keepdims || !std::binary_search(r.axes.begin(), r.axes.end(), i)) r.out.push_back(r.kept[i]);
    return r;
}

// k when `axes` (sorted) are exactly 0, 1, ..., k-1, 0 otherwise: folded
// row by row, also for narrow rows (a bias of 2 or 10 columns), where
// xtensor's immediate reducer would allocate two temporaries on every call.
template <class T>
std::size_t leading_axes(const Array<T>&, const std::vector<std::size_t>& axes) {
    for (std::size_t i = 0; i < axes.size(); ++i)
        if (axes[i] != i) return 0;
    return axes.size();
}

// The rows the leading k axes of x make (their sizes' product).
template <class T>
std::size_t rows_of(const Array<T>& x, std::size_t k) {
    std::size_t rows = 1;
    for (std::size_t i = 0; i < k; ++i) rows *= x.shape()[i];
    return rows;
}

// The number of elements in each run the axes cover when they are the
// last axes of x (all of them included), 0 otherwise.
template <class T>
std::size_t trailing_run(const Array<T>& x, const std::vector<std::size_t>& axes) {
    const std::size_t first = x.dimension() - axes.size();
    std::size_t run = 1;
    for (std::size_t i = 0; i < axes.size(); ++i) {
        if (axes[i] != first + i) return 0;
        run *= x.shape()[axes[i]];
    }
    return run;
}

// Sum / maximum / minimum over `axes`: the
// kernels' row loops over the trailing or the leading axes (the cases of
// softmax, bias gradients, batch means and full sums), xtensor's immediate
// reducer for any other set of axes. That reducer reads out of bounds on an
// input with no elements (summing [2, 0, 3] over axes 0 and 2), so an empty
// input never reaches it: its sums are 0 (max and min of nothing are
// refused by their callers before they get here).
//
// The result has shape `shape`: the reduced axes kept as size 1, or the
// op's output shape (the same elements): the row loops write it directly,
// with no reshape afterwards.
template <class T>
Array<T> fold_axes(kernels::Fold fold, const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& shape) {
    if (x.size() == 0) return Array<T>(xt::zeros<T>(shape));
    if (std::size_t run = trailing_run(x, axes)) return kernels::fold_inner(fold, x, run, kernels::dims(shape));
    if (std::size_t k = leading_axes(x, axes)) return kernels::fold_leading(fold, x, k, kernels::dims(shape));
    Array<T> out = fold == kernels::Fold::sum ? Array<T>(xt::sum(x, axes, xt::evaluation_strategy::immediate))
                 : fold == kernels::Fold::max ? Array<T>(xt::amax(x, axes, xt::evaluation_strategy::immediate))
                                              : Array<T>(xt::amin(x, axes, xt::evaluation_strategy::immediate));
    out.reshape(shape);
    return out;
}
template <class T>
Array<T> sum_kept(const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& kept) {
    return fold_axes(kernels::Fold::sum, x, axes, kept);
}

template <class T>
BasicTensor<T> as_kept(const BasicTensor<T>& g, const Shape& kept) {
    return g.shape_vector() == kept ? g : reshape(g, std::vector<std::int64_t>(kept.begin(), kept.end()));
}

template <class T>
void require_elements(const char* op, const BasicTensor<T>& x, const Reduction& r) {
    if (r.count == 0)
        throw ValueError(std::string(op) + ": cannot reduce over an empty dimension (shape " +
                         detail::shape_str(x.shape()) + ")");
}

// A reduction of a tensor with no elements: zeros, with a VJP that needs no
// work (fold_axes would give the same zeros, via a longer path).
template <class T>
BasicTensor<T> reduce_empty(const char* name, const BasicTensor<T>& x, const Reduction& r) {
    Op<T> op(name, {x});
    auto y = op.forward([out = r.out](const Array<T>&) { return Array<T>(xt::zeros<T>(out)); });  // a sum of nothing is 0
    return op.record(y, [in = x.shape_vector()](VjpContext<T>&, const BasicTensor<T>&) {
        return Grads<T>{BasicTensor<T>::zeros(in)};
    });
}

}  // namespace

template <class T>
BasicTensor<T> sum(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    auto r = plan("sum", x.shape_vector(), axes, keepdims);
    if (x.size() == 0) return reduce_empty("sum", x, r);
    Op<T> op("sum", {x});
    auto whole = [r](const Array<T>& v) { return fold_axes(kernels::Fold::sum, v, r.axes, r.out); };
    // Over the trailing or the leading axes: row by row, which a fused
    // replay can do too.
    const std::size_t run = trailing_run(x.value(), r.axes), lead = run ? 0 : leading_axes(x.value(), r.axes);
    auto y = run    ? op.forward(kernels::row_reduction<T>(whole, run, kernels::Fold::sum))
             : lead ? op.forward(kernels::leading_reduction<T>(whole, x.size() / rows_of(x.value(), lead), kernels::Fold::sum))
                    : op.forward(whole);
    // Over the leading axes (all of them: a loss's sum or mean) g broadcasts
    // back as it is, numpy aligning it with the trailing axes: no reshape op.
    bool leading = true;
    for (std::size_t i = 0; i < r.axes.size(); ++i) leading = leading && r.axes[i] == i;
    return op.record(y, [kept = std::move(r.kept), in = x.shape_vector(), leading](VjpContext<T>&,
                                                                                  const BasicTensor<T>& g) {
        return Grads<T>{broadcast_to(leading ? g : as_kept(g, kept), in)};
    });
}

template <class T>
BasicTensor<T> mean(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    auto r = plan("mean", x.shape_vector(), axes, keepdims);
    require_elements("mean", x, r);
    return mul(sum(x, axes, keepdims), Scalar<T>(1) / static_cast<T>(r.count));
}

namespace {
template <class T>
BasicTensor<T> extreme(const char* name, const BasicTensor<T>& x, const Axes& axes, bool keepdims, bool largest) {
    auto r = plan(name, x.shape_vector(), axes, keepdims);
    require_elements(name, x, r);
    if (x.size() == 0) return reduce_empty(name, x, r);  // another axis is empty: so is the result
    Op<T> op(name, {x});
    const auto fold = largest ? kernels::Fold::max : kernels::Fold::min;
    auto y = op.forward([r, fold](const Array<T>& v) { return fold_axes(fold, v, r.axes, r.out); });
    return op.record(y, [r = std::move(r), sx = op.save(x), sy = op.save_output(y)](VjpContext<T>& c,
                                                                                   const BasicTensor<T>& g) {
        // The gradient goes to the elements equal to the extreme, split evenly.
        auto share = detail::no_grad_op<T>("extreme_share", {c.unpack(sx), as_kept(c.unpack(sy), r.kept)},
                                           [r](const Array<T>& v, const Array<T>& m) {
            Array<T> hits = map<T>([](T e, T k) { return e == k ? T(1) : T(0); }, v, m);
            Array<T> counts = sum_kept(hits, r.axes, r.kept);
            return map<T>([](T h, T n) { return h / n; }, hits, counts);
        });
        return Grads<T>{as_kept(g, r.kept) * share};
    });
}
}  // namespace

template <class T>
BasicTensor<T> max(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    return extreme("max", x, axes, keepdims, true);
}
template <class T>
BasicTensor<T> min(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    return extreme("min", x, axes, keepdims, false);
}

namespace {
// The result in the op's output shape r.out.
template <class T>
Array<T> logsumexp_out(const Array<T>& x, const Reduction& r) {
    // One pass for the maximum, one fused pass for the sum of exponentials.
    if (std::size_t run = trailing_run(x, r.axes)) return kernels::logsumexp_inner(x, run, kernels::dims(r.out));
    if (std::size_t k = leading_axes(x, r.axes)) return kernels::logsumexp_leading(x, k, kernels::dims(r.out));
    // Shift by the maximum so exp never overflows; an all -inf slice keeps
    // shift 0 and gives -inf.
    Array<T> shift = map<T>([](T m) { return std::isfinite(m) ? m : T(0); },
                            fold_axes(kernels::Fold::max, x, r.axes, r.kept));
    Array<T> e = kernels::apply(kernels::Fn::exp, map<T>([](T v, T s) { return v - s; }, x, shift));
    Array<T> y = map<T>([](T t, T s) { return std::log(t) + s; }, sum_kept(e, r.axes, r.kept), shift);
    y.reshape(r.out);
    return y;
}
}  // namespace

template <class T>
BasicTensor<T> logsumexp(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    auto r = plan("logsumexp", x.shape_vector(), axes, keepdims);
    require_elements("logsumexp", x, r);
    if (x.size() == 0) return reduce_empty("logsumexp", x, r);
    Op<T> op("logsumexp", {x});
    auto whole = [r](const Array<T>& v) { return logsumexp_out(v, r); };
    const std::size_t run = trailing_run(x.value(), r.axes);
    auto y = run ? op.forward(kernels::row_reduction<T>(whole, run, kernels::Fold::sum, true)) : op.forward(whole);
    return op.record(y, [kept = std::move(r.kept), sx = op.save(x), sy = op.save_output(y)](VjpContext<T>& c,
                                                                                          const BasicTensor<T>& g) {
        // d logsumexp / dx = softmax(x) = exp(x - y)
        return Grads<T>{as_kept(g, kept) * exp(c.unpack(sx) - as_kept(c.unpack(sy), kept))};
    });
}

template <class T>
BasicTensor<T> sum_to(const BasicTensor<T>& x, const Shape& shape) {
    Shape in = x.shape_vector();
    if (in == shape) return x;
    if (detail::broadcast_shapes("sum_to", shape, in) != in)
        throw ShapeError("sum_to: a gradient of shape " + detail::shape_str(in) +
                         " cannot be reduced to shape " + detail::shape_str(shape));
    // Sum the leading axes the target lacks, and the axes where it has 1.
    std::vector<std::size_t> axes;
    const std::size_t lead = in.size() - shape.size();
    for (std::size_t i = 0; i < in.size(); ++i)
        if (i < lead || (shape[i - lead] == 1 && in[i] != 1)) axes.push_back(i);
    Op<T> op("sum_to", {x});
    const std::size_t run = x.size() ? trailing_run(x.value(), axes) : 0;
    const std::size_t leading = x.size() && !run ? leading_axes(x.value(), axes) : 0;
    const std::size_t cols = leading ? x.size() / rows_of(x.value(), leading) : 0;
    auto whole = [axes = std::move(axes), shape](const Array<T>& v) {
        return fold_axes(kernels::Fold::sum, v, axes, shape);
    };
    // Over the trailing axes (a gradient of a row statistic) or the leading
    // ones (a bias gradient): row by row, which a fused replay can do too.
    auto y = run       ? op.forward(kernels::row_reduction<T>(whole, run, kernels::Fold::sum))
             : leading ? op.forward(kernels::leading_reduction<T>(whole, cols, kernels::Fold::sum))
                       : op.forward(whole);
    return op.record(y, [in = std::move(in)](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{broadcast_to(g, in)}; });
}

#define TAPEGRAD_INSTANTIATE(T)                                                   \
    template BasicTensor<T> sum(const BasicTensor<T>&, const Axes&, bool);       \
    template BasicTensor<T> mean(const BasicTensor<T>&, const Axes&, bool);      \
    template BasicTensor<T> max(const BasicTensor<T>&, const Axes&, bool);       \
    template BasicTensor<T> min(const BasicTensor<T>&, const Axes&, bool);       \
    template BasicTensor<T> logsumexp(const BasicTensor<T>&, const Axes&, bool); \
    template BasicTensor<T> sum_to(const BasicTensor<T>&, const Shape&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
