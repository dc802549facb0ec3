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
//   act/<gelu|silu|layernorm>/<rows>x<cols>/<variant>  forward + backward of one
//                                   activation (float32; LayerNorm over the last
//                                   axis, with weight and bias): y = f(x), then
//                                   dx (and dw, db) for a seed g. Variants:
//                                   eager      composed from ops, grad(y, {x, ...}, g)
//                                   replay     the same, captured once and replayed
//                                              (x and LayerNorm's weight and bias
//                                              are parameters: their gradients go to
//                                              .grad; y is the program's output)
//                                   unfused    replay captured with CaptureOptions::fuse
//                                              off (every op its own pass)
//                                   reference  one loop per output, by hand
//                                              (bench/fused_reference.hpp)
//                                   Setup checks that the reference's y, dx (dw, db)
//                                   equal the replay's and eager's within 1e-4 of
//                                   the largest value, and exits otherwise.
//
// Counters: allocs and alloc_bytes (heap allocations of one step, counted
// by bench/alloc_counter), loss (the MLPs, after the last step);
// replays: program_ops, fused_groups, fused_ops (compile::ProgramStats).
// docs/compile.md records a run; scripts/compare runs the act/ rows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>

#include <xtensor/xnoalias.hpp>

#include <tapegrad/core/compile/capture.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "bench_common.hpp"
#include "fused_reference.hpp"

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
    compile::ProgramStats program_stats() const { return compiled_.stats(); }

private:
    bench::MlpSpec spec_;
    Tensor x_;
    float loss_ = 0;
    tapegrad::Index labels_;
    std::vector<Tensor> params_;
    compile::StepInputs<float> inputs_;  // the batch of every step, as x_ and labels_ for eager
    compile::CompiledStep<float> compiled_;
};

// What the replayed program is made of: ops, and how many of them run in
// fused groups (runs of elementwise ops replayed as one blocked loop).
void report_program(benchmark::State& state, const compile::ProgramStats& s) {
    state.counters["program_ops"] = double(s.steps);
    state.counters["fused_groups"] = double(s.fused_groups);
    state.counters["fused_ops"] = double(s.fused_ops);
}

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
    if (replay) report_program(state, m->program_stats());
}

enum class Act { gelu, silu, layernorm };
const char* act_name(Act a) { return a == Act::gelu ? "gelu" : a == Act::silu ? "silu" : "layernorm"; }

// One activation at one size: its tensors, the programs and the reference's
// buffers, made once and checked against each other.
class Activation {
public:
    Activation(Act act, std::size_t rows, std::size_t cols)
        : act_(act), rows_(rows), cols_(cols), norm_(cols), ref_ln_(rows, cols),
          y_ref_(bench::fused::Matrix::from_shape({rows, cols})),
          dx_ref_(bench::fused::Matrix::from_shape({rows, cols})) {
        std::mt19937_64 gen(bench::kSeed + 400 + std::uint64_t(act));
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(rows * cols), g(rows * cols), w(cols), b(cols);
        for (auto* v : {&x, &g, &w, &b})
            for (auto& e : *v) e = normal(gen);
        x_ = Tensor::from_data(x.data(), {rows, cols}, true);
        g_ = Tensor::from_data(g.data(), {rows, cols});
        {
            tapegrad::NoGradGuard no_grad;  // weight and bias other than 1 and 0, so that both count
            norm_.weight.modify([&](auto& v) { std::copy(w.begin(), w.end(), v.begin()); });
            norm_.bias.modify([&](auto& v) { std::copy(b.begin(), b.end(), v.begin()); });
        }
        xr_ = x_.value();
        gr_ = g_.value();
        wr_ = norm_.weight.value();
        br_ = norm_.bias.value();
        compiled_ = capture(true);
        unfused_ = capture(false);
        check();
    }

    void eager() { (void)tapegrad::grad(apply(x_), leaves(), g_); }
    void replay(bool fused) { (void)(fused ? compiled_ : unfused_)(no_inputs_); }
    void reference() {
        switch (act_) {
            case Act::gelu:
                bench::fused::gelu_forward(xr_, y_ref_);
                bench::fused::gelu_backward(xr_, gr_, dx_ref_);
                break;
            case Act::silu:
                bench::fused::silu_forward(xr_, y_ref_);
                bench::fused::silu_backward(xr_, gr_, dx_ref_);
                break;
            case Act::layernorm:
                ref_ln_.forward(xr_, wr_, br_, kEps);
                ref_ln_.backward(xr_, gr_, wr_);
                break;
        }
    }
    std::size_t elements() const { return rows_ * cols_; }
    compile::ProgramStats stats(bool fused) const { return (fused ? compiled_ : unfused_).stats(); }

private:
    static constexpr float kEps = 1e-5f;  // nn::LayerNorm's default

    Tensor apply(const Tensor& x) {
        switch (act_) {
            case Act::gelu: return tapegrad::nn::gelu(x);
            case Act::silu: return tapegrad::nn::silu(x);
            case Act::layernorm: return norm_(x);
        }
        return {};
    }
    std::vector<Tensor> leaves() const {
        return act_ == Act::layernorm ? std::vector<Tensor>{x_, norm_.weight, norm_.bias} : std::vector<Tensor>{x_};
    }

    // x (and the weight and bias) are leaves of the step: read live, their
    // gradients written to .grad; the seed g is a constant of the program.
    compile::CompiledStep<float> capture(bool fuse) {
        compile::CaptureOptions<float> options;
        options.fuse = fuse;
        return compile::capture<float>(
            [this](const compile::StepInputs<float>&) {
                Tensor y = apply(x_);
                y.backward(g_);
                return std::vector<Tensor>{y};
            },
            no_inputs_, options);
    }

    // max |a - b| <= 1e-4 max |b|, or the program exits naming the case.
    void expect_close(const char* engine, const char* what, const tapegrad::Array<float>& got,
                      const float* want, std::size_t n) const {
        double worst = 0, scale = 0;
        for (std::size_t i = 0; i < n; ++i) {
            scale = std::max(scale, double(std::fabs(want[i])));
            worst = std::max(worst, double(std::fabs(got.data()[i] - want[i])));
        }
        if (got.size() != n || !(worst <= 1e-4 * scale)) {
            std::fprintf(stderr,
                         "act/%s/%zux%zu: %s %s differs from the reference: max |difference| %g, max |reference| %g "
                         "(%zu vs %zu elements)\n",
                         act_name(act_), rows_, cols_, engine, what, worst, scale, std::size_t(got.size()), n);
            std::exit(1);
        }
    }

    void check() {
        reference();
        const bool ln = act_ == Act::layernorm;
        const float* y_ref = ln ? ref_ln_.y.data() : y_ref_.data();
        const float* dx_ref = ln ? ref_ln_.dx.data() : dx_ref_.data();
        const std::size_t n = elements();
        auto compare = [&](const char* engine, const tapegrad::Array<float>& y, const std::vector<Tensor>& grads) {
            expect_close(engine, "y", y, y_ref, n);
            expect_close(engine, "dx", grads[0].value(), dx_ref, n);
            if (ln) {
                expect_close(engine, "dweight", grads[1].value(), ref_ln_.dw.data(), cols_);
                expect_close(engine, "dbias", grads[2].value(), ref_ln_.db.data(), cols_);
            }
        };
        {
            Tensor y = apply(x_);
            compare("eager", y.value(), tapegrad::grad(y, leaves(), g_));
        }
        for (auto* program : {&compiled_, &unfused_}) {
            const tapegrad::Array<float> y = (*program)(no_inputs_)[0].value();
            std::vector<Tensor> grads;
            for (const auto& leaf : leaves()) grads.push_back(leaf.grad());
            compare(program == &compiled_ ? "replay" : "unfused replay", y, grads);
        }
    }

    Act act_;
    std::size_t rows_, cols_;
    tapegrad::nn::LayerNorm<float> norm_;
    Tensor x_, g_;
    compile::StepInputs<float> no_inputs_;
    compile::CompiledStep<float> compiled_, unfused_;
    bench::fused::Matrix xr_, gr_;  // the reference's copies of x and g, and its outputs
    bench::fused::Vector wr_, br_;
    bench::fused::LayerNorm ref_ln_;
    bench::fused::Matrix y_ref_, dx_ref_;
};

void bm_activation(benchmark::State& state, Act act, std::size_t rows, std::size_t cols, const std::string& variant) {
    bench::set_threads(1);
    static std::map<std::string, std::unique_ptr<Activation>> cases;
    auto& a = cases[std::string(act_name(act)) + std::to_string(rows)];
    if (!a) a = std::make_unique<Activation>(act, rows, cols);
    auto run = [&] {
        if (variant == "eager") a->eager();
        else if (variant == "replay") a->replay(true);
        else if (variant == "unfused") a->replay(false);
        else a->reference();
    };
    if (!bench::smoke_mode()) run();
    bench::report_allocs(state, run);
    for (auto _ : state) run();
    state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(a->elements()));
    if (variant == "replay" || variant == "unfused") report_program(state, a->stats(variant == "replay"));
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
    const std::vector<std::string> variants{"eager", "replay", "unfused", "reference"};
    for (Act act : {Act::gelu, Act::silu, Act::layernorm})
        for (auto [rows, cols] : {std::pair<std::size_t, std::size_t>{128, 1024}, {1024, 4096}})
            for (const auto& variant : variants) {
                const std::string name = std::string("act/") + act_name(act) + "/" + std::to_string(rows) + "x" +
                                         std::to_string(cols) + "/" + variant;
                benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
                    bm_activation(s, act, rows, cols, variant);
                })
                    ->UseRealTime()
                    ->Unit(benchmark::kMicrosecond);
            }
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main(argc, argv, register_all); }
