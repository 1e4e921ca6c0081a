#!/bin/sh
# Runs the latency configurations recorded in benchmarks/results/latency.md
# and draws latency_cdf.png and latency_over_time.png there. From the
# repository root:
#   benchmarks/refresh/run_latency.sh [BUILD_DIR] [SECONDS]
# Each run starts its own throwaway PostgreSQL (about 20 s of set-up) and
# commits 10 transactions/s for SECONDS (default 120) after a 10 s warm-up.
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

# trickled as it runs now: the event-driven scheduler, 2 workers, 10 ms debounce.
run scheduler_1ms $BOTH --loop=scheduler --schedule=1ms
run scheduler_on_change $BOTH --loop=scheduler --schedule=on_change
run scheduler_1ms_trim_batched $BOTH --loop=scheduler --schedule=1ms --trim_interval=10s

# The polling loop trickled ran before the scheduler (RunDueRefreshes, sleep 20 ms).
run interval_shipped_both $BOTH --loop=interval --loop_sleep=20ms
run interval_batched_both $BOTH --loop=interval --loop_sleep=20ms --trim_interval=10s
run interval_batched_projection --stream_tables=projection --loop=interval --loop_sleep=20ms --trim_interval=10s
run interval_batched_join_agg --stream_tables=join_agg --loop=interval --loop_sleep=20ms --trim_interval=10s
run interval_batched_both_sleep1 $BOTH --loop=interval --loop_sleep=1ms --trim_interval=10s

gnuplot benchmarks/refresh/latency_cdf.gp
gnuplot benchmarks/refresh/latency_over_time.gp
