// Translation invariance: tell pattern A from pattern B wherever it sits.
//
//   build/examples/translation_invariance           # under a second; pictures in out/translation_invariance/
//   build/examples/translation_invariance --quick   # the smoke test (fewer steps)
//
// A and B are 16-pixel binary strips with the same number of black pixels
// (4), and every cyclic shift of each is in the data set (32 examples).
// A linear unit y = sum_i w_i x_i + b cannot separate them: summed over the
// 16 shifts of A, each pixel is black exactly 4 times, and the same holds
// for B, so the sums of the outputs over the two classes are equal,
// 4 sum_i w_i + 16 b, whatever the weights. The loss is symmetric under
// shifting the weights too, so gradient descent ends at equal weights:
// the unit only counts black pixels, and A and B have the same count.
// An MLP's hidden units can detect local arrangements ("four in a row")
// and separate them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"
#include "common/training_step.hpp"

using namespace tapegrad;

namespace {

constexpr std::size_t kPixels = 16;
const char* kA = "1111000000000000";  // a block of four
const char* kB = "1100101000000000";  // four spread out

// The 16 cyclic shifts of A (label 0) then of B (label 1): x [32, 16], y [32, 1].
std::pair<Tensor, Tensor> all_shifts() {
    std::vector<float> x, y;
    for (int label = 0; label < 2; ++label) {
        const char* pattern = label == 0 ? kA : kB;
        for (std::size_t shift = 0; shift < kPixels; ++shift) {
            for (std::size_t i = 0; i < kPixels; ++i) x.push_back(pattern[(i + kPixels - shift) % kPixels] == '1');
            y.push_back(float(label));
        }
    }
    return {Tensor::from_data(x.data(), {2 * kPixels, kPixels}), Tensor::from_data(y.data(), {2 * kPixels, 1})};
}

// Full-batch training on the binary cross-entropy of one logit, compiled unless `eager`.
void train(nn::Module& model, nn::Optimizer<float>& opt, const Tensor& x, const Tensor& y, int steps, bool eager) {
    auto step = program::backward_step<float>(
        model.parameters(),
        [&](const compile::StepInputs<float>& in) {
            return std::vector<Tensor>{nn::binary_cross_entropy_with_logits(model(in.tensors[0]), in.tensors[1])};
        },
        eager);
    for (int i = 0; i < steps; ++i) {
        step({{x, y}});
        opt.step();
    }
}

std::vector<double> values(const Tensor& t) { return {t.value().begin(), t.value().end()}; }

// Accuracy that treats an output too close to 0.5 to mean anything
// (|logit| < 0.01) as a coin flip, worth half a correct answer.
double accuracy_with_coin_flips(const std::vector<double>& logits, const Index& labels) {
    double correct = 0;
    for (std::size_t i = 0; i < logits.size(); ++i)
        correct += std::abs(logits[i]) < 0.01 ? 0.5 : double((logits[i] > 0) == (labels[i] == 1));
    return correct / double(logits.size());
}

double spread(const std::vector<double>& v) {  // max - min
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return *hi - *lo;
}

int program_main(int argc, char** argv) {
    std::uint64_t seed = 0;
    std::string out_dir = "out/translation_invariance";
    bool quick = false, eager = false;
    CLI::App app{"Translation invariance: a linear unit cannot tell two shifted patterns apart, an MLP can"};
    app.add_option("--seed", seed, "Random seed (initialisation)")->capture_default_str();
    app.add_option("--out-dir", out_dir, "Where the pictures go")->capture_default_str();
    app.add_flag("--quick", quick, "Smoke test: fewer training steps");
    app.add_flag("--eager", eager, program::kEagerHelp);
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(out_dir);  // refused now, not after the work

    set_num_threads(1);  // small matrices: one BLAS thread is fastest, and smoke tests run side by side
    Generator gen(seed);
    const auto [x, y] = all_shifts();
    Index labels;
    for (float v : y.value()) labels.push_back(std::int64_t(v));
    const int steps = quick ? 1500 : 5000;
    std::printf("A = %s, B = %s (4 black pixels each), all 16 cyclic shifts of each: 32 examples\n\n", kA, kB);

    // The linear unit, trained by gradient descent from random weights.
    nn::Linear<float> linear(kPixels, 1, true, gen);
    const auto w_start = values(linear.weight);
    nn::SGD<float> linear_opt(linear.parameters(), 0.5);
    train(linear, linear_opt, x, y, steps, eager);
    const auto w_end = values(linear.weight);
    const auto linear_logits = values(linear(x));
    const double linear_sign_acc = nn::accuracy(linear(x), labels);
    const double linear_acc = accuracy_with_coin_flips(linear_logits, labels);
    const double w_spread = spread(w_end);
    std::printf("linear unit (logistic regression), %d gradient steps from random weights:\n", steps);
    std::printf("  weight spread (max - min): %.3f at the start, %.2e at the end: all weights equal\n",
                spread(w_start), w_spread);
    std::printf("  logits: %.2e .. %.2e over all 32 inputs, the same for A and B\n",
                *std::min_element(linear_logits.begin(), linear_logits.end()),
                *std::max_element(linear_logits.begin(), linear_logits.end()));
    std::printf("  With equal weights the unit only counts black pixels, and A and B both have 4, so\n"
                "  every input gets probability %.3f. Taking the sign of those ~0 logits gives %.1f%%, but\n"
                "  that is rounding noise: as a classifier it flips a coin, accuracy %.1f%% (chance).\n\n",
                1 / (1 + std::exp(-linear_logits[0])), 100 * linear_sign_acc, 100 * linear_acc);

    // The MLP: 16 -> 20 tanh units -> 1.
    nn::MLP<float> mlp({kPixels, 20, 1}, "tanh", nn::Head::identity, gen);
    nn::Adam<float> mlp_opt(mlp.parameters(), 0.01);
    train(mlp, mlp_opt, x, y, steps / 2, eager);
    const auto mlp_logits = values(mlp(x));
    const double mlp_acc = nn::accuracy(mlp(x), labels);
    std::printf("MLP 16-20-1 (tanh), %d Adam steps: accuracy %.1f%%\n\n", steps / 2, 100 * mlp_acc);

    // Pictures: the data, the linear weights flattening out, and the
    // outputs of both models for every input.
    const auto dir = std::filesystem::path(out_dir);
    std::filesystem::create_directories(dir);
    plot::Sheet sheet;
    sheet.title = "Translation invariance: A = " + std::string(kA) + " vs B = " + kB + ", all shifts";
    sheet.columns = 3;
    sheet.cell_width = 460;
    sheet.cell_height = 380;
    std::vector<float> px;
    for (float v : x.value()) px.push_back(1 - v);  // black = 1
    sheet.add(plot::Image(int(kPixels), int(2 * kPixels), px), "rows 1-16: shifts of A, rows 17-32: of B");

    std::vector<double> pixel(kPixels), example(2 * kPixels);
    for (std::size_t i = 0; i < kPixels; ++i) pixel[i] = double(i);
    for (std::size_t i = 0; i < 2 * kPixels; ++i) example[i] = double(i + 1);
    plot::Chart weights;
    weights.title = "Linear unit: weight per pixel";
    weights.xlabel = "pixel";
    weights.ylabel = "weight";
    weights.add("random start", pixel, w_start, plot::Style::Dashed)
        .add("after training", pixel, w_end, plot::Style::LineMarkers);
    sheet.add(weights, "training makes all weights equal");

    plot::Chart outputs;
    outputs.title = "Output (logit) per example";
    outputs.xlabel = "example (1-16: A, 17-32: B)";
    outputs.ylabel = "logit";
    outputs.add("linear", example, linear_logits, plot::Style::LineMarkers)
        .add("MLP", example, mlp_logits, plot::Style::LineMarkers);
    sheet.add(outputs, "linear: one value for all; MLP: A < 0 < B");
    plot::save_sheet(sheet, (dir / "translation_invariance.png").string());
    std::printf("wrote %s\n\n", (dir / "translation_invariance.png").c_str());

    const bool linear_ok = linear_acc <= 0.75 && w_spread < 1e-3, mlp_ok = mlp_acc >= 0.95;
    std::printf("%s: the linear unit ends with equal weights (spread %.1e < 1e-3) and stays at chance "
                "(%.1f%% <= 75%%)\n",
                linear_ok ? "CLAIM OK" : "CLAIM FAILED", w_spread, 100 * linear_acc);
    std::printf("%s: the MLP separates A from B under every shift (%.1f%% >= 95%%)\n",
                mlp_ok ? "CLAIM OK" : "CLAIM FAILED", 100 * mlp_acc);
    return linear_ok && mlp_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
