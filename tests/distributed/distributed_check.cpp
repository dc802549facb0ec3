// The multi-process checks of tapegrad::distributed, run under mpirun by CTest
// (tests/distributed/CMakeLists.txt). One program, one mode per test:
//
//   equivalence  2 ranks x 64 rows = 1 rank x 128 rows: after 100 Adam steps
//                in float64 the parameters agree within 1e-10 relative; the
//                ranks agree bitwise after every step; every rank's rows are
//                its slice of the global batch; a changed replica is named;
//                uneven slices (3 ranks, without MPI) cover each batch once.
//   resume       the main job's loop (training::Run) on 2 ranks with
//                dropout, stopped after epoch 2 and resumed from the run
//                checkpoint, ends bitwise equal to an uninterrupted 2-rank run;
//                the eager loop (gradients averaged during backward) ends
//                bitwise equal to the compiled one (averaged after the replay).
//   run          one job of killed_run.sh: uninterrupted, SIGKILLed
//                mid-epoch, or resumed from the killed run's checkpoint.
//   kill         rank 1 is killed (SIGKILL) at step 20: mpirun must end the
//                job and name the rank (dying_rank.sh checks time and message).
//   error        rank 1 throws at step 20; main catches it and aborts the
//                job with "rank 1: error: ..." instead of leaving rank 0
//                waiting.
//   backward     rank 1's backward throws at step 20 after its first bucket
//                started its all-reduce; main catches it as above.
//   backward-skipped  the same, but the loop catches the error and goes on:
//                the averager sees the unfinished pass and ends the job.
//   mismatched   the ranks pass different lists: broadcast of tensors of
//                other shapes, GradientAverager and check_replicas over
//                other numbers of parameters are refused on every rank,
//                naming rank 1 and both shapes or counts.
//   stale DIR    rank 0 resumes from the checkpoint of epoch 1, rank 1 from
//                that of epoch 2 (a stale copy): the job must end, naming
//                the step that differs, not hang (run by dying_rank.sh).
//   hook         rank 1's on_step hook throws after step 5: the job ends
//                naming "after step 5" (run by dying_rank.sh).
//   changed DIR  both ranks resume with another batch size: refused before
//                any training, naming the option and both values.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <string>

#include <tapegrad/nn/distributed/distributed.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "training.hpp"

using namespace tapegrad;

namespace {

constexpr std::size_t kRows = 1280, kDim = 20, kClasses = 4, kGlobalBatch = 128, kSteps = 100;

// Labels from a fixed random linear rule: learnable, no download needed.
data::Dataset synthetic() {
    Generator gen(11);
    data::Dataset d;
    d.classes = kClasses;
    auto x = Tensor::randn({kRows, kDim}, gen);
    auto rule = Tensor::randn({kDim, kClasses}, gen);
    d.features = x.value();
    d.labels = nn::predict_classes(matmul(x, rule));
    return d;
}

std::shared_ptr<nn::Sequential<double>> make_model() {
    Generator gen(5);
    auto m = std::make_shared<nn::Sequential<double>>();
    m->emplace<nn::Linear<double>>(kDim, 32, true, gen);
    m->push_back(nn::make_activation<double>("tanh"));
    m->emplace<nn::Linear<double>>(32, 32, true, gen);
    m->push_back(nn::make_activation<double>("tanh"));
    m->emplace<nn::Linear<double>>(32, kClasses, true, gen);
    return m;
}

int fail(const distributed::Session& s, const std::string& what) {
    s.abort(1, "FAILED: " + what);
}

// Uneven slices, without MPI: 10 rows, global batches of 4 over 3 ranks give
// slices of 2, 1, 1 rows covering each batch once; the last 2 rows (fewer
// than the ranks) are dropped.
std::string sharding_rules() {
    auto d = data::head(synthetic(), 10);
    for (std::size_t i = 0; i < d.size(); ++i) d.labels[i] = std::int64_t(i);
    std::vector<Index> seen(3);
    std::size_t batches = 0;
    for (int r = 0; r < 3; ++r) {
        Generator gen(9);
        distributed::ShardedBatches shards(d, 4, gen, r, 3);
        Tensor x;
        Index y;
        std::size_t n = 0;
        while (shards.next(x, y)) {
            const std::size_t expect = r == 0 ? 2 : 1;
            if (y.size() != expect || x.shape()[0] != expect || shards.weight() != double(expect) / 4)
                return "rank " + std::to_string(r) + " got " + std::to_string(y.size()) + " rows, weight " +
                       std::to_string(shards.weight());
            seen[std::size_t(r)].insert(seen[std::size_t(r)].end(), y.begin(), y.end());
            ++n;
        }
        if (n != 2 || shards.batches_per_epoch() != 2) return "expected 2 batches per epoch, got " + std::to_string(n);
        batches = n;
    }
    Generator gen(9);
    data::BatchIterator all(d, 4, gen);
    Tensor x;
    Index y;
    for (std::size_t b = 0; b < batches; ++b) {
        all.next(x, y);
        const Index joined = {y[0], y[1], y[2], y[3]};
        const Index slices = {seen[0][2 * b], seen[0][2 * b + 1], seen[1][b], seen[2][b]};
        if (joined != slices) return "the slices of batch " + std::to_string(b) + " are not the global batch in order";
    }
    return "";
}

int equivalence(distributed::Session& s) {
    if (s.size() != 2) return fail(s, "the equivalence check needs exactly 2 ranks, got " + std::to_string(s.size()));
    if (auto problem = sharding_rules(); !problem.empty()) return fail(s, "sharding: " + problem);
    const auto d = synthetic();

    // The reference: one process, the whole global batch per step.
    auto reference = make_model();
    nn::Adam<double> ref_opt(reference->parameters(), 1e-2);
    Generator ref_gen(3);
    data::BatchIterator ref_batches(d, kGlobalBatch, ref_gen);

    // The same run split over the ranks. Rank 1 starts from other values:
    // the broadcast must replace them with rank 0's.
    auto model = make_model();
    if (s.rank() == 1)
        for (auto p : model->parameters()) p.modify([](Array<double>& v) { v *= 3.0; });
    distributed::broadcast(model->parameters());
    nn::Adam<double> opt(model->parameters(), 1e-2);
    Generator gen(3);
    distributed::ShardedBatches batches(d, kGlobalBatch, gen, s);
    distributed::GradientAverager<double> averager(model->parameters(), 4096);  // small: several buckets
    if (averager.bucket_count() < 2) return fail(s, "expected several buckets");

    Tensor gx, x;
    Index gy, y;
    for (std::size_t step = 1; step <= kSteps; ++step) {
        if (!ref_batches.next(gx, gy)) ref_batches.next(gx, gy);
        if (!batches.next(x, y)) batches.next(x, y);
        // This rank's rows are its half of the reference's global batch.
        const std::size_t begin = std::size_t(s.rank()) * 64;
        if (y != Index(gy.begin() + begin, gy.begin() + begin + 64) ||
            !std::equal(x.value().begin(), x.value().end(), gx.value().begin() + begin * kDim))
            return fail(s, "step " + std::to_string(step) + ": rank's rows are not its slice of the global batch");

        ref_opt.zero_grad();
        nn::cross_entropy(reference->forward(gx.to<double>()), gy).backward();
        ref_opt.step();

        opt.zero_grad();
        nn::cross_entropy(model->forward(x.to<double>()), y).backward();
        averager.finish();
        opt.step();
        distributed::check_replicas(*model, "step " + std::to_string(step));  // bitwise, every step
    }

    double worst = 0;
    const auto ours = model->parameters(), theirs = reference->parameters();
    for (std::size_t i = 0; i < ours.size(); ++i) {
        const auto& a = ours[i].value();
        const auto& b = theirs[i].value();
        double diff = 0, scale = 0;
        for (std::size_t k = 0; k < a.size(); ++k) {
            diff = std::max(diff, std::abs(a.data()[k] - b.data()[k]));
            scale = std::max(scale, std::abs(b.data()[k]));
        }
        worst = std::max(worst, diff / scale);
    }
    if (s.is_root())
        std::printf("equivalence: %zu steps, %zu buckets, overlap %s, max relative difference to 1 rank x %zu: %.3g\n",
                    kSteps, averager.bucket_count(), averager.overlaps_backward() ? "yes" : "no", kGlobalBatch,
                    worst);
    if (!(worst <= 1e-10)) return fail(s, "2 ranks differ from 1 rank by " + std::to_string(worst) + " relative");

    // A replica that drifts is named: rank 1 changes one weight.
    if (s.rank() == 1) model->parameters()[2].modify([](Array<double>& v) { v.data()[0] += 1e-12; });
    try {
        distributed::check_replicas(*model, "after the drift");
        return fail(s, "check_replicas missed a changed replica");
    } catch (const distributed::ReplicaError& e) {
        const std::string m = e.what();
        if (m.find("rank 1") == std::string::npos || m.find("'2.weight'") == std::string::npos)
            return fail(s, "check_replicas message does not name rank 1 and '2.weight': " + m);
        if (s.is_root()) std::printf("drift detected: %s\n", m.c_str());
    }
    if (s.is_root()) std::printf("EQUIVALENCE OK\n");
    return 0;
}

// The main job's loop on 2 ranks with dropout on, so every rank draws its
// own masks from its own generators: 4 epochs of 8 steps, a checkpoint every
// 3 steps and after every epoch. Returns the hash of the final parameters.
std::uint64_t train_run(distributed::Session& s, const std::string& checkpoint, const std::string& from,
                        std::size_t stop, std::size_t kill_at_step = 0, std::size_t batch_size = 64,
                        bool eager = false) {
    Generator data_gen(4);
    const auto d = training::synthetic_classification(512, 12, 3, data_gen);
    training::Options o;
    o.epochs = 4;
    o.batch_size = batch_size;
    o.hidden = {16};
    o.dropout = 0.3;
    o.checkpoint_every = 3;
    o.checkpoint = checkpoint;
    o.resume = from;
    o.stop_after_epoch = stop;
    o.eager = eager;
    Generator gen(21);
    training::Run run(o, d, gen, &s);
    training::Hooks hooks;
    hooks.on_step = [&](std::size_t, std::size_t, std::size_t, double) {
        // Rank 0 (the writer) dies mid-epoch: 2.5 epochs in, 2 steps after a checkpoint.
        if (kill_at_step && s.is_root() && run.steps_done() == kill_at_step) std::raise(SIGKILL);
    };
    run.train(hooks);
    s.barrier();  // rank 0's checkpoint is written before anyone reads it
    return distributed::hash_values(run.model().parameters());
}

// The ranks' dropout generators differ, so a checkpoint with rank 0's alone
// could not resume rank 1 bit for bit.
bool dropout_generators_differ(distributed::Session& s) {
    Generator data_gen(4);
    const auto d = training::synthetic_classification(64, 12, 3, data_gen);
    training::Options o;
    o.hidden = {16};
    o.dropout = 0.3;
    Generator gen(21);
    training::Run run(o, d, gen, &s);
    std::string states;
    for (const auto& [name, g] : run.model().named_generators()) states += g->state();
    const auto all = s.gather(states);
    const bool differ = s.is_root() && all.size() == 2 && all[0] != all[1] && !states.empty();
    return s.sum(differ ? 1.0 : 0.0) > 0;
}

// Stop after epoch 2 and resume vs an uninterrupted run, both on all ranks,
// in one job (every Run starts from fresh generators, as a new job would).
int resume(distributed::Session& s, const std::string& dir) {
    if (s.size() != 2) return fail(s, "the resume check needs exactly 2 ranks, got " + std::to_string(s.size()));
    if (!dropout_generators_differ(s)) return fail(s, "the ranks' dropout generators are equal; the test tests nothing");
    const auto whole = train_run(s, dir + "/whole.npz", "", 0);
    train_run(s, dir + "/stopped.npz", "", 2);
    const auto resumed = train_run(s, dir + "/resumed.npz", dir + "/stopped.npz", 0);
    if (resumed != whole) return fail(s, "the resumed 2-rank run differs from the uninterrupted one");
    const auto eager = train_run(s, dir + "/eager.npz", "", 0, 0, 64, /*eager=*/true);
    if (eager != whole) return fail(s, "the eager 2-rank run differs from the compiled one");
    if (s.is_root()) std::printf("RESUME OK (dropout on, final hash %016llx)\n", (unsigned long long)whole);
    return 0;
}

// One job of killed_run.sh: `whole` runs uninterrupted, `kill` dies by
// SIGKILL at step 20 (last checkpoint at step 18), `resume` continues the
// killed run from its checkpoint. Prints the final parameters' hash.
int run_phase(distributed::Session& s, const std::string& dir, const std::string& phase) {
    std::uint64_t h = 0;
    if (phase == "whole") h = train_run(s, dir + "/whole.npz", "", 0);
    else if (phase == "kill") h = train_run(s, dir + "/killed.npz", "", 0, 20);
    else if (phase == "resume") h = train_run(s, dir + "/killed.npz", dir + "/killed.npz", 0);
    else return fail(s, "unknown phase '" + phase + "'");
    if (s.is_root()) std::printf("final hash %016llx\n", (unsigned long long)h);
    return 0;
}

// `what` throws an exception of type E on every rank whose message holds each of `parts`.
template <class E, class F>
std::string refused(distributed::Session& s, const std::string& what, F&& f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const E& e) {
        const std::string m = e.what();
        for (const auto& p : parts)
            if (m.find(p) == std::string::npos) return what + ": the message does not name '" + p + "': " + m;
        if (s.is_root()) std::printf("%s refused: %s\n", what.c_str(), m.c_str());
        return "";
    }
    return what + " was not refused";
}

int mismatched(distributed::Session& s) {
    if (s.size() != 2) return fail(s, "the mismatched check needs exactly 2 ranks");
    const bool one = s.rank() == 1;
    std::vector<Tensor> tensors = {Tensor::ones({2, 3}), Tensor::ones({one ? 5u : 3u})};
    auto problem = refused<ShapeError>(s, "broadcast of unequal shapes", [&] { distributed::broadcast(tensors); },
                                       {"tensor 1", "[5] on rank 1", "[3] on rank 0"});
    std::vector<Tensor> params;
    for (int i = 0; i < (one ? 3 : 2); ++i) params.push_back(Tensor::ones({4}).requires_grad_(true));
    if (problem.empty())
        problem = refused<ValueError>(s, "GradientAverager over unequal lists",
                                      [&] { distributed::GradientAverager<float> averager(params); },
                                      {"rank 1 has 3 parameters, rank 0 2"});
    params.resize(2);
    if (one) params[1] = Tensor::ones({6}).requires_grad_(true);
    if (problem.empty())
        problem = refused<ValueError>(s, "GradientAverager over unequal sizes",
                                      [&] { distributed::GradientAverager<float> averager(params); },
                                      {"parameter 1 has 6 elements on rank 1 but 4 on rank 0"});
    nn::Sequential<float> model;
    Generator gen(1);
    model.emplace<nn::Linear<float>>(3, 3, true, gen);
    if (one) model.emplace<nn::Linear<float>>(3, 3, true, gen);
    if (problem.empty())
        problem = refused<distributed::ReplicaError>(s, "check_replicas of unequal models",
                                                     [&] { distributed::check_replicas(model, "here"); },
                                                     {"rank 1 has 4 parameters, rank 0 2"});
    // Equal lists still pass, so the checks above refuse the difference only.
    if (problem.empty()) {
        std::vector<Tensor> same = {Tensor::ones({2, 3})};
        distributed::broadcast(same);
        distributed::GradientAverager<float> averager({Tensor::ones({4}).requires_grad_(true)});
    }
    if (!problem.empty()) return fail(s, problem);
    if (s.is_root()) std::printf("MISMATCHED OK\n");
    return 0;
}

// Checkpoints of epochs 1 and 2 of the same run; rank 0 resumes from the
// first, rank 1 from the second. Returns only if the job was not ended.
int stale(distributed::Session& s, const std::string& dir) {
    train_run(s, dir + "/epoch1.npz", "", 1);
    train_run(s, dir + "/epoch2.npz", "", 2);
    train_run(s, dir + "/resumed.npz", dir + (s.rank() == 0 ? "/epoch1.npz" : "/epoch2.npz"), 0);
    return fail(s, "ranks resumed from different checkpoints and trained on");
}

// A run of global batches of 64 rows resumed with 32.
int changed(distributed::Session& s, const std::string& dir) {
    train_run(s, dir + "/batch64.npz", "", 1);
    train_run(s, dir + "/batch32.npz", dir + "/batch64.npz", 0, 0, 32);
    return fail(s, "a run resumed with another batch size trained on");
}

int hook_error(distributed::Session& s) {
    Generator data_gen(4);
    const auto d = training::synthetic_classification(512, 12, 3, data_gen);
    training::Options o;
    o.epochs = 1;
    o.batch_size = 64;
    o.hidden = {16};
    Generator gen(21);
    training::Run run(o, d, gen, &s);
    training::Hooks hooks;
    hooks.on_step = [&](std::size_t, std::size_t, std::size_t, double) {
        if (s.rank() == 1 && run.steps_done() == 5) throw ValueError("a deliberate failure in the hook on rank 1");
    };
    run.train(hooks);
    return fail(s, "the run went on after a hook failed");
}

// Trains until rank 1 fails at step 20; rank 0 would then wait in an
// all-reduce. `how`: "kill" (SIGKILL before the step), "error" (an
// exception before the step), "backward" (an exception inside backward,
// from a hook, after the first of the four buckets started its all-reduce; main
// catches it), "backward-skipped" (the same, but the loop catches it and goes
// on with the next batch).
int dying(distributed::Session& s, const std::string& how) {
    const auto d = synthetic();
    auto model = make_model();
    nn::SGD<double> opt(model->parameters(), 1e-2);
    Generator gen(3);
    distributed::ShardedBatches batches(d, kGlobalBatch, gen, s);
    // Buckets, in backward order: [4.*, 2.bias], [2.weight], [0.bias], [0.weight].
    distributed::GradientAverager<double> averager(model->parameters(), 4096);
    if (averager.bucket_count() != 4) return fail(s, "expected 4 buckets");
    std::size_t step = 0;
    const bool in_backward = how == "backward" || how == "backward-skipped";
    auto hook = model->parameters()[2].register_grad_ready_hook([&](const BasicTensor<double>&) {
        // after the averager's own hook on 2.weight: bucket 0 is in flight, bucket 1 complete
        if (in_backward && step == 20 && s.rank() == 1) throw ValueError("a deliberate failure in backward on rank 1");
    });
    Tensor x;
    Index y;
    for (step = 1; step <= 100000; ++step) {
        if (!batches.next(x, y)) continue;
        if (step == 20 && s.rank() == 1 && !in_backward) {
            std::fprintf(stderr, "dying on purpose at step 20\n");
            if (how == "kill") std::raise(SIGKILL);
            throw ValueError("a deliberate failure on rank 1 at step 20");
        }
        opt.zero_grad();
        try {
            nn::cross_entropy(model->forward(x.to<double>()), y).backward();
        } catch (const Error& e) {  // skipping any batch that fails
            if (how != "backward-skipped") throw;
            std::fprintf(stderr, "rank %d skips the batch of step %zu: %s\n", s.rank(), step, e.what());
            continue;
        }
        averager.finish();
        opt.step();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    distributed::Session session(argc, argv);
    const std::string mode = argc > 1 ? argv[1] : "";
    set_num_threads(1);
    try {
        if (mode == "equivalence") return equivalence(session);
        if (mode == "resume" && argc > 2) return resume(session, argv[2]);
        if (mode == "run" && argc > 3) return run_phase(session, argv[2], argv[3]);
        if (mode == "mismatched") return mismatched(session);
        if (mode == "hook") return hook_error(session);
        if (mode == "stale" && argc > 2) return stale(session, argv[2]);
        if (mode == "changed" && argc > 2) return changed(session, argv[2]);
        if (mode == "kill" || mode == "error" || mode == "backward" || mode == "backward-skipped")
            return dying(session, mode);
    } catch (const Error& e) {
        session.abort(1, std::string("error: ") + e.what());  // as a training program would
    }
    std::fprintf(stderr, "usage: distributed_check equivalence | resume DIR | run DIR whole|kill|resume | kill | error | backward | backward-skipped | mismatched | hook | stale DIR | changed DIR\n");
    return 2;
}
