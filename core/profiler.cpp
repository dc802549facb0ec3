#include <tapegrad/core/profiler.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tapegrad {

namespace {
thread_local Profiler* t_current = nullptr;
}

Profiler::Profiler() : previous_(t_current) { t_current = this; }
Profiler::~Profiler() { t_current = previous_; }
Profiler* Profiler::current() noexcept { return t_current; }
Profiler* Profiler::exchange_current(Profiler* p) noexcept {
    Profiler* previous = t_current;
    t_current = p;
    return previous;
}

Profiler::Row& Profiler::row(const char* op) {
    for (auto& r : rows_)
        if (r.op == op) return r;
    rows_.push_back(Row{op});
    return rows_.back();
}

void Profiler::add_forward(const char* op, std::uint64_t ns, std::uint64_t saved_bytes) {
    auto& r = row(op);
    ++r.forward_count;
    r.forward_ms += static_cast<double>(ns) * 1e-6;
    r.saved_bytes += saved_bytes;
}

void Profiler::add_backward(const char* op, std::uint64_t ns) {
    auto& r = row(op);
    ++r.backward_count;
    r.backward_ms += static_cast<double>(ns) * 1e-6;
}

std::vector<Profiler::Row> Profiler::rows() const {
    auto sorted = rows_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Row& a, const Row& b) {
        return a.forward_ms + a.backward_ms > b.forward_ms + b.backward_ms;
    });
    return sorted;
}

void Profiler::reset() { rows_.clear(); }

std::string Profiler::table() const {
    std::string out;
    char line[256];
    std::snprintf(line, sizeof line, "%-18s %10s %12s %10s %12s %14s\n", "op", "calls", "forward ms", "bwd calls",
                  "backward ms", "saved bytes");
    out += line;
    double fwd = 0, bwd = 0;
    for (const auto& r : rows()) {
        std::snprintf(line, sizeof line, "%-18s %10llu %12.3f %10llu %12.3f %14llu\n", r.op.c_str(),
                      static_cast<unsigned long long>(r.forward_count), r.forward_ms,
                      static_cast<unsigned long long>(r.backward_count), r.backward_ms,
                      static_cast<unsigned long long>(r.saved_bytes));
        out += line;
        fwd += r.forward_ms;
        bwd += r.backward_ms;
    }
    std::snprintf(line, sizeof line, "%-18s %10s %12.3f %10s %12.3f\n", "total", "", fwd, "", bwd);
    out += line;
    return out;
}

}  // namespace tapegrad
