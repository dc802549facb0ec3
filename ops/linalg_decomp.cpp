// solve, inv, det, slogdet, cholesky and triangular_solve: forward on LAPACK
// and vector-Jacobian product side by side.
//
// LAPACK is column-major and tensors are row-major, so a matrix's buffer,
// read by LAPACK, is its transpose. The code uses that instead of copying a:
// getrf factors aᵀ (same determinant; getrs 'T' then solves a·x = b and
// getrs 'N' solves aᵀ·x = b), potrf 'U' reads a's lower triangle, trtrs gets
// the other triangle and the other transpose flag. Only right-hand sides are
// copied into column-major order (O(n·k) next to the O(n³) factorisation).
//
// The VJPs are tensor ops (matmul, solve, triangular_solve, tril, ...), so
// they are recorded under create_graph. solve's VJP solves with aᵀ using the
// LU factors of the forward (kept with the node, valid because a is saved
// and version-checked), so a backward costs no second factorisation; det and
// slogdet reuse them for a⁻¹ the same way.
#include <tapegrad/ops/linalg_decomp.hpp>

#include <climits>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <xtensor-blas/xblas.hpp>    // before xlapack: defines what cxxlapack needs
#include <xtensor-blas/xlapack.hpp>  // cxxlapack on raw pointers

#include <tapegrad/core/op.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/linalg_structure.hpp>
#include <tapegrad/ops/shape.hpp>

namespace tapegrad {

using detail::Grads;
using detail::Op;
using detail::Saved;
using detail::SavedOutput;
using detail::VjpContext;

namespace {

// A batch of square matrices: the leading axes, how many matrices, their size.
struct Batch {
    Shape shape;
    std::size_t count = 1, n = 0;

    // "the matrix" or "the matrix at batch index 3" / "... [1, 0]", for errors.
    std::string matrix(std::size_t i) const {
        if (shape.empty()) return "the matrix";
        std::string index;
        for (std::size_t d = shape.size(), rest = i; d-- > 0; rest /= shape[d])
            index = std::to_string(rest % shape[d]) + (index.empty() ? "" : ", ") + index;
        return "the matrix at batch index " + (shape.size() == 1 ? index : "[" + index + "]");
    }
    // The batch's shape followed by two matrix axes, for reshape.
    std::vector<std::int64_t> with(std::int64_t rows, std::int64_t cols) const {
        std::vector<std::int64_t> s(shape.begin(), shape.end());
        s.push_back(rows);
        s.push_back(cols);
        return s;
    }
};

int lapack_int(const char* op, std::size_t v) {
    if (v > std::size_t(INT_MAX)) throw ValueError(std::string(op) + ": dimension " + std::to_string(v) + " too large for LAPACK");
    return int(v);
}

template <class T>
Batch square(const char* op, const BasicTensor<T>& a) {
    const std::size_t r = a.dim();
    if (r < 2 || a.shape()[r - 1] != a.shape()[r - 2])
        throw ShapeError(std::string(op) + ": needs square matrices, shape (..., n, n), got " +
                         detail::shape_str(a.shape()));
    Batch b;
    b.shape.assign(a.shape().begin(), a.shape().end() - 2);
    for (auto d : b.shape) b.count *= d;
    b.n = a.shape()[r - 1];
    lapack_int(op, b.n);
    return b;
}

// The number of right-hand sides k: b must be (..., n, k) with a's leading axes.
template <class T>
std::size_t rhs_columns(const char* op, const Batch& batch, const BasicTensor<T>& a, const BasicTensor<T>& b) {
    const auto& s = b.shape();
    const bool fits = s.size() == a.dim() && std::equal(batch.shape.begin(), batch.shape.end(), s.begin()) &&
                      s[s.size() - 2] == batch.n;
    if (!fits)
        throw ShapeError(std::string(op) + ": shapes " + detail::shape_str(a.shape()) + " and " +
                         detail::shape_str(b.shape()) + " do not fit: b must be (..., " + std::to_string(batch.n) +
                         ", k) with the leading axes of a");
    return lapack_int(op, s.back());
}

// A right-hand side (n×k, row-major) to and from LAPACK's column-major order.
template <class T>
void to_columns(const T* rows, T* cols, std::size_t n, std::size_t k) {
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j) cols[j * n + i] = rows[i * k + j];
}
template <class T>
void to_rows(const T* cols, T* rows, std::size_t n, std::size_t k) {
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j) rows[i * k + j] = cols[j * n + i];
}

// The LU factorisation of every matrix of a batch (getrf of aᵀ, see top).
template <class T>
struct LuFactors {
    Batch batch;
    std::vector<T> lu;
    std::vector<int> pivots;  // 1-based, as LAPACK gives them
    std::vector<int> info;    // per matrix: 0, or the 1-based position of an exactly zero pivot

    const T* matrix(std::size_t i) const { return lu.data() + i * batch.n * batch.n; }
    const int* pivots_of(std::size_t i) const { return pivots.data() + i * batch.n; }
    int ld() const { return int(std::max<std::size_t>(1, batch.n)); }
};

std::string singular(const char* op, const Batch& batch, std::size_t i, int info) {
    return std::string(op) + ": " + batch.matrix(i) + " is singular (LAPACK getrf info " + std::to_string(info) +
           ": pivot U(" + std::to_string(info) + "," + std::to_string(info) + ") is exactly zero)";
}

template <class T>
std::shared_ptr<const LuFactors<T>> factorize(const char* op, const Batch& batch, const Array<T>& a,
                                              bool singular_is_error) {
    auto f = std::make_shared<LuFactors<T>>();
    f->batch = batch;
    f->lu.assign(a.data(), a.data() + a.size());
    f->pivots.assign(batch.count * batch.n, 0);
    f->info.assign(batch.count, 0);
    const int n = int(batch.n);
    for (std::size_t i = 0; i < batch.count && n > 0; ++i) {
        f->info[i] = cxxlapack::getrf<int>(n, n, f->lu.data() + i * batch.n * batch.n, f->ld(),
                                           f->pivots.data() + i * batch.n);
        if (f->info[i] > 0 && singular_is_error) throw ValueError(singular(op, batch, i, f->info[i]));
    }
    return f;
}

// The factors of the matrix an op last factorised, shared by the op's
// forward and the ops of its VJP (which solve with the same matrix). They
// are factorised again only when handed another matrix: eager mode
// factorises once per op and its backward, and a captured program's replay,
// which hands the forward a new matrix, gets new factors for the backward's
// steps too (the forwards run before them).
template <class T>
struct LuCache {
    std::shared_ptr<const LuFactors<T>> f;
    std::vector<T> source;  // the matrix f factorises
};

template <class T>
const LuFactors<T>& factors(const char* op, const Batch& batch, const Array<T>& a, bool singular_is_error,
                            LuCache<T>& cache) {
    const bool same = cache.f && cache.source.size() == a.size() && std::equal(a.data(), a.data() + a.size(),
                                                                               cache.source.begin());
    if (!same) {
        cache.f = factorize(op, batch, a, singular_is_error);
        cache.source.assign(a.data(), a.data() + a.size());
    } else if (singular_is_error) {
        for (std::size_t i = 0; i < batch.count; ++i)
            if (cache.f->info[i] > 0) throw ValueError(singular(op, batch, i, cache.f->info[i]));
    }
    return *cache.f;
}

// The gradient of det and slogdet needs a⁻¹.
template <class T>
void require_invertible(const char* op, const LuFactors<T>& f, const char* why) {
    for (std::size_t i = 0; i < f.batch.count; ++i)
        if (f.info[i] > 0)
            throw ValueError(std::string(op) + ": no gradient at a singular matrix: " + f.batch.matrix(i) +
                             " is singular (LAPACK getrf info " + std::to_string(f.info[i]) + "); " + why);
}

// op(a)·op(b) over any number of equal leading axes (matmul takes 2-D and 3-D).
template <class T>
BasicTensor<T> mm(const BasicTensor<T>& a, const BasicTensor<T>& b, bool ta, bool tb) {
    if (a.dim() <= 3) return matmul(a, b, ta, tb);
    auto flat = [](const BasicTensor<T>& x) {
        return reshape(x, std::vector<std::int64_t>{-1, std::int64_t(x.shape()[x.dim() - 2]),
                                                    std::int64_t(x.shape()[x.dim() - 1])});
    };
    auto c = matmul(flat(a), flat(b), ta, tb);
    std::vector<std::int64_t> out(a.shape().begin(), a.shape().end() - 2);
    out.push_back(std::int64_t(c.shape()[1]));
    out.push_back(std::int64_t(c.shape()[2]));
    return reshape(c, out);
}

template <class T>
BasicTensor<T> transposed(const BasicTensor<T>& x) {
    return transpose(x, -2, -1);
}

// x with op(a)·x = b, from a's LU factors (shared with the op whose VJP
// this is, if any: `cache`).
template <class T>
BasicTensor<T> lu_solve(const BasicTensor<T>& a, const BasicTensor<T>& b, bool transpose,
                        std::shared_ptr<LuCache<T>> cache) {
    const Batch batch = square("solve", a);
    const std::size_t n = batch.n, k = rhs_columns("solve", batch, a, b);
    if (!cache) cache = std::make_shared<LuCache<T>>();
    Op<T> op("solve", {a, b});
    auto y = op.forward([batch, n, k, transpose, cache](const Array<T>& av, const Array<T>& bv) {
        const auto& f = factors("solve", batch, av, true, *cache);
        Array<T> x = Array<T>::from_shape(bv.shape());
        std::vector<T> work(n * k);
        for (std::size_t i = 0; i < batch.count && n * k > 0; ++i) {
            to_columns(bv.data() + i * n * k, work.data(), n, k);
            cxxlapack::getrs<int>(transpose ? 'N' : 'T', int(n), int(k), f.matrix(i), f.ld(), f.pivots_of(i),
                                  work.data(), f.ld());
            to_rows(work.data(), x.data() + i * n * k, n, k);
        }
        return x;
    });
    return op.record(y, [sa = op.save(a), sx = op.needs(0) ? op.save_output(y) : SavedOutput<T>{}, transpose,
                         cache](VjpContext<T>& c, const BasicTensor<T>& g) {
        // x = op(a)⁻¹·b  =>  db = op(a)⁻ᵀ·g,  d op(a) = -db·xᵀ
        auto gb = lu_solve(c.unpack(sa), g, !transpose, cache);
        BasicTensor<T> ga;
        if (c.needs(0)) {
            auto x = c.unpack(sx);
            ga = transpose ? -mm(x, gb, false, true) : -mm(gb, x, false, true);
        }
        return Grads<T>{ga, gb};
    });
}

// a⁻¹ from a's LU factors (shared as in lu_solve).
template <class T>
BasicTensor<T> lu_inverse(const BasicTensor<T>& a, std::shared_ptr<LuCache<T>> cache) {
    const Batch batch = square("inv", a);
    if (!cache) cache = std::make_shared<LuCache<T>>();
    Op<T> op("inv", {a});
    auto out = op.forward([batch, cache](const Array<T>& av) {
        const auto& f = factors("inv", batch, av, true, *cache);
        const std::size_t n = batch.n;
        // getrs 'N' with the factors of aᵀ and b = I gives (aᵀ)⁻¹ column-major,
        // which read row-major is a⁻¹: no copies.
        Array<T> y = Array<T>::from_shape(av.shape());
        y.fill(T(0));
        for (std::size_t i = 0; i < batch.count && n > 0; ++i) {
            T* yi = y.data() + i * n * n;
            for (std::size_t j = 0; j < n; ++j) yi[j * n + j] = T(1);
            cxxlapack::getrs<int>('N', int(n), int(n), f.matrix(i), f.ld(), f.pivots_of(i), yi, f.ld());
        }
        return y;
    });
    return op.record(out, [sy = op.save_output(out)](VjpContext<T>& c, const BasicTensor<T>& g) {
        // d a⁻¹ = -a⁻¹·da·a⁻¹  =>  ga = -a⁻ᵀ·g·a⁻ᵀ
        auto y = c.unpack(sy);
        return Grads<T>{-mm(mm(y, g, true, false), y, false, true)};
    });
}

// sign(det) and log|det| of every matrix from its LU factors: the product
// of U's diagonal, negated once per row exchange.
template <class T>
void sign_and_log(const LuFactors<T>& f, std::size_t i, T& sign, T& log_abs) {
    const std::size_t n = f.batch.n;
    sign = T(1);
    log_abs = T(0);
    for (std::size_t j = 0; j < n; ++j) {
        const T u = f.matrix(i)[j * n + j];
        if (u == T(0)) {
            sign = T(0);
            log_abs = -std::numeric_limits<T>::infinity();
            return;
        }
        if ((u < T(0)) != (f.pivots_of(i)[j] != int(j) + 1)) sign = -sign;
        log_abs += std::log(std::abs(u));
    }
}

}  // namespace

template <class T>
BasicTensor<T> solve(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    return lu_solve<T>(a, b, false, nullptr);
}

template <class T>
BasicTensor<T> inv(const BasicTensor<T>& a) {
    return lu_inverse<T>(a, nullptr);
}

template <class T>
BasicTensor<T> det(const BasicTensor<T>& a) {
    const Batch batch = square("det", a);
    auto cache = std::make_shared<LuCache<T>>();
    Op<T> op("det", {a});
    auto y = op.forward([batch, cache](const Array<T>& av) {
        const auto& f = factors("det", batch, av, false, *cache);
        Array<T> d = Array<T>::from_shape(batch.shape);
        for (std::size_t i = 0; i < batch.count; ++i) {
            // The product itself (not exp of the log): exact for small integers.
            T v = T(1);
            for (std::size_t j = 0; j < batch.n; ++j)
                v *= f.pivots_of(i)[j] != int(j) + 1 ? -f.matrix(i)[j * batch.n + j] : f.matrix(i)[j * batch.n + j];
            d.data()[i] = v;
        }
        return d;
    });
    return op.record(y, [sa = op.save(a), sy = op.save_output(y), cache](VjpContext<T>& c, const BasicTensor<T>& g) {
        require_invertible("det", *cache->f, "the gradient there is the adjugate, which is not implemented");
        // d det(a) = det(a)·tr(a⁻¹·da)  =>  ga = g·det(a)·a⁻ᵀ
        auto scale = reshape(g * c.unpack(sy), cache->f->batch.with(1, 1));
        return Grads<T>{scale * transposed(lu_inverse(c.unpack(sa), cache))};
    });
}

template <class T>
Slogdet<T> slogdet(const BasicTensor<T>& a) {
    const Batch batch = square("slogdet", a);
    auto cache = std::make_shared<LuCache<T>>();
    // Each of the two results computes its part from the shared factors.
    auto part = [batch, cache](bool want_sign) {
        return [batch, cache, want_sign](const Array<T>& av) {
            const auto& f = factors("slogdet", batch, av, false, *cache);
            Array<T> sign = Array<T>::from_shape(batch.shape), log_abs = Array<T>::from_shape(batch.shape);
            for (std::size_t i = 0; i < batch.count; ++i) sign_and_log(f, i, sign.data()[i], log_abs.data()[i]);
            return want_sign ? sign : log_abs;
        };
    };
    Op<T> op("slogdet", {a});
    auto y = op.forward(part(false));
    y = op.record(y, [sa = op.save(a), cache](VjpContext<T>& c, const BasicTensor<T>& g) {
        require_invertible("slogdet", *cache->f, "log|det| is -inf there and its gradient infinite");
        // d log|det a| = tr(a⁻¹·da)  =>  ga = g·a⁻ᵀ
        return Grads<T>{reshape(g, cache->f->batch.with(1, 1)) * transposed(lu_inverse(c.unpack(sa), cache))};
    });
    return {detail::no_grad_op<T>("slogdet_sign", {a}, part(true)), y};
}

template <class T>
BasicTensor<T> cholesky(const BasicTensor<T>& a) {
    const Batch batch = square("cholesky", a);
    const std::size_t n = batch.n;
    Op<T> op("cholesky", {a});
    auto y = op.forward([batch, n](const Array<T>& v) {
        Array<T> l = v;
        for (std::size_t i = 0; i < batch.count && n > 0; ++i) {
            T* li = l.data() + i * n * n;
            // potrf 'U' on the buffer (aᵀ to LAPACK) reads a's lower triangle and
            // leaves uᵀ·u = aᵀ with u upper column-major, which is l row-major.
            const int info = cxxlapack::potrf<int>('U', int(n), li, int(n));
            if (info > 0)
                throw ValueError("cholesky: " + batch.matrix(i) + " is not positive definite (LAPACK potrf info " +
                                 std::to_string(info) + ": the leading minor of order " + std::to_string(info) +
                                 " is not positive)");
            for (std::size_t r = 0; r < n; ++r)
                for (std::size_t s = r + 1; s < n; ++s) li[r * n + s] = T(0);
        }
        return l;
    });
    return op.record(y, [sl = op.save_output(y)](VjpContext<T>& c, const BasicTensor<T>& g) {
        // a = l·lᵀ  =>  l⁻¹·da·l⁻ᵀ = l⁻¹dl + (l⁻¹dl)ᵀ with l⁻¹dl lower, so
        // l⁻¹dl = Φ(l⁻¹·da·l⁻ᵀ), Φ = lower triangle with the diagonal halved.
        // Then <g, dl> = <l⁻ᵀ·Φ(lᵀg)·l⁻¹, da>; for symmetric da the gradient
        // is the symmetric part, l⁻ᵀ·φ·l⁻¹ with φ = (Φ(p) + Φ(p)ᵀ)/2, p = lᵀg.
        auto l = c.unpack(sl);
        auto p = mm(l, g, true, false);
        auto phi = (tril(p) + transposed(tril(p, -1))) * T(0.5);
        auto w = triangular_solve(l, phi, false, true);  // l⁻ᵀ·φ
        // l⁻ᵀ·wᵀ = (w·l⁻¹)ᵀ, and w·l⁻¹ = l⁻ᵀ·φ·l⁻¹ is symmetric.
        return Grads<T>{triangular_solve(l, transposed(w), false, true)};
    });
}

template <class T>
BasicTensor<T> triangular_solve(const BasicTensor<T>& a, const BasicTensor<T>& b, bool upper, bool transpose,
                                bool unit_diagonal) {
    const Batch batch = square("triangular_solve", a);
    const std::size_t n = batch.n, k = rhs_columns("triangular_solve", batch, a, b);
    Op<T> op("triangular_solve", {a, b});
    auto y = op.forward([batch, n, k, upper, transpose, unit_diagonal](const Array<T>& av, const Array<T>& bv) {
        Array<T> x = Array<T>::from_shape(bv.shape());
        std::vector<T> work(n * k);
        const int ld = int(std::max<std::size_t>(1, n));
        for (std::size_t i = 0; i < batch.count && n * k > 0; ++i) {
            to_columns(bv.data() + i * n * k, work.data(), n, k);
            // LAPACK sees aᵀ: the other triangle, the other transpose flag.
            const int info = cxxlapack::trtrs<int>(upper ? 'L' : 'U', transpose ? 'N' : 'T', unit_diagonal ? 'U' : 'N',
                                                   int(n), int(k), av.data() + i * n * n, ld, work.data(), ld);
            if (info > 0)
                throw ValueError("triangular_solve: " + batch.matrix(i) + " is singular (LAPACK trtrs info " +
                                 std::to_string(info) + ": diagonal element " + std::to_string(info) + " is zero)");
            to_rows(work.data(), x.data() + i * n * k, n, k);
        }
        return x;
    });
    return op.record(y, [sa = op.save(a), sx = op.needs(0) ? op.save_output(y) : SavedOutput<T>{}, upper, transpose,
                         unit_diagonal](VjpContext<T>& c, const BasicTensor<T>& g) {
        // x = op(t)⁻¹·b  =>  db = op(t)⁻ᵀ·g,  d op(t) = -db·xᵀ, kept on the
        // triangle that was read (without the diagonal when it is taken as 1).
        auto gb = triangular_solve(c.unpack(sa), g, upper, !transpose, unit_diagonal);
        BasicTensor<T> ga;
        if (c.needs(0)) {
            auto x = c.unpack(sx);
            auto m = transpose ? -mm(x, gb, false, true) : -mm(gb, x, false, true);
            ga = upper ? triu(m, unit_diagonal ? 1 : 0) : tril(m, unit_diagonal ? -1 : 0);
        }
        return Grads<T>{ga, gb};
    });
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
    template BasicTensor<T> solve(const BasicTensor<T>&, const BasicTensor<T>&);                       \
    template BasicTensor<T> inv(const BasicTensor<T>&);                                                \
    template BasicTensor<T> det(const BasicTensor<T>&);                                                \
    template Slogdet<T> slogdet(const BasicTensor<T>&);                                                \
    template BasicTensor<T> cholesky(const BasicTensor<T>&);                                           \
    template BasicTensor<T> triangular_solve(const BasicTensor<T>&, const BasicTensor<T>&, bool, bool, \
                                             bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad
