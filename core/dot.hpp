// Export of a recorded graph to Graphviz DOT, to look at a model's graph:
//
//   std::ofstream("graph.dot") << tapegrad::to_dot(loss);
//   // dot -Tpng graph.dot -o graph.png
//
// Boxes are recorded ops (name, tape position, output shape); ellipses are
// leaves that require grad; grey ellipses are inputs without gradient.
#pragma once

#include <string>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

template <class T>
std::string to_dot(const BasicTensor<T>& root);

}  // namespace tapegrad
