#!/usr/bin/env bash
# Builds every plugin crate of the workspace (plugins/* and tests/plugins/*)
# for wasm32-wasip2, release, in one cargo invocation into
# target/test-plugins, and prints the folder holding the .wasm files. The
# integration tests use these builds (scripts/test.sh runs this before any
# test starts and exports WEIR_TEST_PLUGINS); incremental, so a second run
# takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for manifest in plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
  name=$(sed -n 's/^name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)
  [ -n "$name" ] && args+=(-p "$name")
done
CARGO_TARGET_DIR="$PWD/target/test-plugins" \
  cargo build --release --target wasm32-wasip2 --quiet "${args[@]}" >&2
echo "$PWD/target/test-plugins/wasm32-wasip2/release"
