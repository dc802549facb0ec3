// Thread-local switches that change what tensor ops do: whether they record
// onto the graph (grad mode) and whether every value is checked for NaN/Inf
// (anomaly mode). Each thread has its own switches, so one thread's
// NoGradGuard never affects another's training.
#pragma once

#include <cstdint>

namespace tapegrad {

// True when ops record nodes for backward (the default).
bool grad_enabled() noexcept;
void set_grad_enabled(bool enabled) noexcept;

// Scope under which nothing is recorded (evaluation, optimiser updates).
class NoGradGuard {
public:
    NoGradGuard() noexcept : previous_(grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(previous_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// Scope that turns recording back on inside a NoGradGuard.
class EnableGradGuard {
public:
    EnableGradGuard() noexcept : previous_(grad_enabled()) { set_grad_enabled(true); }
    ~EnableGradGuard() { set_grad_enabled(previous_); }
    EnableGradGuard(const EnableGradGuard&) = delete;
    EnableGradGuard& operator=(const EnableGradGuard&) = delete;

private:
    bool previous_;
};

// Anomaly detection: when on, every forward result and every gradient is
// checked for NaN/Inf and an AnomalyError names the op, its position on the
// tape and, for a gradient, which input. Off by default; when off it costs
// one thread-local flag test per op.
bool anomaly_enabled() noexcept;
void set_anomaly_enabled(bool enabled) noexcept;

class DetectAnomalyGuard {
public:
    DetectAnomalyGuard() noexcept : previous_(anomaly_enabled()) { set_anomaly_enabled(true); }
    ~DetectAnomalyGuard() { set_anomaly_enabled(previous_); }
    DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
    DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

private:
    bool previous_;
};

// Number of graph nodes alive in the process: a way to check that a
// model's graphs are freed (it returns to its old value when the tensors
// holding a graph go away).
std::int64_t live_graph_nodes() noexcept;

}  // namespace tapegrad
