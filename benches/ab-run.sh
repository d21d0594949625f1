#!/usr/bin/env bash
# Wall time of the default `stasim run` for several stasim binaries: ROUNDS rounds, each
# running every binary once in turn (so drift on a shared machine hits all alike); prints
# each binary's median, fastest and slowest run and its speed-up against the first binary.
# Usage: benches/ab-run.sh ROUNDS BIN_A BIN_B [BIN...]
# An older revision's binary: git worktree add /tmp/wt-REV REV && (cd /tmp/wt-REV &&
# cargo build --release), then pass /tmp/wt-REV/target/release/stasim.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: benches/ab-run.sh ROUNDS BIN_A BIN_B [BIN...]" >&2
  exit 2
fi
rounds="$1"; shift
bins=("$@")
declare -a times
for _ in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    start=$(date +%s%N)
    "${bins[$i]}" run >/dev/null
    end=$(date +%s%N)
    times[$i]+="$(( (end - start) / 1000000 )) "
  done
done
# Median, fastest and slowest of a list of milliseconds.
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r first _ _ < <(echo "${times[0]}" | stats)
for i in "${!bins[@]}"; do
  read -r med lo hi < <(echo "${times[$i]}" | stats)
  awk -v b="${bins[$i]}" -v m="$med" -v lo="$lo" -v hi="$hi" -v f="$first" -v n="$rounds" \
    'BEGIN {printf "%s: median %.3f s (%.3f-%.3f, %d runs), %.2fx the first\n", b, m/1000, lo/1000, hi/1000, n, f/m}'
done
