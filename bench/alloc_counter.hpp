// Heap accounting for the benchmark programs.
//
// alloc_counter.cpp replaces malloc, free and friends in the benchmark
// executables (glibc supports replacing them; the replacements forward to
// glibc's own allocator). Every heap allocation of the process goes through
// them: C++ operator new, xtensor's aligned buffers (posix_memalign), BLAS
// and libtorch. Counting is off by default, and then costs one relaxed load
// per call, so timed loops are not disturbed; a benchmark turns it on for one
// untimed iteration to report allocations per iteration.
#pragma once

#include <cstdint>

namespace bench {

struct AllocStats {
    std::int64_t allocs = 0;       // successful allocations while counting
    std::int64_t frees = 0;        // frees while counting
    std::int64_t bytes = 0;        // bytes allocated while counting (usable sizes)
    std::int64_t live = 0;         // net bytes since counting started (may be < 0)
    std::int64_t peak = 0;         // highest `live` since counting started / reset_peak()
};

void alloc_counting(bool on);      // start (and reset all counts) or stop
AllocStats alloc_stats();
void alloc_reset_peak();           // peak := live

// Runs f once with counting on and returns what it allocated.
template <class F>
AllocStats count_allocs(F&& f) {
    alloc_counting(true);
    f();
    AllocStats s = alloc_stats();
    alloc_counting(false);
    return s;
}

// Bytes in use by the process heap according to glibc (mallinfo2: arena
// bytes in use plus mmapped blocks), independent of the counters above.
std::int64_t heap_in_use();

}  // namespace bench
