// Activation checkpointing (core/activation_checkpoint.hpp): gradients
// bitwise equal to the eager ones, in backward() and grad(), second
// derivatives, random state replayed, misuse refused, and the memory it
// saves measured with the profiler.
#include <memory>
#include <thread>

#include <tapegrad/nn/nn.hpp>

#include "op_test_util.hpp"

namespace {

// An MLP of `depth` Linear + tanh + Dropout blocks, and a forward that may
// checkpoint every `segment` blocks (0: eager). Dropout draws from its own
// generator, and a noise term from the default one, so both kinds of
// randomness are replayed.
template <class T>
struct Net {
    std::vector<std::unique_ptr<nn::Linear<T>>> layers;
    std::vector<std::unique_ptr<nn::Dropout<T>>> drops;

    Net(std::size_t depth, std::size_t width, std::uint64_t seed) {
        Generator gen(seed);
        for (std::size_t i = 0; i < depth; ++i) {
            layers.push_back(std::make_unique<nn::Linear<T>>(width, width, true, gen));
            drops.push_back(std::make_unique<nn::Dropout<T>>(T(0.2), seed + i));
        }
    }

    BasicTensor<T> block(std::size_t i, const BasicTensor<T>& h) {
        auto noise = BasicTensor<T>::rand(h.shape_vector(), T(0.9), T(1.1));  // default generator
        return (*drops[i])(tanh((*layers[i])(h)) * noise);
    }

    std::vector<Generator*> generators() {
        std::vector<Generator*> g;
        for (auto& d : drops) g.push_back(&d->generator());
        return g;
    }

    // list_generators: name the dropouts' generators in CheckpointOptions;
    // otherwise checkpoint must find them itself (a forgotten one would give
    // new masks in the recomputation: wrong gradients, no error).
    BasicTensor<T> forward(BasicTensor<T> h, std::size_t segment, bool list_generators = true) {
        for (std::size_t start = 0; start < layers.size();) {
            const std::size_t stop = segment ? std::min(start + segment, layers.size()) : layers.size();
            auto run = [this, start, stop](const BasicTensor<T>& x) {
                auto y = x;
                for (std::size_t i = start; i < stop; ++i) y = block(i, y);
                return y;
            };
            h = segment ? checkpoint<T>(run, h, list_generators ? CheckpointOptions{generators()} : CheckpointOptions{})
                        : run(h);
            start = stop;
        }
        return h;
    }

    std::vector<BasicTensor<T>> parameters() {
        std::vector<BasicTensor<T>> p;
        for (auto& l : layers) {
            p.push_back(l->weight);
            p.push_back(l->bias);
        }
        return p;
    }

    // Every generator back to a known state.
    void reseed(std::uint64_t seed) {
        manual_seed(seed);
        for (std::size_t i = 0; i < drops.size(); ++i) drops[i]->generator().seed(seed + i);
    }
};

template <class T>
bool same(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return a.defined() && b.defined() && a.shape() == b.shape() && a.value() == b.value();
}

template <class T>
void check_bitwise_equal_to_eager(bool list_generators) {
    CAPTURE(list_generators);
    set_num_threads(1);  // one BLAS thread: the same products in the same order
    Net<T> net(8, 6, 3);
    Generator gen(4);
    auto x = BasicTensor<T>::randn({5, 6}, gen, T(0), T(1), true);

    std::vector<BasicTensor<T>> eager;
    net.reseed(10);
    auto a = net.forward(x, 0);
    auto b = net.forward(x, 0);  // two uses: fan-out into x
    auto loss = (a * b).sum();
    loss.backward();
    for (auto& p : net.parameters()) eager.push_back(p.grad());
    eager.push_back(x.grad());
    const std::string after_eager = default_generator().state();

    for (auto& p : net.parameters()) p.zero_grad();
    x.zero_grad();
    net.reseed(10);
    auto a_ckpt = net.forward(x, 3, list_generators);  // segments of 3, 3 and 2 blocks
    auto b_ckpt = net.forward(x, 3, list_generators);
    auto loss_ckpt = (a_ckpt * b_ckpt).sum();
    CHECK(loss_ckpt.value() == loss.value());
    loss_ckpt.backward();
    // Replaying the random state put the generators back where they were.
    CHECK(default_generator().state() == after_eager);
    auto params = net.parameters();
    for (std::size_t k = 0; k < params.size(); ++k) {
        CAPTURE(k);
        CHECK(same(params[k].grad(), eager[k]));
    }
    CHECK(same(x.grad(), eager.back()));
}

}  // namespace

TEST_CASE("checkpoint: gradients bitwise equal to eager, with dropout, in segments (float32 and float64)") {
    check_bitwise_equal_to_eager<float>(true);
    check_bitwise_equal_to_eager<float>(false);
    check_bitwise_equal_to_eager<double>(true);
    check_bitwise_equal_to_eager<double>(false);
}

TEST_CASE("checkpoint: grad() gives the eager gradients and touches no .grad") {
    Net<double> net(4, 5, 7);
    auto x = uniform({3, 5}, 8);
    x.requires_grad_(true);
    auto wrt = net.parameters();
    wrt.push_back(x);
    net.reseed(1);
    auto eager = grad(net.forward(x, 0).sum(), wrt);
    net.reseed(1);
    auto ckpt = grad(net.forward(x, 2).sum(), wrt);
    for (std::size_t k = 0; k < wrt.size(); ++k) {
        CAPTURE(k);
        CHECK(same(ckpt[k], eager[k]));
        CHECK_FALSE(wrt[k].grad().defined());
    }
    // Only some of the parameters asked for: the others are not needed.
    net.reseed(1);
    auto one = grad(net.forward(x, 2).sum(), {net.layers[1]->weight});
    CHECK(same(one[0], eager[2]));
}

TEST_CASE("checkpoint: finite differences, first and second order, through explicit and captured tensors") {
    auto w = uniform({3, 3}, 2);
    w.requires_grad_(true);
    auto block = [&w](const std::vector<Tensor64>& in) { return tanh(matmul(in[0], w) + in[1]).exp(); };
    auto f = [&](const std::vector<Tensor64>& in) {
        // w is captured by the block, and also an input of f here so gradcheck moves it.
        w = in[2];
        return checkpoint<double>(block, {in[0], in[1]}).logsumexp();
    };
    const std::vector<Tensor64> in = {uniform({2, 3}, 3), uniform({3}, 4), uniform({3, 3}, 5)};
    REQUIRE_GRADCHECK(f, in);
    REQUIRE_GRADGRADCHECK(f, in);
}

TEST_CASE("checkpoint: second derivatives equal the eager ones (create_graph through the recomputation)") {
    auto w = uniform({4, 4}, 12);
    w.requires_grad_(true);
    auto x = uniform({3, 4}, 13);
    x.requires_grad_(true);
    auto block = [&w](const Tensor64& h) { return tanh(matmul(h, w)) * tanh(matmul(h, w)); };
    auto second = [&](bool ckpt) {
        auto y = ckpt ? checkpoint<double>(block, x) : block(x);
        auto g = grad(y.sum(), {x, w}, {}, {/*retain_graph=*/false, /*create_graph=*/true});
        auto s = (g[0] * g[0]).sum() + (g[1] * g[1]).sum();
        return grad(s, {x, w});
    };
    auto eager = second(false), ckpt = second(true);
    for (std::size_t k = 0; k < 2; ++k) {
        const auto& a = ckpt[k].value();
        const auto& b = eager[k].value();
        REQUIRE(a.shape() == b.shape());
        for (std::size_t i = 0; i < a.size(); ++i) CHECK(a.flat(i) == doctest::Approx(b.flat(i)).epsilon(1e-12));
    }
}

TEST_CASE("checkpoint: misuse is refused with the reason") {
    auto x = uniform({2, 2}, 1);
    x.requires_grad_(true);
    auto y = x * 2.0;  // a non-leaf
    auto writes = [](Tensor64 t) {
        t.modify([](auto& v) { v(0, 0) = 5; });  // `t` shares x's buffer
        return t * 2.0;
    };
    auto x2 = uniform({2, 2}, 1);
    x2.requires_grad_(true);
    expect_error<GraphError>([&] { checkpoint(writes, x2); }, {"checkpoint", "input 0", "[2, 2]", "in place"});
    expect_error<GraphError>([&] { checkpoint<double>([&y](const Tensor64& t) { return t * y; }, x); },
                             {"checkpoint", "computed outside", "'mul_scalar'", "pass it as one of checkpoint's inputs"});
    // A captured parameter changed between forward and backward: the saved version catches it.
    auto w = uniform({2, 2}, 2);
    w.requires_grad_(true);
    auto out = checkpoint<double>([&w](const Tensor64& t) { return matmul(t, w); }, x).sum();
    w.modify([](auto& v) { v(0, 0) = 3; });
    expect_error<GraphError>([&] { out.backward(); }, {"saved by 'checkpoint'", "modified in place"});
    // Without grad mode it is just a call.
    NoGradGuard off;
    CHECK_FALSE(checkpoint<double>([](const Tensor64& t) { return t * 2.0; }, x).requires_grad());
}

TEST_CASE("checkpoint: a 64-layer MLP checkpointed every 8 layers keeps at most a quarter of the saved bytes") {
    Net<float> net(64, 64, 5);
    Generator gen(6);
    auto x = Tensor::randn({128, 64}, gen);
    struct Kept {
        std::uint64_t bytes = 0;    // saved for backward, as the profiler counts them
        std::int64_t nodes = 0;     // graph nodes alive between forward and backward
    };
    auto kept = [&](std::size_t segment) {
        Kept k;
        const auto baseline = live_graph_nodes();
        Profiler prof;
        net.reseed(2);
        auto loss = net.forward(x, segment).sum();
        for (const auto& row : prof.rows()) k.bytes += row.saved_bytes;
        k.nodes = live_graph_nodes() - baseline;
        loss.backward();
        return k;
    };
    const auto eager = kept(0);
    const auto ckpt = kept(8);
    const double ratio = double(ckpt.bytes) / double(eager.bytes);
    MESSAGE("saved for backward: eager " << eager.bytes << " B, checkpointed every 8 layers " << ckpt.bytes
                                         << " B, ratio " << ratio << "; graph nodes kept " << eager.nodes << " vs "
                                         << ckpt.nodes);
    CHECK(eager.bytes > 0);
    CHECK(ratio <= 0.25);
    // The inner graphs are really gone, not just unreported: 8 checkpoint
    // nodes and the loss's sum are all that is left.
    CHECK(ckpt.nodes == 9);
    CHECK(eager.nodes > 64 * 4);
}

TEST_CASE("checkpoint: backward on another thread replays the forward's random state there and restores it") {
    Net<double> net(4, 5, 9);
    auto x = uniform({3, 5}, 10);
    net.reseed(3);
    auto eager = grad(net.forward(x, 0).sum(), net.parameters());
    net.reseed(3);
    auto loss = net.forward(x, 2).sum();
    std::vector<Tensor64> found;
    std::string before, after;
    std::thread worker([&] {
        manual_seed(99);
        before = default_generator().state();
        found = grad(loss, net.parameters());
        after = default_generator().state();
    });
    worker.join();
    CHECK(before == after);
    for (std::size_t k = 0; k < found.size(); ++k) CHECK(same(found[k], eager[k]));
}

TEST_CASE("checkpoint: a hook on a captured parameter runs once, on the whole gradient, as in eager") {
    for (int ckpt = 0; ckpt < 2; ++ckpt) {
        CAPTURE(ckpt);
        Tensor64 w({1.0, 2.0}, true), x({3.0, 4.0}, true);
        int calls = 0;
        w.register_hook([&](const Tensor64& g) {
            ++calls;
            return g * 2.0;
        });
        auto fn = [&](const Tensor64& t) { return t * w; };
        auto y = ckpt ? checkpoint<double>(fn, x) : fn(x);
        (y + w).sum().backward();  // w used inside and outside fn: the hook sees (x + 1)
        CHECK(calls == 1);
        CHECK(w.grad().value() == Array<double>{8.0, 10.0});
        CHECK(x.grad().value() == Array<double>{1.0, 2.0});
    }
    // grad() of x only: w is not requested, so its hooks do not run.
    Tensor64 w({1.0, 2.0}, true), x({3.0, 4.0}, true);
    int calls = 0;
    w.register_hook([&](const Tensor64&) {
        ++calls;
        return Tensor64();
    });
    auto y = checkpoint<double>([&](const Tensor64& t) { return t * w; }, x);
    grad(y.sum(), {x});
    CHECK(calls == 0);
}
