#!/usr/bin/env bash
# The README's explorer run on SmolLM2-135M: SparseGPT prunes of every pattern the explorer
# chooses from (each pruned alone from the dense weights, calibrated on the calibration
# text: 6:8, 2:4, 4:8, 8:16, 1:4, 2:8, 4:16, 1:8, 2:16), then `stasim explore` over them
# (perplexity on 512 evaluation tokens in windows of 256; decode step at context 512), with
# the stored 16-bit values and with 8-bit values, each width searched as a whole.
#
# Usage: scripts/explore-smollm2.sh [DIR] [OUT]  (DIR default out/quality: the .stanm files,
# reused when present; OUT default results/explore-smollm2: the explorer's folder).
# Needs scripts/fetch-smollm2.sh and scripts/fetch-text.sh first. About 2-3 minutes a
# prune on two cores, then about 15 minutes of search a width; a second call reuses everything.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
dir="${1:-$here/out/quality}"
out="${2:-$here/results/explore-smollm2}"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
gguf="$HOME/.cache/stasim/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$gguf" ] || { echo "no $gguf: run scripts/fetch-smollm2.sh" >&2; exit 2; }
mkdir -p "$dir"
from=()
for p in 6:8 2:4 4:8 8:16 1:4 2:8 4:16 1:8 2:16; do
  f="$dir/smollm2-sparsegpt-${p//:/_}-alone.stanm"
  [ -f "$f" ] || "$stasim" prune "$gguf" --method sparsegpt --pattern "$p" --out "$f" \
    > "$dir/$(basename "$f" .stanm).log"
  from+=(--from "$f")
done
"$stasim" explore "$gguf" "${from[@]}" --tokens 512 --window 256 --context 512 \
  --value-bits 16,8 --out "$out"
