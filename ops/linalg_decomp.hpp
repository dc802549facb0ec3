// Differentiable linear algebra on LAPACK (through xtensor-blas): solve,
// inv, det, slogdet, cholesky and triangular_solve.
//
// Every op takes square matrices batched over leading axes, a of shape
// (..., n, n), and works on each matrix of the batch; b has shape (..., n, k)
// with the same leading axes as a. Every VJP is written with tensor ops, so
// second derivatives (create_graph, gradgradcheck) work.
//
// Errors: a singular matrix (solve, inv, triangular_solve) or one that is not
// positive definite (cholesky) raises ValueError naming the op, the batch
// index of the matrix and what LAPACK reported; shapes that do not fit raise
// ShapeError naming the op and both shapes. "Singular" means LAPACK met an
// exactly zero pivot: a nearly singular matrix gives large, inaccurate
// results, as in numpy.
#pragma once

#include <tapegrad/core/mixed_dtypes.hpp>
#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// x with a·x = b (LU with partial pivoting, LAPACK getrf/getrs). For one
// right-hand side vector, pass it as an (n, 1) matrix.
template <class T> BasicTensor<T> solve(const BasicTensor<T>& a, const BasicTensor<T>& b);
TAPEGRAD_NO_MIXED_ARGS(solve)

// a⁻¹ (LU). Prefer solve(a, b) to inv(a)·b: it is cheaper and more accurate.
template <class T> BasicTensor<T> inv(const BasicTensor<T>& a);

// The determinant, shape (...). A singular matrix has determinant 0 (not an
// error); the gradient there (the adjugate) is not implemented: backward
// raises ValueError naming det and the batch index.
template <class T> BasicTensor<T> det(const BasicTensor<T>& a);

// sign(det a) and log|det a|, each of shape (...): the logarithm does not
// overflow where det would. sign is a constant (no gradient); logabsdet is
// differentiable, d log|det a| / da = a⁻ᵀ. A singular matrix gives sign 0
// and logabsdet -inf; the gradient there is infinite, so backward through it
// raises ValueError naming slogdet and the batch index.
template <class T>
struct Slogdet {
    BasicTensor<T> sign;
    BasicTensor<T> logabsdet;
};
template <class T> Slogdet<T> slogdet(const BasicTensor<T>& a);

// The lower-triangular l with a = l·lᵀ, for symmetric positive-definite a
// (LAPACK potrf). Only the lower triangle of a is read. The gradient is the
// symmetric one (that of a perturbation that keeps a symmetric): for a
// gradient check, differentiate cholesky(0.5 * (a + transpose(a, -2, -1))).
template <class T> BasicTensor<T> cholesky(const BasicTensor<T>& a);

// x with op(t)·x = b, where t is the upper (upper = true) or lower triangle
// of a, op transposes it when `transpose` is set, and `unit_diagonal` takes
// t's diagonal as ones (a's diagonal is then not read). The other triangle
// of a is ignored and gets no gradient. LAPACK trtrs.
//   triangular_solve(l, b, /*upper=*/false)                    l⁻¹·b
//   triangular_solve(l, b, /*upper=*/false, /*transpose=*/true)  l⁻ᵀ·b
template <class T>
BasicTensor<T> triangular_solve(const BasicTensor<T>& a, const BasicTensor<T>& b, bool upper,
                                bool transpose = false, bool unit_diagonal = false);
TAPEGRAD_NO_MIXED_ARGS(triangular_solve)

}  // namespace tapegrad
