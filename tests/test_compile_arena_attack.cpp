// Attacks on the memory plan of compiled steps (core/arena.hpp), kept as
// regression tests: each states what a caller may expect (a kept loss or
// gradient never changes, the heap stays bounded, threads may release what a
// replay handed over) and checks replays against eager mode.
#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <malloc.h>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/core/memory.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;
using compile::StepInputs;
using op_test::rel_diff;

namespace {
Tensor64 randn(std::vector<std::size_t> shape, std::uint64_t seed) {
    Generator gen(seed);
    return Tensor64::randn(shape, gen);
}
}  // namespace

// A loss of one op after a product: nothing the replay frees before the
// loss is made can share its bytes, so the plan puts the loss where only the
// loss goes. Holding the returned loss (losses.push_back(step(in)[0])) and
// replaying again must leave it unchanged.
TEST_CASE("compile arena attack: a held loss keeps its value over the next replays") {
    Generator gen(3);
    auto w = Tensor64::randn({4, 4}, gen).requires_grad_();
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = sum(in.tensors[0] * w);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto compiled = compile::capture<double>(step, {{randn({4, 4}, 1)}, {}});
    std::vector<Tensor64> losses, grads;
    std::vector<double> want_loss;
    std::vector<Array<double>> want_grad;
    for (std::uint64_t k = 2; k < 8; ++k) {
        auto x = randn({4, 4}, k);
        losses.push_back(compiled({{x}, {}})[0]);
        grads.push_back(w.grad());
        want_loss.push_back(sum(x * w).item());
        want_grad.push_back(x.value());
    }
    for (std::size_t i = 0; i < losses.size(); ++i) {
        CAPTURE(i);
        CHECK(losses[i].item() == doctest::Approx(want_loss[i]).epsilon(1e-12));
        CHECK(rel_diff(grads[i], Tensor64(want_grad[i])) <= 1e-12);
    }
}

namespace {
// Two layers and a cross-entropy, as tests/test_compile_arena.cpp.
struct Model {
    Generator gen{21};
    nn::Linear<double> l1{5, 7, true, gen}, l2{7, 3, true, gen};
    std::vector<Tensor64> params() { return {l1.weight, l1.bias, l2.weight, l2.bias}; }
    Tensor64 loss(const Tensor64& x, const compile::Index& y) {
        return nn::cross_entropy(l2.forward(tanh(l1.forward(x))), y);
    }
};
compile::Index labels(std::uint64_t seed) {
    compile::Index l(6);
    for (std::size_t i = 0; i < l.size(); ++i) l[i] = std::int64_t((i * 7 + seed) % 3);
    return l;
}
compile::CompiledStep<double> capture_model(Model& m) {
    compile::StepFn<double> step = [&m](const StepInputs<double>& in) {
        auto loss = m.loss(in.tensors[0], in.indices[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    return compile::capture<double>(step, {{randn({6, 5}, 1)}, {labels(1)}});
}
}  // namespace

// The plainest training loop that keeps a loss history: every loss held
// from a replay served by the arena takes the next replay's value.
TEST_CASE("compile arena attack: a training loop's loss history equals eager mode's") {
    Model captured, eager;
    auto compiled = capture_model(captured);
    nn::SGD<double> opt_c(captured.params(), 0.1), opt_e(eager.params(), 0.1);
    std::vector<Tensor64> history;
    std::vector<double> want;
    for (std::uint64_t k = 2; k < 12; ++k) {
        history.push_back(compiled({{randn({6, 5}, k)}, {labels(k)}})[0]);
        opt_c.step();
        opt_e.zero_grad();
        auto l = eager.loss(randn({6, 5}, k), labels(k));
        l.backward();
        opt_e.step();
        want.push_back(l.item());
    }
    int wrong = 0;
    for (std::size_t i = 0; i < history.size(); ++i) {
        CAPTURE(i);
        wrong += std::abs(history[i].item() - want[i]) > 1e-12 * std::abs(want[i]);
        CHECK(history[i].item() == doctest::Approx(want[i]).epsilon(1e-12));
    }
    int last = 0;  // all in the same bytes: the last replay's loss
    for (std::size_t i = 0; i + 1 < history.size(); ++i) last += history[i].item() == doctest::Approx(want.back());
    INFO("losses overwritten: ", wrong, " of ", history.size(), " (", last, " equal to the last replay's loss); misses ",
            compiled.stats().arena_misses);
}

// Gradient snapshots (an average of the last k gradients, a gradient norm
// logged later): each replay's .grad held by the caller.
TEST_CASE("compile arena attack: held gradients keep their values") {
    Model captured, eager;
    auto compiled = capture_model(captured);
    std::vector<std::vector<Tensor64>> held;
    std::vector<std::vector<Array<double>>> want;
    for (std::uint64_t k = 2; k < 12; ++k) {
        compiled({{randn({6, 5}, k)}, {labels(k)}});
        held.emplace_back();
        for (auto& p : captured.params()) held.back().push_back(p.grad());
        for (auto& p : eager.params()) p.zero_grad();
        eager.loss(randn({6, 5}, k), labels(k)).backward();
        want.emplace_back();
        for (auto& p : eager.params()) want.back().push_back(p.grad().value());
    }
    int wrong = 0;
    for (std::size_t i = 0; i < held.size(); ++i)
        for (std::size_t j = 0; j < held[i].size(); ++j) {
            CAPTURE(i);
            CAPTURE(j);
            const bool ok = rel_diff(held[i][j], Tensor64(want[i][j])) <= 1e-12;
            wrong += !ok;
            CHECK(ok);
        }
    INFO("gradients overwritten: ", wrong, "; misses ", compiled.stats().arena_misses);
}

// Gradient snapshots kept every few replays (for a later diagnostic). A
// snapshot whose bytes the plan shares with earlier temporaries makes the
// next replay leave the plan, and the arena plans again: the snapshot then
// holds a replaced plan's whole block. One it shares with nothing is
// served again, in place, by the next replay. Eager mode: the snapshots'
// bytes and their values, unchanged.
TEST_CASE("compile arena attack: gradient snapshots held every few replays") {
    for (int which = 0; which < 4; ++which) {
        CAPTURE(which);
        Generator gen(5);
        nn::Linear<double> l1{256, 512, true, gen}, l2{512, 4, true, gen};
        std::vector<Tensor64> params{l1.weight, l1.bias, l2.weight, l2.bias};
        compile::StepFn<double> step = [&](const StepInputs<double>& in) {
            auto loss = mean(l2.forward(tanh(l1.forward(in.tensors[0]))));
            loss.backward();
            return std::vector<Tensor64>{loss};
        };
        auto compiled = compile::capture<double>(step, {{randn({256, 256}, 1)}, {}});
        compiled({{randn({256, 256}, 2)}, {}});
        compiled({{randn({256, 256}, 3)}, {}});
        release_cached_memory();
        const auto before = mallinfo2().uordblks + mallinfo2().hblkhd;
        std::vector<Tensor64> snapshots;
        std::vector<Array<double>> copies;
        for (std::uint64_t k = 4; k < 64; ++k) {
            compiled({{randn({256, 256}, k)}, {}});
            if (k % 3 == 0) {
                snapshots.push_back(params[which].grad());
                copies.push_back(snapshots.back().value());
            }
        }
        release_cached_memory();
        const auto after = mallinfo2().uordblks + mallinfo2().hblkhd;
        int changed = 0;
        for (std::size_t i = 0; i < snapshots.size(); ++i) changed += !(snapshots[i].value() == copies[i]);
        const auto s = compiled.stats();
        std::size_t held = 0;
        for (auto& c : copies) held += c.size() * sizeof(double);
        INFO("parameter ", which, ": block ", s.arena_bytes / 1024, " KiB; ", snapshots.size(), " snapshots of ",
                held / snapshots.size(), " B: heap +", (after - before) / 1024, " KiB (copies included: ",
                held / 1024, " KiB); snapshots changed after taken: ", changed, "; misses ", s.arena_misses);
        CHECK(changed == 0);
        CHECK(after - before < 2 * held + 2 * s.arena_bytes + (1u << 20));
    }
}

// Buffers served from the arena released on another thread while the
// program replays: Arena::release updates the plan's counts of live buffers
// with plain (not atomic) writes from the releasing thread.
namespace {
// Returns the heap bytes left after the program and its outputs are gone.
long replay_and_release(bool on_another_thread, int replays) {
  Model m;
  release_cached_memory();
  const auto before = mallinfo2().uordblks + mallinfo2().hblkhd;
  {
    auto compiled = capture_model(m);
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Tensor64> queue;
    bool done = false;
    std::thread consumer([&] {
        for (;;) {
            if (!on_another_thread) return;
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return done || !queue.empty(); });
            if (queue.empty()) return;
            auto t = std::move(queue.front());
            queue.pop_front();
            lock.unlock();
            t = Tensor64();  // released here, concurrently with the next replay
        }
    });
    auto x = randn({6, 5}, 2);
    auto y = labels(2);
    for (int k = 0; k < replays; ++k) {
        Tensor64 out = compiled({{x}, {y}})[0];
        if (!on_another_thread) continue;
        {
            std::lock_guard<std::mutex> lock(mu);
            queue.push_back(std::move(out));
        }
        cv.notify_one();
    }
    {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
    }
    cv.notify_one();
    consumer.join();
    INFO("misses ", compiled.stats().arena_misses, ", block ", compiled.stats().arena_bytes);
  }
  for (auto& p : m.params()) p.zero_grad();
  release_cached_memory();
  const auto after = mallinfo2().uordblks + mallinfo2().hblkhd;
  return long(after) - long(before);
}
}  // namespace

TEST_CASE("compile arena attack: outputs released on a consumer thread while the program replays") {
    for (int i = 0; i < 3; ++i) {
        const long same = replay_and_release(false, 20000), other = replay_and_release(true, 20000);
        INFO("heap left after the program is gone: released on the replaying thread ", same,
                " B, on a consumer thread ", other, " B");
        // A lost decrement would leave the block (3 KiB) behind; under
        // AddressSanitizer, a lost increment frees it under a live buffer.
    }
}

// The recorded replay (the first after capture) stops on an error: the
// arena plans from what it saw, and the replays after it must still equal
// eager mode.
TEST_CASE("compile arena attack: the recorded replay stops on an error") {
    Model captured, eager;
    auto compiled = capture_model(captured);
    compile::Index bad = labels(2);
    bad[4] = 9;  // out of range: cross_entropy throws after the forward's temporaries
    CHECK_THROWS(compiled({{randn({6, 5}, 2)}, {bad}}));
    for (std::uint64_t k = 3; k < 9; ++k) {
        CAPTURE(k);
        auto loss = compiled({{randn({6, 5}, k)}, {labels(k)}})[0].item();
        for (auto& p : eager.params()) p.zero_grad();
        auto want = eager.loss(randn({6, 5}, k), labels(k));
        want.backward();
        CHECK(loss == doctest::Approx(want.item()).epsilon(1e-12));
        auto pc = captured.params(), pe = eager.params();
        for (std::size_t i = 0; i < pc.size(); ++i) CHECK(rel_diff(pc[i].grad(), pe[i].grad()) <= 1e-12);
    }
}

namespace {
// A user op (core/op.hpp) whose forward makes as many temporaries of its
// input's size as the input has positive entries: the replay's requests
// shift from replay to replay, sizes matching other requests' positions.
template <class T>
BasicTensor<T> shifty(const BasicTensor<T>& x) {
    Op<T> op("user::shifty", {x});
    auto y = op.forward([](const Array<T>& v) {
        std::vector<Array<T>> scratch;
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v.data()[i] > 0) scratch.push_back(Array<T>(v * T(i + 1)));
        Array<T> out = v * T(2);
        for (auto& s : scratch) out += s * T(0);  // reads them; the result is 2 v
        return out;
    });
    return op.record(y, [](VjpContext<T>&, const BasicTensor<T>& g) { return Grads<T>{g * T(2)}; });
}
}  // namespace

TEST_CASE("compile arena attack: a user op whose forward allocates a value-dependent number of buffers") {
    Generator gen(8);
    auto w = Tensor64::randn({8, 8}, gen).requires_grad_();
    auto step_of = [&](const Tensor64& x) {
        auto h = shifty(matmul(x, w));
        auto loss = sum(tanh(h) * shifty(h));
        loss.backward();
        return loss;
    };
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        return std::vector<Tensor64>{step_of(in.tensors[0])};
    };
    auto compiled = compile::capture<double>(step, {{randn({8, 8}, 1)}, {}});
    for (std::uint64_t k = 2; k < 40; ++k) {
        CAPTURE(k);
        auto x = randn({8, 8}, k);
        const double got = compiled({{x}, {}})[0].item();
        const Array<double> got_grad = w.grad().value();
        w.zero_grad();
        const double want = step_of(x).item();
        CHECK(got == doctest::Approx(want).epsilon(1e-12));
        CHECK(rel_diff(Tensor64(got_grad), w.grad()) <= 1e-12);
        w.zero_grad();
    }
    INFO("misses ", compiled.stats().arena_misses, ", block ", compiled.stats().arena_bytes);
}

// Two programs over the same parameters (the same model captured twice, for
// two batch sizes), replayed in turn: each one's gradients released by the
// other's replay.
TEST_CASE("compile arena attack: the same model captured twice, replayed interleaved") {
    Model captured, eager;
    auto a = capture_model(captured);
    compile::StepFn<double> step = [&](const StepInputs<double>& in) {
        auto loss = captured.loss(in.tensors[0], in.indices[0]);
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    compile::Index l3{0, 1, 2};
    auto b = compile::capture<double>(step, {{randn({3, 5}, 1)}, {l3}});
    for (std::uint64_t k = 2; k < 12; ++k) {
        CAPTURE(k);
        const bool use_a = k % 3 != 0;
        auto x = use_a ? randn({6, 5}, k) : randn({3, 5}, k);
        auto y = use_a ? labels(k) : l3;
        const double got = (use_a ? a : b)({{x}, {y}})[0].item();
        for (auto& p : eager.params()) p.zero_grad();
        auto want = eager.loss(x, y);
        want.backward();
        CHECK(got == doctest::Approx(want.item()).epsilon(1e-12));
        auto pc = captured.params(), pe = eager.params();
        for (std::size_t i = 0; i < pc.size(); ++i) CHECK(rel_diff(pc[i].grad(), pe[i].grad()) <= 1e-12);
    }
}

// create_graph outputs (grad() inside the step), kept the usual way: the
// returned vector copied (auto got = compiled(in)).
TEST_CASE("compile arena attack: grad() outputs of an earlier replay, held") {
    compile::StepFn<double> step = [](const StepInputs<double>& in) {
        auto x = in.tensors[0];
        auto y = sum(sin(x) * x * x);
        auto g = grad(y, {x}, {}, BackwardOptions{false, true})[0];
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
    std::vector<std::vector<Tensor64>> got, want;
    for (double shift : {0.5, -0.25, 1.5, 0.75, -1.0}) {
        Tensor64 x(Array<double>(x0.value() + shift), true);
        got.push_back(compiled({{x}, {}}));
        want.push_back(eager(x));
    }
    for (std::size_t r = 0; r < got.size(); ++r)
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(r);
            CAPTURE(i);
            CHECK(rel_diff(got[r][i], want[r][i]) <= 1e-12);
        }
}

namespace {
// A user op whose forward replays another compiled program (an inner
// model's step run as one op of an outer one): the inner replay's buffer
// requests reach the outer program's arena.
// While the outer step is captured, a replay is refused: the op computes
// the inner program's value by hand then (3 tanh(v wi), 4 x 4).
Tensor64 run_inner(compile::CompiledStep<double>& inner, const Tensor64& x, const Tensor64& wi) {
    Op<double> op("user::inner_program", {x});
    auto y = op.forward([&inner, wi](const Array<double>& v) {
        if (detail::capture_sink<double>()) {
            Array<double> out = Array<double>::from_shape({4, 4});
            const auto& w = wi.value();
            for (std::size_t i = 0; i < 4; ++i)
                for (std::size_t j = 0; j < 4; ++j) {
                    double acc = 0;
                    for (std::size_t l = 0; l < 4; ++l) acc += v(i, l) * w(l, j);
                    out(i, j) = 3.0 * std::tanh(acc);
                }
            return out;
        }
        Tensor64 in{Array<double>(v)};
        const auto& out = inner({{in}, {}});
        return Array<double>(out[0].value() + out[1].value());
    });
    return op.record(y, [](VjpContext<double>&, const Tensor64&) { return Grads<double>{Tensor64()}; });  // a constant to the outer step
}
}  // namespace

TEST_CASE("compile arena attack: a program replayed inside another program's op") {
    Generator gen(4);
    auto wi = Tensor64::randn({4, 4}, gen).requires_grad_();
    auto wo = Tensor64::randn({4, 4}, gen).requires_grad_();
    compile::StepFn<double> inner_step = [&](const StepInputs<double>& in) {
        auto h = tanh(matmul(in.tensors[0], wi));
        auto loss = sum(h * h);
        loss.backward();
        return std::vector<Tensor64>{h, h * 2.0};
    };
    auto inner = compile::capture<double>(inner_step, {{randn({4, 4}, 1)}, {}});
    auto outer_of = [&](const Tensor64& x, bool compiled_inner) {
        auto h = matmul(x, wo);
        Tensor64 mid = compiled_inner ? run_inner(inner, h, wi) : Tensor64(Array<double>(3.0 * tanh(matmul(h, wi)).value()));
        auto loss = sum(mid * h);
        loss.backward();
        return loss;
    };
    compile::StepFn<double> outer_step = [&](const StepInputs<double>& in) {
        return std::vector<Tensor64>{outer_of(in.tensors[0], true)};
    };
    auto outer = compile::capture<double>(outer_step, {{randn({4, 4}, 2)}, {}});
    for (std::uint64_t k = 3; k < 12; ++k) {
        CAPTURE(k);
        auto x = randn({4, 4}, k);
        const double got = outer({{x}, {}})[0].item();
        const Array<double> got_grad = wo.grad().value();
        wo.zero_grad();
        const double want = outer_of(x, false).item();
        CHECK(got == doctest::Approx(want).epsilon(1e-12));
        CHECK(rel_diff(Tensor64(got_grad), wo.grad()) <= 1e-12);
    }
    INFO("outer misses ", outer.stats().arena_misses, ", block ", outer.stats().arena_bytes, "; inner block ",
            inner.stats().arena_bytes);
}

// The program destroyed (and another one's replays reusing memory) while
// its last loss and gradients are held.
TEST_CASE("compile arena attack: outputs and gradients held past the program") {
    Model m;
    Tensor64 loss, grad;
    Array<double> loss_then, grad_then;
    {
        auto compiled = capture_model(m);
        for (std::uint64_t k = 2; k < 6; ++k) {
            loss = Tensor64();
            grad = Tensor64();
            loss = compiled({{randn({6, 5}, k)}, {labels(k)}})[0];
            grad = m.l1.weight.grad();
        }
        loss_then = loss.value();
        grad_then = grad.value();
        auto moved = std::move(compiled);
    }
    for (auto& p : m.params()) p.zero_grad();
    Model other;
    auto again = capture_model(other);
    for (std::uint64_t k = 2; k < 8; ++k) again({{randn({6, 5}, k)}, {labels(k)}});
    CHECK(loss.value() == loss_then);
    CHECK(grad.value() == grad_then);
}

// Nothing held: the heap stays flat over many replays.
TEST_CASE("compile arena attack: the heap stays flat over many replays") {
    Model m;
    auto compiled = capture_model(m);
    nn::SGD<double> opt(m.params(), 0.01);
    auto x = randn({6, 5}, 2);
    auto y = labels(2);
    std::size_t at100 = 0;
    for (int k = 0; k < 3000; ++k) {
        compiled({{x}, {y}});
        opt.step();
        if (k == 100) at100 = mallinfo2().uordblks + mallinfo2().hblkhd;
    }
    const auto end = mallinfo2().uordblks + mallinfo2().hblkhd;
    INFO("heap after 100 replays ", at100, " B, after 3000 ", end, " B; misses ", compiled.stats().arena_misses);
    CHECK(end <= at100 + 4096);
}

// The loop variable declared outside the loop: the last loss is held while
// the next replay runs, then let go by the assignment. Its release marks
// the bytes the new loss shares with it free (and, under AddressSanitizer,
// poisons them: reading the new loss is then a use-after-poison report).
TEST_CASE("compile arena attack: a loss variable assigned each iteration") {
    Model captured, eager;
    auto compiled = capture_model(captured);
    Tensor64 loss;
    for (std::uint64_t k = 2; k < 8; ++k) {
        CAPTURE(k);
        loss = compiled({{randn({6, 5}, k)}, {labels(k)}})[0];
        for (auto& p : eager.params()) p.zero_grad();
        auto want = eager.loss(randn({6, 5}, k), labels(k));
        want.backward();
        CHECK(loss.item() == doctest::Approx(want.item()).epsilon(1e-12));
    }
}
