// The perceptron learning rule on Fashion-MNIST, then logistic regression.
//
//   build/examples/perceptron            # ~3 s (full data set); pictures in out/perceptron/
//   build/examples/perceptron --quick    # the smoke test: 4000 training images
//
// The perceptron (Rosenblatt) is y = 1 if w.x + b >= 0 else 0, trained
// without gradients: start from w = 0, go through the examples, and only on
// a mistake add (target - y) * x to the weights (the bias is a weight on an
// input fixed at 1). Stop after N epochs or when an epoch changes nothing.
//   - binary: one class against another;
//   - multi-class: one perceptron per class (this class vs the rest),
//     predicting the class with the highest pre-threshold value w.x + b.
// Logistic regression is the "soft" perceptron: the same linear scores,
// softmax probabilities, cross-entropy loss, trained by gradient descent.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"
#include "common/training_step.hpp"

using namespace tapegrad;

namespace {

const std::vector<std::string> kClassNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Options {
    std::uint64_t seed = 0;
    std::string out_dir = "out/perceptron";
    std::string data_dir = data::fashion_mnist_dir();
    bool quick = false;
    bool eager = false;  // build the graph every step instead of replaying a compiled step
    std::size_t epochs = 10;     // perceptron epochs (at most)
    std::size_t lr_epochs = 5;   // logistic regression epochs
    int binary_a = 7, binary_b = 9;  // Sneaker vs Ankle boot
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// K perceptrons over D inputs: weights [D, K] and biases [K], as tensors so
// that evaluation is one matmul. Training touches the values directly: the
// perceptron rule needs no gradients.
struct Perceptrons {
    Tensor w, b;
    Perceptrons(std::size_t inputs, std::size_t units)
        : w(Tensor::zeros({inputs, units})), b(Tensor::zeros({units})) {}

    Tensor scores(const Tensor& x) const { return matmul(x, w) + b; }

    // One pass over the data. targets(i, k) is 1 when example i is a positive
    // example for perceptron k. Returns the number of updates (mistakes).
    std::size_t epoch(const xt::xarray<float>& x, const std::function<bool(std::size_t, std::size_t)>& target) {
        const std::size_t n = x.shape()[0], d = x.shape()[1], k = b.size();
        // The perceptron rule writes the weights directly (no autodiff here).
        std::size_t updates = 0;
        w.modify([&](auto& wv) {
            b.modify([&](auto& bv) {
                float* wp = wv.data();
                float* bp = bv.data();
                std::vector<float> s(k);
                for (std::size_t i = 0; i < n; ++i) {
                    const float* xi = &x(i, 0);
                    for (std::size_t c = 0; c < k; ++c) s[c] = bp[c];
                    for (std::size_t j = 0; j < d; ++j)
                        if (xi[j] != 0)
                            for (std::size_t c = 0; c < k; ++c) s[c] += xi[j] * wp[j * k + c];
                    for (std::size_t c = 0; c < k; ++c) {
                        const float y = s[c] >= 0 ? 1.f : 0.f;
                        const float t = target(i, c) ? 1.f : 0.f;
                        if (y == t) continue;  // right: leave the weights alone
                        // theta_j += (t - y) * x_j, with x_bias = 1. No learning rate.
                        for (std::size_t j = 0; j < d; ++j) wp[j * k + c] += (t - y) * xi[j];
                        bp[c] += t - y;
                        ++updates;
                    }
                }
            });
        });
        return updates;
    }
};

// The rows of `d` whose label is a or b, relabelled 0 (a) and 1 (b).
data::Dataset two_classes(const data::Dataset& d, int a, int b) {
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < d.size(); ++i)
        if (d.labels[i] == a || d.labels[i] == b) rows.push_back(i);
    data::Dataset out;
    out.classes = 2;
    out.features = xt::zeros<float>({rows.size(), d.dim()});
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::copy_n(&d.features(rows[r], 0), d.dim(), &out.features(r, 0));
        out.labels.push_back(d.labels[rows[r]] == a ? 0 : 1);
    }
    return out;
}

Tensor as_tensor(const data::Dataset& d) { return Tensor(d.features); }

// A weight vector as a 28x28 picture: white positive, black negative,
// mid-grey zero.
plot::Image weight_image(const xt::xarray<float>& w, std::size_t column) {
    const std::size_t d = w.shape()[0];
    float scale = 1e-12f;
    for (std::size_t j = 0; j < d; ++j) scale = std::max(scale, std::abs(w(j, column)));
    std::vector<float> px(d);
    for (std::size_t j = 0; j < d; ++j) px[j] = 0.5f + 0.5f * w(j, column) / scale;
    return plot::Image(28, 28, px);
}

int run(const Options& o) {
    const auto started = std::chrono::steady_clock::now();
    data::Dataset train, test;
    try {
        train = data::load_mnist(o.data_dir, data::Split::train);
        test = data::load_mnist(o.data_dir, data::Split::test);
    } catch (const IoError& e) {
        std::printf("%s\n", e.what());
        if (o.quick) {
            std::printf("SKIPPED: Fashion-MNIST is not installed (see above)\n");
            return 0;
        }
        return 1;
    }
    if (o.quick) {
        train = data::head(train, 4000);
        test = data::head(test, 2000);
    }
    std::printf("Fashion-MNIST: %zu training and %zu test images, pixels in [0, 1] (%.1f s to load)\n\n",
                train.size(), test.size(), seconds_since(started));
    const Tensor x_test = as_tensor(test);

    // Binary: one perceptron, class b = positive.
    auto train2 = two_classes(train, o.binary_a, o.binary_b), test2 = two_classes(test, o.binary_a, o.binary_b);
    Perceptrons binary(train.dim(), 1);
    std::vector<double> binary_mistakes;
    std::printf("binary perceptron, %s (0) vs %s (1), %zu training images\n", kClassNames[o.binary_a].c_str(),
                kClassNames[o.binary_b].c_str(), train2.size());
    for (std::size_t e = 1; e <= o.epochs; ++e) {
        auto m = binary.epoch(train2.features, [&](std::size_t i, std::size_t) { return train2.labels[i] == 1; });
        binary_mistakes.push_back(double(m));
        std::printf("  epoch %2zu: %5zu mistakes\n", e, m);
        if (m == 0) {
            std::printf("  no mistake in a whole epoch: the weights stopped changing (the data are separable)\n");
            break;
        }
    }
    // A single column of scores is a binary logit for nn::accuracy: class 1 where > 0.
    // The perceptron fires at >= 0; exact zeros do not occur in practice.
    double binary_acc = nn::accuracy(binary.scores(as_tensor(test2)), test2.labels);
    std::printf("  test accuracy: %.2f%% (%zu test images)\n\n", 100 * binary_acc, test2.size());

    // Multi-class: ten perceptrons, each "my class vs the rest".
    Perceptrons multi(train.dim(), train.classes);
    std::vector<double> multi_mistakes, multi_acc_curve;
    std::printf("multi-class perceptron (10 units, one per class)\n");
    for (std::size_t e = 1; e <= o.epochs; ++e) {
        auto m = multi.epoch(train.features,
                             [&](std::size_t i, std::size_t c) { return train.labels[i] == std::int64_t(c); });
        double acc = nn::accuracy(multi.scores(x_test), test.labels);
        multi_mistakes.push_back(double(m));
        multi_acc_curve.push_back(acc);
        std::printf("  epoch %2zu: %6zu unit updates, test accuracy %.2f%%\n", e, m, 100 * acc);
        if (m == 0) break;
    }
    const double perceptron_acc = multi_acc_curve.back();
    if (multi_mistakes.back() > 0)
        std::printf("  The classes are not linearly separable, so the rule never settles: every epoch still\n"
                    "  makes updates and the test accuracy moves up and down with the last few of them.\n");

    // Logistic regression: the same linear scores, trained by gradient
    // descent on the cross-entropy of softmax(scores).
    Generator gen(o.seed);
    nn::Linear<float> logistic(train.dim(), train.classes, true, gen);
    nn::SGD<float> opt(logistic.parameters(), 0.1, 0.9);
    nn::CosineLR schedule(opt, o.lr_epochs);  // a small final step size settles the weights
    data::BatchIterator batches(train, 100, gen);
    std::vector<double> lr_acc_curve;
    std::printf("\nlogistic regression (softmax, cross-entropy, SGD momentum 0.9, lr 0.1 cosine-annealed, batch 100)\n");
    auto train_step = program::backward_step<float>(
        logistic.parameters(),
        [&](const compile::StepInputs<float>& in) {
            return std::vector<Tensor>{nn::cross_entropy(logistic(in.tensors[0]), in.indices[0])};
        },
        o.eager);
    compile::StepInputs<float> batch{{Tensor()}, {Index()}};
    for (std::size_t e = 1; e <= o.lr_epochs; ++e) {
        double loss_sum = 0;
        std::size_t steps = 0;
        while (batches.next(batch.tensors[0], batch.indices[0])) {
            loss_sum += train_step(batch).front().item();
            opt.step();
            ++steps;
        }
        schedule.step();
        NoGradGuard no_grad;
        lr_acc_curve.push_back(nn::accuracy(logistic(x_test), test.labels));
        std::printf("  epoch %2zu: loss %.4f, test accuracy %.2f%%\n", e, loss_sum / steps, 100 * lr_acc_curve.back());
    }
    const double logistic_acc = lr_acc_curve.back();

    std::printf("\ntest accuracy: binary perceptron %.2f%%, multi-class perceptron %.2f%%, "
                "logistic regression %.2f%% (chance: 10%%)\n",
                100 * binary_acc, 100 * perceptron_acc, 100 * logistic_acc);

    // Pictures: what each unit looks for, and the learning curves.
    std::filesystem::create_directories(o.out_dir);
    const auto dir = std::filesystem::path(o.out_dir);
    plot::Sheet weights;
    weights.title = "Weights per class: perceptrons (top), logistic regression (bottom); white +, black -";
    weights.columns = 10;
    weights.cell_width = 150;
    weights.cell_height = 170;
    for (std::size_t c = 0; c < 10; ++c) weights.add(weight_image(multi.w.value(), c), kClassNames[c]);
    for (std::size_t c = 0; c < 10; ++c) weights.add(weight_image(logistic.weight.value(), c), kClassNames[c]);
    plot::save_sheet(weights, (dir / "weights.png").string());

    auto epochs_axis = [](std::size_t n) {
        std::vector<double> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = double(i + 1);
        return v;
    };
    plot::Chart mistakes;
    mistakes.title = "Perceptron updates per epoch";
    mistakes.xlabel = "epoch";
    mistakes.ylabel = "updates";
    mistakes.log_y = true;
    mistakes.y_range = {{100.0, 1e6}};  // headroom for the legend
    mistakes.add("multi-class (10 units)", epochs_axis(multi_mistakes.size()), multi_mistakes, plot::Style::LineMarkers);
    mistakes.add(kClassNames[o.binary_a] + " vs " + kClassNames[o.binary_b], epochs_axis(binary_mistakes.size()),
                 binary_mistakes, plot::Style::LineMarkers);
    plot::Chart accuracy;
    accuracy.title = "Test accuracy";
    accuracy.xlabel = "epoch";
    accuracy.ylabel = "accuracy";
    accuracy.y_range = {{0.6, 0.95}};
    accuracy.add("multi-class perceptron", epochs_axis(multi_acc_curve.size()), multi_acc_curve,
                 plot::Style::LineMarkers);
    accuracy.add("logistic regression", epochs_axis(lr_acc_curve.size()), lr_acc_curve, plot::Style::LineMarkers);
    plot::Sheet curves;
    curves.columns = 2;
    curves.cell_width = 540;
    curves.cell_height = 360;
    curves.add(mistakes).add(accuracy);
    plot::save_sheet(curves, (dir / "curves.png").string());
    std::printf("wrote %s and %s (%.1f s in all)\n\n", (dir / "weights.png").c_str(), (dir / "curves.png").c_str(),
                seconds_since(started));

    // Measured: quick (4000/2000 images) 76.6% / 82.0-83.5% over seeds 0-5,
    // the full run 77.8% / 84.5%; the perceptron's last epoch varies by a few
    // points (see above), hence the margin.
    const double min_perceptron = 0.70, min_logistic = 0.80;
    bool ok = perceptron_acc > min_perceptron && logistic_acc > min_logistic && binary_acc > 0.8;
    std::printf("%s: multi-class perceptron %.1f%% > %.0f%%, logistic regression %.1f%% > %.0f%%, binary %.1f%% > 80%% "
                "(chance 10%% / 50%%)\n",
                ok ? "CLAIM OK" : "CLAIM FAILED", 100 * perceptron_acc, 100 * min_perceptron, 100 * logistic_acc,
                100 * min_logistic, 100 * binary_acc);
    return ok ? 0 : 1;
}

int program_main(int argc, char** argv) {
    Options o;
    CLI::App app{"The perceptron learning rule and logistic regression on Fashion-MNIST"};
    app.add_option("--seed", o.seed, "Random seed (logistic regression's init and batches)")->capture_default_str();
    app.add_option("--out-dir", o.out_dir, "Where the pictures go")->capture_default_str();
    app.add_option("--data-dir", o.data_dir, "Folder with the IDX files")->capture_default_str();
    app.add_option("--epochs", o.epochs, "Perceptron epochs (at most)")->capture_default_str();
    app.add_option("--lr-epochs", o.lr_epochs, "Logistic regression epochs")->capture_default_str();
    app.add_option("--class-a", o.binary_a, "Binary perceptron: class labelled 0")->check(CLI::Range(0, 9))
        ->capture_default_str();
    app.add_option("--class-b", o.binary_b, "Binary perceptron: class labelled 1")->check(CLI::Range(0, 9))
        ->capture_default_str();
    app.add_flag("--quick", o.quick, "Smoke test: 4000 training and 2000 test images");
    app.add_flag("--eager", o.eager, program::kEagerHelp);
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(o.out_dir);  // refused now, not after the work
    set_num_threads(1);  // the perceptron loop is single-threaded; the matmuls are small
    return run(o);
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
