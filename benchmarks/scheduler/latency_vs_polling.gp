# Latency CDFs of benchmarks/scheduler/run_latency_vs_polling.sh (run from the
# repository root): the event-driven stream tables and their 1 s interval
# copies in the same run (solid: run 1, dashed: run 2), and schedule 1ms.
set terminal pngcairo size 1100,650 font "DejaVu Sans,11" noenhanced
set output "benchmarks/results/scheduler_latency_cdf.png"
set datafile separator ","
set key bottom right
set grid
set logscale x
set xlabel "commit on the source -> visible in the stream table (ms, log scale)"
set ylabel "fraction of source transactions"
set title "Event-driven refresh vs a 1 s interval, same run (10 transactions/s, PostgreSQL 15, fsync on, 2 shared vCPUs)"
set xrange [2:2000]
set yrange [0:1]
st(name, x) = (strcol(1) eq name ? x : NaN)
R = "benchmarks/results/scheduler_latency_"
plot \
  R."on_change_vs_1s_1.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 2.5 lc rgb "#1f77b4" title "projection, on change", \
  R."on_change_vs_1s_1.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 2.5 lc rgb "#d62728" title "join aggregate, on change", \
  R."on_change_vs_1s_1.csv" using (st("lat_open_orders_baseline", $3)):(1) smooth cnormal lw 2.5 lc rgb "#6baed6" title "projection, every 1 s", \
  R."on_change_vs_1s_1.csv" using (st("lat_order_totals_baseline", $3)):(1) smooth cnormal lw 2.5 lc rgb "#fc9272" title "join aggregate, every 1 s", \
  R."on_change_vs_1s_2.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#1f77b4" notitle, \
  R."on_change_vs_1s_2.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#d62728" notitle, \
  R."on_change_vs_1s_2.csv" using (st("lat_open_orders_baseline", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#6baed6" notitle, \
  R."on_change_vs_1s_2.csv" using (st("lat_order_totals_baseline", $3)):(1) smooth cnormal lw 1.5 dt 2 lc rgb "#fc9272" notitle, \
  R."1ms.csv" using (st("lat_open_orders", $3)):(1) smooth cnormal lw 1.5 dt 3 lc rgb "#2ca02c" title "projection, schedule 1ms (separate run)", \
  R."1ms.csv" using (st("lat_order_totals", $3)):(1) smooth cnormal lw 1.5 dt 3 lc rgb "#ff7f0e" title "join aggregate, schedule 1ms (separate run)"
