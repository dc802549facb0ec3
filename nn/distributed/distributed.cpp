// Session, broadcast, replica checks and sharded batches (distributed.hpp).
// The gradient averager is in gradient_averager.cpp; every MPI call goes
// through comm.hpp.
#include <tapegrad/nn/distributed/distributed.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <iomanip>
#include <sstream>

#include <tapegrad/nn/shape_util.hpp>

#include "comm.hpp"

namespace tapegrad::distributed {

bool mpi_available() { return comm::available(); }

Session::Session(int& argc, char**& argv) : owns_mpi_(comm::init(&argc, &argv)) {
    rank_ = comm::rank();
    size_ = comm::size();
}

Session::Session() : owns_mpi_(comm::init(nullptr, nullptr)) {
    rank_ = comm::rank();
    size_ = comm::size();
}

Session::~Session() {
    if (std::uncaught_exceptions() > 0 && size_ > 1)
        abort(1, "an exception left the distributed session; ending every rank so none waits forever");
    if (owns_mpi_) comm::finalize();
}

void Session::abort(int code, const std::string& message) const { comm::abort_job(code, message); }

void Session::barrier() const { comm::barrier(); }

double Session::sum(double value) const { return comm::sum(value); }

std::vector<std::string> Session::gather(const std::string& bytes, int root) const {
    if (root < 0 || root >= size_)
        throw ValueError("Session::gather: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
    return comm::gather(bytes, root);
}

namespace {

// Every rank's shapes agree with rank `root`'s, or ShapeError on every rank
// naming the first rank and tensor that differ: a broadcast of unequal
// buffers would copy part of them silently, or fail inside MPI.
template <class T>
void check_same_shapes(const std::vector<BasicTensor<T>>& tensors, int root) {
    const std::string root_name = "rank " + std::to_string(root) + " (the root)";
    if (auto m = comm::first_different(tensors.size(), root); m.rank >= 0)
        throw ShapeError("broadcast: rank " + std::to_string(m.rank) + " passes " + std::to_string(m.theirs) +
                         " tensors, " + root_name + " " + std::to_string(m.roots) +
                         "; every rank must pass the same list");
    std::vector<std::uint64_t> ndims;
    for (const auto& t : tensors) ndims.push_back(t.shape().size());
    const auto all_ndims = comm::all_gather(ndims);
    const std::size_t n = tensors.size(), ranks = all_ndims.size() / std::max<std::size_t>(n, 1);
    // Each tensor's dimensions, padded to the most any rank has for it, so
    // that every rank sends as many values.
    std::vector<std::size_t> width(n, 0);
    for (std::size_t r = 0; r < ranks; ++r)
        for (std::size_t i = 0; i < n; ++i) width[i] = std::max<std::size_t>(width[i], all_ndims[r * n + i]);
    std::vector<std::uint64_t> dims;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& shape = tensors[i].shape();
        for (std::size_t k = 0; k < width[i]; ++k) dims.push_back(k < shape.size() ? shape[k] : 0);
    }
    const auto all_dims = comm::all_gather(dims);
    const std::size_t row = dims.size();
    const auto shape_of = [&](std::size_t r, std::size_t i) {
        std::size_t offset = r * row;
        for (std::size_t j = 0; j < i; ++j) offset += width[j];
        const auto begin = all_dims.begin() + std::ptrdiff_t(offset);
        return std::vector<std::uint64_t>(begin, begin + std::ptrdiff_t(all_ndims[r * n + i]));
    };
    for (std::size_t r = 0; r < ranks; ++r)
        for (std::size_t i = 0; i < n; ++i)
            if (shape_of(r, i) != shape_of(std::size_t(root), i))
                throw ShapeError("broadcast: tensor " + std::to_string(i) + " has shape " +
                                 nn::shape_string(shape_of(r, i)) + " on rank " + std::to_string(r) + " but " +
                                 nn::shape_string(shape_of(std::size_t(root), i)) + " on " + root_name);
}

}  // namespace

template <class T>
void broadcast(const std::vector<BasicTensor<T>>& tensors, int root) {
    if (comm::size() == 1) return;
    if (root < 0 || root >= comm::size())
        throw ValueError("broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(comm::size()));
    check_same_shapes(tensors, root);
    for (auto t : tensors) {
        t.modify([&](Array<T>& v) { comm::broadcast_bytes(v.data(), v.size() * sizeof(T), root); });
    }
}

namespace {

void fnv1a(std::uint64_t& h, const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
}

template <class T>
std::uint64_t hash_one(const BasicTensor<T>& t, std::uint64_t h) {
    for (auto d : t.shape()) {
        const std::uint64_t d64 = d;
        fnv1a(h, &d64, sizeof d64);
    }
    fnv1a(h, t.value().data(), t.value().size() * sizeof(T));
    return h;
}

constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;

std::string hex(std::uint64_t h) {
    std::ostringstream os;
    os << std::hex << std::setw(16) << std::setfill('0') << h;
    return os.str();
}

}  // namespace

template <class T>
std::uint64_t hash_values(const std::vector<BasicTensor<T>>& tensors) {
    std::uint64_t h = kFnvOffset;
    for (const auto& t : tensors) h = hash_one(t, h);
    return h;
}

template <class T>
void check_replicas(const nn::ModuleBase<T>& model, const std::string& context,
                    const std::vector<std::pair<std::string, std::uint64_t>>& counters) {
    const auto named = model.named_parameters();
    const std::string who = "check_replicas (" + context + "): rank ";
    // all_gather needs as many values from every rank.
    if (auto m = comm::first_different(named.size()); m.rank >= 0)
        throw ReplicaError(who + std::to_string(m.rank) + " has " + std::to_string(m.theirs) + " parameters, rank 0 " +
                           std::to_string(m.roots) + " (a different model?)");
    if (auto m = comm::first_different(counters.size()); m.rank >= 0)
        throw ReplicaError(who + std::to_string(m.rank) + " compares " + std::to_string(m.theirs) +
                           " counters, rank 0 " + std::to_string(m.roots));
    std::vector<std::uint64_t> local;
    for (const auto& [name, value] : counters) local.push_back(value);
    for (const auto& [name, t] : named) local.push_back(hash_one(t, kFnvOffset));
    const auto all = comm::all_gather(local);
    const std::size_t n = local.size(), c = counters.size();
    for (std::size_t r = 1; r < all.size() / std::max<std::size_t>(n, 1); ++r) {
        for (std::size_t i = 0; i < n; ++i) {
            if (all[r * n + i] == all[i]) continue;
            const std::string theirs = std::to_string(all[r * n + i]), ours = std::to_string(all[i]);
            if (i < c)
                throw ReplicaError(who + std::to_string(r) + " differs from rank 0 in " + counters[i].first + " (" +
                                   theirs + " vs " + ours + ")");
            throw ReplicaError(who + std::to_string(r) + " differs from rank 0, first in parameter '" +
                               named[i - c].first + "' (hash " + hex(all[r * n + i]) + " vs " + hex(all[i]) + ")");
        }
    }
}

ShardedBatches::ShardedBatches(const data::Dataset& d, std::size_t global_batch, Generator& gen,
                               const Session& session, bool shuffle)
    : ShardedBatches(d, global_batch, gen, session.rank(), session.size(), shuffle) {}

ShardedBatches::ShardedBatches(const data::Dataset& d, std::size_t global_batch, Generator& gen, int rank, int size,
                               bool shuffle)
    : all_(d, global_batch, gen, shuffle), global_batch_(global_batch), data_size_(d.size()), rank_(rank),
      size_(size) {
    if (size < 1 || rank < 0 || rank >= size)
        throw ValueError("ShardedBatches: rank " + std::to_string(rank) + " is not in [0, " + std::to_string(size) +
                         ")");
    if (global_batch < std::size_t(size))
        throw ValueError("ShardedBatches: a global batch of " + std::to_string(global_batch) +
                         " rows cannot give each of " + std::to_string(size) + " ranks a row");
}

std::size_t ShardedBatches::batches_per_epoch() const {
    const std::size_t full = data_size_ / global_batch_, rest = data_size_ % global_batch_;
    return full + (rest >= std::size_t(size_) ? 1 : 0);
}

bool ShardedBatches::next(Tensor& features, Index& labels) {
    Tensor gx;
    Index gy;
    if (!all_.next(gx, gy)) return false;
    const std::size_t n = gy.size(), ranks = std::size_t(size_), r = std::size_t(rank_);
    if (n < ranks) {  // too few rows for every rank: the epoch ends here
        Tensor rest_x;
        Index rest_y;
        while (all_.next(rest_x, rest_y)) {
        }
        return false;
    }
    const std::size_t base = n / ranks, extra = n % ranks;
    const std::size_t begin = r * base + std::min(r, extra), rows = base + (r < extra ? 1 : 0);
    const std::size_t dim = gx.value().size() / n;
    Array<float> x = Array<float>::from_shape({rows, dim});
    std::memcpy(x.data(), gx.value().data() + begin * dim, rows * dim * sizeof(float));
    labels.assign(gy.begin() + std::ptrdiff_t(begin), gy.begin() + std::ptrdiff_t(begin + rows));
    features = Tensor(std::move(x));
    weight_ = double(rows) / double(n);
    return true;
}

template void broadcast(const std::vector<BasicTensor<float>>&, int);
template void broadcast(const std::vector<BasicTensor<double>>&, int);
template std::uint64_t hash_values(const std::vector<BasicTensor<float>>&);
template std::uint64_t hash_values(const std::vector<BasicTensor<double>>&);
template void check_replicas(const nn::ModuleBase<float>&, const std::string&,
                             const std::vector<std::pair<std::string, std::uint64_t>>&);
template void check_replicas(const nn::ModuleBase<double>&, const std::string&,
                             const std::vector<std::pair<std::string, std::uint64_t>>&);

}  // namespace tapegrad::distributed
