// libFuzzer target for the .npz reader (nn/data/npz.cpp): zip structure,
// zip64 fields, deflate, .npy headers.
//
// Build (clang only) and run, from the repository root:
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DTAPEGRAD_FUZZ=ON -DTAPEGRAD_SANITIZE=ON \
//         -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-fuzz --target fuzz_npz -j2
//   mkdir -p /tmp/fuzz-npz && build-fuzz/tests/fuzz/fuzz_npz -max_total_time=300 -max_len=16384 \
//         -rss_limit_mb=2048 /tmp/fuzz-npz tests/corpus/npz
// (the first folder collects new inputs; the seeds come from tests/corpus/npz).
//
// A crash, leak, timeout or out-of-memory input is a reader bug: fix it, then
// add the input to tests/corpus/npz/ as bad_<what>.npz (or ok_<what>.npz if
// it is valid), where the corpus replay in tests/test_npz.cpp checks it on
// every CI run. Inputs that only raise an IoError are fine.
//
// Beyond "no crash", every archive that loads must be self-consistent and
// survive a save/load round trip unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include <unistd.h>

#include <tapegrad/core/error.hpp>
#include <tapegrad/nn/data/npz.hpp>

using namespace tapegrad::data;

namespace {

std::string scratch(const char* what) {
    return "/dev/shm/tapegrad_fuzz_npz_" + std::to_string(::getpid()) + "_" + what + ".npz";
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_npz: invariant violated: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string input = scratch("in"), output = scratch("out");
    write_file(input, data, size);
    std::vector<NpyArray> arrays;
    try {
        arrays = load_npz(input);
    } catch (const tapegrad::IoError&) {
        return 0;  // rejected with a readable error: fine
    }
    std::set<std::string> names;
    for (const auto& a : arrays) {
        check(a.bytes.size() == a.size() * a.itemsize(), "byte count matches shape and dtype");
        check(names.insert(a.name).second, "unique names");
    }
    try {
        save_npz(output, arrays);
    } catch (const tapegrad::ValueError&) {
        // Loadable but not writable (an empty name, more than 32 dimensions):
        // the writer is stricter than numpy's files need to be.
        return 0;
    }
    const auto back = load_npz(output);
    check(back.size() == arrays.size(), "round trip keeps every array");
    for (std::size_t i = 0; i < back.size(); ++i)
        check(back[i].name == arrays[i].name && back[i].descr == arrays[i].descr && back[i].shape == arrays[i].shape &&
                  back[i].bytes == arrays[i].bytes,
              "save/load round trip");
    return 0;
}
