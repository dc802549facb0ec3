// Structured matrices: the identity, triangles and diagonals of the last two
// axes. The linear-algebra VJPs (ops/linalg_decomp.hpp) are written with
// these; they are ordinary differentiable ops for users too, e.g.
// log det = 2·sum(log(diagonal(cholesky(a)))).
#pragma once

#include <cstddef>
#include <cstdint>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// The n×n identity matrix (a constant; broadcasting makes it a batch).
template <class T> BasicTensor<T> eye(std::size_t n);

// The lower (tril) or upper (triu) triangle of every matrix in x (rank ≥ 2,
// shape (..., rows, cols)); the other elements become 0. Element (i, j) is
// kept when j - i ≤ k (tril) or j - i ≥ k (triu): k = 0 keeps the main
// diagonal, tril(x, -1) is strictly lower, triu(x, 1) strictly upper.
template <class T> BasicTensor<T> tril(const BasicTensor<T>& x, std::int64_t k = 0);
template <class T> BasicTensor<T> triu(const BasicTensor<T>& x, std::int64_t k = 0);

// The main diagonal of every matrix: (..., rows, cols) -> (..., min(rows, cols)).
template <class T> BasicTensor<T> diagonal(const BasicTensor<T>& x);
// Vectors to diagonal matrices: (..., n) -> (..., n, n), zero off the diagonal.
template <class T> BasicTensor<T> diag_embed(const BasicTensor<T>& x);

}  // namespace tapegrad
