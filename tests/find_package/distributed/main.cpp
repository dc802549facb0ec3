// The installed distributed API on 2 ranks: rank 0's parameter broadcast,
// each rank's gradient of its own rows averaged, the result checked against
// the mean gradient of all rows on every rank.
#include <cmath>
#include <cstdio>

#include <tapegrad/nn/distributed/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

using namespace tapegrad;
namespace dist = tapegrad::distributed;

int main(int argc, char** argv) {
    dist::Session session(argc, argv);
    if (!dist::mpi_available() || session.size() != 2) session.abort(1, "run me with mpiexec -n 2");
    // d/dw sum(x w) = sum(x) for a scalar w: rank r's rows are x = r + 1.
    Tensor64 w = Tensor64::scalar(session.rank() == 0 ? 0.5 : 9.0, true);
    dist::broadcast<double>({w});
    dist::GradientAverager<double> averager({w});
    Tensor64 x = Tensor64::full({3}, session.rank() + 1.0);  // 3 rows per rank
    (x * w).sum().backward();
    averager.finish();
    const double expect = (3 * 1.0 + 3 * 2.0) / 2;  // the mean of the ranks' gradients
    if (w.item() != 0.5 || std::abs(w.grad().item() - expect) > 1e-12)
        session.abort(1, "w = " + std::to_string(w.item()) + ", averaged gradient " +
                             std::to_string(w.grad().item()) + ", expected 0.5 and " + std::to_string(expect));
    if (session.sum(w.grad().item()) != 2 * expect) session.abort(1, "the ranks' averaged gradients differ");
    if (session.is_root()) std::printf("distributed consumer: 2 ranks, averaged gradient %.1f\n", w.grad().item());
    return 0;
}
