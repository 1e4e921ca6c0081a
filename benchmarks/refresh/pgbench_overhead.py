#!/usr/bin/env python3
"""Write overhead of Trickle on the source: pgbench TPS with and without trickled.

One throwaway PostgreSQL 15 (durable defaults: fsync on, synchronous_commit
on; wal_level=logical in every configuration, since Trickle needs it and
changing it needs a restart), one pgbench database, and these configurations
run in alternation, several rounds, the order reversed every other round so
that slow drift (table bloat, the neighbours' builds) falls on all of them:

  base      no slot, pgbench tables with REPLICA IDENTITY DEFAULT (plain PostgreSQL)
  ri_full   no slot, REPLICA IDENTITY FULL on the four pgbench tables (what Trickle requires)
  recvlogical (with --recvlogical) REPLICA IDENTITY FULL, a fresh slot and
            the same publication of the four tables, read by PostgreSQL's own
            pg_recvlogical into /dev/null: what logical decoding costs the
            source with any consumer (Debezium's is the same walsender work)
  trickled  REPLICA IDENTITY FULL, a fresh slot, trickled capturing the four
            pgbench tables and refreshing two stream tables (an aggregate over
            pgbench_accounts and one over pgbench_history) on --schedule
            (repeat --schedule for several trickled configurations)

Before every phase: TRUNCATE pgbench_history, VACUUM ANALYZE, CHECKPOINT;
pgbench then runs with -n. A trickled phase creates its slot, creates the
stream tables (bench_stream_table: initial FULL refresh), starts trickled,
waits until it streams, runs pgbench, then waits until the stream tables
caught up with the last write, checks them against their queries (the
oracle), stops trickled and drops stream tables and slot. None of this is
inside the timed pgbench run.

Usage:
  pgbench_overhead.py --build build-bench [--scale 10] [--clients 8] [--seconds 60]
                      [--rounds 4] [--schedule 1s --schedule 1ms]
Writes benchmarks/results/pgbench.json and pgbench_phases.csv (one line per phase).
"""
import argparse, json, os, resource, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from throwaway_pg import PGBIN, Pg as ThrowawayPg, lsn_int, proc_stat  # noqa: E402

TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
STREAM_TABLES = {
    "bench_branch_balances":
        "SELECT bid, count(*) AS accounts, sum(abalance) AS balance FROM pgbench_accounts GROUP BY bid",
    "bench_teller_activity":
        "SELECT tid, count(*) AS transactions, sum(delta) AS total FROM pgbench_history GROUP BY tid",
}
SLOT, PUBLICATION = "trickle_pgbench", "trickle_pgbench"


def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def proc_cpu_seconds(pid):
    st = proc_stat(pid)
    return st[1] if st else 0.0


def server_cpu_seconds(postmaster):
    """All CPU the PostgreSQL server has used so far: the postmaster, every
    child it already reaped (backends, autovacuum workers, walsenders: their
    time lands in its cutime/cstime) and every child still alive."""
    st = proc_stat(postmaster)
    total = st[1] + st[2]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            child = proc_stat(int(entry))
            if child and child[0] == postmaster:
                total += child[1]
    return total


def cpu_list(text):
    """"0", "0,2" or "0-1" -> {0, ...}; None -> None (no pinning)."""
    if not text:
        return None
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def pinned(cpus):
    """preexec_fn that runs a child on `cpus` (None: anywhere)."""
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


class Pg(ThrowawayPg):
    def __init__(self, workdir, cpus=None):
        super().__init__("trickle-pgbench-pg-", "max_connections=100\nshared_buffers='1GB'\nmax_wal_size='16GB'\n"
                         "checkpoint_timeout='30min'\nmax_wal_senders=10\n", workdir)
        if cpus:
            # The postmaster and the processes it already started; every
            # backend and walsender it forks later inherits the mask.
            for pid in (int(e) for e in os.listdir("/proc") if e.isdigit()):
                st = proc_stat(pid)
                if pid == self.postmaster or (st and st[0] == self.postmaster):
                    os.sched_setaffinity(pid, cpus)


def set_identity(pg, full):
    ident = "FULL" if full else "DEFAULT"
    pg.sql(";".join(f"ALTER TABLE {t} REPLICA IDENTITY {ident}" for t in TABLES))


def prepare(pg):
    pg.sql("TRUNCATE pgbench_history")
    for t in TABLES:
        pg.sql(f"VACUUM ANALYZE {t}")
    pg.sql("CHECKPOINT")


def run_pgbench(pg, args, watch=None):
    """Runs pgbench; TPS plus the CPU time every party used per transaction
    (server, pgbench, and each process in `watch`, a {name: pid} such as the
    consumer and its walsender: <name>_cpu_ms_per_txn and <name>_cpu_pct),
    which the neighbours' load does not skew the way it skews TPS."""
    watch = watch or {}
    cmd = [f"{PGBIN}/pgbench", "-n", "-M", "prepared", "-c", str(args.clients), "-j", str(args.threads),
           "-T", str(args.seconds), "-P", "10", pg.dsn]
    busy0 = cpu_jiffies()
    server0 = server_cpu_seconds(pg.postmaster)
    watched0 = {name: proc_cpu_seconds(pid) for name, pid in watch.items()}
    client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, preexec_fn=pinned(args.client_cpus))
    elapsed = time.monotonic() - t0
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)  # let the backends exit and be reaped
    server1 = server_cpu_seconds(pg.postmaster)
    watched1 = {name: proc_cpu_seconds(pid) for name, pid in watch.items()}
    busy1 = cpu_jiffies()
    tps = lat = txns = None
    for line in out.stdout.splitlines():
        if line.startswith("tps =") and "without initial connection time" in line:
            tps = float(line.split()[2])
        if line.startswith("latency average ="):
            lat = float(line.split()[3])
        if line.startswith("number of transactions actually processed:"):
            txns = int(line.split(":")[1].split("/")[0])
    if tps is None or not txns:
        sys.exit("pgbench output without tps:\n" + out.stdout + out.stderr)
    busy = 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    client = (client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)
    result = {"tps": tps, "latency_ms": lat, "transactions": txns, "elapsed_s": elapsed,
              "machine_busy_pct": busy,
              "server_cpu_ms_per_txn": 1000 * (server1 - server0) / txns,
              "trickled_cpu_ms_per_txn": 0.0,  # every configuration has the column
              "pgbench_cpu_ms_per_txn": 1000 * client / txns,
              "progress": [l for l in out.stderr.splitlines() if l.startswith("progress:")]}
    for name in watch:
        used = watched1[name] - watched0[name]
        result[f"{name}_cpu_ms_per_txn"] = 1000 * used / txns
        result[f"{name}_cpu_pct"] = 100 * used / elapsed
    return result


def bench_st(args, pg, *cmd):
    tool = os.path.join(args.build, "benchmarks/refresh/bench_stream_table")
    out = subprocess.run([tool, f"--dsn={pg.dsn}", f"--publication_name={PUBLICATION}", *cmd],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_stream_table {' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")


def oracle(pg, name, query):
    cols = pg.sql(f"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                  f"WHERE attrelid = '{name}'::regclass AND attnum > 0 AND NOT attisdropped "
                  f"AND attname NOT LIKE '\\_\\_pgt\\_%'")
    return int(pg.sql(f"SELECT count(*) FROM ((SELECT {cols} FROM {name} EXCEPT ALL SELECT * FROM ({query}) q) "
                      f"UNION ALL (SELECT * FROM ({query}) q EXCEPT ALL SELECT {cols} FROM {name})) d"))


def create_publication(pg):
    pg.sql(f"CREATE PUBLICATION {PUBLICATION}")
    pg.sql(f"SELECT pg_create_logical_replication_slot('{SLOT}', 'pgoutput')")


def add_tables_to_publication(pg):
    for t in TABLES:
        if pg.sql(f"SELECT count(*) FROM pg_publication_tables WHERE pubname = '{PUBLICATION}' "
                  f"AND tablename = '{t}'") == "0":
            pg.sql(f"ALTER PUBLICATION {PUBLICATION} ADD TABLE {t}")


def wait_for_walsender(pg):
    for _ in range(300):
        pid = pg.sql(f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = '{SLOT}' AND active")
        if pid:
            return int(pid)
        time.sleep(0.1)
    sys.exit(f"nothing started streaming from slot {SLOT}")


def drop_publication(pg):
    pg.sql(f"SELECT pg_drop_replication_slot('{SLOT}')")
    pg.sql(f"DROP PUBLICATION IF EXISTS {PUBLICATION}")


def phase_recvlogical(args, pg):
    """The source's cost of logical decoding alone: pg_recvlogical reads the
    same slot and publication as trickled would and throws the data away."""
    set_identity(pg, True)
    prepare(pg)
    create_publication(pg)
    add_tables_to_publication(pg)
    pg.sql("CHECKPOINT")
    p = subprocess.Popen([f"{PGBIN}/pg_recvlogical", "-d", pg.dsn, f"--slot={SLOT}", "--start", "-f", "/dev/null",
                          "-o", "proto_version=1", "-o", f"publication_names={PUBLICATION}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=pinned(args.client_cpus))
    try:
        result = run_pgbench(pg, args, watch={"consumer": p.pid, "walsender": wait_for_walsender(pg)})
        if p.poll() is not None:
            sys.exit(f"pg_recvlogical exited early: {p.stderr.read().decode()}")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
        drop_publication(pg)
    return result


def phase_trickled(args, pg, schedule, workdir):
    set_identity(pg, True)
    prepare(pg)
    create_publication(pg)
    for name, query in STREAM_TABLES.items():
        bench_st(args, pg, f"--schedule={schedule}", "create", name, query)
    # Capture all four pgbench tables (the stream tables read two of them).
    add_tables_to_publication(pg)
    pg.sql("CHECKPOINT")
    data = os.path.join(workdir, "trickled-data")
    shutil.rmtree(data, ignore_errors=True)
    log = open(args.trickled_log or os.path.join(workdir, "trickled.log"), "a")
    p = subprocess.Popen([os.path.join(args.build, "service/trickled"), f"--dsn={pg.dsn}",
                          f"--data-dir={data}", f"--slot-name={SLOT}", f"--publication-name={PUBLICATION}",
                          f"--log-level={args.trickled_log_level}", *(args.trickled_arg or [])],
                         stdout=log, stderr=log, preexec_fn=pinned(args.client_cpus))
    try:
        walsender = wait_for_walsender(pg)
        time.sleep(2)  # let the first refresh rounds (nothing to do) pass
        result = run_pgbench(pg, args, watch={"trickled": p.pid, "walsender": walsender})
        # How far behind was it when pgbench stopped, and how long to catch up.
        end = pg.sql("SELECT pg_current_wal_lsn()")
        confirmed = pg.sql(f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{SLOT}'")
        result["slot_lag_bytes_at_end"] = max(0, lsn_int(end) - lsn_int(confirmed))
        t_end = time.monotonic()
        caught_up = None
        target = pg.sql("SELECT count(*) FROM pgbench_history")
        while time.monotonic() - t_end < 300:
            got = pg.sql("SELECT coalesce(sum(transactions), 0) FROM bench_teller_activity")
            if got == target:
                caught_up = time.monotonic() - t_end
                break
            time.sleep(0.05)
        result["catch_up_s"] = caught_up
        # Stop trickled first: the oracle then reads settled tables. How long
        # the stop takes and how it exits are recorded (a refresh in flight
        # used to wait 30 s for a fence that could no longer arrive).
        t_stop = time.monotonic()
        p.send_signal(signal.SIGTERM)
        result["exit_code"] = p.wait(timeout=60)
        result["stop_s"] = time.monotonic() - t_stop
        result["oracle_differences"] = {n: oracle(pg, n, q) for n, q in STREAM_TABLES.items()}
        result["refreshes"] = int(pg.sql(
            "SELECT count(*) FROM pgtrickle.refresh_history WHERE action = 'DIFFERENTIAL' AND error IS NULL"))
        result["refresh_errors"] = int(pg.sql(
            "SELECT count(*) FROM pgtrickle.refresh_history WHERE error IS NOT NULL"))
        errors = pg.sql("SELECT string_agg(DISTINCT error, ' | ') FROM pgtrickle.refresh_history "
                        "WHERE error IS NOT NULL")
        result["refresh_error_messages"] = errors
        result["refresh_avg_ms"] = float(pg.sql(
            "SELECT coalesce(avg(duration_ms), 0) FROM pgtrickle.refresh_history "
            "WHERE action = 'DIFFERENTIAL' AND error IS NULL"))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        log.close()
        for name in STREAM_TABLES:
            bench_st(args, pg, "drop", name)
        drop_publication(pg)
    return result


def write_summary_csv(summary, configs, path):
    with open(path, "w") as f:
        f.write("config,tps_mean,tps_stdev,ratio_to_base,ratio_to_ri_full,server_cpu_ms_per_txn,"
                "trickled_cpu_ms_per_txn,pgbench_cpu_ms_per_txn,cpu_ratio_to_base,cpu_ratio_to_ri_full\n")
        for c in configs:
            s = summary[c]
            f.write(f"{c},{s['mean']:.1f},{s['stdev']:.1f},{s['ratio_to_base']:.3f},{s['ratio_to_ri_full']:.3f},"
                    f"{s['server_cpu_ms_per_txn']:.4f},{s['trickled_cpu_ms_per_txn']:.4f},"
                    f"{s['pgbench_cpu_ms_per_txn']:.4f},{s['cpu_ratio_to_base']:.3f},{s['cpu_ratio_to_ri_full']:.3f}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--schedule", action="append", help="stream table schedule of a trickled phase")
    ap.add_argument("--recvlogical", action="store_true",
                    help="add a configuration where pg_recvlogical reads the slot instead of trickled")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--trickled-log", help="keep trickled's log here")
    ap.add_argument("--trickled-log-level", default="warn")
    ap.add_argument("--trickled-arg", action="append",
                    help="extra trickled flag, e.g. --trickled-arg=--grpc-address= (repeatable)")
    ap.add_argument("--server-cpus", type=cpu_list,
                    help="run PostgreSQL on these CPUs only (e.g. 0): with --client-cpus, trickled and pgbench "
                         "stay off the server's CPUs, as when trickled runs on its own host")
    ap.add_argument("--client-cpus", type=cpu_list, help="run pgbench and trickled on these CPUs only (e.g. 1)")
    args = ap.parse_args()
    schedules = args.schedule or ["1s"]
    workdir = tempfile.mkdtemp(prefix="trickle-pgbench-")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    pg = Pg(workdir, args.server_cpus)
    phases = []
    try:
        subprocess.run([f"{PGBIN}/pgbench", "-i", "-q", "-s", str(args.scale), pg.dsn], check=True,
                       capture_output=True)
        configs = ["base", "ri_full"] + (["recvlogical"] if args.recvlogical else []) + [
            f"trickled_{s}" for s in schedules]
        for r in range(args.rounds):
            order = configs if r % 2 == 0 else list(reversed(configs))
            for config in order:
                load = open("/proc/loadavg").read().split()[:3]
                if config == "base":
                    set_identity(pg, False)
                    prepare(pg)
                    res = run_pgbench(pg, args)
                elif config == "ri_full":
                    set_identity(pg, True)
                    prepare(pg)
                    res = run_pgbench(pg, args)
                elif config == "recvlogical":
                    res = phase_recvlogical(args, pg)
                else:
                    res = phase_trickled(args, pg, config[len("trickled_"):], workdir)
                res.update({"round": r, "config": config, "loadavg_before": " ".join(load)})
                phases.append(res)
                extra = ""
                if config == "recvlogical":
                    extra = f" pg_recvlogical {res['consumer_cpu_pct']:.0f}% walsender {res['walsender_cpu_pct']:.0f}%"
                if config.startswith("trickled"):
                    extra = (f" trickled {res['trickled_cpu_pct']:.0f}% walsender {res['walsender_cpu_pct']:.0f}%"
                             f" lag {res['slot_lag_bytes_at_end']} B catch-up {res['catch_up_s']}"
                             f" oracle {res['oracle_differences']}")
                print(f"round {r} {config:>14}: {res['tps']:8.1f} tps  lat {res['latency_ms']} ms"
                      f"  busy {res['machine_busy_pct']:.0f}%  cpu ms/txn server {res['server_cpu_ms_per_txn']:.3f}"
                      f" trickled {res['trickled_cpu_ms_per_txn']:.3f} pgbench {res['pgbench_cpu_ms_per_txn']:.3f}"
                      f"{extra}", flush=True)
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {}
    base_mean = statistics.mean(p["tps"] for p in phases if p["config"] == "base")
    full_mean = statistics.mean(p["tps"] for p in phases if p["config"] == "ri_full")
    for config in configs:
        tps = [p["tps"] for p in phases if p["config"] == config]
        cpu = lambda key, c=config: statistics.mean(p[key] for p in phases if p["config"] == c)
        summary[config] = {"tps": tps, "mean": statistics.mean(tps), "median": statistics.median(tps),
                           "stdev": statistics.stdev(tps) if len(tps) > 1 else 0,
                           "ratio_to_base": statistics.mean(tps) / base_mean,
                           "ratio_to_ri_full": statistics.mean(tps) / full_mean,
                           "server_cpu_ms_per_txn": cpu("server_cpu_ms_per_txn"),
                           "trickled_cpu_ms_per_txn": cpu("trickled_cpu_ms_per_txn"),
                           "pgbench_cpu_ms_per_txn": cpu("pgbench_cpu_ms_per_txn")}
    # What TPS would do on a machine of our own that the workload saturates:
    # TPS is inversely proportional to the CPU spent per transaction.
    def cpu_total(c, with_client):
        s = summary[c]
        return s["server_cpu_ms_per_txn"] + s["trickled_cpu_ms_per_txn"] + (
            s["pgbench_cpu_ms_per_txn"] if with_client else 0)
    for config in configs:
        for ref in ("base", "ri_full"):
            summary[config][f"cpu_ratio_to_{ref}"] = cpu_total(ref, True) / cpu_total(config, True)
            summary[config][f"cpu_ratio_to_{ref}_server_only"] = cpu_total(ref, False) / cpu_total(config, False)
        # Per-round ratios (each trickled phase against the baselines of its own round).
        per_round = []
        for r in range(args.rounds):
            this = [p["tps"] for p in phases if p["config"] == config and p["round"] == r]
            b = [p["tps"] for p in phases if p["config"] == "base" and p["round"] == r]
            f = [p["tps"] for p in phases if p["config"] == "ri_full" and p["round"] == r]
            if this and b and f:
                per_round.append({"vs_base": this[0] / b[0], "vs_ri_full": this[0] / f[0]})
        summary[config]["per_round_ratios"] = per_round
    result = {"scale": args.scale, "clients": args.clients, "threads": args.threads, "seconds": args.seconds,
              "rounds": args.rounds, "mode": "prepared",
              "server_cpus": sorted(args.server_cpus or []), "client_cpus": sorted(args.client_cpus or []),
              "summary": summary, "phases": phases}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pgbench.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "pgbench_phases.csv"), "w") as f:
        f.write("round,config,tps,latency_ms,machine_busy_pct,server_cpu_ms_per_txn,trickled_cpu_ms_per_txn,"
                "pgbench_cpu_ms_per_txn,walsender_cpu_ms_per_txn\n")
        for p in phases:
            f.write(f"{p['round']},{p['config']},{p['tps']:.1f},{p['latency_ms']},{p['machine_busy_pct']:.1f},"
                    f"{p['server_cpu_ms_per_txn']:.4f},{p['trickled_cpu_ms_per_txn']:.4f},"
                    f"{p['pgbench_cpu_ms_per_txn']:.4f},{p.get('walsender_cpu_ms_per_txn', 0):.4f}\n")
    write_summary_csv(summary, configs, os.path.join(args.out, "pgbench_summary.csv"))
    for config in configs:
        s = summary[config]
        print(f"{config:>14}: mean {s['mean']:8.1f} tps (sd {s['stdev']:.1f})  "
              f"/base {s['ratio_to_base']:.3f}  /ri_full {s['ratio_to_ri_full']:.3f}  "
              f"cpu ms/txn server {s['server_cpu_ms_per_txn']:.3f} trickled {s['trickled_cpu_ms_per_txn']:.3f} "
              f"pgbench {s['pgbench_cpu_ms_per_txn']:.3f}  cpu ratio /base {s['cpu_ratio_to_base']:.3f} "
              f"/ri_full {s['cpu_ratio_to_ri_full']:.3f}")


if __name__ == "__main__":
    main()
