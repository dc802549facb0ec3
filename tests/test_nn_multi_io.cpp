// Modules whose forward takes several tensors or returns a struct
// (nn::ModuleOf), next to the one-tensor modules that Sequential chains: a
// VAE-like encoder returning {mu, logvar}, a module taking (x, y), both
// nested in a model whose parameters, checkpoints and gradients work as for
// any module.
#include <doctest/doctest.h>

#include <filesystem>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "op_test_util.hpp"

using namespace tapegrad;
namespace nn = tapegrad::nn;

namespace {

struct Gaussian {
    Tensor64 mu, logvar;
};

// x -> hidden (a Sequential of one-tensor modules) -> {mu, logvar}.
struct Encoder : nn::ModuleOf<double, Gaussian(const Tensor64&)> {
    std::shared_ptr<nn::Sequential<double>> body;
    std::shared_ptr<nn::Linear<double>> mu_head, logvar_head;
    explicit Encoder(Generator& gen) : ModuleOf("Encoder") {
        body = register_module("body", std::make_shared<nn::Sequential<double>>());
        body->emplace<nn::Linear<double>>(3, 4, true, gen);
        body->push_back(nn::make_activation<double>("tanh"));
        mu_head = register_module("mu", std::make_shared<nn::Linear<double>>(4, 2, true, gen));
        logvar_head = register_module("logvar", std::make_shared<nn::Linear<double>>(4, 2, true, gen));
    }
    Gaussian forward(const Tensor64& x) override {
        auto h = (*body)(x);
        return {(*mu_head)(h), (*logvar_head)(h)};
    }
};

// Two inputs: a bilinear score x W y^T per row pair.
struct Bilinear : nn::ModuleOf<double, Tensor64(const Tensor64&, const Tensor64&)> {
    Tensor64 weight;
    explicit Bilinear(Generator& gen) : ModuleOf("Bilinear") {
        register_parameter("weight", weight, Tensor64::randn({2, 2}, gen));
    }
    Tensor64 forward(const Tensor64& x, const Tensor64& y) override { return (x.matmul(weight) * y).sum(1); }
};

// A model holding both; its own forward is the VAE loss on (x, noise).
struct Vae : nn::ModuleOf<double, Tensor64(const Tensor64&, const Tensor64&)> {
    std::shared_ptr<Encoder> encoder;
    std::shared_ptr<Bilinear> score;
    explicit Vae(Generator& gen) : ModuleOf("Vae") {
        encoder = register_module("encoder", std::make_shared<Encoder>(gen));
        score = register_module("score", std::make_shared<Bilinear>(gen));
    }
    Tensor64 forward(const Tensor64& x, const Tensor64& noise) override {
        auto [mu, logvar] = (*encoder)(x);
        auto z = mu + (logvar * 0.5).exp() * noise;
        auto kl = ((mu * mu + logvar.exp() - logvar - 1.0) * 0.5).sum(1);
        return ((*score)(z, mu) + kl).mean();
    }
};

}  // namespace

TEST_CASE("nn: a module returning a struct and one taking two tensors") {
    Generator gen(11);
    Encoder enc(gen);
    Tensor64 x = uniform({5, 3}, 81);
    auto [mu, logvar] = enc(x);
    CHECK(mu.shape_vector() == Shape{5, 2});
    CHECK(logvar.shape_vector() == Shape{5, 2});
    // The heads see the Sequential's output: compare with the layers by hand.
    auto h = tanh((*enc.body)[0](x));
    CHECK(mu.value() == (*enc.mu_head)(h).value());

    Bilinear bil(gen);
    Tensor64 a = uniform({5, 2}, 82), b = uniform({5, 2}, 83);
    auto s = bil(a, b);
    CHECK(s.shape_vector() == Shape{5});
    for (std::size_t r = 0; r < 5; ++r) {
        double want = 0;
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t j = 0; j < 2; ++j) want += a.value()(r, i) * bil.weight.value()(i, j) * b.value()(r, j);
        CHECK(s.value()(r) == doctest::Approx(want).epsilon(1e-14));
    }
}

TEST_CASE("nn: nested multi-input modules name, zero, checkpoint and gradcheck their parameters") {
    Generator gen(12);
    Vae vae(gen);
    std::vector<std::string> names;
    for (const auto& p : vae.named_parameters()) names.push_back(p.first);
    CHECK(names == std::vector<std::string>{"encoder.body.0.weight", "encoder.body.0.bias", "encoder.mu.weight",
                                            "encoder.mu.bias", "encoder.logvar.weight", "encoder.logvar.bias",
                                            "score.weight"});
    CHECK(vae.str().find("(encoder): Encoder") != std::string::npos);

    Tensor64 x = uniform({4, 3}, 84), noise = uniform({4, 2}, 85);
    auto loss = vae(x, noise);
    loss.backward();
    for (const auto& p : vae.parameters()) CHECK(p.grad().defined());
    vae.zero_grad();
    for (const auto& p : vae.parameters()) CHECK_FALSE(p.grad().defined());

    // Gradients through every parameter against finite differences.
    const auto named = vae.named_parameters();
    std::vector<Tensor64> leaves;
    for (const auto& p : named) leaves.push_back(p.second.detach());
    TensorFunction f = [&](const std::vector<Tensor64>& in) {
        for (std::size_t i = 0; i < named.size(); ++i) vae.parameter(named[i].first) = in[i];
        return vae(x, noise);
    };
    REQUIRE_GRADCHECK(f, leaves);
    for (std::size_t i = 0; i < named.size(); ++i) vae.parameter(named[i].first) = named[i].second;

    // Checkpoints and initialisers take any module.
    const auto path = (std::filesystem::temp_directory_path() / "tapegrad_multi_io.npz").string();
    nn::save_checkpoint(path, vae);
    Generator other(99);
    Vae restored(other);
    CHECK(restored(x, noise).item() != doctest::Approx(vae(x, noise).item()));
    nn::load_checkpoint(path, restored);
    CHECK(restored(x, noise).item() == doctest::Approx(vae(x, noise).item()).epsilon(1e-14));
    std::filesystem::remove(path);
    nn::init::initialize(restored, nn::init::Scheme::xavier_uniform, other);
}

TEST_CASE("nn: Sequential still chains one-tensor modules, which are ModuleOf too") {
    Generator gen(13);
    nn::Sequential<double> seq;
    seq.emplace<nn::Linear<double>>(3, 2, true, gen);
    seq.push_back(nn::make_activation<double>("sigmoid"));
    nn::ModuleOf<double, Tensor64(const Tensor64&)>& as_generic = seq;
    Tensor64 x = uniform({2, 3}, 86);
    CHECK(as_generic(x).value() == seq(x).value());
    CHECK(seq(x).value() == sigmoid(seq[0](x)).value());
}
