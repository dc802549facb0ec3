// Random-graph fuzzing of the autodiff engine against finite differences.
//
// generate() builds a random DAG ("program") over the whole op set: leaves
// of rank 0-3 with small shapes, broadcasting binary ops, fan-out (a value
// consumed by several ops, the same input used twice), reductions over
// random axes with or without keepdims, matmul chains (2-D, batched,
// broadcast batches, transposed operands), reshape/transpose/permute/
// slice/concat/stack/index_select/gather, comparisons and where, the nn
// activations, losses and the Linear/LayerNorm modules. Every value is
// computed while the program is built, so the generator can keep inputs of
// non-differentiable points (relu/abs/maximum/clamp at their kinks, ties in
// max/min, comparisons flipping) at least `kink_margin` away, keep log/sqrt/
// division inside their domains, and keep magnitudes bounded; the finite
// differences of gradcheck then measure the true derivative.
//
// check() runs gradcheck in float64 (GradcheckOptions::strict()) and, for programs built from smooth ops
// only, gradgradcheck. A failing program is shrunk (smaller outputs, bypassed
// ops, unused inputs dropped) while it still fails, and to_cpp() prints it as
// a doctest TEST_CASE to paste into a test file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <tapegrad/core/gradcheck.hpp>
#include <tapegrad/core/tensor.hpp>

namespace tapegrad::fuzz {

enum class Op {
    // Leaves and constants (no gradient flows into constants).
    input, one_hot,
    // ops/arithmetic
    add, sub, mul, div, neg, add_scalar, mul_scalar, rsub, rdiv, pow_scalar, pow_tensor,
    maximum, minimum, maximum_scalar, minimum_scalar, where, clamp,
    // ops/unary
    exp, log, log1p, sqrt, abs, tanh, erf, sin, cos, sign, step,
    // ops/compare (constants)
    eq, ne, lt, le, gt, ge,
    // ops/reduce
    sum, mean, max, min, logsumexp, sum_to,
    // ops/linalg
    matmul, transpose, transpose_axes, permute,
    // ops/linalg_structure and ops/linalg_decomp (the matrices the
    // decompositions get are made well conditioned from the drawn value)
    tril, triu, diagonal, diag_embed, solve, inv, det, slogdet, cholesky, triangular_solve,
    // ops/shape
    reshape, broadcast_to, clone, detach,
    // ops/indexing
    slice, concat, stack, index_select, gather,
    // nn activations
    identity, threshold, sigmoid, relu, leaky_relu, prelu, elu, softplus, gelu, gelu_tanh, silu, softmax,
    log_softmax,
    // nn losses
    mse_loss, bce, bce_with_logits, cross_entropy, nll_loss,
    // nn modules (parameters are leaves of the program)
    linear, layer_norm,
    // user-written ops (core/op.hpp): a tensor-op backward and a raw one
    user_tensor, user_raw,
    count_  // number of ops
};

const char* op_name(Op op);

// The user-written ops the fuzzer draws, built with the public op API only
// (as reproducers print them): a * tanh(b) with its VJP in tensor ops, and
// a * sin(b) with its VJP on raw values. a and b broadcast together.
// float32 and float64 (Tensor, Tensor64).
template <class T>
BasicTensor<T> user_mul_tanh(const BasicTensor<T>& a, const BasicTensor<T>& b);
template <class T>
BasicTensor<T> user_raw_mul_sin(const BasicTensor<T>& a, const BasicTensor<T>& b);
constexpr int kNumOps = static_cast<int>(Op::count_);

// One instruction: value k of a program is the result of code[k].
struct Instr {
    Op op = Op::input;
    std::vector<int> args;            // earlier values
    std::vector<std::int64_t> ints;   // axes, shape, perm, indices, labels, slice bounds
    Shape shape2;                     // gather index shape, sum_to/broadcast target, one_hot size
    double s0 = 0, s1 = 0;            // scalar parameters
    bool f0 = false, f1 = false;      // keepdims, transpose flags, bias
    int reduction = 0;                // losses: 0 mean, 1 sum, 2 none
    int input = -1;                   // Op::input: position in Program::inputs
    Shape shape;                      // result shape (for printing)
    bool relaxed = false;             // no magnitude bound (the final sum of several results)
};

struct Program {
    std::uint64_t seed = 0;
    bool smooth = false;  // built from smooth ops only: second derivatives are checked too
    std::vector<Array<double>> inputs;
    std::vector<Instr> code;
    int output = -1;

    std::size_t num_ops() const;  // instructions that are not inputs
};

struct GenerateOptions {
    int min_ops = 2;
    int max_ops = 14;
    bool smooth_only = false;        // no kinks: eligible for gradgradcheck
    double kink_margin = 1e-2;       // distance kept from kinks, ties and domain edges
    double max_magnitude = 30;       // larger intermediate values are rejected
    std::size_t max_elements = 48;   // per tensor
    std::size_t max_input_elements = 96;  // over all inputs (gradcheck cost)
};

// A random program; the same seed and options always give the same program.
Program generate(std::uint64_t seed, const GenerateOptions& options = {});

// The program's output for these leaves (as gradcheck calls it). Programs
// are generated and checked in float64; they also run in float32 (Tensor),
// on the inputs cast to float, for tests/test_compile_fuzz.cpp.
template <class T>
BasicTensor<T> run(const Program& p, const std::vector<BasicTensor<T>>& inputs);
std::vector<Tensor64> input_tensors(const Program& p);

// Checks every instruction's preconditions on its actual argument values
// (domains, kink margins, magnitudes); "" when all hold, else the reason.
std::string admissible(const Program& p, const GenerateOptions& options = {});

struct CheckResult {
    bool passed = true;
    std::string what;     // "gradient", "second derivative" or "exception"
    std::string message;  // gradcheck's report or the exception's text
    double worst_ratio = 0;   // largest error / tolerance of the checks that ran
    std::size_t refined = 0;  // elements checked again by Richardson extrapolation
};

struct CheckOptions {
    // Richardson extrapolation, rtol 1e-6, atol 1e-8: a VJP off by 1e-4
    // relative fails (tests/test_gradcheck.cpp), correct ops pass with a
    // margin of about 100 (docs/guarantees.md).
    GradcheckOptions gradcheck = GradcheckOptions::strict();
    bool second_order = true;  // gradgradcheck for smooth programs
};

CheckResult check(const Program& p, const CheckOptions& options = {});

// The smallest program derived from `p` (fewer ops, fewer inputs) that still
// fails check() the same way, with every precondition still holding.
Program shrink(const Program& p, const CheckOptions& options = {}, const GenerateOptions& gen = {});

// The program as a doctest TEST_CASE (to paste into a test file).
std::string to_cpp(const Program& p, const std::string& title);

// Generates, checks and on failure shrinks; the report holds the
// reproducer. Counts ops per kind into `coverage` when given.
struct FuzzOutcome {
    bool passed = true;
    bool second_order = false;
    std::string report;  // empty when passed
    std::size_t ops = 0;
    double worst_ratio = 0;   // as in CheckResult
    std::size_t refined = 0;
};
FuzzOutcome fuzz_one(std::uint64_t seed, const GenerateOptions& gen, const CheckOptions& check_options,
                     std::map<Op, std::size_t>* coverage = nullptr);

}  // namespace tapegrad::fuzz
