#include <tapegrad/nn/data/dataset.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <tapegrad/nn/data/idx.hpp>

namespace tapegrad::data {

std::string fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

namespace {
std::string find_file(const std::string& dir, const std::string& stem) {
    for (const char* suffix : {".gz", ""}) {
        auto path = (std::filesystem::path(dir) / (stem + suffix)).string();
        if (std::filesystem::exists(path)) return path;
    }
    throw IoError("load_mnist: " + (std::filesystem::path(dir) / (stem + ".gz")).string() +
                  " not found. Fashion-MNIST comes with the Debian package dataset-fashion-mnist "
                  "(apt-get install dataset-fashion-mnist, files in " + fashion_mnist_dir() +
                  "); original MNIST files in the same IDX format work too (pass their folder)");
}
}  // namespace

Dataset load_mnist(const std::string& dir, Split split) {
    const std::string prefix = split == Split::train ? "train" : "t10k";
    auto image_path = find_file(dir, prefix + "-images-idx3-ubyte");
    auto label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
    IdxArray images = read_idx(image_path);
    IdxArray labels = read_idx(label_path);
    if (images.type != IdxType::u8 || images.shape.size() != 3)
        throw IoError("load_mnist: " + image_path + " should hold uint8 images [N, rows, cols]");
    if (labels.type != IdxType::u8 || labels.shape.size() != 1)
        throw IoError("load_mnist: " + label_path + " should hold uint8 labels [N]");
    if (images.shape[0] != labels.shape[0])
        throw IoError("load_mnist: " + image_path + " has " + std::to_string(images.shape[0]) + " images but " +
                      label_path + " has " + std::to_string(labels.shape[0]) + " labels");

    Dataset d;
    const std::size_t n = images.shape[0], dim = images.shape[1] * images.shape[2];
    d.features = Array<float>::from_shape({n, dim});
    const std::uint8_t* px = images.u8();
    float* out = d.features.data();
    for (std::size_t i = 0; i < n * dim; ++i) out[i] = static_cast<float>(px[i]) * (1.0f / 255.0f);
    d.labels.resize(n);
    const std::uint8_t* lb = labels.u8();
    for (std::size_t i = 0; i < n; ++i) {
        d.labels[i] = lb[i];
        d.classes = std::max<std::size_t>(d.classes, lb[i] + 1u);
    }
    return d;
}

Normalizer Normalizer::fit(const Dataset& d) {
    Normalizer z;
    const float* p = d.features.data();
    const std::size_t count = d.features.size();
    if (count == 0) return z;
    double sum = 0, squares = 0;
    for (std::size_t i = 0; i < count; ++i) {
        sum += p[i];
        squares += double(p[i]) * p[i];
    }
    const double mean = sum / count;
    z.mean = static_cast<float>(mean);
    z.stddev = static_cast<float>(std::sqrt(std::max(squares / count - mean * mean, 1e-12)));
    return z;
}

void Normalizer::apply(Dataset& d) const {
    const float scale = 1.0f / stddev;
    for (auto& v : d.features) v = (v - mean) * scale;
}

namespace {
Dataset take_rows(const Dataset& d, const std::vector<std::size_t>& rows) {
    Dataset out;
    out.classes = d.classes;
    const std::size_t dim = d.dim();
    out.features = Array<float>::from_shape({rows.size(), dim});
    out.labels.resize(rows.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::copy_n(d.features.data() + rows[r] * dim, dim, out.features.data() + r * dim);
        out.labels[r] = d.labels[rows[r]];
    }
    return out;
}

std::vector<std::size_t> shuffled(std::size_t n, Generator& gen) {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), gen.engine());
    return order;
}
}  // namespace

std::pair<Dataset, Dataset> train_validation_split(const Dataset& d, double validation_fraction, Generator& gen) {
    if (!(validation_fraction >= 0 && validation_fraction < 1))
        throw ValueError("train_validation_split: validation_fraction must be in [0, 1), got " +
                         std::to_string(validation_fraction));
    auto order = shuffled(d.size(), gen);
    const auto n_val = static_cast<std::size_t>(std::llround(validation_fraction * double(d.size())));
    std::vector<std::size_t> val(order.begin(), order.begin() + n_val), fit(order.begin() + n_val, order.end());
    return {take_rows(d, fit), take_rows(d, val)};
}

Dataset head(const Dataset& d, std::size_t n) {
    std::vector<std::size_t> rows(std::min(n, d.size()));
    std::iota(rows.begin(), rows.end(), 0);
    return take_rows(d, rows);
}

BatchIterator::BatchIterator(const Dataset& d, std::size_t batch_size, Generator& gen, bool shuffle)
    : data_(d), batch_(batch_size), gen_(gen), shuffle_(shuffle) {
    if (batch_size == 0) throw ValueError("BatchIterator: batch size must be at least 1");
    start_epoch();
}

void BatchIterator::start_epoch() {
    if (shuffle_) {
        order_ = shuffled(data_.size(), gen_);
    } else {
        order_.resize(data_.size());
        std::iota(order_.begin(), order_.end(), 0);
    }
    position_ = 0;
}

void BatchIterator::restore(std::vector<std::size_t> order, std::size_t position) {
    const std::size_t n = data_.size();
    if (order.size() != n)
        throw ValueError("BatchIterator::restore: the order has " + std::to_string(order.size()) +
                         " rows but the dataset has " + std::to_string(n));
    std::vector<bool> seen(n, false);
    for (std::size_t row : order) {
        if (row >= n || seen[row])
            throw ValueError("BatchIterator::restore: the order is not a permutation of the dataset's rows (row " +
                             std::to_string(row) + (row >= n ? " out of range)" : " repeated)"));
        seen[row] = true;
    }
    if (position > n)
        throw ValueError("BatchIterator::restore: position " + std::to_string(position) + " is past the " +
                         std::to_string(n) + " rows");
    order_ = std::move(order);
    position_ = position;
}

std::size_t BatchIterator::batches_per_epoch() const { return (data_.size() + batch_ - 1) / batch_; }

bool BatchIterator::next(Tensor& features, Index& labels) {
    if (position_ >= order_.size()) {
        start_epoch();
        return false;
    }
    const std::size_t n = std::min(batch_, order_.size() - position_), dim = data_.dim();
    Array<float> x = Array<float>::from_shape({n, dim});
    labels.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t row = order_[position_ + r];
        std::copy_n(data_.features.data() + row * dim, dim, x.data() + r * dim);
        labels[r] = data_.labels[row];
    }
    position_ += n;
    features = Tensor(std::move(x));
    return true;
}

}  // namespace tapegrad::data
