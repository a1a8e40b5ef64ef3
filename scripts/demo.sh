#!/usr/bin/env bash
# The main job: builds weir and the plugins, then runs the fraud-scoring
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
for p in plugins/*/; do
  "$weir" plugin build "$p" --out "$plugin_dir" >/dev/null
done
exec "$weir" run "$pipeline"
