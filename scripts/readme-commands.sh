#!/usr/bin/env bash
# Runs every shell command of README.md as written: each ```sh block in order, line by line,
# in a temporary folder with the release binary first on PATH, failing on the first command
# that exits non-zero (naming its README line). This is the README test of the suite
# (tests/it/readme.rs) with STASIM_README_ALL=1: it also runs the blocks tagged `slow` (the
# 100-point sweep, the GNU parallel shards, the SystemC comparison) and, in a debug build,
# `release`; MiniLM-L6 is fetched first. Blocks tagged `skip` (the cargo commands) and those
# needing a tool that is not installed say "skipped". About 10 minutes with two cores.
# Usage: scripts/readme-commands.sh
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
cd "$here"
scripts/fetch-minilm.sh >/dev/null
STASIM_README_ALL=1 cargo test --release --test it -- --exact \
  readme::the_readmes_shell_commands_run_as_written --nocapture
