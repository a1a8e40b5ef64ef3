#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, plugin tests, and the host's
# integration tests. Everything the tests need is installed or built first
# (scripts/setup.sh --tests: the Kafka broker, Chromium, the model files;
# then the test plugins), so no test pays for an install inside its timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --tests

started=$SECONDS
WEIR_TEST_PLUGINS=$(scripts/build-test-plugins.sh)
export WEIR_TEST_PLUGINS
echo "test: plugins built in $((SECONDS - started)) s ($WEIR_TEST_PLUGINS)" >&2

cargo test --workspace "$@"
