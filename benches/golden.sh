#!/usr/bin/env bash
# Golden outputs of a stasim binary, for checking that a speed change leaves every result
# byte-identical: runs a fixed set of STA runs (topologies, DRAM presets, mappings, page and
# scheduling policies, refresh modes, decode, traced runs with VCD and Perfetto) and DRAM trace
# replays (the five canonical cases under several standards and mappings), and writes each
# output into DIR. Compare two binaries: benches/golden.sh BIN_A /tmp/a && benches/golden.sh
# BIN_B /tmp/b && diff -r /tmp/a /tmp/b
# Usage: benches/golden.sh BIN DIR
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: benches/golden.sh BIN DIR" >&2
  exit 2
fi
bin="$(realpath "$1")"
out="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(realpath "$out")"
cd "$here"
n=0
# One STA run: NAME then the run's arguments; stores its JSON report.
run() {
  local name="$1"; shift
  "$bin" run "$@" --json >"$out/run-$name.json"
  n=$((n + 1))
}
run default
run hbm2 topologies/sta-hbm2.yaml
run lpddr5 topologies/sta-lpddr5.yaml
run small topologies/sta-small.yaml
run two-drams topologies/sta-two-drams.yaml
run offchip-softmax topologies/sta-offchip-softmax.yaml
run ddr4-3200 --set dram.preset=ddr4-3200
run ddr5 --set dram.preset=ddr5-4800
run hbm3 --set dram.preset=hbm3-6400 --set dram.channels=8
run close --set dram.page_policy=close
run fcfs --set dram.policy=fcfs
run staggered --set dram.refresh_ranks=staggered
run no-refresh --set dram.refresh=false
run q8 --set dram.queue_depth=8
run wq --set dram.read_queue=16 --set dram.write_queue=64 --set dram.write_high=0.75
for m in RoBaRaCoCh ChRaBaRoCo rochrababgco robabgrachco; do
  run "map-$m" --set dram.mapping="$m"
done
run dense --pattern dense --layers 2
run decode --model smollm2-135m --context 512 --layers 2
run generate --model llama-3.2-1b --prompt 16 --generate 2 --layers 1 --threads 1
run gqa-hbm2 topologies/sta-hbm2.yaml --model llama-3.2-1b --context 1024 --layers 1
"$bin" run --layers 1 --vcd "$out/trace.vcd" --perfetto "$out/trace.json" --json \
  >"$out/run-traced.json" 2>/dev/null
n=$((n + 1))
"$bin" run --layers 2 --out "$out/run-out" >/dev/null 2>&1
n=$((n + 1))
# DRAM replays: the canonical cases (README "DRAM fidelity") under several standards and
# mappings, and the three trace formats.
# Traces are generated into a temporary folder and named relative to it, so that the reports
# (which name their trace) do not depend on the folder.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
for c in idle-read sequential-reads random-reads bank-rows sequential-mixed; do
  "$bin" dram --gen "$c" --count 20000 --out "$c.trace" >/dev/null
  for p in ddr4-2400 ddr5-4800 lpddr5-6400 hbm2-2000; do
    "$bin" dram --trace "$c.trace" --preset "$p" --json >"$out/dram-$c-$p.json"
    n=$((n + 1))
  done
  for m in RoBaRaCoCh ChRaBaRoCo; do
    "$bin" dram --trace "$c.trace" --mapping "$m" --json >"$out/dram-$c-$m.json"
    n=$((n + 1))
  done
  "$bin" dram --trace "$c.trace" --set dram.page_policy=close --set dram.policy=fcfs \
    --json >"$out/dram-$c-close-fcfs.json"
  n=$((n + 1))
done
for f in ramulator dramsim3; do
  "$bin" dram --gen random-reads --count 20000 --format "$f" --out "r-$f.trace" >/dev/null
  "$bin" dram --trace "r-$f.trace" --json >"$out/dram-format-$f.json"
  n=$((n + 1))
done
echo "$n outputs in $out"
