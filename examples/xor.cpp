// XOR: the function a single linear unit cannot compute.
//
//   build/examples/xor            # under a second; pictures in out/xor/
//   build/examples/xor --quick    # the smoke test (same claims)
//
// (a) A hand-wired network of threshold units computes XOR exactly:
//     h1 = step(x1 + x2 - 1.5) (AND), h2 = step(x1 + x2 - 0.5) (OR),
//     y = step(h2 - h1 - 0.5).
// (b) A linear classifier trained by gradient descent gets at most 3 of the
//     4 points right: no line separates {(0,1), (1,0)} from {(0,0), (1,1)}.
// (c) With the feature map psi(x) = [x1, x2, x1*x2] the same linear
//     classifier is perfect (in 3-D the classes are separable).
// (d) An MLP with a small hidden layer learns XOR.
// (e) The threshold network's gradients are all zero, computed by backward:
//     that is why threshold units cannot be trained by gradient descent.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"
#include "common/training_step.hpp"

using namespace tapegrad;

namespace {

using Features = std::function<Tensor(const Tensor&)>;

// psi(x) = [x1, x2, x1*x2]: the product is 1 only for (1,1).
Tensor psi(const Tensor& x) {
    auto x1 = slice(x, 1, 0, 1), x2 = slice(x, 1, 1, 2);
    return concat<float>({x1, x2, x1 * x2}, 1);
}

// Full-batch gradient descent on the binary cross-entropy of the logits,
// compiled unless `eager`. Returns the loss after every step.
std::vector<double> train(nn::Module& model, const Tensor& x, const Tensor& y, nn::Optimizer<float>& opt,
                          int steps, bool eager) {
    auto step = program::backward_step<float>(
        model.parameters(),
        [&](const compile::StepInputs<float>& in) {
            return std::vector<Tensor>{nn::binary_cross_entropy_with_logits(model(in.tensors[0]), in.tensors[1])};
        },
        eager);
    std::vector<double> losses;
    for (int i = 0; i < steps; ++i) {
        losses.push_back(step({{x, y}}).front().item());
        opt.step();
    }
    return losses;
}

// The four XOR points on top of a model's decision regions.
plot::DecisionRegions regions(const std::string& title, const Tensor& x, const Index& labels) {
    plot::DecisionRegions r;
    r.title = title;
    r.x_min = r.y_min = -0.5;
    r.x_max = r.y_max = 1.5;
    r.grid_w = r.grid_h = 120;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        r.px.push_back(x.value()(i, 0));
        r.py.push_back(x.value()(i, 1));
        r.plabel.push_back(int(labels[i]));
    }
    r.class_names = {"XOR = 0", "XOR = 1"};
    return r;
}

// An [n, 1] column. (A braced list {{0}, {1}} would be ambiguous: each {0}
// can also be read as one float of a 1-D list.)
Tensor column(std::vector<float> v, bool requires_grad = false) {
    return Tensor::from_data(v.data(), {v.size(), 1}, requires_grad);
}

// A tensor's values on one line: [0, 0, 0, 0].
std::string flat(const Tensor& t) {
    std::string s = "[";
    char buf[32];
    for (float v : t.value()) {
        std::snprintf(buf, sizeof buf, "%.2g", v);
        s += (s.size() > 1 ? ", " : "") + std::string(buf);
    }
    return s + "]";
}

Tensor grid_batch(const plot::DecisionRegions& r) {
    auto g = r.grid_inputs();
    std::vector<float> f(g.begin(), g.end());
    return Tensor::from_data(f.data(), {f.size() / 2, 2});
}

// Probability of class 1 on the grid, for a model with one logit.
void fill_probabilities(plot::DecisionRegions& r, nn::Module& model, const Features& features) {
    NoGradGuard no_grad;
    auto p = nn::sigmoid(model(features(grid_batch(r))));
    r.grid_prob.assign(p.value().begin(), p.value().end());
}

// Runs (a)-(e); true when every claim holds.
bool run(std::uint64_t seed, const std::string& out_dir, bool eager) {
    Generator gen(seed);
    const Tensor x({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
    const Tensor y = column({0, 1, 1, 0});
    const Index labels = {0, 1, 1, 0};
    bool all_ok = true;
    auto claim = [&](bool ok, const std::string& what) {
        std::printf("%s: %s\n", ok ? "CLAIM OK" : "CLAIM FAILED", what.c_str());
        all_ok = all_ok && ok;
    };

    // (a) The hand-wired threshold network. Column 0 of W1 is the AND unit,
    // column 1 the OR unit; the output fires for "OR but not AND".
    // nn::threshold is 1 where its input is > 0; the notes use >= 0, which
    // only differs at exactly 0, never reached here.
    Tensor w1({{1, 1}, {1, 1}}, true), b1({-1.5f, -0.5f}, true);
    Tensor w2 = column({-1, 1}, true), b2({-0.5f}, true);
    auto step_net = [&](const Tensor& in) {
        auto h = nn::threshold(matmul(in, w1) + b1);
        return std::make_pair(h, nn::threshold(matmul(h, w2) + b2));
    };
    auto [h, out] = step_net(x);
    std::printf("(a) hand-wired threshold network\n    x1 x2 | h1=AND h2=OR | y | XOR\n");
    bool exact = true;
    for (std::size_t i = 0; i < 4; ++i) {
        std::printf("     %g  %g |   %g      %g   | %g |  %g\n", x.value()(i, 0), x.value()(i, 1), h.value()(i, 0),
                    h.value()(i, 1), out.value()(i, 0), y.value()(i, 0));
        exact = exact && out.value()(i, 0) == y.value()(i, 0);
    }
    claim(exact, "(a) the threshold network's truth table is exactly XOR");

    // (b) Logistic regression on the raw inputs. First the geometry: try a
    // dense grid of lines w1*x1 + w2*x2 + b > 0 and keep the best.
    int best_line = 0;
    for (double a = -2; a <= 2; a += 0.125)
        for (double c = -2; c <= 2; c += 0.125)
            for (double b = -2; b <= 2; b += 0.125) {
                int correct = 0;
                for (int i = 0; i < 4; ++i)
                    correct += ((a * x.value()(i, 0) + c * x.value()(i, 1) + b > 0) ? 1 : 0) == labels[i];
                best_line = std::max(best_line, correct);
            }
    nn::Linear<float> linear(2, 1, true, gen);
    nn::SGD<float> linear_opt(linear.parameters(), 0.5);
    auto linear_loss = train(linear, x, y, linear_opt, 2000, eager);
    auto linear_logits = linear(x).detach();
    double linear_acc = nn::accuracy(linear_logits, labels);
    std::printf("\n(b) linear classifier, 2000 steps of gradient descent: accuracy %.0f%%, loss %.4f\n"
                "    logits %s\n"
                "    The loss is smallest at w = 0, b = 0: every logit ~0, p = 0.5 everywhere, and the\n"
                "    predicted classes are decided by rounding noise. No line does better than 3/4:\n"
                "    the best of 35937 lines on a grid gets %d/4.\n",
                100 * linear_acc, linear_loss.back(), flat(linear_logits).c_str(), best_line);
    claim(linear_acc <= 0.75 && best_line <= 3, "(b) a linear classifier gets at most 75% on XOR");

    // (c) The same classifier on psi(x): x1*x2 lifts (1,1) out of the plane.
    nn::Linear<float> lifted(3, 1, true, gen);
    nn::SGD<float> lifted_opt(lifted.parameters(), 0.5);
    auto lifted_loss = train(lifted, psi(x), y, lifted_opt, 2000, eager);
    double lifted_acc = nn::accuracy(lifted(psi(x)), labels);
    const auto& w = lifted.weight.value();
    std::printf("\n(c) linear classifier on psi(x) = [x1, x2, x1*x2]: accuracy %.0f%%, loss %.4f\n"
                "    learned: %.2f*x1 + %.2f*x2 + %.2f*x1*x2 + %.2f\n",
                100 * lifted_acc, lifted_loss.back(), w(0, 0), w(1, 0), w(2, 0), lifted.bias.value()(0));
    claim(lifted_acc == 1.0, "(c) with the feature x1*x2 the linear classifier reaches 100%");

    // (d) An MLP: 4 tanh hidden units learn their own features.
    nn::MLP<float> mlp({2, 4, 1}, "tanh", nn::Head::identity, gen);
    nn::Adam<float> mlp_opt(mlp.parameters(), 0.05);
    auto mlp_loss = train(mlp, x, y, mlp_opt, 500, eager);
    double mlp_acc = nn::accuracy(mlp(x), labels);
    std::printf("\n(d) MLP 2-4-1 (tanh), 500 Adam steps: accuracy %.0f%%, loss %.4f\n", 100 * mlp_acc,
                mlp_loss.back());
    claim(mlp_acc == 1.0, "(d) an MLP with 4 hidden units learns XOR to 100%");

    // (e) Gradients of the threshold network. Start it from random weights
    // (so it is wrong somewhere) and ask backward how to improve.
    for (auto* p : {&w1, &b1, &w2, &b2})
        p->modify([&](auto& v) { v = Tensor::randn(p->shape_vector(), gen).value(); });
    auto wrong = step_net(x).second;
    auto loss = nn::mse_loss(wrong, y);
    loss.backward();
    double largest = 0;
    std::printf("\n(e) threshold network from random weights: loss %.2f, gradients:\n", loss.item());
    for (auto [name, p] : {std::pair{"W1", &w1}, {"b1", &b1}, {"W2", &w2}, {"b2", &b2}}) {
        auto g = p->grad();
        std::printf("    d loss / d %s = %s\n", name, g.defined() ? flat(g).c_str() : "(none)");
        if (g.defined()) largest = std::max(largest, double(xt::amax(xt::abs(g.value()))()));
    }
    std::printf("    The output is piecewise constant in every weight, so its derivative is 0\n"
                "    wherever it exists: gradient descent gets no signal. Smooth units (sigmoid,\n"
                "    tanh) fix this; that is what (d) uses.\n");
    claim(largest == 0.0 && loss.item() > 0, "(e) every gradient of the threshold network is zero");

    // Pictures: the four models' decision regions side by side, and the
    // training losses.
    std::filesystem::create_directories(out_dir);
    const auto dir = std::filesystem::path(out_dir);
    plot::Sheet sheet;
    sheet.title = "XOR decision regions (blue: XOR = 0, orange: XOR = 1)";
    sheet.columns = 4;
    sheet.cell_width = 360;
    sheet.cell_height = 340;
    {
        // Hand-wired weights again, for the picture.
        NoGradGuard no_grad;
        w1.modify([](auto& v) { v = Tensor({{1, 1}, {1, 1}}).value(); });
        b1.modify([](auto& v) { v = Tensor({-1.5f, -0.5f}).value(); });
        w2.modify([](auto& v) { v = column({-1, 1}).value(); });
        b2.modify([](auto& v) { v = Tensor({-0.5f}).value(); });
        auto r = regions("threshold units (hand-wired)", x, labels);
        auto cls = step_net(grid_batch(r)).second;
        for (float v : cls.value()) r.grid_class.push_back(int(v));
        r.legend = false;
        sheet.add(r, "(a) exact: 100%");
    }
    auto r_linear = regions("linear", x, labels);
    fill_probabilities(r_linear, linear, [](const Tensor& t) { return t; });
    r_linear.legend = false;
    sheet.add(r_linear, "(b) linear: " + std::to_string(int(100 * linear_acc)) + "%, p = 0.5 everywhere");
    auto r_lifted = regions("linear on [x1, x2, x1*x2]", x, labels);
    fill_probabilities(r_lifted, lifted, psi);
    r_lifted.legend = false;
    sheet.add(r_lifted, "(c) feature map: " + std::to_string(int(100 * lifted_acc)) + "%");
    auto r_mlp = regions("MLP 2-4-1", x, labels);
    fill_probabilities(r_mlp, mlp, [](const Tensor& t) { return t; });
    r_mlp.legend = false;
    sheet.add(r_mlp, "(d) MLP: " + std::to_string(int(100 * mlp_acc)) + "%");
    plot::save_sheet(sheet, (dir / "xor_regions.png").string());

    plot::Chart chart;
    chart.title = "XOR: training loss (binary cross-entropy)";
    chart.xlabel = "gradient step";
    chart.ylabel = "loss";
    chart.log_y = true;
    std::vector<double> steps(2000);
    for (std::size_t i = 0; i < steps.size(); ++i) steps[i] = double(i + 1);
    chart.add("(b) linear", steps, linear_loss)
        .add("(c) linear on psi(x)", steps, lifted_loss)
        .add("(d) MLP 2-4-1", std::vector<double>(steps.begin(), steps.begin() + 500), mlp_loss);
    plot::save_chart(chart, (dir / "xor_loss.png").string());
    std::printf("\nwrote %s and %s\n", (dir / "xor_regions.png").c_str(), (dir / "xor_loss.png").c_str());

    return all_ok;
}

int program_main(int argc, char** argv) {
    std::uint64_t seed = 0;
    std::string out_dir = "out/xor";
    bool quick = false, eager = false;
    CLI::App app{"XOR: threshold units, linear classifiers, feature maps and an MLP"};
    app.add_option("--seed", seed, "Random seed (same seed, same run)")->capture_default_str();
    app.add_option("--out-dir", out_dir, "Where the pictures go")->capture_default_str();
    app.add_flag("--quick", quick, "Smoke test (this example is already quick: the same run)");
    app.add_flag("--eager", eager, program::kEagerHelp);
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(out_dir);  // refused now, not after the work
    set_num_threads(1);  // small matrices: one BLAS thread is fastest, and smoke tests run side by side
    return run(seed, out_dir, eager) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
