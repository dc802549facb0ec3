// The programs of the random-graph fuzzer that CI runs: the same seeds are
// checked against finite differences (tests/test_fuzz_graphs.cpp) and
// captured and replayed against eager mode in float64 and float32
// (tests/test_compile_fuzz.cpp).
// One CTest test per batch, so ctest -j spreads them over the cores.
#pragma once

#include <cstdint>

namespace tapegrad::fuzz {

struct CiBatch {
    std::uint64_t first_seed;
    int graphs;
    bool smooth;  // smooth ops only: second derivatives checked too
};

constexpr CiBatch kCiBatches[] = {
    {100000, 500, false}, {200000, 500, false}, {300000, 500, false}, {400000, 500, false},
    {500000, 500, false}, {600000, 500, false}, {700000, 250, true},  {800000, 250, true},
};

constexpr int ci_graphs() {
    int n = 0;
    for (const auto& b : kCiBatches) n += b.graphs;
    return n;
}

}  // namespace tapegrad::fuzz
