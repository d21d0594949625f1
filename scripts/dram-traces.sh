#!/usr/bin/env bash
# Writes the five canonical DRAM traces of the README's "DRAM fidelity" section into DIR
# (default: out/dram-traces, which git ignores), deterministically (seed 1), and
# with --replay also replays each through `stasim dram` and prints the reports:
#   idle-read.trace         1 read
#   sequential-reads.trace  1,000,000 sequential 64-byte reads
#   random-reads.trace      200,000 uniform random reads over 1 GiB
#   bank-rows.trace         20,000 random rows of one bank
#   sequential-mixed.trace  1,000,000 sequential requests, every third a write
# Usage: scripts/dram-traces.sh [DIR] [--replay [stasim dram flags...]]
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
dir="${1:-$here/out/dram-traces}"
[ $# -gt 0 ] && shift
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
stasim="$here/target/release/stasim"
mkdir -p "$dir"
cases="idle-read sequential-reads random-reads bank-rows sequential-mixed"
for c in $cases; do
  "$stasim" dram --gen "$c" --out "$dir/$c.trace"
done
if [ "${1:-}" = "--replay" ]; then
  shift
  for c in $cases; do
    "$stasim" dram --trace "$dir/$c.trace" "$@"
  done
fi
