#!/bin/sh
# Runs the latency configurations recorded in benchmarks/results/latency.md
# and draws latency_cdf.png and latency_over_time.png there. From the
# repository root:
#   benchmarks/refresh/run_latency.sh [BUILD_DIR] [SECONDS]
# Each run starts its own throwaway PostgreSQL (about 20 s of set-up) and
# commits 10 transactions/s for SECONDS (default 120) after a 10 s warm-up.
# The latency_before_* files are the same configurations measured before the
# engine fixes (see latency.md); this script does not rewrite them.
set -eu
BUILD=${1:-build-bench}
SECONDS_=${2:-120}
OUT=benchmarks/results
BIN=$BUILD/benchmarks/refresh/refresh_latency
run() {
  name=$1; shift
  echo "== $name"
  "$BIN" --duration="${SECONDS_}s" --out="$OUT/latency_$name" --label="$name" "$@"
}
BOTH=--stream_tables=projection,join_agg

# trickled as it runs: the event-driven scheduler, 2 workers, 10 ms debounce,
# with the minimum interval schedule and with the on-change schedule.
run scheduler_1ms $BOTH --loop=scheduler --schedule=1ms
run scheduler_on_change $BOTH --loop=scheduler --schedule=on_change
# The polling loop trickled ran before the scheduler (RunDueRefreshes, then a
# 20 ms sleep), which trims after every round that committed: the trim fix
# seen on its own.
run interval_both $BOTH --loop=interval --loop_sleep=20ms

gnuplot benchmarks/refresh/latency_cdf.gp
gnuplot benchmarks/refresh/latency_over_time.gp
