"""What the Python benchmark drivers share: a throwaway PostgreSQL 15 (initdb
in a temp dir, wal_level=logical, free port, run as the postgres user when
root), LSN text to int, and CPU seconds of a process from /proc.
Import with sys.path pointing at benchmarks/ (the drivers do it)."""
import os, shutil, socket, subprocess, tempfile

PGBIN = os.environ.get("TRICKLE_PG_BINDIR", "/usr/lib/postgresql/15/bin")


def as_pg(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def lsn_int(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def proc_stat(pid):
    """(ppid, own cpu s, reaped children's cpu s) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / tck, (int(fields[13]) + int(fields[14])) / tck


class Pg:
    """A throwaway server; `settings` are postgresql.conf lines added to the
    ones every driver needs."""

    def __init__(self, prefix, settings, workdir=None):
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=workdir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        subprocess.run(as_pg([f"{PGBIN}/initdb", "-D", f"{self.dir}/data", "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        # Past 2^32 transactions (xid epoch 1), like a long-lived production database.
        subprocess.run(as_pg([f"{PGBIN}/pg_resetwal", "-e", "1", f"{self.dir}/data"]),
                       check=True, stdout=subprocess.DEVNULL)
        with open(f"{self.dir}/data/postgresql.conf", "a") as f:
            f.write(f"wal_level=logical\nport={self.port}\nlisten_addresses='127.0.0.1'\n"
                    f"unix_socket_directories='{self.dir}'\nmax_replication_slots=10\n{settings}")
        subprocess.run(as_pg([f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-l",
                              f"{self.dir}/log", "-w", "start"]), check=True, stdout=subprocess.DEVNULL)
        self.dsn = f"host={self.dir} port={self.port} dbname=postgres user=postgres"
        with open(f"{self.dir}/data/postmaster.pid") as f:
            self.postmaster = int(f.readline())

    def sql(self, q):
        out = subprocess.run(["psql", self.dsn, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", q],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run(as_pg([f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
