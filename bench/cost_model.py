#!/usr/bin/env python3
"""Cost model of data-parallel steps on N machines (docs/distributed.md).

Per step, with the global batch fixed and split over N machines, 1 thread each:
  compute(N)   = F + (T1 - F) / N
      T1: one machine's step; F: the part of it that does not shrink with the
      rows (optimiser update, graph, per-layer calls), measured as a 1-row step
  allreduce(N) = sum over buckets b of 2 (N - 1) alpha + 2 (N - 1) / N * bytes_b / bandwidth
      (ring all-reduce: 2 (N - 1) messages of latency alpha per bucket, and
      every rank sends and receives 2 (N - 1) / N of the bucket)
A step takes compute + allreduce without overlap and max(compute, allreduce)
with perfect overlap; communication dominates when allreduce > compute.

  bench/cost_model.py                                 # the tables of docs/distributed.md
  bench/cost_model.py --fit ALPHA_US BANDWIDTH_GBS    # the N = 2 prediction with a measured fit
                                                      # (bench/distributed_scaling.py prints it)
"""
import sys

# Per MLP: gradient bytes per bucket (float32, 1 MiB buckets, in the order
# they start; bench_distributed prints them); T1, one machine's training step
# with 1 thread (the README's performance table, a quiet moment); F, the step
# on 1 row (bench/distributed_scaling.py, best of 3 runs at load 2.9-3.5).
MLPS = {
    "784-256-256-10, batch 128": dict(buckets=[274_472, 802_816], t1=1.39e-3, fixed=0.174e-3),
    "1024-1024-1024-10, batch 1024": dict(buckets=[45_096, 4_194_304, 4_096, 4_194_304], t1=92.2e-3, fixed=2.73e-3),
}
# Links: bandwidth in bytes/s and per-message latency (TCP on 10 Gbit/s
# Ethernet, RDMA-class 100 Gbit/s).
LINKS = {"10 Gbit/s": (1.25e9, 20e-6), "100 Gbit/s": (12.5e9, 5e-6)}
MACHINES = (8, 16, 32, 64)


def allreduce(n, nbytes, buckets, bandwidth, alpha):
    """Ring all-reduce of `nbytes` in `buckets` equal buckets on n ranks."""
    return buckets * 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def step_allreduce(n, m, bandwidth, alpha):
    return sum(allreduce(n, b, 1, bandwidth, alpha) for b in m["buckets"])


def compute(n, m):
    return m["fixed"] + (m["t1"] - m["fixed"]) / n


def table():
    print("| MLP | link | N | compute/step | all-reduce/step | comm/compute | step, overlapped | speed-up, "
          "overlapped | speed-up, not overlapped |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in MLPS.items():
        for link, (bw, alpha) in LINKS.items():
            for n in MACHINES:
                c, a = compute(n, m), step_allreduce(n, m, bw, alpha)
                flag = " **comm**" if a > c else ""
                print(f"| {name} | {link} | {n} | {1e3 * c:.3f} ms | {1e3 * a:.3f} ms | {a / c:.2f}{flag} | "
                      f"{1e3 * max(c, a):.3f} ms | {m['t1'] / max(c, a):.1f}x | {m['t1'] / (c + a):.1f}x |")


def crossovers():
    print("\n| MLP | link | communication dominates from N = |")
    print("|---|---|---|")
    for name, m in MLPS.items():
        for link, (bw, alpha) in LINKS.items():
            n = next(n for n in range(2, 100000) if step_allreduce(n, m, bw, alpha) > compute(n, m))
            print(f"| {name} | {link} | {n} |")


def check(alpha_us, bandwidth_gbs):
    for name, m in MLPS.items():
        a = step_allreduce(2, m, bandwidth_gbs * 1e9, alpha_us * 1e-6)
        c = compute(2, m)
        print(f"{name}, N = 2: compute {1e3 * c:.3f} ms, all-reduce {1e3 * a:.3f} ms, step without overlap "
              f"{1e3 * (c + a):.3f} ms ({m['t1'] / (c + a):.2f}x), fully overlapped {1e3 * max(c, a):.3f} ms "
              f"({m['t1'] / max(c, a):.2f}x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fit":
        check(float(sys.argv[2]), float(sys.argv[3]))
    else:
        table()
        crossovers()
