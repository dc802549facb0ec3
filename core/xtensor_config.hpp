// tapegrad's configuration of xtensor. It must come before the first
// xtensor header of every translation unit (the CMake target adds it to each
// one with -include), because it chooses the allocator of xt::xarray.
//
// Why a custom allocator: xtensor's default (xsimd::aligned_allocator) calls
// posix_memalign, which fragments glibc's heap and made allocation the
// largest cost of small ops. Plain malloc is fast but only 16-byte aligned,
// and then xtensor computes the first elements of a result with scalar code
// and the rest with SIMD code, depending on the address: exp/tanh of the
// same inputs could differ in the last bit from run to run. This allocator
// over-allocates from malloc and returns 64-byte aligned memory (the width
// of an AVX-512 register), so results never depend on where a buffer lies.
#pragma once

#if defined(XTENSOR_CONFIG_HPP) && !defined(TAPEGRAD_XTENSOR_CONFIG_HPP)
#error "tapegrad/core/xtensor_config.hpp must be included before any xtensor header (link tapegrad::tapegrad, which adds it)"
#endif
#define TAPEGRAD_XTENSOR_CONFIG_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace tapegrad::detail {

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
        if (n > (SIZE_MAX - alignment) / sizeof(T)) throw std::bad_alloc();
        void* raw = std::malloc(n * sizeof(T) + alignment);
        if (!raw) throw std::bad_alloc();
        // malloc's 16-byte alignment leaves at least 16 bytes before the
        // aligned address: room to remember the raw pointer.
        auto aligned = (reinterpret_cast<std::uintptr_t>(raw) + alignment) & ~std::uintptr_t(alignment - 1);
        reinterpret_cast<void**>(aligned)[-1] = raw;
        return reinterpret_cast<T*>(aligned);
    }
    void deallocate(T* p, std::size_t) noexcept {
        if (p) std::free(reinterpret_cast<void**>(p)[-1]);
    }
};

template <class T, class U>
bool operator==(const AlignedAllocator<T>&, const AlignedAllocator<U>&) noexcept {
    return true;
}
template <class T, class U>
bool operator!=(const AlignedAllocator<T>&, const AlignedAllocator<U>&) noexcept {
    return false;
}

}  // namespace tapegrad::detail

#define XTENSOR_DEFAULT_ALLOCATOR(T) ::tapegrad::detail::AlignedAllocator<T>
#ifndef XTENSOR_USE_XSIMD
#define XTENSOR_USE_XSIMD
#endif
