// Small matrix products (see gemm.hpp): C = op(A)·op(B) + beta·C with
// op(B) as a row-major [k, np] panel, np = n rounded up to whole SIMD
// batches (zero columns past n). Each tile of R rows by V batches of C is
// kept in registers while p runs over k: per p, V loads of B's row and R
// broadcasts of A's elements feed R·V independent multiply-adds (8 at
// most: enough to hide the FMA latency, few enough for 16 AVX2 registers).
#include <tapegrad/ops/kernels/gemm.hpp>

#include <algorithm>

#include <xsimd/xsimd.hpp>

namespace tapegrad::kernels {

namespace {

// The panel may take 16 KiB (half of L1). Measured against OpenBLAS 0.3.21
// (one thread, float, AVX-512): 0.4-0.6x its time at 32x16x16 and 16x16x32,
// even at 32^3, 1.1-1.4x slower at 48^3 and 64^3: products of more than
// 16,384 multiply-adds are left to BLAS.
constexpr std::size_t kPanelBytes = 16 * 1024;
constexpr std::size_t kMaxWork = 16 * 1024;

template <class T>
struct Operands {
    const T* a;
    std::size_t m, k;
    const T* panel;  // op(B): k rows of `np` elements
    std::size_t np;
    T* c;
    std::size_t n;
    T beta;
};

// Writes `count` (<= one batch) elements of v to dst, as acc + beta·dst.
template <class T, class B>
void store(const B& v, T* dst, std::size_t count, T beta) {
    constexpr std::size_t lanes = B::size;
    if (count == lanes) {
        (beta == T(0) ? v : v + B(beta) * B::load_unaligned(dst)).store_unaligned(dst);
        return;
    }
    alignas(64) T buf[lanes];
    v.store_aligned(buf);
    for (std::size_t j = 0; j < count; ++j) dst[j] = beta == T(0) ? buf[j] : buf[j] + beta * dst[j];
}

// C[i0 .. i0+R, j0 .. j0+V·lanes) (columns past n dropped).
template <class T, std::size_t R, std::size_t V, bool TA>
void tile(const Operands<T>& o, std::size_t i0, std::size_t j0) {
    using B = xsimd::batch<T>;
    constexpr std::size_t lanes = B::size;
    B acc[R][V];
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t v = 0; v < V; ++v) acc[r][v] = B(T(0));
    const T* bp = o.panel + j0;
    for (std::size_t p = 0; p < o.k; ++p, bp += o.np) {
        B bv[V];
        for (std::size_t v = 0; v < V; ++v) bv[v] = B::load_unaligned(bp + v * lanes);
        for (std::size_t r = 0; r < R; ++r) {
            // op(A)[i, p]: row-major A, or A stored as [k, m] when transposed.
            const B s(TA ? o.a[p * o.m + i0 + r] : o.a[(i0 + r) * o.k + p]);
            for (std::size_t v = 0; v < V; ++v) acc[r][v] = xsimd::fma(s, bv[v], acc[r][v]);
        }
    }
    for (std::size_t r = 0; r < R; ++r) {
        T* row = o.c + (i0 + r) * o.n;
        for (std::size_t v = 0; v < V; ++v) {
            const std::size_t j = j0 + v * lanes;
            if (j >= o.n) break;
            store<T>(acc[r][v], row + j, std::min(lanes, o.n - j), o.beta);
        }
    }
}

// All rows of one column block of V batches: tiles of R rows, then the
// leftover rows in smaller tiles.
template <class T, std::size_t V, std::size_t R, bool TA>
void rows(const Operands<T>& o, std::size_t j0) {
    std::size_t i = 0;
    for (; i + R <= o.m; i += R) tile<T, R, V, TA>(o, i, j0);
    if constexpr (R > 1) {
        for (; i + R / 2 <= o.m; i += R / 2) tile<T, R / 2, V, TA>(o, i, j0);
        if constexpr (R > 2)
            for (; i + R / 4 <= o.m; i += R / 4) tile<T, R / 4, V, TA>(o, i, j0);
        if constexpr (R > 4)
            for (; i < o.m; ++i) tile<T, 1, V, TA>(o, i, j0);
    }
}

template <class T, bool TA>
void product(const Operands<T>& o) {
    constexpr std::size_t lanes = xsimd::batch<T>::size;
    const std::size_t batches = o.np / lanes;
    std::size_t v = 0;
    for (; v + 4 <= batches; v += 4) rows<T, 4, 2, TA>(o, v * lanes);
    switch (batches - v) {
        case 3: rows<T, 3, 2, TA>(o, v * lanes); break;
        case 2: rows<T, 2, 4, TA>(o, v * lanes); break;
        case 1: rows<T, 1, 8, TA>(o, v * lanes); break;
        default: break;
    }
}

// C = op(A)·op(B) + beta·C once the sizes are known to fit (see small_gemm).
template <class T>
void multiply(const T* a, bool ta, const T* b, bool tb, T* c, std::size_t m, std::size_t n, std::size_t k, T beta) {
    constexpr std::size_t lanes = xsimd::batch<T>::size;
    const std::size_t np = (n + lanes - 1) / lanes * lanes;
    Operands<T> o{a, m, k, b, n, c, n, beta};
    alignas(64) T panel[kPanelBytes / sizeof(T)];
    if (tb || np != n) {
        // op(B) into the panel, padded with zero columns to whole batches.
        o.panel = panel;
        o.np = np;
        // Zero columns first (one fill), then B's elements column by
        // column: a copy per row would be a library call per 2 or 16 elements.
        if (np != n) std::fill(panel, panel + k * np, T(0));
        const std::size_t row_step = tb ? 1 : n, col_step = tb ? k : 1;  // op(B)[p, j] = b[p·row_step + j·col_step]
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t p = 0; p < k; ++p) panel[p * np + j] = b[p * row_step + j * col_step];
    }
    if (ta) product<T, true>(o);
    else product<T, false>(o);
}

}  // namespace

template <class T>
bool small_gemm(const T* a, bool ta, const T* b, bool tb, T* c, std::size_t m, std::size_t n, std::size_t k, T beta) {
    constexpr std::size_t lanes = xsimd::batch<T>::size;
    const std::size_t np = (n + lanes - 1) / lanes * lanes;
    if (k > kPanelBytes / sizeof(T) / np || m * n > kMaxWork / k) return false;
    // A few columns of C (2 classes) use a fraction of each batch. When A
    // is stored [k, m] its rows are op(A)ᵀ's, so Cᵀ = op(B)ᵀ·A runs along m
    // instead, A as the panel with nothing to pack (16x32ᵀ by 32x2: 175 ns
    // in BLAS, 166 here along n, 62 along m), and Cᵀ is written into C.
    // Untransposed, A would have to be packed transposed first, which
    // measured no faster than along n (32x16 by 16x2: 222-230 ns), and BLAS
    // does better (173 ns): left to it.
    constexpr std::size_t kMaxTransposed = 1024;
    if (n <= lanes / 4 && m >= lanes) {
        if (!ta || m % lanes != 0 || m * n > kMaxTransposed || k > kPanelBytes / sizeof(T) / m) return false;
        alignas(64) T ct[kMaxTransposed];
        multiply(b, !tb, a, false, ct, n, m, k, T(0));
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                c[i * n + j] = beta == T(0) ? ct[j * m + i] : ct[j * m + i] + beta * c[i * n + j];
        return true;
    }
    multiply(a, ta, b, tb, c, m, n, k, beta);
    return true;
}

template bool small_gemm(const float*, bool, const float*, bool, float*, std::size_t, std::size_t, std::size_t, float);
template bool small_gemm(const double*, bool, const double*, bool, double*, std::size_t, std::size_t, std::size_t,
                         double);

}  // namespace tapegrad::kernels
