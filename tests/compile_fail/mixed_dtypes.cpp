// Must NOT compile: float32 and float64 tensors do not mix implicitly. The
// CTest test compile_fail.mixed_dtypes expects the compiler to print
// "cannot mix float32 and float64" (see ops/arithmetic.hpp).
#include <tapegrad/tapegrad.hpp>

int main() {
    tapegrad::Tensor a({1.0f, 2.0f});
    tapegrad::Tensor64 b({1.0, 2.0});
    auto c = a + b;
    return static_cast<int>(c.size());
}
