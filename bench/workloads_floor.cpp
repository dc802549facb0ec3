// The pure-BLAS floor: the same MLP training step as the engines, with
// hand-placed cblas_sgemm calls, a few fused loops and buffers allocated
// once. No engine can do the same arithmetic with less work, so
// engine time / floor time is the engine's overhead.
//
// Per layer l (A_0 = X, Z_l = A_l·W_l + b_l, A_{l+1} = relu(Z_l)):
//   forward   gemm NN, then one loop adding the bias and applying ReLU in place
//   loss      one pass per row: max, sum of exp, log-sum-exp minus the label's logit
//   backward  dZ_L = (softmax - onehot)/B; dW_l = A_lᵀ·dZ_l (gemm TN),
//             db_l = column sums, dA_l = dZ_l·W_lᵀ (gemm NT, not for l = 0),
//             dZ_{l-1} = dA_l where A_l > 0 (in place)
//   update    W -= lr·dW, b -= lr·db
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "workloads.hpp"

namespace bench {

namespace {

class FloorTrainer final : public Trainer {
public:
    explicit FloorTrainer(const MlpSpec& spec) : spec_(spec), labels_(mlp_labels(spec)) {
        const std::size_t L = spec.layers(), B = spec.batch;
        acts_.resize(L + 1);
        grads_.resize(L + 1);
        acts_[0] = mlp_inputs(spec);
        for (std::size_t l = 0; l < L; ++l) {
            w_.push_back(mlp_weight(spec, l));
            b_.emplace_back(spec.sizes[l + 1], 0.0f);
            dw_.emplace_back(w_.back().size(), 0.0f);
            db_.emplace_back(spec.sizes[l + 1], 0.0f);
            acts_[l + 1].assign(B * spec.sizes[l + 1], 0.0f);
            grads_[l + 1].assign(B * spec.sizes[l + 1], 0.0f);  // dZ_l lives in grads_[l+1]
        }
        lse_.assign(B, 0.0f);
    }

    void forward() override {
        const std::size_t L = spec_.layers(), B = spec_.batch;
        for (std::size_t l = 0; l < L; ++l) {
            const int in = int(spec_.sizes[l]), out = int(spec_.sizes[l + 1]);
            float* z = acts_[l + 1].data();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(B), out, in, 1.0f, acts_[l].data(), in,
                        w_[l].data(), out, 0.0f, z, out);
            const float* bias = b_[l].data();
            const bool relu = l + 1 < L;
            for (std::size_t i = 0; i < B; ++i) {
                float* row = z + i * out;
                if (relu)
                    for (int j = 0; j < out; ++j) row[j] = std::max(row[j] + bias[j], 0.0f);
                else
                    for (int j = 0; j < out; ++j) row[j] += bias[j];
            }
        }
        const std::size_t C = spec_.sizes.back();
        const float* logits = acts_[L].data();
        double total = 0;
        for (std::size_t i = 0; i < B; ++i) {
            const float* row = logits + i * C;
            const float m = *std::max_element(row, row + C);
            float s = 0;
            for (std::size_t j = 0; j < C; ++j) s += std::exp(row[j] - m);
            lse_[i] = m + std::log(s);
            total += lse_[i] - row[labels_[i]];
        }
        loss_ = float(total / double(B));
    }

    void backward() override {
        const std::size_t L = spec_.layers(), B = spec_.batch, C = spec_.sizes.back();
        // dZ_L = (softmax(Z_L) - onehot) / B
        const float scale = 1.0f / float(B);
        const float* logits = acts_[L].data();
        float* dz = grads_[L].data();
        for (std::size_t i = 0; i < B; ++i) {
            for (std::size_t j = 0; j < C; ++j) dz[i * C + j] = std::exp(logits[i * C + j] - lse_[i]) * scale;
            dz[i * C + labels_[i]] -= scale;
        }
        for (std::size_t l = L; l-- > 0;) {
            const int in = int(spec_.sizes[l]), out = int(spec_.sizes[l + 1]);
            const float* g = grads_[l + 1].data();
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, int(B), 1.0f, acts_[l].data(), in, g, out,
                        0.0f, dw_[l].data(), out);
            float* db = db_[l].data();
            std::fill(db, db + out, 0.0f);
            for (std::size_t i = 0; i < B; ++i)
                for (int j = 0; j < out; ++j) db[j] += g[i * out + j];
            if (l == 0) break;
            float* da = grads_[l].data();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(B), in, out, 1.0f, g, out, w_[l].data(), out,
                        0.0f, da, in);
            const float* a = acts_[l].data();  // relu output: > 0 exactly where the input was
            for (std::size_t i = 0; i < B * std::size_t(in); ++i)
                if (!(a[i] > 0.0f)) da[i] = 0.0f;
        }
    }

    void update() override {
        for (std::size_t l = 0; l < spec_.layers(); ++l) {
            cblas_saxpy(int(w_[l].size()), -kLearningRate, dw_[l].data(), 1, w_[l].data(), 1);
            cblas_saxpy(int(b_[l].size()), -kLearningRate, db_[l].data(), 1, b_[l].data(), 1);
        }
    }

    float loss() const override { return loss_; }

private:
    MlpSpec spec_;
    std::vector<std::int64_t> labels_;
    std::vector<std::vector<float>> w_, b_, dw_, db_;
    std::vector<std::vector<float>> acts_;   // A_0 = X, then Z_l after bias and ReLU
    std::vector<std::vector<float>> grads_;  // grads_[l+1] = dZ_l, grads_[l] reused for dA_l
    std::vector<float> lse_;
    float loss_ = 0;
};

}  // namespace

std::unique_ptr<Trainer> make_floor_trainer(const MlpSpec& spec) { return std::make_unique<FloorTrainer>(spec); }

}  // namespace bench
