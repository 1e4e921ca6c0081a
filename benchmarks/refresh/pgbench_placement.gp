# TPS ratio to `base` per configuration, CPUs shared vs the server on its own
# CPU (pgbench_overhead.py --recvlogical, with and without --server-cpus 0
# --client-cpus 1). From the repository root:
#   gnuplot benchmarks/refresh/pgbench_placement.gp
# Reads benchmarks/results/pgbench_s3/{shared,pinned}/pgbench_summary.csv,
# writes benchmarks/results/pgbench_s3/pgbench_placement.png.
set terminal pngcairo size 900,560 font ",11" noenhanced
set output "benchmarks/results/pgbench_s3/pgbench_placement.png"
set datafile separator ","
set title "pgbench TPS / TPS of base (scale 10, 8 clients, schedule 1s)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:1.1]
set ytics 0.1
set grid ytics
set key below
set arrow from graph 0, first 0.9 to graph 1, first 0.9 nohead dashtype 2 lw 2 lc rgb "#c00000"
set label "goal 0.9" at graph 0.01, first 0.93 tc rgb "#c00000"
plot "benchmarks/results/pgbench_s3/shared/pgbench_summary.csv" every ::1 using 4:xtic(1) \
       title "PostgreSQL, pgbench and the consumer share 2 CPUs", \
     "benchmarks/results/pgbench_s3/pinned/pgbench_summary.csv" every ::1 using 4 \
       title "PostgreSQL on CPU 0, pgbench and the consumer on CPU 1"
