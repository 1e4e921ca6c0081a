# Sourced by the podman tests: a throwaway PostgreSQL 15 on loopback
# (wal_level=logical, random port, scram passwords), with a role that has
# only what docs/deployment.md asks for: LOGIN REPLICATION, owner of the
# database it works in. Defines pg_start, pg_stop, psql_admin, psql_app and
# sets PG_PORT, PG_DSN (as the trickle role). Needs postgresql-15.
pg_bin=/usr/lib/postgresql/15/bin
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_start() {  # $1 = work dir (kept until pg_stop)
  PG_WORK="$1"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_WORK"
  PG_PORT=$(free_port)
  pg_as "$pg_bin/initdb" -D "$PG_WORK/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PG_WORK/pg/postgresql.conf" <<CONF
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
max_slot_wal_keep_size = 1GB
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_WORK'
CONF
  pg_as "$pg_bin/pg_ctl" -D "$PG_WORK/pg" -l "$PG_WORK/pg.log" -w start >/dev/null
  PG_PASSWORD="smoke-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
  psql_admin -q <<SQL
CREATE ROLE trickle LOGIN REPLICATION PASSWORD '$PG_PASSWORD';
CREATE DATABASE app OWNER trickle;
SQL
  PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=app user=trickle password=$PG_PASSWORD"
}

pg_stop() {
  [ -n "${PG_WORK:-}" ] && [ -d "$PG_WORK/pg" ] && pg_as "$pg_bin/pg_ctl" -D "$PG_WORK/pg" -m fast -w stop >/dev/null || true
}

psql_admin() { psql "host=$PG_WORK port=$PG_PORT dbname=postgres user=postgres" -X -v ON_ERROR_STOP=1 "$@"; }
psql_app() { psql "host=$PG_WORK port=$PG_PORT dbname=app user=trickle" -X -q -v ON_ERROR_STOP=1 "$@"; }

# Waits until stream table $1 equals query $2 (or fails after ~30 s).
wait_equal() {
  local st="$1" q="$2" diff_rows
  for _ in $(seq 1 300); do
    diff_rows=$(psql_app -At -c "SELECT count(*) FROM ((SELECT * FROM $st EXCEPT ALL $q) UNION ALL ($q EXCEPT ALL SELECT * FROM $st)) d" 2>/dev/null || echo x)
    [ "$diff_rows" = "0" ] && return 0
    sleep 0.1
  done
  return 1
}

# Waits until http://127.0.0.1:$1$2 answers 200 (or fails after $3 s).
wait_http_ok() {
  python3 - "$1" "$2" "${3:-60}" <<'PY'
import sys, time, urllib.request
port, path, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
}

http_get() { python3 -c "import sys,urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1$2', timeout=5).read().decode())"; }
