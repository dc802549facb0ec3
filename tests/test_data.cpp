// Dataset loading, splitting and batching on small generated IDX files.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include <xtensor/xmath.hpp>

#include <tapegrad/nn/data/dataset.hpp>
#include <tapegrad/nn/data/idx.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {
// A tiny MNIST-format folder: n images of 2x3 pixels, pixel value = image index.
fs::path make_mnist_dir(std::size_t n, bool gzip) {
    auto dir = fs::temp_directory_path() / ("tapegrad_data_test_" + std::to_string(n) + (gzip ? "_gz" : ""));
    fs::create_directories(dir);
    std::vector<std::uint8_t> pixels, labels;
    for (std::size_t i = 0; i < n; ++i) {
        for (int p = 0; p < 6; ++p) pixels.push_back(static_cast<std::uint8_t>(i));
        labels.push_back(static_cast<std::uint8_t>(i % 3));
    }
    std::string suffix = gzip ? ".gz" : "";
    for (std::string split : {"train", "t10k"}) {
        data::write_idx((dir / (split + "-images-idx3-ubyte" + suffix)).string(),
                        data::IdxArray::from_u8({n, 2, 3}, pixels), gzip);
        data::write_idx((dir / (split + "-labels-idx1-ubyte" + suffix)).string(),
                        data::IdxArray::from_u8({n}, labels), gzip);
    }
    return dir;
}
}  // namespace

TEST_CASE("data: load_mnist reads images as rows scaled to [0, 1], plain or gzip") {
    for (bool gzip : {false, true}) {
        auto dir = make_mnist_dir(10, gzip);
        auto d = data::load_mnist(dir.string(), data::Split::train);
        CHECK(d.size() == 10);
        CHECK(d.dim() == 6);
        CHECK(d.classes == 3);
        CHECK(d.features(4, 5) == doctest::Approx(4.0 / 255.0));
        CHECK(d.labels[4] == 1);
        fs::remove_all(dir);
    }
}

TEST_CASE("data: a missing dataset names the file and says how to get it") {
    auto dir = fs::temp_directory_path() / "tapegrad_no_such_dataset";
    try {
        data::load_mnist(dir.string(), data::Split::test);
        FAIL("expected IoError");
    } catch (const IoError& e) {
        std::string msg = e.what();
        CHECK(msg.find("t10k-images-idx3-ubyte") != std::string::npos);
        CHECK(msg.find("dataset-fashion-mnist") != std::string::npos);
    }
}

TEST_CASE("data: 80/20 split is a shuffled partition") {
    auto dir = make_mnist_dir(50, false);
    auto d = data::load_mnist(dir.string(), data::Split::train);
    Generator gen(1);
    auto [fit, val] = data::train_validation_split(d, 0.2, gen);
    CHECK(fit.size() == 40);
    CHECK(val.size() == 10);
    std::set<int> seen;  // pixel value identifies the image
    for (std::size_t i = 0; i < fit.size(); ++i) seen.insert(int(std::lround(fit.features(i, 0) * 255)));
    for (std::size_t i = 0; i < val.size(); ++i) seen.insert(int(std::lround(val.features(i, 0) * 255)));
    CHECK(seen.size() == 50);
    CHECK_THROWS_AS(data::train_validation_split(d, 1.0, gen), ValueError);
    fs::remove_all(dir);
}

TEST_CASE("data: batches cover every example once per epoch, reshuffled, batch size 1 works") {
    auto dir = make_mnist_dir(10, false);
    auto d = data::load_mnist(dir.string(), data::Split::train);
    Generator gen(2);
    for (std::size_t batch : {1u, 3u, 10u}) {
        data::BatchIterator it(d, batch, gen);
        CHECK(it.batches_per_epoch() == (10 + batch - 1) / batch);
        std::vector<int> first_epoch;
        for (int epoch = 0; epoch < 2; ++epoch) {
            std::multiset<int> seen;
            Tensor x;
            Index y;
            std::size_t batches = 0;
            while (it.next(x, y)) {
                ++batches;
                CHECK(x.shape_vector()[0] == y.size());
                CHECK(x.shape_vector()[1] == 6);
                for (std::size_t r = 0; r < y.size(); ++r) {
                    int id = int(std::lround(x.value()(r, 0) * 255));
                    CHECK(y[r] == id % 3);
                    seen.insert(id);
                    if (epoch == 0) first_epoch.push_back(id);
                }
            }
            CHECK(batches == it.batches_per_epoch());
            CHECK(seen.size() == 10);
            CHECK(std::set<int>(seen.begin(), seen.end()).size() == 10);
        }
    }
    fs::remove_all(dir);
}

TEST_CASE("data: normalizer standardises with the training statistics") {
    auto dir = make_mnist_dir(20, false);
    auto d = data::load_mnist(dir.string(), data::Split::train);
    auto z = data::Normalizer::fit(d);
    z.apply(d);
    CHECK(xt::mean(d.features)() == doctest::Approx(0.0).epsilon(1e-5));
    CHECK(xt::stddev(d.features)() == doctest::Approx(1.0).epsilon(1e-4));
    fs::remove_all(dir);
}
