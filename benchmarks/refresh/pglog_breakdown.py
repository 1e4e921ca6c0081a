#!/usr/bin/env python3
"""Where a refresh transaction's time goes, from a server log written by
`refresh_latency --pg_log=FILE` (log_min_duration_statement=0).

Groups the statements of the refresh connection (application_name trickle)
into transactions (BEGIN .. COMMIT/ROLLBACK) and reports, per kind of
transaction (a DIFFERENTIAL refresh of each stream table, or a round that
found nothing and rolled back), the mean server time per statement kind and
the time between statements, which is the client's: the fence (emit on
another connection + wait for it in the change log), change-log reads and
COPY data building in trickled, round trips, and being scheduled on a busy CPU.

Usage: pglog_breakdown.py FILE [--markdown]
"""
import collections, re, sys
from datetime import datetime

LINE = re.compile(r"^(\S+ \S+) UTC \[(\d+)\] trickle: LOG:  duration: ([\d.]+) ms  (statement|execute [^:]*|parse [^:]*|bind [^:]*): (.*)$")


def kind(text):
    t = text.strip()
    u = t.upper()
    if u.startswith("BEGIN"): return "BEGIN"
    if "PG_CURRENT_SNAPSHOT" in u: return "snapshot"
    if "FOR UPDATE" in u: return "lock frontier"
    if u.startswith("CREATE TEMPORARY TABLE"): return "CREATE TEMP delta table"
    if u.startswith("COPY"): return "COPY delta"
    if u.startswith("ANALYZE"): return "ANALYZE delta"
    if u.startswith("MERGE"): return "MERGE"
    if u.startswith("UPDATE PGTRICKLE") or u.startswith("INSERT INTO PGTRICKLE"): return "catalog write"
    if u.startswith("COMMIT"): return "COMMIT"
    if u.startswith("ROLLBACK"): return "ROLLBACK"
    return "other"


def main():
    path = sys.argv[1]
    txns = []  # (label, {kind: ms}, wall_ms)
    cur = None
    for line in open(path, errors="replace"):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        dur = float(m.group(3))
        k = kind(m.group(5))
        if k == "BEGIN":
            cur = {"start": ts.timestamp() * 1000 - dur, "kinds": collections.Counter(), "label": None}
        if cur is None:
            continue
        cur["kinds"][k] += dur
        if k == "MERGE":
            target = re.match(r"MERGE INTO (\S+)", m.group(5).strip())
            cur["label"] = "refresh " + (target.group(1) if target else "?")
        if k in ("COMMIT", "ROLLBACK"):
            wall = ts.timestamp() * 1000 - cur["start"]
            label = cur["label"] or ("nothing to do (ROLLBACK)" if k == "ROLLBACK" else "other")
            txns.append((label, cur["kinds"], wall))
            cur = None
    order = ["BEGIN", "snapshot", "lock frontier", "CREATE TEMP delta table", "COPY delta", "ANALYZE delta",
             "MERGE", "catalog write", "COMMIT", "ROLLBACK", "other"]
    groups = collections.defaultdict(list)
    for label, kinds, wall in txns:
        groups[label].append((kinds, wall))
    md = "--markdown" in sys.argv
    labels = sorted(groups)
    if md:
        print("| ms per transaction (mean) | " + " | ".join(f"{l} (n={len(groups[l])})" for l in labels) + " |")
        print("|---|" + "---:|" * len(labels))
    rows = []
    for k in order:
        vals = [sum(kinds[k] for kinds, _ in groups[l]) / len(groups[l]) for l in labels]
        if all(v == 0 for v in vals):
            continue
        rows.append((f"server: {k}", vals))
    server = [sum(sum(kinds.values()) for kinds, _ in groups[l]) / len(groups[l]) for l in labels]
    wall = [sum(w for _, w in groups[l]) / len(groups[l]) for l in labels]
    rows.append(("server total", server))
    rows.append(("between statements (client: fence wait, log read, round trips, CPU wait)",
                 [w - s for w, s in zip(wall, server)]))
    rows.append(("transaction wall time (BEGIN to COMMIT/ROLLBACK)", wall))
    for name, vals in rows:
        if md:
            print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
        else:
            print(f"{name:75s} " + " ".join(f"{v:9.2f}" for v in vals))
    if not md:
        print("columns: " + ", ".join(f"{l} (n={len(groups[l])})" for l in labels))


if __name__ == "__main__":
    main()
