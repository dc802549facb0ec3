// Functional transforms (core/functional.hpp): each checked against finite
// differences and against the others, on functions that mix exp, tanh,
// matmul, broadcasting and reductions.
#include <cmath>

#include "op_test_util.hpp"

namespace fn = tapegrad::functional;

namespace {

using Tensors = std::vector<Tensor64>;

// y[2, 2] = tanh(x·w + b) * exp(0.3 · rowsum(x)); x[2, 3], w[3, 2], b[2]
Tensor64 f_vec(const Tensors& in) {
    auto h = tanh(matmul(in[0], in[1]) + in[2]);
    return h * exp(in[0].sum(1, true) * 0.3);
}
// A scalar of the same inputs, with a log-sum-exp and a square on top.
Tensor64 f_scalar(const Tensors& in) { return f_vec(in).logsumexp() + (in[1] * in[1]).sum() * 0.1; }

Tensors inputs() { return {uniform({2, 3}, 1), uniform({3, 2}, 2), uniform({2}, 3)}; }

std::vector<double> flat(const Tensor64& t) { return {t.value().begin(), t.value().end()}; }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
    }
}

// Central differences of flat(g(xs)) with respect to input k: rows are the
// output elements, columns the elements of input k.
template <class G>
std::vector<std::vector<double>> numeric_jacobian(G&& g, const Tensors& xs, std::size_t k) {
    const double h = 1e-6;
    const std::size_t n_out = flat(g(xs)).size();
    std::vector<std::vector<double>> jac(n_out, std::vector<double>(xs[k].size()));
    for (std::size_t j = 0; j < xs[k].size(); ++j) {
        auto shifted = [&](double by) {
            Tensors ys = xs;
            ys[k] = Tensor64(Array<double>(xs[k].value()));
            ys[k].modify([&](auto& v) { v.flat(j) += by; });
            return flat(g(ys));
        };
        auto plus = shifted(h), minus = shifted(-h);
        for (std::size_t o = 0; o < n_out; ++o) jac[o][j] = (plus[o] - minus[o]) / (2 * h);
    }
    return jac;
}

std::vector<double> flatten(const std::vector<std::vector<double>>& m) {
    std::vector<double> out;
    for (const auto& row : m) out.insert(out.end(), row.begin(), row.end());
    return out;
}

// The analytic gradient of f_scalar, as a function to differentiate numerically.
std::vector<Tensor64> analytic_grad(const Tensors& xs) { return fn::vjp(f_scalar, xs).grads; }

}  // namespace

TEST_CASE("functional: jacobian matches finite differences and its rows are vjps with unit vectors") {
    const auto xs = inputs();
    const auto jac = fn::jacobian(f_vec, xs);
    REQUIRE(jac.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) {
        CAPTURE(k);
        Shape want = {2, 2};
        for (auto d : xs[k].shape()) want.push_back(d);
        REQUIRE(jac[k].shape_vector() == want);
        check_close(flat(jac[k]), flatten(numeric_jacobian(f_vec, xs, k)), 1e-6, 1e-8);
    }
    // Row e of the Jacobian is e^T J.
    for (std::size_t e = 0; e < 4; ++e) {
        auto unit = Tensor64::zeros({2, 2});
        unit.modify([&](auto& v) { v.flat(e) = 1; });
        const auto r = fn::vjp(f_vec, xs, unit);
        for (std::size_t k = 0; k < 3; ++k) {
            const auto row = flat(jac[k]);
            const auto n = xs[k].size();
            check_close(flat(r.grads[k]), std::vector<double>(row.begin() + e * n, row.begin() + (e + 1) * n), 1e-14,
                        1e-15);
        }
    }
}

TEST_CASE("functional: vjp gives the output and v^T J, against finite differences") {
    const auto xs = inputs();
    const auto v = uniform({2, 2}, 7);
    const auto r = fn::vjp(f_vec, xs, v);
    CHECK(flat(r.output) == flat(f_vec(xs)));
    CHECK_FALSE(r.output.requires_grad());
    for (std::size_t k = 0; k < 3; ++k) {
        const auto jac = numeric_jacobian(f_vec, xs, k);
        std::vector<double> want(xs[k].size(), 0.0);
        for (std::size_t o = 0; o < jac.size(); ++o)
            for (std::size_t j = 0; j < want.size(); ++j) want[j] += flat(v)[o] * jac[o][j];
        check_close(flat(r.grads[k]), want, 1e-6, 1e-8);
    }
}

TEST_CASE("functional: jvp equals the Jacobian times the tangents and a directional difference") {
    const auto xs = inputs();
    const Tensors ts = {uniform({2, 3}, 11), uniform({3, 2}, 12), uniform({2}, 13)};
    const auto r = fn::jvp(f_vec, xs, ts);
    REQUIRE(r.tangent.shape_vector() == Shape{2, 2});
    const auto jac = fn::jacobian(f_vec, xs);
    std::vector<double> want(4, 0.0);
    for (std::size_t k = 0; k < 3; ++k) {
        const auto j = flat(jac[k]), t = flat(ts[k]);
        for (std::size_t o = 0; o < 4; ++o)
            for (std::size_t i = 0; i < t.size(); ++i) want[o] += j[o * t.size() + i] * t[i];
    }
    check_close(flat(r.tangent), want, 1e-12, 1e-14);
    // (f(x + h t) - f(x - h t)) / 2h
    auto along = [&](double h) {
        Tensors ys;
        for (std::size_t k = 0; k < 3; ++k) ys.push_back((xs[k] + ts[k] * h).detach());
        return flat(f_vec(ys));
    };
    const auto plus = along(1e-6), minus = along(-1e-6);
    for (std::size_t o = 0; o < 4; ++o) CHECK(flat(r.tangent)[o] == doctest::Approx((plus[o] - minus[o]) / 2e-6).epsilon(1e-6));
}

TEST_CASE("functional: hessian is symmetric, matches differences of the gradient and the jacobian of the gradient") {
    const auto xs = inputs();
    const auto H = fn::hessian(f_scalar, xs);
    REQUIRE(H.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            CAPTURE(i);
            CAPTURE(j);
            Shape want = xs[i].shape_vector();
            for (auto d : xs[j].shape()) want.push_back(d);
            REQUIRE(H[i][j].shape_vector() == want);
            // H[i][j](a, b) == H[j][i](b, a)
            const auto hij = flat(H[i][j]), hji = flat(H[j][i]);
            const auto ni = xs[i].size(), nj = xs[j].size();
            for (std::size_t a = 0; a < ni; ++a)
                for (std::size_t b = 0; b < nj; ++b) CHECK(hij[a * nj + b] == doctest::Approx(hji[b * ni + a]).epsilon(1e-12));
            // Row block i of the Hessian: numeric derivative of gradient i with respect to input j.
            auto grad_i = [i](const Tensors& ys) { return analytic_grad(ys)[i]; };
            check_close(hij, flatten(numeric_jacobian(grad_i, xs, j)), 1e-6, 1e-8);
        }
    }
    // Transforms compose: the jacobian of a gradient computed with create_graph.
    for (std::size_t i = 0; i < 3; ++i) {
        auto grad_i = [i](const Tensors& ys) { return fn::vjp(f_scalar, ys, {}, {/*create_graph=*/true}).grads[i]; };
        const auto jg = fn::jacobian(grad_i, xs);
        for (std::size_t j = 0; j < 3; ++j) check_close(flat(jg[j]), flat(H[i][j]), 1e-12, 1e-14);
    }
}

TEST_CASE("functional: hvp equals the Hessian times v and differences of the gradient along v") {
    const auto xs = inputs();
    const Tensors vs = {uniform({2, 3}, 21), uniform({3, 2}, 22), uniform({2}, 23)};
    const auto r = fn::hvp(f_scalar, xs, vs);
    CHECK(r.output.item() == f_scalar(xs).item());
    const auto H = fn::hessian(f_scalar, xs);
    for (std::size_t i = 0; i < 3; ++i) {
        std::vector<double> want(xs[i].size(), 0.0);
        for (std::size_t j = 0; j < 3; ++j) {
            const auto h = flat(H[i][j]), v = flat(vs[j]);
            for (std::size_t a = 0; a < want.size(); ++a)
                for (std::size_t b = 0; b < v.size(); ++b) want[a] += h[a * v.size() + b] * v[b];
        }
        check_close(flat(r.hvp[i]), want, 1e-12, 1e-14);
        // (grad(x + h v) - grad(x - h v)) / 2h
        auto along = [&](double h) {
            Tensors ys;
            for (std::size_t k = 0; k < 3; ++k) ys.push_back((xs[k] + vs[k] * h).detach());
            return flat(analytic_grad(ys)[i]);
        };
        const auto plus = along(1e-6), minus = along(-1e-6);
        for (std::size_t a = 0; a < want.size(); ++a)
            CHECK(flat(r.hvp[i])[a] == doctest::Approx((plus[a] - minus[a]) / 2e-6).epsilon(1e-6));
    }
}

TEST_CASE("functional: one-tensor forms, inputs left untouched, zeros where f ignores an input") {
    auto x = uniform({3}, 5);
    x.requires_grad_(true);
    const auto before = flat(x);
    // d exp(x) / dx = diag(exp(x)); the Hessian of sum(exp(x)) is the same.
    const auto J = fn::jacobian([](const Tensor64& t) { return t.exp(); }, x);
    const auto H = fn::hessian([](const Tensor64& t) { return t.exp().sum(); }, x);
    REQUIRE(J.shape_vector() == Shape{3, 3});
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = 0; b < 3; ++b) {
            const double want = a == b ? std::exp(before[a]) : 0.0;
            CHECK(J.value()(a, b) == doctest::Approx(want).epsilon(1e-14));
            CHECK(H.value()(a, b) == doctest::Approx(want).epsilon(1e-14));
        }
    CHECK(flat(x) == before);
    CHECK_FALSE(x.grad().defined());
    CHECK(x.is_leaf());
    // f ignores its second input: its gradient and Jacobian are zeros, not undefined.
    const auto r = fn::vjp([](const Tensors& in) { return in[0].sum(); }, {x, Tensor64::ones({2})});
    CHECK(flat(r.grads[1]) == std::vector<double>{0, 0});
    const auto hv = fn::hvp([](const Tensor64& t) { return t.sum(); }, x, Tensor64::ones({3}));  // linear: H = 0
    CHECK(flat(hv.hvp[0]) == std::vector<double>{0, 0, 0});
}

TEST_CASE("functional: create_graph keeps results differentiable with respect to the caller's tensors") {
    auto x = uniform({3}, 8);
    x.requires_grad_(true);
    auto cube = [](const Tensor64& t) { return (t * t * t).sum(); };
    // grad = 3x^2; the sum of the hvp with v = 1 is 6 sum(x), whose derivative is 6.
    const auto r = fn::hvp(cube, x, Tensor64::ones({3}), {/*create_graph=*/true});
    REQUIRE(r.hvp[0].requires_grad());
    const auto d = grad(r.hvp[0].sum(), {x})[0];
    CHECK(flat(d) == std::vector<double>{6, 6, 6});
    CHECK_FALSE(x.grad().defined());

    // A gradient penalty on a captured parameter: d/dw |d f/dx|^2 through vjp
    // equals the same written with grad() directly.
    auto w = uniform({3, 2}, 9);
    w.requires_grad_(true);
    auto xm = uniform({2, 3}, 10);
    auto model = [&w](const Tensor64& t) { return tanh(matmul(t, w)).sum(); };
    const auto gx = fn::vjp(model, xm, {}, {/*create_graph=*/true}).grads[0];
    const auto via_vjp = grad((gx * gx).sum(), {w})[0];
    auto xl = Tensor64(Array<double>(xm.value()), true);
    const auto g = grad(model(xl), {xl}, {}, {false, true})[0];
    const auto direct = grad((g * g).sum(), {w})[0];
    check_close(flat(via_vjp), flat(direct), 1e-14, 1e-15);
    CHECK_FALSE(w.grad().defined());
}

TEST_CASE("functional: misuse names the transform and the shapes") {
    const auto xs = inputs();
    expect_error<ShapeError>([&] { fn::vjp(f_vec, xs, Tensor64::ones({3})); }, {"vjp", "v has shape [3]", "[2, 2]"});
    expect_error<ShapeError>([&] { fn::vjp(f_vec, xs); }, {"vjp", "[2, 2]", "not one element"});
    expect_error<ShapeError>([&] { fn::hessian(f_vec, xs); }, {"hessian", "one element", "[2, 2]"});
    expect_error<ShapeError>([&] { fn::hvp(f_vec, xs, xs); }, {"hvp", "one element", "[2, 2]"});
    expect_error<ShapeError>([&] { fn::hvp(f_scalar, xs, {xs[0], xs[0], xs[2]}); },
                             {"hvp", "v 1 has shape [2, 3]", "input 1 has shape [3, 2]"});
    expect_error<ValueError>([&] { fn::jvp(f_vec, xs, {xs[0]}); }, {"jvp", "1 tangents for 3 inputs"});
    expect_error<ValueError>([&] { fn::jacobian(f_vec, {xs[0], Tensor64(), xs[2]}); }, {"jacobian", "input 1 is undefined"});
    expect_error<ValueError>([&] { fn::jacobian(fn::Fn<double>(), xs); }, {"jacobian", "function is empty"});
}
