#!/usr/bin/env bash
# A/B of two stasim binaries on the pipeline benchmark: ROUNDS alternating runs of each (so
# drift on a shared machine hits both alike), medians and their ratio.
# Usage: benches/ab-pipeline.sh BIN_A BIN_B [ROUNDS] [T]   (defaults 15 and 1000000)
set -euo pipefail
a_bin="$1"; b_bin="$2"; rounds="${3:-15}"; T="${4:-1000000}"
rate() { "$1" bench pipeline --transactions "$T" | grep -o 'stage_events_per_s=[0-9]*' | cut -d= -f2; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
a=(); b=()
for _ in $(seq "$rounds"); do
  a+=("$(rate "$a_bin")")
  b+=("$(rate "$b_bin")")
done
ma=$(printf '%s\n' "${a[@]}" | median)
mb=$(printf '%s\n' "${b[@]}" | median)
echo "A $a_bin median stage_events_per_s=$ma"
echo "B $b_bin median stage_events_per_s=$mb"
awk -v a="$ma" -v b="$mb" 'BEGIN {printf "B/A = %.3f\n", b / a}'
