// tapegrad_bench_compare: the same workloads in tapegrad, libtorch (when
// built with it) and the pure-BLAS floor, in one program so that Google
// Benchmark can interleave them (--benchmark_enable_random_interleaving)
// and every ratio comes from one run on one machine state.
//
//   tape/<fwd|fwdbwd>/<engine>          chain of 100 ops on 4-element tensors,
//                                       1 thread; counter per_op = seconds per op
//   mlp/<sizes>_b<batch>/<engine>/t<n>  one training step (forward, backward,
//                                       SGD), n = 1 or 2 threads
//   ffn/<engine>, xent/<engine>         forward + backward of the FFN block and
//                                       of softmax cross-entropy (workloads.hpp),
//                                       1 thread; counter loss
//
// MLP counters: fwd_us, bwd_us, upd_us (phase times per step), bwd/fwd,
// FLOPS (matrix-product FLOPs per second), allocs and alloc_bytes (heap
// allocations of one step), loss (after the last step).
// scripts/compare runs this with repetitions and prints the ratio table.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "bench_common.hpp"

namespace {

using bench::Chain;
using bench::MlpSpec;
using bench::Trainer;

struct Engine {
    std::string name;
    std::function<std::unique_ptr<Trainer>(const MlpSpec&)> trainer;
    std::function<std::unique_ptr<Chain>(int)> chain;  // null: no tape benchmark
    std::function<std::unique_ptr<bench::Pass>(const bench::PassSpec&)> pass;  // null: no ffn/xent
};

std::vector<Engine> engines() {
    std::vector<Engine> e{{"tapegrad", bench::make_tapegrad_trainer, bench::make_tapegrad_chain,
                           bench::make_tapegrad_pass},
                          {"replay", bench::make_replay_trainer, bench::make_replay_chain, bench::make_replay_pass}};
#ifdef TAPEGRAD_BENCH_HAVE_TORCH
    e.push_back({"libtorch", bench::make_torch_trainer, bench::make_torch_chain, bench::make_torch_pass});
#endif
#ifdef TAPEGRAD_BENCH_HAVE_DLIB
    e.push_back({"dlib", bench::make_dlib_trainer, nullptr, nullptr});
#endif
    e.push_back({"floor", bench::make_floor_trainer, nullptr, nullptr});
    return e;
}

// Models persist between the runs of one benchmark (Google Benchmark calls
// the function again for every repetition and while it sizes the run).
Trainer& trainer(const Engine& e, const MlpSpec& spec) {
    static std::map<std::string, std::unique_ptr<Trainer>> cache;
    auto& t = cache[e.name + "/" + spec.name];
    if (!t) t = e.trainer(spec);
    return *t;
}

void bm_mlp(benchmark::State& state, const Engine& e, const MlpSpec& spec, int threads) {
    using clock = std::chrono::steady_clock;
    bench::set_threads(threads);
    Trainer& t = trainer(e, spec);
    if (!bench::smoke_mode()) t.step();  // warm-up: caches, BLAS buffers, gradient buffers
    bench::report_allocs(state, [&] { t.step(); });

    double fwd = 0, bwd = 0, upd = 0;
    for (auto _ : state) {
        const auto t0 = clock::now();
        t.forward();
        const auto t1 = clock::now();
        t.backward();
        const auto t2 = clock::now();
        t.update();
        const auto t3 = clock::now();
        fwd += std::chrono::duration<double, std::micro>(t1 - t0).count();
        bwd += std::chrono::duration<double, std::micro>(t2 - t1).count();
        upd += std::chrono::duration<double, std::micro>(t3 - t2).count();
    }
    using C = benchmark::Counter;
    state.counters["fwd_us"] = C(fwd, C::kAvgIterations);
    state.counters["bwd_us"] = C(bwd, C::kAvgIterations);
    state.counters["upd_us"] = C(upd, C::kAvgIterations);
    state.counters["bwd/fwd"] = C(fwd > 0 ? bwd / fwd : 0);
    state.counters["FLOPS"] = C(spec.step_flops(), C::kIsIterationInvariantRate);
    state.counters["loss"] = C(t.loss());
    state.counters["threads"] = C(threads);
}

void bm_tape(benchmark::State& state, const Engine& e, bool backward) {
    bench::set_threads(1);
    auto chain = e.chain(bench::kChainLength);
    auto once = [&] { backward ? chain->forward_backward() : chain->forward(); };
    once();
    bench::report_allocs(state, once, bench::kChainLength);  // per op
    for (auto _ : state) once();
    using C = benchmark::Counter;
    state.counters["per_op"] = C(bench::kChainLength, C::kIsIterationInvariantRate | C::kInvert);
    state.SetItemsProcessed(state.iterations() * bench::kChainLength);
}

void bm_pass(benchmark::State& state, const Engine& e, const bench::PassSpec& spec) {
    bench::set_threads(1);
    auto pass = e.pass(spec);
    if (!bench::smoke_mode()) pass->run();  // warm-up: gradient buffers exist, as in training
    bench::report_allocs(state, [&] { pass->run(); });
    for (auto _ : state) pass->run();
    state.counters["loss"] = benchmark::Counter(pass->loss());
}

void register_all() {
    static const std::vector<Engine> all = engines();
    for (const auto& spec : bench::pass_specs())
        for (const auto& e : all) {
            if (!e.pass) continue;
            auto* b = benchmark::RegisterBenchmark((spec.name + "/" + e.name).c_str(),
                                                   [&e, &spec](benchmark::State& s) { bm_pass(s, e, spec); });
            b->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
    for (const auto& e : all) {
        if (!e.chain) continue;
        for (bool backward : {false, true}) {
            auto* b = benchmark::RegisterBenchmark(("tape/" + std::string(backward ? "fwdbwd/" : "fwd/") + e.name).c_str(),
                                                   [&e, backward](benchmark::State& s) { bm_tape(s, e, backward); });
            b->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
    }
    for (const auto& spec : bench::mlp_specs())
        for (int threads : {1, 2})
            for (const auto& e : all) {
                if (e.name == "replay" && threads != 1) continue;  // the targets are 1-thread
                if (!e.trainer(spec)) continue;  // an engine built for other shapes only
                const std::string name = "mlp/" + spec.name + "/" + e.name + "/t" + std::to_string(threads);
                auto* b = benchmark::RegisterBenchmark(
                    name.c_str(), [&e, &spec, threads](benchmark::State& s) { bm_mlp(s, e, spec, threads); });
                b->UseRealTime()->Unit(spec.batch >= 1024 ? benchmark::kMillisecond : benchmark::kMicrosecond);
            }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    bench::add_context();
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
