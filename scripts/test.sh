#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, plugin tests, the Python and
# JavaScript SDKs' and plugins' own tests, and the host's integration tests.
# Everything the tests need is installed or built first (scripts/setup.sh
# --tests: the Kafka broker, Chromium, the model files, the Python/JS plugin
# toolchains; then the test plugins), so no test pays for an install inside
# its timeout. The integration tests build the Python and JS test plugins
# with `weir plugin build` (cached by content).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --tests

started=$SECONDS
WEIR_TEST_PLUGINS=$(scripts/build-test-plugins.sh)
export WEIR_TEST_PLUGINS
echo "test: plugins built in $((SECONDS - started)) s ($WEIR_TEST_PLUGINS)" >&2

# The Python and JavaScript SDKs and plugins, natively (fast; the
# integration tests run their components).
sdk_py="$PWD/plugin-sdk/python"
python3 -m unittest discover -s plugin-sdk/python/tests -t plugin-sdk/python
for dir in plugins/*-py; do
  (cd "$dir" && PYTHONPATH="$sdk_py" python3 -m unittest)
done
node --test plugin-sdk/js/test/
for dir in plugins/*-js; do
  (cd "$dir" && npm install --offline --no-audit --no-fund --loglevel=error >/dev/null && node --test)
done

cargo test --workspace "$@"
