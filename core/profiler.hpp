// Built-in profiler: while a Profiler scope is alive on a thread, every op
// recorded there adds its count, forward time and the bytes it saved for
// backward, and every node that backward visits adds its backward time.
// table() prints the per-op totals, most expensive first.
//
//   tapegrad::Profiler prof;
//   auto loss = model(x); loss.backward();
//   std::cout << prof.table();
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad {

class Profiler {
public:
    struct Row {
        std::string op;
        std::uint64_t forward_count = 0;   // times the op ran forward
        std::uint64_t backward_count = 0;  // times its vector-Jacobian product ran
        double forward_ms = 0;
        double backward_ms = 0;
        std::uint64_t saved_bytes = 0;  // saved for backward, summed over calls
    };

    Profiler();   // starts recording on this thread
    ~Profiler();  // stops; nested profilers restore the outer one
    Profiler(const Profiler&) = delete;
    Profiler& operator=(const Profiler&) = delete;

    std::vector<Row> rows() const;  // sorted by forward+backward time
    std::string table() const;
    void reset();

    // Hooks called by the engine.
    void add_forward(const char* op, std::uint64_t ns, std::uint64_t saved_bytes);
    void add_backward(const char* op, std::uint64_t ns);
    static Profiler* current() noexcept;
    // Sets the thread's active profiler, returning the previous one (the
    // engine pauses profiling while a VJP runs so its inner ops count as
    // that node's backward time, not as forward calls).
    static Profiler* exchange_current(Profiler* p) noexcept;

private:
    Row& row(const char* op);
    std::vector<Row> rows_;
    Profiler* previous_;
};

}  // namespace tapegrad
