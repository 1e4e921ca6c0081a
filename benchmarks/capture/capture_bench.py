#!/usr/bin/env python3
"""Capture throughput: trickled vs pg_recvlogical, same run, same WAL.

For each round and each consumer: a fresh pgoutput slot is created, N row
changes are committed in batches, a CHECKPOINT is taken (so no checkpoint
runs during the measurement, for either side), then the consumer is started
and timed until everything is durable on its side:
  * pg_recvlogical (pgoutput, same publication, writing to a file, --endpos,
    -F 1): until it exits at the end position (it fsyncs the file first);
  * trickled: until the slot's confirmed_flush_lsn (which trickled advances
    only to what RocksDB has synced) reaches the end position.
Both read the identical WAL, so the walsender does the same work; the ratio
says whether trickled's client side ever becomes the bottleneck.

Two times per run:
  * streaming: from the moment the slot turns active (the consumer's
    START_REPLICATION) to the end. This is the capture throughput, and the
    ratio is taken on it.
  * total: from process start, including each consumer's start-up (for
    trickled: opening RocksDB, checking the slot, publication and replica
    identity, and the refresh catalog). Reported too.
The slot is watched over one persistent connection every 5 ms for both
consumers alike (same load on the server for both), so the watching costs
no process start per poll and both ends are seen within 5 ms (recvlogical's
exit is seen at once).

Per run it also records the consumer's CPU time (user + system, all its
threads) and the walsender's, and the consumer's peak RSS (ru_maxrss from
wait4 for pg_recvlogical; VmHWM just before stopping trickled).

Rounds alternate which consumer goes first; the ratio is of the medians.
The machine is shared, so use enough rounds (5+) when others are busy.

Usage: capture_bench.py --trickled build/service/trickled [--rows 1000000] [--rounds 3]
Writes benchmarks/results/capture.json and capture.md.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from throwaway_pg import PGBIN, Pg as ThrowawayPg, lsn_int, proc_stat  # noqa: E402

POLL_S = 0.005


class Pg(ThrowawayPg):
    def __init__(self):
        super().__init__("trickle-bench-pg-", "max_wal_size='8GB'\nshared_buffers='512MB'\nsynchronous_commit=off\n")


class SlotWatcher:
    """One psql session that answers one query per line: no process per poll."""

    def __init__(self, pg, slot):
        self.slot = slot
        self.p = subprocess.Popen(["psql", pg.dsn, "-X", "-q", "-At"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def poll(self):
        """(confirmed_flush_lsn as int, walsender pid or 0)"""
        self.p.stdin.write("SELECT coalesce(confirmed_flush_lsn::text, '0/0') || ' ' || "
                           f"coalesce(active_pid, 0) FROM pg_replication_slots "
                           f"WHERE slot_name = '{self.slot}';\n")
        self.p.stdin.flush()
        lsn, pid = self.p.stdout.readline().split()
        return lsn_int(lsn), int(pid)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def proc_cpu_s(pid):
    st = proc_stat(pid)
    return st[1] if st else None


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def load(pg, rows, batch):
    pg.sql("TRUNCATE bench")
    for start in range(1, rows + 1, batch):
        end = min(start + batch - 1, rows)
        pg.sql(f"INSERT INTO bench SELECT g, g % 100, md5(g::text), g * 1.5 "
               f"FROM generate_series({start}, {end}) g")
    return pg.sql("SELECT pg_current_wal_lsn()")


def run_consumer(name, cmd, pg, slot, target):
    """Starts `cmd`, returns the run's measurements. recvlogical ends by
    exiting; trickled when the slot's confirmed flush reaches `target`."""
    watcher = SlotWatcher(pg, slot)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd)
    t_stream = None
    walsender = 0
    walsender_cpu0 = walsender_cpu = 0.0
    exited = None
    try:
        while True:
            if name == "recvlogical":
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    exited = (status, ru)
                    break
            confirmed, active = watcher.poll()
            now = time.monotonic()
            if active and t_stream is None:
                t_stream, walsender = now, active
                walsender_cpu0 = proc_cpu_s(walsender) or 0.0
            if walsender:
                c = proc_cpu_s(walsender)
                if c is not None:
                    walsender_cpu = c - walsender_cpu0
            if name == "trickled":
                if confirmed >= target:
                    break
                if p.poll() is not None:
                    sys.exit(f"trickled exited early with {p.returncode}")
            time.sleep(POLL_S)
        t_end = time.monotonic()
        if name == "trickled":
            rss = peak_rss_kib(p.pid)
            p.terminate()
            _, status, ru = os.wait4(p.pid, 0)
        else:
            status, ru = exited
            rss = ru.ru_maxrss
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"pg_recvlogical failed with {os.waitstatus_to_exitcode(status)}")
        p.returncode = 0  # reaped above
    finally:
        watcher.close()
    if t_stream is None:  # shorter than one poll
        t_stream = t0
    return {"seconds": t_end - t_stream, "total_seconds": t_end - t0,
            "startup_seconds": t_stream - t0,
            "client_cpu_s": ru.ru_utime + ru.ru_stime, "walsender_cpu_s": walsender_cpu,
            "peak_rss_kib": rss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trickled", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "results"))
    args = ap.parse_args()
    pg = Pg()
    results = {"recvlogical": [], "trickled": []}
    try:
        pg.sql("CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c numeric);"
               "ALTER TABLE bench REPLICA IDENTITY FULL; CREATE PUBLICATION bench_pub FOR TABLE bench")
        for r in range(args.rounds):
            order = ("recvlogical", "trickled") if r % 2 == 0 else ("trickled", "recvlogical")
            for name in order:
                slot = f"bench_{name}_{r}"
                pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
                end_lsn = load(pg, args.rows, args.batch)
                pg.sql("CHECKPOINT")
                with tempfile.TemporaryDirectory(prefix="trickle-bench-") as work:
                    if name == "recvlogical":
                        cmd = [f"{PGBIN}/pg_recvlogical", "-d", pg.dsn, "-S", slot, "--start",
                               "-o", "proto_version=1", "-o", "publication_names=bench_pub",
                               "-f", os.path.join(work, "recvlogical.out"), "-E", end_lsn,
                               "--no-loop", "-F", "1"]
                    else:
                        cmd = [args.trickled, f"--dsn={pg.dsn}",
                               f"--data-dir={os.path.join(work, 'trickled-data')}",
                               f"--slot-name={slot}", "--publication-name=bench_pub",
                               "--status-interval=20ms", "--log-level=warn"]
                    run = run_consumer(name, cmd, pg, slot, lsn_int(end_lsn))
                pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
                run["changes_per_s"] = args.rows / run["seconds"]
                results[name].append(run)
                print(f"round {r} {name:12s} streaming {run['seconds']:6.2f} s "
                      f"{run['changes_per_s']:8.0f} changes/s (total {run['total_seconds']:6.2f} s)  "
                      f"CPU client {run['client_cpu_s']:.2f} s walsender {run['walsender_cpu_s']:.2f} s  "
                      f"peak RSS {run['peak_rss_kib'] / 1024:.1f} MiB", flush=True)
    finally:
        pg.stop()
    med = {k: statistics.median(x["changes_per_s"] for x in v) for k, v in results.items()}
    med_total = {k: statistics.median(args.rows / x["total_seconds"] for x in v)
                 for k, v in results.items()}
    ratio = med["trickled"] / med["recvlogical"]
    ratio_total = med_total["trickled"] / med_total["recvlogical"]
    # Each round runs the two back to back, under about the same background
    # load: the per-round ratios cancel load that drifts between rounds.
    paired = [t["changes_per_s"] / r["changes_per_s"]
              for t, r in zip(results["trickled"], results["recvlogical"])]
    peak = max(x["peak_rss_kib"] for x in results["trickled"]) / 1024
    load_avg = os.getloadavg()
    summary = {"rows": args.rows, "batch": args.batch, "rounds": args.rounds, "runs": results,
               "median_changes_per_s": med, "ratio_trickled_vs_recvlogical": ratio,
               "median_changes_per_s_including_startup": med_total,
               "ratio_including_startup": ratio_total,
               "per_round_ratios": paired, "median_per_round_ratio": statistics.median(paired),
               "trickled_peak_rss_mib": peak, "load_average_at_end": load_avg}
    os.makedirs(args.out, exist_ok=True)
    # capture.md may end with hand-written notes (what changed, earlier
    # numbers) under a "## Notes" heading: they are kept.
    notes = ""
    md_path = os.path.join(args.out, "capture.md")
    if os.path.exists(md_path):
        with open(md_path) as f:
            old_md = f.read()
        at = old_md.find("\n## Notes")
        if at >= 0:
            notes = old_md[at:]
    with open(os.path.join(args.out, "capture.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(md_path, "w") as f:
        f.write("# Capture throughput: trickled vs pg_recvlogical (same run, same WAL)\n\n")
        f.write(f"{args.rows} row changes committed in batches of {args.batch}, then each consumer "
                f"started on its own fresh slot (after a CHECKPOINT) and timed until everything "
                f"is durable (recvlogical: exits at --endpos with -F 1; trickled: slot "
                f"confirmed_flush_lsn reaches the end, which trickled advances only to what "
                f"RocksDB synced). Streaming time runs from the slot turning active to the end; "
                f"total time from process start. {args.rounds} rounds, alternating which goes "
                f"first. Load average at the end: {load_avg[0]:.1f} / {load_avg[1]:.1f} / "
                f"{load_avg[2]:.1f} on {os.cpu_count()} CPUs.\n\n")
        f.write("| consumer | median changes/s (streaming) | streaming runs (s) | total runs (s) "
                "| client CPU (s) | walsender CPU (s) | peak RSS (MiB) |\n"
                "|---|---|---|---|---|---|---|\n")
        for k, v in results.items():
            runs = ", ".join("%.2f" % x["seconds"] for x in v)
            totals = ", ".join("%.2f" % x["total_seconds"] for x in v)
            cpu = ", ".join("%.2f" % x["client_cpu_s"] for x in v)
            wcpu = ", ".join("%.2f" % x["walsender_cpu_s"] for x in v)
            rss = max(x["peak_rss_kib"] for x in v) / 1024
            f.write(f"| {k} | {med[k]:.0f} | {runs} | {totals} | {cpu} | {wcpu} | {rss:.1f} |\n")
        f.write(f"\n**Ratio trickled / pg_recvlogical: {ratio:.3f}** (streaming; goal >= 0.9); "
                f"{ratio_total:.3f} including each consumer's start-up. "
                f"Per round (back to back): {', '.join('%.3f' % x for x in paired)}, "
                f"median {statistics.median(paired):.3f}. "
                f"trickled peak RSS {peak:.1f} MiB (goal < 256 MiB).\n")
        f.write(notes)
    print(f"ratio trickled/recvlogical = {ratio:.3f} (streaming), {ratio_total:.3f} (including "
          f"start-up); trickled peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    main()
