#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, plugin tests, and the host's
# integration tests (which build the test plugins for wasm32-wasip2 first,
# and the Python and JavaScript ones with `weir plugin build`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

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
