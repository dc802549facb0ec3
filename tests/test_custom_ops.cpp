// User-written ops through the public op API (core/op.hpp): the ops of
// user_ops.hpp come from their own translation unit and public headers only.
// Both backward flavours are checked against finite differences; the engine
// refuses a VJP that returns the wrong number or shape of gradients, and
// create_graph through a raw backward.
#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>

#include <tapegrad/core/op.hpp>

#include "op_test_util.hpp"
#include "user_ops.hpp"

namespace {

// An identity whose VJP returns a gradient of the given shape, or `count`
// gradients: what a wrong hand-written backward looks like.
Tensor64 bad_vjp(const Tensor64& x, Shape grad_shape, std::size_t count = 1) {
    Op<double> op("user::bad", {x});
    auto y = op.output(x.value());
    return op.record(y, [grad_shape, count](VjpContext<double>&, const Tensor64&) {
        return Grads<double>(count, Tensor64::ones(grad_shape));
    });
}

}  // namespace

TEST_CASE("custom op: tensor-flavour backward, first and second order, broadcast parameter") {
    auto x = uniform({3, 4}, 1, -2, 2);
    auto beta = uniform({4}, 2, 0.5, 1.5);
    auto f = [](const std::vector<Tensor64>& in) { return user::swish(in[0], in[1]); };
    REQUIRE_GRADCHECK(f, (std::vector<Tensor64>{x, beta}));
    REQUIRE_GRADGRADCHECK(f, (std::vector<Tensor64>{x, beta}));
    // Its value and name, as a built-in op's.
    auto y = user::swish(Tensor64(x.value(), true), beta);
    CHECK(std::string(y.op_name()) == "user::swish");
    CHECK(xt::allclose(y.value(), x.value() / (1.0 + xt::exp(-beta.value() * x.value()))));
}

TEST_CASE("custom op: the needs-gradient mask skips inputs that need none") {
    Tensor64 x({0.5, -1.0}, true);
    Tensor64 beta({1.0, 2.0});  // no gradient: ctx.needs(1) is false, nothing is computed for it
    user::swish(x, beta).sum().backward();
    CHECK(x.grad().defined());
    CHECK_FALSE(beta.grad().defined());
}

TEST_CASE("custom op: raw-flavour backward, first order") {
    auto a = uniform({2, 3}, 3, 0.5, 2);
    auto b = uniform({3}, 4, 0.5, 2);  // broadcast: the raw gradient for b has a's shape and is summed down
    REQUIRE_GRADCHECK([](const std::vector<Tensor64>& in) { return user::hypot(in[0], in[1]); },
                      (std::vector<Tensor64>{a, b}));
}

TEST_CASE("custom op: create_graph through a raw backward is refused, naming the op") {
    Tensor64 a({3.0, 1.0}, true), b({4.0, 1.0}, true);
    auto r = sum(user::hypot(a, b));
    expect_error<GraphError>([&] { grad(r, {a}, {}, BackwardOptions{false, true}); },
                             {"'user::hypot'", "tape position", "record_raw", "create_graph"});
    CHECK_FALSE(a.grad().defined());
    // Without create_graph the same graph runs.
    auto ga = grad(r, {a})[0];
    CHECK(ga.value()(0) == doctest::Approx(0.6));
}

TEST_CASE("custom op: saved tensors carry the in-place version check") {
    Tensor64 x({0.5, -1.0}, true);
    Tensor64 beta({1.0, 2.0}, true);
    auto y = user::swish(x, beta).sum();
    beta.modify([](auto& v) { v(0) = 3.0; });
    expect_error<GraphError>([&] { y.backward(); }, {"'user::swish'", "modified in place"});
    Tensor64 a({3.0}, true);
    auto r = user::hypot(a, Tensor64({4.0}));
    a.modify([](auto& v) { v(0) = 1.0; });
    expect_error<GraphError>([&] { r.backward(); }, {"'user::hypot'", "modified in place"});
}

TEST_CASE("engine: a VJP returning a gradient that cannot be reduced to its input's shape is refused") {
    Tensor64 x({1.0, 2.0}, true);
    auto check = [&](Shape shape) {
        auto y = bad_vjp(x, shape).sum();
        expect_error<GraphError>([&] { y.backward(); },
                                 {"'user::bad'", "tape position", "input 0", str(shape).c_str(), "[2]"});
        CHECK_FALSE(x.grad().defined());
    };
    check({3});     // another length
    check({1});     // smaller: would broadcast up silently
    check({});      // a scalar
    check({2, 3});  // trailing dimension differs
    // A shape the input broadcasts to is summed down.
    bad_vjp(x, {4, 2}).sum().backward();
    CHECK(x.grad().value() == xt::xarray<double>{4, 4});
}

TEST_CASE("engine: a VJP returning the wrong number of gradients is refused") {
    Tensor64 x({1.0, 2.0}, true);
    expect_error<GraphError>([&] { bad_vjp(x, {2}, 2).sum().backward(); },
                             {"'user::bad'", "tape position", "returned 2 gradients for 1 inputs"});
    expect_error<GraphError>([&] { grad(bad_vjp(x, {2}, 0).sum(), {x}); }, {"'user::bad'", "returned 0 gradients"});
}

namespace {
// An op whose forward is the identity and whose backward scales by 10.
Tensor64 scaled(const Tensor64& x, bool record_on_input, bool record_twice) {
    Op<double> op("user::scaled", {x});
    auto y = op.output(x.value());
    auto vjp = [](VjpContext<double>&, const Tensor64& g) { return Grads<double>{g * 10.0}; };  // a named lambda
    if (record_on_input) return op.record(x, vjp);
    auto out = op.record(y, vjp);
    if (record_twice) op.record(op.output(x.value()), vjp);
    return out;
}
}  // namespace

TEST_CASE("custom op: record() only on the op's new output, once; a named lambda is accepted") {
    Tensor64 x({1.0, 2.0}, true);
    // Recording onto the input would silently turn the user's leaf into this op's output.
    expect_error<GraphError>([&] { scaled(x, true, false); }, {"'user::scaled'", "record() needs the op's new output"});
    CHECK(x.is_leaf());
    expect_error<GraphError>([&] { scaled(x, false, true); }, {"'user::scaled'", "record() was called twice"});
    scaled(x, false, false).sum().backward();
    CHECK(x.grad().value() == Array<double>{10.0, 10.0});
}

TEST_CASE("custom op: needs(i) out of range and an empty saved output are errors, not undefined behaviour") {
    Tensor64 x({1.0, 2.0}, true);
    {
        Op<double> op("user::one_input", {x});
        expect_error<ValueError>([&] { (void)op.needs(5); }, {"'user::one_input'", "needs(5)", "1 inputs"});
    }
    Op<double> op("user::ctx_needs", {x});
    auto y = op.output(x.value());
    y = op.record(y, [empty = SavedOutput<double>{}](VjpContext<double>& c, const Tensor64& g) {
        CHECK_FALSE(c.unpack(empty).defined());  // nothing was saved: undefined, as for Saved
        (void)c.needs(3);
        return Grads<double>{g};
    });
    expect_error<ValueError>([&] { y.sum().backward(); }, {"'user::ctx_needs'", "needs(3)"});
}
