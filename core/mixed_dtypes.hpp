// float32 and float64 tensors do not mix implicitly: convert one with
// .to<float>() or .to<double>(). Each op taking two or more tensors declares,
// next to its real overloads, one that matches only mixed element types and
// whose body is a static_assert naming the op, so the mistake is one readable
// line instead of a wall of failed deductions:
//
//   error: static assertion failed: tapegrad: matmul: cannot mix float32 and
//          float64 tensors; convert one with .to<float>() or .to<double>()
#pragma once

#include <type_traits>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::detail {
template <class A, class... B>
constexpr bool mixed_dtypes = !(std::is_same_v<A, B> && ...);
}  // namespace tapegrad::detail

#define TAPEGRAD_MIXED_MESSAGE(op) \
    "tapegrad: " op ": cannot mix float32 and float64 tensors; convert one with .to<float>() or .to<double>()"

// name(a, b) for a binary function or operator.
#define TAPEGRAD_NO_MIXED(name)                                                           \
    template <class A, class B, std::enable_if_t<::tapegrad::detail::mixed_dtypes<A, B>, int> = 0> \
    BasicTensor<A> name(const BasicTensor<A>&, const BasicTensor<B>&) {                   \
        static_assert(!::tapegrad::detail::mixed_dtypes<A, B>, TAPEGRAD_MIXED_MESSAGE(#name)); \
        return {};                                                                        \
    }

// name(a, b, more...) for a function with further, non-tensor arguments.
#define TAPEGRAD_NO_MIXED_ARGS(name)                                                      \
    template <class A, class B, class... Rest,                                            \
              std::enable_if_t<::tapegrad::detail::mixed_dtypes<A, B>, int> = 0>          \
    BasicTensor<A> name(const BasicTensor<A>&, const BasicTensor<B>&, const Rest&...) {   \
        static_assert(!::tapegrad::detail::mixed_dtypes<A, B>, TAPEGRAD_MIXED_MESSAGE(#name)); \
        return {};                                                                        \
    }
