// Reductions: forward and vector-Jacobian product side by side. Reductions
// use xtensor's immediate evaluation (about 10x faster than lazy along an
// axis, see the shared notes).
#include <tapegrad/ops/reduce.hpp>

#include <algorithm>
#include <optional>

#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::VjpContext;

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

// Over the last axis of a row-major array xtensor's reducer is ~8x slower
// than over the first; a loop per row with independent partial results
// (which the compiler vectorises without reordering any one sum) is fast.
// With no `init`, each row starts from its own first element (max/min).
template <class T, class Fold>
Array<T> fold_rows(const Array<T>& x, std::optional<T> init, Fold fold) {
    const std::size_t cols = x.shape().back(), rows = cols ? x.size() / cols : 0;
    auto shape = x.shape();
    shape.back() = 1;
    Array<T> out = Array<T>::from_shape(shape);
    constexpr std::size_t lanes = 16;
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = x.data() + r * cols;
        const T start = init ? *init : p[0];
        T part[lanes];
        std::fill(part, part + lanes, start);
        std::size_t c = 0;
        for (; c + lanes <= cols; c += lanes)
            for (std::size_t j = 0; j < lanes; ++j) part[j] = fold(part[j], p[c + j]);
        T acc = start;
        for (std::size_t j = 0; j < lanes; ++j) acc = fold(acc, part[j]);
        for (; c < cols; ++c) acc = fold(acc, p[c]);
        out.data()[r] = acc;
    }
    return out;
}

// A sum over the leading axes [0, k) of a row-major array (a bias
// gradient, a batch mean): row after row added into one output row, a
// contiguous loop the compiler vectorises, written straight into the result
// (xtensor's immediate reducer would allocate a temporary of its own type).
template <class T>
Array<T> sum_leading(const Array<T>& x, std::size_t k, const Shape& shape) {
    std::size_t rows = 1, cols = 1;
    for (std::size_t i = 0; i < k; ++i) rows *= x.shape()[i];
    for (std::size_t i = k; i < x.dimension(); ++i) cols *= x.shape()[i];  // also when rows is 0: a sum of nothing is 0
    Array<T> out = Array<T>::from_shape(shape);
    T* o = out.data();
    std::fill(o, o + cols, T(0));
    for (std::size_t r = 0; r < rows; ++r) {
        const T* p = x.data() + r * cols;
        for (std::size_t c = 0; c < cols; ++c) o[c] += p[c];
    }
    return out;
}

// k when `axes` (sorted) are exactly 0, 1, ..., k-1 and the rows left are
// wide enough for sum_leading to pay; 0 otherwise (a full sum keeps
// xtensor's reducer, which splits one long sum into SIMD lanes).
template <class T>
std::size_t leading_sum_axes(const Array<T>& x, const std::vector<std::size_t>& axes) {
    for (std::size_t i = 0; i < axes.size(); ++i)
        if (axes[i] != i) return 0;
    std::size_t cols = 1;
    for (std::size_t i = axes.size(); i < x.dimension(); ++i) cols *= x.shape()[i];
    return cols >= 16 ? axes.size() : 0;
}

bool last_axis_only(const std::vector<std::size_t>& axes, std::size_t ndim) {
    return ndim >= 2 && axes.size() == 1 && axes[0] == ndim - 1;
}

// Sum / maximum / minimum over `axes`, keeping them as size-1 axes.
template <class T>
Array<T> sum_kept(const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& kept) {
    if (last_axis_only(axes, x.dimension()) && x.shape().back() > 0)
        return fold_rows<T>(x, T(0), [](T a, T b) { return a + b; });
    if (std::size_t k = leading_sum_axes(x, axes)) return sum_leading(x, k, kept);
    Array<T> out = xt::sum(x, axes, xt::evaluation_strategy::immediate);
    out.reshape(kept);
    return out;
}
template <class T>
Array<T> extreme_kept(const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& kept,
                           bool largest) {
    if (last_axis_only(axes, x.dimension()) && x.shape().back() > 0) {
        return largest ? fold_rows<T>(x, std::nullopt, [](T a, T b) { return b > a ? b : a; })
                       : fold_rows<T>(x, std::nullopt, [](T a, T b) { return b < a ? b : a; });
    }
    Array<T> out = largest ? Array<T>(xt::amax(x, axes, xt::evaluation_strategy::immediate))
                                : Array<T>(xt::amin(x, axes, xt::evaluation_strategy::immediate));
    out.reshape(kept);
    return out;
}

template <class T>
Array<T> reshaped(Array<T>&& a, const Shape& shape) {
    a.reshape(shape);
    return std::move(a);
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

// xtensor's immediate reducers crash (read out of bounds) on an input with no
// elements, e.g. summing [0, 3] over axis 1; such reductions are done here.
template <class T>
BasicTensor<T> reduce_empty(const char* name, const BasicTensor<T>& x, const Reduction& r) {
    Op<T> op(name, {x});
    auto y = op.output(Array<T>(xt::zeros<T>(r.out)));  // a sum of nothing is 0
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
    auto y = op.output(reshaped<T>(sum_kept(x.value(), r.axes, r.kept), r.out));
    return op.record(y, [r, in = x.shape_vector()](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{broadcast_to(as_kept(g, r.kept), in)};
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
    Array<T> kept = extreme_kept(x.value(), r.axes, r.kept, largest);
    auto y = op.output(reshaped<T>(Array<T>(kept), r.out));
    return op.record(y, [r, sx = op.save(x), kept = std::move(kept)](VjpContext<T>& c, const BasicTensor<T>& g) {
        // The gradient goes to the elements equal to the extreme, split evenly.
        Array<T> hits = xt::cast<T>(xt::equal(c.unpack(sx).value(), kept));
        Array<T> counts = sum_kept(hits, r.axes, r.kept);
        return Grads<T>{as_kept(g, r.kept) * BasicTensor<T>(Array<T>(hits / counts))};
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

template <class T>
BasicTensor<T> logsumexp(const BasicTensor<T>& x, const Axes& axes, bool keepdims) {
    auto r = plan("logsumexp", x.shape_vector(), axes, keepdims);
    require_elements("logsumexp", x, r);
    if (x.size() == 0) return reduce_empty("logsumexp", x, r);
    Op<T> op("logsumexp", {x});
    // Shift by the maximum so exp never overflows; an all -inf slice keeps
    // shift 0 and gives -inf.
    Array<T> shift = extreme_kept(x.value(), r.axes, r.kept, true);
    shift = xt::where(xt::isfinite(shift), shift, T(0));
    Array<T> total = sum_kept(Array<T>(xt::exp(x.value() - shift)), r.axes, r.kept);
    auto y = op.output(reshaped<T>(Array<T>(xt::log(total) + shift), r.out));
    return op.record(y, [r, sx = op.save(x), sy = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        // d logsumexp / dx = softmax(x) = exp(x - y)
        return Grads<T>{as_kept(g, r.kept) * exp(c.unpack(sx) - as_kept(c.unpack(sy), r.kept))};
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
    const std::size_t k = leading_sum_axes(x.value(), axes);
    auto y = op.output(k ? sum_leading(x.value(), k, shape)
                         : reshaped<T>(xt::sum(x.value(), axes, xt::evaluation_strategy::immediate), shape));
    return op.record(y, [in](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{broadcast_to(g, in)}; });
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
