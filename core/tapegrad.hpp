// The whole public API of tapegrad in one include. Writing your own ops
// also takes #include <tapegrad/core/op.hpp>: it is kept out of here because
// its short names (Op, Grads, Saved) would clash with a program's own under
// `using namespace tapegrad`.
#pragma once

#include <tapegrad/core/activation_checkpoint.hpp>
#include <tapegrad/core/autograd.hpp>
#include <tapegrad/core/dot.hpp>
#include <tapegrad/core/error.hpp>
#include <tapegrad/core/functional.hpp>
#include <tapegrad/core/generator.hpp>
#include <tapegrad/core/grad_mode.hpp>
#include <tapegrad/core/memory.hpp>
#include <tapegrad/core/gradcheck.hpp>
#include <tapegrad/core/profiler.hpp>
#include <tapegrad/core/tensor.hpp>
#include <tapegrad/core/threads.hpp>
#include <tapegrad/ops/arithmetic.hpp>
#include <tapegrad/ops/compare.hpp>
#include <tapegrad/ops/indexing.hpp>
#include <tapegrad/ops/like.hpp>
#include <tapegrad/ops/linalg.hpp>
#include <tapegrad/ops/linalg_decomp.hpp>
#include <tapegrad/ops/linalg_structure.hpp>
#include <tapegrad/ops/reduce.hpp>
#include <tapegrad/ops/shape.hpp>
#include <tapegrad/ops/unary.hpp>

// std::cout << t.value() prints the array (xtensor's printer).
#include <xtensor/xio.hpp>
