# Latency CDFs from benchmarks/results/latency_*.csv (run from the repo root).
set terminal pngcairo size 1100,650 font "DejaVu Sans,11" noenhanced
set output "benchmarks/results/latency_cdf.png"
set datafile separator ","
set key bottom right
set grid
set xlabel "commit on the source -> visible in the stream table (ms)"
set ylabel "fraction of source transactions"
set title "Trickle end-to-end latency at 10 transactions/s, schedule 1ms (PostgreSQL 15, fsync on, 2 busy vCPUs)"
set xrange [0:500]
set yrange [0:1]
st(name, x) = (strcol(1) eq name ? x : NaN)
R = "benchmarks/results/"
plot \
  R."latency_interval_batched_both.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 2.5 lc rgb "#1f77b4" title "projection (both STs, loop sleep 20 ms)", \
  R."latency_interval_batched_both.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 2.5 lc rgb "#d62728" title "join aggregate (both STs, loop sleep 20 ms)", \
  R."latency_interval_batched_projection.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#1f77b4" title "projection alone", \
  R."latency_interval_batched_join_agg.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#d62728" title "join aggregate alone", \
  R."latency_interval_batched_both_sleep1.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 1.5 dt 3 lc rgb "#2ca02c" title "projection (both, loop sleep 1 ms)", \
  R."latency_interval_batched_both_sleep1.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 1.5 dt 3 lc rgb "#ff7f0e" title "join aggregate (both, loop sleep 1 ms)", \
  R."latency_interval_shipped_both.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 1.5 lc rgb "#7f7f7f" title "projection, as shipped (trim every round)", \
  R."latency_interval_shipped_both.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 1.5 dt 4 lc rgb "#7f7f7f" title "join aggregate, as shipped (trim every round)"
