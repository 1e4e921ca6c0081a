set terminal pngcairo size 1100,700 noenhanced
set output 'benchmarks/results/delta.png'
set datafile separator ','
set logscale xy
set key outside right
set grid
set xlabel 'change rate (% of 1M source rows)'
set ylabel 'refresh time (s)'
set title 'Differential refresh (solid) vs REFRESH MATERIALIZED VIEW (dashed)'
plot 'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'filter' ? $2 : 1/0):4 with linespoints lw 2 lc 1 dt 1 title 'filter differential', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'filter' ? $2 : 1/0):5 with linespoints lw 2 lc 1 dt 2 title 'filter REFRESH MV', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'group' ? $2 : 1/0):4 with linespoints lw 2 lc 2 dt 1 title 'group differential', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'group' ? $2 : 1/0):5 with linespoints lw 2 lc 2 dt 2 title 'group REFRESH MV', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'join_agg' ? $2 : 1/0):4 with linespoints lw 2 lc 3 dt 1 title 'join_agg differential', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'join_agg' ? $2 : 1/0):5 with linespoints lw 2 lc 3 dt 2 title 'join_agg REFRESH MV', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'join3' ? $2 : 1/0):4 with linespoints lw 2 lc 4 dt 1 title 'join3 differential', \
  'benchmarks/results/delta.csv' every ::1 using (strcol(1) eq 'join3' ? $2 : 1/0):5 with linespoints lw 2 lc 4 dt 2 title 'join3 REFRESH MV'
