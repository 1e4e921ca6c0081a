#!/usr/bin/env python3
"""Capture throughput: trickled vs pg_recvlogical, same run, same WAL.

For each round and each consumer: a fresh pgoutput slot is created, N row
changes are committed in batches, then the consumer is started and timed
until everything is durable on its side:
  * pg_recvlogical (pgoutput, same publication, writing to a file, --endpos):
    until it exits at the end position;
  * trickled: until the slot's confirmed_flush_lsn (which trickled advances
    only to what RocksDB has synced) reaches the end position.
Both read the identical WAL, so the walsender does the same work; the ratio
says whether trickled's client side ever becomes the bottleneck.
Peak RSS (VmHWM) of each consumer process is recorded.

Usage: capture_bench.py --trickled build/service/trickled [--rows 1000000] [--rounds 3]
Writes benchmarks/results/capture.json and capture.md.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

PGBIN = os.environ.get("TRICKLE_PG_BINDIR", "/usr/lib/postgresql/15/bin")


def as_pg(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Pg:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="trickle-bench-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        subprocess.run(as_pg([f"{PGBIN}/initdb", "-D", f"{self.dir}/data", "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(f"{self.dir}/data/postgresql.conf", "a") as f:
            f.write(f"wal_level=logical\nport={self.port}\nlisten_addresses='127.0.0.1'\n"
                    f"unix_socket_directories='{self.dir}'\nmax_wal_size='8GB'\n"
                    "shared_buffers='512MB'\nsynchronous_commit=off\nmax_replication_slots=10\n")
        subprocess.run(as_pg([f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-l",
                              f"{self.dir}/log", "-w", "start"]), check=True, stdout=subprocess.DEVNULL)
        self.dsn = f"host={self.dir} port={self.port} dbname=postgres user=postgres"

    def sql(self, q):
        out = subprocess.run(["psql", self.dsn, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", q],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run(as_pg([f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def lsn_int(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


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


def run_recvlogical(pg, slot, end_lsn, workdir):
    out = os.path.join(workdir, "recvlogical.out")
    t0 = time.monotonic()
    p = subprocess.Popen([f"{PGBIN}/pg_recvlogical", "-d", pg.dsn, "-S", slot, "--start",
                          "-o", "proto_version=1", "-o", "publication_names=bench_pub",
                          "-f", out, "-E", end_lsn, "--no-loop", "-F", "1"])
    rss = 0
    while p.poll() is None:
        rss = max(rss, peak_rss_kib(p.pid))
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"pg_recvlogical failed with {p.returncode}")
    return elapsed, rss


def run_trickled(pg, trickled, slot, end_lsn, workdir):
    data = os.path.join(workdir, "trickled-data")
    target = lsn_int(end_lsn)
    t0 = time.monotonic()
    p = subprocess.Popen([trickled, f"--dsn={pg.dsn}", f"--data-dir={data}", f"--slot-name={slot}",
                          "--publication-name=bench_pub", "--status-interval=20ms",
                          "--log-level=warn"])
    rss = 0
    while True:
        confirmed = pg.sql(f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'")
        rss = max(rss, peak_rss_kib(p.pid))
        if confirmed and lsn_int(confirmed) >= target:
            break
        if p.poll() is not None:
            sys.exit(f"trickled exited early with {p.returncode}")
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    rss = max(rss, peak_rss_kib(p.pid))
    p.terminate(); p.wait()
    return elapsed, rss


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
            for name in ("recvlogical", "trickled"):
                slot = f"bench_{name}_{r}"
                pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
                end_lsn = load(pg, args.rows, args.batch)
                with tempfile.TemporaryDirectory(prefix="trickle-bench-") as work:
                    if name == "recvlogical":
                        secs, rss = run_recvlogical(pg, slot, end_lsn, work)
                    else:
                        secs, rss = run_trickled(pg, args.trickled, slot, end_lsn, work)
                pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
                results[name].append({"seconds": secs, "changes_per_s": args.rows / secs, "peak_rss_kib": rss})
                print(f"round {r} {name:12s} {secs:7.2f} s  {args.rows / secs:10.0f} changes/s  "
                      f"peak RSS {rss / 1024:.1f} MiB", flush=True)
    finally:
        pg.stop()
    med = {k: statistics.median(x["changes_per_s"] for x in v) for k, v in results.items()}
    ratio = med["trickled"] / med["recvlogical"]
    peak = max(x["peak_rss_kib"] for x in results["trickled"]) / 1024
    summary = {"rows": args.rows, "batch": args.batch, "rounds": args.rounds, "runs": results,
               "median_changes_per_s": med, "ratio_trickled_vs_recvlogical": ratio,
               "trickled_peak_rss_mib": peak}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "capture.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(args.out, "capture.md"), "w") as f:
        f.write("# Capture throughput: trickled vs pg_recvlogical (same run, same WAL)\n\n")
        f.write(f"{args.rows} row changes committed in batches of {args.batch}, then each consumer "
                f"started on its own fresh slot and timed until everything is durable "
                f"(recvlogical: exits at --endpos with -F 1; trickled: slot confirmed_flush_lsn "
                f"reaches the end, which trickled advances only to what RocksDB synced). "
                f"{args.rounds} rounds, alternating.\n\n")
        f.write("| consumer | median changes/s | runs (s) | peak RSS (MiB) |\n|---|---|---|---|\n")
        for k, v in results.items():
            runs = ", ".join("%.2f" % x["seconds"] for x in v)
            rss = max(x["peak_rss_kib"] for x in v) / 1024
            f.write(f"| {k} | {med[k]:.0f} | {runs} | {rss:.1f} |\n")
        f.write(f"\n**Ratio trickled / pg_recvlogical: {ratio:.3f}** (goal >= 0.9). "
                f"trickled peak RSS {peak:.1f} MiB (goal < 256 MiB).\n")
    print(f"ratio trickled/recvlogical = {ratio:.3f}; trickled peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    main()
