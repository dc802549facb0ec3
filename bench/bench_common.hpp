// Small helpers shared by the benchmark programs.
#pragma once

#include <cstdlib>
#include <string>

#include <benchmark/benchmark.h>

#include "alloc_counter.hpp"
#include "workloads.hpp"

namespace bench {

// TAPEGRAD_BENCH_SMOKE=1: the CI smoke mode. Benchmarks skip their warm-up
// iteration (they still run everything once); timings mean nothing then.
inline bool smoke_mode() {
    const char* s = std::getenv("TAPEGRAD_BENCH_SMOKE");
    return s && *s && std::string(s) != "0";
}

// Heap allocations of one call of f, reported as a per-iteration counter.
template <class F>
void report_allocs(benchmark::State& state, F&& f, double per = 1.0) {
    const AllocStats s = count_allocs(f);
    state.counters["allocs"] = benchmark::Counter(double(s.allocs) / per);
    state.counters["alloc_bytes"] = benchmark::Counter(double(s.bytes) / per, benchmark::Counter::kDefaults,
                                                       benchmark::Counter::OneK::kIs1024);
}

inline void add_context() {
    benchmark::AddCustomContext("blas", blas_config());
#ifdef TAPEGRAD_BENCH_HAVE_TORCH
    benchmark::AddCustomContext("libtorch", torch_version());
#endif
#ifdef TAPEGRAD_BENCH_HAVE_DLIB
    benchmark::AddCustomContext("dlib", dlib_version());
#endif
#ifdef NDEBUG
    benchmark::AddCustomContext("tapegrad_build", "release (NDEBUG)");
#else
    benchmark::AddCustomContext("tapegrad_build", "assertions on (not NDEBUG)");
#endif
}

// The main() of a benchmark program that registers its benchmarks at run
// time: flags, context, the benchmarks `register_all` registers.
inline int run_main(int argc, char** argv, void (*register_all)()) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    add_context();
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace bench
