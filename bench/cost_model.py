#!/usr/bin/env python3
"""Cost model of data-parallel steps on N machines (docs/distributed.md).

Per step, with the global batch fixed and split over N machines:
  compute(N)  = T1 / N                      (T1: one machine's step, 1 thread)
  allreduce(N) = sum over buckets of 2 (N - 1) alpha + 2 (N - 1) / N * bytes / bandwidth
(ring all-reduce: 2 (N - 1) messages per bucket, each rank sends and receives
2 (N - 1) / N of the bucket). Communication dominates when allreduce(N) >
compute(N); overlapped with backward, a step takes about max(compute,
allreduce) plus the last bucket, without overlap compute + allreduce.

  bench/cost_model.py                    # the table of docs/distributed.md
  bench/cost_model.py --check T1 BYTES BUCKETS BW_GBs ALPHA_US   # one prediction for N = 2
"""
import sys

# Gradient bytes (float32) and buckets (1 MiB cap, reverse order) of the two
# MLPs, and one machine's step time with 1 thread from the README's table
# (tapegrad, quiet moments of the project's machine).
MLPS = {
    "784-256-256-10, batch 128": dict(bytes=269_322 * 4, buckets=2, t1=1.39e-3),
    "1024-1024-1024-10, batch 1024": dict(bytes=2_109_450 * 4, buckets=4, t1=92.2e-3),
}
LINKS = {"10 Gbit/s": (1.25e9, 20e-6), "100 Gbit/s": (12.5e9, 5e-6)}  # bandwidth B/s, per-message latency


def allreduce(n, nbytes, buckets, bandwidth, alpha):
    return buckets * 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def table():
    print("| MLP | link | N | compute/step | all-reduce/step | comm/compute | step, overlapped | speed-up over 1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in MLPS.items():
        for link, (bw, alpha) in LINKS.items():
            for n in (8, 16, 32, 64):
                c = m["t1"] / n
                a = allreduce(n, m["bytes"], m["buckets"], bw, alpha)
                step = max(c, a)
                flag = " **comm**" if a > c else ""
                print(f"| {name} | {link} | {n} | {1e3 * c:.3f} ms | {1e3 * a:.3f} ms | {a / c:.2f}{flag} | "
                      f"{1e3 * step:.3f} ms | {m['t1'] / step:.1f}x |")


def crossovers():
    print("\n| MLP | link | communication dominates from N = |")
    print("|---|---|---|")
    for name, m in MLPS.items():
        for link, (bw, alpha) in LINKS.items():
            n = next(n for n in range(2, 100000) if allreduce(n, m["bytes"], m["buckets"], bw, alpha) > m["t1"] / n)
            print(f"| {name} | {link} | {n} |")


def check(t1, nbytes, buckets, bw_gbs, alpha_us):
    a = allreduce(2, nbytes, buckets, bw_gbs * 1e9, alpha_us * 1e-6)
    print(f"N = 2: compute {1e3 * t1 / 2:.3f} ms, all-reduce {1e3 * a:.3f} ms, "
          f"step without overlap {1e3 * (t1 / 2 + a):.3f} ms, fully overlapped {1e3 * max(t1 / 2, a):.3f} ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        check(*map(float, sys.argv[2:7]))
    else:
        table()
        crossovers()
