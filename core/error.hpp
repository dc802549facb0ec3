// Typed errors thrown by tapegrad. Every message names the op, file or
// parameter involved and the offending shapes or values, so a user can act
// on it without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace tapegrad {

// Base of every error tapegrad throws.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Operand shapes do not fit the op (broadcasting, matmul, reshape, ...).
struct ShapeError : Error {
    using Error::Error;
};

// An argument is out of range: an axis, a class label, an index, a size.
struct ValueError : Error {
    using Error::Error;
};

// Misuse of the graph: backward over a released graph, no seed for a
// non-scalar, a saved tensor modified in place, no gradient to compute.
struct GraphError : Error {
    using Error::Error;
};

// float32 and float64 mixed where one element type is required.
struct DtypeError : Error {
    using Error::Error;
};

// A file could not be read or written, or its contents are corrupt.
struct IoError : Error {
    using Error::Error;
};

// Anomaly detection found a NaN or Inf in a forward value or a gradient.
struct AnomalyError : Error {
    using Error::Error;
};

}  // namespace tapegrad
