#!/usr/bin/env bash
# Runs the BENCH.md "pipeline" benchmark on stasim and on SystemC in one sitting and prints
# the medians and their ratio. Needs: apt-get install -y libsystemc-dev g++ (for SystemC).
# Usage: benches/compare-systemc.sh [T] [REPEATS]   (defaults 1000000 and 5)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
T="${1:-1000000}"
N="${2:-5}"
bench_dir="$here/../shared/bench/systemc-pipeline"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
sysc=/tmp/systemc-pipeline
if [ -f "$bench_dir/build.sh" ]; then bash "$bench_dir/build.sh" "$sysc" >/dev/null; fi
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { grep -o 'stage_events_per_s=[0-9.]*' | cut -d= -f2; }
s_rates=(); c_rates=()
for _ in $(seq "$N"); do   # interleaved, so drift on a shared machine hits both alike
  s_rates+=("$("$stasim" bench pipeline --transactions "$T" | rate)")
  if [ -x "$sysc" ]; then c_rates+=("$("$sysc" "$T" 2>/dev/null | rate)"); fi
done
s_med=$(printf '%s\n' "${s_rates[@]}" | median)
echo "stasim   T=$T runs=$N median stage_events_per_s=$s_med  (all: ${s_rates[*]})"
if [ ${#c_rates[@]} -gt 0 ]; then
  c_med=$(printf '%s\n' "${c_rates[@]}" | median)
  echo "systemc  T=$T runs=$N median stage_events_per_s=$c_med  (all: ${c_rates[*]})"
  awk -v s="$s_med" -v c="$c_med" 'BEGIN {printf "ratio stasim/systemc = %.2fx\n", s / c}'
else
  echo "systemc: not built (install libsystemc-dev and g++)"
fi
