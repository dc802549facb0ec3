// Matrix products and axis permutations: forward and vector-Jacobian product
// side by side.
//
// Every product is one internal op, product(a, b, ta, tb, mode), computing
// op(a)·op(b) with op = transpose-of-the-last-two-axes when the flag is set.
// The flags go straight to BLAS gemm, so no transposed copy is ever made
// (materialising a transpose costs about as much as the product itself, see
// the shared notes). The VJPs are again products with other flags:
//   C = op_a(A)·op_b(B)  =>  dA = g·op_b(B)ᵀ  (or op_b(B)·gᵀ when A is transposed)
//                            dB = op_a(A)ᵀ·g  (or gᵀ·op_a(A) when B is transposed)
// When an operand is shared by every batch (2-D, or a batch of 1), its
// gradient is the sum over the batch; the "batch_sum" mode computes
// Σ_i op(a_i)·op(b_i) directly with gemm accumulating into one result (one
// gemm over the flattened rows when the layout allows), instead of a
// [batch, m, n] gradient that the engine would then have to reduce.
#include <tapegrad/ops/linalg.hpp>

#include <algorithm>
#include <climits>
#include <numeric>

#include <xtensor-blas/xblas.hpp>  // cxxblas::gemm on raw pointers
#include <xtensor/xmanipulation.hpp>

#include <tapegrad/core/numel.hpp>
#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/kernels/gemm.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::VjpContext;

namespace {

// Row-major C = op(A)·op(B) + beta·C for an [m,k]·[k,n] product of
// contiguous matrices. Empty products are handled here because BLAS rejects
// a leading dimension of 0; small ones go to kernels::small_gemm.
template <class T>
void gemm(const T* a, bool ta, const T* b, bool tb, T* c, std::size_t m, std::size_t n, std::size_t k, T beta) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        std::for_each(c, c + m * n, [beta](T& v) { v = beta == T(0) ? T(0) : v * beta; });
        return;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        throw ValueError("matmul: dimension too large for BLAS (m=" + std::to_string(m) + ", n=" +
                         std::to_string(n) + ", k=" + std::to_string(k) + ")");
    if (kernels::small_gemm(a, ta, b, tb, c, m, n, k, beta)) return;  // below BLAS's per-call cost
    const int M = int(m), N = int(n), K = int(k);
    cxxblas::gemm<int>(cxxblas::StorageOrder::RowMajor, ta ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       tb ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans, M, N, K, T(1), a, ta ? M : K, b,
                       tb ? K : N, beta, c, N);
}

enum class Mode {
    batched,        // C_i = op(a_i)·op(b_i), batches broadcast (2-D or batch 1 shared)
    batch_sum,      // C = Σ_i op(a_i)·op(b_i), both 3-D with the same batch; 2-D result
    batch_sum_keep  // the same as [1, m, n] (gradient of a batch-of-1 operand)
};

// The geometry of one product: which operands are batches, and the sizes.
struct Plan {
    bool batched_a = false, batched_b = false;  // 3-D operands
    std::size_t batch = 1, batch_a = 1, batch_b = 1;
    std::size_t m = 0, n = 0, k = 0;
    Shape out;
    // A 2-D or batch-of-1 operand under a larger batch: its gradient is a sum.
    bool shared_a() const { return (batched_a || batched_b) && (!batched_a || (batch_a == 1 && batch != 1)); }
    bool shared_b() const { return (batched_a || batched_b) && (!batched_b || (batch_b == 1 && batch != 1)); }
};

template <class S>
Plan plan(const S& sa, const S& sb, bool ta, bool tb, Mode mode) {
    auto fail = [&](const std::string& why) {
        throw ShapeError("matmul: cannot multiply shapes " + detail::shape_str(sa) + (ta ? " (transposed)" : "") +
                         " and " + detail::shape_str(sb) + (tb ? " (transposed)" : "") + ": " + why);
    };
    if (sa.size() < 2 || sa.size() > 3 || sb.size() < 2 || sb.size() > 3)
        fail("operands must be 2-D matrices or 3-D batches of matrices");
    Plan p;
    const std::size_t ra = sa.size(), rb = sb.size();
    p.batched_a = ra == 3;
    p.batched_b = rb == 3;
    if (p.batched_a) p.batch_a = sa[0];
    if (p.batched_b) p.batch_b = sb[0];
    p.m = ta ? sa[ra - 1] : sa[ra - 2];
    p.k = ta ? sa[ra - 2] : sa[ra - 1];
    const std::size_t kb = tb ? sb[rb - 1] : sb[rb - 2];
    p.n = tb ? sb[rb - 2] : sb[rb - 1];
    if (p.k != kb) fail("inner dimensions differ (" + std::to_string(p.k) + " vs " + std::to_string(kb) + ")");
    if (p.batched_a && p.batched_b && p.batch_a != p.batch_b && p.batch_a != 1 && p.batch_b != 1)
        fail("batch sizes differ (" + std::to_string(p.batch_a) + " vs " + std::to_string(p.batch_b) + ")");
    p.batch = !p.batched_a ? p.batch_b : !p.batched_b ? p.batch_a : p.batch_a == 1 ? p.batch_b : p.batch_a;
    if (mode != Mode::batched) {
        if (!p.batched_a || !p.batched_b || p.batch_a != p.batch_b) fail("a batch sum needs two equal batches");
        p.out = mode == Mode::batch_sum ? Shape{p.m, p.n} : Shape{1, p.m, p.n};
    } else {
        p.out = (p.batched_a || p.batched_b) ? Shape{p.batch, p.m, p.n} : Shape{p.m, p.n};
    }
    detail::checked_numel("matmul", p.out);  // [2^40, 0] @ [0, 2^40]: each fits, the product does not
    return p;
}

template <class T>
Array<T> forward(const Array<T>& a, const Array<T>& b, bool ta, bool tb, Mode mode, const Plan& p) {
    Array<T> c = Array<T>::from_shape(p.out);
    // Nothing to compute, however large the batch: [2^40, 0, 3]·[2^40, 3, 0]
    // must not loop 2^40 times over empty matrices.
    if (c.size() == 0) return c;
    if (p.k == 0) {
        c.fill(T(0));
        return c;
    }
    const std::size_t sa = p.m * p.k, sb = p.k * p.n, sc = p.m * p.n;  // matrix sizes
    if (mode == Mode::batched && !p.batched_a && !p.batched_b) {
        gemm(a.data(), ta, b.data(), tb, c.data(), p.m, p.n, p.k, T(0));
    } else if (mode == Mode::batched && p.batched_a && p.batch_a == p.batch && p.batch_b == 1 && !ta) {
        // One right operand under an untransposed batch: the batch's rows are
        // one [batch*m, k] matrix, so a single gemm does it all.
        gemm(a.data(), false, b.data(), tb, c.data(), p.batch * p.m, p.n, p.k, T(0));
    } else if (mode == Mode::batched) {
        // Per batch; a shared operand (2-D or batch 1) has stride 0.
        const std::size_t step_a = p.batch_a > 1 ? sa : 0, step_b = p.batch_b > 1 ? sb : 0;
        for (std::size_t i = 0; i < p.batch; ++i)
            gemm(a.data() + i * step_a, ta, b.data() + i * step_b, tb, c.data() + i * sc, p.m, p.n, p.k, T(0));
    } else if (ta && !tb) {
        // Σ_i a_iᵀ·b_i = [a_1; a_2; ...]ᵀ·[b_1; b_2; ...]: one gemm over the
        // flattened [batch*k, m] and [batch*k, n] rows.
        gemm(a.data(), true, b.data(), false, c.data(), p.m, p.n, p.batch * p.k, T(0));
    } else {
        c.fill(T(0));
        for (std::size_t i = 0; i < p.batch; ++i)
            gemm(a.data() + i * sa, ta, b.data() + i * sb, tb, c.data(), p.m, p.n, p.k, T(1));
    }
    return c;
}

template <class T>
BasicTensor<T> product(const BasicTensor<T>& a, const BasicTensor<T>& b, bool ta, bool tb, Mode mode) {
    const Plan p = plan(a.shape(), b.shape(), ta, tb, mode);
    Op<T> op(mode == Mode::batched ? "matmul" : "matmul_batch_sum", {a, b});
    auto y = op.forward([ta, tb, mode, p](const Array<T>& u, const Array<T>& v) { return forward(u, v, ta, tb, mode, p); });
    // A shared operand's gradient is summed over the batch by the product
    // itself (keeping a batch axis of 1 when the operand had one).
    auto reduce = [&](bool shared, bool batched) {
        return mode != Mode::batched || !shared ? Mode::batched
               : batched                        ? Mode::batch_sum_keep
                                                : Mode::batch_sum;
    };
    // dA needs B and dB needs A: keep only what a needed gradient uses.
    return op.record(y, [sa = op.needs(1) ? op.save(a) : detail::Saved<T>{},
                         sb = op.needs(0) ? op.save(b) : detail::Saved<T>{}, ta, tb, ma = reduce(p.shared_a(), p.batched_a),
                         mb = reduce(p.shared_b(), p.batched_b)](VjpContext<T>& c, const BasicTensor<T>& g) {
        BasicTensor<T> ga, gb;
        if (c.needs(0)) {  // d op(A) = g·op(B)ᵀ
            const auto& b = c.unpack(sb);
            ga = ta ? product(b, g, tb, true, ma) : product(g, b, false, !tb, ma);
        }
        if (c.needs(1)) {  // d op(B) = op(A)ᵀ·g
            const auto& a = c.unpack(sa);
            gb = tb ? product(g, a, true, ta, mb) : product(a, g, !ta, false, mb);
        }
        return Grads<T>{ga, gb};
    });
}

}  // namespace

template <class T>
BasicTensor<T> matmul(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return product(a, b, false, false, Mode::batched);
}

template <class T>
BasicTensor<T> matmul(const BasicTensor<T>& a, const BasicTensor<T>& b, bool transpose_a, bool transpose_b) {
    return product(a, b, transpose_a, transpose_b, Mode::batched);
}

template <class T>
BasicTensor<T> permute(const BasicTensor<T>& x, const std::vector<std::size_t>& perm) {
    const std::size_t n = x.dim();
    std::vector<std::size_t> inverse(n, n);
    bool ok = perm.size() == n;
    for (std::size_t i = 0; ok && i < n; ++i) {
        ok = perm[i] < n && inverse[perm[i]] == n;
        if (ok) inverse[perm[i]] = i;
    }
    if (!ok) {
        std::string p;
        for (auto v : perm) p += (p.empty() ? "" : ", ") + std::to_string(v);
        throw ValueError("permute: [" + p + "] is not a permutation of the " + std::to_string(n) +
                         " axes of a tensor of shape " + detail::shape_str(x.shape()));
    }
    Op<T> op("permute", {x});
    // An explicit permute is asked for a new layout: materialise it.
    auto y = op.forward([perm](const Array<T>& v) { return Array<T>(xt::transpose(v, perm)); });
    return op.record(y, [inverse](VjpContext<T>&, const BasicTensor<T>& g) {
        return Grads<T>{permute(g, inverse)};
    });
}

template <class T>
BasicTensor<T> transpose(const BasicTensor<T>& x) {
    std::vector<std::size_t> perm(x.dim());
    std::iota(perm.rbegin(), perm.rend(), std::size_t(0));
    return permute(x, perm);
}

template <class T>
BasicTensor<T> transpose(const BasicTensor<T>& x, std::ptrdiff_t axis0, std::ptrdiff_t axis1) {
    std::vector<std::size_t> perm(x.dim());
    std::iota(perm.begin(), perm.end(), std::size_t(0));
    std::swap(perm[detail::normalize_axis("transpose", axis0, x.dim())],
              perm[detail::normalize_axis("transpose", axis1, x.dim())]);
    return permute(x, perm);
}

#define TAPEGRAD_INSTANTIATE(T)                                                               \
    template BasicTensor<T> matmul(const BasicTensor<T>&, const BasicTensor<T>&);            \
    template BasicTensor<T> matmul(const BasicTensor<T>&, const BasicTensor<T>&, bool, bool); \
    template BasicTensor<T> transpose(const BasicTensor<T>&);                                 \
    template BasicTensor<T> transpose(const BasicTensor<T>&, std::ptrdiff_t, std::ptrdiff_t); \
    template BasicTensor<T> permute(const BasicTensor<T>&, const std::vector<std::size_t>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
