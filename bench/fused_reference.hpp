// The "fused" reference of issue 15 for GELU, SiLU and LayerNorm, forward
// and backward, float32: one loop per output, vectorised with the same xsimd
// math kernels tapegrad's ops use. GELU and SiLU are one xtensor expression
// per output assigned with xt::noalias (xtensor evaluates erf and exp with
// xsimd); LayerNorm is one pass per row for its statistics (xsimd sums) and
// one per output. Outputs go into buffers allocated once. The derivatives
// are written out by hand:
//
//   gelu(x)  = x Φ(x),        Φ(x) = (1 + erf(x/√2)) / 2
//   gelu'(x) = Φ(x) + x φ(x), φ(x) = exp(-x²/2) / √(2π)
//   silu(x)  = x s,           s = 1 / (1 + exp(-x))
//   silu'(x) = s (1 + x (1 - s))
//   layernorm, per row of n: x̂ = (x - μ) r, r = 1/√(σ² + ε), y = x̂ w + b
//     dx = r (d - mean(d) - x̂ mean(d x̂)) with d = g w;  dw = Σ_rows g x̂;  db = Σ_rows g
#pragma once

#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xtensor.hpp>

namespace bench::fused {

using Matrix = xt::xtensor<float, 2>;
using Vector = xt::xtensor<float, 1>;

inline void gelu_forward(const Matrix& x, Matrix& y) {
    const float k = float(1.0 / std::sqrt(2.0));
    xt::noalias(y) = 0.5f * x * (1.0f + xt::erf(k * x));
}

inline void gelu_backward(const Matrix& x, const Matrix& g, Matrix& dx) {
    const float k = float(1.0 / std::sqrt(2.0)), c = float(1.0 / std::sqrt(2.0 * M_PI));
    xt::noalias(dx) = g * (0.5f * (1.0f + xt::erf(k * x)) + c * x * xt::exp(-0.5f * x * x));
}

inline void silu_forward(const Matrix& x, Matrix& y) { xt::noalias(y) = x / (1.0f + xt::exp(-x)); }

inline void silu_backward(const Matrix& x, const Matrix& g, Matrix& dx) {
    // s appears twice; the compiler sees one inlined xsimd exp on the same
    // batch twice and computes it once.
    auto s = 1.0f / (1.0f + xt::exp(-x));
    xt::noalias(dx) = g * s * (1.0f + x * (1.0f - s));
}

// Σ a[i] and Σ a[i] b[i] with xsimd batches (a plain loop would not be
// vectorised: float addition is not associative without -ffast-math).
inline float sum(const float* a, std::size_t n) {
    using B = xsimd::batch<float>;
    B acc(0.0f);
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size) acc += B::load_unaligned(a + i);
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) s += a[i];
    return s;
}

inline float dot(const float* a, const float* b, std::size_t n) {
    using B = xsimd::batch<float>;
    B acc(0.0f);
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size) acc = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc);
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// Σ (a[i] - m)²
inline float centered_squares(const float* a, float m, std::size_t n) {
    using B = xsimd::batch<float>;
    B acc(0.0f);
    const B mb(m);
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size) {
        const B d = B::load_unaligned(a + i) - mb;
        acc = xsimd::fma(d, d, acc);
    }
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) s += (a[i] - m) * (a[i] - m);
    return s;
}

// LayerNorm over the last axis with weight and bias. forward() saves the
// row statistics (as an engine would), backward() reads them.
struct LayerNorm {
    Matrix y, dx;
    Vector mean, rstd, dw, db, d;  // d: one row of g w

    LayerNorm(std::size_t rows, std::size_t cols)
        : y(Matrix::from_shape({rows, cols})),
          dx(Matrix::from_shape({rows, cols})),
          mean(Vector::from_shape({rows})),
          rstd(Vector::from_shape({rows})),
          dw(Vector::from_shape({cols})),
          db(Vector::from_shape({cols})),
          d(Vector::from_shape({cols})) {}

    void forward(const Matrix& x, const Vector& w, const Vector& b, float eps) {
        const std::size_t rows = x.shape(0), n = x.shape(1);
        const float *wp = w.data(), *bp = b.data();  // raw pointers: loops the compiler vectorises
        for (std::size_t r = 0; r < rows; ++r) {
            const float* xr = x.data() + r * n;
            float* yr = y.data() + r * n;
            const float m = sum(xr, n) / float(n);
            const float s = 1.0f / std::sqrt(centered_squares(xr, m, n) / float(n) + eps);
            mean(r) = m;
            rstd(r) = s;
            for (std::size_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * s * wp[i] + bp[i];
        }
    }

    void backward(const Matrix& x, const Matrix& g, const Vector& w) {
        const std::size_t rows = x.shape(0), n = x.shape(1);
        dw.fill(0.0f);
        db.fill(0.0f);
        const float* wp = w.data();
        float *dr = d.data(), *dwp = dw.data(), *dbp = db.data();
        for (std::size_t r = 0; r < rows; ++r) {
            const float* xr = x.data() + r * n;
            const float* gr = g.data() + r * n;
            float* dxr = dx.data() + r * n;
            const float m = mean(r), s = rstd(r);
            for (std::size_t i = 0; i < n; ++i) dr[i] = gr[i] * wp[i];
            // mean(d x̂) = r (Σ d x - μ Σ d) / n
            const float sum_d = sum(dr, n);
            const float mean_d = sum_d / float(n);
            const float mean_dxhat = s * (dot(dr, xr, n) - m * sum_d) / float(n);
            for (std::size_t i = 0; i < n; ++i) {
                const float xhat = (xr[i] - m) * s;
                dxr[i] = s * (dr[i] - mean_d - xhat * mean_dxhat);
                dwp[i] += gr[i] * xhat;
                dbp[i] += gr[i];
            }
        }
    }
};

}  // namespace bench::fused
