#include <tapegrad/core/generator.hpp>

#include <atomic>
#include <sstream>

#include <tapegrad/core/error.hpp>

namespace tapegrad {

std::string Generator::state() const {
    std::ostringstream os;
    os << engine_;
    return os.str();
}

void Generator::set_state(const std::string& state) {
    std::istringstream is(state);
    std::mt19937_64 engine;
    is >> engine;
    // Too little, or anything but spaces left over, means it was not a state.
    bool ok = !is.fail();
    if (ok && !is.eof()) {
        is >> std::ws;
        ok = is.eof();
    }
    if (!ok)
        throw ValueError("Generator::set_state: the text is not an mt19937_64 state (" +
                         std::to_string(state.size()) + " characters)");
    engine_ = engine;
}

namespace {
std::atomic<std::uint64_t> initial_seed{0};
}

namespace detail {
thread_local GeneratorWatch* generator_watch = nullptr;
}

Generator& default_generator() {
    thread_local Generator gen(initial_seed.load(std::memory_order_relaxed));
    return gen;
}

void manual_seed(std::uint64_t seed) {
    initial_seed.store(seed, std::memory_order_relaxed);
    default_generator().seed(seed);
}

}  // namespace tapegrad
