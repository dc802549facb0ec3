// The API fuzzer without libFuzzer: replays corpus folders and files, then
// runs generated inputs (random bytes of random length from a seed). CTest
// runs it on tests/corpus/api plus a fixed number of generated inputs, in
// the plain and in the sanitizer build:
//
//   build/tests/fuzz/api_fuzz tests/corpus/api --generate 100000 --seed 7
//
// A broken contract prints the call, saves the input as
// api_fuzz_failure.bin (replay it by passing the file) and exits 1.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <tapegrad/core/threads.hpp>

#include "api_fuzz.hpp"

namespace fs = std::filesystem;
using namespace tapegrad::fuzz;

namespace {

struct Totals {
    std::size_t inputs = 0, calls = 0, refused = 0, too_big = 0;
};

bool run_one(const std::vector<std::uint8_t>& input, const std::string& name, const std::string& scratch,
             Totals& totals) {
    // With TAPEGRAD_API_FUZZ_KEEP set, each input is written out before it
    // runs: a crash leaves the input behind as api_fuzz_last.bin.
    if (std::getenv("TAPEGRAD_API_FUZZ_KEEP"))
        std::ofstream("api_fuzz_last.bin", std::ios::binary)
            .write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
    const auto r = run_api_input(input.data(), input.size(), scratch);
    ++totals.inputs;
    totals.calls += r.calls;
    totals.refused += r.refused;
    totals.too_big += r.too_big;
    if (r.failure.empty()) return true;
    std::fprintf(stderr, "api_fuzz: %s: contract broken: %s\n", name.c_str(), r.failure.c_str());
    std::ofstream("api_fuzz_failure.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
    std::fprintf(stderr, "api_fuzz: input saved as api_fuzz_failure.bin (%zu bytes)\n", input.size());
    return false;
}

std::vector<std::uint8_t> read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<fs::path> paths;
    unsigned long long generate = 0, seed = 1;
    std::size_t max_len = 512;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--generate" || a == "--seed" || a == "--max-len") && i + 1 < argc) {
            const auto v = std::strtoull(argv[++i], nullptr, 10);
            if (a == "--generate") generate = v;
            else if (a == "--seed") seed = v;
            else max_len = std::max<std::size_t>(1, v);
        } else if (a.rfind("--", 0) == 0) {
            std::fprintf(stderr, "usage: api_fuzz [folder or file]... [--generate N] [--seed S] [--max-len L]\n");
            return a == "--help" ? 0 : 2;
        } else {
            paths.emplace_back(a);
        }
    }
    tapegrad::set_num_threads(1);
    limit_memory(4096);
    const fs::path scratch = fs::path(scratch_root()) / ("tapegrad_api_fuzz_" + std::to_string(::getpid()));
    fs::create_directories(scratch);
    struct Cleanup {
        fs::path dir;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{scratch};

    Totals totals;
    for (const auto& p : paths) {
        std::vector<fs::path> files;
        if (fs::is_directory(p)) {
            for (const auto& e : fs::directory_iterator(p))
                if (e.is_regular_file()) files.push_back(e.path());
            std::sort(files.begin(), files.end());
            if (files.empty()) {
                std::fprintf(stderr, "api_fuzz: no inputs in %s\n", p.c_str());
                return 1;
            }
        } else {
            files.push_back(p);
        }
        for (const auto& f : files)
            if (!run_one(read_file(f), f.string(), scratch.string(), totals)) return 1;
    }
    std::mt19937_64 rng(seed);
    for (unsigned long long i = 0; i < generate; ++i) {
        std::vector<std::uint8_t> input(1 + rng() % max_len);
        for (auto& b : input) b = static_cast<std::uint8_t>(rng());
        if (!run_one(input, "generated input " + std::to_string(i) + " (seed " + std::to_string(seed) + ")",
                     scratch.string(), totals))
            return 1;
    }
    std::printf("api_fuzz: %zu inputs, %zu calls: %zu refused with a tapegrad::Error naming the op, %zu over the "
                "memory budget, the rest returned consistent results\n",
                totals.inputs, totals.calls, totals.refused, totals.too_big);
    const auto& names = api_call_names();
    const auto& counts = api_call_counts();
    const auto& seconds = api_call_seconds();
    for (std::size_t k = 0; k < names.size(); ++k)
        std::printf("  %-16s %8zu calls %9.3f s\n", names[k].c_str(), counts[k], seconds[k]);
    return 0;
}
