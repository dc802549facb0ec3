#!/usr/bin/env python3
"""Data-parallel scaling: 2 ranks x 1 thread vs 1 rank x 1 thread, side by side.

Runs build/bench/tapegrad_bench_distributed under mpirun with 1 and 2 ranks on
the 784-256-256-10 (global batch 128) and 1024-1024-1024-10 (global batch
1024) MLPs, interleaved (1 rank, 2 ranks, 1 rank, ...) so a busy phase of a
shared machine hits both, and prints a markdown table of medians: steps per
second, the speed-up, and the time per step spent waiting in the all-reduce.

  bench/distributed_scaling.py [--build build] [--repetitions 5] [--seconds 4]
"""
import argparse
import os
import re
import statistics
import subprocess


def run(binary, ranks, mlp, seconds, bucket_mib, busy_poll, allreduce_only=False):
    # A rank waiting in MPI spins by default; on a shared, loaded machine it
    # then takes CPU from the rank it waits for. Yielding costs a little on an
    # idle machine and wins a lot on a busy one.
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "0" if busy_poll else "1",
           "-np", str(ranks), binary, "--mlp", mlp,
           "--seconds", str(seconds), "--bucket-mib", str(bucket_mib), "--allreduce-only", str(int(allreduce_only))]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    fields = dict(re.findall(r"(\w+)=([\w.]+)", out.split("RESULT", 1)[1]))
    return float(fields["steps_per_s"]), float(fields["wait_ms_per_step"]), fields


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--bucket-mib", type=float, default=1)
    parser.add_argument("--busy-poll", action="store_true", help="let waiting ranks spin (MPI's default)")
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "tapegrad_bench_distributed")
    mlps = {"784": "784-256-256-10, batch 128", "1024": "1024-1024-1024-10, batch 1024"}
    rates = {(m, r): [] for m in mlps for r in (1, 2)}
    comm = {m: [] for m in mlps}  # ms per step of the all-reduce alone, 2 ranks
    waits = {(m, r): [] for m in mlps for r in (1, 2)}
    info = {}
    load_before = os.getloadavg()[0]
    for rep in range(args.repetitions):
        for mlp in mlps:
            for ranks in ((1, 2) if rep % 2 == 0 else (2, 1)):
                rate, wait, fields = run(binary, ranks, mlp, args.seconds, args.bucket_mib, args.busy_poll)
                rates[(mlp, ranks)].append(rate)
                waits[(mlp, ranks)].append(wait)
                info[(mlp, ranks)] = fields
            # The whole finish(): part of the all-reduce may run inside the
            # calls that start and test it, not only in the wait.
            comm[mlp].append(1e3 / run(binary, 2, mlp, args.seconds / 2, args.bucket_mib, args.busy_poll, True)[0])
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.1f}, after {load_after:.1f}, on {os.cpu_count()} CPUs; "
          f"{args.repetitions} repetitions of {args.seconds:g} s, medians; waiting ranks "
          f"{'spin' if args.busy_poll else 'yield'}\n")
    print("| MLP | 1 rank steps/s | 2 ranks steps/s | speed-up | all-reduce wait per step (2 ranks) | buckets | overlap |")
    print("|---|---|---|---|---|---|---|")
    for mlp, name in mlps.items():
        one = statistics.median(rates[(mlp, 1)])
        two = statistics.median(rates[(mlp, 2)])
        wait = statistics.median(waits[(mlp, 2)])
        f = info[(mlp, 2)]
        print(f"| {name} | {one:.1f} | {two:.1f} | {two / one:.2f}x | {wait:.2f} ms ({100 * wait * two / 1000:.0f}% of a step) "
              f"| {f['buckets']} | {'yes' if f['overlap'] == '1' else 'no'} |")
    # The cost model for N = 2 (docs/distributed.md): per bucket 2 alpha, plus
    # bytes / bandwidth; fitted to the two all-reduce-only timings.
    nbytes = {"784": 269_322 * 4, "1024": 2_109_450 * 4}
    t = {m: statistics.median(comm[m]) / 1e3 for m in mlps}
    k = {m: int(info[(m, 2)]["buckets"]) for m in mlps}
    inv_bw = (t["1024"] * k["784"] - t["784"] * k["1024"]) / (nbytes["1024"] * k["784"] - nbytes["784"] * k["1024"])
    alpha = (t["784"] - nbytes["784"] * inv_bw) / (2 * k["784"])
    print(f"\nall-reduce alone, 2 ranks: {1e3 * t['784']:.2f} ms (784 MLP), {1e3 * t['1024']:.2f} ms (1024 MLP); "
          f"fit: bandwidth {1e-9 / inv_bw if inv_bw > 0 else float('inf'):.2f} GB/s, alpha {1e6 * alpha:.0f} us")
    print("| MLP | measured 2-rank step | model: T1/2 + all-reduce | model: max(T1/2, all-reduce) |")
    print("|---|---|---|---|")
    for mlp, name in mlps.items():
        t1 = 1 / statistics.median(rates[(mlp, 1)])
        two = 1 / statistics.median(rates[(mlp, 2)])
        print(f"| {name} | {1e3 * two:.2f} ms | {1e3 * (t1 / 2 + t[mlp]):.2f} ms | {1e3 * max(t1 / 2, t[mlp]):.2f} ms |")
    print("\nall runs (steps/s):")
    for key in rates:
        print(f"  {key[0]} x {key[1]} rank(s): " + ", ".join(f"{r:.1f}" for r in rates[key]))


if __name__ == "__main__":
    main()
