// tapegrad_bench_compile: eager steps beside the same steps captured once
// and replayed (core/compile/capture.hpp), in one run, 1 thread.
//
//   chain/<eager|replay>            100 elementwise ops on 4-element tensors
//                                   (y = y * w, y = y + b), forward + backward;
//                                   counter per_op = seconds per op
//   mlp/<sizes>_b<batch>/<eager|replay>  one training step: forward, softmax
//                                   cross-entropy, backward, SGD update (the
//                                   update runs eagerly in both: replays read
//                                   the parameters live)
//
// Counters: allocs and alloc_bytes (heap allocations of one step, counted
// by bench/alloc_counter), loss (the MLPs, after the last step).
// docs/compile.md records a run.
#include <map>
#include <memory>
#include <string>

#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "bench_common.hpp"

namespace {

using tapegrad::Tensor;
namespace compile = tapegrad::compile;

// The chain of bench_compare's tape rows, as a step of its own.
struct Chain {
    Tensor x = Tensor({0.5f, -1.0f, 1.5f, 2.0f});
    Tensor w = Tensor({1.0f, 0.5f, -1.0f, 0.25f}, true);
    Tensor b = Tensor({0.1f, 0.2f, 0.3f, 0.4f}, true);
    Tensor seed = Tensor::ones({4});
    compile::StepInputs<float> inputs{{x}, {}};
    compile::CompiledStep<float> compiled;

    void eager(const Tensor& input) {
        Tensor y = input;
        for (int i = 0; i < bench::kChainLength; ++i) y = (i % 2 == 0) ? y * w : y + b;
        y.backward(seed);
    }
    Chain() {
        compiled = compile::capture<float>(
            [this](const compile::StepInputs<float>& in) {
                eager(in.tensors[0]);
                return std::vector<Tensor>{};
            },
            inputs);
    }
};

// The MLP of bench_compare's tapegrad rows (matmul + bias, ReLU as
// maximum(z, 0), cross-entropy as mean(logsumexp(z) - z[label])).
class Mlp {
public:
    explicit Mlp(const bench::MlpSpec& spec) : spec_(spec) {
        auto x = bench::mlp_inputs(spec);
        x_ = Tensor::from_data(x.data(), {spec.batch, spec.sizes.front()});
        labels_ = bench::mlp_labels(spec);
        for (std::size_t l = 0; l < spec.layers(); ++l) {
            auto w = bench::mlp_weight(spec, l);
            params_.push_back(Tensor::from_data(w.data(), {spec.sizes[l], spec.sizes[l + 1]}, true));
            params_.push_back(Tensor::zeros({spec.sizes[l + 1]}, true));
        }
        inputs_ = {{x_}, {labels_}};
        compiled_ = compile::capture<float>(
            [this](const compile::StepInputs<float>& in) {
                return std::vector<Tensor>{forward_backward(in.tensors[0], in.indices[0])};
            },
            inputs_);
    }

    Tensor forward_backward(const Tensor& x, const tapegrad::Index& labels) {
        Tensor h = x;
        for (std::size_t l = 0; l < spec_.layers(); ++l) {
            Tensor z = tapegrad::matmul(h, params_[2 * l]) + params_[2 * l + 1];
            h = l + 1 < spec_.layers() ? tapegrad::maximum(z, 0.0f) : z;
        }
        Tensor lse = tapegrad::logsumexp(h, {1}, /*keepdims=*/true);
        Tensor picked = tapegrad::gather(h, 1, labels, tapegrad::Shape{spec_.batch, 1});
        Tensor loss = tapegrad::mean(lse - picked);
        loss.backward();
        return loss;
    }

    // zero_grad: eager backward adds into .grad; a replay writes it.
    void update(bool zero_grad) {
        tapegrad::NoGradGuard no_grad;
        for (auto& p : params_) {
            p.modify([&](auto& v) { xt::noalias(v) -= bench::kLearningRate * p.grad().value(); });
            if (zero_grad) p.zero_grad();
        }
    }

    void step(bool replay) {
        // The loss as a number: a caller that keeps no output lets the next
        // replay reuse the output tensor.
        loss_ = replay ? compiled_(inputs_)[0].item() : forward_backward(x_, labels_).item();
        update(!replay);
    }
    float loss() const { return loss_; }
    std::size_t program_steps() const { return compiled_.stats().steps; }

private:
    bench::MlpSpec spec_;
    Tensor x_;
    float loss_ = 0;
    tapegrad::Index labels_;
    std::vector<Tensor> params_;
    compile::StepInputs<float> inputs_;  // the batch of every step, as x_ and labels_ for eager
    compile::CompiledStep<float> compiled_;
};

void bm_chain(benchmark::State& state, bool replay) {
    bench::set_threads(1);
    static Chain chain;
    auto run = [&] {
        if (replay) chain.compiled(chain.inputs);
        else chain.eager(chain.x);
    };
    if (!bench::smoke_mode()) run();
    bench::report_allocs(state, run);
    for (auto _ : state) run();
    state.counters["per_op"] = benchmark::Counter(double(state.iterations()) * 2 * bench::kChainLength,
                                                  benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void bm_mlp(benchmark::State& state, const bench::MlpSpec& spec, bool replay) {
    bench::set_threads(1);
    static std::map<std::string, std::unique_ptr<Mlp>> models;
    auto& m = models[spec.name + (replay ? "/replay" : "/eager")];
    if (!m) m = std::make_unique<Mlp>(spec);
    if (!bench::smoke_mode()) m->step(replay);
    bench::report_allocs(state, [&] { m->step(replay); });
    for (auto _ : state) m->step(replay);
    state.counters["loss"] = m->loss();
    if (replay) state.counters["program_ops"] = double(m->program_steps());
}

void register_all() {
    for (bool replay : {false, true}) {
        const std::string name = std::string("chain/") + (replay ? "replay" : "eager");
        benchmark::RegisterBenchmark(name.c_str(), [replay](benchmark::State& s) { bm_chain(s, replay); })
            ->Unit(benchmark::kMicrosecond);
    }
    for (const auto& spec : bench::mlp_specs()) {
        if (spec.sizes.front() > 784) continue;  // the 1024 MLP: bench_compare
        for (bool replay : {false, true}) {
            const std::string name = "mlp/" + spec.name + (replay ? "/replay" : "/eager");
            benchmark::RegisterBenchmark(name.c_str(),
                                         [&spec, replay](benchmark::State& s) { bm_mlp(s, spec, replay); })
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
        }
    }
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main(argc, argv, register_all); }
