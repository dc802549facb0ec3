// Threads used inside one op. Matrix products run on BLAS's threads; the
// rest of an op runs on the calling thread. Independent models may train
// concurrently in different threads (see README, "Threads").
#pragma once

namespace tapegrad {

// Sets how many threads BLAS may use for one matrix product (OpenBLAS;
// ignored with a BLAS that has no such setting). Returns false when it
// could not be set.
bool set_num_threads(int threads);
int num_threads();

}  // namespace tapegrad
