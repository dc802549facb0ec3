// Element counts of shapes, checked before anything is allocated: a shape
// whose element count does not fit wraps around in plain size_t arithmetic
// (2^40 x 2^30 elements "are" 0), and an op would then write past a buffer
// it believes large enough. Include only from the library's .cpp files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tapegrad::detail {

// The most elements a tensor may have: its size in bytes, and its strides,
// must fit in a ptrdiff_t for both element types.
constexpr std::size_t max_numel = static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(double);

// The number of elements of `shape`. Throws ValueError naming `op` and the
// shape when the product of its non-zero dimensions exceeds max_numel: a
// zero dimension makes the tensor empty, but the other dimensions still set
// the strides and the size of anything reduced or broadcast from it.
std::size_t checked_numel(const char* op, const std::vector<std::size_t>& shape);
template <class S>
std::size_t checked_numel(const char* op, const S& shape) {
    return checked_numel(op, std::vector<std::size_t>(shape.begin(), shape.end()));
}

}  // namespace tapegrad::detail
