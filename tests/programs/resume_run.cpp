// The main job's training loop (examples/common/training.hpp) on synthetic
// data, for tests/test_resume.cpp: the test runs it whole, stopped after an
// epoch, and killed with SIGKILL mid-epoch, resumes the interrupted runs
// from their checkpoints and compares the final parameters bit for bit.
//
//   tapegrad_resume_run [--epochs N] [--checkpoint PATH] [--checkpoint-every N]
//                       [--resume PATH] [--stop-after-epoch N] [--kill-at-step N]
//                       [--seed N] [--lr X] [--batch-size N] [--optimizer NAME]
//                       [--dropout X] [--final PATH] [--eager 1] [--losses PATH]
//
// --kill-at-step raises SIGKILL right after that optimiser step: no cleanup
// and no flushing, as a killed job gets. --final saves the model and the
// optimiser state at the end. --eager 1 builds the graph every step instead
// of replaying the compiled step; --losses writes the epoch's running mean loss after every step, one a line.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <tapegrad/tapegrad.hpp>

#include "training.hpp"

using namespace tapegrad;

int main(int argc, char** argv) {
    training::Options o;
    o.epochs = 4;
    o.batch_size = 32;
    o.hidden = {48, 24};
    o.lr = 3e-3;
    std::size_t kill_at_step = 0;
    std::string final_path, losses_path;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        const auto number = [&] { return static_cast<std::size_t>(std::stoull(value)); };
        if (flag == "--epochs") o.epochs = number();
        else if (flag == "--checkpoint") o.checkpoint = value;
        else if (flag == "--checkpoint-every") o.checkpoint_every = number();
        else if (flag == "--resume") o.resume = value;
        else if (flag == "--stop-after-epoch") o.stop_after_epoch = number();
        else if (flag == "--kill-at-step") kill_at_step = number();
        else if (flag == "--seed") o.seed = number();
        else if (flag == "--lr") o.lr = std::stod(value);
        else if (flag == "--batch-size") o.batch_size = number();
        else if (flag == "--optimizer") o.optimizer = value;
        else if (flag == "--dropout") o.dropout = std::stod(value);
        else if (flag == "--final") final_path = value;
        else if (flag == "--eager") o.eager = value == "1";
        else if (flag == "--losses") losses_path = value;
        else {
            std::fprintf(stderr, "tapegrad_resume_run: unknown option %s\n", flag.c_str());
            return 2;
        }
    }
    try {
        set_num_threads(1);
        nn::manual_seed(o.seed);
        Generator gen(o.seed);
        // 1,200 rows: 38 batches of 32, the last one short.
        const auto train = training::synthetic_classification(1200, 32, 5, gen);
        training::Run run(o, train, gen);
        training::Hooks hooks;
        std::FILE* losses = losses_path.empty() ? nullptr : std::fopen(losses_path.c_str(), "w");
        hooks.on_step = [&](std::size_t, std::size_t, std::size_t, double mean) {
            if (losses) std::fprintf(losses, "%.9g\n", mean);
            if (kill_at_step && run.steps_done() == kill_at_step) std::raise(SIGKILL);
        };
        hooks.on_epoch = [](const training::EpochReport& r) {
            std::printf("epoch %zu: loss %.6f\n", r.epoch, r.train_loss);
            return 0.0;
        };
        run.train(hooks);
        std::printf("compiled programs: %zu\n", run.compiled_programs());
        if (losses) std::fclose(losses);
        if (!final_path.empty()) nn::save_checkpoint(final_path, run.model(), run.optimizer());
    } catch (const Error& e) {
        std::fprintf(stderr, "tapegrad_resume_run: %s\n", e.what());
        return 1;
    }
    return 0;
}
