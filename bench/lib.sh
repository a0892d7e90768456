# Shared by the whole-program benchmarks' scripts: `source "$here/../lib.sh"`.

# median and min of the numbers on stdin, as "median min"
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.4f %.4f\n", m, v[1] }'
}
