// Gradients as values: grad() returns d(output)/d(inputs) without touching
// any tensor's .grad. With create_graph the results are on the graph, so
// they can be differentiated again (Hessian-vector products, gradient
// penalties, a network's derivative with respect to its input inside a loss).
#pragma once

#include <vector>

#include <tapegrad/core/tensor.hpp>

namespace tapegrad {

// One gradient per input (undefined where the output does not depend on
// it). Without a seed the output must have one element. create_graph
// implies retain_graph.
template <class T>
std::vector<BasicTensor<T>> grad(const BasicTensor<T>& output, const std::vector<BasicTensor<T>>& inputs,
                                 const BasicTensor<T>& seed = {}, BackwardOptions options = {});

}  // namespace tapegrad
