// The README's first example, built against an installed tapegrad (through
// find_package, and through pkg-config), with its result checked against the
// closed form d/dw sum(3 tanh(x w)) = 3 x^T (1 - tanh(x w)^2) computed in C.
// Next to it, the consumer's own xtensor code keeps xtensor's defaults.
#include <cmath>
#include <iostream>
#include <type_traits>

#include <tapegrad/tapegrad.hpp>
#include <xtensor/xmath.hpp>
using namespace tapegrad;

extern "C" double closed_form_grad(const double x[2], const double w[2][2], int i, int j);

// Our own arrays use xtensor's default allocator, not tapegrad's: the
// package does not change xtensor's configuration for us.
static_assert(std::is_same_v<xt::xarray<double>::allocator_type,
                             xsimd::aligned_allocator<double, XSIMD_DEFAULT_ALIGNMENT>>,
              "the consumer's xt::xarray must keep xtensor's default allocator");
static_assert(!std::is_same_v<xt::xarray<double>, Array<double>>);
static_assert(std::is_same_v<Tensor64::array_type, Array<double>>);

int main() {
    Tensor64 w({{0.5, -1.0}, {2.0, 0.25}}, /*requires_grad=*/true);
    Tensor64 x({{1.0, 2.0}});                   // a batch of one input row
    auto loss = sum(tanh(matmul(x, w)) * 3.0);  // recorded on the tape
    loss.backward();                            // d loss / d w, into w.grad()
    std::cout << w.grad() << "\n";

    const double xs[2] = {1.0, 2.0};
    const double ws[2][2] = {{0.5, -1.0}, {2.0, 0.25}};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            double want = closed_form_grad(xs, ws, i, j);
            if (std::abs(w.grad().value()(i, j) - want) > 1e-12) {
                std::cout << "WRONG gradient at (" << i << ", " << j << ")\n";
                return 1;
            }
        }

    // The same with the README's short forms, a retained intermediate
    // gradient and an in-place edit, through the installed headers only.
    Tensor64 w2({{0.5, -1.0}, {2.0, 0.25}}, true);
    auto h = x.matmul(w2).tanh();
    h.retain_grad();
    (h * 3.0).sum().backward();
    if (!xt::allclose(w2.grad().value(), w.grad().value()) ||
        !xt::allclose(h.grad().value(), xt::xarray<double>{{3.0, 3.0}})) {
        std::cout << "WRONG gradient with member forms / retain_grad\n";
        return 1;
    }
    w2.modify([](auto& v) { v(0, 0) = 1.0; });
    if (w2.value()(0, 0) != 1.0 || clone(w2).value()(0, 0) != 1.0) {
        std::cout << "WRONG value after modify\n";
        return 1;
    }

    // Our own xt::xarray goes into a tensor and comes back out.
    xt::xarray<double> mine = {{1.0, -2.0}, {3.0, 0.5}};
    Tensor64 t(mine);
    xt::xarray<double> back = exp(t).value();
    if (!xt::allclose(back, xt::exp(mine))) {
        std::cout << "WRONG round trip through a tensor\n";
        return 1;
    }
    std::cout << "ok\n";
    return 0;
}
