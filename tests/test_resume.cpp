// Resumable runs: the main job's training loop (examples/common/training.hpp,
// run by tests/programs/resume_run.cpp on synthetic data) stopped after an
// epoch, or killed with SIGKILL mid-epoch, and resumed from its checkpoint
// ends with the parameters and optimiser state of an uninterrupted run, bit
// for bit.
#include <doctest/doctest.h>

#include "file_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <tapegrad/nn/data/npz.hpp>

extern char** environ;

#ifdef TAPEGRAD_RESUME_RUN
namespace {

using namespace file_test;
using tapegrad::data::load_npz;

// Runs the training program with `args`; returns its wait status. Its
// stderr goes to `errors` if given.
int run(const std::vector<std::string>& args, const std::string& errors = "") {
    std::vector<std::string> all = {TAPEGRAD_RESUME_RUN};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);  // the epoch lines
    if (!errors.empty()) posix_spawn_file_actions_addopen(&quiet, 2, errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid, argv[0], &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0] << ": " << std::strerror(rc));
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return status;
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::int64_t saved_step(const std::string& checkpoint) {
    for (const auto& a : load_npz(checkpoint))
        if (a.name == "run/step") return a.to_vector<std::int64_t>()[0];
    return -1;
}

// Every array of two model-and-optimiser checkpoints, byte for byte; the
// first difference is reported.
std::string first_difference(const std::string& a_path, const std::string& b_path) {
    const auto a = load_npz(a_path), b = load_npz(b_path);
    if (a.size() != b.size()) return "different numbers of arrays";
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].bytes != b[i].bytes) return a[i].name;
    return "";
}

// The largest difference between two checkpoints' float arrays, relative
// to the largest magnitude of each array.
double largest_relative_difference(const std::string& a_path, const std::string& b_path) {
    const auto a = load_npz(a_path), b = load_npz(b_path);
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        REQUIRE(a[i].name == b[i].name);
        REQUIRE(a[i].shape == b[i].shape);
        if (a[i].descr != "<f4") continue;
        const auto x = a[i].to_vector<float>(), y = b[i].to_vector<float>();
        double scale = 1e-30, diff = 0;
        for (std::size_t k = 0; k < x.size(); ++k) {
            scale = std::max(scale, double(std::fabs(x[k])));
            diff = std::max(diff, double(std::fabs(x[k] - y[k])));
        }
        worst = std::max(worst, diff / scale);
    }
    return worst;
}

std::vector<double> numbers_in(const std::string& path) {
    std::ifstream in(path);
    std::vector<double> v;
    for (double x; in >> x;) v.push_back(x);
    return v;
}

std::string file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("resume: a run resumed with other options, or longer, is refused before it trains") {
    TempDir tmp("resume_options");
    const std::string stopped = tmp / "stopped.npz", finished = tmp / "finished.npz", errors = tmp / "errors.txt";
    REQUIRE(exited_ok(run({"--checkpoint", stopped, "--stop-after-epoch", "2"})));
    REQUIRE(exited_ok(run({"--checkpoint", finished})));
    const std::string before = file_text(stopped);

    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--batch-size", "64"}, "batch_size = 32; this run has batch_size = 64"},
        {{"--lr", "0.01"}, "lr = 0.003; this run has lr = 0.01"},
        {{"--optimizer", "adam"}, "optimizer = adamw; this run has optimizer = adam"},
        {{"--dropout", "0.5"}, "dropout = 0.2; this run has dropout = 0.5"},
        {{"--seed", "7"}, "seed = 0; this run has seed = 7"},
        {{"--epochs", "6"}, "epochs = 4; this run has epochs = 6"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.message);
        std::vector<std::string> args = {"--checkpoint", stopped, "--resume", stopped};
        args.insert(args.end(), c.args.begin(), c.args.end());
        const int status = run(args, errors);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 1));
        CHECK(file_text(errors).find("was written by a run with " + c.message) != std::string::npos);
        CHECK((file_text(stopped) == before));  // refused before any step or save
    }

    // A finished run extended with more epochs: the schedule ended at lr 0,
    // so "training on" would not change the model; refused, saying why.
    const int status = run({"--checkpoint", finished, "--resume", finished, "--epochs", "5"}, errors);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 1));
    CHECK(file_text(errors).find("epochs = 4; this run has epochs = 5") != std::string::npos);
    CHECK(file_text(errors).find("learning-rate schedule") != std::string::npos);

    // A checkpoint without the options (as saved before they were recorded)
    // cannot be checked: refused with the reason.
    auto arrays = tapegrad::data::load_npz(stopped);
    std::size_t dropped = 0;
    for (auto it = arrays.begin(); it != arrays.end();)
        if (it->name.rfind("run/option/", 0) == 0) {
            it = arrays.erase(it);
            ++dropped;
        } else {
            ++it;
        }
    CHECK(dropped == 10);
    const std::string old = tmp / "old.npz";
    tapegrad::data::save_npz(old, arrays);
    const int old_status = run({"--checkpoint", old, "--resume", old}, errors);
    CHECK((WIFEXITED(old_status) && WEXITSTATUS(old_status) == 1));
    CHECK(file_text(errors).find("does not record the run's option 'epochs'") != std::string::npos);

    // The same options resume (the refusals above are about the changes).
    CHECK(exited_ok(run({"--checkpoint", stopped, "--resume", stopped})));
}

TEST_CASE("resume: a run stopped after epoch 2 or killed mid-epoch continues bit for bit") {
    TempDir tmp("resume");
    const std::string whole = tmp / "whole.npz";
    REQUIRE(exited_ok(run({"--final", whole})));

    // Stopped after epoch 2 of 4 (the schedule still spans 4), then resumed.
    const std::string stopped = tmp / "stopped.ckpt.npz", stopped_final = tmp / "stopped.npz";
    REQUIRE(exited_ok(run({"--checkpoint", stopped, "--stop-after-epoch", "2"})));
    CHECK(saved_step(stopped) == 2 * 38);
    REQUIRE(exited_ok(run({"--checkpoint", stopped, "--resume", stopped, "--final", stopped_final})));
    CHECK(first_difference(whole, stopped_final) == "");

    // Killed by SIGKILL at step 100 (epoch 3, batch 24 of 38); the last
    // checkpoint, every 15 steps, is step 90, mid-epoch as well.
    const std::string killed = tmp / "killed.ckpt.npz", killed_final = tmp / "killed.npz";
    const int status = run({"--checkpoint", killed, "--checkpoint-every", "15", "--kill-at-step", "100"});
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    CHECK(saved_step(killed) == 90);
    CHECK(tmp.listing().size() == 4);  // whole, stopped x2, killed: no temporary file left behind
    REQUIRE(exited_ok(run({"--checkpoint", killed, "--checkpoint-every", "15", "--resume", killed, "--final", killed_final})));
    CHECK(first_difference(whole, killed_final) == "");

    // The comparison can fail: a run with another seed differs.
    const std::string other = tmp / "other.npz";
    REQUIRE(exited_ok(run({"--seed", "1", "--final", other})));
    CHECK(first_difference(whole, other) != "");

    // The same holds for the eager loop (--eager builds the graph every step).
    const std::string eager_whole = tmp / "eager_whole.npz", eager_stopped = tmp / "eager_stopped.ckpt.npz",
                      eager_final = tmp / "eager_stopped.npz";
    REQUIRE(exited_ok(run({"--eager", "1", "--final", eager_whole})));
    REQUIRE(exited_ok(run({"--eager", "1", "--checkpoint", eager_stopped, "--stop-after-epoch", "2"})));
    REQUIRE(exited_ok(run({"--eager", "1", "--checkpoint", eager_stopped, "--resume", eager_stopped, "--final", eager_final})));
    CHECK(first_difference(eager_whole, eager_final) == "");
}

TEST_CASE("resume: the compiled training step gives the eager loop's losses and parameters") {
    // 4 epochs of 38 steps, the last batch of each short (a second program),
    // with dropout and AdamW: every step's loss and the final parameters and
    // optimiser state agree within float rounding.
    TempDir tmp("compiled_vs_eager");
    const std::string compiled = tmp / "compiled.npz", eager = tmp / "eager.npz";
    const std::string compiled_losses = tmp / "compiled.txt", eager_losses = tmp / "eager.txt";
    REQUIRE(exited_ok(run({"--final", compiled, "--losses", compiled_losses})));
    REQUIRE(exited_ok(run({"--eager", "1", "--final", eager, "--losses", eager_losses})));
    const auto a = numbers_in(compiled_losses), b = numbers_in(eager_losses);
    REQUIRE(a.size() == 4 * 38);
    REQUIRE(b.size() == a.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-5));
    CHECK(largest_relative_difference(compiled, eager) < 1e-4);
}
#endif
