#include <tapegrad/nn/losses.hpp>

#include <limits>
#include <sstream>
#include <string>

#include <tapegrad/nn/activations.hpp>
#include <tapegrad/nn/shape_util.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/unary.hpp>

namespace tapegrad::nn {

namespace {

// A mean over no elements has no value: refused here, naming the loss
// (mean's own error would name only "mean").
template <class T>
BasicTensor<T> apply_reduction(const char* loss, const BasicTensor<T>& losses, Reduction r) {
    switch (r) {
        case Reduction::sum: return sum(losses);
        case Reduction::none: return losses;
        case Reduction::mean: break;
    }
    if (losses.size() == 0)
        throw ValueError(std::string(loss) + ": the mean reduction needs at least one element, got shape " +
                         shape_string(losses.shape()));
    return mean(losses);
}

template <class T>
void same_shape(const char* loss, const BasicTensor<T>& input, const BasicTensor<T>& target) {
    if (input.shape() != target.shape())
        throw ShapeError(std::string(loss) + ": input shape " + shape_string(input.shape()) +
                         " and target shape " + shape_string(target.shape()) + " differ");
}

// Checks [batch, classes] against the labels.
template <class T>
void check_labels(const char* loss, const BasicTensor<T>& scores, const Index& labels) {
    if (scores.dim() != 2)
        throw ShapeError(std::string(loss) + ": input must be [batch, classes], got shape " +
                         shape_string(scores.shape()));
    if (labels.size() != scores.shape()[0])
        throw ShapeError(std::string(loss) + ": input shape " + shape_string(scores.shape()) + " has " +
                         std::to_string(scores.shape()[0]) + " rows but labels shape is [" +
                         std::to_string(labels.size()) + "]");
    const auto classes = static_cast<std::int64_t>(scores.shape()[1]);
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= classes)
            throw ValueError(std::string(loss) + ": label " + std::to_string(labels[i]) + " (at position " +
                             std::to_string(i) + ") is out of range for " + std::to_string(classes) + " classes");
}

// PyTorch's rule for binary_cross_entropy: probabilities and targets lie in
// [0, 1]. Outside it (or NaN) the loss is not a cross-entropy: clamping
// would return a number for a bug upstream (a missing sigmoid, a label 2).
template <class T>
void check_unit_interval(const char* loss, const char* what, const BasicTensor<T>& x) {
    const T* v = x.value().data();
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!(v[i] >= T(0) && v[i] <= T(1))) {
            std::ostringstream os;
            os << loss << ": every " << what << " must be in [0, 1], got " << v[i] << " at flat index " << i
               << " of shape " << shape_string(x.shape());
            throw ValueError(os.str());
        }
}

}  // namespace

template <class T>
BasicTensor<T> mse_loss(const BasicTensor<T>& prediction, const BasicTensor<T>& target, Reduction reduction) {
    same_shape("mse_loss", prediction, target);
    auto d = prediction - target;
    return apply_reduction("mse_loss", d * d, reduction);
}

template <class T>
BasicTensor<T> binary_cross_entropy(const BasicTensor<T>& p, const BasicTensor<T>& t, Reduction reduction) {
    same_shape("binary_cross_entropy", p, t);
    check_unit_interval("binary_cross_entropy", "input probability", p);
    check_unit_interval("binary_cross_entropy", "target", t);
    const T eps = std::numeric_limits<T>::epsilon();
    auto q = clamp(p, eps, T(1) - eps);
    auto losses = neg(t * log(q) + (Scalar<T>(1) - t) * log(Scalar<T>(1) - q));
    return apply_reduction("binary_cross_entropy", losses, reduction);
}

template <class T>
BasicTensor<T> binary_cross_entropy_with_logits(const BasicTensor<T>& z, const BasicTensor<T>& t,
                                                Reduction reduction) {
    same_shape("binary_cross_entropy_with_logits", z, t);
    // -log sigmoid(z) = softplus(-z) and -log(1 - sigmoid(z)) = softplus(z),
    // so the loss is t softplus(-z) + (1-t) softplus(z) = softplus(z) - z t.
    return apply_reduction("binary_cross_entropy_with_logits", softplus(z) - z * t, reduction);
}

template <class T>
BasicTensor<T> nll_loss(const BasicTensor<T>& logp, const Index& labels, Reduction reduction) {
    check_labels("nll_loss", logp, labels);
    auto picked = detail::gather_labels("nll_loss", logp, labels);  // checked again on every replay
    return apply_reduction("nll_loss", neg(reshape(picked, {-1})), reduction);
}

template <class T>
BasicTensor<T> cross_entropy(const BasicTensor<T>& logits, const Index& labels, Reduction reduction) {
    check_labels("cross_entropy", logits, labels);
    // Only an empty batch gets here with no classes; log_softmax's own error
    // would name logsumexp, not the loss.
    if (logits.shape()[1] == 0)
        throw ShapeError("cross_entropy: input shape " + shape_string(logits.shape()) + " has no classes");
    auto picked = detail::gather_labels("cross_entropy", log_softmax(logits, 1), labels);  // checked on every replay
    return apply_reduction("cross_entropy", neg(reshape(picked, {-1})), reduction);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                   \
    template BasicTensor<T> mse_loss(const BasicTensor<T>&, const BasicTensor<T>&, Reduction);                  \
    template BasicTensor<T> binary_cross_entropy(const BasicTensor<T>&, const BasicTensor<T>&, Reduction);      \
    template BasicTensor<T> binary_cross_entropy_with_logits(const BasicTensor<T>&, const BasicTensor<T>&,      \
                                                             Reduction);                                        \
    template BasicTensor<T> cross_entropy(const BasicTensor<T>&, const Index&, Reduction);                      \
    template BasicTensor<T> nll_loss(const BasicTensor<T>&, const Index&, Reduction);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
