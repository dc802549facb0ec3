// The threading rules of docs/threads.md: independent models train
// concurrently with exactly the results they get one after the other; the
// modes and the profiler belong to one thread; the live-node counter and
// tape positions stay consistent when many threads build and free graphs.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <tapegrad/core/node.hpp>
#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

struct Run {
    std::vector<xt::xarray<float>> params;
    std::vector<float> losses;
    std::string error;
};

// A small classification set, shared read-only by the threads.
data::Dataset make_dataset() {
    Generator gen(99);
    data::Dataset d;
    d.classes = 3;
    d.features = Tensor::randn({240, 10}, gen).value();
    for (std::size_t i = 0; i < 240; ++i) {
        float s = 0;
        for (std::size_t j = 0; j < 10; ++j) s += d.features(i, j) * float(j % 3 + 1);
        d.labels.push_back(s > 1 ? 2 : s > -1 ? 1 : 0);
    }
    return d;
}

// Trains a fresh model from `seed` for `epochs`: everything random (weights,
// dropout masks, batch order) comes from generators seeded here.
Run train(const data::Dataset& d, std::uint64_t seed, int epochs) {
    Run run;
    try {
        Generator gen(seed);
        nn::Sequential<float> model;
        model.emplace<nn::Linear<float>>(10, 32, true, gen);
        model.push_back(nn::make_activation<float>("gelu"));
        model.emplace<nn::Dropout<float>>(0.2f, seed + 1);
        model.emplace<nn::Linear<float>>(32, 32, true, gen);
        model.push_back(nn::make_activation<float>("relu"));
        model.emplace<nn::Linear<float>>(32, 3, true, gen);
        nn::AdamW<float> opt(model.parameters(), 3e-3);
        data::BatchIterator batches(d, 16, gen);
        Tensor x;
        Index y;
        for (int epoch = 0; epoch < epochs; ++epoch) {
            while (batches.next(x, y)) {
                opt.zero_grad();
                auto loss = nn::cross_entropy(model(x), y);
                loss.backward();
                opt.step();
                run.losses.push_back(loss.item());
            }
        }
        for (const auto& p : model.parameters()) run.params.push_back(p.value());
    } catch (const std::exception& e) {
        run.error = e.what();
    }
    return run;
}

bool bitwise_equal(const Run& a, const Run& b) {
    if (a.params.size() != b.params.size() || a.losses != b.losses) return false;
    for (std::size_t i = 0; i < a.params.size(); ++i) {
        if (a.params[i].shape() != b.params[i].shape()) return false;
        if (!std::equal(a.params[i].begin(), a.params[i].end(), b.params[i].begin(),
                        [](float u, float v) { return std::memcmp(&u, &v, sizeof u) == 0; }))
            return false;
    }
    return true;
}

}  // namespace

TEST_CASE("threads: two models trained concurrently match training them one after the other, bitwise") {
    const data::Dataset d = make_dataset();  // read by both threads at once
    const Run a_alone = train(d, 1, 4), b_alone = train(d, 2, 4);
    REQUIRE(a_alone.error == "");
    REQUIRE(b_alone.error == "");

    Run a, b;
    std::thread ta([&] { a = train(d, 1, 4); });
    std::thread tb([&] { b = train(d, 2, 4); });
    ta.join();
    tb.join();
    REQUIRE(a.error == "");
    REQUIRE(b.error == "");
    CHECK(a.losses.size() == 60);  // 4 epochs of 15 batches
    CHECK(bitwise_equal(a, a_alone));
    CHECK(bitwise_equal(b, b_alone));
    CHECK_FALSE(bitwise_equal(a, b));  // the seeds matter: the check above is not vacuous
    CHECK(a.losses.back() < a.losses.front());
}

TEST_CASE("threads: grad mode, anomaly mode and the profiler belong to one thread") {
    NoGradGuard no_grad;
    DetectAnomalyGuard anomaly;
    Profiler profiler;
    bool grad_there = false, anomaly_there = true, profiler_there = true, recorded_there = false;
    std::thread t([&] {
        grad_there = grad_enabled();
        anomaly_there = anomaly_enabled();
        profiler_there = Profiler::current() != nullptr;
        Tensor64 w({1.0, 2.0}, true);
        recorded_there = (w * 2.0).requires_grad();
    });
    t.join();
    CHECK(grad_there);
    CHECK_FALSE(anomaly_there);
    CHECK_FALSE(profiler_there);
    CHECK(recorded_there);
    CHECK(profiler.rows().empty());  // the other thread's op was not counted here
    // And here the guards still hold.
    Tensor64 w({1.0}, true);
    CHECK_FALSE((w * 2.0).requires_grad());
    CHECK(anomaly_enabled());
}

TEST_CASE("threads: the live-node count and tape positions stay consistent across threads") {
    const auto baseline = live_graph_nodes();
    constexpr int kThreads = 4, kGraphs = 2000;
    std::vector<std::vector<std::uint64_t>> positions(kThreads);
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Tensor64 w({0.5, -1.0, 2.0}, true);
            ++ready;
            while (ready < kThreads) std::this_thread::yield();  // start together
            std::vector<Tensor64> kept;
            for (int i = 0; i < kGraphs; ++i) {
                auto y = tanh(w * static_cast<double>(i)) + 1.0;  // two nodes
                positions[static_cast<std::size_t>(t)].push_back(y.grad_fn()->seq);
                if (i % 4 == 0) kept.push_back(y);  // some graphs outlive the loop iteration
                if (i % 3 == 0) sum(y).backward();
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(live_graph_nodes() == baseline);  // every node freed, by whichever thread
    std::set<std::uint64_t> unique;
    std::size_t total = 0;
    for (const auto& p : positions) {
        CHECK(std::is_sorted(p.begin(), p.end()));  // increasing within a thread
        unique.insert(p.begin(), p.end());
        total += p.size();
    }
    CHECK(unique.size() == total);  // no two nodes share a tape position
}

TEST_CASE("threads: a graph may be handed to another thread for backward and release") {
    Tensor64 w({0.25, 0.75}, true);
    const auto baseline = live_graph_nodes();
    auto loss = sum(exp(w) * w);
    Tensor64 grad_there;
    std::thread t([&, loss = std::move(loss)]() mutable {
        loss.backward();
        grad_there = w.grad();
        loss = Tensor64();  // the graph is freed on this thread
    });
    t.join();
    CHECK(live_graph_nodes() == baseline);
    // d/dw sum(e^w w) = e^w (1 + w)
    CHECK(grad_there.value()(0) == doctest::Approx(std::exp(0.25) * 1.25));
    CHECK(grad_there.value()(1) == doctest::Approx(std::exp(0.75) * 1.75));
}
