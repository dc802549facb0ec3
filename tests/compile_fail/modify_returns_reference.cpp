// Must NOT compile: modify() hands out the value only inside the write; a
// reference returned from it could write past the version check.
// expect: modify: the write may return a plain value
#include <tapegrad/tapegrad.hpp>

int main() {
    tapegrad::Tensor64 w({1.0, 2.0}, true);
    auto& kept = w.modify([](auto& v) -> auto& { return v; });
    kept(0) = 10;
}
