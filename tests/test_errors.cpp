// Bad use of the API gets a typed error whose message names what went wrong.
// This file is the one place to see every kind of mistake tapegrad reports;
// each check asserts the error type and the parts of the message a user needs
// (the op, the shapes, the axis, the label, the parameter...).
//
// Errors that other test files already check in exactly that form are only
// listed here, with where they are tested:
//   - add [2,3]+[4], mul, pow, maximum, lt shapes; clamp lo > hi; a non-scalar
//     backward without seed; backward twice; a mul input modified in place;
//     backward of a tensor without grad ........ tests/test_ops_arithmetic.cpp
//   - matmul ranks and inner sizes, permute/transpose axes ... test_ops_linalg.cpp
//   - reshape, broadcast_to, slice, concat [2,2]+[3,3], stack, index_select,
//     gather, one_hot ........................... tests/test_ops_shape.cpp
//   - sum/max axis out of range, an axis twice, max of an empty dimension,
//     sum_to ...................................... tests/test_ops_reduce.cpp
//   - mse/BCE shape mismatch, cross_entropy label 3 of 3, nll label -1
//                                              ...... tests/test_nn_losses.cpp
//   - Linear [4,3] into Linear(2 -> 3), LayerNorm size, unknown parameter
//     names, MLP sizes, Dropout p ................ tests/test_nn_modules.cpp
//   - float32 checkpoint into a float64 model, a wider model, bias present/
//     absent, missing optimiser state .............. test_nn_checkpoint.cpp
//   - optimiser state of the wrong shape/missing/unexpected . test_nn_optim.cpp
//   - NaN/Inf under anomaly mode ....................... tests/test_core.cpp
//   - mixing float32 and float64 in one op: a compile error
//     ........ tests/compile_fail/mixed_dtypes.cpp (CTest compile_fail.*)
//   - corrupt, truncated or implausible IDX and .npz files
//     ................................ tests/test_idx.cpp, tests/test_npz.cpp
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>

#include <tapegrad/nn/data/npz.hpp>
#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace fs = std::filesystem;

namespace {

// Runs `f`, which must throw E; every one of `parts` must be in the message.
template <class E>
void require_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
    std::string message;
    try {
        f();
    } catch (const E& e) {
        message = e.what();
    } catch (const std::exception& e) {
        FAIL("threw the wrong error type: " << std::string(e.what()));
        return;
    }
    REQUIRE_MESSAGE(!message.empty(), "no error was thrown");
    for (const char* part : parts) CHECK_MESSAGE(message.find(part) != std::string::npos, "'" << std::string(part) << "' not in: " << message);
}

struct TempDir {
    fs::path dir;
    TempDir() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("tapegrad_errors_" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST_CASE("errors: operand shapes that do not fit name the op and both shapes") {
    require_error<ShapeError>([] { Tensor64::zeros({2, 3, 4}) - Tensor64::zeros({3}); }, {"sub", "[2, 3, 4]", "[3]"});
    require_error<ShapeError>([] { Tensor64::zeros({2}) / Tensor64::zeros({3}); }, {"div", "[2]", "[3]"});
    require_error<ShapeError>([] { where(Tensor64::ones({2}), Tensor64::zeros({3}), Tensor64::zeros({3})); },
                              {"where", "[2]", "[3]"});
    // Batched matmul: the inner sizes of the two batches differ.
    require_error<ShapeError>([] { matmul(Tensor64::zeros({2, 3, 4}), Tensor64::zeros({2, 5, 6})); },
                              {"matmul", "[2, 3, 4]", "[2, 5, 6]"});
    // With a transposed operand the message says which one.
    require_error<ShapeError>([] { matmul(Tensor64::zeros({2, 3}), Tensor64::zeros({3, 2}), true, false); },
                              {"matmul", "[2, 3] (transposed)", "[3, 2]"});
    require_error<ShapeError>([] { concat<double>({Tensor64::zeros({2, 3, 4}), Tensor64::zeros({2, 5, 4})}, 2); },
                              {"concat", "[2, 3, 4]", "[2, 5, 4]", "axis 2"});
}

TEST_CASE("errors: losses check shapes instead of broadcasting") {
    // [3] against [3, 1] would silently broadcast to [3, 3] in plain
    // arithmetic; a loss refuses.
    require_error<ShapeError>([] { nn::mse_loss(Tensor64::zeros({3}), Tensor64::zeros({3, 1})); },
                              {"mse_loss", "[3]", "[3, 1]"});
    require_error<ShapeError>(
        [] { nn::binary_cross_entropy_with_logits(Tensor64::zeros({4}), Tensor64::zeros({2, 2})); },
        {"binary_cross_entropy_with_logits", "[4]", "[2, 2]"});
    require_error<ShapeError>([] { nn::cross_entropy(Tensor64::zeros({2, 3, 4}), Index{0, 1}); },
                              {"cross_entropy", "[batch, classes]", "[2, 3, 4]"});
    require_error<ShapeError>([] { nn::nll_loss(Tensor64::zeros({4, 3}), Index{0, 1}); },
                              {"nll_loss", "[4, 3]", "4 rows", "[2]"});
}

TEST_CASE("errors: a Linear layer names itself and both shapes") {
    nn::Linear<double> lin(3, 2);
    require_error<ShapeError>([&] { lin(Tensor64::zeros({2, 2, 3})); },
                              {"Linear(3 -> 2)", "input shape [2, 2, 3]", "weight shape [3, 2]", "[batch, 3]"});
    require_error<ShapeError>([&] { lin(Tensor64::scalar(1.0)); }, {"Linear(3 -> 2)", "input shape []"});
    require_error<ShapeError>([&] { lin(Tensor64::zeros({5})); }, {"Linear(3 -> 2)", "input shape [5]"});
    // Inside a model, the layer that failed is still named.
    nn::MLP<double> mlp({4, 8, 2});
    require_error<ShapeError>([&] { mlp(Tensor64::zeros({1, 3})); }, {"Linear(4 -> 8)", "[1, 3]"});
}

TEST_CASE("errors: a seed gradient of the wrong shape") {
    Tensor64 x({1.0, 2.0}, true);
    auto y = x * 3.0;
    require_error<ShapeError>([&] { y.backward(Tensor64({1.0, 1.0, 1.0})); },
                              {"backward", "seed gradient has shape [3]", "tensor has shape [2]"});
    require_error<GraphError>([&] { grad(y, {x}); }, {"grad", "[2]", "not a single element", "seed"});
}

TEST_CASE("errors: backward twice over a released graph names the op and the fix") {
    Generator gen(1);
    nn::MLP<double> model({3, 4, 2}, "tanh", nn::Head::identity, gen);
    auto loss = nn::cross_entropy(model(Tensor64::randn({5, 3}, gen)), Index{0, 1, 0, 1, 1});
    loss.backward();
    require_error<GraphError>([&] { loss.backward(); },
                              {"backward", "already released", "tape position", "retain_graph"});

    // grad() releases the graph too.
    Tensor64 x({0.5, 1.5}, true);
    auto y = sum(exp(x));
    grad(y, {x});
    require_error<GraphError>([&] { grad(y, {x}); }, {"'sum'", "already released", "retain_graph"});
}

TEST_CASE("errors: backward through a tensor modified in place after it was saved") {
    SUBCASE("an op's own output, saved for its gradient") {
        Tensor64 x({0.5, 1.5}, true);
        auto y = exp(x);  // exp saves its output
        auto loss = sum(y * 2.0);
        y.modify([](auto& v) { v(0) = 0; });
        require_error<GraphError>([&] { loss.backward(); },
                                  {"saved by 'exp'", "modified in place", "version 0, now 1", "clone"});
    }
    SUBCASE("an optimiser step between forward and backward") {
        // The classic mistake: step() writes the weights in place (bumping
        // their versions) while a graph that saved them is still pending.
        // (The second layer's matmul saved its weight to compute the hidden
        // layer's gradient.)
        Generator gen(2);
        nn::MLP<double> model({3, 4, 2}, "tanh", nn::Head::identity, gen);
        nn::SGD<double> opt(model.parameters(), 0.1);
        const auto x = Tensor64::randn({4, 3}, gen), target = Tensor64::randn({4, 2}, gen);
        nn::mse_loss(model(x), target).backward();  // gradients exist, so step() changes the weights
        auto loss = nn::mse_loss(model(x), target);
        opt.step();
        require_error<GraphError>([&] { loss.backward(); }, {"saved by 'matmul'", "modified in place"});
    }
}

TEST_CASE("errors: gradients of tensors that do not require grad") {
    Tensor64 data({1.0, 2.0});
    Tensor64 w({0.5, -0.5}, true);
    require_error<GraphError>([&] { grad(sum(data * w), {data}); }, {"grad", "input 0", "does not require grad"});
    require_error<GraphError>([&] { grad(sum(data * w), {w, data}); }, {"grad", "input 1", "does not require grad"});
    Tensor64 loss;
    {
        NoGradGuard no_grad;
        loss = sum(data * w);
    }
    require_error<GraphError>([&] { loss.backward(); }, {"backward", "does not require grad", "NoGradGuard"});
    // Only leaves can be switched off; a result is cut with detach().
    auto y = w * 2.0;
    require_error<GraphError>([&] { y.requires_grad_(false); }, {"only leaf tensors", "'mul_scalar'", "detach()"});
}

TEST_CASE("errors: float32 and float64 do not mix at run time either") {
    TempDir tmp;
    // A float64 checkpoint into a float32 model (the reverse direction is
    // tested in test_nn_checkpoint.cpp).
    nn::save_checkpoint(tmp.file("f64.npz"), nn::Linear<double>(2, 3));
    nn::Linear<float> model32(2, 3);
    require_error<DtypeError>([&] { nn::load_checkpoint(tmp.file("f64.npz"), model32); },
                              {"'weight'", "stored as <f8", "float32"});
    // Reading an archive's array as the wrong element type.
    data::save_npz(tmp.file("a.npz"), {data::NpyArray::from_doubles("w", {2}, {1.0, 2.0})});
    const auto arrays = data::load_npz(tmp.file("a.npz"));
    require_error<DtypeError>([&] { arrays.at(0).to_vector<float>(); }, {"'w'", "stored dtype is <f8", "requested <f4"});
}

TEST_CASE("errors: class labels out of range name the label, its position and the class count") {
    const auto logits = Tensor64::zeros({3, 4});
    require_error<ValueError>([&] { nn::cross_entropy(logits, Index{0, 7, 1}); },
                              {"cross_entropy", "label 7", "position 1", "4 classes"});
    require_error<ValueError>([&] { nn::nll_loss(logits, Index{0, 1, std::int64_t{1} << 40}); },
                              {"nll_loss", "label 1099511627776", "position 2", "4 classes"});
    require_error<ValueError>([] { nn::confusion_matrix(Index{0, 1}, Index{5, 0}, 3); }, {"label 5", "3"});
}

TEST_CASE("errors: invalid axes name the op, the axis and the rank") {
    const auto x = Tensor64::zeros({2, 3});
    require_error<ValueError>([&] { logsumexp(x, {2}); }, {"logsumexp", "axis 2", "2 dimensions"});
    require_error<ValueError>([&] { tapegrad::min(x, {-3}); }, {"min", "axis -3"});
    require_error<ValueError>([&] { nn::softmax(x, 2); }, {"axis 2", "out of range"});
    require_error<ValueError>([&] { nn::log_softmax(x, -3); }, {"axis -3", "out of range"});
    require_error<ValueError>([&] { transpose(x, -3, 0); }, {"transpose", "axis -3"});
    require_error<ValueError>([&] { sum(Tensor64::scalar(1.0), {0}); }, {"sum", "axis 0", "0 dimensions"});
}

TEST_CASE("errors: ops that need elements refuse empty dimensions") {
    const auto empty_rows = Tensor64::zeros({0, 3});
    require_error<ValueError>([&] { mean(empty_rows, {0}); }, {"mean", "empty dimension", "[0, 3]"});
    require_error<ValueError>([&] { mean(empty_rows); }, {"mean", "empty dimension"});
    require_error<ValueError>([&] { logsumexp(empty_rows, {0}); }, {"logsumexp", "empty dimension", "[0, 3]"});
    require_error<ValueError>([&] { tapegrad::min(empty_rows); }, {"min", "empty dimension"});
    require_error<ValueError>([&] { nn::log_softmax(Tensor64::zeros({2, 0})); }, {"logsumexp", "empty dimension", "[2, 0]"});
    // Reducing along a non-empty axis of a tensor with an empty one is fine.
    CHECK(sum(empty_rows, {1}).shape_vector() == Shape{0});
    require_error<ValueError>([&] { empty_rows.item(); }, {"item", "[0, 3]"});
}

TEST_CASE("errors: a checkpoint loaded into a different architecture names the parameter") {
    TempDir tmp;
    Generator gen(3);
    nn::MLP<double> small({2, 4, 1}, "relu", nn::Head::identity, gen);
    nn::save_checkpoint(tmp.file("small.npz"), small);

    nn::MLP<double> deeper({2, 4, 1, 1}, "relu", nn::Head::identity, gen);  // one layer more
    require_error<ValueError>([&] { nn::load_checkpoint(tmp.file("small.npz"), deeper); },
                              {"parameter 'layers.4.weight' is missing"});
    nn::MLP<double> narrower({2, 3, 1}, "relu", nn::Head::identity, gen);
    require_error<ShapeError>([&] { nn::load_checkpoint(tmp.file("small.npz"), narrower); },
                              {"layers.0.weight", "[2, 4]", "[2, 3]"});
    // Nothing was changed by the failed loads.
    const auto before = narrower.parameters()[0].value();
    CHECK_THROWS(nn::load_checkpoint(tmp.file("small.npz"), narrower));
    CHECK(narrower.parameters()[0].value() == before);
}

// Regression tests for what the API fuzzer (tests/fuzz/api_fuzz.cpp) and
// misuse by hand found: each was accepted silently or crashed before.

TEST_CASE("errors: a shape whose element count overflows is refused wherever a shape is built") {
    const std::size_t big = std::size_t(1) << 40;
    // 2^40 x 2^30 elements wrapped around to 0: zeros returned a tensor.
    require_error<ValueError>([&] { Tensor::zeros({big, std::size_t(1) << 30}); },
                              {"full", "[1099511627776, 1073741824]", "too many elements"});
    require_error<ValueError>([&] { Tensor64::randn({big, big}); }, {"randn", "too many elements"});
    require_error<ValueError>([&] { Tensor64::rand({big, big, 0}); }, {"rand", "too many elements"});
    // An empty tensor with huge dimensions is fine; what is built from it is checked.
    const auto wide = Tensor64::zeros({big, 0});
    const auto tall = Tensor64::zeros({0, big});
    CHECK(wide.size() == 0);
    require_error<ValueError>([&] { matmul(wide, tall); }, {"matmul", "[1099511627776, 1099511627776]"});
    require_error<ValueError>([&] { Tensor64::zeros({big, 1, 0}) + Tensor64::zeros({1, big, 0}); },
                              {"add", "too many elements"});
    require_error<ValueError>([&] { broadcast_to(Tensor64::zeros({1, 0}), Shape{big, big, 0}); },
                              {"broadcast_to", "too many elements"});
    require_error<ValueError>([&] { reshape(tall, {std::int64_t(big), std::int64_t(big), 0}); },
                              {"reshape", "too many elements"});
    require_error<ValueError>([&] { reshape(tall, {std::int64_t(big), std::int64_t(big), -1}); },
                              {"reshape", "too many elements"});
    require_error<ValueError>([&] { index_select(tall, 0, Index{0}); }, {"index_select", "out of range"});
    const auto huge_rows = Tensor64::zeros({std::size_t(1) << 59, 0});  // 2^59: fits, twice it does not
    require_error<ValueError>([&] { stack<double>({huge_rows, huge_rows, huge_rows, huge_rows}); },
                              {"stack", "too many elements"});
    require_error<ValueError>([&] { concat<double>({huge_rows, huge_rows, huge_rows, huge_rows}); },
                              {"concat", "too many elements"});
    require_error<ValueError>([&] { one_hot<double>(Index{0, 1}, std::size_t(1) << 63); },
                              {"one_hot", "too many elements"});
    require_error<ValueError>([&] { gather(wide, 1, Index{}, Shape{big, big}); }, {"gather", "too many elements"});
    require_error<ValueError>([&] { Tensor64::arange(0.0, 1e300); }, {"arange", "too many"});
    require_error<ValueError>([&] { Tensor64::arange(0.0, std::nan("")); }, {"arange", "finite"});
}

TEST_CASE("errors: binary_cross_entropy refuses values outside [0, 1], naming the first and its index") {
    const Tensor64 ok({0.2, 0.5, 0.9});
    require_error<ValueError>([&] { nn::binary_cross_entropy(Tensor64({0.2, 1.5, -1.0}), ok); },
                              {"binary_cross_entropy", "input probability", "[0, 1]", "1.5", "index 1"});
    require_error<ValueError>([&] { nn::binary_cross_entropy(ok, Tensor64({0.0, 1.0, 2.0})); },
                              {"binary_cross_entropy", "target", "2", "index 2"});
    require_error<ValueError>([&] { nn::binary_cross_entropy(Tensor64({0.2, std::nan(""), 0.1}), ok); },
                              {"binary_cross_entropy", "nan", "index 1"});
    // The edges are probabilities.
    CHECK(std::isfinite(nn::binary_cross_entropy(Tensor64({0.0, 1.0, 0.5}), Tensor64({0.0, 1.0, 1.0})).item()));
}

TEST_CASE("errors: from_data with a null pointer and a non-empty shape") {
    require_error<ValueError>([] { Tensor::from_data(nullptr, {2, 2}); }, {"from_data", "null", "[2, 2]"});
    // No elements to read: no data needed.
    CHECK(Tensor::from_data(nullptr, {0, 3}).shape_vector() == Shape{0, 3});
}

TEST_CASE("errors: found by the API fuzzer") {
    // arange counted by xtensor allocated inside noexcept code: a huge but
    // representable count ended in std::terminate, a negative one was UB.
    require_error<ValueError>([] { Tensor::arange(0.0f, 1e30f, 1.0f); }, {"arange", "too many"});
    CHECK(Tensor64::arange(3.0, 0.0, 1.0).size() == 0);
    CHECK(Tensor64::arange(0.0, 1.0, 0.25).value() == Tensor64({0.0, 0.25, 0.5, 0.75}).value());
    // 2^32 + 1 classes: the counts' element count wrapped to 2^33 + 1.
    require_error<ValueError>([] { nn::confusion_matrix(Index{0}, Index{0}, (std::size_t(1) << 32) + 1); },
                              {"confusion_matrix", "too many elements"});
    // A tensor made by an op has no .grad: the error came from grad() and did not name the clipping.
    Tensor64 w({1.0, -2.0}, true);
    require_error<ValueError>([&] { nn::clip_grad_norm_<double>({w, abs(w)}, 1.0); },
                              {"clip_grad_norm_", "tensor 1", "'abs'"});
    require_error<ValueError>([&] { nn::clip_grad_value_<double>({abs(w)}, 1.0); }, {"clip_grad_value_", "'abs'"});
    // A sum over an empty leading axis is 0 (it was left uninitialised).
    const auto s = sum(Tensor64::zeros({0, 16}), {0});
    CHECK(s.shape_vector() == Shape{16});
    for (double v : s.value()) CHECK(v == 0.0);
    // sum_to of a tensor with no elements over axes neither leading nor
    // trailing (the engine does this for a gradient of shape [2, 0, 3]
    // bound for an input of shape [1, 0, 1]): xtensor's reducer read out of
    // bounds, a segfault in the fuzzer. Now zeros, and its VJP broadcasts.
    Tensor64 g = Tensor64::zeros({2, 0, 3}, true);
    const auto t = sum_to(g, Shape{1, 0, 1});
    CHECK(t.shape_vector() == Shape{1, 0, 1});
    sum(t).backward();
    CHECK(g.grad().shape_vector() == Shape{2, 0, 3});
    // The same through the engine: a broadcast input's gradient is summed back.
    Tensor64 a = Tensor64::zeros({1, 0, 1}, true);
    sum(a + Tensor64::zeros({2, 0, 3})).backward();
    CHECK(a.grad().shape_vector() == Shape{1, 0, 1});
    // And sum itself over those axes of a [2, 0, 3] with keepdims.
    CHECK(sum(Tensor64::zeros({2, 0, 3}), {0, 2}, true).shape_vector() == Shape{1, 0, 1});
    // A loss's mean over no elements: the error named only "mean".
    const auto empty = Tensor64::zeros({4, 0, 4, 1});
    require_error<ValueError>([&] { nn::mse_loss(empty, empty); }, {"mse_loss", "mean", "[4, 0, 4, 1]"});
    require_error<ValueError>([] { nn::cross_entropy(Tensor64::zeros({0, 3}), Index{}); }, {"cross_entropy", "mean"});
    CHECK(nn::mse_loss(empty, empty, nn::Reduction::sum).item() == 0.0);
    // pow of two tensors used xsimd's pow on whole SIMD batches: 0^0, inf^0
    // and NaN^0 came out wrong (not 1), 0^-1 was not inf, and NaN or huge
    // intermediates were converted to integers (undefined behaviour: clang's
    // UBSan reported it). Now std::pow's values, as for a scalar exponent.
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    std::vector<double> bases, exponents;
    for (int copy = 0; copy < 4; ++copy) {
        for (double b : {0.0, inf, 2.0, nan, -8.0, 0.0, 1e300, -inf}) bases.push_back(b);
        for (double e : {0.0, 0.0, nan, 0.0, 1.0 / 3, -1.0, 1e300, 3.0}) exponents.push_back(e);
    }
    const auto powered = pow(Tensor64::from_data(bases.data(), {bases.size()}),
                             Tensor64::from_data(exponents.data(), {exponents.size()}));
    for (std::size_t i = 0; i < bases.size(); ++i) {
        CAPTURE(i);
        const double want = std::pow(bases[i], exponents[i]), got = powered.value().data()[i];
        CHECK((got == want || (std::isnan(got) && std::isnan(want))));
    }
    CHECK(pow(Tensor64::zeros({2, 1}), Tensor64::zeros({3})).value() == Tensor64::ones({2, 3}).value());
    // cross_entropy of an empty batch with no classes: the error named only logsumexp.
    require_error<ShapeError>([] { nn::cross_entropy(Tensor64::zeros({0, 0}), Index{}, nn::Reduction::none); },
                              {"cross_entropy", "[0, 0]", "no classes"});
    // prelu's slope that does not broadcast: the error named only "mul".
    require_error<ShapeError>([] { nn::prelu(Tensor64::zeros({4, 0, 4, 1}), Tensor64::zeros({1, 4, 0, 4})); },
                              {"prelu", "[4, 0, 4, 1]", "[1, 4, 0, 4]"});
}

TEST_CASE("errors: a huge dimension beside an empty one costs nothing (found by the API fuzzer)") {
    // [2^40, 0, 3]·[2^40, 3, 0]: no element anywhere, but the batched product
    // looped over 2^40 empty matrices (hours; 2^62 never ends), and so did
    // a reduction over the leading axis of a [2^40, 0] tensor. Now both
    // return at once, forward and backward.
    const std::size_t huge = std::size_t(1) << 40;
    Tensor64 a = Tensor64::zeros({huge, 0, 3}, true), b = Tensor64::zeros({huge, 3, 0}, true);
    const auto c = matmul(a, b);
    CHECK(c.shape_vector() == Shape{huge, 0, 0});
    sum(c).backward();
    CHECK(a.grad().shape_vector() == Shape{huge, 0, 3});
    CHECK(b.grad().shape_vector() == Shape{huge, 3, 0});
    // k = 0 with a non-empty result: zeros, without a loop over the batch.
    const auto z = matmul(Tensor64::ones({4, 2, 0}), Tensor64::ones({4, 0, 3}));
    CHECK(z.value() == Tensor64::zeros({4, 2, 3}).value());
    const auto w = matmul(Tensor64::zeros({2, 0}), Tensor64::zeros({0, 3}));
    CHECK(w.value() == Tensor64::zeros({2, 3}).value());
    // The [outer, n, inner] loops of the indexing ops, forward and backward.
    Tensor64 e = Tensor64::zeros({huge, 3, 0}, true);
    const auto picked = index_select(e, 1, Index{2, 0});
    CHECK(picked.shape_vector() == Shape{huge, 2, 0});
    const auto gathered = gather(e, 1, Index{}, Shape{huge, 1, 0});
    CHECK(gathered.shape_vector() == Shape{huge, 1, 0});
    const auto sliced = slice(e, 1, 1, 3);
    CHECK(sliced.shape_vector() == Shape{huge, 2, 0});
    CHECK(concat({e, e}, 1).shape_vector() == Shape{huge, 6, 0});
    CHECK(stack({e, e}, 1).shape_vector() == Shape{huge, 2, 3, 0});
    sum(picked + sliced).backward();
    CHECK(e.grad().shape_vector() == Shape{huge, 3, 0});
    const auto x = Tensor64::zeros({huge, 0});
    CHECK(sum(x, {0}).shape_vector() == Shape{0});
    CHECK(tapegrad::max(x, {0}).shape_vector() == Shape{0});
    CHECK(logsumexp(x, {0}).shape_vector() == Shape{0});
}
