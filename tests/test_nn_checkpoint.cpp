// Checkpoints: round trip to identical predictions, optimiser state, and the
// errors for a different architecture, missing/extra parameters and dtype.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <tapegrad/nn/data/npz.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace nn = tapegrad::nn;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test case, removed at the end.
struct TempDir {
    fs::path dir;
    TempDir() {
        std::random_device rd;
        auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
        dir = fs::temp_directory_path() / ("tapegrad_ckpt_" + std::to_string(rd()) + "_" + std::to_string(tick));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file(const char* name) const { return (dir / name).string(); }
};

std::shared_ptr<nn::MLP<float>> mlp(std::vector<std::size_t> sizes, std::uint64_t seed) {
    Generator gen(seed);
    return std::make_shared<nn::MLP<float>>(sizes, "tanh", nn::Head::identity, gen);
}

// Equal up to a few ulps. Bit equality is too strict: xtensor computes the
// unaligned head of a buffer with scalar std::tanh and the rest with xsimd's,
// which differ in the last bit, so equal inputs in two buffers at different
// addresses can give results one ulp apart.
bool close(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        float x = a.value().data()[i], y = b.value().data()[i];
        if (std::abs(x - y) > 1e-6f * (1 + std::abs(y))) return false;
    }
    return true;
}

void train_steps(nn::Module& model, nn::Optimizer<float>& opt, int steps) {
    Generator gen(99);
    auto x = Tensor::randn({8, 2}, gen);
    for (int i = 0; i < steps; ++i) {
        opt.zero_grad();
        nn::mse_loss(model(x), Tensor::zeros({8, 1})).backward();
        opt.step();
    }
}

}  // namespace

TEST_CASE("nn: checkpoint round trip gives identical predictions and optimiser state") {
    TempDir tmp;
    auto model = mlp({2, 5, 1}, 1);
    nn::Adam<float> opt(model->parameters(), 0.01f);
    train_steps(*model, opt, 3);
    nn::save_checkpoint(tmp.file("model.npz"), *model, opt);

    auto fresh = mlp({2, 5, 1}, 2);
    nn::Adam<float> fresh_opt(fresh->parameters(), 0.5f);
    Generator gen(4);
    auto x = Tensor::randn({6, 2}, gen);
    REQUIRE_FALSE(close(fresh->forward(x), model->forward(x)));
    auto expected = model->forward(x);
    nn::load_checkpoint(tmp.file("model.npz"), *fresh, fresh_opt);
    // The parameters are bit-identical, so the predictions are too, up to the
    // last-bit wobble of vectorised tanh (see close()).
    auto saved = model->parameters(), loaded = fresh->parameters();
    for (std::size_t i = 0; i < saved.size(); ++i) CHECK(loaded[i].value() == saved[i].value());
    CHECK(close(fresh->forward(x), model->forward(x)));
    CHECK(fresh_opt.steps() == 3);
    CHECK(fresh_opt.lr() == doctest::Approx(0.01));
    auto a = opt.state(), b = fresh_opt.state();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second == b[i].second);

    // Training continues identically: the optimiser kept its parameter handles.
    train_steps(*model, opt, 2);
    train_steps(*fresh, fresh_opt, 2);
    CHECK(close(fresh->forward(x), model->forward(x)));

    // Without an optimiser the optimiser entries are ignored.
    auto third = mlp({2, 5, 1}, 3);
    nn::load_checkpoint(tmp.file("model.npz"), *third);
    CHECK(close(third->forward(x), expected));
}

TEST_CASE("nn: the checkpoint file is a plain npz with the parameter names") {
    TempDir tmp;
    auto model = mlp({2, 3, 1}, 1);
    nn::SGD<float> opt(model->parameters(), 0.1f, 0.9f);
    nn::save_checkpoint(tmp.file("m.npz"), *model, opt);
    std::vector<std::string> names;
    for (const auto& a : data::load_npz(tmp.file("m.npz"))) {
        names.push_back(a.name);
        CHECK(a.descr == "<f4");
    }
    CHECK(names == std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                                            "optimizer/lr", "optimizer/step", "optimizer/step.0",
                                            "optimizer/step.1", "optimizer/step.2", "optimizer/step.3",
                                            "optimizer/momentum.0",
                                            "optimizer/momentum.1", "optimizer/momentum.2", "optimizer/momentum.3"});
    nn::save_checkpoint(tmp.file("m.npz"), *model);  // overwrite in place
    CHECK(data::load_npz(tmp.file("m.npz")).size() == 4);
}

TEST_CASE("nn: a checkpoint from before per-parameter step counts still loads") {
    // Such a file has "optimizer/step" but no "optimizer/step.<i>": every
    // parameter's count becomes that step, the t the old Adam used for all.
    TempDir tmp;
    auto model = mlp({2, 5, 1}, 1);
    nn::Adam<float> opt(model->parameters(), 0.01f);
    train_steps(*model, opt, 3);
    nn::save_checkpoint(tmp.file("new.npz"), *model, opt);
    std::vector<data::NpyArray> old_format;
    for (auto& a : data::load_npz(tmp.file("new.npz")))
        if (a.name.rfind("optimizer/step.", 0) != 0) old_format.push_back(std::move(a));
    REQUIRE(old_format.size() == 4 + 2 + 8);  // parameters, lr and step, two buffers per parameter
    data::save_npz(tmp.file("old.npz"), old_format);

    auto fresh = mlp({2, 5, 1}, 2);
    nn::Adam<float> fresh_opt(fresh->parameters(), 0.5f);
    nn::load_checkpoint(tmp.file("old.npz"), *fresh, fresh_opt);
    CHECK(fresh_opt.steps() == 3);
    for (std::size_t i = 0; i < fresh->parameters().size(); ++i) CHECK(fresh_opt.updates(i) == 3);
    // Every parameter was updated on every step, so this is the saved state exactly.
    auto a = opt.state(), b = fresh_opt.state();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second == b[i].second);
}

TEST_CASE("nn: loading into a different architecture names the parameter and both shapes") {
    TempDir tmp;
    nn::save_checkpoint(tmp.file("m.npz"), *mlp({2, 3, 1}, 1));
    auto wider = mlp({2, 4, 1}, 1);
    auto before = wider->parameter("layers.0.bias").value();
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(tmp.file("m.npz"), *wider),
                         doctest::Contains("parameter 'layers.0.weight' has shape [2, 3] in the file but [2, 4] in the model"),
                         ShapeError);
    CHECK(wider->parameter("layers.0.bias").value() == before);  // nothing was changed
}

TEST_CASE("nn: a missing or an extra parameter is named") {
    TempDir tmp;
    nn::Linear<float> with_bias(2, 3), without_bias(2, 3, false);
    nn::save_checkpoint(tmp.file("with.npz"), with_bias);
    nn::save_checkpoint(tmp.file("without.npz"), without_bias);
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(tmp.file("without.npz"), with_bias),
                         doctest::Contains("parameter 'bias' is missing from the file"), ValueError);
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(tmp.file("with.npz"), without_bias),
                         doctest::Contains("the file has parameter 'bias' which the model does not have"), ValueError);
    nn::SGD<float> opt(with_bias.parameters(), 0.1f);
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(tmp.file("with.npz"), with_bias, opt),
                         doctest::Contains("has no optimizer state"), ValueError);
}

TEST_CASE("nn: a float32 checkpoint loaded into a float64 model is a DtypeError") {
    TempDir tmp;
    nn::save_checkpoint(tmp.file("f32.npz"), nn::Linear<float>(2, 3));
    nn::Linear<double> model64(2, 3);
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(tmp.file("f32.npz"), model64),
                         doctest::Contains("parameter 'weight' is stored as <f4 but the model is float64"), DtypeError);
    CHECK_THROWS_AS(nn::load_checkpoint(tmp.file("absent.npz"), model64), IoError);
}

TEST_CASE("nn: numpy reads a checkpoint with the same names and values") {
    // Debian's python3 with python3-numpy (scripts/setup installs both).
    if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        MESSAGE("skipped: /usr/bin/python3 with numpy is not installed");
        return;
    }
    TempDir tmp;
    auto model = mlp({2, 3, 1}, 2);
    nn::save_checkpoint(tmp.file("m.npz"), *model);
    const auto w = model->parameter("layers.0.weight").value();
    // numpy prints the weight's shape and the sum of its elements.
    const std::string out = tmp.file("numpy.txt");
    const std::string cmd = "/usr/bin/python3 -c \"import numpy; a = numpy.load('" + tmp.file("m.npz") +
                            "')['layers.0.weight']; print(a.dtype, a.shape, repr(float(a.astype('float64').sum())))\" > " +
                            out;
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(out);
    std::string dtype, shape0, shape1;
    double total = 0;
    in >> dtype >> shape0 >> shape1 >> total;
    CHECK(dtype == "float32");
    CHECK(shape0 + shape1 == "(2,3)");
    double want = 0;
    for (float v : w) want += v;
    CHECK(total == doctest::Approx(want).epsilon(1e-12));
}

TEST_CASE("nn: a checkpoint carries a generator's state, and the resumed generator continues its sequence") {
    TempDir tmp;
    const auto path = tmp.file("resume.npz");
    auto model = mlp({3, 4, 2}, 1);
    nn::SGD<float> opt(model->parameters(), 0.1);
    Generator gen(2024);
    Tensor::randn({17}, gen);  // part way through its stream
    nn::save_checkpoint(path, *model, opt, gen);
    const auto continued = Tensor::randn({8}, gen);  // what an uninterrupted run draws next
    const auto later = Tensor::rand({5}, gen);

    Generator resumed(0);
    auto model2 = mlp({3, 4, 2}, 1);
    nn::SGD<float> opt2(model2->parameters(), 0.1);
    nn::load_checkpoint(path, *model2, opt2, resumed);
    CHECK(Tensor::randn({8}, resumed).value() == continued.value());
    CHECK(Tensor::rand({5}, resumed).value() == later.value());

    // The module-and-generator forms, and the forms that ignore the entry.
    nn::save_checkpoint(path, *model, gen);
    Generator g2(5);
    nn::load_checkpoint(path, *model2, g2);
    CHECK(g2 == gen);
    CHECK_NOTHROW(nn::load_checkpoint(path, *model2));

    // The entry is the state text, as bytes numpy reads.
    bool found = false;
    for (const auto& a : data::load_npz(path))
        if (a.name == "generator/state") {
            found = true;
            CHECK(a.descr == "|u1");
            auto bytes = a.to_vector<std::uint8_t>();
            CHECK(std::string(bytes.begin(), bytes.end()) == gen.state());
        }
    CHECK(found);

    // Asking for a generator from a file without one names the problem and
    // changes nothing.
    nn::save_checkpoint(path, *model);
    Generator untouched(77);
    const Generator before = untouched;
    bool thrown = false;
    try {
        nn::load_checkpoint(path, *model2, untouched);
    } catch (const ValueError& e) {
        thrown = true;
        CHECK(std::string(e.what()).find("no generator state") != std::string::npos);
    }
    CHECK(thrown);
    CHECK(untouched == before);
}

namespace {

// A small run: a model with a Dropout, Adam, a schedule and a batch iterator.
struct SmallRun {
    Generator gen;
    data::Dataset data;
    std::shared_ptr<nn::Sequential<float>> model = std::make_shared<nn::Sequential<float>>();
    std::unique_ptr<nn::Adam<float>> opt;
    std::unique_ptr<nn::CosineLR> schedule;
    std::unique_ptr<data::BatchIterator> batches;
    std::size_t hidden;

    explicit SmallRun(std::uint64_t seed, std::size_t width = 6, std::size_t rows = 20) : gen(seed), hidden(width) {
        Generator data_gen(0);  // the same data for every run; the checkpoint does not hold it
        data.features = Tensor::randn({rows, 3}, data_gen).value();
        for (std::size_t i = 0; i < rows; ++i) data.labels.push_back(static_cast<std::int64_t>(i % 2));
        data.classes = 2;
        model->emplace<nn::Linear<float>>(3, width, true, gen);
        model->emplace<nn::Dropout<float>>(0.3f, seed + 1);
        model->emplace<nn::Linear<float>>(width, 2, true, gen);
        opt = std::make_unique<nn::Adam<float>>(model->parameters(), 0.01);
        schedule = std::make_unique<nn::CosineLR>(*opt, 5);
        batches = std::make_unique<data::BatchIterator>(data, 4, gen);
    }
    nn::RunState<float> state() {
        nn::RunState<float> s;
        s.module = model.get();
        s.optimizer = opt.get();
        s.schedule = schedule.get();
        s.batches = batches.get();
        s.generators = {{"main", &gen}};
        return s;
    }
    void steps(int n) {
        Tensor x;
        Index y;
        for (int i = 0; i < n; ++i) {
            if (!batches->next(x, y)) schedule->step();
            else {
                opt->zero_grad();
                nn::cross_entropy(model->forward(x), y).backward();
                opt->step();
            }
        }
    }
};

}  // namespace

TEST_CASE("nn: a run checkpoint restores parameters, optimiser, schedule, data order and every generator") {
    TempDir tmp;
    const auto path = tmp.file("run.npz");
    SmallRun a(1);
    a.steps(8);  // into the second epoch: schedule at 1, iterator mid-epoch
    auto saved = a.state();
    saved.epoch = 1;
    saved.step = 7;
    saved.series = {{"loss", {0.5, 0.25}}};
    nn::save_run(path, saved);

    SmallRun b(2);  // another seed: every number differs until loaded
    auto s = b.state();
    nn::load_run(path, s);
    CHECK(s.epoch == 1);
    CHECK(s.step == 7);
    REQUIRE(s.series.size() == 1);
    CHECK(s.series[0].second == std::vector<double>{0.5, 0.25});
    CHECK(b.schedule->epoch() == a.schedule->epoch());
    CHECK(b.batches->order() == a.batches->order());
    CHECK(b.batches->position() == a.batches->position());
    CHECK(b.gen == a.gen);
    // Both continue identically, dropout masks included: bitwise.
    a.steps(9);
    b.steps(9);
    auto pa = a.model->parameters(), pb = b.model->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].value() == pb[i].value());

    // The model-only load reads a run checkpoint too.
    SmallRun c(3);
    CHECK_NOTHROW(nn::load_checkpoint(path, *c.model));
}

TEST_CASE("nn: a run checkpoint that does not fit is refused with the reason, and nothing changes") {
    TempDir tmp;
    const auto path = tmp.file("run.npz");
    SmallRun a(1);
    a.steps(3);
    nn::save_run(path, a.state());

    auto refused = [&](SmallRun& r, const std::string& reason) {
        const auto order = r.batches->order();
        const auto position = r.batches->position();
        const auto weight = r.model->parameters()[0].value();
        const Generator gen = r.gen;
        auto s = r.state();
        std::string message = "<loaded>";
        try {
            nn::load_run(path, s);
        } catch (const Error& e) {
            message = e.what();
        }
        CHECK_MESSAGE(message.find(reason) != std::string::npos, message);
        CHECK(r.batches->order() == order);
        CHECK(r.batches->position() == position);
        CHECK(r.model->parameters()[0].value() == weight);
        CHECK(r.gen == gen);
    };
    SmallRun wider(2, 7);
    refused(wider, "has shape [3, 6] in the file but [3, 7]");
    SmallRun more_rows(2, 6, 24);
    refused(more_rows, "the order has 20 rows but the dataset has 24");

    // A model checkpoint is not a run checkpoint.
    nn::save_checkpoint(path, *a.model, *a.opt);
    refused(wider, "not a run checkpoint");

    // A checkpoint written by several ranks names their number.
    nn::save_run(path, a.state());
    auto arrays = data::load_npz(path);
    for (auto& x : arrays)
        if (x.name == "run/world_size") x = data::NpyArray::from_int64("run/world_size", {}, {2});
    data::save_npz(path, arrays);
    SmallRun same(2);
    refused(same, "written by a run on 2 ranks");
}
