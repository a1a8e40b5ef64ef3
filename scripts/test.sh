#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, plugin tests, and the host's
# integration tests (which build the test plugins for wasm32-wasip2 first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo test --workspace "$@"
