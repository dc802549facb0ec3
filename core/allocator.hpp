// The allocator of tapegrad's arrays (tapegrad::Array<T>, core/array.hpp).
//
// Why not xtensor's default (xsimd::aligned_allocator): it calls
// posix_memalign, which fragments glibc's heap and made allocation the
// largest cost of small ops. Plain malloc is fast but only 16-byte aligned,
// and then xtensor computes the first elements of a result with scalar code
// and the rest with SIMD code, depending on the address: exp/tanh of the
// same inputs could differ in the last bit from run to run. This allocator
// over-allocates from malloc and returns 64-byte aligned memory (the width
// of an AVX-512 register), so results never depend on where a buffer lies.
// Freed buffers are kept per thread for reuse (see core/memory.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace tapegrad::detail {

// 64-byte aligned memory from malloc, with a per-thread cache of freed
// buffers by size (core/memory.cpp): training allocates the same sizes every
// step, and reusing them avoids malloc and, for large buffers, the page
// faults of fresh memory.
void* buffer_allocate(std::size_t bytes);
void buffer_release(void* p, std::size_t bytes) noexcept;
// The same for the small records of tensors and graphs, from a second cache
// of the thread (so they never count against, or crowd out, buffers).
void* record_allocate(std::size_t bytes);
void record_release(void* p, std::size_t bytes) noexcept;

template <class T>
struct AlignedAllocator {
    using value_type = T;
    static constexpr std::size_t alignment = 64;
    template <class U>
    struct rebind {
        using other = AlignedAllocator<U>;
    };

    AlignedAllocator() noexcept = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > (SIZE_MAX - 4096) / sizeof(T)) throw std::bad_alloc();
        return static_cast<T*>(buffer_allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { buffer_release(p, n * sizeof(T)); }
};

// Allocator of the engine's own records: std::allocate_shared for nodes
// and tensor headers (object and control block in one block), the edge
// lists of nodes. Freed as usual when the last owner goes; a record freed on
// another thread than the one that made it goes back to malloc.
template <class T>
struct RecordAllocator {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = RecordAllocator<U>;
    };

    RecordAllocator() noexcept = default;
    template <class U>
    RecordAllocator(const RecordAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > (SIZE_MAX - 4096) / sizeof(T)) throw std::bad_alloc();
        return static_cast<T*>(record_allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { record_release(p, n * sizeof(T)); }
};

template <class T, class U>
bool operator==(const RecordAllocator<T>&, const RecordAllocator<U>&) noexcept {
    return true;
}
template <class T, class U>
bool operator!=(const RecordAllocator<T>&, const RecordAllocator<U>&) noexcept {
    return false;
}

template <class T, class U>
bool operator==(const AlignedAllocator<T>&, const AlignedAllocator<U>&) noexcept {
    return true;
}
template <class T, class U>
bool operator!=(const AlignedAllocator<T>&, const AlignedAllocator<U>&) noexcept {
    return false;
}

}  // namespace tapegrad::detail
