// Must NOT compile: mse_loss of a float32 and a float64 tensor.
// expect: mse_loss: cannot mix float32 and float64
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

int main() {
    Tensor a({1.0f, 2.0f});
    Tensor64 b({1.0, 2.0});
    auto c = tapegrad::nn::mse_loss(a, b);
    return static_cast<int>(c.size());
}
