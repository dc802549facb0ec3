// Parameter initialisers. Each writes a tensor's value in place (its handle,
// gradient and graph links stay) from a tapegrad::Generator, so the same seed
// builds the same network on every run.
//
// Fans follow the Linear layout, weight [in, out]: fan_in is the product of
// every axis but the last, fan_out the last axis (a 1-D tensor has fan_in =
// fan_out = its size).
#pragma once

#include <cstddef>
#include <utility>

#include <tapegrad/core/tensor.hpp>
#include <tapegrad/nn/module.hpp>
#include <tapegrad/ops/arithmetic.hpp>

namespace tapegrad::nn::init {

// {fan_in, fan_out}; ValueError for a 0-d tensor.
template <class T> std::pair<std::size_t, std::size_t> fans(const BasicTensor<T>& w);

template <class T> void constant_(BasicTensor<T>& t, Scalar<T> value);
template <class T> void zeros_(BasicTensor<T>& t) { constant_(t, Scalar<T>(0)); }
template <class T> void normal_(BasicTensor<T>& t, Generator& gen, Scalar<T> mean = 0, Scalar<T> stddev = 1);
template <class T> void uniform_(BasicTensor<T>& t, Generator& gen, Scalar<T> low, Scalar<T> high);

// N(0, 1/fan_in): the classic recipe, keeping each unit's summed input at
// about unit variance.
template <class T> void classic_(BasicTensor<T>& w, Generator& gen);
// Glorot & Bengio: variance 2/(fan_in + fan_out), times gain^2.
template <class T> void xavier_normal_(BasicTensor<T>& w, Generator& gen, Scalar<T> gain = 1);
template <class T> void xavier_uniform_(BasicTensor<T>& w, Generator& gen, Scalar<T> gain = 1);
// He et al. for ReLU networks: variance 2/fan_in.
template <class T> void he_normal_(BasicTensor<T>& w, Generator& gen);
template <class T> void he_uniform_(BasicTensor<T>& w, Generator& gen);

// The same from this thread's default_generator() (tapegrad::manual_seed).
template <class T> void normal_(BasicTensor<T>& t, Scalar<T> mean = 0, Scalar<T> stddev = 1) {
    normal_(t, default_generator(), mean, stddev);
}
template <class T> void uniform_(BasicTensor<T>& t, Scalar<T> low, Scalar<T> high) {
    uniform_(t, default_generator(), low, high);
}
template <class T> void classic_(BasicTensor<T>& w) { classic_(w, default_generator()); }
template <class T> void xavier_normal_(BasicTensor<T>& w, Scalar<T> gain = 1) {
    xavier_normal_(w, default_generator(), gain);
}
template <class T> void xavier_uniform_(BasicTensor<T>& w, Scalar<T> gain = 1) {
    xavier_uniform_(w, default_generator(), gain);
}
template <class T> void he_normal_(BasicTensor<T>& w) { he_normal_(w, default_generator()); }
template <class T> void he_uniform_(BasicTensor<T>& w) { he_uniform_(w, default_generator()); }

// A whole module: every 2-D parameter whose name ends in "weight" gets the
// weight scheme, every parameter whose name ends in "bias" the bias rule;
// anything else (LayerNorm gains, PReLU slopes) is left alone.
enum class Scheme { classic, xavier_normal, xavier_uniform, he_normal, he_uniform };

struct Bias {
    enum class Kind { constant, normal } kind = Kind::constant;
    double value = 0;  // the constant, or the normal's stddev (mean 0)
    static Bias zeros() { return {}; }
    static Bias constant(double v) { return {Kind::constant, v}; }
    static Bias normal(double stddev = 1) { return {Kind::normal, stddev}; }
};

// The classic recipe pairs N(0, 1/fan_in) weights with N(0, 1) biases.
template <class T> void initialize(ModuleBase<T>& module, Scheme weights, Generator& gen, Bias bias = Bias::zeros());
template <class T> void initialize_classic(ModuleBase<T>& module, Generator& gen) {
    initialize(module, Scheme::classic, gen, Bias::normal(1));
}
template <class T> void initialize(ModuleBase<T>& module, Scheme weights, Bias bias = Bias::zeros()) {
    initialize(module, weights, default_generator(), bias);
}
template <class T> void initialize_classic(ModuleBase<T>& module) { initialize_classic(module, default_generator()); }

}  // namespace tapegrad::nn::init
