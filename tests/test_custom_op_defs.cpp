// The user ops of user_ops.hpp, defined with nothing but the public headers
// (no detail:: names), in a translation unit of their own.
#include "user_ops.hpp"

#include <xtensor/xmath.hpp>

#include <tapegrad/core/op.hpp>
#include <tapegrad/tapegrad.hpp>

namespace user {

using tapegrad::Array;
using tapegrad::BasicTensor;
using tapegrad::Grads;
using tapegrad::Op;
using tapegrad::RawGrads;
using tapegrad::VjpContext;

template <class T>
BasicTensor<T> swish(const BasicTensor<T>& x, const BasicTensor<T>& beta) {
    Op<T> op("user::swish", {x, beta});
    Array<T> bx = beta.value() * x.value();
    auto y = op.output(x.value() / (T(1) + xt::exp(-bx)));
    return op.record(y, [sx = op.save(x), sb = op.save(beta)](VjpContext<T>& ctx, const BasicTensor<T>& g) {
        // Recomputed from the saved inputs with tensor ops, so that under
        // create_graph the gradient is a function of x and beta on the graph.
        auto x = ctx.unpack(sx), b = ctx.unpack(sb);
        auto s = (b * x).sigmoid();
        auto ds = s * (T(1) - s);  // sigmoid'
        Grads<T> grads(2);
        if (ctx.needs(0)) grads[0] = g * (s + x * b * ds);
        if (ctx.needs(1)) grads[1] = g * x * x * ds;  // x's shape: the engine sums it down to beta's
        return grads;
    });
}

template <class T>
BasicTensor<T> hypot(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    Op<T> op("user::hypot", {a, b});
    auto r = op.output(xt::sqrt(a.value() * a.value() + b.value() * b.value()));
    return op.record_raw(r, [sa = op.save(a), sb = op.save(b), sr = op.save_output(r)](VjpContext<T>& ctx,
                                                                                         const Array<T>& g) {
        const Array<T>& r = ctx.value(sr);
        RawGrads<T> grads(2);
        if (ctx.needs(0)) grads[0] = g * ctx.value(sa) / r;
        if (ctx.needs(1)) grads[1] = g * ctx.value(sb) / r;
        return grads;
    });
}

template BasicTensor<float> swish(const BasicTensor<float>&, const BasicTensor<float>&);
template BasicTensor<double> swish(const BasicTensor<double>&, const BasicTensor<double>&);
template BasicTensor<float> hypot(const BasicTensor<float>&, const BasicTensor<float>&);
template BasicTensor<double> hypot(const BasicTensor<double>&, const BasicTensor<double>&);

}  // namespace user
