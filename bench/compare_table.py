#!/usr/bin/env python3
"""Turns the JSON of tapegrad_bench_compare (Google Benchmark, with
repetitions) and tapegrad_bench_memory into Markdown tables: medians,
ratios tapegrad/libtorch and tapegrad/floor, and the performance targets.

Usage: compare_table.py [--time=auto|real|cpu] COMPARE_JSON [MEMORY_JSON]

--time picks the time each repetition is judged by. real is wall-clock
time. cpu is the benchmark thread's CPU time, which leaves out the time the
thread waited for a core: on a machine shared with other work it is the
steadier measure, and it is exact for 1-thread runs (BLAS and libtorch then
compute on the calling thread) but undercounts 2-thread runs. auto (the
default) uses cpu for 1-thread rows and real for 2-thread rows and for the
2-vs-1-thread speed-up.
Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
ENGINES = ["tapegrad", "libtorch", "floor"]
MLP_LABEL = {
    "2-16-16-2_b32": "MLP 2-16-16-2, batch 32",
    "784-256-256-10_b128": "MLP 784-256-256-10, batch 128",
    "1024-1024-1024-10_b1024": "MLP 1024-1024-1024-10, batch 1024",
}


def fmt_time(seconds):
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def load_runs(path):
    """{benchmark name: [one dict per repetition]} with 'real' and 'cpu' seconds added."""
    with open(path) as f:
        data = json.load(f)
    runs = defaultdict(list)
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        name = b.get("run_name", b["name"]).removesuffix("/real_time")
        b = dict(b)
        b["real"] = b["real_time"] * UNIT[b.get("time_unit", "ns")]
        b["cpu"] = b["cpu_time"] * UNIT[b.get("time_unit", "ns")]
        runs[name].append(b)
    return data.get("context", {}), runs


def median(runs, name, key):
    values = [r[key] for r in runs.get(name, []) if key in r]
    return statistics.median(values) if values else None


def spread(runs, name, key):
    """Half the interquartile range relative to the median, in percent."""
    values = sorted(r[key] for r in runs.get(name, []))
    if len(values) < 4:
        return None
    q = statistics.quantiles(values, n=4)
    return 50.0 * (q[2] - q[0]) / statistics.median(values)


def check(value, limit, greater=False):
    if value is None:
        return "n/a"
    ok = value >= limit if greater else value <= limit
    return "yes" if ok else "**no**"


def main():
    args = sys.argv[1:]
    mode = "auto"
    if args and args[0].startswith("--time="):
        mode = args.pop(0).split("=", 1)[1]
    if not args or mode not in ("auto", "real", "cpu"):
        sys.exit(__doc__)
    context, runs = load_runs(args[0])
    memory = None
    if len(args) > 1:
        with open(args[1]) as f:
            memory = json.load(f)["memory"]

    def key(threads):
        return mode if mode != "auto" else ("cpu" if threads == 1 else "real")

    reps = max((len(v) for v in runs.values()), default=0)
    out = []
    measure = {"auto": "CPU time of the benchmark thread for 1-thread rows, wall-clock time for 2-thread rows",
               "real": "wall-clock time", "cpu": "CPU time of the benchmark thread"}[mode]
    out.append(f"Medians of {reps} interleaved repetitions in one run ({measure}); float32. "
               "Ratios are tapegrad's median over the other engine's (lower is better for tapegrad).")
    out.append("")
    out.append("| workload | threads | tapegrad | libtorch | floor | tapegrad/libtorch | tapegrad/floor | target | met |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    targets = []

    def row(label, threads, times, target_text="", verdicts=()):
        t, lt, fl = (times.get(e) for e in ENGINES)
        out.append(f"| {label} | {threads} | {fmt_time(t)} | {fmt_time(lt)} | {fmt_time(fl)} | "
                   f"{fmt_ratio(ratio(t, lt))} | {fmt_ratio(ratio(t, fl))} | {target_text} | "
                   f"{', '.join(verdicts)} |")
        targets.extend(v for v in verdicts if v != "n/a")

    for tape, label in (("fwdbwd", "tape overhead per op, fwd+bwd (chain of 100 ops, 4 elements)"),
                        ("fwd", "tape overhead per op, forward only")):
        times = {e: (lambda m: m / 100 if m is not None else None)(median(runs, f"tape/{tape}/{e}", key(1)))
                 for e in ENGINES}
        if tape == "fwdbwd":
            r = ratio(times["tapegrad"], times["libtorch"])
            row(label, 1, times, "≤ 0.1× libtorch", [check(r, 0.1)])
        else:
            row(label, 1, times)

    targets_for = {
        ("2-16-16-2_b32", 1): ("≤ 0.1× libtorch", lambda t: [check(ratio(t["tapegrad"], t["libtorch"]), 0.1)]),
        ("784-256-256-10_b128", 1): ("≤ 0.9× libtorch, ≤ 1.15× floor",
                                     lambda t: [check(ratio(t["tapegrad"], t["libtorch"]), 0.9),
                                                check(ratio(t["tapegrad"], t["floor"]), 1.15)]),
        ("1024-1024-1024-10_b1024", 1): ("≤ 1.05× floor",
                                         lambda t: [check(ratio(t["tapegrad"], t["floor"]), 1.05)]),
    }
    mlps = list(MLP_LABEL)
    for mlp in mlps:
        for threads in (1, 2):
            times = {e: median(runs, f"mlp/{mlp}/{e}/t{threads}", key(threads)) for e in ENGINES}
            if all(v is None for v in times.values()):
                continue
            text, fn = targets_for.get((mlp, threads), ("", lambda t: []))
            row(f"{MLP_LABEL[mlp]}: training step", threads, times, text, fn(times))
    wide = "1024-1024-1024-10_b1024"
    wall = "real" if mode == "auto" else mode
    speedup = {e: ratio(median(runs, f"mlp/{wide}/{e}/t1", wall), median(runs, f"mlp/{wide}/{e}/t2", wall))
               for e in ENGINES}
    out.append(f"| {MLP_LABEL[wide]}: speed-up 2 threads vs 1 | 2 vs 1 | "
               + " | ".join(f"{fmt_ratio(speedup[e])}×" if speedup[e] else "–" for e in ENGINES)
               + f" | | | ≥ 1.6× | {check(speedup['tapegrad'], 1.6, greater=True)} |")
    targets.append(check(speedup["tapegrad"], 1.6, greater=True))

    # Phases of the MLP steps.
    out.append("")
    out.append("Training-step phases (medians of wall-clock µs per step) and heap allocations per step; "
               "spread: half the interquartile range of the step time over the repetitions:")
    out.append("")
    out.append("| workload | threads | engine | forward | backward | update | backward/forward | GFLOP/s | allocs/step | run-to-run spread |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for mlp in mlps:
        for threads in (1, 2):
            for e in ENGINES:
                name = f"mlp/{mlp}/{e}/t{threads}"
                if name not in runs:
                    continue
                f, b, u = (median(runs, name, k) for k in ("fwd_us", "bwd_us", "upd_us"))
                flops = median(runs, name, "FLOPS")
                allocs = median(runs, name, "allocs")
                s = spread(runs, name, key(threads))
                out.append(f"| {MLP_LABEL[mlp]} | {threads} | {e} | {f:.4g} | {b:.4g} | {u:.3g} | "
                           f"{b / f:.2f} | {flops / 1e9:.1f} | {allocs:.0f} | "
                           f"{'±%.0f%%' % s if s is not None else '–'} |")
    for e in ENGINES:
        name = f"tape/fwdbwd/{e}"
        if name in runs:
            out.append(f"| tape chain (100 ops) | 1 | {e} | | | | | | {median(runs, name, 'allocs') * 100:.0f} | "
                       f"{'±%.0f%%' % spread(runs, name, key(1)) if spread(runs, name, key(1)) is not None else '–'} |")

    if memory:
        out.append("")
        out.append("Memory (1 thread): peak heap of one steady-state step against parameters + gradients + "
                   "saved activations, and heap growth over many steady-state steps:")
        out.append("")
        out.append("| workload | engine | allocs/step | peak | params+grads+saved | peak/reference | steps | growth | target | met |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for m in memory:
            r = m["peak_bytes"] / m["reference_bytes"]
            verdicts = []
            if m["engine"] == "tapegrad":
                # A leak grows with the steps; a container that reached a new
                # capacity once does not: allow less than 1 byte per step.
                verdicts.append(check(m["growth_bytes"], m["steps"] - 1))
                if m["mlp"] != "2-16-16-2_b32":  # a few KiB of bookkeeping dominate the tiny model
                    verdicts.append(check(r, 1.3))
            targets.extend(v for v in verdicts if v != "n/a")
            mib = lambda b: f"{b / 2**20:.2f} MiB"
            out.append(f"| {MLP_LABEL.get(m['mlp'], m['mlp'])} | {m['engine']} | {m['allocs_per_step']} | "
                       f"{mib(m['peak_bytes'])} | {mib(m['reference_bytes'])} | {r:.2f} | {m['steps']} | "
                       f"{m['growth_bytes']} B | {'growth < 1 B/step, peak ≤ 1.3×' if m['engine'] == 'tapegrad' else ''} | "
                       f"{', '.join(verdicts)} |")

    met = sum(1 for t in targets if t == "yes")
    out.append("")
    out.append(f"Targets met: {met} of {len(targets)}.")
    host = context.get("host_name", "?")
    cpus = context.get("num_cpus", "?")
    mhz = context.get("mhz_per_cpu", "?")
    out.append(f"Machine: {host}, {cpus} CPUs at {mhz} MHz, load average "
               f"{', '.join('%.1f' % x for x in context.get('load_avg', []))} at the start; "
               f"BLAS: {context.get('blas', '?')}; libtorch {context.get('libtorch', 'not built')}.")
    load = context.get("load_avg", [])
    if load and load[0] > 1.0:
        out.append(f"Note: the machine was busy (1-minute load average {load[0]:.1f} on {cpus} CPUs): wall-clock "
                   "times, 2-thread rows and the speed-up are unreliable; rerun on an idle machine.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
