// The few collective operations the distributed API needs, behind one small
// interface: comm_mpi.cpp implements it with MPI, comm_single.cpp for one
// process (built when CMake finds no MPI). Internal; not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad::distributed::comm {

bool available();
// Starts the runtime unless something else did; true if this call started it.
bool init(int* argc, char*** argv);
void finalize();
int rank();
int size();
[[noreturn]] void abort(int code);
// Prints "rank <r>: <message>" to stderr, then abort(code).
[[noreturn]] void abort_job(int code, const std::string& message);
// Records that this rank left collectives unfinished (a backward that threw
// mid-pass): from then on every call above that communicates, finalize()
// included, ends the job with `why` instead, because the other ranks wait
// for collectives this rank will never join.
void mark_unfinished(const std::string& why);
void barrier();
double sum(double value);
void broadcast_bytes(void* data, std::size_t bytes, int root);
// Every rank's `local` (same length on all ranks), rank after rank.
std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& local);
// The first rank whose `local` differs from rank `root`'s, with both values
// (rank -1 if none); every rank gets the same answer. Lists are compared by
// length with it before all_gather, which needs equal lengths.
struct Mismatch {
    int rank = -1;
    std::uint64_t theirs = 0, roots = 0;
};
inline Mismatch first_different(std::uint64_t local, int root = 0) {
    const auto all = all_gather({local});
    for (std::size_t r = 0; r < all.size(); ++r)
        if (all[r] != all[std::size_t(root)]) return {int(r), all[r], all[std::size_t(root)]};
    return {};
}
// Every rank's `local` bytes (any length) on `root`, rank after rank; empty elsewhere.
std::vector<std::string> gather(const std::string& local, int root);

// A non-blocking in-place sum over ranks.
class Pending {
public:
    Pending() = default;
    static Pending start_sum(float* data, std::size_t n);
    static Pending start_sum(double* data, std::size_t n);
    bool done();  // also drives progress; true once finished (and when nothing is pending)
    void wait();
    bool active() const { return active_; }

private:
    std::uintptr_t handle_ = 0;  // the MPI_Request's bits (a pointer or an int, by implementation)
    bool active_ = false;
};

}  // namespace tapegrad::distributed::comm
