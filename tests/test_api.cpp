// The short forms a libtorch user writes: braced lists of tensors, single
// axes, shapes taken from tensors, member forms, *_like factories, the
// default generator and printing. Each checks the value against the long
// form it forwards to, so a wrong forward fails.
#include <doctest/doctest.h>

#include <array>
#include <sstream>
#include <thread>

#include <tapegrad/nn/init.hpp>
#include <tapegrad/nn/linear.hpp>
#include <tapegrad/tapegrad.hpp>  // printing needs nothing more

#include "op_test_util.hpp"

using namespace tapegrad;

namespace {
template <class T>
void expect_same(const BasicTensor<T>& got, const BasicTensor<T>& want) {
    REQUIRE(got.shape_vector() == want.shape_vector());
    CHECK(got.value() == want.value());
}
}  // namespace

TEST_CASE("api: braced lists of tensors deduce the element type") {
    Tensor a({{1.f, 2.f}, {3.f, 4.f}});
    Tensor b = Tensor({5.f, 6.f}).reshape({2, 1});
    expect_same(concat({a, b}, 1), concat<float>({a, b}, 1));
    CHECK(concat({a, b}, 1).value() == xt::xarray<float>({{1, 2, 5}, {3, 4, 6}}));
    expect_same(stack({a, a}), stack<float>({a, a}, 0));
    CHECK(stack({a, a}).shape_vector() == Shape{2, 2, 2});
    Tensor64 c({1.0, 2.0});
    CHECK(stack({c, c, c}, 1).shape_vector() == Shape{2, 3});
    CHECK(concat({c}).value() == c.value());
}

TEST_CASE("api: single-axis reductions, free and member, with keepdims") {
    Tensor64 x = uniform({2, 3, 4}, 71);
    for (int axis : {0, 1, -1}) {
        CAPTURE(axis);
        for (bool keep : {false, true}) {
            expect_same(sum(x, axis, keep), sum(x, Axes{axis}, keep));
            expect_same(mean(x, axis, keep), mean(x, Axes{axis}, keep));
            expect_same(tapegrad::max(x, axis, keep), tapegrad::max(x, Axes{axis}, keep));
            expect_same(tapegrad::min(x, axis, keep), tapegrad::min(x, Axes{axis}, keep));
            expect_same(logsumexp(x, axis, keep), logsumexp(x, Axes{axis}, keep));
            expect_same(x.sum(axis, keep), sum(x, Axes{axis}, keep));
            expect_same(x.mean(axis, keep), mean(x, Axes{axis}, keep));
            expect_same(x.max(axis, keep), tapegrad::max(x, Axes{axis}, keep));
            expect_same(x.min(axis, keep), tapegrad::min(x, Axes{axis}, keep));
            expect_same(x.logsumexp(axis, keep), logsumexp(x, Axes{axis}, keep));
        }
    }
    CHECK(sum(x, 1).shape_vector() == Shape{2, 4});
    CHECK(sum(x, 1, true).shape_vector() == Shape{2, 1, 4});
    CHECK(sum(x, std::size_t(2)).shape_vector() == Shape{2, 3});
    // Braced forms keep their meaning: {} is every axis, {1} one axis.
    CHECK(sum(x, {}, true).shape_vector() == Shape{1, 1, 1});
    CHECK(x.sum({}, true).shape_vector() == Shape{1, 1, 1});
    expect_same(x.sum({0, 2}), sum(x, Axes{0, 2}));
    CHECK(x.sum().item() == doctest::Approx(xt::sum(x.value())()));
    CHECK(x.mean().item() == doctest::Approx(xt::mean(x.value())()));
}

TEST_CASE("api: a tensor's shape() is accepted wherever a shape is") {
    Tensor64 t = uniform({2, 3}, 72);
    CHECK(Tensor64::ones(t.shape()).shape_vector() == Shape{2, 3});
    CHECK(Tensor64::zeros(t.shape(), true).requires_grad());
    CHECK(Tensor64::full(t.shape(), 7.0).value() == xt::xarray<double>({{7, 7, 7}, {7, 7, 7}}));
    Generator g1(3), g2(3);
    expect_same(Tensor64::randn(t.shape(), g1), Tensor64::randn(Shape{2, 3}, g2));
    expect_same(Tensor64::rand(t.shape(), g1), Tensor64::rand(Shape{2, 3}, g2));
    expect_same(Tensor64::from_data(t.value().data(), t.shape()), t);
    const std::array<int, 2> dims{3, 2};
    CHECK(Tensor::ones(dims).shape_vector() == Shape{3, 2});

    Tensor64 u = uniform({3, 2}, 73);
    expect_same(reshape(t, u.shape()), reshape(t, {3, 2}));
    expect_same(t.reshape(u.shape()), reshape(t, {3, 2}));
    expect_same(reshape(t, Shape{6}), reshape(t, {6}));
    Tensor64 row = uniform({3}, 74);
    expect_same(broadcast_to(row, t.shape()), broadcast_to(row, Shape{2, 3}));
    expect_same(row.broadcast_to(t.shape()), broadcast_to(row, Shape{2, 3}));
    expect_same(sum_to(t, row.shape()), sum_to(t, Shape{3}));
}

TEST_CASE("api: member forms forward to the free functions, gradients included") {
    Tensor64 x = uniform({2, 3}, 75, 0.2, 1.5);
    Tensor64 w = uniform({3, 4}, 76);
    expect_same(x.exp(), exp(x));
    expect_same(x.log(), log(x));
    expect_same(x.log1p(), log1p(x));
    expect_same(x.sqrt(), sqrt(x));
    expect_same(x.abs(), abs(x));
    expect_same(x.tanh(), tanh(x));
    expect_same(x.erf(), erf(x));
    expect_same(x.sigmoid(), sigmoid(x));
    expect_same(x.softplus(), softplus(x));
    expect_same(x.sin(), sin(x));
    expect_same(x.cos(), cos(x));
    expect_same(x.pow(2), pow(x, 2.0));
    expect_same(x.pow(x), pow(x, x));
    expect_same(x.clamp(0.5, 1.0), clamp(x, 0.5, 1.0));
    expect_same(x.matmul(w), matmul(x, w));
    expect_same(x.transpose(), transpose(x));
    expect_same(x.transpose(0, 1), transpose(x, 0, 1));
    expect_same(x.permute({1, 0}), permute(x, {1, 0}));
    expect_same(x.reshape({3, -1}), reshape(x, {3, -1}));
    expect_same(x.max(), tapegrad::max(x));
    expect_same(x.min(), tapegrad::min(x));
    expect_same(x.logsumexp(), logsumexp(x));

    Tensor s = Tensor::scalar(2.75f);
    CHECK(s.item<float>() == 2.75f);
    CHECK(s.item<double>() == 2.75);
    CHECK(s.item<int>() == 2);
    CHECK(s.item() == 2.75f);

    // A chain of members records the same graph as the free functions.
    TensorFunction f = [](const std::vector<Tensor64>& in) {
        return in[0].matmul(in[1]).tanh().pow(2).sum(1).mean();
    };
    TensorFunction g = [](const std::vector<Tensor64>& in) { return mean(sum(pow(tanh(matmul(in[0], in[1])), 2.0), 1)); };
    std::vector<Tensor64> inputs{x, w};
    CHECK(f(inputs).item() == g(inputs).item());
    REQUIRE_GRADCHECK(f, inputs);
}

TEST_CASE("api: *_like factories take shape and type, never the graph") {
    Tensor64 t = uniform({2, 3}, 77);
    t.requires_grad_();
    auto y = t * 2.0;
    for (const auto& z : {zeros_like(y), ones_like(y), full_like(y, 4.5)}) {
        CHECK(z.shape_vector() == Shape{2, 3});
        CHECK_FALSE(z.requires_grad());
        CHECK(z.is_leaf());
    }
    CHECK(xt::all(xt::equal(zeros_like(y).value(), 0.0)));
    CHECK(xt::all(xt::equal(ones_like(y).value(), 1.0)));
    CHECK(xt::all(xt::equal(full_like(y, 4.5).value(), 4.5)));
    CHECK(ones_like(y, true).requires_grad());
    Tensor f = Tensor::zeros({4});
    static_assert(std::is_same_v<decltype(ones_like(f)), Tensor>);

    Generator g1(9), g2(9);
    expect_same(randn_like(t, g1), Tensor64::randn({2, 3}, g2));
    expect_same(rand_like(t, g1), Tensor64::rand({2, 3}, g2));
    auto r = rand_like(t);
    CHECK(r.shape_vector() == Shape{2, 3});
    CHECK(xt::all(r.value() >= 0.0 && r.value() < 1.0));
}

TEST_CASE("api: manual_seed makes the default generator reproducible, per thread") {
    manual_seed(123);
    auto a = Tensor::randn({5});
    auto b = Tensor64::rand({3}, -1.0, 1.0);
    manual_seed(123);
    expect_same(Tensor::randn({5}), a);
    expect_same(Tensor64::rand({3}, -1.0, 1.0), b);
    // The same numbers as an explicit Generator with that seed.
    Generator g(123);
    expect_same(Tensor::randn({5}, g), a);
    CHECK(Tensor::randn({5}).value() != a.value());  // the stream moved on

    // A thread that has not drawn yet starts from the last manual_seed; its
    // draws do not move this thread's generator.
    manual_seed(7);
    Tensor here_first = Tensor::randn({4});
    manual_seed(7);
    Tensor there;
    std::thread([&] { there = Tensor::randn({4}); }).join();
    expect_same(there, here_first);
    expect_same(Tensor::randn({4}), here_first);
}

TEST_CASE("api: Generator state round-trips and continues the sequence") {
    Generator g(42);
    Tensor64::randn({10}, g);
    const std::string saved = g.state();
    auto next = Tensor64::randn({6}, g);
    Generator h(0);
    h.set_state(saved);
    expect_same(Tensor64::randn({6}, h), next);
    CHECK(h == g);
    expect_error<ValueError>([&] { h.set_state("not a state"); }, {"Generator::set_state", "mt19937_64"});
    expect_error<ValueError>([&] { h.set_state(saved + " 17"); }, {"set_state"});
    CHECK(h == g);  // unchanged by the failed calls
}

TEST_CASE("api: tensors and their values print with tapegrad.hpp alone") {
    Tensor64 t({{1.5, -2.0}, {3.0, 4.25}});
    std::ostringstream value, tensor;
    value << t.value();
    tensor << t;
    CHECK(value.str().find("1.5") != std::string::npos);
    CHECK(value.str().find("4.25") != std::string::npos);
    CHECK(tensor.str().find(value.str()) != std::string::npos);
}

TEST_CASE("api: initialisers without a Generator draw from the default one") {
    Tensor64 a = Tensor64::zeros({3, 4}), b = Tensor64::zeros({3, 4});
    Generator g(31);
    manual_seed(31);
    nn::init::xavier_uniform_(a);
    nn::init::xavier_uniform_(b, g);
    CHECK(a.value() == b.value());
    manual_seed(31);
    nn::init::normal_(a, 1.0, 2.0);
    g.seed(31);
    nn::init::normal_(b, g, 1.0, 2.0);
    CHECK(a.value() == b.value());
    manual_seed(31);
    nn::Linear<double> l1(3, 2);
    nn::init::initialize(l1, nn::init::Scheme::he_normal, nn::init::Bias::normal(1));
    g.seed(31);
    nn::Linear<double> l2(3, 2, true, g);
    nn::init::initialize(l2, nn::init::Scheme::he_normal, g, nn::init::Bias::normal(1));
    CHECK(l1.parameter("weight").value() == l2.parameter("weight").value());
    CHECK(l1.parameter("bias").value() == l2.parameter("bias").value());
}
