#include <iostream>

#include <tapegrad/tapegrad.hpp>

int main() {
    tapegrad::Tensor64 x({1.0, 2.0, 3.0}, true);
    auto y = tapegrad::sum(x * x);
    y.backward();
    bool ok = x.grad().value() == xt::xarray<double>({2.0, 4.0, 6.0});
    std::cout << "gradient " << x.grad() << (ok ? " ok" : " WRONG") << "\n";
    return ok ? 0 : 1;
}
