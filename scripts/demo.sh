#!/usr/bin/env bash
# The main job: builds weir and the pipeline's plugins, then runs the fraud-scoring
# pipeline (synthetic card transactions → fraud-features → ONNX model →
# scores and alerts) with live progress.
# Usage: scripts/demo.sh [pipeline.toml]   (default: examples/fraud/pipeline.toml;
#        scripts/demo.sh examples/quickstart/pipeline.toml runs the quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

pipeline=${1:-examples/fraud/pipeline.toml}
cargo build -p weir --quiet
weir=target/debug/weir
plugin_dir="$(dirname "$pipeline")/plugins"
# Build the plugins the pipeline's stages name (crates in plugins/).
for name in $(sed -n 's/^[[:space:]]*plugin[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$pipeline" | sort -u); do
  if [ -d "plugins/$name" ]; then
    "$weir" plugin build "plugins/$name" --out "$plugin_dir" >/dev/null
  fi
done
# The examples generate the same events on every run: start their keyed
# state afresh too (a kept store would resume after the last event and
# process nothing).
rm -rf "$(dirname "$pipeline")/.weir-state"
exec "$weir" run "$pipeline"
