// Random graphs over the whole op set, checked against finite differences
// with GradcheckOptions::strict() (tests/fuzz/graph_fuzz.hpp), which catches
// a VJP off by 1e-4 relative (tests/test_gradcheck.cpp). CI runs fixed seeds, split over several test
// cases so ctest -j runs them in parallel. A failure prints a minimised
// reproducer to paste into a test.
//
// Longer runs: TAPEGRAD_FUZZ_GRAPHS=100000 makes the cases below share that
// many graphs (TAPEGRAD_FUZZ_SEED shifts the seeds to explore new ones), or
// run the standalone driver build-rel/tests/fuzz/graph_fuzz.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "ci_batches.hpp"
#include "graph_fuzz.hpp"

using namespace tapegrad;
using namespace tapegrad::fuzz;

namespace {

long long env_number(const char* name, long long fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoll(v) : fallback;
}

// Runs `graphs` graphs (scaled by TAPEGRAD_FUZZ_GRAPHS) from `first_seed`.
void run_batch(const CiBatch& batch) {
    const auto [first_seed, graphs, smooth] = batch;
    const long long requested = env_number("TAPEGRAD_FUZZ_GRAPHS", 0);
    const long long count = requested > 0 ? std::max(1LL, requested * graphs / ci_graphs()) : graphs;
    const auto base = first_seed + static_cast<std::uint64_t>(env_number("TAPEGRAD_FUZZ_SEED", 0));
    GenerateOptions gen;
    gen.smooth_only = smooth;
    int failures = 0;
    std::size_t ops = 0, refined = 0;
    double worst_ratio = 0;
    for (long long i = 0; i < count && failures < 3; ++i) {
        const auto out = fuzz_one(base + static_cast<std::uint64_t>(i), gen, CheckOptions{});
        ops += out.ops;
        refined += out.refined;
        if (out.passed) worst_ratio = std::max(worst_ratio, out.worst_ratio);
        if (!out.passed) {
            ++failures;
            FAIL_CHECK(out.report);
        }
    }
    MESSAGE(count << " graphs (" << ops << " ops) from seed " << base
                  << std::string(smooth ? ", second derivatives too" : "") << "; largest error " << worst_ratio << " x tolerance, " << refined
                  << " elements checked again by Richardson extrapolation");
    CHECK(failures == 0);
}

}  // namespace

// The batches of tests/fuzz/ci_batches.hpp, one test each.
TEST_CASE("fuzz graphs: first derivatives, batch 1") { run_batch(kCiBatches[0]); }
TEST_CASE("fuzz graphs: first derivatives, batch 2") { run_batch(kCiBatches[1]); }
TEST_CASE("fuzz graphs: first derivatives, batch 3") { run_batch(kCiBatches[2]); }
TEST_CASE("fuzz graphs: first derivatives, batch 4") { run_batch(kCiBatches[3]); }
TEST_CASE("fuzz graphs: first derivatives, batch 5") { run_batch(kCiBatches[4]); }
TEST_CASE("fuzz graphs: first derivatives, batch 6") { run_batch(kCiBatches[5]); }
TEST_CASE("fuzz graphs: smooth ops, first and second derivatives, batch 1") { run_batch(kCiBatches[6]); }
TEST_CASE("fuzz graphs: smooth ops, first and second derivatives, batch 2") { run_batch(kCiBatches[7]); }

TEST_CASE("fuzz graphs: the generator covers every op and respects its own preconditions") {
    std::map<Op, std::size_t> all, smooth;
    for (std::uint64_t seed = 1; seed <= 400; ++seed) {
        for (bool s : {false, true}) {
            GenerateOptions gen;
            gen.smooth_only = s;
            const Program p = generate(seed, gen);
            CAPTURE(seed);
            CAPTURE(s);
            CHECK(p.output == static_cast<int>(p.code.size()) - 1);  // compacted: everything feeds the output
            CHECK(admissible(p, gen) == "");
            for (const auto& in : p.code) {
                ++(s ? smooth : all)[in.op];
                if (s) CHECK(in.op != Op::relu);
            }
            CHECK(generate(seed, gen).code.size() == p.code.size());  // deterministic
        }
    }
    for (int k = 0; k < kNumOps; ++k) {
        const Op op = static_cast<Op>(k);
        CAPTURE(op_name(op));
        CHECK(all[op] > 0);
    }
    // Smooth programs reach the smooth ops.
    for (Op op : {Op::matmul, Op::logsumexp, Op::gather, Op::layer_norm, Op::softmax, Op::pow_tensor, Op::linear,
                  Op::cross_entropy, Op::concat, Op::stack, Op::slice})
        CHECK(smooth[op] > 0);
    for (Op op : {Op::relu, Op::abs, Op::maximum, Op::max, Op::clamp, Op::where, Op::sign})
        CHECK(smooth[op] == 0);
}

TEST_CASE("fuzz graphs: a failure is shrunk to a small reproducer naming the seed") {
    // Zero tolerance: finite differences never match to the last bit, so
    // every graph "fails" and the shrinker must cut it down to one op.
    CheckOptions exact;
    exact.gradcheck.atol = 0;
    exact.gradcheck.rtol = 0;
    exact.second_order = false;
    GenerateOptions gen;
    gen.min_ops = 6;
    const auto out = fuzz_one(4242, gen, exact);
    REQUIRE_FALSE(out.passed);
    CHECK(out.report.find("seed 4242") != std::string::npos);
    CHECK(out.report.find("TEST_CASE(\"fuzz repro: seed 4242\")") != std::string::npos);
    CHECK(out.report.find("gradcheck(f, inputs, GradcheckOptions::strict())") != std::string::npos);
    INFO(out.report);
    const auto at = out.report.find("minimised from ");
    REQUIRE(at != std::string::npos);
    std::size_t from = 0, to = 0;
    REQUIRE(std::sscanf(out.report.c_str() + at, "minimised from %zu to %zu ops", &from, &to) == 2);
    CHECK(from >= 6);
    CHECK(to >= 1);
    CHECK(to <= 2);  // usually one op; some single ops match finite differences exactly
    // The program text and values round-trip: each tensor literal is printed.
    CHECK(out.report.find("std::vector<Tensor64> inputs{") != std::string::npos);
}

TEST_CASE("fuzz graphs: a reproducer as the fuzzer prints it compiles and passes") {
    // Printed by `graph_fuzz --print 7 --smooth-every 1 --max-ops 7` and
    // pasted unchanged: keeps the reproducer format compilable.
    // 5 ops on 1 inputs; tests/fuzz/graph_fuzz seed 7 (smooth ops: second derivatives checked too)
    auto f = [](const std::vector<Tensor64>& in) {
        auto t0 = in[0];                         // [3, 3]
        auto t1 = concat<double>({t0, t0}, 1);   // [3, 6] <- concat of [3, 3] [3, 3]
        auto t2 = logsumexp(t1, {-2, 1}, true);  // [1, 1] <- logsumexp of [3, 6]
        auto t3 = t2 + 0.25;                     // [1, 1] <- add_scalar of [1, 1]
        auto t4 = pow(t3, -1.0);                 // [1, 1] <- pow_scalar of [1, 1]
        auto t5 = -t4;                           // [1, 1] <- neg of [1, 1]
        return t5;
    };
    std::vector<Tensor64> inputs{
        Tensor64(xt::xarray<double>{{1.8610639876409028, 0.49141596902461065, -0.33009257428416405}, {-0.61582772082270032, -0.48838263865028081, -0.20176347141620152}, {0.097384639171208653, -0.059107089503054315, -0.25669892489665236}}),
    };
    auto report = gradcheck(f, inputs, GradcheckOptions::strict());
    CHECK_MESSAGE(report.passed, report.message());
    auto second = gradgradcheck(f, inputs, GradcheckOptions::strict());
    CHECK_MESSAGE(second.passed, second.message());
}

TEST_CASE("fuzz graphs: a reproducer with linear algebra and one-element rows compiles and passes") {
    // Printed by `graph_fuzz --print 27 --smooth-every 1 --max-ops 5` and pasted
    // unchanged: inputs with one-element rows are spelled with from_data (nested
    // braces like {{0.5}} are ambiguous), decompositions get the conditioned matrix.
    // 5 ops on 2 inputs; tests/fuzz/graph_fuzz seed 27 (smooth ops: second derivatives checked too)
    auto f = [](const std::vector<Tensor64>& in) {
        auto t0 = in[0];                                                                                                                   // [1, 1]
        auto t1 = cholesky(eye<double>(t0.shape().back()) + matmul(tanh(t0), tanh(t0), false, true) * (1.0 / double(t0.shape().back())));  // [1, 1] <- cholesky of [1, 1]
        auto t2 = in[1];                                                                                                                   // [1, 1]
        auto t3 = det(eye<double>(t2.shape().back()) + tanh(t2) * (0.5 / double(t2.shape().back())));                                      // [] <- det of [1, 1]
        auto t4 = mean(t1);                                                                                                                // [] <- mean of [1, 1]
        auto t5 = mean(t3);                                                                                                                // [] <- mean of []
        auto t6 = t4 + t5;                                                                                                                 // [] <- add of [] []
        return t6;
    };
    std::vector<Tensor64> inputs{
        Tensor64::from_data(std::vector<double>{-0.37982360566599532}.data(), Shape{1, 1}),
        Tensor64::from_data(std::vector<double>{0.65352693145188023}.data(), Shape{1, 1}),
    };
    auto report = gradcheck(f, inputs, GradcheckOptions::strict());
    CHECK_MESSAGE(report.passed, report.message());
    auto second = gradgradcheck(f, inputs, GradcheckOptions::strict());
    CHECK_MESSAGE(second.passed, second.message());
}

TEST_CASE("fuzz repro: seed 14689, pow(x, 0) at x = 0 (was 0 on SIMD lanes, and flaky)") {
    // Found by the graph fuzzer: xsimd's pow gave 0^0 = 0 on the vectorised
    // part of a buffer, so this function was not even deterministic.
    auto f = [](const std::vector<Tensor64>& in) {
        auto t0 = in[0];                                      // [3, 3]
        auto t1 = t0 + 0.625;                                 // [3, 3] <- add_scalar of [3, 3]
        auto t2 = nn::mse_loss(t1, t1, nn::Reduction::none);  // [3, 3] <- nn::mse_loss of [3, 3] [3, 3]
        auto t3 = pow(t2, 0.0);                               // [3, 3] <- pow_scalar of [3, 3]
        return t3;
    };
    std::vector<Tensor64> inputs{
        Tensor64(xt::xarray<double>{{-0.99339327677388223, 1.0749306462088553, 0.96112173244875787},
                                    {0.10961373282226589, -0.283595105633063, -0.28115196747090215},
                                    {-1.4889377002540718, -1.0684118407557268, -0.16351909422901698}}),
    };
    auto report = gradcheck(f, inputs, GradcheckOptions::strict());
    CHECK_MESSAGE(report.passed, report.message());
    CHECK(f(inputs).value() == xt::ones<double>({3, 3}));
    // The other special values of x^p, as std::pow (IEEE 754) defines them.
    const Tensor64 zeros = Tensor64::zeros({16});
    CHECK(xt::all(xt::equal(pow(zeros, -1.0).value(), std::numeric_limits<double>::infinity())));
    CHECK(xt::all(xt::equal(pow(Tensor64::full({16}, INFINITY), 0.0).value(), 1.0)));
}
