#!/bin/sh
# Event-driven latency (commit -> visible) against a 1 s interval schedule in
# the same run, and the scheduler with schedule 1ms, on the current code; draws
# benchmarks/results/scheduler_latency_cdf.png. From the repository root:
#   benchmarks/scheduler/run_latency_vs_polling.sh [BUILD_DIR] [SECONDS] [REPEATS]
# Drives benchmarks/refresh/refresh_latency (build target refresh_latency):
# each run starts its own throwaway PostgreSQL (about 20 s of set-up), then
# commits 10 transactions/s for SECONDS (default 120) after a 10 s warm-up.
set -eu
BUILD=${1:-build}
SECONDS_=${2:-120}
REPEATS=${3:-2}
OUT=benchmarks/results
BIN=$BUILD/benchmarks/refresh/refresh_latency
run() {
  name=$1; shift
  echo "== $name"
  "$BIN" --duration="${SECONDS_}s" --out="$OUT/scheduler_latency_$name" --label="$name" "$@"
}
BOTH=--stream_tables=projection,join_agg

# Same run: lat_open_orders and lat_order_totals on change (trickled's
# default: woken by the capture, 10 ms debounce, 2 workers), and their copies
# *_baseline with schedule 1s, all four reading the same source transactions.
i=1
while [ "$i" -le "$REPEATS" ]; do
  run "on_change_vs_1s_$i" $BOTH --loop=scheduler --schedule=on_change --baseline_schedule=1s
  i=$((i + 1))
done
# The scheduler with the shortest interval (re-measures latency_scheduler_1ms).
run 1ms $BOTH --loop=scheduler --schedule=1ms

gnuplot benchmarks/scheduler/latency_vs_polling.gp
