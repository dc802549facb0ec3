// Slicing, joining and indexing: forward and vector-Jacobian product side by
// side.
//
// Every op here views its tensors as [outer, n, inner] blocks around the
// chosen axis (row-major, contiguous), so forward and backward are plain
// loops that copy runs of `inner` elements.
//
// The adjoints of picking elements are scattering ones: slice's adjoint
// writes the gradient into zeros, index_select's and gather's add it up
// (repeated indices accumulate). Those scatters are internal ops whose own
// VJP is the pick again, so second derivatives (create_graph) work.
#include <tapegrad/ops/indexing.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <numeric>
#include <string>

#include <tapegrad/core/numel.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {

using detail::Grads;
using detail::ArrayList;
using detail::Op;
using detail::VjpContext;

namespace {

// Sizes of the [outer, n, inner] view of `shape` around `axis`.
struct Blocks {
    std::size_t outer = 1, n = 1, inner = 1;
};
template <class S>
Blocks blocks(const S& shape, std::size_t axis) {
    Blocks b;
    for (std::size_t i = 0; i < axis; ++i) b.outer *= shape[i];
    b.n = shape[axis];
    for (std::size_t i = axis + 1; i < shape.size(); ++i) b.inner *= shape[i];
    return b;
}

// How many outer blocks a loop filling or reading `y` visits: none when y
// has no elements, however large the other dimensions (an [2^40, 3, 0]
// tensor looped 2^40 times over empty blocks).
template <class A>
std::size_t outer_runs(const Blocks& b, const A& y) {
    return y.size() ? b.outer : 0;
}

template <class S>
Shape with_dim(const S& shape, std::size_t axis, std::size_t size) {
    Shape s(shape.begin(), shape.end());
    s[axis] = size;
    return s;
}

void check_index(const char* op, std::int64_t index, std::size_t size, std::size_t axis) {
    if (index < 0 || static_cast<std::size_t>(index) >= size)
        throw ValueError(std::string(op) + ": index " + std::to_string(index) + " is out of range for axis " +
                         std::to_string(axis) + " of size " + std::to_string(size));
}

// A copy of an index an op keeps: under capture, the program rebinds it
// when `given` is one of its inputs (the labels of each batch).
template <class T>
void bind_index(const Index& given, std::shared_ptr<Index> stored) {
    if (auto* sink = detail::capture_sink<T>()) sink->index(given, std::move(stored));
}

// Positions start, start+step, ... along one axis (what slice picks).
struct Range {
    std::size_t start = 0, step = 1, count = 0;
};

// --- slice and its adjoint ------------------------------------------------

template <class T>
BasicTensor<T> slice_scatter(const BasicTensor<T>& g, const Shape& in, std::size_t axis, Range r);

template <class T>
BasicTensor<T> slice_range(const BasicTensor<T>& x, std::size_t axis, Range r) {
    Op<T> op("slice", {x});
    auto out = op.forward([axis, r](const Array<T>& v) {
        const Blocks b = blocks(v.shape(), axis);
        Array<T> y = Array<T>::from_shape(with_dim(v.shape(), axis, r.count));
        const T* src = v.data();
        T* dst = y.data();
        for (std::size_t o = 0; o < outer_runs(b, y); ++o)
            for (std::size_t j = 0; j < r.count; ++j, dst += b.inner)
                std::copy_n(src + (o * b.n + r.start + j * r.step) * b.inner, b.inner, dst);
        return y;
    });
    return op.record(out, [in = x.shape_vector(), axis, r](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{slice_scatter(g, in, axis, r)};
    });
}

// Zeros of shape `in` with g written at the sliced positions.
template <class T>
BasicTensor<T> slice_scatter(const BasicTensor<T>& g, const Shape& in, std::size_t axis, Range r) {
    Op<T> op("slice_backward", {g});
    auto out = op.forward([in, axis, r](const Array<T>& v) {
        const Blocks b = blocks(in, axis);
        Array<T> y = Array<T>::from_shape(in);  // (xt::zeros would copy the shape to the heap)
        y.fill(T(0));
        const T* src = v.data();
        for (std::size_t o = 0; o < outer_runs(b, y); ++o)
            for (std::size_t j = 0; j < r.count; ++j, src += b.inner)
                std::copy_n(src, b.inner, y.data() + (o * b.n + r.start + j * r.step) * b.inner);
        return y;
    });
    return op.record(out, [axis, r](VjpContext<T>&, const BasicTensor<T>& gg) {
        return Grads<T>{slice_range(gg, axis, r)};
    });
}

// --- index_select / gather and their scatter-add adjoints -----------------

// Where each picked element comes from. index_select picks whole slices
// (the index varies along the axis only); gather picks per element (the
// index has the output's shape).
struct Pick {
    std::size_t axis = 0;
    Index index;
    Shape index_shape;  // gather only
    const char* labels_of = nullptr;  // a loss's class labels (detail::gather_labels): errors name it
};

template <class T>
BasicTensor<T> scatter_add(const BasicTensor<T>& g, const Shape& in, std::shared_ptr<const Pick> pick, bool gather);

// out[o, j, i] = x[o, index(o, j, i), i]
template <class T>
BasicTensor<T> pick(const BasicTensor<T>& x, std::shared_ptr<const Pick> p, bool gather) {
    const char* name = gather ? "gather" : "index_select";
    detail::checked_numel(name, gather ? p->index_shape : with_dim(x.shape(), p->axis, p->index.size()));
    Op<T> op(name, {x});
    // The index is read when the forward runs: a captured program rebinds
    // it (the class labels of a batch), so it is checked here too.
    auto out = op.forward([p, gather, name](const Array<T>& v) {
        const Blocks b = blocks(v.shape(), p->axis);
        // One comparison per index (unsigned: a negative index is huge);
        // the error names the first bad one.
        const std::size_t count = p->index.size();
        const std::int64_t* idx = p->index.data();
        bool ok = true;
        for (std::size_t k = 0; k < count; ++k) ok &= std::uint64_t(idx[k]) < b.n;
        for (std::size_t k = 0; !ok && k < count; ++k) {
            const std::int64_t i = idx[k];
            if (p->labels_of && (i < 0 || i >= std::int64_t(b.n)))
                throw ValueError(std::string(p->labels_of) + ": label " + std::to_string(i) + " (at position " +
                                 std::to_string(k) + ") is out of range for " + std::to_string(b.n) + " classes");
            check_index(name, i, b.n, p->axis);
        }
        Shape selected;  // index_select's shape; gather's is the index's (no copy on a replay)
        if (!gather) selected = with_dim(v.shape(), p->axis, p->index.size());
        const Shape& out_shape = gather ? p->index_shape : selected;
        const std::size_t m = out_shape[p->axis];
        Array<T> y = Array<T>::from_shape(out_shape);
        const T* src = v.data();
        T* dst = y.data();
        for (std::size_t o = 0; o < outer_runs(b, y); ++o)
            for (std::size_t j = 0; j < m; ++j, dst += b.inner) {
                const T* row = src + o * b.n * b.inner;
                if (!gather) {
                    std::copy_n(row + std::size_t(p->index[j]) * b.inner, b.inner, dst);
                } else {
                    const std::int64_t* idx = p->index.data() + (o * m + j) * b.inner;
                    for (std::size_t i = 0; i < b.inner; ++i) dst[i] = row[std::size_t(idx[i]) * b.inner + i];
                }
            }
        return y;
    });
    return op.record(out, [in = x.shape_vector(), p, gather](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{scatter_add(g, in, p, gather)};
    });
}

// The adjoint of pick: zeros of shape `in`, g added at the picked positions.
template <class T>
BasicTensor<T> scatter_add(const BasicTensor<T>& g, const Shape& in, std::shared_ptr<const Pick> p, bool gather) {
    Op<T> op(gather ? "gather_backward" : "index_select_backward", {g});
    auto out = op.forward([in, p, gather](const Array<T>& v) {
        const Blocks b = blocks(in, p->axis);
        const std::size_t m = v.shape()[p->axis];
        Array<T> y = Array<T>::from_shape(in);  // (xt::zeros would copy the shape to the heap)
        y.fill(T(0));
        const T* src = v.data();
        for (std::size_t o = 0; o < outer_runs(b, y); ++o)
            for (std::size_t j = 0; j < m; ++j, src += b.inner) {
                T* row = y.data() + o * b.n * b.inner;
                if (!gather) {
                    T* dst = row + std::size_t(p->index[j]) * b.inner;
                    for (std::size_t i = 0; i < b.inner; ++i) dst[i] += src[i];
                } else {
                    const std::int64_t* idx = p->index.data() + (o * m + j) * b.inner;
                    for (std::size_t i = 0; i < b.inner; ++i) row[std::size_t(idx[i]) * b.inner + i] += src[i];
                }
            }
        return y;
    });
    return op.record(out, [p, gather](VjpContext<T>&, const BasicTensor<T>& gg) {
        return Grads<T>{pick(gg, p, gather)};
    });
}

// --- joining ---------------------------------------------------------------

template <class T>
void require_inputs(const char* op, const std::vector<BasicTensor<T>>& xs) {
    if (xs.empty()) throw ValueError(std::string(op) + ": needs at least one tensor, got an empty list");
    for (std::size_t i = 0; i < xs.size(); ++i)
        if (!xs[i].defined()) throw ValueError(std::string(op) + ": tensor " + std::to_string(i) + " is undefined");
}

// Copies each xs[i] viewed as [outer, n_i, inner] into its place in y, viewed
// as [outer, Σ n_i, inner].
template <class T>
void join(ArrayList<T> xs, const std::vector<std::size_t>& widths, std::size_t outer, std::size_t inner, Array<T>& y) {
    if (y.size() == 0) return;  // however large `outer` is
    const std::size_t total = std::accumulate(widths.begin(), widths.end(), std::size_t(0));
    std::size_t offset = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const std::size_t run = widths[i] * inner;
        const T* src = xs[i].data();
        for (std::size_t o = 0; o < outer; ++o) std::copy_n(src + o * run, run, y.data() + (o * total + offset) * inner);
        offset += widths[i];
    }
}

}  // namespace

template <class T>
BasicTensor<T> slice(const BasicTensor<T>& x, std::ptrdiff_t axis, std::int64_t start, std::int64_t stop,
                     std::int64_t step) {
    const std::size_t ax = detail::normalize_axis("slice", axis, x.dim());
    if (step <= 0) throw ValueError("slice: step must be positive, got " + std::to_string(step));
    // Python semantics: negative bounds count from the end, then clip.
    const auto n = static_cast<std::int64_t>(x.shape()[ax]);
    auto clip = [n](std::int64_t v) { return std::clamp(v < 0 ? v + n : v, std::int64_t(0), n); };
    start = clip(start);
    stop = clip(stop);
    Range r;
    r.start = std::size_t(start);
    r.step = std::size_t(step);
    r.count = stop > start ? std::size_t((stop - start - 1) / step + 1) : 0;  // no overflow for huge steps
    return slice_range(x, ax, r);
}

template <class T>
BasicTensor<T> concat(const std::vector<BasicTensor<T>>& xs, std::ptrdiff_t axis) {
    require_inputs("concat", xs);
    const std::size_t ax = detail::normalize_axis("concat", axis, xs[0].dim());
    std::vector<std::size_t> widths;
    for (const auto& x : xs) {
        bool fits = x.dim() == xs[0].dim();
        for (std::size_t d = 0; fits && d < x.dim(); ++d) fits = d == ax || x.shape()[d] == xs[0].shape()[d];
        if (!fits)
            throw ShapeError("concat: shapes " + detail::shape_str(xs[0].shape()) + " and " +
                             detail::shape_str(x.shape()) + " differ outside axis " + std::to_string(ax));
        widths.push_back(x.shape()[ax]);
    }
    // Each width fits (its tensor exists); the sum stops growing once it is
    // too large, so it cannot wrap before checked_numel refuses it.
    std::size_t total = 0;
    for (std::size_t w : widths) total = total > detail::max_numel ? total : total + w;
    const Shape out_shape = with_dim(xs[0].shape(), ax, total);
    detail::checked_numel("concat", out_shape);
    const Blocks b = blocks(xs[0].shape(), ax);
    Op<T> op("concat", xs);
    auto out = op.forward([out_shape, widths, b](ArrayList<T> in) {
        Array<T> y = Array<T>::from_shape(out_shape);
        join(in, widths, b.outer, b.inner, y);
        return y;
    });
    return op.record(out, [ax, widths](VjpContext<T>& c, const BasicTensor<T>& g) {
        // Each input's gradient is its own stretch of g along the axis.
        Grads<T> grads(widths.size());
        std::int64_t offset = 0;
        for (std::size_t i = 0; i < widths.size(); ++i) {
            const auto w = std::int64_t(widths[i]);
            if (c.needs(i)) grads[i] = slice(g, std::ptrdiff_t(ax), offset, offset + w);
            offset += w;
        }
        return grads;
    });
}

template <class T>
BasicTensor<T> stack(const std::vector<BasicTensor<T>>& xs, std::ptrdiff_t axis) {
    require_inputs("stack", xs);
    const std::size_t ax = detail::normalize_axis("stack", axis, xs[0].dim() + 1);
    for (const auto& x : xs)
        if (x.shape() != xs[0].shape())
            throw ShapeError("stack: shapes " + detail::shape_str(xs[0].shape()) + " and " +
                             detail::shape_str(x.shape()) + " differ; stacked tensors must have equal shapes");
    // Stacking is joining [outer, 1, inner] views along the new axis.
    const Shape in = xs[0].shape_vector();
    Shape out_shape = in;
    out_shape.insert(out_shape.begin() + std::ptrdiff_t(ax), xs.size());
    detail::checked_numel("stack", out_shape);
    const Blocks b = blocks(out_shape, ax);
    Op<T> op("stack", xs);
    auto out = op.forward([out_shape, b](ArrayList<T> in) {
        Array<T> y = Array<T>::from_shape(out_shape);
        join(in, std::vector<std::size_t>(in.size(), 1), b.outer, b.inner, y);
        return y;
    });
    return op.record(out, [ax, in, count = xs.size()](VjpContext<T>& c, const BasicTensor<T>& g) {
        Grads<T> grads(count);
        const std::vector<std::int64_t> shape(in.begin(), in.end());
        for (std::size_t i = 0; i < count; ++i)
            if (c.needs(i))
                grads[i] = reshape(slice(g, std::ptrdiff_t(ax), std::int64_t(i), std::int64_t(i) + 1), shape);
        return grads;
    });
}

template <class T>
BasicTensor<T> index_select(const BasicTensor<T>& x, std::ptrdiff_t axis, const Index& indices) {
    auto p = std::make_shared<Pick>();
    p->axis = detail::normalize_axis("index_select", axis, x.dim());
    p->index = indices;
    bind_index<T>(indices, std::shared_ptr<Index>(p, &p->index));
    return pick<T>(x, std::move(p), false);
}

template <class T>
BasicTensor<T> gather(const BasicTensor<T>& x, std::ptrdiff_t axis, const Index& index, const Shape& index_shape) {
    auto p = std::make_shared<Pick>();
    p->axis = detail::normalize_axis("gather", axis, x.dim());
    const std::size_t count = detail::checked_numel("gather", index_shape);
    bool fits = index_shape.size() == x.dim() && count == index.size();
    for (std::size_t d = 0; fits && d < x.dim(); ++d) fits = d == p->axis || index_shape[d] == x.shape()[d];
    if (!fits)
        throw ShapeError("gather: index of shape " + detail::shape_str(index_shape) + " (" +
                         std::to_string(index.size()) + " indices) does not fit a tensor of shape " +
                         detail::shape_str(x.shape()) + " along axis " + std::to_string(p->axis) +
                         "; it needs the tensor's shape except along the axis");
    p->index = index;
    p->index_shape = index_shape;
    bind_index<T>(index, std::shared_ptr<Index>(p, &p->index));
    return pick<T>(x, std::move(p), true);
}

template <class T>
BasicTensor<T> detail::gather_labels(const char* loss, const BasicTensor<T>& scores, const Index& labels) {
    auto p = std::make_shared<Pick>();
    p->axis = 1;
    p->index = labels;
    p->index_shape = Shape{labels.size(), 1};
    p->labels_of = loss;
    bind_index<T>(labels, std::shared_ptr<Index>(p, &p->index));
    return pick<T>(scores, std::move(p), true);
}

template <class T>
BasicTensor<T> one_hot(const Index& labels, std::size_t num_classes) {
    detail::checked_numel("one_hot", Shape{labels.size(), num_classes});
    // An op of no tensor inputs reading its own copy of the labels, so that a
    // captured program makes it again from each batch's labels.
    auto held = std::make_shared<Index>(labels);
    bind_index<T>(labels, held);
    return detail::no_grad_op<T>("one_hot", {}, [held, num_classes]() {
        const Index& l = *held;
        Array<T> y = xt::zeros<T>({l.size(), num_classes});
        for (std::size_t i = 0; i < l.size(); ++i) {
            if (l[i] < 0 || static_cast<std::size_t>(l[i]) >= num_classes)
                throw ValueError("one_hot: label " + std::to_string(l[i]) + " at position " + std::to_string(i) +
                                 " is out of range for " + std::to_string(num_classes) + " classes");
            y(i, std::size_t(l[i])) = T(1);
        }
        return y;
    });
}

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template BasicTensor<T> slice(const BasicTensor<T>&, std::ptrdiff_t, std::int64_t, std::int64_t,         \
                                  std::int64_t);                                                             \
    template BasicTensor<T> concat(const std::vector<BasicTensor<T>>&, std::ptrdiff_t);                      \
    template BasicTensor<T> stack(const std::vector<BasicTensor<T>>&, std::ptrdiff_t);                       \
    template BasicTensor<T> index_select(const BasicTensor<T>&, std::ptrdiff_t, const Index&);               \
    template BasicTensor<T> gather(const BasicTensor<T>&, std::ptrdiff_t, const Index&, const Shape&);       \
    template BasicTensor<T> detail::gather_labels(const char*, const BasicTensor<T>&, const Index&);         \
    template BasicTensor<T> one_hot<T>(const Index&, std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
