// In-memory classification datasets: loading MNIST-format files
// (Fashion-MNIST by default), normalisation, a train/validation split and a
// shuffled mini-batch iterator.
//
//   auto train = data::load_mnist(data::fashion_mnist_dir(), data::Split::train);
//   auto [fit, val] = data::train_validation_split(train, 0.2, gen);
//   data::BatchIterator batches(fit, 128, gen);
//   Tensor x; Index y;
//   while (batches.next(x, y)) { ... }
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/ops/indexing.hpp>

namespace tapegrad::data {

struct Dataset {
    Array<float> features;  // [N, D], one example per row
    Index labels;                // N class indices
    std::size_t classes = 0;
    std::size_t size() const { return labels.size(); }
    std::size_t dim() const { return features.dimension() == 2 ? features.shape()[1] : 0; }
};

enum class Split { train, test };

// Where the Debian package dataset-fashion-mnist installs the files.
std::string fashion_mnist_dir();

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from `dir`,
// pixels scaled to [0, 1] and flattened to rows. IoError naming the missing
// file and how to get it when the files are not there.
Dataset load_mnist(const std::string& dir, Split split);

// Per-feature statistics of a dataset, to standardise every split with the
// training set's numbers.
struct Normalizer {
    float mean = 0, stddev = 1;  // over all pixels: keeps images comparable
    static Normalizer fit(const Dataset& d);
    void apply(Dataset& d) const;
};

// Shuffles with `gen`, then puts `validation_fraction` of the rows (0.2 by
// default) into the second dataset.
std::pair<Dataset, Dataset> train_validation_split(const Dataset& d, double validation_fraction, Generator& gen);

// The first n rows (all of them when n >= d.size()), for quick runs.
Dataset head(const Dataset& d, std::size_t n);

// Mini-batches in a fresh random order every epoch (batch size 1 is pure
// SGD). The last batch of an epoch may be smaller.
class BatchIterator {
public:
    BatchIterator(const Dataset& d, std::size_t batch_size, Generator& gen, bool shuffle = true);
    // Fills the next batch; false at the end of an epoch (then the next call
    // starts a new, reshuffled epoch).
    bool next(Tensor& features, Index& labels);
    std::size_t batches_per_epoch() const;

    // Where the iterator stands: this epoch's row order and how many of its
    // rows have been served. A run checkpoint saves both (with the
    // generator), and restore() continues from them.
    const std::vector<std::size_t>& order() const { return order_; }
    std::size_t position() const { return position_; }
    // ValueError unless `order` is a permutation of the dataset's rows and
    // position <= its size; nothing changes then.
    void restore(std::vector<std::size_t> order, std::size_t position);

private:
    void start_epoch();
    const Dataset& data_;
    std::size_t batch_;
    Generator& gen_;
    bool shuffle_;
    std::vector<std::size_t> order_;
    std::size_t position_ = 0;
};

}  // namespace tapegrad::data
