#include "training.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

using namespace tapegrad;

namespace training {

namespace {

std::unique_ptr<nn::Optimizer<float>> make_optimizer(const Options& o, std::vector<Tensor> params) {
    if (o.optimizer == "sgd") return std::make_unique<nn::SGD<float>>(params, o.lr, 0.9, o.weight_decay, true);
    if (o.optimizer == "adam") return std::make_unique<nn::Adam<float>>(params, o.lr, 0.9, 0.999, 1e-8, o.weight_decay);
    return std::make_unique<nn::AdamW<float>>(params, o.lr, 0.9, 0.999, 1e-8, o.weight_decay);
}

// An MLP with dropout after each hidden activation. Each rank draws its own
// dropout masks (rank 0 those of a single-process run).
std::shared_ptr<nn::Sequential<float>> build_model(const Options& o, std::size_t in, std::size_t out,
                                                    Generator& gen, int rank) {
    auto model = std::make_shared<nn::Sequential<float>>();
    std::size_t width = in;
    for (auto h : o.hidden) {
        model->emplace<nn::Linear<float>>(width, h, true, gen);
        model->push_back(nn::make_activation<float>(o.activation));
        if (o.dropout > 0)
            model->emplace<nn::Dropout<float>>(static_cast<float>(o.dropout),
                                               gen.engine()() ^ (0x9e3779b97f4a7c15ull * std::uint64_t(rank)));
        width = h;
    }
    model->emplace<nn::Linear<float>>(width, out, true, gen);
    return model;
}

// The shortest text that reads back as exactly `v` (0.003, not 0.0030000000000000001).
std::string exact(double v) {
    char text[32];
    for (int digits = 15; digits <= 17; ++digits) {
        std::snprintf(text, sizeof text, "%.*g", digits, v);
        if (std::strtod(text, nullptr) == v) break;
    }
    return text;
}

// What defines the run: resuming with another value of any would not
// continue it. Not the checkpoint paths, nor stop_after_epoch.
std::vector<nn::RunOption> run_options(const Options& o, std::size_t rows) {
    std::string hidden;
    for (auto h : o.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
    return {{"epochs", std::to_string(o.epochs),
             "the learning-rate schedule anneals to 0 over the epochs the run started with; a longer run is a "
             "new run"},
            {"batch_size", std::to_string(o.batch_size), ""},
            {"lr", exact(o.lr), ""},
            {"weight_decay", exact(o.weight_decay), ""},
            {"optimizer", o.optimizer, ""},
            {"dropout", exact(o.dropout), ""},
            {"seed", std::to_string(o.seed), ""},
            {"hidden", hidden, ""},
            {"activation", o.activation, ""},
            {"rows", std::to_string(rows), "the training set"}};
}

std::string rank_prefix(int rank) { return "rank" + std::to_string(rank) + "/"; }

// A double as its 8 bytes and back (exact, unlike text).
std::string bytes_of(double v) { return std::string(reinterpret_cast<const char*>(&v), sizeof v); }
double double_of(const std::string& bytes) {
    double v = 0;
    std::memcpy(&v, bytes.data(), std::min(bytes.size(), sizeof v));
    return v;
}

}  // namespace

Run::Run(const Options& options, const data::Dataset& train, Generator& gen, const distributed::Session* session)
    : o_(options),
      gen_(gen),
      session_(session),
      rank_(session ? session->rank() : 0),
      ranks_(session ? session->size() : 1),
      rows_(train.size()),
      model_(build_model(o_, train.dim(), train.classes, gen, rank_)),
      optimizer_(make_optimizer(o_, model_->parameters())),
      schedule_(std::make_unique<nn::CosineLR>(*optimizer_, o_.epochs)),
      batches_(std::make_unique<distributed::ShardedBatches>(train, o_.batch_size, gen, rank_, ranks_)),
      batch_{{Tensor()}, {Index()}},
      train_step_(
          [this](const compile::StepInputs<float>& in) {
              model_->zero_grad();
              auto loss = nn::cross_entropy(model_->forward(in.tensors[0]), in.indices[0]);
              loss.backward();
              return std::vector<Tensor>{loss};
          },
          o_.eager, [this] { return model_->named_parameters(); }) {
    if (ranks_ > 1) {
        distributed::broadcast(model_->parameters());  // one starting point for every replica
        // Eager: buckets start all-reducing during backward. Compiled: after
        // the replay (a captured step refuses the hooks that would start them).
        averager_ = std::make_unique<distributed::GradientAverager<float>>(
            model_->parameters(), std::size_t(1) << 20, /*during_backward=*/o_.eager);
    }
}

std::vector<std::pair<std::string, Generator*>> Run::own_generators() {
    auto all = model_->named_generators();
    for (auto& entry : all) entry.first = "model/" + entry.first;
    // `gen_` initialised the model and shuffles the data (the same on every
    // rank); nothing in the loop draws from the default generator, but user
    // layers might.
    all.emplace_back("main", &gen_);
    all.emplace_back("default", &default_generator());
    return all;
}

Run::Snapshot Run::snapshot() {
    Snapshot snap;
    auto& s = snap.state;
    s.module = model_.get();
    s.optimizer = optimizer_.get();
    s.schedule = schedule_.get();
    s.batches = &batches_->global();  // the data order, the same on every rank
    s.generators = {{"main", &gen_}, {"default", &default_generator()}};  // the model's are always included
    s.epoch = epoch_;
    s.step = step_;
    s.world_size = std::size_t(ranks_);
    s.options = run_options(o_, rows_);
    s.series = {{"train_loss", losses_}, {"validation_score", scores_}, {"epoch_progress", {epoch_loss_sum_, double(epoch_steps_)}}};
    // Placeholders for the other ranks' parts, filled by save() or load_run.
    for (int r = 1; r < ranks_; ++r) {
        for (const auto& [name, g] : own_generators()) {
            snap.others.emplace_back();
            s.generators.emplace_back(rank_prefix(r) + name, &snap.others.back());
        }
        s.series.push_back({rank_prefix(r) + "epoch_progress", {0.0, 0.0}});
    }
    return snap;
}

void Run::save() {
    auto snap = snapshot();
    if (ranks_ > 1) {  // collective: every rank sends its part to rank 0
        const auto own = own_generators();
        std::vector<std::vector<std::string>> states;  // per generator, per rank
        for (const auto& [name, g] : own) states.push_back(session_->gather(g->state()));
        const auto sums = session_->gather(bytes_of(epoch_loss_sum_));
        if (rank_ != 0) return;
        std::size_t k = 0;
        for (int r = 1; r < ranks_; ++r) {
            for (std::size_t i = 0; i < own.size(); ++i) snap.others[k++].set_state(states[i][std::size_t(r)]);
            for (auto& [name, values] : snap.state.series)
                if (name == rank_prefix(r) + "epoch_progress")
                    values = {double_of(sums[std::size_t(r)]), double(epoch_steps_)};
        }
    }
    if (rank_ != 0) return;  // the replicas are equal: rank 0 writes for all
    const std::filesystem::path path(o_.checkpoint);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    nn::save_run(o_.checkpoint, snap.state);
}

void Run::resume() {
    auto snap = snapshot();
    auto& s = snap.state;
    nn::load_run(o_.resume, s);  // refuses a file of another number of ranks or other options
    epoch_ = s.epoch;
    step_ = s.step;
    const std::string progress = rank_ > 0 ? rank_prefix(rank_) + "epoch_progress" : "epoch_progress";
    for (auto& [name, values] : s.series) {
        if (name == "train_loss") losses_ = values;
        if (name == "validation_score") scores_ = values;
        if (name == progress && values.size() == 2) {
            epoch_loss_sum_ = values[0];
            epoch_steps_ = static_cast<std::size_t>(values[1]);
        }
    }
    // load_run gave every rank rank 0's generators; the others take their own.
    if (rank_ > 0) {
        const auto own = own_generators();
        const std::size_t first = std::size_t(rank_ - 1) * own.size();
        for (std::size_t i = 0; i < own.size(); ++i) *own[i].second = snap.others[first + i];
    }
    // Ranks that read different files (a stale copy on one machine) would
    // wait for each other's steps forever: refuse, naming the first that differs.
    if (ranks_ > 1)
        distributed::check_replicas(*model_, "after resuming from '" + o_.resume + "'",
                                    {{"step", step_}, {"epoch", epoch_}});
}

void Run::train(const Hooks& hooks) {
    if (ranks_ == 1) {
        if (!o_.resume.empty()) resume();
        return train_epochs(hooks);
    }
    try {
        doing_ = "while resuming";
        if (!o_.resume.empty()) resume();
        train_epochs(hooks);
    } catch (const std::exception& e) {
        // The other ranks cannot go on without this one (they wait in its
        // collectives): end the job here, naming this rank, where it was and
        // the error, while the averager's buffers are still alive.
        session_->abort(1, "error " + doing_ + ": " + e.what());
    }
}

void Run::train_epochs(const Hooks& hooks) {
    const std::size_t last = o_.stop_after_epoch ? std::min(o_.stop_after_epoch, o_.epochs) : o_.epochs;
    while (epoch_ < last) {
        const std::size_t epoch = epoch_ + 1;
        while (batches_->next(batch_.tensors[0], batch_.indices[0])) {
            if (ranks_ > 1) doing_ = "in step " + std::to_string(step_ + 1);
            if (averager_) averager_->set_weight(batches_->weight());
            const Tensor loss = train_step_(batch_).front();  // .grad = this rank's gradient
            if (averager_) averager_->finish();  // .grad = the gradient of the global batch
            optimizer_->step();
            epoch_loss_sum_ += loss.item() * batches_->weight();
            ++epoch_steps_;
            ++step_;
            if (ranks_ > 1) doing_ = "after step " + std::to_string(step_);  // in the hook or the save
            if (hooks.on_step)
                hooks.on_step(epoch, epoch_steps_, batches_->batches_per_epoch(),
                              epoch_loss_sum_ * ranks_ / epoch_steps_);  // this rank's rows
            if (!o_.checkpoint.empty() && o_.checkpoint_every && step_ % o_.checkpoint_every == 0) save();
        }
        // next() has drawn the next epoch's order already: the checkpoint
        // below holds it with the generator state after the draw.
        if (ranks_ > 1) {
            doing_ = "at the end of epoch " + std::to_string(epoch);
            distributed::check_replicas(*model_, "after epoch " + std::to_string(epoch));
            epoch_loss_sum_ = session_->sum(epoch_loss_sum_);  // all ranks' rows
        }
        const EpochReport report{epoch, epoch_loss_sum_ / std::max<std::size_t>(epoch_steps_, 1), optimizer_->lr()};
        schedule_->step();
        scores_.push_back(hooks.on_epoch ? hooks.on_epoch(report) : 0.0);
        losses_.push_back(report.train_loss);
        epoch_ = epoch;
        epoch_loss_sum_ = 0;
        epoch_steps_ = 0;
        if (!o_.checkpoint.empty()) save();
    }
}

data::Dataset synthetic_classification(std::size_t n, std::size_t dim, std::size_t classes, Generator& gen) {
    if (classes == 0) throw ValueError("synthetic_classification: classes must be at least 1");
    data::Dataset d;
    d.classes = classes;
    const auto centres = Tensor::randn({classes, dim}, gen).value();
    const auto noise = Tensor::randn({n, dim}, gen).value();
    d.features = Array<float>::from_shape({n, dim});
    d.labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = static_cast<std::size_t>(gen.engine()() % classes);
        d.labels[i] = static_cast<std::int64_t>(c);
        for (std::size_t j = 0; j < dim; ++j) d.features(i, j) = centres(c, j) + 0.8f * noise(i, j);
    }
    return d;
}

}  // namespace training
