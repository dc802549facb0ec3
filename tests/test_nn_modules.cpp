// Modules: parameter naming, train/eval, printout, Linear, Sequential, MLP,
// LayerNorm, Dropout and the initialisers.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;

namespace {

std::vector<std::string> names(const nn::Module64& m) {
    std::vector<std::string> out;
    for (const auto& p : m.named_parameters()) out.push_back(p.first);
    return out;
}

double mean_of(const xt::xarray<double>& a) {
    double s = 0;
    for (double v : a) s += v;
    return s / static_cast<double>(a.size());
}

double std_of(const xt::xarray<double>& a) {
    const double m = mean_of(a);
    double s = 0;
    for (double v : a) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(a.size()));
}

}  // namespace

TEST_CASE("nn: parameters are named recursively in registration order") {
    Generator gen(0);
    nn::MLP<double> mlp({3, 4, 2}, "tanh", nn::Head::identity, gen);
    CHECK(names(mlp) == std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"});
    CHECK(mlp.parameters().size() == 4);
    CHECK(mlp.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2);
    CHECK(mlp.parameter("layers.2.weight").shape_vector() == Shape{4, 2});
    CHECK(mlp.parameter("layers.2.weight").same(mlp.layers->parameter("2.weight")));
    for (const auto& p : mlp.parameters()) CHECK(p.requires_grad());
    CHECK_THROWS_WITH_AS(mlp.parameter("layers.1.weight"), doctest::Contains("MLP: no parameter named 'layers.1.weight'"), ValueError);
    CHECK_THROWS_WITH_AS(mlp.parameter("nope"), doctest::Contains("no parameter named 'nope'"), ValueError);
}

TEST_CASE("nn: zero_grad reaches every parameter") {
    Generator gen(0);
    nn::MLP<double> mlp({2, 3, 1}, "relu", nn::Head::identity, gen);
    sum(mlp(Tensor64::ones({4, 2}))).backward();
    for (const auto& p : mlp.parameters()) REQUIRE(p.grad().defined());
    mlp.zero_grad();  // gradients are dropped, as with PyTorch's set_to_none
    for (const auto& p : mlp.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn: train() and eval() reach submodules") {
    nn::Sequential<double> seq;
    seq.emplace<nn::Linear<double>>(2, 2);
    auto inner = seq.emplace<nn::Sequential<double>>();
    auto drop = inner->emplace<nn::Dropout<double>>(0.5);
    CHECK(drop->is_training());
    seq.eval();
    CHECK_FALSE(seq.is_training());
    CHECK_FALSE(drop->is_training());
    seq.train();
    CHECK(drop->is_training());
    // A module added to a container in eval mode takes on that mode.
    seq.eval();
    CHECK_FALSE(seq.emplace<nn::Dropout<double>>(0.1)->is_training());
}

TEST_CASE("nn: printout shows the architecture and parameter counts") {
    Generator gen(0);
    nn::MLP<float> mlp({2, 3, 1}, "tanh", nn::Head::sigmoid, gen);
    const std::string expected =
        "MLP(\n"
        "  (layers): Sequential(\n"
        "    (0): Linear(in=2, out=3, bias=true)  # 9 parameters\n"
        "    (1): Tanh()\n"
        "    (2): Linear(in=3, out=1, bias=true)  # 4 parameters\n"
        "    (3): Sigmoid()\n"
        "  )  # 13 parameters\n"
        ")  # 13 parameters\n"
        "Total parameters: 13 (training mode)";
    CHECK(mlp.str() == expected);
    std::ostringstream os;
    mlp.eval();
    os << mlp;
    CHECK(os.str().find("(evaluation mode)") != std::string::npos);
    CHECK(nn::LayerNorm<float>(4).str().find("LayerNorm(4, eps=1e-05, affine=true)  # 8 parameters") == 0);
    CHECK(nn::Dropout<float>(0.25).str().find("Dropout(p=0.25)\n") == 0);
}

TEST_CASE("nn: Linear computes x W + b and rejects a wrong input width") {
    nn::Linear<double> lin(2, 3);
    lin.weight.modify([](auto& v) { v = xt::xarray<double>{{1, 2, 3}, {4, 5, 6}}; });
    lin.bias.modify([](auto& v) { v = xt::xarray<double>{0.5, 0, -1}; });
    auto y = lin(Tensor64({{1.0, 1.0}, {2.0, 0.0}}));
    CHECK(y.value() == xt::xarray<double>{{5.5, 7, 8}, {2.5, 4, 5}});
    CHECK(lin(Tensor64({1.0, 1.0})).value() == xt::xarray<double>{5.5, 7, 8});  // a single sample
    CHECK_THROWS_WITH_AS(lin(Tensor64::zeros({4, 3})),
                         doctest::Contains("Linear(2 -> 3): input shape [4, 3] does not fit weight shape [2, 3]"),
                         ShapeError);
    nn::Linear<double> no_bias(2, 3, false);
    CHECK(names(no_bias) == std::vector<std::string>{"weight"});
    CHECK_FALSE(no_bias.bias.defined());
}

TEST_CASE("nn: Linear and an MLP gradcheck in float64 through their parameters") {
    Generator gen(5);
    nn::Linear<double> lin(3, 2, true, gen);
    auto report = strict_gradcheck(
        [&](const std::vector<Tensor64>& x) {
            lin.parameter("weight") = x[1];
            lin.parameter("bias") = x[2];
            return lin(x[0]);
        },
        {Tensor64::randn({4, 3}, gen), Tensor64::randn({3, 2}, gen), Tensor64::randn({2}, gen)});
    INFO(report.message());
    REQUIRE(report);

    nn::MLP<double> mlp({3, 4, 2}, "gelu", nn::Head::softmax, gen);
    auto params = mlp.named_parameters();
    std::vector<Tensor64> inputs{Tensor64::randn({5, 3}, gen)};
    for (const auto& p : params) inputs.push_back(p.second);
    auto mlp_report = strict_gradcheck(
        [&](const std::vector<Tensor64>& x) {
            for (std::size_t i = 0; i < params.size(); ++i) mlp.parameter(params[i].first) = x[i + 1];
            return mlp(x[0]);
        },
        inputs);
    INFO(mlp_report.message());
    REQUIRE(mlp_report);
}

TEST_CASE("nn: MLP heads and bad arguments") {
    Generator gen(1);
    auto x = Tensor64::randn({3, 2}, gen);
    nn::MLP<double> soft({2, 4}, "relu", nn::Head::softmax, gen);
    auto rows = sum(soft(x), {1}).value();
    for (double r : rows) CHECK(r == doctest::Approx(1.0));
    nn::MLP<double> sig({2, 5, 1}, "relu", nn::Head::sigmoid, gen);
    auto probabilities = sig(x).value();  // a copy: the temporary tensor dies here
    for (double v : probabilities) CHECK((v > 0 && v < 1));
    CHECK_THROWS_AS(nn::MLP<double>({2}, "relu"), ValueError);
    CHECK_THROWS_WITH_AS(nn::MLP<double>({2, 1}, "relux"), doctest::Contains("relux"), ValueError);
}

TEST_CASE("nn: LayerNorm normalises the last axis, and gradchecks with its affine parameters") {
    nn::LayerNorm<double> ln(4, 1e-5);
    CHECK(names(ln) == std::vector<std::string>{"weight", "bias"});
    auto y = ln(Tensor64({{1.0, 2.0, 3.0, 4.0}, {-1.0, -1.0, 1.0, 1.0}})).value();
    // Row 0: mean 2.5, variance 1.25.
    CHECK(y(0, 0) == doctest::Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
    CHECK(y(1, 3) == doctest::Approx(1 / std::sqrt(1 + 1e-5)));
    CHECK_THROWS_WITH_AS(ln(Tensor64::zeros({2, 3})), doctest::Contains("input shape [2, 3] must end in 4"), ShapeError);

    Generator gen(8);
    auto report = strict_gradcheck(
        [&](const std::vector<Tensor64>& x) {
            ln.parameter("weight") = x[1];
            ln.parameter("bias") = x[2];
            return ln(x[0]);
        },
        {Tensor64::randn({3, 4}, gen), Tensor64::randn({4}, gen), Tensor64::randn({4}, gen)});
    INFO(report.message());
    REQUIRE(report);

    nn::LayerNorm<double> plain(5, 1e-3, false);
    CHECK(plain.parameters().empty());
    auto plain_report = strict_gradcheck([&](const std::vector<Tensor64>& x) { return plain(x[0]); },
                                         {Tensor64::randn({2, 3, 5}, gen)});
    INFO(plain_report.message());
    REQUIRE(plain_report);
}

TEST_CASE("nn: Dropout zeroes about p, scales survivors by 1/(1-p), and is the identity in eval") {
    nn::Dropout<double> drop(0.25, 11);
    Tensor64 x = Tensor64::ones({100, 100}, true);
    auto y = drop(x);
    std::size_t zeros = 0, scaled = 0;
    for (double v : y.value()) {
        zeros += v == 0;
        scaled += std::abs(v - 1 / 0.75) < 1e-12;
    }
    CHECK(zeros + scaled == y.size());
    CHECK(zeros > 2300);
    CHECK(zeros < 2700);
    CHECK(mean_of(y.value()) == doctest::Approx(1.0).epsilon(0.03));  // expectation preserved
    // The gradient is the same mask.
    sum(y).backward();
    CHECK(x.grad().value() == y.value());

    // Same seed, same masks; a different seed, different ones.
    nn::Dropout<double> other(0.25, 12);
    drop.generator().seed(11);
    CHECK(nn::Dropout<double>(0.25, 11)(Tensor64::ones({50})).value() == drop(Tensor64::ones({50})).value());
    CHECK(other(Tensor64::ones({50})).value() != nn::Dropout<double>(0.25, 11)(Tensor64::ones({50})).value());

    drop.eval();
    auto e = drop(x);
    CHECK(e.same(x));
    CHECK(nn::Dropout<double>(1.0)(x).value() == xt::zeros<double>({100, 100}));
    CHECK_THROWS_AS(nn::Dropout<double>(1.5), ValueError);
}

TEST_CASE("nn: same seed, same network; different seed, different network") {
    auto build = [](std::uint64_t seed) {
        Generator gen(seed);
        auto mlp = std::make_shared<nn::MLP<float>>(std::vector<std::size_t>{4, 8, 3}, "relu", nn::Head::identity, gen);
        return mlp;
    };
    auto a = build(42), b = build(42), c = build(43);
    auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].value() == pb[i].value());
    CHECK(pa[0].value() != pc[0].value());

    // The module-wide initialisers too, scheme by scheme.
    for (auto scheme : {nn::init::Scheme::classic, nn::init::Scheme::xavier_normal, nn::init::Scheme::xavier_uniform,
                        nn::init::Scheme::he_normal, nn::init::Scheme::he_uniform}) {
        Generator g1(7), g2(7);
        nn::init::initialize(*a, scheme, g1, nn::init::Bias::normal());
        nn::init::initialize(*b, scheme, g2, nn::init::Bias::normal());
        for (std::size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].value() == pb[i].value());
    }
    // The default generator is seedable like torch.manual_seed.
    nn::manual_seed(5);
    nn::Linear<float> l1(3, 3);
    nn::manual_seed(5);
    nn::Linear<float> l2(3, 3);
    CHECK(l1.weight.value() == l2.weight.value());
}

TEST_CASE("nn: initialisers have the intended spread") {
    Generator gen(9);
    Tensor64 w = Tensor64::zeros({400, 100});
    nn::init::classic_(w, gen);
    CHECK(std_of(w.value()) == doctest::Approx(1 / std::sqrt(400.0)).epsilon(0.03));
    nn::init::xavier_normal_(w, gen);
    CHECK(std_of(w.value()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
    nn::init::xavier_uniform_(w, gen);
    CHECK(std_of(w.value()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
    double largest = 0;
    for (double v : w.value()) largest = std::max(largest, std::abs(v));
    CHECK(largest <= std::sqrt(6.0 / 500));
    nn::init::he_normal_(w, gen);
    CHECK(std_of(w.value()) == doctest::Approx(std::sqrt(2.0 / 400)).epsilon(0.03));
    nn::init::he_uniform_(w, gen);
    CHECK(std_of(w.value()) == doctest::Approx(std::sqrt(2.0 / 400)).epsilon(0.03));
    CHECK(std::abs(mean_of(w.value())) < 0.005);

    // Classic recipe on a module: N(0,1) biases; a constant bias option.
    nn::MLP<double> mlp({400, 300, 10}, "relu", nn::Head::identity, gen);
    nn::init::initialize_classic(mlp, gen);
    CHECK(std_of(mlp.parameter("layers.0.bias").value()) == doctest::Approx(1.0).epsilon(0.15));
    CHECK(std_of(mlp.parameter("layers.0.weight").value()) == doctest::Approx(0.05).epsilon(0.03));
    nn::init::initialize(mlp, nn::init::Scheme::he_normal, gen, nn::init::Bias::constant(0.1));
    for (double b : mlp.parameter("layers.2.bias").value()) CHECK(b == doctest::Approx(0.1));
    // Init writes in place: the optimiser's handles still see the values.
    auto handle = mlp.parameters()[0];
    nn::init::constant_(mlp.parameter("layers.0.weight"), 2.0);
    CHECK(handle.value()(0, 0) == 2.0);
    Tensor64 scalar = Tensor64::scalar(1.0);
    CHECK_THROWS_AS(nn::init::classic_(scalar, gen), ValueError);
}
