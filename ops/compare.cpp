// Comparisons: 1 where the relation holds, 0 elsewhere. Not differentiable,
// so the results carry no graph (no_grad_op: a captured program still
// computes them again on every replay).
#include <tapegrad/ops/compare.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>

namespace tapegrad {

namespace {
template <class T, class F>
BasicTensor<T> compare(const char* name, const BasicTensor<T>& a, const BasicTensor<T>& b, F relation) {
    detail::check_broadcast(name, a.shape(), b.shape());
    return detail::no_grad_op<T>(
        name, {a, b}, kernels::elementwise<T, 2>([relation](T u, T v) { return relation(u, v) ? T(1) : T(0); }));
}
}  // namespace

template <class T>
BasicTensor<T> eq(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("eq", a, b, [](T x, T y) { return x == y; });
}
template <class T>
BasicTensor<T> ne(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("ne", a, b, [](T x, T y) { return x != y; });
}
template <class T>
BasicTensor<T> lt(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("lt", a, b, [](T x, T y) { return x < y; });
}
template <class T>
BasicTensor<T> le(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("le", a, b, [](T x, T y) { return x <= y; });
}
template <class T>
BasicTensor<T> gt(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("gt", a, b, [](T x, T y) { return x > y; });
}
template <class T>
BasicTensor<T> ge(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return compare("ge", a, b, [](T x, T y) { return x >= y; });
}

#define TAPEGRAD_INSTANTIATE(T)                                                 \
    template BasicTensor<T> eq(const BasicTensor<T>&, const BasicTensor<T>&);  \
    template BasicTensor<T> ne(const BasicTensor<T>&, const BasicTensor<T>&);  \
    template BasicTensor<T> lt(const BasicTensor<T>&, const BasicTensor<T>&);  \
    template BasicTensor<T> le(const BasicTensor<T>&, const BasicTensor<T>&);  \
    template BasicTensor<T> gt(const BasicTensor<T>&, const BasicTensor<T>&);  \
    template BasicTensor<T> ge(const BasicTensor<T>&, const BasicTensor<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
