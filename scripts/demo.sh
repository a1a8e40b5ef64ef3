#!/usr/bin/env bash
# The main job: builds weir and the quickstart plugins, then runs the
# quickstart pipeline on the built-in generator with live progress.
# Usage: scripts/demo.sh [pipeline.toml]   (default: examples/quickstart/pipeline.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

pipeline=${1:-examples/quickstart/pipeline.toml}
cargo build -p weir --quiet
weir=target/debug/weir
plugin_dir="$(dirname "$pipeline")/plugins"
for p in plugins/*/; do
  "$weir" plugin build "$p" --out "$plugin_dir" >/dev/null
done
exec "$weir" run "$pipeline"
