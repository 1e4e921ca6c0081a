# Plots one parallel_round result (run from the repository root):
#   gnuplot -e "prefix='benchmarks/results/scheduler_parallel_1row'" benchmarks/scheduler/parallel_round.gp
# Left: wall time of every round in run order, by configuration. Right: where
# the CPU went in each round (PostgreSQL processes by role, the service).
if (!exists("prefix")) prefix = "benchmarks/results/scheduler_parallel_1row"
if (!exists("title_")) title_ = prefix
set terminal pngcairo size 1400,600 font "DejaVu Sans,10" noenhanced
set output prefix.".png"
set datafile separator ","
set multiplot layout 1,2 title title_
set key top left
set grid
set xlabel "round (run order; phases alternate)"
set ylabel "round wall time, ms (source commit -> last refresh commit)"
set yrange [0:*]
set autoscale xfix
set offsets 0.5, 0.5, 0, 0
w(n, x) = (column(3) == n ? x : NaN)
stats prefix.".csv" using 3 nooutput
P = STATS_max
plot prefix.".csv" using 1:(w(P, $5)) skip 1 with points pt 7 ps 1.3 lc rgb "#1f77b4" title sprintf("%d workers", P), \
     prefix.".csv" using 1:(w(0, $5)) skip 1 with points pt 5 ps 1.3 lc rgb "#d62728" title "serial (0 workers)"
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.8
set autoscale x
set offsets 0, 0, 0, 0
set key below horizontal
set xlabel "round (run order); label = workers"
set ylabel "CPU time during the round, ms"
set xtics rotate by 0
plot prefix.".csv" using 23:xtic(3) skip 1 title "PG refresh workers" lc rgb "#1f77b4", \
     "" using 24 skip 1 title "PG walsender" lc rgb "#ff7f0e", \
     "" using 25 skip 1 title "PG fence conn" lc rgb "#2ca02c", \
     "" using 26 skip 1 title "PG catalog conn" lc rgb "#9467bd", \
     "" using ($27+$28+$29) skip 1 title "PG other" lc rgb "#8c564b", \
     "" using 30 skip 1 title "service (capture, coordinator, workers)" lc rgb "#e377c2"
unset multiplot
