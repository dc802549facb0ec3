// Must NOT compile: a view returned from modify() would write past the
// version check just like a reference.
// expect: modify: the write may return a plain value
#include <tapegrad/tapegrad.hpp>
#include <xtensor/xview.hpp>

int main() {
    tapegrad::Tensor64 w({1.0, 2.0}, true);
    auto first = w.modify([](auto& v) { return xt::view(v, xt::range(0, 1)); });
    (void)first;
}
