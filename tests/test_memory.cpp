// Memory does not grow over long runs: every graph is freed when the
// tensors holding it go away (live_graph_nodes() returns to its baseline
// after each step), and the resident set stays flat after a warm-up.
//
// Under AddressSanitizer freed memory sits in a quarantine and the resident
// set says nothing about leaks, so there only the node counts are checked
// (LeakSanitizer checks the rest when the program exits).
#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <xtensor/xmath.hpp>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_TEST_ASAN 1
#endif
#endif

#ifdef TAPEGRAD_TEST_ASAN
// LeakSanitizer: fontconfig (used by cairo's text in the plot helpers) keeps
// its configuration and font patterns for the life of the process.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

using namespace tapegrad;

namespace {

#ifdef TAPEGRAD_TEST_ASAN
constexpr bool kMeasureResidentSet = false;
#else
constexpr bool kMeasureResidentSet = true;
#endif

// Resident set size of this process, in KiB.
std::size_t resident_kib() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

}  // namespace

TEST_CASE("memory: 10,000 training steps of an MLP with Adam do not grow") {
    Generator gen(11);
    nn::MLP<float> model({6, 32, 32, 4}, "relu", nn::Head::identity, gen);
    nn::Adam<float> opt(model.parameters(), 1e-3);
    const auto x = Tensor::randn({16, 6}, gen);
    Index labels;
    for (int i = 0; i < 16; ++i) labels.push_back(i % 4);

    const auto baseline = live_graph_nodes();
    std::int64_t peak = 0;
    bool graphs_freed = true;
    auto step = [&] {
        {
            opt.zero_grad();
            auto loss = nn::cross_entropy(model(x), labels);
            peak = std::max(peak, live_graph_nodes() - baseline);
            loss.backward();
            opt.step();
        }
        graphs_freed = graphs_freed && live_graph_nodes() == baseline;
    };
    for (int i = 0; i < 500; ++i) step();  // warm-up: allocator pools, optimiser state
    const auto rss_before = resident_kib();
    for (int i = 0; i < 10000; ++i) step();
    const auto rss_after = resident_kib();

    CHECK(peak > 5);  // the steps did record graphs...
    CHECK(graphs_freed);  // ...and every one was freed by the end of its step
    CHECK(live_graph_nodes() == baseline);
    MESSAGE("RSS " << rss_before << " KiB -> " << rss_after << " KiB over 10,000 steps; " << peak
                   << " graph nodes per step");
    // A leaked graph per step (~20 nodes with saved [16, 32] activations)
    // would be tens of MiB; allow allocator noise only.
    if (kMeasureResidentSet) CHECK(rss_after < rss_before + 2048);
}

TEST_CASE("memory: 100,000 forward passes of an nn MLP without backward do not grow") {
    Generator gen(12);
    nn::MLP<float> model({8, 16, 3}, "tanh", nn::Head::softmax, gen);
    const auto x = Tensor::randn({4, 8}, gen);
    const auto baseline = live_graph_nodes();
    std::size_t recorded = 0;
    auto forward = [&] {
        auto y = model(x);  // records a graph (parameters require grad), never backpropagated
        recorded += y.requires_grad() ? 1 : 0;
    };
    for (int i = 0; i < 1000; ++i) forward();
    const auto rss_before = resident_kib();
    for (int i = 0; i < 100000; ++i) forward();
    const auto rss_after = resident_kib();
    CHECK(recorded == 101000);
    CHECK(live_graph_nodes() == baseline);
    MESSAGE("RSS " << rss_before << " KiB -> " << rss_after << " KiB over 100,000 forward passes");
    if (kMeasureResidentSet) CHECK(rss_after < rss_before + 2048);

    // Evaluation under NoGradGuard records nothing at all.
    NoGradGuard no_grad;
    auto y = model(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(live_graph_nodes() == baseline);
}

TEST_CASE("memory: a graph kept alive across steps holds its nodes until released") {
    // The counter is a real measure: a kept loss keeps its graph.
    Generator gen(13);
    nn::MLP<double> model({3, 5, 2}, "relu", nn::Head::identity, gen);
    const auto x = Tensor64::randn({2, 3}, gen);
    const auto baseline = live_graph_nodes();
    std::vector<Tensor64> kept;
    for (int i = 0; i < 10; ++i) kept.push_back(sum(model(x)));
    const auto per_graph = (live_graph_nodes() - baseline) / 10;
    CHECK(per_graph > 0);
    kept.front().backward();  // backward frees saved values, not the nodes
    CHECK(live_graph_nodes() == baseline + 10 * per_graph);
    kept.clear();
    CHECK(live_graph_nodes() == baseline);
}

TEST_CASE("memory: tensors freed on another thread: a compiled step's outputs and gradients from its arena") {
    // A replay hands its loss and gradients over from the program's planned
    // block (core/arena.hpp); a worker thread drops them while later replays
    // run on this one. Every replay still equals eager mode, and the block
    // outlives the program for the gradients still held.
    Generator gen(3);
    nn::Linear<double> layer(5, 4, true, gen);
    compile::StepFn<double> step = [&](const compile::StepInputs<double>& in) {
        auto loss = sum(tanh(layer.forward(in.tensors[0])));
        loss.backward();
        return std::vector<Tensor64>{loss};
    };
    auto batch = [](std::size_t k) {
        Generator g(100 + k);
        return Tensor64::randn({6, 5}, g);
    };
    std::mutex m;
    std::condition_variable ready;
    std::deque<std::vector<Tensor64>> handed;
    bool done = false;
    std::thread worker([&] {
        for (;;) {
            std::unique_lock<std::mutex> lock(m);
            ready.wait(lock, [&] { return done || !handed.empty(); });
            if (handed.empty()) return;
            auto held = std::move(handed.front());
            handed.pop_front();
            lock.unlock();
            held.clear();  // released here, not on the replaying thread
        }
    });
    Tensor64 kept_grad;
    {
        auto compiled = compile::capture<double>(step, {{batch(0)}, {}});
        for (std::size_t k = 1; k <= 200; ++k) {
            auto x = batch(k);
            auto loss = compiled({{x}, {}})[0];
            std::vector<Tensor64> give{loss, layer.weight.grad(), layer.bias.grad()};
            if (k % 50 == 0) {
                nn::Linear<double> eager(5, 4, true, gen);
                eager.weight.modify([&](auto& v) { v = layer.weight.value(); });
                eager.bias.modify([&](auto& v) { v = layer.bias.value(); });
                auto want = sum(tanh(eager.forward(x)));
                want.backward();
                CHECK(std::abs(loss.item() - want.item()) <= 1e-12 * std::max(1.0, std::abs(want.item())));
                CHECK(xt::allclose(layer.weight.grad().value(), eager.weight.grad().value(), 1e-12, 0.0));
            }
            {
                std::lock_guard<std::mutex> lock(m);
                handed.push_back(std::move(give));
            }
            ready.notify_one();
        }
        kept_grad = layer.weight.grad();
    }  // the program goes; the gradient it handed over stays valid
    {
        std::lock_guard<std::mutex> lock(m);
        done = true;
    }
    ready.notify_one();
    worker.join();
    const Array<double> copy = kept_grad.value();
    for (int i = 0; i < 10; ++i) (void)(batch(300 + i) * 3.0);
    CHECK(kept_grad.value() == copy);
}

TEST_CASE("memory: tensors freed on another thread do not fill that thread's buffer cache") {
    // A producer thread allocates 2,000 tensors of 4 KiB to 64 KiB; this
    // thread frees them. They go back to malloc, not into this thread's cache
    // (which they used to fill, 37 MB until release_cached_memory()).
    release_cached_memory();
    REQUIRE(cached_bytes() == 0);
    std::vector<Tensor> produced;
    std::thread producer([&] {
        for (std::size_t i = 0; i < 2000; ++i) produced.push_back(Tensor::ones({1024 * (1 + i % 16)}));
    });
    producer.join();
    CHECK(produced.size() == 2000);
    produced.clear();
    CHECK(cached_bytes() == 0);

    // This thread's own buffers are still kept, within the per-size bound.
    {
        std::vector<Tensor> own;
        for (std::size_t i = 0; i < max_cached_per_size + 44; ++i) own.push_back(Tensor::ones({1024}));
    }
    if (buffer_cache_enabled()) {
        CHECK(cached_bytes() >= max_cached_per_size * 4096);
        CHECK(cached_bytes() < (max_cached_per_size + 1) * 4096);  // not all 300: the bound per size
    } else {
        CHECK(cached_bytes() == 0);
    }
    release_cached_memory();
    CHECK(cached_bytes() == 0);
}
