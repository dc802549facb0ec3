// The memory plan of compiled steps (core/arena.hpp, docs/compile.md
// "Memory plan"): from the second replay on, a program's buffers live in one
// planned block; values handed to the caller and held are never overwritten,
// whatever the caller does with them; a replay that stopped on an error or
// left the plan is followed by correct ones.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include <xtensor/xbuilder.hpp>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/memory.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using compile::StepInputs;
using op_test::rel_diff;

namespace {

// Two layers and a cross-entropy: temporaries of several sizes, a gradient
// per parameter, a loss handed over.
struct Model {
    Generator gen{21};
    nn::Linear<double> l1{5, 7, true, gen}, l2{7, 3, true, gen};
    std::vector<Tensor64> params() { return {l1.weight, l1.bias, l2.weight, l2.bias}; }
    Tensor64 loss(const Tensor64& x, const compile::Index& y) {
        return nn::cross_entropy(l2.forward(tanh(l1.forward(x))), y);
    }
};

Tensor64 batch(std::uint64_t seed) {
    Generator gen(seed);
    return Tensor64::randn({6, 5}, gen);
}

compile::Index labels(std::uint64_t seed) {
    compile::Index l(6);
    for (std::size_t i = 0; i < l.size(); ++i) l[i] = std::int64_t((i + seed) % 3);
    return l;
}

struct Fixture {
    Model captured, eager;  // the same weights
    compile::CompiledStep<double> compiled;
    Fixture() {
        compile::StepFn<double> step = [this](const StepInputs<double>& in) {
            auto loss = captured.loss(in.tensors[0], in.indices[0]);
            loss.backward();
            return std::vector<Tensor64>{loss};
        };
        compiled = compile::capture<double>(step, {{batch(1)}, {labels(1)}});
    }
    // One replay on batch `seed`, checked against eager mode on the same batch.
    void replay_and_check(std::uint64_t seed) {
        CAPTURE(seed);
        auto loss = compiled({{batch(seed)}, {labels(seed)}})[0];
        for (auto& p : eager.params()) p.zero_grad();
        auto want = eager.loss(batch(seed), labels(seed));
        want.backward();
        CHECK(rel_diff(loss, want) <= 1e-12);
        auto pc = captured.params(), pe = eager.params();
        for (std::size_t i = 0; i < pc.size(); ++i) CHECK(rel_diff(pc[i].grad(), pe[i].grad()) <= 1e-12);
    }
};

}  // namespace

TEST_CASE("compile arena: from the second replay on, the program's buffers come from one planned block") {
    Fixture f;
    CHECK(f.compiled.stats().arena_bytes == 0);  // planned from the first replay's requests
    for (std::uint64_t k = 2; k < 8; ++k) f.replay_and_check(k);
    const auto s = f.compiled.stats();
    if (!buffer_cache_enabled()) {  // the sanitizer builds' default: every buffer from malloc
        CHECK(s.arena_bytes == 0);
        return;
    }
    CHECK(s.arena_bytes > 0);
    CHECK(s.arena_buffers > 0);
    CHECK(s.arena_misses == 0);
}

TEST_CASE("compile arena: a gradient or output the caller holds is never overwritten by later replays") {
    Fixture f;
    f.replay_and_check(2);
    f.replay_and_check(3);  // served from the block
    auto held_grad = f.captured.l1.weight.grad();
    auto held_loss = f.compiled({{batch(4)}, {labels(4)}})[0];
    held_grad = f.captured.l1.weight.grad();
    const Array<double> grad_before = held_grad.value(), loss_before = held_loss.value();
    for (std::uint64_t k = 5; k < 9; ++k) {
        f.replay_and_check(k);
        CHECK(held_grad.value() == grad_before);
        CHECK(held_loss.value() == loss_before);
    }
    // Let go of them: the program plans again and stays correct.
    held_grad = Tensor64();
    held_loss = Tensor64();
    for (std::uint64_t k = 9; k < 14; ++k) f.replay_and_check(k);
    if (buffer_cache_enabled()) CHECK(f.compiled.stats().arena_bytes > 0);
}

TEST_CASE("compile arena: a gradient outlives the program that computed it") {
    Model m;
    Tensor64 grad;
    {
        compile::StepFn<double> step = [&](const StepInputs<double>& in) {
            auto loss = m.loss(in.tensors[0], in.indices[0]);
            loss.backward();
            return std::vector<Tensor64>{loss};
        };
        auto compiled = compile::capture<double>(step, {{batch(1)}, {labels(1)}});
        for (std::uint64_t k = 2; k < 5; ++k) compiled({{batch(k)}, {labels(k)}});
        grad = m.l2.weight.grad();
    }
    const Array<double> kept = grad.value();
    for (int i = 0; i < 20; ++i) (void)(batch(100 + i) * 2.0);  // reuse freed memory, if any was freed
    CHECK(grad.value() == kept);
    Model fresh;  // the same weights: the same gradient on the same batch
    fresh.loss(batch(4), labels(4)).backward();
    CHECK(rel_diff(grad, fresh.l2.weight.grad()) <= 1e-12);
}

TEST_CASE("compile arena: a replay that stops on an error is followed by correct replays") {
    Fixture f;
    f.replay_and_check(2);
    f.replay_and_check(3);
    compile::Index bad = labels(4);
    bad[3] = 7;  // out of range for 3 classes: the loss throws mid-replay
    CHECK_THROWS_AS(f.compiled({{batch(4)}, {bad}}), ValueError);
    for (std::uint64_t k = 5; k < 9; ++k) f.replay_and_check(k);
}

TEST_CASE("compile arena: a held gradient is not served again in a program where nothing else shares its bytes") {
    // One fused run and its gradient: no other planned buffer overlaps the
    // gradient's bytes, so only the check of the buffer itself can see that
    // the caller still holds it.
    Tensor64 w(Array<double>(xt::ones<double>({2, 3}) * 0.5), true);
    auto wave = [](double shift) {
        Array<double> v = Array<double>::from_shape({2, 3});
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = std::sin(0.7 * double(i) + shift);
        return Tensor64(v);
    };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(w * w * in.tensors[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{wave(0)}, {}});
    compiled({{wave(1)}, {}});
    compiled({{wave(2)}, {}});
    Tensor64 held = w.grad();
    const Array<double> before = held.value();
    for (double shift : {3.0, 4.0, 5.0}) {
        compiled({{wave(shift)}, {}});
        CHECK(held.value() == before);
        CHECK(held.value().data() != w.grad().value().data());
        const Array<double> want = 2.0 * w.value() * wave(shift).value();
        CHECK(w.grad().value() == want);
    }
}

TEST_CASE("compile arena: input gradients of two tensors passed in turn stay apart") {
    Tensor64 w({0.5, -1.0, 2.0}, true);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(tanh(in.tensors[0] * w));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    Tensor64 x({1.0, 2.0, 3.0}, true), y({-1.0, 0.5, 0.25}, true);
    auto compiled = compile::capture<double>(step, {{x}, {}});
    auto want = [&](const Tensor64& t) {
        Tensor64 e(t.value(), true);
        sum(tanh(e * w.detach())).backward();
        return e.grad();
    };
    for (int round = 0; round < 3; ++round) {
        compiled({{x}, {}});
        compiled({{y}, {}});
        CHECK(rel_diff(x.grad(), want(x)) <= 1e-12);
        CHECK(rel_diff(y.grad(), want(y)) <= 1e-12);
    }
}
