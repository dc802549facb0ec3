// The training loop of the main job (examples/train_fashion_mnist.cpp),
// shared with the test that stops, kills and resumes it
// (tests/programs/resume_run.cpp): an MLP classifier trained on shuffled
// mini-batches, with run checkpoints from which a stopped or killed run
// continues bit for bit (nn::save_run / nn::load_run).
//
//   training::Run run(options, train_set, gen);
//   run.train({on_step, on_epoch});
//
// Given a distributed::Session of several ranks (mpirun), every rank trains a
// replica on its slice of each global batch of options.batch_size rows and
// the gradients are averaged (docs/distributed.md). Saving a checkpoint is
// collective: rank 0 gathers every rank's generators (each rank draws its own
// dropout masks) and progress and writes one file, from which every rank
// resumes its own part; it resumes only with the same number of ranks.
//
// Each step replays a compiled program (core/compile/capture.hpp): captured
// at the first batch, and again for the short last batch of an epoch (one
// program per batch size); Options::eager builds the graph every step
// instead. Both give the same numbers up to float rounding. On several
// ranks the replayed step's gradients are averaged after it (the eager step
// averages them during backward, through grad-ready hooks that capture
// refuses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tapegrad/nn/distributed/distributed.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/nn/data/dataset.hpp>

#include "training_step.hpp"

namespace training {

struct Options {
    std::size_t epochs = 20;
    std::size_t batch_size = 128;
    double lr = 1e-3;  // cosine-annealed to 0 over `epochs`
    double weight_decay = 1e-4;
    std::vector<std::size_t> hidden = {512, 256};
    std::string activation = "relu";
    std::string optimizer = "adamw";  // sgd (Nesterov momentum 0.9), adam or adamw
    double dropout = 0.2;             // after each hidden activation
    std::uint64_t seed = 0;
    std::string checkpoint;            // run checkpoint, rewritten after every epoch ("" = none)
    std::size_t checkpoint_every = 0;  // ... and every this many optimiser steps (0 = after epochs only)
    std::string resume;                // a run checkpoint to continue from ("" = start afresh)
    std::size_t stop_after_epoch = 0;  // end after this epoch, as an interrupted run would (0 = never)
    bool eager = false;                // build the graph every step instead of replaying a compiled step
};

struct EpochReport {
    std::size_t epoch;  // 1-based
    double train_loss;  // mean over the epoch's batches
    double lr;          // the epoch's learning rate
};

struct Hooks {
    // After every optimiser step: epoch, batches done in it, batches per
    // epoch, mean loss of the epoch so far.
    std::function<void(std::size_t, std::size_t, std::size_t, double)> on_step;
    // After every epoch (model in training mode); returns the validation
    // score the history records (0 if there is none).
    std::function<double(const EpochReport&)> on_epoch;
};

class Run {
public:
    // Builds the model, the optimiser, the schedule and the batch iterator,
    // drawing from `gen` in that order (so a seed fixes every number).
    // `train`, `gen` and `session` must outlive the run. Without a session
    // (or with one of one rank) the run is a single process.
    Run(const Options& options, const tapegrad::data::Dataset& train, tapegrad::Generator& gen,
        const tapegrad::distributed::Session* session = nullptr);

    // Continues from options.resume if set, then trains up to
    // options.epochs (or stop_after_epoch). Resuming refuses, before any
    // training, a checkpoint written with other options that define the run
    // (epochs, batch_size, lr, weight_decay, optimizer, dropout, seed,
    // hidden, activation, the number of rows): a ValueError naming the
    // option and both values. On several ranks the ranks then compare their
    // step, epoch and parameters (ranks resuming from different copies are
    // refused, naming the first rank that differs), and an error while
    // resuming or training (on any rank) ends the whole job: Session::abort,
    // naming the rank, where ("in step 7", "after step 7" for the hook or the
    // save, "at the end of epoch 2", "while resuming") and the error. Every
    // rank must call train() and reach the end of it, and of its Session: a
    // rank that returns early leaves the others waiting in a collective.
    void train(const Hooks& hooks);

    tapegrad::nn::Sequential<float>& model() { return *model_; }
    tapegrad::nn::Optimizer<float>& optimizer() { return *optimizer_; }
    std::size_t epochs_done() const { return epoch_; }
    std::size_t steps_done() const { return step_; }
    // Programs the compiled step has captured (one per batch size; 0 when eager).
    std::size_t compiled_programs() const { return train_step_.programs(); }
    // Per finished epoch, the resumed part included.
    const std::vector<double>& train_losses() const { return losses_; }
    const std::vector<double>& validation_scores() const { return scores_; }

private:
    // What every rank saves: rank 0's under the plain names; the generators
    // and progress of rank r > 0 under "rank<r>/", staged in `others`.
    struct Snapshot {
        tapegrad::nn::RunState<float> state;
        std::deque<tapegrad::Generator> others;
    };
    Snapshot snapshot();
    // This rank's generators: the model's (its dropout masks), the run's and
    // the default one.
    std::vector<std::pair<std::string, tapegrad::Generator*>> own_generators();
    void save();
    void resume();
    void train_epochs(const Hooks& hooks);

    Options o_;
    tapegrad::Generator& gen_;
    const tapegrad::distributed::Session* session_;
    int rank_, ranks_;  // before model_: the model's dropout seeds use rank_
    std::shared_ptr<tapegrad::nn::Sequential<float>> model_;
    std::unique_ptr<tapegrad::nn::Optimizer<float>> optimizer_;
    std::unique_ptr<tapegrad::nn::CosineLR> schedule_;
    std::unique_ptr<tapegrad::distributed::ShardedBatches> batches_;  // all of each batch on one rank
    std::unique_ptr<tapegrad::distributed::GradientAverager<float>> averager_;
    tapegrad::compile::StepInputs<float> batch_;  // this rank's rows and labels of the current batch
    program::TrainingStep<float> train_step_;     // zero_grad, forward, loss, backward
    std::size_t rows_;  // of the training set: a resumed run must have as many
    std::size_t epoch_ = 0, step_ = 0;
    double epoch_loss_sum_ = 0;  // of the epoch in progress, this rank's loss times its share of each batch
    std::size_t epoch_steps_ = 0;
    std::vector<double> losses_, scores_;
    std::string doing_;  // on several ranks, where an error happened: "in step 7", "after step 7"...
};

// Gaussian blobs: one random centre per class in `dim` dimensions and `n`
// points scattered around them. For tests and runs without a dataset.
tapegrad::data::Dataset synthetic_classification(std::size_t n, std::size_t dim, std::size_t classes,
                                                 tapegrad::Generator& gen);

}  // namespace training
