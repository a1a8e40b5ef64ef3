#!/usr/bin/env bash
# A local Kafka-compatible broker (tansu) for weir's Kafka tests, examples and
# benchmark, on 127.0.0.1.
#
#   scripts/tansu.sh find                  print the broker binary if one is installed (exit 1 if not)
#   scripts/tansu.sh path                  print the broker binary (finding or building it once)
#   scripts/tansu.sh start [PORT]          start one in the background (default port 9092)
#   scripts/tansu.sh topic NAME [PARTS]    create a topic on it (default 4 partitions)
#   scripts/tansu.sh stop                  stop it and delete its data
#
# The binary is looked up in this order: $WEIR_TANSU; ../shared/bin/tansu.gz
# next to the repository (unpacked into $WEIR_CACHE/tansu/); one unpacked
# there earlier; `tansu` on the PATH; a build cached by an earlier run ($WEIR_CACHE/tansu-build); else
# `path` builds it once with `cargo install tansu --version 0.6.0 --locked
# --features dynostore,libsql` into $WEIR_CACHE/tansu-build (about 40 minutes
# and ~3 GB of temporary disk on 2 cores; the result is ~60 MB and reused).
# $WEIR_CACHE defaults to ~/.cache/weir.
# Storage: sqlite in a temporary folder (set WEIR_TANSU_STORAGE=memory for
# the faster in-memory engine, which is only right for runs from offset 0).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${WEIR_CACHE:-${HOME}/.cache/weir}"
TANSU_VERSION=0.6.0
run_dir="$cache/tansu-run"

# Prints an installed broker binary; returns 1 when there is none.
find_tansu() {
  if [ -n "${WEIR_TANSU:-}" ]; then
    [ -x "$WEIR_TANSU" ] || { echo "tansu: WEIR_TANSU=$WEIR_TANSU is not an executable" >&2; return 1; }
    echo "$WEIR_TANSU"
    return
  fi
  local gz="$root/../shared/bin/tansu.gz"
  if [ -f "$gz" ]; then
    local dest="$cache/tansu/tansu"
    if [ ! -x "$dest" ] || [ "$gz" -nt "$dest" ]; then
      mkdir -p "$cache/tansu"
      gzip -dc "$gz" >"$dest.tmp.$$"
      chmod +x "$dest.tmp.$$"
      mv -f "$dest.tmp.$$" "$dest"
    fi
    echo "$dest"
    return
  fi
  # Unpacked by an earlier run from another checkout (a worktree, a clone
  # elsewhere): reuse it rather than build.
  if [ -x "$cache/tansu/tansu" ]; then
    echo "$cache/tansu/tansu"
    return
  fi
  if command -v tansu >/dev/null 2>&1; then
    command -v tansu
    return
  fi
  local built="$cache/tansu-build/bin/tansu"
  if [ -x "$built" ]; then
    echo "$built"
    return
  fi
  return 1
}

# Builds the broker once into $cache/tansu-build; prints its path.
build_tansu() {
  local log="$cache/tansu-build.log" started=$SECONDS
  mkdir -p "$cache"
  echo "tansu: no Kafka broker found: building tansu $TANSU_VERSION once with cargo install" >&2
  echo "tansu: (one time: about 40 minutes on 2 cores, ~3 GB of temporary disk; log $log)" >&2
  if ! cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
      --root "$cache/tansu-build" >"$log" 2>&1; then
    echo "tansu: building the broker failed after $(( (SECONDS - started) / 60 )) min; the end of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  echo "tansu: built in $(( (SECONDS - started) / 60 )) min: $cache/tansu-build/bin/tansu (cached for next time)" >&2
  echo "$cache/tansu-build/bin/tansu"
}

cmd=${1:-}
case "$cmd" in
  find)
    find_tansu
    ;;
  path)
    find_tansu || build_tansu
    ;;
  start)
    port=${2:-9092}
    bin=$(find_tansu || build_tansu)
    if [ -f "$run_dir/pid" ] && kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
      echo "tansu: already running (pid $(cat "$run_dir/pid"), $(cat "$run_dir/addr"))" >&2
      exit 1
    fi
    mkdir -p "$run_dir"
    data=$(mktemp -d "${TMPDIR:-/tmp}/weir-tansu.XXXXXX")
    if [ "${WEIR_TANSU_STORAGE:-sqlite}" = memory ]; then
      storage="memory://tansu/"
    else
      storage="sqlite://tansu.db"  # relative to the data folder (the working directory)
    fi
    (
      cd "$data"
      nohup "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$storage" >"$data/tansu.log" 2>&1 &
      echo $! >"$run_dir/pid"
    )
    echo "$data" >"$run_dir/data"
    echo "127.0.0.1:$port" >"$run_dir/addr"
    for _ in $(seq 100); do
      if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "tansu: listening on 127.0.0.1:$port (storage $storage, log $data/tansu.log)"
        exit 0
      fi
      sleep 0.1
    done
    echo "tansu: did not start; see $data/tansu.log" >&2
    exit 1
    ;;
  topic)
    name=${2:?topic name}
    parts=${3:-4}
    addr=$(cat "$run_dir/addr" 2>/dev/null || echo 127.0.0.1:9092)
    "$(find_tansu || build_tansu)" topic create "$name" --broker "tcp://$addr" --partitions "$parts"
    ;;
  stop)
    if [ -f "$run_dir/pid" ]; then
      pid=$(cat "$run_dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$run_dir/pid"
    fi
    if [ -f "$run_dir/data" ]; then
      rm -rf "$(cat "$run_dir/data")"
      rm -f "$run_dir/data" "$run_dir/addr"
    fi
    echo "tansu: stopped"
    ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
