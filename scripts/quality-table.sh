#!/usr/bin/env bash
# The README's accuracy-latency table for SmolLM2-135M: perplexity on the held-out text
# (`stasim eval`, 1024 tokens in windows of 256) of the model pruned by each method
# (magnitude, wanda, sparsegpt) at 2:4, 1:4, 4:8 and 2:8, beside the simulated decode-step
# latency of each pattern (`stasim run --model smollm2-135m --context 512 --pattern P`, batch
# 1, the reference design). Each method prunes two inherited families, 2:4 -> 1:4 and
# 4:8 -> 2:8 (`stasim prune --family`), calibrated on the calibration text; the sparser
# member is pruned from the denser member's updated weights, calibrated on the densest
# member's activations; 1:4 and 2:8 are also pruned alone from the dense weights
# (`--pattern`, each calibrated on its own pruned layers) for the comparison.
#
# Usage: scripts/quality-table.sh [DIR]   (DIR default out/quality: the .stanm files, logs)
# Needs scripts/fetch-smollm2.sh and scripts/fetch-text.sh first. About 30 minutes on two
# cores (a SparseGPT family prune takes about 3 minutes, a prune alone 2); the .stanm
# files in DIR are reused by a second call.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
dir="${1:-$here/out/quality}"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
gguf="$HOME/.cache/stasim/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$gguf" ] || { echo "no $gguf: run scripts/fetch-smollm2.sh" >&2; exit 2; }
mkdir -p "$dir"

num() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
latency_us() {
  "$stasim" run --model smollm2-135m --context 512 --pattern "$1" --json | num total_time_us
}
ppl() { "$stasim" eval "$@" --tokens 1024 --window 256 --json | num perplexity; }

declare -A lat
for p in dense 2:4 1:4 4:8 2:8; do lat[$p]=$(latency_us "$p"); done
dense=$(ppl "$gguf")

rows=()
for m in magnitude wanda sparsegpt; do
  for fam in 2:4,1:4 4:8,2:8; do
    f="$dir/smollm2-$m-${fam//[:,]/_}.stanm"
    [ -f "$f" ] || "$stasim" prune "$gguf" --method "$m" --family "$fam" --out "$f" \
      > "$dir/$(basename "$f" .stanm).log"
    for p in ${fam//,/ }; do
      rows+=("$m $p $(ppl "$f" --member "$p")")
    done
  done
  for p in 1:4 2:8; do
    f="$dir/smollm2-$m-${p//:/_}-alone.stanm"
    [ -f "$f" ] || "$stasim" prune "$gguf" --method "$m" --pattern "$p" --out "$f" \
      > "$dir/$(basename "$f" .stanm).log"
    rows+=("$m $p-alone $(ppl "$f")")
  done
done

printf '| pattern | decode step, context 512 (us) | magnitude | Wanda | SparseGPT |\n'
printf '|---|---:|---:|---:|---:|\n'
printf '| dense | %.1f | %.2f | %.2f | %.2f |\n' "${lat[dense]}" "$dense" "$dense" "$dense"
for p in 2:4 4:8 1:4 1:4-alone 2:8 2:8-alone; do
  case $p in
    1:4) label="1:4 (inherited from 2:4)" ;;
    2:8) label="2:8 (inherited from 4:8)" ;;
    *-alone) label="${p%-alone} (pruned alone)" ;;
    *) label=$p ;;
  esac
  line="| $label | $(printf '%.1f' "${lat[${p%-alone}]}")"
  for m in magnitude wanda sparsegpt; do
    for r in "${rows[@]}"; do
      set -- $r
      [ "$1" = "$m" ] && [ "$2" = "$p" ] && line="$line | $(printf '%.2f' "$3")"
    done
  done
  echo "$line |"
done
