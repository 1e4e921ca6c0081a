#!/usr/bin/env python3
"""Markdown summary of parallel_round results (benchmarks/results/scheduler_parallel_*.json/.csv).

Usage: benchmarks/scheduler/summarize_parallel.py PREFIX [PREFIX ...]
For each result: round wall time per configuration (median, min, max), the serial / parallel
ratio overall and per pair, and per-round medians of where the time and CPU went.
"""
import csv
import json
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else 0.0


def summarize(prefix):
    meta = json.load(open(prefix + ".json"))
    rows = list(csv.DictReader(open(prefix + ".csv")))
    out = [f"### {meta['label'] or prefix}", ""]
    out.append(f"load average {meta['loadavg_start']} -> {meta['loadavg_end']}; run {meta['run_s']} s; "
               f"oracle: {meta['oracle_differing_rows']} differing rows")
    out.append("")
    cols = [("rounds", None), ("wall p50", "wall_ms"), ("wall min", "wall_ms"), ("wall max", "wall_ms"),
            ("commit -> first start p50", "first_start_ms"), ("span p50", "span_ms"), ("concurrency", "concurrency"), ("ms/refresh", "wall_ms"),
            ("fence p50", "fence_p50_ms"), ("fences ms (sum)", "fence_sum_ms"), ("write xacts", "write_xacts"),
            ("WAL flushes", "wal_syncs"), ("fsync ms", "wal_sync_ms"), ("busy %", "machine_busy_pct")]
    out.append("| configuration | " + " | ".join(c for c, _ in cols) + " |")
    out.append("|---|" + "---:|" * len(cols))
    configs = sorted({int(r["workers"]) for r in rows}, reverse=True)
    for w in configs:
        rs = [r for r in rows if int(r["workers"]) == w]
        f = lambda k: [float(r[k]) for r in rs]
        n = int(meta["sources"])
        cells = [str(len(rs)), f"{med(f('wall_ms')):.0f}", f"{min(f('wall_ms')):.0f}", f"{max(f('wall_ms')):.0f}",
                 f"{med(f('first_start_ms')):.0f}", f"{med(f('span_ms')):.0f}", f"{med(f('concurrency')):.2f}", f"{med(f('wall_ms')) / n:.1f}",
                 f"{med(f('fence_p50_ms')):.1f}", f"{med(f('fence_sum_ms')):.0f}", f"{med(f('write_xacts')):.0f}",
                 f"{med(f('wal_syncs')):.0f}", f"{med(f('wal_sync_ms')):.0f}", f"{med(f('machine_busy_pct')):.0f}"]
        name = "serial (0 workers)" if w == 0 else f"{w} workers"
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"serial / parallel, median round wall: **{meta['serial_over_parallel_wall_ratio']:.2f}x** "
               f"(per pair: {', '.join(f'{x:.2f}' for x in meta['pair_wall_ratios'])}); "
               f"span ratio {meta['serial_over_parallel_span_ratio']:.2f}x")
    out.append("")
    roles = [k for k in rows[0] if k.startswith("cpu_")]
    out.append("| CPU ms per round (median) | " + " | ".join(r[4:-3] for r in roles) + " | total |")
    out.append("|---|" + "---:|" * (len(roles) + 1))
    for w in configs:
        rs = [r for r in rows if int(r["workers"]) == w]
        vals = [med([float(r[k]) for r in rs]) for k in roles]
        tot = med([sum(float(r[k]) for k in roles) for r in rs])
        name = "serial (0 workers)" if w == 0 else f"{w} workers"
        out.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in vals) + f" | {tot:.0f} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print("\n".join(summarize(p) for p in sys.argv[1:]))
