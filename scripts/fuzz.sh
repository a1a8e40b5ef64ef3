#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo fuzz, on the nightly toolchain), each
# for SECS seconds (default 30), and prints one line per target: its runs and
# seconds. A crash, panic, timeout (10 s an input) or an input using more than
# 1 GiB stops the script with the target's name; libFuzzer leaves the input
# under fuzz/artifacts/<target>/ (make it a regression test).
#
#   scripts/fuzz.sh [SECS] [TARGET...]      e.g. scripts/fuzz.sh 600 output_batch
#
# New interesting inputs go to fuzz/target/corpus/<target>/ (not committed);
# the committed seeds are fuzz/corpus/<target>/ (the batch ones made by
# fuzz/seeds; the others committed as files: example pipelines, JSON lines,
# and crash reproducers, which every run replays first).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
shift || true

rustup toolchain list | grep -q '^nightly' \
    || { echo "fuzz.sh: cargo fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi

cd fuzz
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
if [[ ! -d corpus/input_batch || ! -d corpus/output_batch ]]; then
    CARGO_TARGET_DIR=target cargo run -q --manifest-path seeds/Cargo.toml -- corpus
fi
mkdir -p target/logs
for t in "${targets[@]}"; do
    work=target/corpus/$t
    mkdir -p "$work" "corpus/$t"
    log=target/logs/$t.log
    cargo +nightly fuzz build "$t" >"$log" 2>&1 \
        || { tail -30 "$log" >&2; echo "fuzz.sh: $t does not build (log $PWD/$log)" >&2; exit 1; }
    if ! cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz.sh: $t FAILED (input under fuzz/artifacts/$t/, log $PWD/$log)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$SECS")
    echo "fuzz $t: $runs runs in $secs s, no crash (corpus $(ls "$work" | wc -l) inputs)"
done
