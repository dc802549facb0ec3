// Gradient clipping, applied between backward() and the optimiser's step(),
// with PyTorch's semantics. Both change the parameters' gradients in place
// and skip parameters whose gradient is undefined.
//
//   loss.backward();
//   nn::clip_grad_norm_(model.parameters(), 1.0);
//   opt.step();
#pragma once

#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad::nn {

// The p-norm of all gradients taken together, as if concatenated into one
// vector (norm_type = infinity: the largest absolute element). If it exceeds
// max_norm, every gradient is scaled by max_norm / (norm + 1e-6). Returns the
// norm before clipping. ValueError for max_norm < 0 or norm_type <= 0.
template <class T>
double clip_grad_norm_(const std::vector<BasicTensor<T>>& params, double max_norm, double norm_type = 2);

// Clamps every gradient element to [-clip, clip]. ValueError for clip < 0.
template <class T>
void clip_grad_value_(const std::vector<BasicTensor<T>>& params, double clip);

}  // namespace tapegrad::nn
