#!/usr/bin/env python3
"""Data-parallel scaling: 2 ranks x 1 thread vs 1 rank x 1 thread, side by side.

Runs build/bench/tapegrad_bench_distributed under mpirun on the
784-256-256-10 (global batch 128) and 1024-1024-1024-10 (global batch 1024)
MLPs. Every repetition runs every configuration once, in an order that
alternates, so a busy phase of a shared machine hits all of them; the tables
are medians. Besides 1 and 2 ranks it times what a 2-rank step is made of:

  half alone      1 rank on half the rows: the compute of a 2-rank step
  half side by side  2 ranks on half the rows each, gradients left local:
                  the same compute with both ranks on the machine at once
  fixed           1 rank on 1 row: the per-step cost that does not
                  shrink with the rows (optimiser, graph, the layers' calls)
  all-reduce      the model's gradient buckets all-reduced alone, 2 ranks
  probes          one bucket of 8 bytes (latency) and of 16 MiB (bandwidth)

and fits the cost model of bench/cost_model.py to the probes (per-bucket
latency from the tiny one, bandwidth from the large one, so both are
non-negative), then checks its prediction against the measured all-reduce,
wait and step.

  bench/distributed_scaling.py [--build build] [--repetitions 3] [--seconds 2]
"""
import argparse
import os
import re
import statistics
import subprocess

import cost_model

SMALL_PROBE, LARGE_PROBE = 8, 16 << 20


def run(binary, ranks, args, seconds, bind="none"):
    # Waiting ranks yield (mpi_yield_when_idle): on a shared machine a
    # spinning rank takes CPU from the rank it waits for.
    cmd = ["mpirun", "--oversubscribe", "--bind-to", bind, "--mca", "mpi_yield_when_idle", "1",
           "-np", str(ranks), binary, "--seconds", str(seconds)] + args
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return dict(re.findall(r"(\w+)=([\w.,]+)", out.split("RESULT", 1)[1]))


def configurations():
    """name -> (mlp, ranks, extra arguments, binding)"""
    c = {}
    for mlp, batch in (("784", 128), ("1024", 1024)):
        m = ["--mlp", mlp]
        c[(mlp, "1 rank")] = (1, m, "none")
        c[(mlp, "2 ranks")] = (2, m, "none")
        c[(mlp, "half alone")] = (1, m + ["--rows-per-rank", str(batch // 2)], "none")
        c[(mlp, "half side by side")] = (2, m + ["--average", "0"], "none")
        c[(mlp, "all-reduce")] = (2, m + ["--allreduce-only", "1"], "none")
        c[(mlp, "fixed")] = (1, m + ["--rows-per-rank", "1"], "none")
    c[("784", "2 ranks, 256 KiB buckets")] = (2, ["--mlp", "784", "--bucket-mib", "0.25"], "none")
    c[("784", "2 ranks, bound to cores")] = (2, ["--mlp", "784"], "core")
    c[("probe", "small")] = (2, ["--probe-bytes", str(SMALL_PROBE)], "none")
    c[("probe", "large")] = (2, ["--probe-bytes", str(LARGE_PROBE)], "none")
    return c


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2)
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "tapegrad_bench_distributed")
    configs = configurations()
    ms = {key: [] for key in configs}      # ms per step
    wait = {key: [] for key in configs}    # ms per step waiting in finish()
    fields = {}
    load_before = os.getloadavg()[0]
    for rep in range(args.repetitions):
        for key in (list(configs) if rep % 2 == 0 else list(reversed(configs))):
            ranks, extra, bind = configs[key]
            f = run(binary, ranks, extra, args.seconds, bind)
            ms[key].append(1e3 / float(f["steps_per_s"]))
            wait[key].append(float(f["wait_ms_per_step"]))
            fields[key] = f
    load_after = os.getloadavg()[0]
    med = {key: statistics.median(v) for key, v in ms.items()}
    medw = {key: statistics.median(v) for key, v in wait.items()}

    print(f"load average (1 min) before {load_before:.1f}, after {load_after:.1f}, on {os.cpu_count()} CPUs; "
          f"{args.repetitions} repetitions of {args.seconds:g} s per configuration, interleaved, medians\n")
    names = {"784": "784-256-256-10, batch 128", "1024": "1024-1024-1024-10, batch 1024"}
    # The best run of each is what a quiet moment gives; the median what the
    # load gave most of the time.
    print("| MLP | 1 rank steps/s | 2 ranks steps/s | speed-up | best runs: speed-up | all-reduce wait per 2-rank step "
          "| buckets |")
    print("|---|---|---|---|---|---|---|")
    for mlp, name in names.items():
        one, two = med[(mlp, "1 rank")], med[(mlp, "2 ranks")]
        best = min(ms[(mlp, "1 rank")]) / min(ms[(mlp, "2 ranks")])
        w = medw[(mlp, "2 ranks")]
        print(f"| {name} | {1e3 / one:.1f} | {1e3 / two:.1f} | {one / two:.2f}x | {best:.2f}x | {w:.2f} ms of "
              f"{two:.2f} ms | {fields[(mlp, '2 ranks')]['bucket_bytes'].replace(',', ' + ')} bytes |")

    print("\nWhat a 2-rank step is made of (ms per step):\n")
    print("| MLP | configuration | ms/step (median) | ms/step (best) | wait in finish() |")
    print("|---|---|---|---|---|")
    for key in configs:
        if key[0] in names:
            print(f"| {key[0]} | {key[1]} | {med[key]:.3f} | {min(ms[key]):.3f} | {medw[key]:.3f} |")

    # Cost model for N = 2 from the probes: a bucket of b bytes costs
    # 2 (N - 1) alpha + 2 (N - 1) / N * b / bandwidth = 2 alpha + b / bandwidth.
    small, large = med[("probe", "small")] / 1e3, med[("probe", "large")] / 1e3
    alpha = small / 2
    bandwidth = LARGE_PROBE / max(large - 2 * alpha, 1e-12)
    print(f"\nprobes, 2 ranks: {1e6 * small:.1f} us for {SMALL_PROBE} bytes, {1e3 * large:.2f} ms for "
          f"{LARGE_PROBE >> 20} MiB: alpha = {1e6 * alpha:.1f} us per message, bandwidth {bandwidth / 1e9:.2f} GB/s\n")
    print("| MLP | all-reduce: model | all-reduce: measured alone | wait per step: measured | "
          "step: model (half side by side + all-reduce) | step: measured |")
    print("|---|---|---|---|---|---|")
    for mlp, name in names.items():
        buckets = [int(b) for b in fields[(mlp, "2 ranks")]["bucket_bytes"].split(",")]
        predicted = sum(cost_model.allreduce(2, b, 1, bandwidth, alpha) for b in buckets)
        compute = med[(mlp, "half side by side")] / 1e3
        print(f"| {name} | {1e3 * predicted:.3f} ms | {med[(mlp, 'all-reduce')]:.3f} ms | "
              f"{medw[(mlp, '2 ranks')]:.3f} ms | {1e3 * (compute + predicted):.3f} ms | {med[(mlp, '2 ranks')]:.3f} ms |")
    print(f"\n--fit {1e6 * alpha:.2f} {bandwidth / 1e9:.3f}   (alpha in us, bandwidth in GB/s, for cost_model.py)")

    print("\nall runs (ms per step):")
    for key in configs:
        print(f"  {key[0]} {key[1]}: " + ", ".join(f"{v:.3f}" for v in ms[key]))


if __name__ == "__main__":
    main()
