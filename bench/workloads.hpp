// The workloads compared across engines: an MLP training step, a chain of
// tiny ops (tape overhead), a transformer FFN block and a softmax
// cross-entropy loss (forward + backward). Each engine implements them in
// its own file:
//
//   workloads_tapegrad.cpp  tapegrad tensor ops (matmul, add, maximum, logsumexp,
//                           gather, mean; SGD under NoGradGuard) and nn/ for the block;
//                           the same steps captured and replayed (engine "replay")
//   workloads_floor.cpp     hand-placed cblas_sgemm calls plus minimal loops
//   workloads_torch.cpp     libtorch's C++ API (built only when Torch is found)
//   workloads_dlib.cpp      dlib's DNN module, MLPs only (built only when dlib is found)
//
// Every variant trains the same network on the same shapes: Linear layers
// with ReLU between them, softmax cross-entropy on integer labels (mean
// over the batch), plain SGD, float32, one fixed random batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct MlpSpec {
    std::string name;               // e.g. "784-256-256-10_b128"
    std::vector<std::size_t> sizes;  // {in, hidden..., classes}
    std::size_t batch = 0;

    std::size_t layers() const { return sizes.size() - 1; }
    // Parameters (weights and biases), in elements.
    std::size_t parameters() const;
    // Multiply-adds of the matrix products, as FLOPs (2 per multiply-add):
    // forward X·W, backward dW = Xᵀ·dZ and dX = dZ·Wᵀ (skipped for the input).
    double forward_flops() const;
    double backward_flops() const;
    double step_flops() const { return forward_flops() + backward_flops(); }
};

// The three MLPs of the benchmark suite.
const std::vector<MlpSpec>& mlp_specs();

// One training step, split in phases so benchmarks can time each.
class Trainer {
public:
    virtual ~Trainer() = default;
    virtual void forward() = 0;   // up to the scalar loss
    virtual void backward() = 0;  // gradients of every parameter
    virtual void update() = 0;    // SGD step, then gradients zeroed
    virtual float loss() const = 0;
    void step() {
        forward();
        backward();
        update();
    }
};

// A chain of `length` elementwise ops on 4-element tensors, alternating
// y = y * w and y = y + b (w, b: leaves that require grad), then backward
// from y with a seed of ones.
class Chain {
public:
    virtual ~Chain() = default;
    virtual void forward() = 0;
    virtual void forward_backward() = 0;
};

// Forward and backward of a loss (gradients zeroed first, as in training):
//   ffn   transformer FFN block on 128 tokens of width 256: LayerNorm, a
//         256->1024 linear, GELU (erf), a 1024->256 linear, residual; the
//         loss is the sum of the block's output
//   xent  a 256->1000 linear on a batch of 256, softmax cross-entropy on
//         integer labels (mean over the batch)
class Pass {
public:
    virtual ~Pass() = default;
    virtual void run() = 0;
    virtual float loss() const = 0;
};

struct PassSpec {
    std::string name;  // "ffn" or "xent"
    std::size_t batch, in, hidden;  // ffn: tokens, width, hidden width; xent: batch, in, classes
};
const std::vector<PassSpec>& pass_specs();
// Deterministic data of a pass: uniform weights [rows, cols] (Xavier bound,
// seeded by `which`), N(0, 1) inputs, labels in [0, classes).
std::vector<float> pass_weight(std::size_t rows, std::size_t cols, std::uint64_t which);
std::vector<float> pass_inputs(const PassSpec& spec);
std::vector<std::int64_t> pass_labels(const PassSpec& spec);

constexpr float kLearningRate = 0.01f;
constexpr std::uint64_t kSeed = 42;
constexpr int kChainLength = 100;

std::unique_ptr<Trainer> make_tapegrad_trainer(const MlpSpec& spec);
std::unique_ptr<Trainer> make_floor_trainer(const MlpSpec& spec);
std::unique_ptr<Chain> make_tapegrad_chain(int length);
std::unique_ptr<Pass> make_tapegrad_pass(const PassSpec& spec);
// The same tapegrad workloads captured once (compile::capture) and replayed;
// the SGD update runs eagerly after each replay.
std::unique_ptr<Trainer> make_replay_trainer(const MlpSpec& spec);
std::unique_ptr<Chain> make_replay_chain(int length);
std::unique_ptr<Pass> make_replay_pass(const PassSpec& spec);

// Measures one tapegrad forward with the profiler and returns the bytes its
// ops saved for backward, excluding parameters (matmul may save the weight:
// shared with the model, not extra memory).
std::int64_t tapegrad_saved_activation_bytes(const MlpSpec& spec);

// The thread count every engine uses: OpenBLAS (and libtorch's intra-op
// pool when linked in).
void set_threads(int n);
std::string blas_config();

#ifdef TAPEGRAD_BENCH_HAVE_TORCH
std::unique_ptr<Trainer> make_torch_trainer(const MlpSpec& spec);
std::unique_ptr<Chain> make_torch_chain(int length);
std::unique_ptr<Pass> make_torch_pass(const PassSpec& spec);
void torch_set_threads(int n);
std::string torch_version();
#endif

#ifdef TAPEGRAD_BENCH_HAVE_DLIB
// dlib's DNN module: fc and relu layers, loss_multiclass_log, sgd without
// momentum or weight decay. Null for an MLP shape it was not built for.
std::unique_ptr<Trainer> make_dlib_trainer(const MlpSpec& spec);
std::string dlib_version();
#endif

// Deterministic inputs shared by every engine: a [batch, in] matrix of
// N(0, 1) values and labels in [0, classes).
std::vector<float> mlp_inputs(const MlpSpec& spec);
std::vector<std::int64_t> mlp_labels(const MlpSpec& spec);
// Initial weights [in, out] (uniform, Xavier bound) and zero biases.
std::vector<float> mlp_weight(const MlpSpec& spec, std::size_t layer);

}  // namespace bench
