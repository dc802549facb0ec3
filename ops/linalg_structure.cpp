// eye, tril/triu, diagonal and diag_embed: forward and vector-Jacobian product
// side by side. Each works on the last two axes of a contiguous row-major
// value, one matrix after another. The VJPs are the ops themselves (a mask is
// its own adjoint; diagonal and diag_embed are each other's), so every
// derivative order is available.
#include <tapegrad/ops/linalg_structure.hpp>

#include <algorithm>

#include <tapegrad/core/op.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::VjpContext;

namespace {

// Rows and columns of the matrices in x, and how many matrices there are.
struct Matrices {
    std::size_t count, rows, cols;
};

template <class T>
Matrices matrices(const char* op, const BasicTensor<T>& x) {
    if (x.dim() < 2)
        throw ShapeError(std::string(op) + ": needs a matrix or a batch of matrices (rank >= 2), got shape " +
                         detail::shape_str(x.shape()));
    const std::size_t rows = x.shape()[x.dim() - 2], cols = x.shape()[x.dim() - 1];
    return {rows * cols == 0 ? 0 : x.size() / (rows * cols), rows, cols};
}

// Keeps element (i, j) where keep(j - i), zeroes the rest.
template <class T, class Keep>
Array<T> triangle(const Array<T>& x, const Matrices& m, Keep keep) {
    Array<T> out = x;
    T* p = out.data();
    for (std::size_t b = 0; b < m.count; ++b)
        for (std::size_t i = 0; i < m.rows; ++i)
            for (std::size_t j = 0; j < m.cols; ++j, ++p)
                if (!keep(std::int64_t(j) - std::int64_t(i))) *p = T(0);
    return out;
}

// Vectors (..., d) to (..., rows, cols) matrices with them on the diagonal
// (d = min(rows, cols)): diag_embed, and the VJP of diagonal.
template <class T>
BasicTensor<T> embed(const BasicTensor<T>& x, std::size_t rows, std::size_t cols) {
    const std::size_t d = x.dim() == 0 ? 0 : x.shape()[x.dim() - 1];
    if (x.dim() == 0 || d != std::min(rows, cols))
        throw ShapeError("diag_embed: needs vectors (rank >= 1), got shape " + detail::shape_str(x.shape()));
    Shape shape(x.shape().begin(), x.shape().end() - 1);
    shape.push_back(rows);
    shape.push_back(cols);
    Op<T> op("diag_embed", {x});
    auto y = op.forward([shape, d, rows, cols](const Array<T>& v) {
        Array<T> out = Array<T>::from_shape(shape);
        out.fill(T(0));
        const std::size_t count = d == 0 ? 0 : v.size() / d;
        for (std::size_t b = 0; b < count; ++b)
            for (std::size_t i = 0; i < d; ++i) out.data()[b * rows * cols + i * cols + i] = v.data()[b * d + i];
        return out;
    });
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{diagonal(g)}; });
}

}  // namespace

template <class T>
BasicTensor<T> eye(std::size_t n) {
    Array<T> out = Array<T>::from_shape({n, n});
    out.fill(T(0));
    for (std::size_t i = 0; i < n; ++i) out.data()[i * n + i] = T(1);
    return BasicTensor<T>(std::move(out));
}

template <class T>
BasicTensor<T> tril(const BasicTensor<T>& x, std::int64_t k) {
    const Matrices m = matrices("tril", x);
    Op<T> op("tril", {x});
    auto y = op.forward([m, k](const Array<T>& v) { return triangle(v, m, [k](std::int64_t d) { return d <= k; }); });
    return op.record(y, [k](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{tril(g, k)}; });
}

template <class T>
BasicTensor<T> triu(const BasicTensor<T>& x, std::int64_t k) {
    const Matrices m = matrices("triu", x);
    Op<T> op("triu", {x});
    auto y = op.forward([m, k](const Array<T>& v) { return triangle(v, m, [k](std::int64_t d) { return d >= k; }); });
    return op.record(y, [k](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{triu(g, k)}; });
}

template <class T>
BasicTensor<T> diagonal(const BasicTensor<T>& x) {
    const Matrices m = matrices("diagonal", x);
    const std::size_t d = std::min(m.rows, m.cols);
    Shape shape(x.shape().begin(), x.shape().end() - 2);
    shape.push_back(d);
    Op<T> op("diagonal", {x});
    auto y = op.forward([shape, m, d](const Array<T>& v) {
        Array<T> out = Array<T>::from_shape(shape);
        for (std::size_t b = 0; b < m.count; ++b)
            for (std::size_t i = 0; i < d; ++i) out.data()[b * d + i] = v.data()[b * m.rows * m.cols + i * m.cols + i];
        return out;
    });
    return op.record(y, [rows = m.rows, cols = m.cols](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{embed(g, rows, cols)};
    });
}

template <class T>
BasicTensor<T> diag_embed(const BasicTensor<T>& x) {
    const std::size_t n = x.dim() == 0 ? 0 : x.shape()[x.dim() - 1];
    return embed(x, n, n);
}

#define TAPEGRAD_INSTANTIATE(T)                                            \
    template BasicTensor<T> eye<T>(std::size_t);                           \
    template BasicTensor<T> tril(const BasicTensor<T>&, std::int64_t);     \
    template BasicTensor<T> triu(const BasicTensor<T>&, std::int64_t);     \
    template BasicTensor<T> diagonal(const BasicTensor<T>&);               \
    template BasicTensor<T> diag_embed(const BasicTensor<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
