#!/usr/bin/env bash
# Installs what weir needs on a fresh machine. Idempotent; sourced by the
# demo and test scripts.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

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
