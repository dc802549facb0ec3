// Aliasing fuzz: random sequences of backward / grad / set_grad / zero_grad /
// retain_grad / create_graph calls and in-place writes, on leaves, seeds and
// gradients that may share buffers, checked after every call against a
// reference model that keeps a private copy of every value. No result may
// depend on whether two tensors share storage.
//
// Values are small integers, so every expected number is exact in float64.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {

using Values = xt::xarray<double>;
constexpr std::size_t kLeaves = 3;
constexpr std::size_t kSeeds = 2;

// A tensor the user keeps, and what it must hold. Handles taken from one
// .grad are one tensor: they share a token, as the leaf does until the
// engine gives its .grad a new buffer.
using Token = std::shared_ptr<int>;
struct Held {
    Tensor64 tensor;
    Values expected;
    Token buffer;  // null: a tensor nobody else can see
};

class Fuzz {
public:
    explicit Fuzz(std::uint64_t seed) : rng_(seed) {
        for (std::size_t i = 0; i < kLeaves; ++i) leaves_.emplace_back(random_values(), true);
        for (std::size_t i = 0; i < kSeeds; ++i) seeds_.emplace_back(random_values());
        for (const auto& s : seeds_) seed_values_.push_back(s.value());
        grads_.resize(kLeaves);
        grad_buffer_.resize(kLeaves);
    }

    void step() {
        switch (pick(7)) {
            case 0: backward(); break;
            case 1: take_grad(); break;
            case 2: set_grad(); break;
            case 3: zero_grad(); break;
            case 4: hold_grad(); break;
            case 5: write_held(); break;
            case 6: write_seed(); break;
        }
        check();
    }
    std::string log() const { return log_.str(); }

private:
    std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
    Values random_values() {
        Values v = xt::zeros<double>({2});
        for (auto& e : v) e = static_cast<double>(static_cast<int>(pick(7)) - 3);
        return v;
    }
    Tensor64& seed() { return seeds_[pick(kSeeds)]; }
    const Values& seed_value(const Tensor64& s) {
        for (std::size_t i = 0; i < kSeeds; ++i)
            if (s.same(seeds_[i])) return seed_values_[i];
        throw std::logic_error("not a seed");
    }

    // One of a few functions of two leaves whose VJPs hand the same
    // gradient to several inputs (add, clone) or save the leaves (mul), with
    // its exact gradients for a seed s. `h` is a retain_grad() non-leaf.
    struct Call {
        Tensor64 y, h;
        std::vector<std::pair<std::size_t, Values>> grads;  // (leaf, gradient)
        Values h_grad;
    };
    Call call(const Values& s) {
        std::size_t a = pick(kLeaves), b = pick(kLeaves);
        const auto& la = leaves_[a];
        const auto& lb = leaves_[b];
        Call c;
        switch (pick(5)) {
            case 0:
                log_ << "y = L" << a << " + L" << b << "; ";
                c.y = la + lb;
                c.grads = {{a, s}, {b, s}};
                break;
            case 1:
                log_ << "y = L" << a << " * L" << b << "; ";
                c.y = la * lb;
                c.grads = {{a, s * lb.value()}, {b, s * la.value()}};
                break;
            case 2:
                log_ << "y = clone(L" << a << ") + L" << a << "; ";
                c.y = clone(la) + la;
                c.grads = {{a, 2.0 * s}};
                break;
            case 3:
                log_ << "y = L" << a << " * 3; ";
                c.y = la * 3.0;
                c.grads = {{a, 3.0 * s}};
                break;
            default:
                log_ << "h = L" << a << " * 2 (retained); y = h * L" << b << "; ";
                c.h = la * 2.0;
                c.h.retain_grad();
                c.y = c.h * lb;
                c.grads = {{a, 2.0 * s * lb.value()}, {b, s * 2.0 * la.value()}};
                c.h_grad = s * lb.value();
                break;
        }
        return c;
    }

    void replaced(std::size_t leaf) { grad_buffer_[leaf].reset(); }  // .grad got a new buffer (or none)

    void backward() {
        Tensor64& s = seed();
        const Values sv = seed_value(s);
        Call c = call(sv);
        const bool create_graph = pick(3) == 0;
        log_ << "y.backward(seed, create_graph=" << create_graph << ")\n";
        c.y.backward(s, {false, create_graph});
        for (auto& [leaf, g] : c.grads) {
            grads_[leaf] = grads_[leaf] ? Values(*grads_[leaf] + g) : g;
            // An in-place add is allowed only when nobody else holds .grad, so
            // a held handle keeps the old value; the model treats them apart.
            replaced(leaf);
        }
        if (c.h.defined()) CHECK_MESSAGE(c.h.grad().value() == c.h_grad, log());
    }

    void take_grad() {
        Tensor64& s = seed();
        const Values sv = seed_value(s);
        Call c = call(sv);
        std::vector<Tensor64> wrt;
        std::vector<std::size_t> which;
        for (std::size_t n = 1 + pick(3); n > 0; --n) {
            which.push_back(pick(kLeaves));
            wrt.push_back(leaves_[which.back()]);
        }
        const bool create_graph = pick(3) == 0;
        log_ << "grad(y, {";
        for (auto w : which) log_ << "L" << w << " ";
        log_ << "}, seed, create_graph=" << create_graph << ")\n";
        auto results = grad(c.y, wrt, s, {false, create_graph});
        for (std::size_t k = 0; k < which.size(); ++k) {
            Values expected = xt::zeros<double>({2});
            bool reached = false;
            for (auto& [leaf, g] : c.grads)
                if (leaf == which[k]) {
                    expected += g;
                    reached = true;
                }
            REQUIRE_MESSAGE(results[k].defined() == reached, log());
            if (reached) held_.push_back({results[k], expected, nullptr});
        }
    }

    void set_grad() {
        const std::size_t leaf = pick(kLeaves);
        const std::size_t source = pick(3);
        if (source == 0 && !held_.empty()) {
            auto& h = held_[pick(held_.size())];
            log_ << "L" << leaf << ".set_grad(held)\n";
            leaves_[leaf].set_grad(h.tensor);
            grads_[leaf] = h.expected;
        } else if (source == 1) {
            Tensor64& s = seed();
            log_ << "L" << leaf << ".set_grad(seed)\n";
            leaves_[leaf].set_grad(s);
            grads_[leaf] = seed_value(s);
        } else {
            const std::size_t other = pick(kLeaves);
            log_ << "L" << leaf << ".set_grad(L" << other << ".grad())\n";
            if (!grads_[other]) return;
            leaves_[leaf].set_grad(leaves_[other].grad());
            grads_[leaf] = *grads_[other];
        }
        replaced(leaf);
    }

    void zero_grad() {
        const std::size_t leaf = pick(kLeaves);
        log_ << "L" << leaf << ".zero_grad()\n";
        leaves_[leaf].zero_grad();
        grads_[leaf].reset();
        replaced(leaf);
    }

    void hold_grad() {
        const std::size_t leaf = pick(kLeaves);
        if (!grads_[leaf]) return;
        log_ << "held = L" << leaf << ".grad()\n";
        if (!grad_buffer_[leaf]) grad_buffer_[leaf] = std::make_shared<int>();
        held_.push_back({leaves_[leaf].grad(), *grads_[leaf], grad_buffer_[leaf]});
    }

    // The user writes into a tensor they hold: only that tensor (and the
    // .grad it is the handle of) may change.
    void write_held() {
        if (held_.empty()) return;
        auto& h = held_[pick(held_.size())];
        log_ << "held.modify(+= 1)" << (h.buffer ? " (a .grad handle)" : "") << "\n";
        h.tensor.modify([](auto& v) { v += 1.0; });
        if (!h.buffer) {
            h.expected += 1.0;
            return;
        }
        for (auto& other : held_)
            if (other.buffer == h.buffer) other.expected += 1.0;
        for (std::size_t leaf = 0; leaf < kLeaves; ++leaf)
            if (grad_buffer_[leaf] == h.buffer) *grads_[leaf] += 1.0;
    }

    void write_seed() {
        const std::size_t i = pick(kSeeds);
        log_ << "seed.modify(*= -1)\n";
        seeds_[i].modify([](auto& v) { v *= -1.0; });
        seed_values_[i] *= -1.0;
    }

    void check() {
        for (std::size_t i = 0; i < kLeaves; ++i) {
            auto g = leaves_[i].grad();
            REQUIRE_MESSAGE(g.defined() == grads_[i].has_value(), log());
            if (g.defined()) REQUIRE_MESSAGE(g.value() == *grads_[i], log(), "leaf ", i);
        }
        for (std::size_t i = 0; i < held_.size(); ++i)
            REQUIRE_MESSAGE(held_[i].tensor.value() == held_[i].expected, log(), "held ", i);
        for (std::size_t i = 0; i < kSeeds; ++i) REQUIRE_MESSAGE(seeds_[i].value() == seed_values_[i], log());
    }

    std::mt19937_64 rng_;
    std::vector<Tensor64> leaves_, seeds_;
    std::vector<Values> seed_values_;
    std::vector<std::optional<Values>> grads_;
    std::vector<Held> held_;
    std::vector<Token> grad_buffer_;  // per leaf: the token of its current .grad buffer, if held
    std::ostringstream log_;
};

}  // namespace

TEST_CASE("aliasing fuzz: no result depends on whether two tensors share storage") {
    const auto before = live_graph_nodes();
    for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
        CAPTURE(seed);
        {
            Fuzz fuzz(seed);
            for (int i = 0; i < 40; ++i) fuzz.step();
        }
        REQUIRE(live_graph_nodes() == before);  // create_graph gradients die with their leaves
    }
}
