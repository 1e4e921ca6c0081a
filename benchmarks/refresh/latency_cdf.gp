# Latency CDFs from benchmarks/results/latency_*.csv (run from the repo root):
# after the engine fixes (solid) and before them (dashed, latency_before_*).
set terminal pngcairo size 1300,600 font "DejaVu Sans,10" noenhanced
set output "benchmarks/results/latency_cdf.png"
set datafile separator ","
set key bottom right
set grid
set xlabel "commit on the source -> visible in the stream table (ms)"
set ylabel "fraction of source transactions"
set xrange [0:250]
set yrange [0:1]
st(name, x) = (strcol(1) eq name ? x : NaN)
R = "benchmarks/results/"
set multiplot layout 1,2 title "Trickle end-to-end latency at 10 transactions/s, both stream tables (PostgreSQL 15, fsync on, 2 shared vCPUs)"
do for [T in "lat_open_orders lat_order_totals"] {
  set title (T eq "lat_open_orders" ? "projection (lat_open_orders)" : "join aggregate (lat_order_totals)")
  plot \
    R."latency_scheduler_1ms.csv" using (st(T, $3)):(1) smooth cnormal lw 2.5 lc rgb "#1f77b4" title "scheduler, schedule 1ms", \
    R."latency_scheduler_on_change.csv" using (st(T, $3)):(1) smooth cnormal lw 2.5 lc rgb "#2ca02c" title "scheduler, on change", \
    R."latency_interval_both.csv" using (st(T, $3)):(1) smooth cnormal lw 2.5 lc rgb "#d62728" title "polling loop (20 ms sleep)", \
    R."latency_before_scheduler_1ms.csv" using (st(T, $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#1f77b4" title "before: scheduler, 1ms", \
    R."latency_before_scheduler_on_change.csv" using (st(T, $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#2ca02c" title "before: scheduler, on change", \
    R."latency_before_interval_shipped_both.csv" using (st(T, $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#d62728" title "before: polling loop"
}
unset multiplot
