// Data-parallel training steps over MPI: run under mpirun by
// bench/distributed_scaling.py, which compares 1 and 2 ranks side by side.
//
//   mpirun -np 2 build/bench/tapegrad_bench_distributed --mlp 784 --seconds 5
//
// One step: forward and backward of an MLP on this rank's share of the
// global batch (784-256-256-10 with 128 rows, or 1024-1024-1024-10 with 1024
// rows, split across the ranks), the bucketed gradient all-reduce and an SGD
// step; 1 BLAS thread per rank. Rank 0 prints one RESULT line: steps per
// second, and per step the time spent waiting in GradientAverager::finish.
// --allreduce-only 1 times the all-reduce of the model's gradient buckets
// alone (no forward, backward or update): the cost model's communication.
// --probe-bytes B times the all-reduce of one bucket of B bytes alone (a
// tiny one measures the per-bucket latency, a large one the bandwidth).
// --rows-per-rank R overrides the rows of each rank's slice (1 rank with 64
// rows: the compute of a 2-rank step of the 784 MLP without communication);
// --average 0 leaves the gradients local (2 ranks computing side by side
// without communicating: what sharing the machine costs).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <tapegrad/nn/distributed/distributed.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    distributed::Session session(argc, argv);
    std::string mlp = "784";
    double seconds = 5, bucket_mib = 1;
    bool allreduce_only = false, average = true;
    std::size_t rows_per_rank = 0, probe_bytes = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        if (key == "--mlp") mlp = argv[i + 1];
        else if (key == "--seconds") seconds = std::atof(argv[i + 1]);
        else if (key == "--bucket-mib") bucket_mib = std::atof(argv[i + 1]);
        else if (key == "--allreduce-only") allreduce_only = std::string(argv[i + 1]) == "1";
        else if (key == "--average") average = std::string(argv[i + 1]) != "0";
        else if (key == "--rows-per-rank") rows_per_rank = std::size_t(std::atoll(argv[i + 1]));
        else if (key == "--probe-bytes") probe_bytes = std::size_t(std::atoll(argv[i + 1]));
    }
    const bool big = mlp == "1024";
    const std::vector<std::size_t> sizes = big ? std::vector<std::size_t>{1024, 1024, 1024, 10}
                                               : std::vector<std::size_t>{784, 256, 256, 10};
    const std::size_t global_batch = big ? 1024 : 128;
    const std::size_t rows = rows_per_rank ? rows_per_rank : global_batch / std::size_t(session.size());
    set_num_threads(1);

    Generator gen(1 + std::uint64_t(session.rank()));
    nn::MLP<float> model(sizes, "relu", nn::Head::identity, gen);
    distributed::broadcast(model.parameters());
    nn::SGD<float> opt(model.parameters(), 1e-3);
    // A probe is one parameter of probe_bytes in one bucket, all-reduced alone.
    auto probe = Tensor::zeros({std::max<std::size_t>(probe_bytes / sizeof(float), 1)}, true);
    if (probe_bytes) allreduce_only = true;
    // Without averaging, the averager holds the (unused) probe instead of the
    // model's parameters, so backward starts no all-reduce.
    const bool on_model = average && !probe_bytes;
    distributed::GradientAverager<float> averager(on_model ? model.parameters() : std::vector<Tensor>{probe},
                                                  probe_bytes ? probe_bytes + 64
                                                              : static_cast<std::size_t>(bucket_mib * (1 << 20)));
    auto x = Tensor::randn({rows, sizes.front()}, gen);
    Index y(rows);
    for (std::size_t i = 0; i < rows; ++i) y[i] = std::int64_t(i % 10);

    auto step = [&] {
        if (allreduce_only) return averager.finish();  // the gradients' all-reduce alone
        opt.zero_grad();
        nn::cross_entropy(model(x), y).backward();
        if (average) averager.finish();
        opt.step();
    };
    // Warm-up (buffers, caches, connections), timed to choose the number of
    // steps; rank 0's choice holds for every rank.
    const auto warm = Clock::now();
    for (int i = 0; i < 3; ++i) step();
    const double per_step = std::chrono::duration<double>(Clock::now() - warm).count() / 3;
    const auto steps = static_cast<std::size_t>(
        session.sum(session.is_root() ? std::max(5.0, std::ceil(seconds / per_step)) : 0.0));
    session.barrier();
    const double waited_before = averager.wait_seconds();
    const auto start = Clock::now();
    for (std::size_t i = 0; i < steps; ++i) step();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double wait = session.sum(averager.wait_seconds() - waited_before) / session.size();
    std::string bucket_bytes;
    for (auto b : averager.bucket_bytes()) bucket_bytes += (bucket_bytes.empty() ? "" : ",") + std::to_string(b);
    if (session.is_root())
        std::printf("RESULT mlp=%s allreduce_only=%d probe_bytes=%zu average=%d ranks=%d rows_per_rank=%zu buckets=%zu "
                    "bucket_bytes=%s overlap=%d steps=%zu steps_per_s=%.2f wait_ms_per_step=%.3f\n",
                    mlp.c_str(), int(allreduce_only), probe_bytes, int(average), session.size(), rows,
                    averager.bucket_count(), bucket_bytes.c_str(), int(averager.overlaps_backward()), steps, double(steps) / elapsed,
                    1e3 * wait / double(steps));
    if (average) distributed::check_replicas(model, "end of the benchmark");
    return 0;
}
