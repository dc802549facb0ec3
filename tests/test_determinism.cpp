// With one BLAS thread and the same seed, training is bitwise reproducible:
// initial weights, dropout masks, batch order and every floating-point
// operation come out the same on every run.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

struct Result {
    std::vector<xt::xarray<float>> params;
    std::vector<float> losses;
};

data::Dataset make_dataset(std::uint64_t seed) {
    Generator gen(seed);
    data::Dataset d;
    d.classes = 4;
    d.features = Tensor::randn({200, 12}, gen).value();
    for (std::size_t i = 0; i < 200; ++i) d.labels.push_back(static_cast<std::int64_t>(gen.engine()() % 4));
    return d;
}

// Everything random is drawn from `seed`: the weights, the dropout and RReLU
// draws, the batch order.
Result train(std::uint64_t seed) {
    const data::Dataset d = make_dataset(7);
    Generator gen(seed);
    nn::Sequential<float> model;
    model.emplace<nn::Linear<float>>(12, 64, true, gen);
    model.emplace<nn::RReLU<float>>(0.1f, 0.3f, seed + 1);
    model.emplace<nn::Dropout<float>>(0.25f, seed + 2);
    model.emplace<nn::LayerNorm<float>>(64);
    model.emplace<nn::Linear<float>>(64, 48, true, gen);
    model.push_back(nn::make_activation<float>("silu"));
    model.emplace<nn::Linear<float>>(48, 4, true, gen);
    nn::Adam<float> opt(model.parameters(), 2e-3, 0.9, 0.999, 1e-8, 1e-4);
    data::BatchIterator batches(d, 32, gen);
    Result r;
    Tensor x;
    Index y;
    for (int epoch = 0; epoch < 5; ++epoch) {
        while (batches.next(x, y)) {
            opt.zero_grad();
            auto loss = nn::cross_entropy(model(x), y);
            loss.backward();
            opt.step();
            r.losses.push_back(loss.item());
        }
    }
    for (const auto& p : model.parameters()) r.params.push_back(p.value());
    return r;
}

bool same_bits(const xt::xarray<float>& a, const xt::xarray<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Sets the BLAS thread count for one scope.
struct BlasThreads {
    int previous = num_threads();
    explicit BlasThreads(int n) { set_num_threads(n); }
    ~BlasThreads() { set_num_threads(previous); }
};

}  // namespace

TEST_CASE("determinism: the same seed gives bitwise-identical training with one BLAS thread") {
    BlasThreads one(1);
    const Result first = train(2024), second = train(2024);
    REQUIRE(first.params.size() == second.params.size());
    REQUIRE(first.losses.size() == 35);  // 5 epochs of 7 batches
    CHECK(std::memcmp(first.losses.data(), second.losses.data(), first.losses.size() * sizeof(float)) == 0);
    for (std::size_t i = 0; i < first.params.size(); ++i) {
        CAPTURE(i);
        CHECK(same_bits(first.params[i], second.params[i]));
    }
    // A different seed gives a different run: the comparison is not vacuous.
    const Result other = train(2025);
    CHECK_FALSE(same_bits(first.params[0], other.params[0]));
    CHECK(first.losses.back() < first.losses.front());
}

TEST_CASE("determinism: gradients of the same graph are bitwise identical on every backward") {
    BlasThreads one(1);
    Generator gen(5);
    nn::MLP<double> model({7, 20, 3}, "tanh", nn::Head::identity, gen);
    const auto x = Tensor64::randn({9, 7}, gen);
    std::vector<xt::xarray<double>> reference;
    nn::cross_entropy(model(x), Index{0, 1, 2, 0, 1, 2, 0, 1, 2}).backward();  // every run below adds to zeros
    for (int run = 0; run < 3; ++run) {
        model.zero_grad();
        nn::cross_entropy(model(x), Index{0, 1, 2, 0, 1, 2, 0, 1, 2}).backward();
        for (std::size_t i = 0; i < model.parameters().size(); ++i) {
            const auto& g = model.parameters()[i].grad().value();
            if (run == 0) reference.push_back(g);
            else CHECK(std::memcmp(g.data(), reference[i].data(), g.size() * sizeof(double)) == 0);
        }
    }
}
