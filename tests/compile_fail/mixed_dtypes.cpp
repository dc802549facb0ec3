// Must NOT compile: float32 and float64 tensors do not mix implicitly. Each
// file here is a CTest test compile_fail.<file> that passes when the compiler
// prints the text after "expect:" (see core/mixed_dtypes.hpp).
// expect: cannot mix float32 and float64
#include <tapegrad/tapegrad.hpp>

int main() {
    tapegrad::Tensor a({1.0f, 2.0f});
    tapegrad::Tensor64 b({1.0, 2.0});
    auto c = a + b;
    return static_cast<int>(c.size());
}
