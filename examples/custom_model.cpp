// Bring your own model: a custom Module, a custom loss, a gradient check of
// the whole thing, and a derivative with respect to the input used inside
// the loss.
//
//   build/examples/custom_model           # under a second; pictures in out/custom_model/
//   build/examples/custom_model --quick   # the smoke test: fewer steps
//
// The task is Sobolev training: fit g(x) to f(x) = sin(3x) AND g'(x) to
// f'(x) = 3 cos(3x). g'(x) comes from tapegrad::grad with create_graph, so
// it is itself on the graph and the loss can be differentiated through it
// (the same machinery gives gradient penalties and Lipschitz terms).
// Everything is float64 so that gradcheck's finite differences are exact
// enough to compare with.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"
#include "common/training_step.hpp"

using namespace tapegrad;

namespace {

// A gated residual block: y = x + sigmoid(x Wg + bg) * tanh(x Wh + bh).
// The gate decides, per feature, how much of the update to let through.
// A custom module only has to register its parameters (or submodules) and
// write forward(); parameters(), zero_grad(), printing and checkpoints come
// from the base class.
class GatedResidual : public nn::Module64 {
public:
    GatedResidual(std::size_t width, Generator& gen) : nn::Module64("GatedResidual") {
        gate_ = register_module("gate", std::make_shared<nn::Linear<double>>(width, width, true, gen));
        update_ = register_module("update", std::make_shared<nn::Linear<double>>(width, width, true, gen));
    }
    Tensor64 forward(const Tensor64& x) override {
        return x + nn::sigmoid((*gate_)(x)) * tanh((*update_)(x));
    }

private:
    std::shared_ptr<nn::Linear<double>> gate_, update_;
};

// 1 -> width -> gated residual block -> 1.
std::shared_ptr<nn::Sequential<double>> make_model(std::size_t width, Generator& gen) {
    auto model = std::make_shared<nn::Sequential<double>>();
    model->emplace<nn::Linear<double>>(1, width, true, gen);
    model->push_back(nn::make_activation<double>("tanh"));
    model->emplace<GatedResidual>(width, gen);
    model->emplace<nn::Linear<double>>(width, 1, true, gen);
    return model;
}

// A custom loss, composed from ops: log(cosh(r)) averaged, which is r^2/2
// for small residuals and |r| for large ones (robust, yet smooth).
// log cosh r = r + softplus(-2r) - log 2, which never overflows.
Tensor64 log_cosh_loss(const Tensor64& prediction, const Tensor64& target) {
    auto r = prediction - target;
    return mean(r + nn::softplus(r * -2.0) - std::log(2.0));
}

struct Batch {
    Tensor64 x, f, df;  // inputs [n, 1], f(x), f'(x)
};

Batch make_batch(std::size_t n) {
    std::vector<double> x, f, df;
    for (std::size_t i = 0; i < n; ++i) {
        double v = -1.5 + 3.0 * double(i) / double(n - 1);
        x.push_back(v);
        f.push_back(std::sin(3 * v));
        df.push_back(3 * std::cos(3 * v));
    }
    return {Tensor64::from_data(x.data(), {n, 1}), Tensor64::from_data(f.data(), {n, 1}),
            Tensor64::from_data(df.data(), {n, 1})};
}

struct Terms {
    Tensor64 value, slope, total;  // the two loss terms and their weighted sum
};

// The Sobolev loss. g'(x) is the gradient of sum(g(x)) with respect to x:
// row i of g depends only on row i of x, so that gradient holds each
// point's own derivative. create_graph keeps it differentiable.
Terms sobolev_loss(nn::Module64& model, const Batch& b, double weight) {
    // The loss needs a gradient even when evaluated under NoGradGuard (as
    // gradcheck does for its finite differences), so recording stays on.
    EnableGradGuard recording;
    Tensor64 x = b.x.detach();
    x.requires_grad_();
    auto g = model(x);
    BackwardOptions keep;
    keep.create_graph = true;
    auto dg = grad(sum(g), {x}, {}, keep)[0];
    Terms t{log_cosh_loss(g, b.f), nn::mse_loss(dg, b.df), {}};
    t.total = t.value + t.slope * weight;
    return t;
}

std::vector<double> values(const Tensor64& t) { return {t.value().begin(), t.value().end()}; }

int program_main(int argc, char** argv) {
    std::uint64_t seed = 0;
    std::string out_dir = "out/custom_model";
    bool quick = false, eager = false;
    int steps = 1500;
    double weight = 0.1;  // of the derivative term
    CLI::App app{"A custom module and loss, gradcheck, and a derivative inside the loss (Sobolev training)"};
    app.add_option("--seed", seed, "Random seed (initialisation)")->capture_default_str();
    app.add_option("--out-dir", out_dir, "Where the pictures go")->capture_default_str();
    app.add_option("--steps", steps, "Adam steps")->capture_default_str();
    app.add_option("--weight", weight, "Weight of the derivative term")->capture_default_str();
    app.add_flag("--quick", quick, "Smoke test: 300 steps");
    app.add_flag("--eager", eager, program::kEagerHelp);
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(out_dir);  // refused now, not after the work
    if (quick) steps = 300;

    set_num_threads(1);  // small matrices: one BLAS thread is fastest
    Generator gen(seed);
    auto model = make_model(8, gen);
    std::cout << *model << "\n";
    const Batch batch = make_batch(40);

    // 1. gradcheck of the whole loss with respect to every parameter.
    // The function hands gradcheck's leaves to the model through the
    // parameter slots, then puts the model's own tensors back. The loss
    // contains g'(x), so this also checks second derivatives.
    const auto named = model->named_parameters();
    std::vector<Tensor64> originals;
    for (const auto& [name, p] : named) originals.push_back(p);
    auto loss_of = [&](const std::vector<Tensor64>& params) {
        for (std::size_t i = 0; i < named.size(); ++i) model->parameter(named[i].first) = params[i];
        return sobolev_loss(*model, batch, weight).total;
    };
    auto report = gradcheck(loss_of, originals);
    for (std::size_t i = 0; i < named.size(); ++i) model->parameter(named[i].first) = originals[i];
    std::printf("gradcheck of the Sobolev loss over %zu parameters: %s\n\n", model->num_parameters(),
                report.message().c_str());

    // 2. The derivative term is differentiable: its gradient with respect
    // to the parameters exists and is not zero.
    auto terms = sobolev_loss(*model, batch, weight);
    auto slope_grads = grad(terms.slope, model->parameters());
    double norm2 = 0;
    for (const auto& g : slope_grads)
        if (g.defined()) norm2 += xt::sum(g.value() * g.value())();
    std::printf("|d(derivative term)/d(parameters)| = %.4f\n\n", std::sqrt(norm2));

    // 3. Training on the custom loss.
    nn::Adam<double> opt(model->parameters(), 1e-2);
    std::vector<double> step_axis, totals, value_terms, slope_terms;
    // The derivative inside the loss is captured too: grad() with create_graph records its ops.
    auto train_step = program::backward_step<double>(
        model->parameters(),
        [&](const compile::StepInputs<double>&) {
            auto t = sobolev_loss(*model, batch, weight);
            return std::vector<Tensor64>{t.total, t.value, t.slope};
        },
        eager);
    for (int step = 0; step <= steps; ++step) {
        std::vector<Tensor64> t;
        if (step < steps) {
            t = train_step({});
        } else {  // the loss after the last update, without a step
            auto last = sobolev_loss(*model, batch, weight);
            t = {last.total, last.value, last.slope};
        }
        step_axis.push_back(step);
        totals.push_back(t[0].item());
        value_terms.push_back(t[1].item());
        slope_terms.push_back(t[2].item());
        if (step % (steps / 5) == 0)
            std::printf("step %4d: loss %.5f  (log-cosh on g %.5f, mse on g' %.5f)\n", step, t[0].item(),
                        t[1].item(), t[2].item());
        if (step < steps) opt.step();
    }

    // Pictures: the fit of g and g', and the loss.
    const auto dir = std::filesystem::path(out_dir);
    std::filesystem::create_directories(dir);
    Batch dense = make_batch(301);
    Tensor64 x = dense.x.detach();
    x.requires_grad_();
    auto g = (*model)(x);
    auto dg = grad(sum(g), {x})[0];
    const auto xs = values(dense.x);
    plot::Chart fit;
    fit.title = "Sobolev fit: g to sin(3x) and g' to 3 cos(3x)";
    fit.xlabel = "x";
    fit.y_range = {{-3.5, 5.0}};
    fit.add("f = sin(3x)", xs, values(dense.f), plot::Style::Dashed)
        .add("g (model)", xs, values(g))
        .add("f' = 3 cos(3x)", xs, values(dense.df), plot::Style::Dashed)
        .add("g' (autodiff)", xs, values(dg));
    plot::Chart loss;
    loss.title = "Training loss";
    loss.xlabel = "Adam step";
    loss.log_y = true;
    loss.add("total", step_axis, totals).add("log-cosh(g - f)", step_axis, value_terms, plot::Style::Dashed)
        .add("mse(g' - f')", step_axis, slope_terms, plot::Style::Dashed);
    plot::Sheet sheet;
    sheet.columns = 2;
    sheet.cell_width = 600;
    sheet.cell_height = 420;
    sheet.add(fit).add(loss);
    plot::save_sheet(sheet, (dir / "sobolev_fit.png").string());
    std::printf("\nwrote %s\n\n", (dir / "sobolev_fit.png").c_str());

    const bool grads_ok = bool(report), falls = totals.back() < 0.5 * totals.front(),
               differentiable = norm2 > 0 && std::isfinite(norm2);
    std::printf("%s: gradcheck passes on the whole model and loss (max abs error %.1e)\n",
                grads_ok ? "CLAIM OK" : "CLAIM FAILED", report.max_abs_error);
    std::printf("%s: the loss decreases (%.3g -> %.3g, need at least halved)\n", falls ? "CLAIM OK" : "CLAIM FAILED",
                totals.front(), totals.back());
    std::printf("%s: the input-derivative term has a non-zero parameter gradient (norm %.4f)\n",
                differentiable ? "CLAIM OK" : "CLAIM FAILED", std::sqrt(norm2));
    return grads_ok && falls && differentiable ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
