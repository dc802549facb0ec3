// The README's first example, built against an installed tapegrad through
// find_package, with its result checked against the closed form
// d/dw sum(3 tanh(x w)) = 3 x^T (1 - tanh(x w)^2).
#include <cmath>
#include <iostream>

#include <tapegrad/tapegrad.hpp>
using namespace tapegrad;

int main() {
    Tensor64 w({{0.5, -1.0}, {2.0, 0.25}}, /*requires_grad=*/true);
    Tensor64 x({{1.0, 2.0}});                   // a batch of one input row
    auto loss = sum(tanh(matmul(x, w)) * 3.0);  // recorded on the tape
    loss.backward();                            // d loss / d w, into w.grad()
    std::cout << w.grad() << "\n";

    const double z[2] = {1.0 * 0.5 + 2.0 * 2.0, 1.0 * -1.0 + 2.0 * 0.25};
    const double xs[2] = {1.0, 2.0};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            double want = 3 * xs[i] * (1 - std::tanh(z[j]) * std::tanh(z[j]));
            if (std::abs(w.grad().value()(i, j) - want) > 1e-12) {
                std::cout << "WRONG gradient at (" << i << ", " << j << ")\n";
                return 1;
            }
        }
    std::cout << "ok\n";
    return 0;
}
