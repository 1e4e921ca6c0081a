# Latency against time into the run: the polling loop that trims after every
# round, before the trim fix (latency_before_interval_shipped_both.csv) and
# after it (latency_interval_both.csv). Run from the repo root.
set terminal pngcairo size 1100,600 font "DejaVu Sans,11" noenhanced
set output "benchmarks/results/latency_over_time.png"
set datafile separator ","
set key top left
set grid
set xlabel "seconds into the measured window (source commit time)"
set ylabel "latency (ms)"
set title "Trim after every round: latency grew while range tombstones piled up (before); flat with the compaction-filter trim (after)"
st(name, x) = (strcol(1) eq name ? x : NaN)
R = "benchmarks/results/"
plot \
  R."latency_before_interval_shipped_both.csv" using 6:(st("lat_open_orders", $3)) with points pt 7 ps 0.3 lc rgb "#9ecae1" title "projection, before", \
  R."latency_before_interval_shipped_both.csv" using 6:(st("lat_order_totals", $3)) with points pt 7 ps 0.3 lc rgb "#fdae6b" title "join aggregate, before", \
  R."latency_interval_both.csv" using 6:(st("lat_open_orders", $3)) with points pt 7 ps 0.4 lc rgb "#08519c" title "projection, after", \
  R."latency_interval_both.csv" using 6:(st("lat_order_totals", $3)) with points pt 7 ps 0.4 lc rgb "#a63603" title "join aggregate, after"
