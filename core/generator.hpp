// Generator: the seedable source of randomness behind rand/randn, the
// initialisers, dropout and RReLU. Same seed, same numbers, on every run.
//
// Calls that take no Generator draw from default_generator(). It is one per
// thread: no locking on the hot path, and a thread's numbers do not depend on
// what other threads draw. manual_seed(s) reseeds the calling thread's
// generator and sets the seed every thread that has not drawn yet starts
// from (0 if manual_seed was never called); seed a worker thread inside the
// thread when its numbers must differ from another's.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace tapegrad {

class Generator;
namespace detail {
// Sees every generator a piece of code draws from, before its first draw.
// checkpoint() installs one (per thread) while it runs its function for the
// first time, so it can replay the random state of generators nobody listed
// (a Dropout's own, say) instead of drawing new numbers in the recomputation.
struct GeneratorWatch {
    virtual void drawing_from(Generator& gen) = 0;
    GeneratorWatch* outer = nullptr;  // the watch this one replaced (nested checkpoints)
protected:
    ~GeneratorWatch() = default;
};
extern thread_local GeneratorWatch* generator_watch;
}  // namespace detail

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
    void seed(std::uint64_t s) { engine_.seed(s); }
    // Draw through this (hoist it out of loops: it tells a watching
    // checkpoint() that this generator is in use).
    std::mt19937_64& engine() {
        if (detail::generator_watch) detail::generator_watch->drawing_from(*this);
        return engine_;
    }

    // The whole engine state as text (the standard library's stream format
    // of mt19937_64). set_state(state()) continues the sequence exactly where
    // it was: checkpoints save it so a resumed run draws the same numbers.
    std::string state() const;
    // ValueError if `state` is not a state written by state().
    void set_state(const std::string& state);

    bool operator==(const Generator& other) const { return engine_ == other.engine_; }
    bool operator!=(const Generator& other) const { return !(*this == other); }

private:
    std::mt19937_64 engine_;
};

// This thread's default generator (see above).
Generator& default_generator();
// Reseeds this thread's default generator; threads that have not drawn yet
// start from `seed` too.
void manual_seed(std::uint64_t seed);

}  // namespace tapegrad
