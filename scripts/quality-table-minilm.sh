#!/usr/bin/env bash
# The quality table for MiniLM-L6 (sentence-transformers all-MiniLM-L6-v2): the mean cosine
# of the pruned model's sentence embeddings to the dense model's on 256 held-out sentences
# of the evaluation text (`stasim eval MODEL --sentences 256`), for each method (magnitude,
# wanda, sparsegpt) at 2:4, 4:8, 1:4 and 2:8, beside the simulated latency of a 128-token
# sequence with each pattern (`stasim run --model minilm-l6 --pattern P`, the reference
# design). Each method prunes two inherited families, 2:4 -> 1:4 and 4:8 -> 2:8 (`stasim
# prune --family`; wanda and sparsegpt calibrated layer by layer on the calibration text's
# sentences, 2048 tokens, the default), and 1:4 and 2:8 alone from the dense weights
# (`--pattern`). Magnitude prunes with the report's errors on seeded inputs (the default).
# A second table gives each prune's and each eval's wall time and peak RSS (/usr/bin/time -v).
#
# Usage: scripts/quality-table-minilm.sh [DIR]   (DIR default out/quality-minilm: the .stanm
# files, reports and time logs). Needs scripts/fetch-minilm.sh and scripts/fetch-text.sh
# first. About 10 minutes on two cores (an eval of 256 sentences takes about 20 s, a
# calibrated prune about 10 s). The .stanm files in DIR are reused by a second call (their
# prune times then come from the logs of the first).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
dir="${1:-$here/out/quality-minilm}"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
model="$HOME/.cache/stasim/minilm/model.safetensors"
[ -f "$model" ] || { echo "no $model: run scripts/fetch-minilm.sh" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 2; }
mkdir -p "$dir"

num() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# Wall seconds and peak RSS (MB) from a `/usr/bin/time -v` log.
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.1f", s }' "$1"
}
rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }
latency_us() {
  "$stasim" run --model minilm-l6 --pattern "$1" --json | num total_time_us
}
# `eval FILE [--member P]` on 256 sentences, timed into LOG: prints the mean cosine.
cosine() {
  local log="$1"; shift
  /usr/bin/time -v -o "$log" "$stasim" eval "$@" --dense "$model" --sentences 256 --json \
    | num mean_cosine
}
# Prunes into FILE with ARGS unless FILE is there, timed into FILE's .time log.
prune() {
  local f="$1"; shift
  [ -f "$f" ] || /usr/bin/time -v -o "${f%.stanm}.time" "$stasim" prune "$model" "$@" \
    --out "$f" > "${f%.stanm}.log" 2> "${f%.stanm}.progress"
}

declare -A lat cos
for p in dense 2:4 1:4 4:8 2:8; do lat[$p]=$(latency_us "$p"); done
dense=$(cosine "$dir/eval-dense.time" "$model")

timing=()
for m in magnitude wanda sparsegpt; do
  for fam in 2:4,1:4 4:8,2:8; do
    f="$dir/minilm-$m-${fam//[:,]/_}.stanm"
    prune "$f" --method "$m" --family "$fam"
    for p in ${fam//,/ }; do
      t="$dir/eval-$m-${p//:/_}.time"
      cos[$m,$p]=$(cosine "$t" "$f" --member "$p")
      timing+=("| $m | $p | family $fam | $(wall_s "${f%.stanm}.time") | $(rss_mb "${f%.stanm}.time") | $(wall_s "$t") | $(rss_mb "$t") |")
    done
  done
  for p in 1:4 2:8; do
    f="$dir/minilm-$m-${p//:/_}-alone.stanm"
    prune "$f" --method "$m" --pattern "$p"
    t="$dir/eval-$m-${p//:/_}-alone.time"
    cos[$m,$p-alone]=$(cosine "$t" "$f")
    timing+=("| $m | $p | alone | $(wall_s "${f%.stanm}.time") | $(rss_mb "${f%.stanm}.time") | $(wall_s "$t") | $(rss_mb "$t") |")
  done
done

printf '| pattern | simulated latency, 128 tokens (us) | magnitude | Wanda | SparseGPT |\n'
printf '|---|---:|---:|---:|---:|\n'
printf '| dense | %.1f | %.4f | %.4f | %.4f |\n' "${lat[dense]}" "$dense" "$dense" "$dense"
for p in 2:4 4:8 1:4 1:4-alone 2:8 2:8-alone; do
  case $p in
    1:4) label="1:4 (inherited from 2:4)" ;;
    2:8) label="2:8 (inherited from 4:8)" ;;
    *-alone) label="${p%-alone} (pruned alone)" ;;
    *) label=$p ;;
  esac
  line="| $label | $(printf '%.1f' "${lat[${p%-alone}]}")"
  for m in magnitude wanda sparsegpt; do
    line="$line | $(printf '%.4f' "${cos[$m,$p]}")"
  done
  echo "$line |"
done
echo
printf '| method | member | prune | prune wall (s) | prune peak RSS (MB) | eval wall (s) | eval peak RSS (MB) |\n'
printf '|---|---|---|---:|---:|---:|---:|\n'
printf '| dense | dense | - | - | - | %s | %s |\n' "$(wall_s "$dir/eval-dense.time")" "$(rss_mb "$dir/eval-dense.time")"
printf '%s\n' "${timing[@]}"
