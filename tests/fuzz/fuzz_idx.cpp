// libFuzzer target for the IDX reader (nn/data/idx.cpp), plain and gzip.
//
// Build (clang only) and run, from the repository root:
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DTAPEGRAD_FUZZ=ON -DTAPEGRAD_SANITIZE=ON \
//         -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-fuzz --target fuzz_idx -j2
//   mkdir -p /tmp/fuzz-idx && build-fuzz/tests/fuzz/fuzz_idx -max_total_time=300 -max_len=8192 \
//         -rss_limit_mb=2048 /tmp/fuzz-idx tests/corpus/idx
// (the first folder collects new inputs; the seeds come from tests/corpus/idx).
//
// A crash, leak, timeout or out-of-memory input is a reader bug: fix it, then
// add the input to tests/corpus/idx/ as bad_<what>.idx (or ok_<what>.idx if
// it is valid), where the corpus replay in tests/test_idx.cpp checks it on
// every CI run. Inputs that only raise an IoError are fine.
//
// Beyond "no crash", every file that loads must be self-consistent and
// survive a write/read round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include <tapegrad/core/error.hpp>
#include <tapegrad/nn/data/idx.hpp>

using namespace tapegrad::data;

namespace {

std::string scratch(const char* what) {
    return "/dev/shm/tapegrad_fuzz_idx_" + std::to_string(::getpid()) + "_" + what;
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_idx: invariant violated: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string input = scratch("in"), output = scratch("out");
    write_file(input, data, size);
    IdxArray a;
    try {
        a = read_idx(input);
    } catch (const tapegrad::IoError&) {
        return 0;  // rejected with a readable error: fine
    }
    check(!a.shape.empty() && a.shape.size() <= 8, "1 to 8 dimensions");
    check(a.bytes.size() == a.size() * idx_type_size(a.type), "byte count matches shape and type");
    (void)a.to_doubles();
    for (bool gzip : {false, true}) {
        write_idx(output, a, gzip);
        const IdxArray b = read_idx(output);
        check(b.type == a.type && b.shape == a.shape && b.bytes == a.bytes, "write/read round trip");
    }
    return 0;
}
