// The README's first example, built against an installed tapegrad (through
// find_package, and through pkg-config), with its result checked against the
// closed form d/dw sum(3 tanh(x w)) = 3 x^T (1 - tanh(x w)^2) computed in C.
// Next to it, the consumer's own xtensor code keeps xtensor's defaults, and
// a user-written op (both backward flavours) is gradchecked from the
// installed headers, and hooks, transforms, checkpoint and cholesky are used,
// and a step with a user-written elementwise op is captured and replayed.
#include <cmath>
#include <iostream>
#include <type_traits>
#include <vector>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/elementwise.hpp>
#include <tapegrad/tapegrad.hpp>
#include <xtensor/xmath.hpp>
using namespace tapegrad;

// x * tanh(y), y broadcast against x: backward in tensor ops (second order).
Tensor64 mul_tanh(const Tensor64& x, const Tensor64& y) {
    Op<double> op("consumer::mul_tanh", {x, y});
    auto out = op.output(x.value() * xt::tanh(y.value()));
    return op.record(out, [sx = op.save(x), sy = op.save(y)](VjpContext<double>& ctx, const Tensor64& g) {
        auto t = ctx.unpack(sy).tanh();
        Grads<double> grads(2);
        if (ctx.needs(0)) grads[0] = g * t;
        if (ctx.needs(1)) grads[1] = g * ctx.unpack(sx) * (1.0 - t * t);
        return grads;
    });
}

// exp(x) with its backward on raw values (first order).
Tensor64 raw_exp(const Tensor64& x) {
    Op<double> op("consumer::raw_exp", {x});
    auto y = op.output(xt::exp(x.value()));
    return op.record_raw(y, [sy = op.save_output(y)](VjpContext<double>& ctx, const Array<double>& g) {
        return RawGrads<double>{g * ctx.value(sy)};
    });
}

extern "C" double closed_form_grad(const double x[2], const double w[2][2], int i, int j);

// Our own arrays use xtensor's default allocator, not tapegrad's: the
// package does not change xtensor's configuration for us.
static_assert(std::is_same_v<xt::xarray<double>::allocator_type,
                             xsimd::aligned_allocator<double, XSIMD_DEFAULT_ALIGNMENT>>,
              "the consumer's xt::xarray must keep xtensor's default allocator");
static_assert(!std::is_same_v<xt::xarray<double>, Array<double>>);
static_assert(std::is_same_v<Tensor64::array_type, Array<double>>);

// x^2 + 1, its forward as a function of one element: a captured step fuses
// it with the elementwise ops beside it.
Tensor64 square_plus_one(const Tensor64& x) {
    Op<double> op("consumer::square_plus_one", {x});
    auto y = op.forward(kernels::elementwise<double, 1>([](double v) { return v * v + 1; }));
    return op.record(y, [sx = op.save(x)](VjpContext<double>& ctx, const Tensor64& g) {
        return Grads<double>{g * ctx.unpack(sx) * 2.0};
    });
}

int main() {
    Tensor64 w({{0.5, -1.0}, {2.0, 0.25}}, /*requires_grad=*/true);
    Tensor64 x({{1.0, 2.0}});                   // a batch of one input row
    auto loss = sum(tanh(matmul(x, w)) * 3.0);  // recorded on the tape
    loss.backward();                            // d loss / d w, into w.grad()
    std::cout << w.grad() << "\n";

    const double xs[2] = {1.0, 2.0};
    const double ws[2][2] = {{0.5, -1.0}, {2.0, 0.25}};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            double want = closed_form_grad(xs, ws, i, j);
            if (std::abs(w.grad().value()(i, j) - want) > 1e-12) {
                std::cout << "WRONG gradient at (" << i << ", " << j << ")\n";
                return 1;
            }
        }

    // The same with the README's short forms, a retained intermediate
    // gradient and an in-place edit, through the installed headers only.
    Tensor64 w2({{0.5, -1.0}, {2.0, 0.25}}, true);
    auto h = x.matmul(w2).tanh();
    h.retain_grad();
    (h * 3.0).sum().backward();
    if (!xt::allclose(w2.grad().value(), w.grad().value()) ||
        !xt::allclose(h.grad().value(), xt::xarray<double>{{3.0, 3.0}})) {
        std::cout << "WRONG gradient with member forms / retain_grad\n";
        return 1;
    }
    w2.modify([](auto& v) { v(0, 0) = 1.0; });
    if (w2.value()(0, 0) != 1.0 || clone(w2).value()(0, 0) != 1.0) {
        std::cout << "WRONG value after modify\n";
        return 1;
    }

    // Our own xt::xarray goes into a tensor and comes back out.
    xt::xarray<double> mine = {{1.0, -2.0}, {3.0, 0.5}};
    Tensor64 t(mine);
    xt::xarray<double> back = exp(t).value();
    if (!xt::allclose(back, xt::exp(mine))) {
        std::cout << "WRONG round trip through a tensor\n";
        return 1;
    }
    // User-written ops, checked against finite differences.
    Generator gen(7);
    std::vector<Tensor64> inputs{Tensor64::randn({3, 2}, gen), Tensor64::randn({2}, gen)};
    auto f = [](const std::vector<Tensor64>& in) { return mul_tanh(in[0], in[1]); };
    auto first = gradcheck(f, inputs, GradcheckOptions::strict());
    auto second = gradgradcheck(f, inputs, GradcheckOptions::strict());
    auto raw = gradcheck([](const std::vector<Tensor64>& in) { return raw_exp(in[0]); }, {inputs[0]},
                         GradcheckOptions::strict());
    if (!first || !second || !raw) {
        std::cout << "WRONG custom op gradient:\n" << first.message() << second.message() << raw.message() << "\n";
        return 1;
    }

    // Hooks, functional transforms, checkpoint and linear algebra from the
    // installed headers: f(p) = sum(p * p), so every answer is 2 p (or 2).
    Tensor64 p({1.0, -2.0}, true);
    int hook_calls = 0, ready_calls = 0;
    p.register_hook([&](const Tensor64& g) {
        ++hook_calls;
        return g * 2.0;  // doubled: p.grad must be 4 p
    });
    p.register_grad_ready_hook([&](const Tensor64&) { ++ready_calls; });
    checkpoint<double>([](const Tensor64& t) { return t * t; }, p).sum().backward();
    auto square = [](const Tensor64& t) { return (t * t).sum(); };
    auto hvp = functional::hvp<double>(square, p, Tensor64({1.0, 1.0})).hvp[0];
    auto vjp = functional::vjp<double>(square, p).grads[0];
    auto spd = Tensor64({{4.0, 2.0}, {2.0, 3.0}});
    auto l = cholesky(spd);
    const bool ok = hook_calls == 1 && ready_calls == 1 && p.grad().value() == Array<double>{4.0, -8.0} &&
                    hvp.value() == Array<double>{2.0, 2.0} && vjp.value() == Array<double>{2.0, -4.0} &&
                    std::abs(l.value()(0, 0) - 2.0) < 1e-12 && std::abs(l.value()(1, 0) - 1.0) < 1e-12 &&
                    std::abs(l.value()(1, 1) - std::sqrt(2.0)) < 1e-12;
    if (!ok) {
        std::cout << "WRONG: hooks " << hook_calls << "/" << ready_calls << ", p.grad " << p.grad().value()
                  << ", hvp " << hvp.value() << ", vjp " << vjp.value() << ", cholesky " << l.value() << "\n";
        return 1;
    }

    // A compiled step: loss = 3 sum((x q)^2 + 1), d loss/d q = 6 x^2 q.
    Tensor64 q({0.5, -1.5}, true);
    compile::StepFn<double> step = [&](const compile::StepInputs<double>& in) {
        q.zero_grad();
        auto loss = (square_plus_one(in.tensors[0] * q) * 3.0).sum();
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    // The input requires grad: each replay also writes d loss/d x = 6 x q^2
    // into the .grad of the tensor passed; from the second replay on, its
    // buffers come from the program's planned block (with the buffer cache on).
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0}, true)}, {}});
    Tensor64 batch({2.0, -1.0}, true);
    double replayed = 0;
    for (int k = 0; k < 3; ++k) replayed = compiled({{batch}, {}})[0].item();
    const auto stats = compiled.stats();
    if (std::abs(replayed - 15.75) > 1e-12 || q.grad().value() != Array<double>{12.0, -9.0} ||
        batch.grad().value() != Array<double>{3.0, -13.5} || stats.fused_groups < 1 || stats.gradients != 2 ||
        (buffer_cache_enabled() && stats.arena_bytes == 0)) {
        std::cout << "WRONG compiled step: loss " << replayed << ", q.grad " << q.grad().value() << ", batch.grad "
                  << batch.grad().value() << ", fused runs " << stats.fused_groups << ", gradients " << stats.gradients
                  << ", arena bytes " << stats.arena_bytes << "\n";
        return 1;
    }
    std::cout << "ok\n";
    return 0;
}
