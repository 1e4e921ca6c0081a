# Latency against time into the run, as shipped vs trimming batched
# (benchmarks/results/latency_{shipped,batched}_both.csv; run from the repo root).
set terminal pngcairo size 1100,600 font "DejaVu Sans,11" noenhanced
set output "benchmarks/results/latency_over_time.png"
set datafile separator ","
set key top left
set grid
set xlabel "seconds into the measured window (source commit time)"
set ylabel "latency (ms)"
set title "Latency grows while range tombstones pile up in the change log's memtable (trim after every round)"
st(name, x) = (strcol(1) eq name ? x : NaN)
R = "benchmarks/results/"
plot \
  R."latency_interval_shipped_both.csv" using 6:(st("lat_open_orders", $3)) with points pt 7 ps 0.3 lc rgb "#1f77b4" title "projection, as shipped", \
  R."latency_interval_shipped_both.csv" using 6:(st("lat_order_totals", $3)) with points pt 7 ps 0.3 lc rgb "#d62728" title "join aggregate, as shipped", \
  R."latency_interval_batched_both.csv" using 6:(st("lat_open_orders", $3)) with points pt 6 ps 0.3 lc rgb "#2ca02c" title "projection, trim batched (10 s)", \
  R."latency_interval_batched_both.csv" using 6:(st("lat_order_totals", $3)) with points pt 6 ps 0.3 lc rgb "#ff7f0e" title "join aggregate, trim batched (10 s)"
