// Small matrix products without BLAS. OpenBLAS spends 130-480 ns on any
// sgemm call, however small (argument checks, buffer allocation under a
// lock, packing both operands): a 32x16 by 16x16 product, 8,192
// multiply-adds, took 300 ns, where the arithmetic is under 100. Products
// whose operands fit in L1 run here instead (ops/linalg.cpp asks first),
// with B packed once and register-tiled rows of C. Instantiated for float
// and double in gemm.cpp.
#pragma once

#include <cstddef>

namespace tapegrad::kernels {

// Row-major C = op(A)·op(B) + beta·C for an [m,k]·[k,n] product of
// contiguous matrices (op = transpose when the flag is set; leading
// dimensions are those of contiguous matrices), when the product is small
// enough: returns false, and does nothing, otherwise. beta == 0 never reads C.
// m, n and k are positive.
template <class T>
bool small_gemm(const T* a, bool ta, const T* b, bool tb, T* c, std::size_t m, std::size_t n, std::size_t k, T beta);

}  // namespace tapegrad::kernels
