// Must NOT compile: tapegrad's arrays are built with xtensor's SIMD code, so
// code that sees them without XTENSOR_USE_XSIMD would instantiate xtensor
// differently from the library. The CTest test compile_fail.no_xsimd
// compiles this without the target's definitions and expects the message of
// core/array.hpp.
// expect: tapegrad needs XTENSOR_USE_XSIMD
#include <tapegrad/tapegrad.hpp>

int main() { return static_cast<int>(tapegrad::Tensor::scalar(1.0f).size()); }
