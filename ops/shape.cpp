// reshape, broadcast_to and clone: forward and vector-Jacobian product side by side.
#include <tapegrad/ops/shape.hpp>

#include <tapegrad/core/numel.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::VjpContext;

template <class T>
BasicTensor<T> reshape(const BasicTensor<T>& x, const std::vector<std::int64_t>& shape) {
    Shape target(shape.size());
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            if (inferred >= 0) throw ShapeError("reshape: only one dimension can be -1");
            inferred = static_cast<std::ptrdiff_t>(i);
        } else if (shape[i] < 0) {
            throw ShapeError("reshape: dimension " + std::to_string(shape[i]) + " is negative");
        } else {
            target[i] = static_cast<std::size_t>(shape[i]);
        }
    }
    // The known dimensions' product is checked before it is used: wrapped
    // around, [2^33, 2^33] would "hold" the 0 elements of an empty tensor.
    std::vector<std::size_t> known_dims;
    for (std::size_t i = 0; i < target.size(); ++i)
        if (std::ptrdiff_t(i) != inferred) known_dims.push_back(target[i]);
    known = detail::checked_numel("reshape", known_dims);
    if (inferred >= 0) target[inferred] = known == 0 ? 0 : x.size() / known;
    detail::checked_numel("reshape", target);
    std::size_t total = 1;
    for (auto d : target) total *= d;
    if (total != x.size())
        throw ShapeError("reshape: cannot reshape a tensor of shape " + detail::shape_str(x.shape()) + " (" +
                         std::to_string(x.size()) + " elements) to " + detail::shape_str(target));
    Op<T> op("reshape", {x});
    auto y = op.forward(kernels::copy<T>([target](const Array<T>& v) {
        Array<T> out = v;
        out.reshape(target);
        return out;
    }));
    return op.record(y, [from = x.shape_vector()](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{reshape(g, std::vector<std::int64_t>(from.begin(), from.end()))};
    });
}

template <class T>
BasicTensor<T> broadcast_to(const BasicTensor<T>& x, const Shape& shape) {
    Shape from = x.shape_vector();
    if (detail::broadcast_shapes("broadcast_to", from, shape) != shape)
        throw ShapeError("broadcast_to: shape " + detail::shape_str(from) + " cannot be broadcast to " +
                         detail::shape_str(shape));
    Op<T> op("broadcast_to", {x});
    auto y = op.forward(kernels::copy<T>(
        [shape](const Array<T>& v) { return kernels::map_to<T>(kernels::dims(shape), [](T e) { return e; }, v); }));
    // The engine sums the gradient back to x's shape (sum_to), so the VJP
    // passes it through.
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g}; });
}

template <class T>
BasicTensor<T> clone(const BasicTensor<T>& x) {
    Op<T> op("clone", {x});
    auto y = op.forward([](const Array<T>& v) { return v; });
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g}; });
}

#define TAPEGRAD_INSTANTIATE(T)                                                           \
    template BasicTensor<T> clone(const BasicTensor<T>&);                                 \
    template BasicTensor<T> reshape(const BasicTensor<T>&, const std::vector<std::int64_t>&); \
    template BasicTensor<T> broadcast_to(const BasicTensor<T>&, const Shape&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
