// Ops written the way a user of the installed library writes them: in their
// own translation unit (test_custom_op_defs.cpp), from the public headers
// only. tests/test_custom_ops.cpp checks them.
#pragma once

#include <tapegrad/core/tensor.hpp>

namespace user {

// x * sigmoid(beta * x) (swish), beta broadcast against x. The backward is
// written with tensor ops: second derivatives work.
template <class T>
tapegrad::BasicTensor<T> swish(const tapegrad::BasicTensor<T>& x, const tapegrad::BasicTensor<T>& beta);

// sqrt(a^2 + b^2), a and b broadcast together. The backward is written on
// raw xtensor values: first order only.
template <class T>
tapegrad::BasicTensor<T> hypot(const tapegrad::BasicTensor<T>& a, const tapegrad::BasicTensor<T>& b);

}  // namespace user
