#!/usr/bin/env bash
# Smoke test of the trickled image with podman against a throwaway
# PostgreSQL 15 on loopback (the container shares the host's network):
#  - the container runs with a read-only root filesystem (no tmpfs either),
#    every capability dropped and no-new-privileges, the data on a volume;
#  - /readyz turns ready; trickled is PID 1 and runs as uid 10001, not root;
#  - a stream table is created over the admin RPC (the trickle CLI in the
#    image) and kept equal to its query as its source changes;
#  - a TRICKLE_* setting from the environment takes effect (/metrics);
#  - SIGTERM stops it with exit code 0; started again on the same volume it
#    resumes from its change log and keeps maintaining the stream table.
# Usage: deploy/smoke-test.sh [IMAGE]   (default localhost/trickle:<version>;
# deploy/build-image.sh builds it). Exit 0 = passed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/deploy/podman-env.sh"
. "$root/deploy/pg-throwaway.sh"
. "$root/deploy/checks.sh"

suffix="$$"
ctr="trickle-smoke-$suffix"
vol="trickle-smoke-data-$suffix"
work="$(mktemp -d /tmp/trickle-smoke-XXXXXX)"
cleanup() {
  podman rm -f -t 5 "$ctr" >/dev/null 2>&1 || true
  podman volume rm -f "$vol" >/dev/null 2>&1 || true
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
pg_start "$work"
echo "== PostgreSQL 15 on 127.0.0.1:$PG_PORT (role trickle: LOGIN REPLICATION, owns database app)"
psql_app <<'SQL'
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
ALTER TABLE orders REPLICA IDENTITY FULL;
INSERT INTO orders SELECT g, 'c' || (g % 7), g FROM generate_series(1, 200) g;
SQL

grpc_port=$(free_port)
http_port=$(free_port)
podman volume create "$vol" >/dev/null
printf 'TRICKLE_DSN=%s\n' "$PG_DSN" >"$work/env"
run_container() {
  # Loopback addresses: with the host's network, 0.0.0.0 would listen on
  # every interface of this machine.
  podman run -d --name "$ctr" --network host \
    --read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges \
    -v "$vol:/var/lib/trickle/data" --env-file "$work/env" \
    -e TRICKLE_GRPC_ADDRESS="127.0.0.1:$grpc_port" -e TRICKLE_HTTP_ADDRESS="127.0.0.1:$http_port" \
    -e TRICKLE_SLOT_NAME=trickle_smoke -e TRICKLE_PUBLICATION_NAME=trickle_smoke \
    -e TRICKLE_MAX_PARALLEL_WORKERS=3 \
    "$image" >/dev/null
}
cli() { podman exec "$ctr" trickle --address="127.0.0.1:$grpc_port" "$@"; }
query="SELECT customer, count(*) AS orders, sum(amount) AS total FROM orders GROUP BY customer"

echo "== starting $image as $ctr"
run_container
if wait_http_ok "$http_port" /readyz 120; then ok "/readyz turns 200"; else
  bad "/readyz turns 200"; podman logs "$ctr" | tail -30; finish; fi
ready_at=$(date +%s)

pid=$(podman inspect -f '{{.State.Pid}}' "$ctr")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status")
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
comm=$(cat "/proc/$pid/comm")
expect "trickled is PID 1 in the container ($comm, NSpid $nspid)" test "$comm" = trickled -a "$nspid" = 1
expect "runs as uid 10001, not root (uid $uid)" test "$uid" = 10001
expect "no effective capabilities (CapEff $capeff)" test "$capeff" = 0000000000000000
expect "root filesystem is read-only" test "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" = true
expect "the root filesystem refuses writes" \
  sh -c "! podman exec '$ctr' sh -c 'echo x > /var/lib/trickle/probe' 2>/dev/null"
expect "the data volume takes writes (RocksDB files)" \
  sh -c "podman exec '$ctr' ls /var/lib/trickle/data | grep -q CURRENT"

echo "== creating a stream table over the admin RPC"
cli create order_totals "$query"
expect "stream table created and equal to its query" wait_equal order_totals "$query"
psql_app <<'SQL'
BEGIN;
INSERT INTO orders VALUES (1001, 'new', 5), (1002, 'c1', 7);
UPDATE orders SET amount = amount * 2 WHERE id % 10 = 0;
DELETE FROM orders WHERE id % 13 = 0;
COMMIT;
SQL
expect "stream table maintained after inserts, updates and deletes" wait_equal order_totals "$query"
mode=$(cli status order_totals | awk '/^mode:/ {print $2}')
expect "maintained differentially (mode $mode)" test "$mode" = DIFFERENTIAL
metrics="$(http_get "$http_port" /metrics)"
expect "TRICKLE_MAX_PARALLEL_WORKERS=3 took effect (trickle_refresh_workers)" \
  grep -qx 'trickle_refresh_workers 3' <<<"$metrics"
active=$(psql_admin -At -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'trickle_smoke'")
expect "slot trickle_smoke is active" test "$active" = t

echo "== SIGTERM"
t0=$(date +%s%N)
podman kill --signal TERM "$ctr" >/dev/null
code=$(podman wait "$ctr")
t1=$(date +%s%N)
expect "exit code 0 on SIGTERM (got $code, after $(( (t1 - t0) / 1000000 )) ms)" test "$code" = 0
expect "it logged a clean stop" sh -c "podman logs '$ctr' 2>&1 | grep -q 'stopped; change log durable'"
podman rm "$ctr" >/dev/null

echo "== restart on the same volume; writes while it was down"
psql_app -c "INSERT INTO orders SELECT g, 'later', g FROM generate_series(2001, 2050) g"
run_container
expect "/readyz turns 200 again" wait_http_ok "$http_port" /readyz 120
expect "the change made while it was down reaches the stream table" wait_equal order_totals "$query"
podman kill --signal TERM "$ctr" >/dev/null
code=$(podman wait "$ctr")
expect "exit code 0 on the second SIGTERM (got $code)" test "$code" = 0
echo "== took $(( $(date +%s) - start )) s (ready $(( ready_at - start )) s after start of the test)"
finish
