// Helpers shared by the op and nn test files: random inputs, value checks,
// error checks and gradcheck assertions that print the report when they fail.
// Gradients are checked with GradcheckOptions::strict() (Richardson
// extrapolation, rtol 1e-6, atol 1e-8), which catches a VJP off by 1e-4.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace op_test {

using namespace tapegrad;

// A shape as text, for CAPTURE.
inline std::string str(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// max |a - b| / max(1, max |b|): a difference relative to the values' scale.
template <class T>
double rel_diff(const BasicTensor<T>& a, const BasicTensor<T>& b) {
    REQUIRE(a.defined());
    REQUIRE(b.defined());
    REQUIRE(a.shape_vector() == b.shape_vector());
    double diff = 0, scale = 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a.value().data()[i]) - double(b.value().data()[i])));
        scale = std::max(scale, std::abs(double(b.value().data()[i])));
    }
    return diff / scale;
}

inline Tensor64 uniform(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
    Generator gen(seed);
    return Tensor64::rand(shape, gen, lo, hi);
}

inline void expect_values(const Tensor64& t, const Shape& shape, const std::vector<double>& want) {
    REQUIRE(t.shape_vector() == shape);
    REQUIRE(t.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(t.value().data()[i] == doctest::Approx(want[i]));
}

// Runs f, expecting an E whose message contains every part.
template <class E, class F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
    std::string message;
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        message = e.what();
    }
    INFO("message: " << message);
    REQUIRE(thrown);
    for (const char* p : parts) CHECK(message.find(p) != std::string::npos);
}

// gradcheck and gradgradcheck with the strict settings.
inline GradcheckReport strict_gradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs) {
    return gradcheck(f, inputs, GradcheckOptions::strict());
}
inline GradcheckReport strict_gradgradcheck(const TensorFunction& f, const std::vector<Tensor64>& inputs) {
    return gradgradcheck(f, inputs, GradcheckOptions::strict());
}

}  // namespace op_test

using namespace op_test;

#define REQUIRE_GRADCHECK(f, inputs)                 \
    do {                                             \
        auto report_ = strict_gradcheck(f, inputs);  \
        INFO(report_.message());                     \
        REQUIRE(report_);                            \
    } while (0)
#define REQUIRE_GRADGRADCHECK(f, inputs)                 \
    do {                                                 \
        auto report_ = strict_gradgradcheck(f, inputs);  \
        INFO(report_.message());                         \
        REQUIRE(report_);                                \
    } while (0)
