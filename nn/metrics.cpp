#include <tapegrad/nn/metrics.hpp>

#include <tapegrad/core/numel.hpp>
#include <tapegrad/nn/shape_util.hpp>

namespace tapegrad::nn {

namespace {
template <class T>
void check_scores(const char* who, const BasicTensor<T>& scores) {
    if (scores.dim() != 2 || scores.shape()[1] == 0)
        throw ShapeError(std::string(who) + ": scores must be [batch, classes], got shape " +
                         shape_string(scores.shape()));
}

void check_sizes(const char* who, std::size_t batch, const Index& labels) {
    if (labels.size() != batch)
        throw ShapeError(std::string(who) + ": " + std::to_string(batch) + " predictions but labels shape is [" +
                         std::to_string(labels.size()) + "]");
}
}  // namespace

template <class T>
Index predict_classes(const BasicTensor<T>& scores) {
    check_scores("predict_classes", scores);
    const auto& v = scores.value();
    const std::size_t rows = v.shape()[0], cols = v.shape()[1];
    Index out(rows);
    for (std::size_t i = 0; i < rows; ++i) {
        const T* row = v.data() + i * cols;
        if (cols == 1) {
            out[i] = row[0] > T(0) ? 1 : 0;
            continue;
        }
        std::size_t best = 0;
        for (std::size_t j = 1; j < cols; ++j)
            if (row[j] > row[best]) best = j;
        out[i] = static_cast<std::int64_t>(best);
    }
    return out;
}

template <class T>
double accuracy(const BasicTensor<T>& scores, const Index& labels) {
    auto predicted = predict_classes(scores);
    check_sizes("accuracy", predicted.size(), labels);
    if (labels.empty()) return 0;
    std::size_t right = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
    return static_cast<double>(right) / static_cast<double>(labels.size());
}

Array<std::int64_t> confusion_matrix(const Index& predicted, const Index& labels, std::size_t classes) {
    check_sizes("confusion_matrix", predicted.size(), labels);
    detail::checked_numel("confusion_matrix", Shape{classes, classes});  // 2^32 classes: 2^64 counts
    Array<std::int64_t> counts = xt::zeros<std::int64_t>({classes, classes});
    const auto n = static_cast<std::int64_t>(classes);
    for (std::size_t i = 0; i < labels.size(); ++i) {
        for (auto [what, c] : {std::pair{"label", labels[i]}, std::pair{"prediction", predicted[i]}})
            if (c < 0 || c >= n)
                throw ValueError(std::string("confusion_matrix: ") + what + " " + std::to_string(c) + " (at position " +
                                 std::to_string(i) + ") is out of range for " + std::to_string(classes) + " classes");
        ++counts(static_cast<std::size_t>(labels[i]), static_cast<std::size_t>(predicted[i]));
    }
    return counts;
}

template <class T>
Array<std::int64_t> confusion_matrix(const BasicTensor<T>& scores, const Index& labels) {
    auto predicted = predict_classes(scores);
    const std::size_t cols = scores.shape()[1];
    return confusion_matrix(predicted, labels, cols == 1 ? 2 : cols);
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
    template Index predict_classes(const BasicTensor<T>&);                              \
    template double accuracy(const BasicTensor<T>&, const Index&);                      \
    template Array<std::int64_t> confusion_matrix(const BasicTensor<T>&, const Index&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)

}  // namespace tapegrad::nn
