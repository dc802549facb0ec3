// Formatting of shapes for nn error messages ("[2, 3]", as the ops print them).
#pragma once

#include <sstream>
#include <string>

namespace tapegrad::nn {

template <class S>
std::string shape_string(const S& shape) {
    std::ostringstream os;
    os << '[';
    std::size_t i = 0;
    for (auto d : shape) os << (i++ ? ", " : "") << d;
    os << ']';
    return os.str();
}

}  // namespace tapegrad::nn
