// The out-of-line parts of the op-writing API (core/op.hpp): its errors.
#include <tapegrad/core/op.hpp>

#include <sstream>

namespace tapegrad {

template <class T>
void VjpContext<T>::modified(std::uint64_t saved, std::uint64_t now) const {
    std::ostringstream os;
    os << "backward: a tensor saved by '" << node_.name << "' (tape position " << node_.seq
       << ") was modified in place after it was saved (version " << saved << ", now " << now
       << "); clone it before modifying, or modify it after backward";
    throw GraphError(os.str());
}

template class VjpContext<float>;
template class VjpContext<double>;

namespace detail {

void raw_vjp_under_create_graph(const char* op, std::uint64_t tape_position) {
    throw GraphError("backward: '" + std::string(op) + "' (tape position " + std::to_string(tape_position) +
                     ") has a backward written on raw values (record_raw), which cannot be differentiated "
                     "again: create_graph cannot pass through it; write its VJP with tensor ops (record) for "
                     "higher derivatives");
}

thread_local CaptureSinks capture_sinks;
std::atomic<int> captures_running{0};

void forward_arity(const char* op, std::size_t takes, std::size_t inputs) {
    throw GraphError("'" + std::string(op) + "': its forward callable takes " + std::to_string(takes) +
                     " arrays, but the op has " + std::to_string(inputs) +
                     " inputs; op.forward(fn) calls fn with one const Array<T>& per input, in order");
}

namespace {
thread_local int skip_leaf_hooks = 0;
}
SkipLeafHooks::SkipLeafHooks() { ++skip_leaf_hooks; }
SkipLeafHooks::~SkipLeafHooks() { --skip_leaf_hooks; }
bool SkipLeafHooks::active() { return skip_leaf_hooks > 0; }

void input_out_of_range(const char* op, std::size_t input, std::size_t inputs) {
    throw ValueError("'" + std::string(op) + "': needs(" + std::to_string(input) + ") asked about input " +
                     std::to_string(input) + ", but the op has " + std::to_string(inputs) + " inputs");
}

void bad_record_target(const char* op, bool twice) {
    if (twice)
        throw GraphError("'" + std::string(op) + "': record() was called twice on one Op; an Op records one output");
    throw GraphError("'" + std::string(op) + "': record() needs the op's new output (from op.forward(...) or op.output(...)), not an "
                     "undefined tensor, an input or another op's result: recording onto it would silently make it "
                     "this op's output");
}

}  // namespace detail

}  // namespace tapegrad
