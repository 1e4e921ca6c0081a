# pgbench results (run from the repo root): TPS of every phase, and the CPU
# every party spent per transaction, from benchmarks/results/pgbench_phases.csv
# and pgbench_summary.csv.
set terminal pngcairo size 1300,560 font "DejaVu Sans,11" noenhanced
set output "benchmarks/results/pgbench_tps.png"
set datafile separator ","
set multiplot layout 1,2 title "pgbench tpcb-like, scale 10, 8 clients, 45 s phases, configurations alternated; 2 vCPUs shared with other builds"
cfg(name, x) = (strcol(2) eq name ? x : NaN)
P = "benchmarks/results/pgbench_phases.csv"
S = "benchmarks/results/pgbench_summary.csv"

set title "TPS per phase (the neighbours' builds come and go: large noise)"
set key bottom left font ",9"
set grid ytics
set ylabel "TPS"
set xlabel "round"
set yrange [0:5500]
set xrange [-0.5:3.5]
set xtics 1
plot \
  P using ($1-0.24):(cfg("base", $3)) skip 1 with points pt 7 ps 1.5 lc rgb "#2ca02c" title "base (no slot, identity default)", \
  P using ($1-0.08):(cfg("ri_full", $3)) skip 1 with points pt 5 ps 1.5 lc rgb "#1f77b4" title "no slot, REPLICA IDENTITY FULL", \
  P using ($1+0.08):(cfg("trickled_1s", $3)) skip 1 with points pt 9 ps 1.7 lc rgb "#d62728" title "trickled, schedule 1s", \
  P using ($1+0.24):(cfg("trickled_1ms", $3)) skip 1 with points pt 11 ps 1.7 lc rgb "#ff7f0e" title "trickled, schedule 1ms"

set title "CPU per transaction (mean of the rounds)"
set key top left font ",9"
set ylabel "CPU ms per pgbench transaction"
set xlabel ""
set yrange [0:0.9]
set autoscale x
set xtics auto
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
plot \
  S using 6:xtic(1) skip 1 lc rgb "#1f77b4" title "PostgreSQL server (backends, walsender, aux)", \
  S using 7 skip 1 lc rgb "#d62728" title "trickled process", \
  S using 8 skip 1 lc rgb "#7f7f7f" title "pgbench client"
unset multiplot
