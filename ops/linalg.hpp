// Matrix products and axis permutations.
#pragma once

#include <cstddef>
#include <vector>

#include <tapegrad/core/mixed_dtypes.hpp>
#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// Matrix product through BLAS gemm. Operands are 2-D ([m,k] x [k,n]) or
// batched 3-D ([b,m,k] x [b,k,n]); a 2-D operand is shared by every batch,
// and a batch of 1 broadcasts. Transposes are handed to BLAS, never copied.
template <class T> BasicTensor<T> matmul(const BasicTensor<T>& a, const BasicTensor<T>& b);
// op(a)·op(b), where op transposes the last two axes when its flag is set
// (x·Wᵀ for a linear layer); the flags go to BLAS, nothing is copied.
template <class T>
BasicTensor<T> matmul(const BasicTensor<T>& a, const BasicTensor<T>& b, bool transpose_a, bool transpose_b);
TAPEGRAD_NO_MIXED_ARGS(matmul)

// Reverses the axes, or swaps two of them.
template <class T> BasicTensor<T> transpose(const BasicTensor<T>& x);
template <class T> BasicTensor<T> transpose(const BasicTensor<T>& x, std::ptrdiff_t axis0, std::ptrdiff_t axis1);
// Result axis i is input axis perm[i].
template <class T> BasicTensor<T> permute(const BasicTensor<T>& x, const std::vector<std::size_t>& perm);

}  // namespace tapegrad
