// Loss functions, composed from tensor ops. Each reduces by mean (default),
// sum, or not at all (one loss per element or per sample).
//
// Errors: mismatched shapes are ShapeErrors naming the loss and both shapes;
// a class label outside [0, classes) is a ValueError naming the label, its
// position and the number of classes.
#pragma once

#include <tapegrad/core/mixed_dtypes.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/indexing.hpp>

namespace tapegrad::nn {

enum class Reduction { mean, sum, none };

// mean((prediction - target)^2); shapes must be equal.
template <class T>
BasicTensor<T> mse_loss(const BasicTensor<T>& prediction, const BasicTensor<T>& target,
                        Reduction reduction = Reduction::mean);

// -(t log p + (1 - t) log(1 - p)) on probabilities p. p is clamped to
// [eps, 1 - eps] (eps = machine epsilon of T) so a saturated sigmoid gives a
// large finite loss instead of inf; prefer the logits form when possible.
template <class T>
BasicTensor<T> binary_cross_entropy(const BasicTensor<T>& probabilities, const BasicTensor<T>& target,
                                    Reduction reduction = Reduction::mean);

// The same on logits z, stably: softplus(z) - z t = max(z, 0) - z t + log1p(e^-|z|).
template <class T>
BasicTensor<T> binary_cross_entropy_with_logits(const BasicTensor<T>& logits, const BasicTensor<T>& target,
                                                Reduction reduction = Reduction::mean);

TAPEGRAD_NO_MIXED_ARGS(mse_loss)
TAPEGRAD_NO_MIXED_ARGS(binary_cross_entropy)
TAPEGRAD_NO_MIXED_ARGS(binary_cross_entropy_with_logits)

// Logits [batch, classes] and one integer label per row: -log_softmax picked
// at each label. Reduction::none gives one loss per row, [batch].
template <class T>
BasicTensor<T> cross_entropy(const BasicTensor<T>& logits, const Index& labels, Reduction reduction = Reduction::mean);

// Negative log-likelihood on log-probabilities [batch, classes] (for
// example the output of log_softmax).
template <class T>
BasicTensor<T> nll_loss(const BasicTensor<T>& log_probabilities, const Index& labels,
                        Reduction reduction = Reduction::mean);

}  // namespace tapegrad::nn
