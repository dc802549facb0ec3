// Long runs of the random-graph fuzzer, for local use (CI runs a fixed set of
// seeds through tests/test_fuzz_graphs.cpp):
//
//   cmake --build build-rel --target graph_fuzz -j2
//   build-rel/tests/fuzz/graph_fuzz --graphs 100000 --seed 1000000
//
// Every `--smooth-every`-th graph is built from smooth ops only and checked
// for second derivatives too. Checks use GradcheckOptions::strict(); the
// summary gives the largest error of a passing graph as a multiple of that
// tolerance (how close a correct op came to failing). Failures print a minimised reproducer (a
// doctest TEST_CASE); the exit status is 1 if any graph failed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "graph_fuzz.hpp"

using namespace tapegrad::fuzz;

namespace {
void usage() {
    std::cerr << "usage: graph_fuzz [--graphs N] [--seed S] [--smooth-every K] [--max-ops M] [--max-failures F]\n"
                 "  --graphs N        graphs to try (default 10000)\n"
                 "  --seed S          seed of the first graph; graph i uses S + i (default 1)\n"
                 "  --smooth-every K  every K-th graph uses smooth ops only, with second derivatives (default 4)\n"
                 "  --max-ops M       at most M ops per graph (default 14)\n"
                 "  --max-failures F  stop after F failing graphs (default 10)\n"
                 "  --print S         print graph S as a test case (smooth ops with --smooth-every 1) and exit\n";
}
}  // namespace

int main(int argc, char** argv) {
    long long graphs = 10000, smooth_every = 4, max_failures = 10;
    unsigned long long seed = 1;
    long long print = -1;
    GenerateOptions gen;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--graphs") graphs = std::atoll(value());
        else if (a == "--seed") seed = std::strtoull(value(), nullptr, 10);
        else if (a == "--smooth-every") smooth_every = std::atoll(value());
        else if (a == "--max-ops") gen.max_ops = std::atoi(value());
        else if (a == "--max-failures") max_failures = std::atoll(value());
        else if (a == "--print") print = std::atoll(value());
        else {
            usage();
            return a == "--help" || a == "-h" ? 0 : 2;
        }
    }

    if (print >= 0) {
        gen.smooth_only = smooth_every == 1;
        const auto p = generate(static_cast<unsigned long long>(print), gen);
        std::cout << to_cpp(p, "graph " + std::to_string(print));
        return 0;
    }

    std::map<Op, std::size_t> coverage;
    const auto started = std::chrono::steady_clock::now();
    long long failures = 0, second_order = 0, ops = 0, refined = 0;
    double worst_ratio = 0;
    unsigned long long worst_seed = 0;
    for (long long i = 0; i < graphs && failures < max_failures; ++i) {
        GenerateOptions g = gen;
        g.smooth_only = smooth_every > 0 && i % smooth_every == smooth_every - 1;
        const auto out = fuzz_one(seed + static_cast<unsigned long long>(i), g, CheckOptions{}, &coverage);
        ops += static_cast<long long>(out.ops);
        second_order += out.second_order ? 1 : 0;
        refined += static_cast<long long>(out.refined);
        if (out.passed && out.worst_ratio > worst_ratio) {
            worst_ratio = out.worst_ratio;
            worst_seed = seed + static_cast<unsigned long long>(i);
        }
        if (!out.passed) {
            ++failures;
            std::cout << out.report << std::endl;
        }
        if ((i + 1) % 1000 == 0) {
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            std::fprintf(stderr, "%lld graphs, %lld failed, %.1f s\n", i + 1, failures, s);
        }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("graph_fuzz: %lld graphs from seed %llu (%lld ops, %lld also checked for second derivatives), "
                "%lld failed, %.1f s\n",
                graphs, seed, ops, second_order, failures, s);
    std::printf("passing graphs: largest error %.3g x tolerance (seed %llu); %lld elements checked again by "
                "Richardson extrapolation\n",
                worst_ratio, worst_seed, refined);
    std::printf("ops covered: %zu of %d:", coverage.size(), kNumOps);
    for (const auto& [op, n] : coverage) std::printf(" %s=%zu", op_name(op), n);
    std::printf("\n");
    return failures ? 1 : 0;
}
