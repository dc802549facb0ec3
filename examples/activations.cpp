// Every activation function in tapegrad::nn with its derivative, the
// derivative computed by automatic differentiation (no formula anywhere).
//
//   build/examples/activations           # under a second; out/activations/activations.png
//   build/examples/activations --quick   # the smoke test (the same run)
//
// The activations are compositions of tensor ops (see nn/activations.hpp),
// so their derivatives come from the ops' vector-Jacobian products. For an
// elementwise f, the gradient of sum(f(x)) with respect to x is f'(x) at
// every element at once. The check: that derivative agrees with a central
// finite difference (f(x+h) - f(x-h)) / 2h at sample points away from kinks.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"

using namespace tapegrad;

namespace {

using Fn = std::function<Tensor64(const Tensor64&)>;

struct Activation {
    std::string name;
    Fn f;
    bool kink_at_zero;  // not differentiable at 0: the finite difference skips it
};

Fn module(std::shared_ptr<nn::Module64> m) {
    return [m](const Tensor64& x) { return m->forward(x); };
}

// softmax and log_softmax map vectors to vectors; shown on the pair [x, 0],
// whose first component is a function of x alone (softmax([x, 0])_0 is the
// sigmoid).
Fn first_of_pair(Fn f) {
    return [f](const Tensor64& x) {
        auto pairs = stack<double>({x, Tensor64::zeros(x.shape_vector())}, 1);  // [n, 2]
        return reshape(slice(f(pairs), 1, 0, 1), {-1});
    };
}

std::vector<Activation> all_activations() {
    auto rrelu = std::make_shared<nn::RReLU<double>>();
    rrelu->eval();  // fixed slope (lower + upper) / 2; in training it is random
    return {
        {"identity", module(nn::make_activation<double>("identity")), false},
        {"threshold", module(nn::make_activation<double>("threshold")), true},
        {"sigmoid", module(nn::make_activation<double>("sigmoid")), false},
        {"tanh", module(nn::make_activation<double>("tanh")), false},
        {"relu", module(nn::make_activation<double>("relu")), true},
        {"leaky_relu (alpha 0.1)", [](const Tensor64& x) { return nn::leaky_relu(x, 0.1); }, true},
        {"prelu (slope 0.25)", module(std::make_shared<nn::PReLU<double>>()), true},
        {"rrelu (eval)", module(rrelu), true},
        {"abs", module(nn::make_activation<double>("abs")), true},
        {"elu", module(nn::make_activation<double>("elu")), true},
        {"softplus", module(nn::make_activation<double>("softplus")), false},
        {"gelu", module(nn::make_activation<double>("gelu")), false},
        {"gelu_tanh", module(nn::make_activation<double>("gelu_tanh")), false},
        {"silu", module(nn::make_activation<double>("silu")), false},
        {"swish (beta 2)", [](const Tensor64& x) { return nn::swish(x, 2.0); }, false},
        {"softmax([x, 0])[0]", first_of_pair([](const Tensor64& x) { return nn::softmax(x); }), false},
        {"log_softmax([x, 0])[0]", first_of_pair([](const Tensor64& x) { return nn::log_softmax(x); }), false},
    };
}

// f(x) and f'(x) at every point of xs; the derivative by backward.
std::pair<std::vector<double>, std::vector<double>> value_and_derivative(const Fn& f, const std::vector<double>& xs) {
    Tensor64 x = Tensor64::from_data(xs.data(), {xs.size()}, /*requires_grad=*/true);
    auto y = f(x);
    auto dy = grad(sum(y), {x})[0];
    return {{y.value().begin(), y.value().end()}, {dy.value().begin(), dy.value().end()}};
}

std::vector<double> eval(const Fn& f, const std::vector<double>& xs) {
    NoGradGuard no_grad;
    auto y = f(Tensor64::from_data(xs.data(), {xs.size()}));
    return {y.value().begin(), y.value().end()};
}

int program_main(int argc, char** argv) {
    std::string out_dir = "out/activations";
    bool quick = false;
    CLI::App app{"Activation functions and their autodiff derivatives, checked against finite differences"};
    app.add_option("--out-dir", out_dir, "Where the picture goes")->capture_default_str();
    app.add_flag("--quick", quick, "Smoke test (this example is already quick: the same run)");
    std::uint64_t seed = 0;
    app.add_option("--seed", seed, "Accepted like every example's, but nothing here is random");
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(out_dir);  // refused now, not after the work

    std::vector<double> grid;  // for the curves
    for (int i = 0; i <= 800; ++i) grid.push_back(-4 + 8.0 * i / 800);
    std::vector<double> samples;  // for the check: 41 points, one of them 0
    for (int i = 0; i <= 40; ++i) samples.push_back(-4.0 + 0.2 * i);
    samples[20] = 0.0;  // exactly, not 1e-16: branches of a composition meet there
    const double h = 1e-6;
    std::vector<double> plus, minus;
    for (double s : samples) plus.push_back(s + h), minus.push_back(s - h);

    plot::Sheet sheet;
    sheet.title = "Activations f (solid) and f' by autodiff (dashed)";
    sheet.columns = 6;
    sheet.cell_width = 330;
    sheet.cell_height = 270;
    bool ok = true;
    std::printf("%-24s %10s %10s %8s  %s\n", "activation", "f'(-1)", "f'(1)", "f'(0)", "max |autodiff - finite difference|");
    for (const auto& a : all_activations()) {
        auto [y, dy] = value_and_derivative(a.f, grid);
        auto [ys, dys] = value_and_derivative(a.f, samples);
        auto fp = eval(a.f, plus), fm = eval(a.f, minus);
        double worst = 0;
        bool this_ok = true;
        for (std::size_t i = 0; i < samples.size(); ++i) {
            if (a.kink_at_zero && samples[i] == 0.0) continue;
            double numeric = (fp[i] - fm[i]) / (2 * h);
            double err = std::abs(dys[i] - numeric);
            worst = std::max(worst, err);
            this_ok = this_ok && err <= 1e-6 + 1e-6 * std::abs(numeric);
        }
        // Derivatives at -1, 1 and at the kink 0 (where autodiff returns
        // the left derivative, as PyTorch does).
        auto [unused, at] = value_and_derivative(a.f, {-1.0, 1.0, 0.0});
        std::printf("%-24s %10.4f %10.4f %8.4f  %.1e %s\n", a.name.c_str(), at[0], at[1], at[2], worst,
                    this_ok ? "" : "  <-- MISMATCH");
        ok = ok && this_ok;

        plot::Chart c;
        c.title = a.name;
        c.xlabel = "x";
        c.legend = false;
        c.add("f", grid, y).add("f'", grid, dy, plot::Style::Dashed);
        sheet.add(c);
    }

    std::filesystem::create_directories(out_dir);
    const auto path = (std::filesystem::path(out_dir) / "activations.png").string();
    plot::save_sheet(sheet, path);
    std::printf("\nwrote %s\n\n", path.c_str());
    std::printf("%s: every autodiff derivative matches a central finite difference (h = 1e-6, float64) at 41 "
                "points in [-4, 4] (0 included, except for the functions with a kink there)\n",
                ok ? "CLAIM OK" : "CLAIM FAILED");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
