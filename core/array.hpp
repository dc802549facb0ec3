// tapegrad::Array<T>: the xtensor container behind every tensor value and
// every array in tapegrad's API. It is Array<T> with tapegrad's
// allocator (64-byte aligned, cached per thread; see core/allocator.hpp)
// named explicitly, so xtensor's global default stays untouched: your own
// xt::xarray keeps xtensor's allocator, and both convert into each other.
#pragma once

// tapegrad is built with xtensor's SIMD code; xtensor declares its
// containers and assignment differently without it, so every translation
// unit that sees tapegrad's arrays must agree (the CMake target and
// tapegrad.pc define it for you).
#ifndef XTENSOR_USE_XSIMD
#error "tapegrad needs XTENSOR_USE_XSIMD defined for all code (link tapegrad::tapegrad or use `pkg-config --cflags tapegrad`)"
#endif

#include <xtensor/xarray.hpp>

#include <tapegrad/core/allocator.hpp>

namespace tapegrad {

template <class T>
using Array = xt::xarray<T, XTENSOR_DEFAULT_LAYOUT, detail::AlignedAllocator<T>>;

}  // namespace tapegrad
