// The engine's ownership and exception rules, one test per way a gradient
// could come out wrong with no error: buffers shared between gradients,
// seeds and user tensors; repeated inputs of grad(); writes after a value was
// saved; a backward that throws part-way; graphs that own their leaves; and
// grad() running more of the graph than it needs.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include <tapegrad/core/op.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

bool shares_buffer(const Tensor64& a, const Tensor64& b) { return a.value().data() == b.value().data(); }

xt::xarray<double> values(const Tensor64& t) { return t.value(); }

// An identity op whose VJP throws on its first call (a VJP can throw: a
// saved tensor modified, an anomaly, a user-written op).
int g_flaky_failures_left = 0;
Tensor64 flaky(const Tensor64& x) {
    detail::Op<double> op("flaky", {x});
    auto y = op.output(x.value());
    return op.record(y, [](detail::VjpContext<double>&, const Tensor64& g) {
        if (g_flaky_failures_left > 0) {
            --g_flaky_failures_left;
            throw std::runtime_error("flaky VJP failed");
        }
        return detail::Grads<double>{g};
    });
}

}  // namespace

TEST_CASE("safety: a leaf's .grad never shares its buffer (create_graph, then a plain backward)") {
    Tensor64 a = Tensor64::scalar(1, true), b = Tensor64::scalar(2, true);
    auto y = a + b;  // the VJP of add hands the same gradient to both inputs
    y.backward(BackwardOptions{false, true});
    CHECK_FALSE(shares_buffer(a.grad(), b.grad()));
    y.backward();
    CHECK(a.grad().item() == 2);
    CHECK(b.grad().item() == 2);
}

TEST_CASE("safety: the user's seed is never a .grad nor written into") {
    Tensor64 x({1.0, 2.0}, true);
    Tensor64 seed({10.0, 20.0});
    auto z = x + 1.0;
    z.backward(seed, {false, true});
    CHECK_FALSE(shares_buffer(x.grad(), seed));
    z.backward(seed);
    CHECK(values(seed) == xt::xarray<double>{10, 20});
    CHECK(values(x.grad()) == xt::xarray<double>{20, 40});
}

TEST_CASE("safety: grad() returns buffers of their own, and set_grad of one tensor twice stays correct") {
    Tensor64 a = Tensor64::scalar(1, true), b = Tensor64::scalar(2, true);
    Tensor64 seed = Tensor64::scalar(1);
    auto gs = grad(a + b, {a, b}, seed);
    CHECK_FALSE(shares_buffer(gs[0], gs[1]));
    CHECK_FALSE(shares_buffer(gs[0], seed));
    a.set_grad(gs[0]);
    b.set_grad(gs[1]);
    (a + b).backward();
    CHECK(a.grad().item() == 2);
    CHECK(b.grad().item() == 2);
    CHECK(gs[0].item() == 1);  // the user's results are untouched
    CHECK(gs[1].item() == 1);

    SUBCASE("one tensor handed to set_grad of two leaves") {
        Tensor64 g = Tensor64::scalar(5);
        a.set_grad(g);
        b.set_grad(g);
        (a + b).backward();
        CHECK(a.grad().item() == 6);
        CHECK(b.grad().item() == 6);
        CHECK(g.item() == 5);
    }
    SUBCASE("a .grad the user holds is not changed behind their back") {
        a.zero_grad();
        (a * 3.0).backward();
        auto held = a.grad();
        (a * 3.0).backward();
        CHECK(held.item() == 3);
        CHECK(a.grad().item() == 6);
    }
}

TEST_CASE("safety: grad() fills every slot of a repeated input") {
    Tensor64 x({1.0, -2.0}, true);
    auto gs = grad(sum(x * x), {x, x});
    REQUIRE(gs[0].defined());
    REQUIRE(gs[1].defined());
    CHECK(values(gs[0]) == xt::xarray<double>{2, -4});
    CHECK(values(gs[1]) == xt::xarray<double>{2, -4});
    CHECK_FALSE(shares_buffer(gs[0], gs[1]));

    auto h = x * 3.0;  // a repeated non-leaf, beside a leaf
    auto gh = grad(sum(h * h), {h, x, h});
    REQUIRE(gh[0].defined());
    REQUIRE(gh[2].defined());
    CHECK(values(gh[0]) == xt::xarray<double>{6, -12});
    CHECK(values(gh[2]) == xt::xarray<double>{6, -12});
    CHECK(values(gh[1]) == xt::xarray<double>{18, -36});
}

TEST_CASE("safety: a write after the value was saved is caught, whenever it happens") {
    Tensor64 w({1.0, 2.0}, true);
    auto loss = sum(w * w);
    w.modify([](auto& v) { v(0) = 10; });
    CHECK_THROWS_AS(loss.backward(), GraphError);
    CHECK_FALSE(w.grad().defined());

    SUBCASE("a write that throws half-way still counts") {
        Tensor64 u({1.0, 2.0}, true);
        auto l2 = sum(u * u);
        CHECK_THROWS_AS(u.modify([](auto& v) {
            v(0) = 5;
            throw std::runtime_error("interrupted");
        }),
                        std::runtime_error);
        CHECK_THROWS_AS(l2.backward(), GraphError);
    }
    SUBCASE("modify may not change the shape") {
        Tensor64 u({1.0, 2.0});
        CHECK_THROWS_AS(u.modify([](auto& v) { v = xt::xarray<double>{1.0, 2.0, 3.0}; }), ShapeError);
        REQUIRE(u.shape_vector() == Shape{2});  // no tensor of the wrong size lives on
        CHECK(std::isnan(u.value()(0)));        // and the lost values are loud
    }
    SUBCASE("writes before the op are fine, and modify returns what the write returns") {
        Tensor64 u({1.0, 2.0}, true);
        double old = u.modify([](auto& v) { return std::exchange(v(0), 3.0); });
        CHECK(old == 1.0);
        sum(u * u).backward();
        CHECK(values(u.grad()) == xt::xarray<double>{6, 4});
    }
}

TEST_CASE("safety: a backward that throws part-way leaves every .grad as it was") {
    Tensor64 a = Tensor64::scalar(1, true), b = Tensor64::scalar(2, true);
    auto y = flaky(b) + a * 3.0;
    g_flaky_failures_left = 1;
    CHECK_THROWS_AS(y.backward(BackwardOptions{true, false}), std::runtime_error);
    CHECK_FALSE(a.grad().defined());
    CHECK_FALSE(b.grad().defined());
    y.backward(BackwardOptions{true, false});
    CHECK(a.grad().item() == 3);
    CHECK(b.grad().item() == 1);

    // Gradients from an earlier backward keep their values, not a partial sum.
    g_flaky_failures_left = 1;
    CHECK_THROWS_AS(y.backward(BackwardOptions{true, false}), std::runtime_error);
    CHECK(a.grad().item() == 3);
    CHECK(b.grad().item() == 1);
}

TEST_CASE("safety: create_graph into .grad frees everything (no ownership cycle through the leaf)") {
    const auto before = live_graph_nodes();
    for (int i = 0; i < 3; ++i) {
        Tensor64 x({0.5, 1.5}, true);
        sum(exp(x)).backward(BackwardOptions{false, true});
        REQUIRE(x.grad().requires_grad());  // .grad is on a graph...
    }
    CHECK(live_graph_nodes() == before);  // ...which died with x
    for (int i = 0; i < 3; ++i) {
        Tensor64 x({0.5, 1.5}, true);
        sum(x * x).backward(BackwardOptions{false, true});  // mul saves x itself
    }
    CHECK(live_graph_nodes() == before);
    {
        Tensor64 x({0.5, 1.5}, true);
        auto h = tanh(x);
        h.retain_grad();
        sum(h * h).backward(BackwardOptions{false, true});  // h's .grad holds a graph that saved h
    }
    CHECK(live_graph_nodes() == before);
}

TEST_CASE("safety: second derivatives still reach leaves and non-leaves the graph no longer owns") {
    Tensor64 x({0.5, -1.0}, true);
    auto g = grad(sum(x * x * x), {x}, {}, {false, true})[0];  // 3x^2, recorded
    auto gg = grad(sum(g), {x})[0];                             // 6x
    CHECK(values(gg) == xt::xarray<double>{3, -6});
    // The intermediate tanh(x) dies before the second backward.
    auto gt = grad(sum(tanh(x) * tanh(x)), {x}, {}, {false, true})[0];
    auto second = grad(sum(gt), {x})[0];
    for (std::size_t i = 0; i < 2; ++i) {
        const double t = std::tanh(x.value()(i)), s = 1 - t * t;
        CHECK(second.value()(i) == doctest::Approx(2 * s * s - 4 * t * t * s).epsilon(1e-12));
    }
}

TEST_CASE("safety: grad() with respect to a non-leaf runs only the nodes it needs") {
    Tensor64 a({1.0, 2.0}, true), b({3.0, 4.0}, true);
    auto h = a * b;
    b.modify([](auto& v) { v(0) = 100; });  // d/dh never needs b
    auto gh = grad(sum(h * 2.0), {h});
    CHECK(values(gh[0]) == xt::xarray<double>{2, 2});
    CHECK_THROWS_AS(grad(sum(h * 2.0), {a}), GraphError);  // d/da does need b

    Tensor64 c({1.0, 2.0}, true);
    auto k = c * c;
    sum(k).backward();  // releases k's node
    CHECK(values(grad(sum(k * 2.0), {k})[0]) == xt::xarray<double>{2, 2});
    CHECK_THROWS_WITH_AS(grad(sum(k * 2.0), {c}), doctest::Contains("already released"), GraphError);
}

TEST_CASE("safety: retain_grad keeps a non-leaf's gradient; without it grad() says so") {
    Tensor64 x({1.0, 2.0}, true);
    auto h = x * 3.0;
    auto unretained = x * 2.0;
    h.retain_grad();
    CHECK(h.retains_grad());
    CHECK_FALSE(unretained.retains_grad());
    auto loss = sum(h * h + unretained);
    loss.backward(BackwardOptions{true, false});
    CHECK(values(h.grad()) == xt::xarray<double>{6, 12});
    CHECK_THROWS_WITH_AS(unretained.grad(), doctest::Contains("retain_grad()"), GraphError);
    loss.backward();
    CHECK(values(h.grad()) == xt::xarray<double>{12, 24});  // accumulates, as a leaf's does
    CHECK(values(x.grad()) == xt::xarray<double>{40, 76});
    CHECK_THROWS_AS(Tensor64({1.0}).retain_grad(), GraphError);
    CHECK(x.retains_grad());  // leaves always keep theirs
}

TEST_CASE("safety: backward({}, options) means no seed, as grad(output, inputs, {}, options) does") {
    Tensor64 x({1.0, 2.0}, true);
    auto loss = sum(x * x);
    loss.backward({}, BackwardOptions{true, false});
    loss.backward({}, BackwardOptions{});
    CHECK(values(x.grad()) == xt::xarray<double>{4, 8});
}

TEST_CASE("safety: randn(shape, true) and rand(shape, true) mean requires_grad, not mean/low = 1") {
    manual_seed(3);
    auto a = Tensor64::randn({4000}, true);
    CHECK(a.requires_grad());
    CHECK(std::abs(xt::mean(a.value())()) < 0.1);
    auto b = Tensor::rand(Tensor::zeros({3, 2}).shape(), true);
    CHECK(b.requires_grad());
    CHECK(xt::amax(b.value())() < 1.0f);
    Generator gen(1);
    auto c = Tensor64::randn({2}, gen, true);
    CHECK(c.requires_grad());
    CHECK_FALSE(Tensor64::randn({2}, gen, 1.0).requires_grad());  // a double is the mean
}

namespace {
// A custom op whose VJP differentiates a reference implementation with a
// nested grad() on the tensor it captured (still on the outer graph).
Tensor64 square_sum_by_nested_grad(const Tensor64& h) {
    detail::Op<double> op("square_sum_nested", {h});
    auto out = op.output(Array<double>(xt::sum(h.value() * h.value())()));
    return op.record(out, [h](detail::VjpContext<double>&, const Tensor64& g) {
        EnableGradGuard on;
        return detail::Grads<double>{g * grad(sum(h * h), {h})[0]};
    });
}
// The same, on the saved value: a separate graph, which is fine.
Tensor64 square_sum_by_nested_grad_on_value(const Tensor64& h) {
    detail::Op<double> op("square_sum_nested_value", {h});
    auto out = op.output(Array<double>(xt::sum(h.value() * h.value())()));
    return op.record(out, [s = op.save(h)](detail::VjpContext<double>& c, const Tensor64& g) {
        EnableGradGuard on;
        Tensor64 v = c.unpack(s).detach().requires_grad_();
        return detail::Grads<double>{g * grad(sum(v * v), {v})[0]};
    });
}
}  // namespace

TEST_CASE("safety: a backward inside a VJP may not run on the graph of the backward that called it") {
    Tensor64 x({1.0, 2.0}, true);
    auto h = x * 3.0;
    auto y = square_sum_by_nested_grad(h) + sum(h);
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("still running"), GraphError);
    CHECK_FALSE(x.grad().defined());

    auto h2 = x * 3.0;
    auto y2 = square_sum_by_nested_grad_on_value(h2) + sum(h2);
    y2.backward();
    CHECK(values(x.grad()) == xt::xarray<double>{21, 39});  // 18x + 3
}

TEST_CASE("safety: a constant saved by an op, then made a leaf, does not leak through its .grad") {
    const auto before = live_graph_nodes();
    for (int i = 0; i < 3; ++i) {
        Tensor64 x({1.0, 2.0}, true), w({3.0, 4.0});
        auto y1 = x * w;  // saves w while it is a constant
        w.requires_grad_(true);
        sum(y1 * w).backward(BackwardOptions{false, true});
    }
    CHECK(live_graph_nodes() == before);
}

TEST_CASE("safety: a leaf frozen between forward and backward gets no gradient") {
    Tensor64 w({2.0}, true), x({3.0}, true);
    auto loss = sum(w * x);
    w.requires_grad_(false);
    loss.backward();
    CHECK_FALSE(w.grad().defined());
    CHECK(x.grad().item() == 2.0);
}

TEST_CASE("safety: tied parameters are listed, stepped and clipped once; optimisers refuse non-leaves and repeats") {
    struct Tied : nn::Module64 {
        std::shared_ptr<nn::Linear<double>> lin = std::make_shared<nn::Linear<double>>(1, 1, false);
        Tied() : nn::Module64("Tied") {
            register_module("first", lin);
            register_module("second", lin);
        }
        Tensor64 forward(const Tensor64& x) override { return (*lin)((*lin)(x)); }
    } model;
    REQUIRE(model.parameters().size() == 1);
    CHECK(model.named_parameters()[0].first == "first.weight");
    Tensor64 w({3.0}, true);
    w.set_grad(Tensor64({4.0}));
    nn::clip_grad_norm_(std::vector<Tensor64>{w, w}, 1.0);
    CHECK(w.grad().item() == doctest::Approx(4.0 / (4.0 + 1e-6)));
    CHECK_THROWS_WITH_AS(nn::SGD<double>({w, w}, 0.1), doctest::Contains("parameter 1 is parameter 0"), ValueError);
    CHECK_THROWS_WITH_AS(nn::SGD<double>({w, w * 2.0}, 0.1), doctest::Contains("not a leaf"), ValueError);
}
