// Data-parallel training over MPI (docs/distributed.md): every rank (process)
// holds a full replica of the model, reads its own slice of every global
// batch, and the gradients are averaged across ranks before each optimiser
// step, so all replicas take the same step.
//
//   distributed::Session session(argc, argv);        // MPI up; down at scope exit
//   distributed::broadcast(model.parameters());      // rank 0's initial values everywhere
//   distributed::ShardedBatches batches(train, 128, gen, session);   // 128 rows per step in all
//   distributed::GradientAverager<float> averager(model.parameters());
//   while (batches.next(x, y)) {
//       opt.zero_grad();
//       cross_entropy(model(x), y).backward();   // buckets start all-reducing during backward
//       averager.finish();                       // wait; .grad = the global batch's gradient
//       opt.step();
//   }
//   distributed::check_replicas(model, "epoch 3");   // ReplicaError naming the first rank that differs
//
// Built with MPI when CMake finds it (tapegrad::distributed); without MPI the
// same API runs as one process (size() == 1), so a program written for it
// runs unchanged either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <tapegrad/core/error.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/module.hpp>

namespace tapegrad::distributed {

// Replicas that should be identical are not: names the first rank that
// differs from rank 0 and the first parameter that does.
struct ReplicaError : Error {
    using Error::Error;
};

// An MPI call failed or the API was used without a Session.
struct CommunicationError : Error {
    using Error::Error;
};

// True when built with MPI.
bool mpi_available();

// Starts MPI (MPI_Init_thread, funneled: only the thread that made the
// Session calls MPI) and stops it at scope exit. One per process, made before
// any other call of this API. If the scope is left by an exception, the
// destructor aborts the whole job instead of finalising, because the other
// ranks would otherwise wait forever in their next collective. Every rank
// must make the same collective calls and reach the end of its Session: one
// that returns normally while the others still train leaves them waiting
// (nothing can tell it from a slow rank).
class Session {
public:
    Session(int& argc, char**& argv);
    Session();
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    // Prints "rank <r>: <message>" to stderr and ends every rank of the job
    // with `code` (MPI_Abort). Use it where one rank cannot go on.
    [[noreturn]] void abort(int code, const std::string& message) const;
    void barrier() const;
    // The sum of `value` over all ranks, on every rank.
    double sum(double value) const;
    // Every rank's `bytes` (any length, e.g. a generator's state) on rank
    // `root`, indexed by rank; an empty vector on the other ranks.
    std::vector<std::string> gather(const std::string& bytes, int root = 0) const;

private:
    int rank_ = 0, size_ = 1;
    bool owns_mpi_ = false;
};

// Copies rank `root`'s values into every rank's tensors, in place (modify():
// versions bump); parameters and buffers alike. The shapes are compared
// first: ShapeError on every rank naming the first rank and tensor whose
// shape differs from the root's, and both shapes.
template <class T>
void broadcast(const std::vector<BasicTensor<T>>& tensors, int root = 0);

// 64-bit FNV-1a of the shapes and value bytes, in order.
template <class T>
std::uint64_t hash_values(const std::vector<BasicTensor<T>>& tensors);

// Compares a hash of every parameter across ranks; ReplicaError on every rank
// if any rank differs from rank 0, naming that rank, the first parameter
// that differs and `context` (e.g. "after epoch 3"). `counters` (e.g.
// {{"step", step}}) are compared first and named with both values. A rank
// with another number of parameters is named with both counts.
template <class T>
void check_replicas(const nn::ModuleBase<T>& model, const std::string& context,
                    const std::vector<std::pair<std::string, std::uint64_t>>& counters = {});

// Every rank's share of the same global batches: all ranks draw the same
// permutation (same generator state), each takes its slice of every global
// batch of `global_batch` rows: sizes differ by at most one row, rank r gets
// the r-th slice. A final global batch with fewer rows than ranks is dropped
// (there is none when the data size is a multiple of the batch size).
class ShardedBatches {
public:
    ShardedBatches(const data::Dataset& d, std::size_t global_batch, Generator& gen, const Session& session,
                   bool shuffle = true);
    ShardedBatches(const data::Dataset& d, std::size_t global_batch, Generator& gen, int rank, int size,
                   bool shuffle = true);
    // This rank's rows of the next global batch; false at the end of an epoch.
    bool next(Tensor& features, Index& labels);
    // This rank's share of the current global batch (its rows / all rows),
    // for GradientAverager::set_weight when the slices are uneven.
    double weight() const { return weight_; }
    std::size_t batches_per_epoch() const;
    // The global iterator: the data order every rank shares.
    data::BatchIterator& global() { return all_; }

private:
    data::BatchIterator all_;
    std::size_t global_batch_, data_size_;
    int rank_, size_;
    double weight_ = 1;
};

// Averages gradients across ranks in buckets of about `bucket_bytes`,
// parameters in reverse registration order (the order backward produces
// them). Each parameter gets a grad-ready hook; when every gradient of a
// bucket has arrived (and every earlier bucket has started, so all ranks
// start them in the same order), the bucket's non-blocking all-reduce starts
// while backward goes on. finish() waits for the rest and writes each .grad.
//
// Per step: zero_grad(), one backward(), finish(), step(). finish() sets
// .grad to sum over ranks of weight_r * (this pass's gradient on rank r):
// the average with the default weights 1/size. A parameter that got no
// gradient on any rank keeps an undefined .grad (optimisers skip it); one
// that got none on some ranks counts as zero there. A parameter must belong
// to one averager only. Every rank must pass the same list: the constructor
// compares counts and sizes across ranks (ValueError naming the rank and
// both values).
//
// With during_backward = false there are no hooks: finish() reads each
// parameter's .grad as it is then and all-reduces the buckets in turn. That
// is the form for a compiled step (compile::capture refuses grad-ready
// hooks): replay it, then finish(), then step().
template <class T>
class GradientAverager {
public:
    explicit GradientAverager(std::vector<BasicTensor<T>> params, std::size_t bucket_bytes = std::size_t(1) << 20,
                              bool during_backward = true);
    ~GradientAverager();
    GradientAverager(const GradientAverager&) = delete;
    GradientAverager& operator=(const GradientAverager&) = delete;

    // This rank's weight for the next step (default 1 / size).
    void set_weight(double w);
    void finish();
    std::size_t bucket_count() const;
    // Bytes of gradient in each bucket, in the order they start.
    std::vector<std::size_t> bucket_bytes() const;
    // Whether the averager's buckets start during backward: more than one
    // rank and during_backward; with one rank it does nothing.
    bool overlaps_backward() const;
    // Seconds spent waiting for all-reduces inside finish(), summed over calls.
    double wait_seconds() const;

    struct State;

private:
    std::unique_ptr<State> s_;
};

extern template class GradientAverager<float>;
extern template class GradientAverager<double>;

}  // namespace tapegrad::distributed
