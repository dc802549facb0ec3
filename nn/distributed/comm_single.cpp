// comm.hpp for a build without MPI: one process, rank 0 of 1. Every
// collective is the identity, so programs written for the distributed API
// run unchanged.
#include "comm.hpp"

#include <cstdio>
#include <cstdlib>

namespace tapegrad::distributed::comm {

bool available() { return false; }
bool init(int*, char***) { return false; }
void finalize() {}
int rank() { return 0; }
int size() { return 1; }
void abort(int code) { std::_Exit(code); }
void abort_job(int code, const std::string& message) {
    std::fprintf(stderr, "rank 0: %s\n", message.c_str());
    std::fflush(stderr);
    abort(code);
}
void mark_unfinished(const std::string&) {}  // one process has no collectives to leave unfinished
void barrier() {}
double sum(double value) { return value; }
void broadcast_bytes(void*, std::size_t, int) {}
std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& local) { return local; }
std::vector<std::string> gather(const std::string& local, int) { return {local}; }

Pending Pending::start_sum(float*, std::size_t) { return {}; }
Pending Pending::start_sum(double*, std::size_t) { return {}; }
bool Pending::done() { return true; }
void Pending::wait() {}

}  // namespace tapegrad::distributed::comm
