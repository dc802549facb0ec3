// The backward engine: chain rule over a DAG, accumulation, graph release,
// create_graph, and the errors of misuse.
#include <doctest/doctest.h>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

TEST_CASE("engine: fan-out sums the contributions of every use") {
    Tensor64 x({1.0, 2.0, 3.0}, true);
    auto y = sum(x * x + x);  // dy/dx = 2x + 1
    y.backward();
    CHECK(x.grad().value() == xt::xarray<double>({3.0, 5.0, 7.0}));
}

TEST_CASE("engine: diamond DAG") {
    Tensor64 x = Tensor64::scalar(2.0, true);
    auto a = x * 3.0;
    auto b = exp(x);
    auto y = a * b;  // d/dx (3x e^x) = 3e^x + 3x e^x
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(3 * std::exp(2.0) + 6 * std::exp(2.0)));
}

TEST_CASE("engine: leaf gradients accumulate across backward calls until zeroed") {
    Tensor64 x({1.0, -1.0}, true);
    sum(x * 2.0).backward();
    sum(x * 2.0).backward();
    CHECK(x.grad().value() == xt::xarray<double>({4.0, 4.0}));
    x.zero_grad();
    sum(x * 3.0).backward();
    CHECK(x.grad().value() == xt::xarray<double>({3.0, 3.0}));
}

TEST_CASE("engine: broadcast input gets its gradient reduced to its own shape") {
    Tensor64 m = Tensor64::ones({3, 4}, true);
    Tensor64 b({1.0, 2.0, 3.0, 4.0}, true);
    sum(m * b).backward();
    CHECK(b.grad().shape_vector() == Shape{4});
    CHECK(b.grad().value() == xt::xarray<double>({3.0, 3.0, 3.0, 3.0}));
}

TEST_CASE("engine: a million-op chain backwards and is destroyed without recursion") {
    Tensor x = Tensor::scalar(1.0f, true);
    {
        Tensor y = x;
        for (int i = 0; i < 1000000; ++i) y = y * 1.0f;
        y.backward();
    }
    CHECK(x.grad().item() == 1.0f);
}
