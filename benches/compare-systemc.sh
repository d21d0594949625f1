#!/usr/bin/env bash
# Runs the BENCH.md "pipeline" benchmark on stasim and on SystemC in one sitting and prints
# the medians and their ratio. The SystemC version is this repository's
# benches/systemc/pipeline.cpp, built here by benches/systemc/build.sh (needs
# apt-get install -y libsystemc-dev g++). Both must reproduce sim_end_ns = 5T + 10 and
# source_last_put_ns = 5T - 115 (ok=1), or the script fails.
# Usage: benches/compare-systemc.sh [T] [REPEATS]   (defaults 1000000 and 5)
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
T="${1:-1000000}"
N="${2:-5}"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
sysc="$here/target/systemc-pipeline"
if ! "$here/benches/systemc/build.sh" "$sysc" >/dev/null; then
  echo "systemc: could not build benches/systemc/pipeline.cpp (apt-get install -y libsystemc-dev g++)" >&2
  sysc=""
fi
export SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# One run: its RESULT line, which must say ok=1.
result() {
  local line
  line="$("$@" | grep '^RESULT ')"
  case "$line" in
    *" ok=1 "*) echo "$line" ;;
    *) echo "wrong result from $1: $line" >&2; return 1 ;;
  esac
}
field() { grep -o " $1=[0-9.]*" | cut -d= -f2; }
s_rates=(); c_rates=()
for _ in $(seq "$N"); do   # interleaved, so drift on a shared machine hits both alike
  s_line="$(result "$stasim" bench pipeline --transactions "$T")"
  s_rates+=("$(field stage_events_per_s <<<"$s_line")")
  if [ -n "$sysc" ]; then
    c_line="$(result "$sysc" "$T")"
    c_rates+=("$(field stage_events_per_s <<<"$c_line")")
  fi
done
times() { echo "sim_end_ns=$(field sim_end_ns <<<"$1") source_last_put_ns=$(field source_last_put_ns <<<"$1")"; }
echo "expected sim_end_ns=$((5 * T + 10)) source_last_put_ns=$((5 * T - 115)) (5T + 10, 5T - 115)"
s_med=$(printf '%s\n' "${s_rates[@]}" | median)
echo "stasim   T=$T runs=$N $(times "$s_line") median stage_events_per_s=$s_med  (all: ${s_rates[*]})"
if [ ${#c_rates[@]} -gt 0 ]; then
  c_med=$(printf '%s\n' "${c_rates[@]}" | median)
  echo "systemc  T=$T runs=$N $(times "$c_line") median stage_events_per_s=$c_med  (all: ${c_rates[*]})"
  awk -v s="$s_med" -v c="$c_med" 'BEGIN {printf "ratio stasim/systemc = %.2fx\n", s / c}'
else
  echo "systemc: not built"
fi
