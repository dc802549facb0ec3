// The workloads written the way a libtorch user writes them: nn::Linear
// layers, torch::relu, nn::functional::cross_entropy and optim::SGD (whose
// zero_grad() zero-fills the gradients in 1.13, as tapegrad's zero_grad()
// does). The weights start equal to the other engines' (Linear keeps them
// as [out, in], the transpose of ours), so all three report the same losses.
#include <torch/torch.h>

#include "workloads.hpp"

namespace bench {

namespace {

class TorchTrainer final : public Trainer {
public:
    explicit TorchTrainer(const MlpSpec& spec) : spec_(spec) {
        auto x = mlp_inputs(spec);
        x_ = torch::from_blob(x.data(), {long(spec.batch), long(spec.sizes.front())}, torch::kFloat32).clone();
        auto y = mlp_labels(spec);
        labels_ = torch::from_blob(y.data(), {long(spec.batch)}, torch::kInt64).clone();
        std::vector<torch::Tensor> params;
        for (std::size_t l = 0; l < spec.layers(); ++l) {
            torch::nn::Linear layer(torch::nn::LinearOptions(long(spec.sizes[l]), long(spec.sizes[l + 1])));
            auto w = mlp_weight(spec, l);
            torch::NoGradGuard no_grad;
            layer->weight.copy_(torch::from_blob(w.data(), {long(spec.sizes[l]), long(spec.sizes[l + 1])},
                                                 torch::kFloat32).t());
            layer->bias.zero_();
            params.push_back(layer->weight);
            params.push_back(layer->bias);
            layers_.push_back(layer);
        }
        sgd_ = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(kLearningRate));
    }

    void forward() override {
        torch::Tensor h = x_;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            h = layers_[l]->forward(h);
            if (l + 1 < layers_.size()) h = torch::relu(h);
        }
        loss_ = torch::nn::functional::cross_entropy(h, labels_);
    }
    void backward() override { loss_.backward(); }
    void update() override {
        sgd_->step();
        sgd_->zero_grad();
    }
    float loss() const override { return loss_.item<float>(); }

private:
    MlpSpec spec_;
    torch::Tensor x_, labels_, loss_;
    std::vector<torch::nn::Linear> layers_;
    std::unique_ptr<torch::optim::SGD> sgd_;
};

class TorchChain final : public Chain {
public:
    explicit TorchChain(int length) : length_(length) {
        x_ = torch::tensor({0.5f, -1.0f, 1.5f, 2.0f});
        w_ = torch::tensor({1.0f, 0.5f, -1.0f, 0.25f}).requires_grad_(true);
        b_ = torch::tensor({0.1f, 0.2f, 0.3f, 0.4f}).requires_grad_(true);
        seed_ = torch::ones({4});
    }
    torch::Tensor run() {
        torch::Tensor y = x_;
        for (int i = 0; i < length_; ++i) y = (i % 2 == 0) ? y * w_ : y + b_;
        return y;
    }
    void forward() override { (void)run(); }
    void forward_backward() override { run().backward(seed_); }

private:
    int length_;
    torch::Tensor x_, w_, b_, seed_;
};

// torch::nn::functional::layer_norm, gelu (erf, the default) and
// cross_entropy; weights as plain tensors ([in, out], like tapegrad's).
class TorchPass final : public Pass {
public:
    explicit TorchPass(const PassSpec& spec) : spec_(spec) {
        auto tensor = [](std::vector<float> v, std::vector<long> shape, bool grad) {
            return torch::from_blob(v.data(), shape, torch::kFloat32).clone().requires_grad_(grad);
        };
        x_ = tensor(pass_inputs(spec), {long(spec.batch), long(spec.in)}, false);
        w1_ = tensor(pass_weight(spec.in, spec.hidden, 1), {long(spec.in), long(spec.hidden)}, true);
        b1_ = torch::zeros({long(spec.hidden)}).requires_grad_(true);
        params_ = {w1_, b1_};
        if (spec.name == "ffn") {
            w2_ = tensor(pass_weight(spec.hidden, spec.in, 2), {long(spec.hidden), long(spec.in)}, true);
            b2_ = torch::zeros({long(spec.in)}).requires_grad_(true);
            ln_w_ = torch::ones({long(spec.in)}).requires_grad_(true);
            ln_b_ = torch::zeros({long(spec.in)}).requires_grad_(true);
            params_.insert(params_.end(), {w2_, b2_, ln_w_, ln_b_});
        }
        auto y = pass_labels(spec);
        labels_ = torch::from_blob(y.data(), {long(spec.batch)}, torch::kInt64).clone();
    }

    void run() override {
        for (auto& p : params_)
            if (p.grad().defined()) p.grad().zero_();
        namespace F = torch::nn::functional;
        if (spec_.name == "ffn") {
            auto n = F::layer_norm(x_, F::LayerNormFuncOptions({long(spec_.in)}).weight(ln_w_).bias(ln_b_).eps(1e-5));
            auto h = F::gelu(torch::addmm(b1_, n, w1_));
            loss_ = (x_ + torch::addmm(b2_, h, w2_)).sum();
        } else {
            loss_ = F::cross_entropy(torch::addmm(b1_, x_, w1_), labels_);
        }
        loss_.backward();
    }
    float loss() const override { return loss_.item<float>(); }

private:
    PassSpec spec_;
    torch::Tensor x_, w1_, b1_, w2_, b2_, ln_w_, ln_b_, labels_, loss_;
    std::vector<torch::Tensor> params_;
};

}  // namespace

std::unique_ptr<Pass> make_torch_pass(const PassSpec& spec) { return std::make_unique<TorchPass>(spec); }

std::unique_ptr<Trainer> make_torch_trainer(const MlpSpec& spec) { return std::make_unique<TorchTrainer>(spec); }
std::unique_ptr<Chain> make_torch_chain(int length) { return std::make_unique<TorchChain>(length); }

void torch_set_threads(int n) {
    if (torch::get_num_threads() != n) torch::set_num_threads(n);
}

std::string torch_version() { return TORCH_VERSION; }

}  // namespace bench
