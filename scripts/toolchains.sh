#!/usr/bin/env bash
# Guest-language toolchains for Python and JavaScript plugins, pinned and
# installed into ~/.cache/weir/toolchains (outside the clone), idempotently,
# from PyPI and npm only.
#
#   scripts/toolchains.sh python   # installs if missing; prints componentize-py's path
#   scripts/toolchains.sh js       # installs if missing; prints the npm prefix
#   scripts/toolchains.sh all      # both (what scripts/setup.sh runs)
#
# `weir plugin build` calls it for a Python or JS plugin; scripts/setup.sh
# sources it, so the test run has both before any test starts.

WEIR_COMPONENTIZE_PY_VERSION=0.25.1
WEIR_COMPONENTIZE_JS_VERSION=0.23.0
WEIR_JCO_VERSION=1.35.0

_weir_toolchains_dir() {
  echo "${WEIR_CACHE:-$HOME/.cache/weir}/toolchains"
}

# Prints the componentize-py executable, installing it first if needed.
weir_ensure_componentize_py() {
  local dir venv stamp
  dir=$(_weir_toolchains_dir)
  venv="$dir/componentize-py-$WEIR_COMPONENTIZE_PY_VERSION"
  stamp="$venv/.weir-installed"
  if [ ! -f "$stamp" ] || [ ! -x "$venv/bin/componentize-py" ]; then
    if [ -n "${WEIR_TOOLCHAIN_CHECK_ONLY:-}" ]; then
      echo "toolchains: componentize-py $WEIR_COMPONENTIZE_PY_VERSION is not installed in $venv" >&2; return 1
    fi
    command -v python3 >/dev/null 2>&1 || { echo "toolchains: python3 is missing (apt-get install python3 python3-venv)" >&2; return 1; }
    echo "toolchains: installing componentize-py $WEIR_COMPONENTIZE_PY_VERSION into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$dir"
    python3 -m venv "$venv" >&2 || return 1
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "componentize-py==$WEIR_COMPONENTIZE_PY_VERSION" >&2 || { echo "toolchains: pip install componentize-py failed" >&2; return 1; }
    touch "$stamp"
  fi
  echo "$venv/bin/componentize-py"
}

# Prints the npm prefix holding componentize-js and jco, installing them first
# if needed.
weir_ensure_componentize_js() {
  local dir prefix stamp
  dir=$(_weir_toolchains_dir)
  prefix="$dir/componentize-js-$WEIR_COMPONENTIZE_JS_VERSION"
  stamp="$prefix/.weir-installed-jco-$WEIR_JCO_VERSION"
  if [ ! -f "$stamp" ] || [ ! -d "$prefix/node_modules/@bytecodealliance/componentize-js" ]; then
    if [ -n "${WEIR_TOOLCHAIN_CHECK_ONLY:-}" ]; then
      echo "toolchains: componentize-js $WEIR_COMPONENTIZE_JS_VERSION is not installed in $prefix" >&2; return 1
    fi
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
      echo "toolchains: node and npm are missing (apt-get install nodejs npm)" >&2; return 1; }
    echo "toolchains: installing componentize-js $WEIR_COMPONENTIZE_JS_VERSION and jco $WEIR_JCO_VERSION into $prefix" >&2
    rm -rf "$prefix"
    mkdir -p "$prefix"
    (cd "$prefix" && npm install --prefix . --no-audit --no-fund --loglevel=error \
      "@bytecodealliance/componentize-js@$WEIR_COMPONENTIZE_JS_VERSION" \
      "@bytecodealliance/jco@$WEIR_JCO_VERSION" >&2) || { echo "toolchains: npm install componentize-js failed" >&2; return 1; }
    touch "$stamp"
  fi
  echo "$prefix"
}

weir_ensure_guest_toolchains() {
  weir_ensure_componentize_py >/dev/null && weir_ensure_componentize_js >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-all}" in
    python) weir_ensure_componentize_py ;;
    js) weir_ensure_componentize_js ;;
    all) weir_ensure_guest_toolchains ;;
    *) echo "usage: $0 python|js|all" >&2; exit 2 ;;
  esac
fi
