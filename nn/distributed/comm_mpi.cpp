// comm.hpp on MPI. Errors stay MPI_ERRORS_ARE_FATAL (the default): a failed
// collective, for example one whose peer died, ends the whole job with
// mpirun's message naming the rank instead of leaving the others waiting.
#include "comm.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include <mpi.h>

#include <tapegrad/nn/distributed/distributed.hpp>

namespace tapegrad::distributed::comm {

static_assert(sizeof(MPI_Request) <= sizeof(std::uintptr_t), "an MPI_Request must fit in Pending's handle");

namespace {

void check(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw CommunicationError(std::string("distributed: ") + what + " failed: " + std::string(text, length));
}

std::string& unfinished() {
    static std::string why;
    return why;
}

void require_init(const char* what) {
    int up = 0;
    MPI_Initialized(&up);
    if (!up) throw CommunicationError(std::string("distributed: ") + what + " needs a distributed::Session first");
    if (!unfinished().empty()) abort_job(1, unfinished() + "; ending every rank at the next " + what);
}

MPI_Request to_request(std::uintptr_t bits) {
    MPI_Request r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}

std::uintptr_t from_request(MPI_Request r) {
    std::uintptr_t bits = 0;
    std::memcpy(&bits, &r, sizeof r);
    return bits;
}

}  // namespace

bool available() { return true; }

bool init(int* argc, char*** argv) {
    int up = 0;
    MPI_Initialized(&up);
    if (up) return false;
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    return true;
}

void finalize() {
    if (!unfinished().empty()) abort_job(1, unfinished() + "; ending every rank instead of finalising");
    int down = 0;
    MPI_Finalized(&down);
    if (!down) MPI_Finalize();
}

int rank() {
    require_init("rank");
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int size() {
    require_init("size");
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

void abort_job(int code, const std::string& message) {
    int up = 0, r = 0;
    MPI_Initialized(&up);
    if (up) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    std::fprintf(stderr, "rank %d: %s\n", r, message.c_str());
    std::fflush(stderr);
    abort(code);
}

void mark_unfinished(const std::string& why) {
    if (unfinished().empty()) unfinished() = why;
}

void barrier() {
    require_init("barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

double sum(double value) {
    require_init("sum");
    double total = 0;
    check(MPI_Allreduce(&value, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    return total;
}

void broadcast_bytes(void* data, std::size_t bytes, int root) {
    require_init("broadcast");
    // MPI counts are ints: send large buffers in pieces.
    auto* p = static_cast<char*>(data);
    const std::size_t piece = std::size_t(1) << 30;
    for (std::size_t at = 0; at < bytes; at += piece) {
        const int n = static_cast<int>(std::min(piece, bytes - at));
        check(MPI_Bcast(p + at, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& local) {
    require_init("all_gather");
    std::vector<std::uint64_t> all(local.size() * static_cast<std::size_t>(size()));
    check(MPI_Allgather(local.data(), static_cast<int>(local.size()), MPI_UINT64_T, all.data(),
                        static_cast<int>(local.size()), MPI_UINT64_T, MPI_COMM_WORLD),
          "MPI_Allgather");
    return all;
}

std::vector<std::string> gather(const std::string& local, int root) {
    require_init("gather");
    if (local.size() > std::size_t(INT32_MAX)) throw CommunicationError("distributed: gather of more than 2^31 bytes");
    const int n = size(), me = rank();
    const int length = static_cast<int>(local.size());
    std::vector<int> lengths(me == root ? std::size_t(n) : 0), offsets(lengths.size());
    check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather");
    std::size_t total = 0;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
        if (total > std::size_t(INT32_MAX)) throw CommunicationError("distributed: gather of more than 2^31 bytes");
        offsets[r] = static_cast<int>(total);
        total += std::size_t(lengths[r]);
    }
    std::string all(total, '\0');
    check(MPI_Gatherv(local.data(), length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, root,
                      MPI_COMM_WORLD),
          "MPI_Gatherv");
    std::vector<std::string> out;
    for (std::size_t r = 0; r < lengths.size(); ++r) out.push_back(all.substr(std::size_t(offsets[r]), std::size_t(lengths[r])));
    return out;
}

namespace {
template <class T>
std::uintptr_t start(T* data, std::size_t n) {
    require_init("all-reduce");
    if (n > std::size_t(INT32_MAX)) throw CommunicationError("distributed: a bucket holds more than 2^31 elements");
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE,
                         MPI_SUM, MPI_COMM_WORLD, &r),
          "MPI_Iallreduce");
    return from_request(r);
}
}  // namespace

Pending Pending::start_sum(float* data, std::size_t n) {
    Pending p;
    p.handle_ = start(data, n);
    p.active_ = true;
    return p;
}

Pending Pending::start_sum(double* data, std::size_t n) {
    Pending p;
    p.handle_ = start(data, n);
    p.active_ = true;
    return p;
}

bool Pending::done() {
    if (!active_) return true;
    MPI_Request r = to_request(handle_);
    int flag = 0;
    check(MPI_Test(&r, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    handle_ = from_request(r);
    if (flag) active_ = false;
    return flag != 0;
}

void Pending::wait() {
    if (!active_) return;
    MPI_Request r = to_request(handle_);
    check(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait");
    active_ = false;
}

}  // namespace tapegrad::distributed::comm
