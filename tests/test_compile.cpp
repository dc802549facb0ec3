// Compiled steps (core/compile/capture.hpp): a step captured once and
// replayed on new inputs gives what eager mode gives on them (values and
// gradients), draws the same random masks, reads parameters live, and
// refuses what it cannot replay with an error naming the op or the input.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>

#include <xtensor/xmath.hpp>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using compile::StepInputs;

namespace {

using op_test::rel_diff;

template <class T>
double tolerance() {
    return std::is_same_v<T, double> ? 1e-12 : 1e-6;
}

// A small classifier with everything the issue names: Linear, GELU,
// LayerNorm, Dropout, RReLU, softmax cross-entropy.
template <class T>
struct Net {
    nn::Linear<T> l1, l2;
    nn::LayerNorm<T> norm;
    nn::Dropout<T> drop;
    nn::RReLU<T> rrelu;
    Net(Generator& gen, std::uint64_t seed)
        : l1(6, 8, true, gen), l2(8, 3, true, gen), norm(8), drop(T(0.25), seed), rrelu(T(0.1), T(0.3), seed + 1) {}
    BasicTensor<T> forward(const BasicTensor<T>& x) {
        auto h = nn::gelu(l1.forward(x));
        h = drop.forward(norm.forward(h));
        return l2.forward(rrelu.forward(h));
    }
    std::vector<BasicTensor<T>> params() { return {l1.weight, l1.bias, l2.weight, l2.bias, norm.weight, norm.bias}; }
    void zero_grad() {
        for (auto& p : params()) p.zero_grad();
    }
};

template <class T>
BasicTensor<T> batch(std::size_t rows, std::uint64_t seed) {
    Generator gen(seed);
    return BasicTensor<T>::randn({rows, 6}, gen);
}

template <class T>
compile::Index labels(std::size_t rows, std::uint64_t seed) {
    compile::Index l(rows);
    for (std::size_t i = 0; i < rows; ++i) l[i] = std::int64_t((i * 7 + seed) % 3);
    return l;
}

template <class T>
void replay_equals_eager() {
    Generator ga(11), gb(11);
    Net<T> eager(ga, 5), captured(gb, 5);  // same weights, same dropout and RReLU generators
    auto eager_step = [&](const BasicTensor<T>& x, const compile::Index& y) {
        eager.zero_grad();
        auto loss = nn::cross_entropy(eager.forward(x), y);
        loss.backward();
        return loss;
    };
    compile::StepFn<T> step = [&](const StepInputs<T>& in) {
        captured.zero_grad();
        auto loss = nn::cross_entropy(captured.forward(in.tensors[0]), in.indices[0]);
        loss.backward();
        return std::vector<BasicTensor<T>>{loss};
    };
    nn::SGD<T> opt_eager(eager.params(), 0.1), opt_captured(captured.params(), 0.1);
    auto compare = [&](const BasicTensor<T>& eager_loss, const BasicTensor<T>& replay_loss) {
        CHECK(rel_diff(replay_loss, eager_loss) <= tolerance<T>());
        auto pe = eager.params(), pc = captured.params();
        for (std::size_t i = 0; i < pe.size(); ++i) {
            CAPTURE(i);
            CHECK(rel_diff(pc[i].grad(), pe[i].grad()) <= tolerance<T>());
            CHECK_FALSE(pc[i].grad().requires_grad());
        }
    };

    auto x0 = batch<T>(5, 100);
    auto y0 = labels<T>(5, 0);
    auto compiled = compile::capture<T>(step, {{x0}, {y0}});
    compare(eager_step(x0, y0), compiled.captured_outputs()[0]);
    CHECK(compiled.stats().bound_indices >= 1);  // the labels are an input, not a constant
    CHECK(compiled.stats().gradients == 6);
    for (int k = 1; k <= 3; ++k) {
        CAPTURE(k);
        opt_eager.step();  // replays read the updated parameters live
        opt_captured.step();
        auto x = batch<T>(5, 100 + k);
        auto y = labels<T>(5, k);
        auto loss = compiled({{x}, {y}});
        REQUIRE(loss.size() == 1);
        compare(eager_step(x, y), loss[0]);
    }
    // Same generator draws: the masks of the next step agree too.
    CHECK(eager.drop.generator() == captured.drop.generator());
    CHECK(eager.rrelu.generator() == captured.rrelu.generator());
}

}  // namespace

TEST_CASE("compile: replay equals eager for an MLP with GELU, LayerNorm, dropout, RReLU, cross-entropy (float64)") {
    replay_equals_eager<double>();
}

TEST_CASE("compile: replay equals eager for an MLP with GELU, LayerNorm, dropout, RReLU, cross-entropy (float32)") {
    replay_equals_eager<float>();
}

TEST_CASE("compile: gradients returned by grad() are outputs, second derivatives included") {
    compile::StepFn<double> step = [](const StepInputs<double>& in) {
        auto x = in.tensors[0];
        auto y = sum(sin(x) * x * x);
        auto g = grad(y, {x}, {}, BackwardOptions{false, true})[0];  // create_graph: g is differentiable
        auto gg = grad(sum(g * g), {x})[0];
        return std::vector<Tensor64>{y, g, gg};
    };
    auto eager = [](const Tensor64& x) {
        auto y = sum(sin(x) * x * x);
        auto g = grad(y, {x}, {}, BackwardOptions{false, true})[0];
        return std::vector<Tensor64>{y, g, grad(sum(g * g), {x})[0]};
    };
    Tensor64 x0({0.3, -1.2, 2.0}, true);
    auto compiled = compile::capture<double>(step, {{x0}, {}});
    for (double shift : {0.5, -0.25, 1.5}) {
        Tensor64 x(Array<double>(x0.value() + shift), true);
        auto got = compiled({{x}, {}});
        auto want = eager(x);
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(rel_diff(got[i], want[i]) <= 1e-12);
    }
}

TEST_CASE("compile: replay with another input shape is a ShapeError naming the input and both shapes") {
    Generator gen(1);
    nn::Linear<double> layer(6, 3, true, gen);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = nn::cross_entropy(layer.forward(in.tensors[0]), in.indices[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{batch<double>(4, 1)}, {labels<double>(4, 0)}});
    CHECK_THROWS_WITH_AS(compiled({{batch<double>(5, 2)}, {labels<double>(4, 0)}}),
                         doctest::Contains("input 0 has shape [5, 6], but the step was captured with shape [4, 6]"),
                         ShapeError);
    CHECK_THROWS_WITH_AS(compiled({{batch<double>(4, 2)}, {labels<double>(3, 0)}}),
                         doctest::Contains("index input 0 has 3 entries"), ShapeError);
    CHECK_THROWS_AS(compiled({{}, {}}), ValueError);
    // A label out of range is caught by the replayed gather, named as eagerly.
    CHECK_THROWS_WITH_AS(compiled({{batch<double>(4, 2)}, {{0, 1, 7, 2}}}),
                         doctest::Contains("cross_entropy: label 7 (at position 2) is out of range for 3 classes"),
                         ValueError);
}

TEST_CASE("compile: a parameter replaced, added or resized since capture is named") {
    Generator gen(2);
    nn::Sequential<double> model;
    auto layer = model.emplace<nn::Linear<double>>(6, 3, true, gen);
    compile::CaptureOptions<double> options;
    options.parameters = [&] { return model.named_parameters(); };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(model.forward(in.tensors[0]));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto x = batch<double>(4, 3);
    {
        auto compiled = compile::capture<double>(step, {{x}, {}}, options);
        CHECK_NOTHROW(compiled({{x}, {}}));
        layer->weight = Tensor64::zeros(layer->weight.shape_vector(), true);  // a new tensor in the module's slot
        CHECK_THROWS_WITH_AS(compiled({{x}, {}}), doctest::Contains("parameter '0.weight' was replaced"), GraphError);
    }
    {
        auto compiled = compile::capture<double>(step, {{x}, {}}, options);
        model.emplace<nn::Linear<double>>(3, 2, true, gen);
        CHECK_THROWS_WITH_AS(compiled({{x}, {}}), doctest::Contains("parameter '1.weight' was added"), GraphError);
    }
    {
        nn::Linear<double> solo(6, 3, true, gen);
        compile::StepFn<double> solo_step = [&](const StepInputs<double>& in) {
            auto loss = sum(solo.forward(in.tensors[0]));
            loss.backward();
            return std::vector<Tensor64>{loss};
        };
        auto compiled = compile::capture<double>(solo_step, {{x}, {}});  // parameters found by use
        CHECK(compiled.stats().parameters == 2);
        solo.bias.impl()->storage->data = Array<double>(xt::zeros<double>({4}));
        CHECK_THROWS_WITH_AS(compiled({{x}, {}}), doctest::Contains("was resized from [3] to [4]"), GraphError);
    }
}

namespace {

// A user op in the tensor flavour, forward handed to op.forward: a * tanh(b).
template <class T>
BasicTensor<T> user_mul_tanh(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    Op<T> op("user::mul_tanh", {a, b});
    auto y = op.forward([](const Array<T>& u, const Array<T>& v) { return Array<T>(u * xt::tanh(v)); });
    return op.record(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& c, const BasicTensor<T>& g) {
        auto t = tanh(c.unpack(sb));
        return Grads<T>{g * t, g * c.unpack(sa) * (T(1) - t * t)};
    });
}

// The same with a raw VJP: replay cannot record its backward.
template <class T>
BasicTensor<T> user_raw_mul_tanh(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    Op<T> op("user::raw_mul_tanh", {a, b});
    auto y = op.forward([](const Array<T>& u, const Array<T>& v) { return Array<T>(u * xt::tanh(v)); });
    return op.record_raw(y, [sa = op.save(a), sb = op.save(b)](VjpContext<T>& c, const Array<T>& g) {
        Array<T> t = xt::tanh(c.value(sb));
        return RawGrads<T>{g * t, g * c.value(sa) * (T(1) - t * t)};
    });
}

// A forward computed inline (op.output): eager only.
template <class T>
BasicTensor<T> user_inline_square(const BasicTensor<T>& a) {
    Op<T> op("user::inline_square", {a});
    auto y = op.output(a.value() * a.value());
    return op.record(y, [sa = op.save(a)](VjpContext<T>& c, const BasicTensor<T>& g) {
        return Grads<T>{g * c.unpack(sa) * T(2)};
    });
}

}  // namespace

TEST_CASE("compile: a user op written with op.forward and a tensor VJP is captured and replayed") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        w.zero_grad();
        auto loss = sum(user_mul_tanh(in.tensors[0], w) * in.tensors[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0, 3.0})}, {}});
    auto names = compiled.op_names();
    CHECK(std::find(names.begin(), names.end(), "user::mul_tanh") != names.end());
    for (double s : {0.5, -2.0, 3.0}) {
        Tensor64 x({s, 2 * s, -s});
        auto got = compiled({{x}, {}})[0];
        auto got_grad = Tensor64(Array<double>(w.grad().value()));
        w.zero_grad();
        auto want = sum(user_mul_tanh(x, w) * x);
        want.backward();
        CHECK(rel_diff(got, want) <= 1e-12);
        CHECK(rel_diff(got_grad, w.grad()) <= 1e-12);
    }
}

TEST_CASE("compile: ops capture cannot replay are refused with an error naming the op") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    auto capture_with = [&](std::function<Tensor64(const Tensor64&)> f) {
        compile::StepFn<double> step = [&, f](const StepInputs<double>& in) {
            auto loss = sum(f(in.tensors[0]));
            loss.backward();
            return std::vector<Tensor64>{loss};
        };
        return compile::capture<double>(step, {{Tensor64({1.0, 2.0, 3.0})}, {}});
    };
    CHECK_THROWS_WITH_AS(capture_with([&](const Tensor64& x) { return user_raw_mul_tanh(x, w); }),
                         doctest::Contains("'user::raw_mul_tanh' has a backward written on raw values"), GraphError);
    CHECK_THROWS_WITH_AS(capture_with([&](const Tensor64& x) { return user_inline_square(x * w); }),
                         doctest::Contains("'user::inline_square' computes its forward inline"), GraphError);
    // Nothing is left behind: eager mode works after a refused capture.
    auto y = sum(user_raw_mul_tanh(Tensor64({1.0, 2.0, 3.0}), w));
    CHECK_NOTHROW(y.backward());
}

TEST_CASE("compile: the LU-based ops recompute their factors on every replay") {
    // solve, inv, det and slogdet share factors between the forward and the
    // VJP's ops: a replay with a new matrix must not reuse the old ones.
    Tensor64 w({0.5, -1.0, 2.0}, true);
    auto f = [&](const Tensor64& x) {
        auto a = diag_embed(x * w + 4.0) + reshape(x, {3, 1}) * reshape(w, {1, 3}) * 0.1;
        auto s = slogdet(a);
        return sum(solve(a, reshape(w, {3, 1}))) + sum(inv(a) * x) + det(a) + s.logabsdet * s.sign;
    };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        w.zero_grad();
        auto loss = f(in.tensors[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0, 3.0})}, {}});
    for (double s : {0.5, -2.0, 3.0}) {
        Tensor64 x({s, 2 * s, -s});
        auto got = compiled({{x}, {}})[0];
        auto got_grad = Tensor64(Array<double>(w.grad().value()));
        w.zero_grad();
        auto want = f(x);
        want.backward();
        CHECK(rel_diff(got, want) <= 1e-12);
        CHECK(rel_diff(got_grad, w.grad()) <= 1e-12);
    }
}

TEST_CASE("compile: a gradient hook is replayed; a grad-ready hook is refused") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    auto handle = w.register_hook([](const Tensor64& g) { return g * 3.0; });
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(exp(in.tensors[0] * w));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0, 3.0})}, {}});
    Tensor64 x({0.1, -0.2, 0.3});
    compiled({{x}, {}});
    auto got = Tensor64(Array<double>(w.grad().value()));
    w.zero_grad();
    sum(exp(x * w)).backward();
    CHECK(rel_diff(got, w.grad()) <= 1e-12);  // 3 x exp(x w), the hook's factor included
    handle.remove();

    int calls = 0;
    w.register_grad_ready_hook([&](const Tensor64&) { ++calls; });
    CHECK_THROWS_WITH_AS(compile::capture<double>(step, {{x}, {}}), doctest::Contains("grad-ready hook"), GraphError);
}

TEST_CASE("compile: an in-place write during the step (an optimiser inside it) is refused") {
    Generator gen(3);
    nn::Linear<double> layer(6, 3, true, gen);
    nn::SGD<double> opt(layer.parameters(), 0.1);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(layer.forward(in.tensors[0]));
        loss.backward();
        opt.step();
        return std::vector<Tensor64>{loss};
    };
    CHECK_THROWS_WITH_AS(compile::capture<double>(step, {{batch<double>(2, 1)}, {}}),
                         doctest::Contains("was modified in place during the step"), GraphError);
}

TEST_CASE("compile: control flow on a tensor's value is the path taken; verify names the op that differs") {
    compile::StepFn<double> step = [](const StepInputs<double>& in) {
        const auto& x = in.tensors[0];
        return std::vector<Tensor64>{x.value()(0) > 0 ? exp(x) : tanh(x)};
    };
    Tensor64 positive({1.0, 2.0}), negative({-1.0, 2.0});
    auto compiled = compile::capture<double>(step, {{positive}, {}});
    // Replayed, the branch taken at capture runs, whatever the value.
    CHECK(rel_diff(compiled({{negative}, {}})[0], exp(negative)) <= 1e-15);
    compile::CaptureOptions<double> options;
    options.verify = true;
    auto checked = compile::capture<double>(step, {{positive}, {}}, options);
    CHECK(rel_diff(checked({{positive}, {}})[0], exp(positive)) <= 1e-15);
    CHECK_THROWS_WITH_AS(checked({{negative}, {}}), doctest::Contains("op 0 was 'exp', now 'tanh'"), GraphError);
}

TEST_CASE("compile: values nobody reads are dropped from the program") {
    Tensor64 w({0.5, -1.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto unused = exp(in.tensors[0]) * 2.0;  // computed, never read
        (void)unused;
        return std::vector<Tensor64>{sum(in.tensors[0] * w)};
    };
    compile::CaptureOptions<double> unfused;  // the op sequence itself, not its fused runs
    unfused.fuse = false;
    auto compiled = compile::capture<double>(step, {{Tensor64({1.0, 2.0})}, {}}, unfused);
    CHECK(compiled.stats().removed == 2);
    CHECK(compiled.op_names() == std::vector<std::string>{"mul", "sum"});
    CHECK(compiled({{Tensor64({3.0, 4.0})}, {}})[0].value()() == doctest::Approx(1.5 - 4.0));
}

TEST_CASE("compile: a tensor of a graph built before the capture is refused, naming its op") {
    Tensor64 w({0.5, -1.0}, true);
    auto outside = exp(w);  // on a graph recorded outside the step
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        return std::vector<Tensor64>{sum(in.tensors[0] * outside)};
    };
    CHECK_THROWS_WITH_AS(compile::capture<double>(step, {{Tensor64({1.0, 2.0})}, {}}),
                         doctest::Contains("computed before the capture on a graph (by 'exp')"), GraphError);
}

TEST_CASE("compile: labels reach one_hot and gather on every replay") {
    Tensor64 w = Tensor64::full({4, 3}, 0.1, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto scores = matmul(in.tensors[0], w);
        auto onehot = one_hot<double>(in.indices[0], 3);
        auto picked = gather(scores, 1, in.indices[0], Shape{2, 1});
        return std::vector<Tensor64>{sum(scores * onehot), sum(picked)};
    };
    Tensor64 x({{1.0, 2.0, 3.0, 4.0}, {-1.0, 0.5, 0.0, 2.0}});
    auto compiled = compile::capture<double>(step, {{x}, {{0, 1}}});
    CHECK(compiled.stats().bound_indices == 2);
    for (compile::Index labels : {compile::Index{2, 0}, compile::Index{1, 1}}) {
        auto got = compiled({{x}, {labels}});
        auto want = step({{x}, {labels}});
        CHECK(rel_diff(got[0], want[0]) <= 1e-15);
        CHECK(rel_diff(got[1], want[1]) <= 1e-15);
    }
}

TEST_CASE("compile: replays reuse the output and .grad buffers; the buffer cache stays flat") {
    Generator gen(4);
    nn::Linear<double> layer(6, 3, true, gen);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(tanh(layer.forward(in.tensors[0])));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    StepInputs<double> in{{batch<double>(4, 5)}, {}};
    auto compiled = compile::capture<double>(step, in);
    compiled(in);
    const auto* output = compiled(in)[0].impl().get();  // the caller keeps no output
    CHECK(compiled(in)[0].impl().get() == output);
    std::size_t cached = 0;
    for (int i = 0; i < 500; ++i) {
        compiled(in);
        if (i == 100) cached = cached_bytes();
    }
    CHECK(cached_bytes() == cached);  // every buffer a replay frees is taken again by the next
    // A gradient the caller holds is not overwritten by the next replay.
    auto held = layer.weight.grad();
    const Array<double> before = held.value();
    compiled({{batch<double>(4, 6)}, {}});
    CHECK(held.value() == before);
    CHECK_FALSE(layer.weight.grad().same(held));
}

TEST_CASE("compile: a Dropout or RReLU captured in training mode refuses a replay in evaluation mode") {
    nn::Dropout<double> drop(0.5, 7);
    nn::RReLU<double> rrelu(0.1, 0.3, 8);
    for (bool dropout : {true, false}) {
        CAPTURE(dropout);
        compile::StepFn<double> step = [&](const StepInputs<double>& in) {
            return std::vector<Tensor64>{dropout ? drop.forward(in.tensors[0]) : rrelu.forward(in.tensors[0])};
        };
        auto compiled = compile::capture<double>(step, {{Tensor64({1.0, -2.0, 3.0})}, {}});
        CHECK_NOTHROW(compiled({{Tensor64({1.0, -2.0, 3.0})}, {}}));
        drop.eval();
        rrelu.eval();
        const char* want = dropout ? "Dropout was captured in training mode and is in evaluation mode now"
                                   : "RReLU was captured in training mode and is in evaluation mode now";
        CHECK_THROWS_WITH_AS(compiled({{Tensor64({1.0, -2.0, 3.0})}, {}}), doctest::Contains(want), GraphError);
        drop.train();
        rrelu.train();
        CHECK_NOTHROW(compiled({{Tensor64({1.0, -2.0, 3.0})}, {}}));  // the program is still usable
    }
}

TEST_CASE("compile: an index input no op reads (a copy of the labels used instead) is refused") {
    Tensor64 w({{0.5, -1.0, 2.0}, {1.0, 0.5, -0.5}}, true);
    compile::StepFn<double> copied = [&](const StepInputs<double>& in) {
        Index labels = in.indices[0];  // a copy: would be a constant of the program
        auto loss = nn::cross_entropy(matmul(in.tensors[0], w), labels);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    CHECK_THROWS_WITH_AS(compile::capture<double>(copied, {{Tensor64({{1.0, 2.0}})}, {{2}}}),
                         doctest::Contains("index input 0 was read by no op"), GraphError);
}

TEST_CASE("compile: a step that calls backward into an input that requires grad writes that input's .grad") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(tanh(in.tensors[0] * w) * in.tensors[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto eager_grads = [&](const Tensor64& x) {
        Tensor64 x_eager(x.value(), true), w_eager(w.value(), true);
        sum(tanh(x_eager * w_eager) * x_eager).backward();
        return std::pair{x_eager.grad(), w_eager.grad()};
    };
    Tensor64 x({1.0, 2.0, 3.0}, true);
    x.set_grad(Tensor64({100.0, 100.0, 100.0}));  // from before: not part of the program
    auto compiled = compile::capture<double>(step, {{x}, {}});
    CHECK_FALSE(x.grad().requires_grad());  // off the capture's graph
    CHECK(rel_diff(x.grad(), eager_grads(x).first) <= 1e-12);
    CHECK(compiled.stats().gradients == 2);
    // A new tensor each replay, and the same tensor with a new value.
    Tensor64 x2({-1.0, 0.5, 4.0}, true);
    compiled({{x2}, {}});
    CHECK(rel_diff(x2.grad(), eager_grads(x2).first) <= 1e-12);
    CHECK(rel_diff(w.grad(), eager_grads(x2).second) <= 1e-12);
    x.modify([](auto& v) { v(0) = 5.0; });
    compiled({{x}, {}});
    compiled({{x}, {}});
    CHECK(rel_diff(x.grad(), eager_grads(x).first) <= 1e-12);
    // Whether the input requires grad is part of the program.
    CHECK_THROWS_WITH_AS(compiled({{Tensor64({1.0, 2.0, 3.0})}, {}}),
                         doctest::Contains("input 0 does not require grad, but did at capture"), ValueError);
}

TEST_CASE("compile: a parameter frozen or unfrozen since capture is named, not silently ignored") {
    Generator gen(9);
    nn::Linear<double> layer(6, 3, true, gen);
    compile::CaptureOptions<double> options;
    options.parameters = [&] { return layer.named_parameters(); };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(tanh(layer.forward(in.tensors[0])));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    StepInputs<double> in{{batch<double>(5, 1)}, {}};
    auto compiled = compile::capture<double>(step, in, options);
    compiled(in);
    layer.bias.requires_grad_(false);  // frozen: eager mode would leave bias.grad alone
    CHECK_THROWS_WITH_AS(compiled(in), doctest::Contains("parameter 'bias' no longer requires grad"), GraphError);
    layer.bias.requires_grad_(true);
    compiled(in);
    // Captured frozen, then unfrozen: eager mode would compute its gradient.
    layer.bias.requires_grad_(false);
    auto frozen = compile::capture<double>(step, in, options);
    layer.bias.requires_grad_(true);
    CHECK_THROWS_WITH_AS(frozen(in), doctest::Contains("requires grad now, but did not"), GraphError);
}

TEST_CASE("compile: an in-place write to a listed parameter inside the step names the parameter") {
    Generator gen(9);
    nn::Linear<double> layer(6, 3, true, gen);
    compile::CaptureOptions<double> options;
    options.parameters = [&] { return layer.named_parameters(); };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(layer.forward(in.tensors[0]));
        layer.weight.modify([](auto& v) { v *= 0.5; });  // an optimiser's update inside the step
        return std::vector<Tensor64>{loss};
    };
    CHECK_THROWS_WITH_AS(compile::capture<double>(step, {{batch<double>(5, 1)}, {}}, options),
                         doctest::Contains("parameter 'weight' was modified in place"), GraphError);
}

TEST_CASE("compile: inputs passed twice at replay, or computed on a graph, are refused by name") {
    Tensor64 w({0.5, -1.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(in.tensors[0] * w + in.tensors[1]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    Tensor64 a({1.0, 2.0}, true), b({3.0, 4.0}, true);
    auto compiled = compile::capture<double>(step, {{a, b}, {}});
    CHECK_THROWS_WITH_AS(compiled({{a, a}, {}}), doctest::Contains("inputs 0 and 1 are the same tensor"), ValueError);
    Tensor64 leaf({1.0, 2.0}, true);
    CHECK_THROWS_WITH_AS(compile::capture<double>(step, {{leaf * 2.0, b}, {}}),
                         doctest::Contains("input 0 was computed on a graph (by 'mul_scalar')"), GraphError);
    // A .grad left from before the input was frozen is not the step's.
    REQUIRE(b.grad().defined());
    b.requires_grad_(false);
    auto frozen = compile::capture<double>(step, {{a, b}, {}});
    CHECK(frozen.stats().gradients == 2);  // w and input 0
}
