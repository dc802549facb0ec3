// Long graphs held in static and thread_local storage are freed at program
// and thread exit without recursion (after the thread's own release list is
// gone). A crash here is a stack overflow in node release. Run by CTest.
#include <cstdio>
#include <thread>

#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;

namespace {
constexpr int kChain = 1000000;

Tensor64 chain(const Tensor64& x) {
    Tensor64 y = x;
    for (int i = 0; i < kChain; ++i) y = y * 1.0;
    return y;
}

Tensor64 g_static_chain;  // destroyed after main returns
}  // namespace

int main() {
    std::thread worker([] {
        thread_local Tensor64 per_thread;
        per_thread = chain(Tensor64({1.0}, true));  // released when the thread ends
    });
    worker.join();
    g_static_chain = chain(Tensor64({1.0}, true));
    // The thread's chain is gone; the static one is alive until exit.
    const long long live = static_cast<long long>(live_graph_nodes());
    std::printf("live nodes before exit: %lld (expected %d)\n", live, kChain);
    return live == kChain ? 0 : 1;
}
