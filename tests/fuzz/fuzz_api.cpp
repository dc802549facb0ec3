// libFuzzer target for the public API (see api_fuzz.hpp for the contract
// and api_fuzz.cpp for how bytes become calls).
//
// Build (clang only) and run, from the repository root:
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DTAPEGRAD_FUZZ=ON -DTAPEGRAD_SANITIZE=ON \
//         -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-fuzz --target fuzz_api -j2
//   mkdir -p /tmp/fuzz-api && build-fuzz/tests/fuzz/fuzz_api -max_len=512 -timeout=10 -rss_limit_mb=2048 \
//         -detect_leaks=0 -print_final_stats=1 -max_total_time=600 /tmp/fuzz-api tests/corpus/api
// (the first folder collects new inputs; the seeds come from tests/corpus/api;
// leaks are checked when CI replays the corpus, at exit).
//
// A finding is a bug: fix it, then add the input to tests/corpus/api/ (a
// few hundred small files at most: `fuzz_api -merge=1 new_dir old_dirs...`
// keeps the ones that add coverage), where CTest's api_fuzz.corpus replays
// it on every CI run, under ASan and UBSan too.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <tapegrad/core/threads.hpp>

#include "api_fuzz.hpp"

namespace {
std::string g_scratch;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_scratch = (std::filesystem::path(tapegrad::fuzz::scratch_root()) / ("tapegrad_fuzz_api_" + std::to_string(::getpid())))
                    .string();
    std::filesystem::create_directories(g_scratch);
    std::atexit([] {
        std::error_code ec;
        std::filesystem::remove_all(g_scratch, ec);
    });
    tapegrad::set_num_threads(1);
    tapegrad::fuzz::limit_memory(4096);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto r = tapegrad::fuzz::run_api_input(data, size, g_scratch);
    if (!r.failure.empty()) {
        std::fprintf(stderr, "fuzz_api: contract broken: %s\n", r.failure.c_str());
        std::abort();
    }
    return 0;
}
