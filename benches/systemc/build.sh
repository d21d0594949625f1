#!/usr/bin/env bash
# Builds benches/systemc/pipeline.cpp, the SystemC version of the pipeline benchmark.
# Needs: apt-get install -y libsystemc-dev g++   (Debian's SystemC 2.3.4 is built as C++17,
# so the program is too).
# Usage: benches/systemc/build.sh [OUTPUT_BINARY]   (default target/systemc-pipeline)
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
out="${1:-$here/../../target/systemc-pipeline}"
mkdir -p "$(dirname "$out")"
flags="$(pkg-config --cflags --libs systemc 2>/dev/null || echo -lsystemc)"
# shellcheck disable=SC2086  # flags are words
g++ -O2 -std=c++17 -o "$out" "$here/pipeline.cpp" $flags
echo "$out"
