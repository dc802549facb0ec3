#include <tapegrad/core/threads.hpp>

#include <dlfcn.h>

namespace tapegrad {

namespace {
// Looked up at run time so that tapegrad links against any BLAS; OpenBLAS
// (the one the project installs) exports these.
using SetThreads = void (*)(int);
using GetThreads = int (*)();
SetThreads openblas_set() { return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
GetThreads openblas_get() { return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }
}  // namespace

bool set_num_threads(int threads) {
    if (threads < 1) return false;
    auto set = openblas_set();
    if (!set) return false;
    set(threads);
    return true;
}

int num_threads() {
    auto get = openblas_get();
    return get ? get() : 1;
}

}  // namespace tapegrad
