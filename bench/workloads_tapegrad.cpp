// The workloads written with tapegrad's tensor ops, the way a user would
// write them without nn/: matmul, + bias, maximum(z, 0) for ReLU, softmax
// cross-entropy as mean(logsumexp(z) - z[label]), and SGD under NoGradGuard
// through modify().
//
// The "replay" engine runs the same steps captured once with
// compile::capture (core/compile/capture.hpp) and replayed: the batch (and
// the labels) are the program's inputs, the parameters are read live, the
// SGD update runs eagerly after each replay (a replay writes .grad afresh,
// so there is nothing to zero).
#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/compile/capture.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "workloads.hpp"

namespace bench {

using tapegrad::Tensor;
namespace compile = tapegrad::compile;

namespace {

class TapegradTrainer final : public Trainer {
public:
    explicit TapegradTrainer(const MlpSpec& spec) : spec_(spec) {
        auto x = mlp_inputs(spec);
        x_ = Tensor::from_data(x.data(), {spec.batch, spec.sizes.front()});
        labels_ = mlp_labels(spec);
        for (std::size_t l = 0; l < spec.layers(); ++l) {
            auto w = mlp_weight(spec, l);
            weights_.push_back(Tensor::from_data(w.data(), {spec.sizes[l], spec.sizes[l + 1]}, true));
            biases_.push_back(Tensor::zeros({spec.sizes[l + 1]}, true));
        }
    }

    Tensor loss_of(const Tensor& x, const tapegrad::Index& labels) const {
        Tensor h = x;
        for (std::size_t l = 0; l < spec_.layers(); ++l) {
            Tensor z = tapegrad::matmul(h, weights_[l]) + biases_[l];
            h = l + 1 < spec_.layers() ? tapegrad::maximum(z, 0.0f) : z;
        }
        // Softmax cross-entropy: logsumexp(z) - z[label], averaged.
        Tensor lse = tapegrad::logsumexp(h, {1}, /*keepdims=*/true);
        Tensor picked = tapegrad::gather(h, 1, labels, tapegrad::Shape{spec_.batch, 1});
        return tapegrad::mean(lse - picked);
    }

    void forward() override { loss_ = loss_of(x_, labels_); }

    void backward() override { loss_.backward(); }

    void update() override { sgd(/*zero_grad=*/true); }

    void sgd(bool zero_grad) {
        tapegrad::NoGradGuard no_grad;
        for (auto* params : {&weights_, &biases_})
            for (auto& p : *params) {
                p.modify([&](auto& v) { xt::noalias(v) -= kLearningRate * p.grad().value(); });
                if (zero_grad) p.zero_grad();
            }
    }

    float loss() const override { return loss_.item(); }

private:
    friend class ReplayTrainer;
    MlpSpec spec_;
    Tensor x_;
    tapegrad::Index labels_;
    std::vector<Tensor> weights_, biases_;
    Tensor loss_;
};

class TapegradChain final : public Chain {
public:
    explicit TapegradChain(int length) : length_(length) {
        x_ = Tensor({0.5f, -1.0f, 1.5f, 2.0f});
        w_ = Tensor({1.0f, 0.5f, -1.0f, 0.25f}, true);
        b_ = Tensor({0.1f, 0.2f, 0.3f, 0.4f}, true);
        seed_ = Tensor::ones({4});
    }
    Tensor run(const Tensor& x) const {
        Tensor y = x;
        for (int i = 0; i < length_; ++i) y = (i % 2 == 0) ? y * w_ : y + b_;
        return y;
    }
    void forward() override { (void)run(x_); }
    void forward_backward() override { run(x_).backward(seed_); }

private:
    friend class ReplayChain;
    int length_;
    Tensor x_, w_, b_, seed_;
};

// The FFN block and the cross-entropy loss with nn/ as a user writes them:
// LayerNorm, gelu and cross_entropy are compositions of tensor ops.
class TapegradPass final : public Pass {
public:
    explicit TapegradPass(const PassSpec& spec) : spec_(spec), norm_(spec.in) {
        auto x = pass_inputs(spec);
        x_ = Tensor::from_data(x.data(), {spec.batch, spec.in});
        auto w1 = pass_weight(spec.in, spec.hidden, 1);
        w1_ = Tensor::from_data(w1.data(), {spec.in, spec.hidden}, true);
        b1_ = Tensor::zeros({spec.hidden}, true);
        if (spec.name == "ffn") {
            auto w2 = pass_weight(spec.hidden, spec.in, 2);
            w2_ = Tensor::from_data(w2.data(), {spec.hidden, spec.in}, true);
            b2_ = Tensor::zeros({spec.in}, true);
        }
        labels_ = pass_labels(spec);
    }

    Tensor loss_of(const Tensor& x, const tapegrad::Index& labels) {
        if (spec_.name == "ffn") {
            Tensor h = tapegrad::nn::gelu(tapegrad::matmul(norm_(x), w1_) + b1_);
            return tapegrad::sum(x + tapegrad::matmul(h, w2_) + b2_);
        }
        return tapegrad::nn::cross_entropy(tapegrad::matmul(x, w1_) + b1_, labels);
    }
    void run() override {
        for (Tensor* p : {&w1_, &b1_, &w2_, &b2_, &norm_.weight, &norm_.bias})
            if (p->defined()) p->zero_grad();
        loss_ = loss_of(x_, labels_);
        loss_.backward();
    }
    float loss() const override { return loss_.item(); }

private:
    friend class ReplayPass;
    PassSpec spec_;
    tapegrad::nn::LayerNorm<float> norm_;
    Tensor x_, w1_, b1_, w2_, b2_, loss_;
    tapegrad::Index labels_;
};

// The replayed engine. Each class keeps the eager model (its parameters and
// batch) and a program captured from the same loss. Replays hand back the
// loss; it is read as a number (item()), so the caller holds no output and
// the next replay reuses the output tensor (no allocation).
class ReplayTrainer final : public Trainer {
public:
    explicit ReplayTrainer(const MlpSpec& spec) : model_(spec) {
        inputs_ = {{model_.x_}, {model_.labels_}};
        compiled_ = compile::capture<float>(
            [this](const compile::StepInputs<float>& in) {
                Tensor loss = model_.loss_of(in.tensors[0], in.indices[0]);
                loss.backward();
                return std::vector<Tensor>{loss};
            },
            inputs_);
    }
    void forward() override { loss_ = compiled_(inputs_)[0].item(); }  // forward and backward
    void backward() override {}
    void update() override { model_.sgd(/*zero_grad=*/false); }
    float loss() const override { return loss_; }

private:
    TapegradTrainer model_;
    compile::StepInputs<float> inputs_;
    compile::CompiledStep<float> compiled_;
    float loss_ = 0;
};

class ReplayChain final : public Chain {
public:
    explicit ReplayChain(int length) : model_(length) {
        inputs_ = {{model_.x_}, {}};
        compiled_ = compile::capture<float>(
            [this](const compile::StepInputs<float>& in) {
                Tensor y = model_.run(in.tensors[0]);
                y.backward(model_.seed_);
                return std::vector<Tensor>{};
            },
            inputs_);
        forward_only_ = compile::capture<float>(
            [this](const compile::StepInputs<float>& in) { return std::vector<Tensor>{model_.run(in.tensors[0])}; },
            inputs_);
    }
    // The forward program returns y; it is not held, so the next replay
    // copies into the same tensor.
    void forward() override { (void)forward_only_(inputs_); }
    void forward_backward() override { (void)compiled_(inputs_); }

private:
    TapegradChain model_;
    compile::StepInputs<float> inputs_;
    compile::CompiledStep<float> compiled_, forward_only_;
};

class ReplayPass final : public Pass {
public:
    explicit ReplayPass(const PassSpec& spec) : model_(spec) {
        // The FFN block's loss takes no labels: an index input no op reads is refused.
        const bool labelled = spec.name != "ffn";
        inputs_ = {{model_.x_}, {}};
        if (labelled) inputs_.indices.push_back(model_.labels_);
        compiled_ = compile::capture<float>(
            [this, labelled](const compile::StepInputs<float>& in) {
                Tensor loss = model_.loss_of(in.tensors[0], labelled ? in.indices[0] : model_.labels_);
                loss.backward();
                return std::vector<Tensor>{loss};
            },
            inputs_);
    }
    void run() override { loss_ = compiled_(inputs_)[0].item(); }
    float loss() const override { return loss_; }

private:
    TapegradPass model_;
    compile::StepInputs<float> inputs_;
    compile::CompiledStep<float> compiled_;
    float loss_ = 0;
};

}  // namespace

std::unique_ptr<Trainer> make_replay_trainer(const MlpSpec& spec) { return std::make_unique<ReplayTrainer>(spec); }
std::unique_ptr<Chain> make_replay_chain(int length) { return std::make_unique<ReplayChain>(length); }
std::unique_ptr<Pass> make_replay_pass(const PassSpec& spec) { return std::make_unique<ReplayPass>(spec); }

std::unique_ptr<Pass> make_tapegrad_pass(const PassSpec& spec) { return std::make_unique<TapegradPass>(spec); }

std::unique_ptr<Trainer> make_tapegrad_trainer(const MlpSpec& spec) { return std::make_unique<TapegradTrainer>(spec); }
std::unique_ptr<Chain> make_tapegrad_chain(int length) { return std::make_unique<TapegradChain>(length); }

std::int64_t tapegrad_saved_activation_bytes(const MlpSpec& spec) {
    TapegradTrainer t(spec);
    t.step();  // gradients exist, as in steady state
    std::int64_t saved = 0;
    {
        tapegrad::Profiler prof;
        t.forward();
        for (const auto& row : prof.rows())
            if (row.op != "matmul") saved += static_cast<std::int64_t>(row.saved_bytes);
    }
    t.backward();
    t.update();
    // matmul(h, W) saves h, the layer's input, for dW; whether it also saves
    // W (a parameter, no extra memory) depends on the input needing a
    // gradient, so its row is replaced by the inputs alone.
    for (std::size_t l = 0; l < spec.layers(); ++l)
        saved += static_cast<std::int64_t>(spec.batch * spec.sizes[l] * sizeof(float));
    return saved;
}

}  // namespace bench
