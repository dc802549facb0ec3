// Tensor hooks: register_hook (see and replace the gradient flowing into a
// tensor) and register_grad_ready_hook (a leaf's gradient for this pass is
// complete), their removal, order, errors, and the pass's guarantee that a
// throwing hook leaves every .grad as it was.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "op_test_util.hpp"

namespace {
xt::xarray<double> values(const Tensor64& t) { return t.value(); }
}  // namespace

TEST_CASE("hooks: register_hook on a non-leaf replaces the gradient flowing on") {
    Tensor64 x({1.0, 2.0}, true);
    auto h = x * 2.0;
    Tensor64 seen;
    h.register_hook([&](const Tensor64& g) {
        seen = g;
        return g * 3.0;
    });
    (h * h).sum().backward();
    CHECK(values(seen) == xt::xarray<double>{4, 8});         // d/dh sum(h^2) = 2h
    CHECK(values(x.grad()) == xt::xarray<double>{24, 48});  // 3 * 2h * 2
}

TEST_CASE("hooks: a non-leaf's hook runs although its handle was dropped, and before retain_grad keeps it") {
    Tensor64 x({1.0, 2.0}, true);
    Tensor64 loss;
    Tensor64 h = x * 1.0;
    h.retain_grad();
    h.register_hook([](const Tensor64& g) { return g * 10.0; });
    loss = h.sum();
    loss.backward();
    CHECK(values(h.grad()) == xt::xarray<double>{10, 10});
    Tensor64 y({1.0}, true);
    auto l2 = [&] {
        auto k = y * 1.0;
        k.register_hook([](const Tensor64& g) { return g * 5.0; });
        return k.sum();  // k's handle goes; its node keeps the hook
    }();
    l2.backward();
    CHECK(y.grad().item() == 5.0);
}

TEST_CASE("hooks: several hooks run in registration order, each on the previous one's result") {
    Tensor64 x({1.0}, true);
    std::vector<std::string> log;
    x.register_hook([&](const Tensor64& g) {
        log.push_back("first " + std::to_string(g.item()));
        return g + 1.0;
    });
    x.register_hook([&](const Tensor64& g) { log.push_back("second " + std::to_string(g.item())); });  // observes
    x.register_hook([&](const Tensor64& g) {
        log.push_back("third " + std::to_string(g.item()));
        return g * 10.0;
    });
    (x * 3.0).sum().backward();
    REQUIRE(log.size() == 3);
    CHECK(log[0] == "first 3.000000");
    CHECK(log[1] == "second 4.000000");
    CHECK(log[2] == "third 4.000000");
    CHECK(x.grad().item() == 40.0);
}

TEST_CASE("hooks: remove() stops a hook; the handle is idempotent and outlives its tensor") {
    Tensor64 x({1.0}, true);
    int calls = 0;
    auto handle = x.register_hook([&](const Tensor64& g) {
        ++calls;
        return g * 2.0;
    });
    CHECK(handle.active());
    (x * 1.0).sum().backward();
    CHECK(calls == 1);
    CHECK(x.grad().item() == 2.0);
    handle.remove();
    handle.remove();
    CHECK_FALSE(handle.active());
    x.zero_grad();
    (x * 1.0).sum().backward();
    CHECK(calls == 1);
    CHECK(x.grad().item() == 1.0);

    HookHandle orphan;
    {
        Tensor64 t({1.0}, true);
        orphan = t.register_grad_ready_hook([](const Tensor64&) {});
        CHECK(orphan.active());
    }
    CHECK_FALSE(orphan.active());
    orphan.remove();  // harmless
}

TEST_CASE("hooks: a hook may remove itself; a hook registered by a hook runs from the next pass") {
    Tensor64 x({1.0}, true);
    int once = 0, later = 0;
    HookHandle self;
    self = x.register_hook([&](const Tensor64&) {
        ++once;
        self.remove();
        x.register_hook([&](const Tensor64&) { ++later; });
    });
    (x * 1.0).sum().backward();
    CHECK(once == 1);
    CHECK(later == 0);
    (x * 1.0).sum().backward();
    CHECK(once == 1);
    CHECK(later == 1);
}

TEST_CASE("hooks: a hook returning the wrong shape is a GraphError naming its tensor and both shapes") {
    Tensor64 x({1.0, 2.0}, true);
    x.set_grad(Tensor64({7.0, 7.0}));
    auto h = x * 2.0;
    h.register_hook([](const Tensor64&) { return Tensor64({1.0, 2.0, 3.0}); });
    expect_error<GraphError>([&] { h.sum().backward(); },
                             {"hook on the output of 'mul_scalar'", "tape position", "[3]", "[2]"});
    CHECK(values(x.grad()) == xt::xarray<double>{7, 7});
    Tensor64 w({1.0, 2.0}, true);
    w.register_hook([](const Tensor64&) { return Tensor64::scalar(1.0); });
    expect_error<GraphError>([&] { (w * 1.0).sum().backward(); }, {"hook on a leaf of shape [2]", "[]"});
    CHECK_FALSE(w.grad().defined());
}

TEST_CASE("hooks: a throwing hook fails the pass and leaves every .grad unchanged") {
    Tensor64 a({1.0, 2.0}, true), b({3.0}, true);
    a.set_grad(Tensor64({5.0, 5.0}));
    b.set_grad(Tensor64({6.0}));
    bool ready_ran = false;
    b.register_grad_ready_hook([&](const Tensor64&) { ready_ran = true; });
    auto late = (a * b).exp();  // late's hook runs before the mul node, so before b is complete
    late.register_hook([](const Tensor64&) -> Tensor64 { throw std::runtime_error("hook failed"); });
    CHECK_THROWS_WITH_AS(late.sum().backward(), "hook failed", std::runtime_error);
    CHECK_FALSE(ready_ran);
    CHECK(values(a.grad()) == xt::xarray<double>{5, 5});
    CHECK(values(b.grad()) == xt::xarray<double>{6});
    // A grad-ready hook that throws after the leaf's gradient was complete:
    // still nothing is committed.
    b.register_grad_ready_hook([](const Tensor64&) { throw std::runtime_error("ready failed"); });
    CHECK_THROWS_WITH_AS((a * b).sum().backward(), "ready failed", std::runtime_error);
    CHECK(values(a.grad()) == xt::xarray<double>{5, 5});
    CHECK(values(b.grad()) == xt::xarray<double>{6});
    // The graph is usable again afterwards (no pending gradient left behind).
    Tensor64 c({2.0}, true);
    (c * c).sum().backward();
    CHECK(c.grad().item() == 4.0);
}

TEST_CASE("hooks: the grad-ready hook runs once per pass with the complete sum, before the pass ends") {
    Tensor64 w({0.5}, true), x({0.3, -0.7}, true);
    std::vector<std::string> log;
    std::vector<Tensor64> seen, grad_then;  // the hook's argument, and x.grad() while it ran
    x.register_grad_ready_hook([&](const Tensor64& g) {
        seen.push_back(g);
        grad_then.push_back(x.grad().defined() ? clone(x.grad()) : Tensor64());
        log.push_back("x ready");
    });
    auto a = w.exp();  // early on the tape: its node runs after every use of x
    a.register_hook([&](const Tensor64&) { log.push_back("a"); });
    // x is used three times: x * x, sin(x) and x itself.
    auto loss = a.sum() + (x * x + x.sin() + x).sum();
    loss.backward(BackwardOptions{true, false});
    REQUIRE(seen.size() == 1);
    auto xv = x.value();
    const xt::xarray<double> want = 2.0 * xv + xt::cos(xv) + 1.0;
    CHECK(xt::allclose(seen[0].value(), want));
    CHECK_FALSE(grad_then[0].defined());  // .grad changes only when the pass succeeds
    REQUIRE(log == std::vector<std::string>{"x ready", "a"});
    CHECK(xt::allclose(x.grad().value(), want));
    loss.backward();
    REQUIRE(seen.size() == 2);  // once per pass
    CHECK(xt::allclose(seen[1].value(), want));         // this pass's gradient, not the running sum
    CHECK(xt::allclose(grad_then[1].value(), want));    // .grad still as the first pass left it
    CHECK(xt::allclose(x.grad().value(), 2.0 * want));
}

TEST_CASE("hooks: the grad-ready hook sees the leaf's gradient after its register_hook hooks") {
    Tensor64 x({1.0, 2.0}, true);
    Tensor64 seen;
    x.register_grad_ready_hook([&](const Tensor64& g) { seen = g; });
    x.register_hook([](const Tensor64& g) { return g * 2.0; });
    (x * x).sum().backward();
    CHECK(values(seen) == xt::xarray<double>{4, 8});
    CHECK(values(x.grad()) == xt::xarray<double>{4, 8});
}

TEST_CASE("hooks: grad() runs register_hook hooks on requested and intermediate tensors, not grad-ready hooks") {
    Tensor64 x({1.0, 2.0}, true);
    int ready_calls = 0;
    x.register_grad_ready_hook([&](const Tensor64&) { ++ready_calls; });
    x.register_hook([](const Tensor64& g) { return g + 1.0; });
    auto h = x * 3.0;
    h.register_hook([](const Tensor64& g) { return g * 2.0; });
    auto gx = grad(h.sum(), {x})[0];
    CHECK(values(gx) == xt::xarray<double>{7, 7});  // (1 * 2) * 3 + 1
    auto gh = grad(h.sum(), {h})[0];
    CHECK(values(gh) == xt::xarray<double>{2, 2});
    CHECK(ready_calls == 0);
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("hooks: a leaf that is the root, and hooks under create_graph") {
    Tensor64 x({1.0, 2.0}, true);
    x.register_hook([](const Tensor64& g) { return g * 3.0; });
    int ready = 0;
    x.register_grad_ready_hook([&](const Tensor64&) { ++ready; });
    x.backward(Tensor64({1.0, 1.0}));
    CHECK(values(x.grad()) == xt::xarray<double>{3, 3});
    CHECK(ready == 1);
    // Under create_graph a hook's ops are recorded: the gradient can be
    // differentiated again through them.
    Tensor64 y({1.5}, true);
    auto k = y * y;
    k.register_hook([y](const Tensor64& g) { return g * y; });  // y is a leaf: no ownership cycle
    auto gy = grad(k.sum(), {y}, {}, BackwardOptions{false, true})[0];  // y * 2y
    CHECK(gy.item() == doctest::Approx(4.5));
    REQUIRE(gy.requires_grad());
    CHECK(grad(gy.sum(), {y})[0].item() == doctest::Approx(6.0));  // d(2y^2)/dy
}

TEST_CASE("hooks: only on tensors that require grad; grad-ready hooks only on leaves") {
    Tensor64 c({1.0});
    expect_error<GraphError>([&] { c.register_hook([](const Tensor64&) {}); }, {"register_hook", "does not require grad"});
    Tensor64 x({1.0}, true);
    auto h = x * 2.0;
    expect_error<GraphError>([&] { h.register_grad_ready_hook([](const Tensor64&) {}); },
                             {"register_grad_ready_hook", "'mul_scalar'", "not a leaf"});
}
