// Resumable runs: the main job's training loop (examples/common/training.hpp,
// run by tests/programs/resume_run.cpp on synthetic data) stopped after an
// epoch, or killed with SIGKILL mid-epoch, and resumed from its checkpoint
// ends with the parameters and optimiser state of an uninterrupted run, bit
// for bit.
#include <doctest/doctest.h>

#include "file_test_util.hpp"

#include <csignal>
#include <cstring>
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

// Runs the training program with `args`; returns its wait status.
int run(const std::vector<std::string>& args) {
    std::vector<std::string> all = {TAPEGRAD_RESUME_RUN};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);  // the epoch lines
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

}  // namespace

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
}
#endif
