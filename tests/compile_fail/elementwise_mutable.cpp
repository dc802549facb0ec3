// Must NOT compile: the function of one element given to kernels::elementwise
// must not keep state between elements (a mutable lambda): a fused replay
// calls it block by block, so its state would restart at every block.
// expect: no mutable lambda
#include <tapegrad/ops/kernels/elementwise.hpp>

int main() {
    int calls = 0;
    auto counting = tapegrad::kernels::elementwise<double, 1>([calls](double x) mutable { return x + ++calls; });
    return static_cast<int>(sizeof(counting));
}
