// The API fuzzer: bytes decoded into a sequence of public API calls, each
// checked against tapegrad's contract for bad input (README, Guarantees):
// every call returns a consistent result or throws a tapegrad::Error whose
// message names the op. A crash, a sanitizer report or an exception of any
// other type is a finding. Used by the libFuzzer target fuzz_api.cpp and by
// the plain driver api_fuzz_main.cpp (which CTest runs on tests/corpus/api).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad::fuzz {

struct ApiRunResult {
    std::string failure;       // empty: the contract held for every call
    std::size_t calls = 0;     // API calls made
    std::size_t refused = 0;   // of which ended in a tapegrad::Error
    std::size_t too_big = 0;   // of which ran out of the fuzzer's memory budget (std::bad_alloc)
};

// Decodes and runs one input. `scratch` is a folder for checkpoint files.
ApiRunResult run_api_input(const std::uint8_t* data, std::size_t size, const std::string& scratch);

// Where the scratch folder for checkpoint files goes: /dev/shm when it is
// a writable folder (checkpoints are fsynced: on a disk that dominated the
// cost of an input), else the system's temporary folder.
std::string scratch_root();

// The memory budget: a legitimately huge tensor (2^40 elements, no overflow)
// must end in std::bad_alloc, not in the machine's swap or the OOM killer.
// Call once at program start: with AddressSanitizer the budget is its
// max_allocation_size_mb (see __asan_default_options in the drivers),
// otherwise an address-space limit of `megabytes`.
void limit_memory(std::size_t megabytes);

// Names of the call kinds the decoder knows, by index (for coverage counts).
const std::vector<std::string>& api_call_names();
// How often each call kind ran since program start.
const std::vector<std::size_t>& api_call_counts();
// Wall time spent in each call kind since program start (for profiling).
const std::vector<double>& api_call_seconds();

}  // namespace tapegrad::fuzz
