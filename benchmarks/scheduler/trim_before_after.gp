# Trims as shipped, before and after the engine's trim fix: every round of
# three parallel_round results in run order (run from the repository root):
#   gnuplot benchmarks/scheduler/trim_before_after.gp
# Left: round wall time; right: the service's CPU time during the round.
before = "benchmarks/results/scheduler_parallel_1row_trim_shipped.csv"
after = "benchmarks/results/scheduler_parallel_1row_trimfix.csv"
after_long = "benchmarks/results/scheduler_parallel_1row_trimfix_long.csv"
set terminal pngcairo size 1400,600 font "DejaVu Sans,10" noenhanced
set output "benchmarks/results/scheduler_parallel_trim_before_after.png"
set datafile separator ","
set multiplot layout 1,2 title "50 stream tables, 1 row per source, trims as shipped: before (8879ea8) and after the trim fix (b17a93a); 4 workers and serial alternated, rounds ~16 s apart"
set key top left
set grid
set xlabel "round (run order; 24 rounds ~ 400 s)"
set logscale y
set ylabel "round wall time, ms (log scale)"
plot before using 1:5 skip 1 with linespoints pt 7 lc rgb "#d62728" title "before the fix (400 s run)", \
     after using 1:5 skip 1 with linespoints pt 5 lc rgb "#1f77b4" title "after the fix (400 s run)", \
     after_long using 1:5 skip 1 with linespoints pt 9 lc rgb "#2ca02c" title "after the fix (800 s run)"
unset logscale y
set yrange [0:*]
set ylabel "service CPU during the round, ms (10 ms resolution)"
plot before using 1:30 skip 1 with linespoints pt 7 lc rgb "#d62728" title "before the fix (400 s run)", \
     after using 1:30 skip 1 with linespoints pt 5 lc rgb "#1f77b4" title "after the fix (400 s run)", \
     after_long using 1:30 skip 1 with linespoints pt 9 lc rgb "#2ca02c" title "after the fix (800 s run)"
unset multiplot
