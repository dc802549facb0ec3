// Tensor buffers are reused: each thread keeps the buffers it frees, by
// size, and hands them out again (training allocates the same sizes every
// step, so steady-state steps neither call malloc for them nor touch fresh
// pages). The cache is bounded (see max_cached_bytes) and freed when the
// thread ends; these functions inspect and empty it.
#pragma once

#include <cstddef>

namespace tapegrad {

std::size_t cached_bytes() noexcept;           // held by this thread's cache
void release_cached_memory() noexcept;         // give this thread's cached buffers back to malloc
constexpr std::size_t max_cached_bytes = std::size_t(1) << 30;  // per thread

}  // namespace tapegrad
