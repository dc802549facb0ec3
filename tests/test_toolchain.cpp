// Guards against a g++ 12 AVX-512 miscompilation (SLP vectoriser) that
// turned the index list {2, 2, 0, 0} into {2, 2, 2, 2}; cmake/Library.cmake
// works around it. If this fails, the compiler flags lost the workaround.
#include <doctest/doctest.h>

#include <cstdint>

namespace {
__attribute__((noinline)) long digits(const long* a) { return a[0] + 10 * a[1] + 100 * a[2] + 1000 * a[3]; }
}  // namespace

TEST_CASE("toolchain: constant 64-bit integer lists are compiled correctly") {
    const long la[4] = {2, 2, 0, 0};
    const unsigned long lb[2] = {2, 2};
    long* a = new long[4];
    unsigned long* b = new unsigned long[2];
    for (int i = 0; i < 4; ++i) a[i] = la[i];
    for (int i = 0; i < 2; ++i) b[i] = lb[i];
    CHECK(digits(a) == 22);
    CHECK(b[0] + b[1] == 4);
    delete[] a;
    delete[] b;
}
