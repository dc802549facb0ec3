// What sits in front of every tensor buffer (core/memory.cpp, core/arena.cpp):
// internal to the allocator, not part of the API.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_ASAN 1
#endif
#endif
#ifdef TAPEGRAD_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace tapegrad::detail {

constexpr std::size_t kBufferAlignment = 64;

// The 16 bytes before a buffer. From malloc: the id of the thread cache that
// may keep it (0: none) and the pointer malloc returned. From a replay's
// arena (core/arena.hpp): kArenaOwner and the arena's record of the buffer.
struct BufferHeader {
    std::uint64_t owner;
    void* raw;
};
constexpr std::uint64_t kArenaOwner = ~std::uint64_t(0);

inline BufferHeader& buffer_header(void* p) { return reinterpret_cast<BufferHeader*>(p)[-1]; }

// Under AddressSanitizer, memory that is not a live buffer's requested bytes
// is poisoned (a cached buffer, an arena's free bytes, a size class's tail).
#ifdef TAPEGRAD_ASAN
inline void poison(const void* p, std::size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
inline void unpoison(const void* p, std::size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#else
inline void poison(const void*, std::size_t) {}
inline void unpoison(const void*, std::size_t) {}
#endif

}  // namespace tapegrad::detail
