// Tensor buffers are reused: each thread keeps the buffers it frees, by
// size, and hands them out again (training allocates the same sizes every
// step, so steady-state steps neither call malloc for them nor touch fresh
// pages). The small records behind tensors and graphs (tensor headers,
// nodes, edge lists) are kept the same way, in a second cache of the thread
// with the same rules (docs/engine.md, "Where graph memory comes from").
// These functions inspect and empty the calling thread's caches.
//
// Bounds, per thread: at most max_cached_bytes in all, at most
// max_cached_per_size buffers of one size, and only buffers the thread
// allocated itself. A buffer freed on another thread than the one that
// allocated it (a graph handed to a worker, a producer's tensors consumed
// elsewhere) goes straight back to malloc: one thread's allocations never
// fill another's cache. The cache is freed when its thread ends.
//
// The environment variable TAPEGRAD_BUFFER_CACHE, read once at the first
// allocation, switches the cache: 0 off (every buffer goes back to malloc at
// once), 1 on. Unset, it is on, except in builds with AddressSanitizer,
// where it is off so that ASan's quarantine sees every free; with it on
// there, cached buffers are poisoned, so a use after free is still reported
// until the buffer is reused (scripts/test runs the sanitizer suite both ways).
#pragma once

#include <cstddef>

namespace tapegrad {

std::size_t cached_bytes() noexcept;    // buffers held by this thread's cache (records not counted)
void release_cached_memory() noexcept;  // give this thread's cached buffers and records back to malloc
bool buffer_cache_enabled() noexcept;   // TAPEGRAD_BUFFER_CACHE, or the build's default
constexpr std::size_t max_cached_bytes = std::size_t(1) << 30;  // per thread
constexpr std::size_t max_cached_per_size = 256;                // buffers of one size, per thread
                                                                // (records: 8192 of one size)

}  // namespace tapegrad
