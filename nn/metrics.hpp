// Classification metrics from scores (logits or probabilities) and integer
// labels. Scores are [batch, classes]: the prediction is the arg-max of each
// row (the first one on ties). A single column [batch, 1] is a binary logit:
// class 1 where it is > 0.
#pragma once

#include <cstddef>
#include <cstdint>

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/indexing.hpp>

namespace tapegrad::nn {

template <class T> Index predict_classes(const BasicTensor<T>& scores);

// Fraction of rows predicted right, in [0, 1]. ShapeError if the number of
// labels differs from the batch.
template <class T> double accuracy(const BasicTensor<T>& scores, const Index& labels);

// counts[true class][predicted class], [classes, classes]. ValueError naming
// any label or prediction outside [0, classes); ShapeError on a size mismatch.
Array<std::int64_t> confusion_matrix(const Index& predicted, const Index& labels, std::size_t classes);
template <class T> Array<std::int64_t> confusion_matrix(const BasicTensor<T>& scores, const Index& labels);

}  // namespace tapegrad::nn
