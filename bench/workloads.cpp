// What every engine's workloads share: the MLP shapes, their FLOP counts,
// the inputs and initial weights, and the thread setting.
#include "workloads.hpp"

#include <dlfcn.h>

#include <cmath>
#include <random>

namespace bench {

std::size_t MlpSpec::parameters() const {
    std::size_t n = 0;
    for (std::size_t l = 0; l < layers(); ++l) n += sizes[l] * sizes[l + 1] + sizes[l + 1];
    return n;
}

double MlpSpec::forward_flops() const {
    double f = 0;
    for (std::size_t l = 0; l < layers(); ++l) f += 2.0 * double(batch) * double(sizes[l]) * double(sizes[l + 1]);
    return f;
}

double MlpSpec::backward_flops() const {
    double f = 0;
    for (std::size_t l = 0; l < layers(); ++l) {
        const double mac = double(batch) * double(sizes[l]) * double(sizes[l + 1]);
        f += 2.0 * mac;               // dW = Xᵀ·dZ
        if (l > 0) f += 2.0 * mac;    // dX = dZ·Wᵀ (the input needs no gradient)
    }
    return f;
}

const std::vector<MlpSpec>& mlp_specs() {
    static const std::vector<MlpSpec> specs = {
        {"2-16-16-2_b32", {2, 16, 16, 2}, 32},
        {"784-256-256-10_b128", {784, 256, 256, 10}, 128},
        {"1024-1024-1024-10_b1024", {1024, 1024, 1024, 10}, 1024},
    };
    return specs;
}

std::vector<float> mlp_inputs(const MlpSpec& spec) {
    std::mt19937_64 gen(kSeed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(spec.batch * spec.sizes.front());
    for (auto& v : x) v = dist(gen);
    return x;
}

std::vector<std::int64_t> mlp_labels(const MlpSpec& spec) {
    std::mt19937_64 gen(kSeed + 1);
    std::uniform_int_distribution<std::int64_t> dist(0, std::int64_t(spec.sizes.back()) - 1);
    std::vector<std::int64_t> y(spec.batch);
    for (auto& v : y) v = dist(gen);
    return y;
}

std::vector<float> mlp_weight(const MlpSpec& spec, std::size_t layer) {
    const std::size_t in = spec.sizes[layer], out = spec.sizes[layer + 1];
    std::mt19937_64 gen(kSeed + 100 + layer);
    const float bound = std::sqrt(6.0f / float(in + out));
    std::uniform_real_distribution<float> dist(-bound, bound);
    std::vector<float> w(in * out);
    for (auto& v : w) v = dist(gen);
    return w;
}

const std::vector<PassSpec>& pass_specs() {
    static const std::vector<PassSpec> specs = {{"ffn", 128, 256, 1024}, {"xent", 256, 256, 1000}};
    return specs;
}

std::vector<float> pass_weight(std::size_t rows, std::size_t cols, std::uint64_t which) {
    std::mt19937_64 gen(kSeed + 200 + which);
    const float bound = std::sqrt(6.0f / float(rows + cols));
    std::uniform_real_distribution<float> dist(-bound, bound);
    std::vector<float> w(rows * cols);
    for (auto& v : w) v = dist(gen);
    return w;
}

std::vector<float> pass_inputs(const PassSpec& spec) {
    std::mt19937_64 gen(kSeed + 300);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(spec.batch * spec.in);
    for (auto& v : x) v = dist(gen);
    return x;
}

std::vector<std::int64_t> pass_labels(const PassSpec& spec) {
    std::mt19937_64 gen(kSeed + 301);
    std::uniform_int_distribution<std::int64_t> dist(0, std::int64_t(spec.hidden) - 1);
    std::vector<std::int64_t> y(spec.batch);
    for (auto& v : y) v = dist(gen);
    return y;
}

namespace {
// OpenBLAS's extensions, looked up at run time so the programs still run
// (single-threaded, with a note) on another BLAS.
template <class F>
F openblas_symbol(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

void set_threads(int n) {
    if (auto set = openblas_symbol<void (*)(int)>("openblas_set_num_threads")) set(n);
#ifdef TAPEGRAD_BENCH_HAVE_TORCH
    torch_set_threads(n);
#endif
}

std::string blas_config() {
    auto config = openblas_symbol<char* (*)()>("openblas_get_config");
    auto corename = openblas_symbol<char* (*)()>("openblas_get_corename");
    if (!config) return "not OpenBLAS (thread count not settable)";
    std::string s = config();
    if (corename) s += std::string(" core=") + corename();
    return s;
}

}  // namespace bench
