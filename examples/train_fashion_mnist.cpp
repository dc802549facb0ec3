// The main job: an MLP trained on Fashion-MNIST with sensible defaults.
//
//   build/examples/train_fashion_mnist            # defaults, about a minute on 2 cores
//   build/examples/train_fashion_mnist --help     # every option
//
// Prints a progress bar per epoch, the training loss and validation
// accuracy after each epoch, then the test accuracy and a confusion matrix;
// writes a checkpoint (numpy-readable .npz), the training curves and the
// confusion matrix as PNG images. After every epoch (and every
// --checkpoint-every N steps) it rewrites the run checkpoint
// <out-dir>/checkpoint.npz; --resume <that file> continues a stopped or
// killed run with the same options, bit for bit. Each training step replays
// a compiled program (docs/compile.md); --eager builds the graph every step.
//
//   mpirun -np 2 build/examples/train_fashion_mnist   # data-parallel over 2 processes
//
// Under mpirun every rank trains a replica on its slice of each global batch
// (--batch-size is the global batch) and the gradients are averaged
// (docs/distributed.md); only rank 0 prints and writes files.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/distributed/distributed.hpp>
#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/training.hpp"
#include "common/program.hpp"

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> kClassNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// The training options (model, optimiser, schedule, checkpoints) live in
// training::Options, shared with the resume test.
struct Options : training::Options {
    int threads = 1;  // robust on a shared machine; 2 is faster on an idle one
    std::string data_dir = data::fashion_mnist_dir();
    std::string out_dir = "out/fashion_mnist";
    std::size_t limit = 0;  // use only the first N training images (quick runs)
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One line redrawn in place: [#####.....] step/total, steps/s, running loss.
// Redrawn only on a terminal; in a log just the finished line appears.
void progress(std::size_t epoch, std::size_t epochs, std::size_t step, std::size_t total, double rate,
              double loss, bool done) {
    static const bool terminal = isatty(fileno(stderr));
    if (!done && !terminal) return;
    const int width = 30;
    int filled = static_cast<int>(width * step / std::max<std::size_t>(total, 1));
    std::fprintf(stderr, "\repoch %2zu/%zu [%s%s] %4zu/%zu  %6.1f steps/s  loss %.4f%s", epoch, epochs,
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), step, total, rate,
                 loss, done ? "\n" : "");
    std::fflush(stderr);
}

// Accuracy and predictions on a whole dataset, in evaluation mode.
std::pair<double, Index> evaluate(nn::Module& model, const data::Dataset& d) {
    NoGradGuard no_grad;
    model.eval();
    Generator unused(0);
    data::BatchIterator batches(d, 1000, unused, /*shuffle=*/false);
    Tensor x;
    Index y, predicted;
    std::size_t correct = 0;
    while (batches.next(x, y)) {
        auto p = nn::predict_classes(model(x));
        for (std::size_t i = 0; i < y.size(); ++i) correct += p[i] == y[i];
        predicted.insert(predicted.end(), p.begin(), p.end());
    }
    model.train();
    return {double(correct) / double(d.size()), predicted};
}

void print_confusion(const xt::xarray<std::int64_t>& cm) {
    std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%12s", "");
    for (std::size_t j = 0; j < cm.shape()[1]; ++j) std::printf("%6zu", j);
    std::printf("\n");
    for (std::size_t i = 0; i < cm.shape()[0]; ++i) {
        std::printf("%2zu %-9.9s", i, kClassNames[i % kClassNames.size()].c_str());
        for (std::size_t j = 0; j < cm.shape()[1]; ++j) std::printf("%6lld", static_cast<long long>(cm(i, j)));
        std::printf("\n");
    }
}

int train_job(int argc, char** argv, const distributed::Session& session) {
    if (!session.is_root()) std::freopen("/dev/null", "w", stdout);  // rank 0 reports for all
    Options o;
    CLI::App app{"Train an MLP on Fashion-MNIST with tapegrad"};
    app.add_option("--epochs", o.epochs, "Training epochs")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-size", o.batch_size, "Mini-batch size over all ranks (1 = pure SGD)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--lr", o.lr, "Learning rate (cosine-annealed to 0)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--weight-decay", o.weight_decay, "Weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--hidden", o.hidden, "Hidden layer sizes, e.g. --hidden 512 256")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--activation", o.activation, "Hidden activation (relu, gelu, tanh, sigmoid, silu, elu, ...)")
        ->capture_default_str();
    app.add_option("--optimizer", o.optimizer, "sgd (Nesterov momentum 0.9), adam or adamw")
        ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
        ->capture_default_str();
    app.add_option("--dropout", o.dropout, "Dropout after each hidden layer")->check(CLI::Range(0.0, 0.95))
        ->capture_default_str();
    app.add_option("--seed", o.seed, "Random seed (same seed, same run)")->capture_default_str();
    app.add_option("--threads", o.threads, "BLAS threads")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--data-dir", o.data_dir, "Folder with the IDX files")->capture_default_str();
    app.add_option("--out-dir", o.out_dir, "Where checkpoint and pictures go")->capture_default_str();
    app.add_option("--limit", o.limit, "Train on the first N images only (0 = all)")->capture_default_str();
    app.add_option("--resume", o.resume,
                   "Continue the run saved in this checkpoint (e.g. out/fashion_mnist/checkpoint.npz) "
                   "with the same options");
    app.add_flag("--eager", o.eager, program::kEagerHelp);
    app.add_option("--checkpoint-every", o.checkpoint_every,
                   "Also write the run checkpoint every N steps (it is written after every epoch)")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(o.out_dir);  // refused now, not after the work
    program::require_dir(o.data_dir, "--data-dir");
    (void)nn::make_activation<float>(o.activation);  // an unknown name is refused before the data loads

    const auto started = Clock::now();
    set_num_threads(o.threads);
    nn::manual_seed(o.seed);
    Generator gen(o.seed);

    auto train_all = data::load_mnist(o.data_dir, data::Split::train);
    auto test = data::load_mnist(o.data_dir, data::Split::test);
    auto normalizer = data::Normalizer::fit(train_all);
    normalizer.apply(train_all);
    normalizer.apply(test);
    auto [train, validation] = data::train_validation_split(train_all, 0.2, gen);
    if (o.limit) train = data::head(train, o.limit);
    std::printf("Fashion-MNIST: %zu training, %zu validation, %zu test images (%.1f s to load)\n", train.size(),
                validation.size(), test.size(), seconds_since(started));

    o.checkpoint = (std::filesystem::path(o.out_dir) / "checkpoint.npz").string();
    training::Run run(o, train, gen, &session);
    if (session.size() > 1)
        std::printf("data-parallel over %d ranks: global batch %zu, about %zu rows per rank\n", session.size(),
                    o.batch_size, o.batch_size / std::size_t(session.size()));
    auto& model = run.model();
    std::cout << model << "\n";
    std::printf("training steps: %s\n", o.eager ? "eager (the graph is built every step)"
                                                : "compiled (captured once per batch size, then replayed; --eager to build the graph every step)");
    auto epoch_start = Clock::now(), last_draw = epoch_start;
    training::Hooks hooks;
    hooks.on_step = [&](std::size_t epoch, std::size_t step, std::size_t steps, double loss) {
        if (!session.is_root()) return;
        if (std::chrono::duration<double>(Clock::now() - last_draw).count() > 0.2 || step == steps) {
            last_draw = Clock::now();
            progress(epoch, o.epochs, step, steps, step / seconds_since(epoch_start), loss, step == steps);
        }
    };
    hooks.on_epoch = [&](const training::EpochReport& r) {
        auto [val_acc, unused] = evaluate(model, validation);
        std::printf("epoch %2zu: train loss %.4f  validation accuracy %.2f%%  (%.1f s, lr %.2e)\n", r.epoch,
                    r.train_loss, 100 * val_acc, seconds_since(epoch_start), r.lr);
        std::fflush(stdout);
        epoch_start = last_draw = Clock::now();
        return val_acc;
    };
    if (!o.resume.empty()) std::printf("resuming from %s\n", o.resume.c_str());
    run.train(hooks);
    std::vector<double> epochs_axis, train_losses = run.train_losses(), val_accuracies = run.validation_scores();
    for (std::size_t e = 1; e <= train_losses.size(); ++e) epochs_axis.push_back(double(e));

    auto [test_acc, predicted] = evaluate(model, test);
    auto cm = nn::confusion_matrix(predicted, test.labels, test.classes);
    std::printf("\ntest accuracy: %.2f%%  (%zu test images; total time %.1f s)\n", 100 * test_acc, test.size(),
                seconds_since(started));
    print_confusion(cm);
    if (!session.is_root()) return 0;

    std::filesystem::create_directories(o.out_dir);
    const auto out = std::filesystem::path(o.out_dir);
    nn::save_checkpoint((out / "model.npz").string(), model, run.optimizer());

    plot::Chart loss_chart;
    loss_chart.title = "Training loss";
    loss_chart.xlabel = "epoch";
    loss_chart.ylabel = "cross-entropy";
    loss_chart.add("training loss", epochs_axis, train_losses, plot::Style::LineMarkers);
    plot::Chart acc_chart;
    acc_chart.title = "Validation accuracy";
    acc_chart.xlabel = "epoch";
    acc_chart.ylabel = "accuracy";
    acc_chart.add("validation accuracy", epochs_axis, val_accuracies, plot::Style::LineMarkers);
    plot::Sheet curves;
    curves.title = "Fashion-MNIST MLP: test accuracy " + std::to_string(100 * test_acc).substr(0, 5) + "%";
    curves.columns = 2;
    curves.add(loss_chart).add(acc_chart);
    plot::save_sheet(curves, (out / "training_curve.png").string());

    plot::Confusion confusion;
    confusion.title = "Fashion-MNIST test set";
    confusion.class_names = kClassNames;
    for (std::size_t i = 0; i < cm.shape()[0]; ++i) {
        confusion.counts.emplace_back();
        for (std::size_t j = 0; j < cm.shape()[1]; ++j) confusion.counts.back().push_back(double(cm(i, j)));
    }
    plot::save_confusion(confusion, (out / "confusion_matrix.png").string());
    std::printf("\nwrote %s, %s and %s\n", (out / "model.npz").c_str(), (out / "training_curve.png").c_str(),
                (out / "confusion_matrix.png").c_str());
    return 0;
}

// One process, or one rank of an mpirun job. A rank that fails ends the
// whole job with its message: the others would wait for it forever.
int program_main(int argc, char** argv) {
    distributed::Session session(argc, argv);
    try {
        return train_job(argc, argv, session);
    } catch (const std::exception& e) {
        if (session.size() > 1) session.abort(1, std::string("error: ") + e.what());
        throw;
    }
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }
