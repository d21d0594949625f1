#!/usr/bin/env bash
# Writes every sample the repository commits and the README shows, from the release binary,
# each with explicit output flags (a bare `stasim` writes to the ignored out/ instead):
#   plots/*.{png,svg}                 the charts of the default run (sta, BERT-base, s=128, 2:4)
#   plots/decode/*.{png,svg}          a SmolLM2-135M generation (2:4, prompt 128, 128 steps)
#   traces/sample-sta-small.{vcd,json} 270-330 us of a sta-small run (attention: every module works)
#   sweeps/results/NAME.csv, sweeps/charts/NAME/*   the committed sweeps (bert-base-100 takes
#                                       about 1.5 min with two cores, smollm2-decode about
#                                       7 s; --no-sweeps skips them)
# Usage: scripts/regenerate-samples.sh [--no-sweeps] [--jobs N]
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
cd "$here"
sweeps=1
jobs="$(nproc 2>/dev/null || echo 2)"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sweeps) sweeps=0 ;;
    --jobs) jobs="$2"; shift ;;
    *) echo "usage: $0 [--no-sweeps] [--jobs N]" >&2; exit 2 ;;
  esac
  shift
done
cargo build --release --quiet
stasim="$here/target/release/stasim"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== plots/: the default run's charts"
rm -f plots/*.png plots/*.svg
"$stasim" run sta --plots plots >/dev/null

echo "== plots/decode/: SmolLM2-135M 2:4, 128-token prompt, 128 decode steps (about 20 s)"
rm -f plots/decode/*.png plots/decode/*.svg
"$stasim" run --model smollm2-135m --pattern 2:4 --prompt 128 --generate 128 \
  --plots plots/decode >/dev/null

echo "== traces/sample-sta-small.{vcd,json}: sta-small, 270-330 us"
"$stasim" run sta-small --trace-window 270us..330us \
  --vcd traces/sample-sta-small.vcd --perfetto traces/sample-sta-small.json >/dev/null

if [ "$sweeps" = 1 ]; then
  for name in bert-base-100 models smollm2-decode; do
    echo "== sweeps/results/$name.csv, sweeps/charts/$name/"
    "$stasim" sweep "sweeps/$name.yaml" --out "$tmp/$name" --jobs "$jobs" | tail -n 3
    cp "$tmp/$name/results.csv" "sweeps/results/$name.csv"
    rm -rf "sweeps/charts/$name"
    mkdir -p "sweeps/charts/$name"
    cp "$tmp/$name/plots/"*.png "$tmp/$name/plots/"*.svg "sweeps/charts/$name/"
    # The speedup-against-context chart's numbers, where the sweep draws it.
    if [ -e "$tmp/$name/plots/speedup_vs_context.csv" ]; then
      cp "$tmp/$name/plots/speedup_vs_context.csv" "sweeps/charts/$name/"
    fi
  done
fi
git status --short -- plots traces sweeps
