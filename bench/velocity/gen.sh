#!/usr/bin/env bash
# gen.sh N [SPACING]: writes the benchmark's inputs under target/bench-velocity/
# (cached: an existing file is kept) and prints their paths, one a line:
#   cards-N.jsonl            weir generate --schema card-transactions --count N --seed 42
#   cards-N-xSPACING.jsonl   the same lines with ts' = ts0 + (ts - ts0) * SPACING (default 10)
# For each it also caches (and prints to stderr) how many rows evict window
# entries, computed by velocity.py --stats. WEIR_BIN overrides the weir binary
# (default: target/release/weir, built with `cargo build --release -p weir`).
set -euo pipefail

usage() { echo "usage: gen.sh N [SPACING]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
N=$1
SPACING=${2:-10}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "gen.sh: N must be a positive integer, got '$N'" >&2; exit 2; }
[[ $SPACING =~ ^[1-9][0-9]*$ ]] || { echo "gen.sh: SPACING must be a positive integer, got '$SPACING'" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=$ROOT/target/bench-velocity
mkdir -p "$DIR"

WEIR=${WEIR_BIN:-$ROOT/target/release/weir}
if [[ -z ${WEIR_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release -p weir --quiet) || { echo "gen.sh: cargo build --release -p weir failed" >&2; exit 1; }
fi
[[ -x $WEIR ]] || { echo "gen.sh: no weir binary at $WEIR" >&2; exit 1; }

BASE=$DIR/cards-$N.jsonl
SPACED=$DIR/cards-$N-x$SPACING.jsonl

# A cached input made by an older generator is made again (with its spaced copy).
if [[ -s $BASE ]]; then
    "$WEIR" generate --schema card-transactions --count 1000 --seed 42 > "$DIR/head.tmp"
    if ! head -n 1000 "$BASE" | cmp -s - "$DIR/head.tmp"; then
        echo "gen.sh: $BASE is not what this weir generates: making it again" >&2
        rm -f "$BASE" "$SPACED" "$BASE.stats" "$SPACED.stats"
    fi
    rm -f "$DIR/head.tmp"
fi
if [[ ! -s $BASE ]]; then
    "$WEIR" generate --schema card-transactions --count "$N" --seed 42 > "$BASE.tmp"
    lines=$(wc -l < "$BASE.tmp")
    [[ $lines -eq $N ]] || { echo "gen.sh: weir generate wrote $lines lines, expected $N" >&2; exit 1; }
    mv "$BASE.tmp" "$BASE"
fi

# Rewrites only the digits of "ts" (every other byte stays as generated) and
# refuses an input whose ts goes backwards: the job's definition relies on it.
if [[ ! -s $SPACED ]]; then
    python3 - "$BASE" "$SPACED.tmp" "$SPACING" <<'EOF'
import re, sys
src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
ts_field = re.compile(r'"ts":(\d+)')
ts0 = prev = None
with open(src) as inp, open(dst, "w") as out:
    for n, line in enumerate(inp, 1):
        found = ts_field.findall(line)
        if len(found) != 1:
            sys.exit(f"gen.sh: {src}:{n}: expected one \"ts\" field, found {len(found)}")
        ts = int(found[0])
        if ts0 is None:
            ts0 = ts
        if prev is not None and ts < prev:
            sys.exit(f"gen.sh: {src}:{n}: ts goes backwards ({ts} after {prev})")
        prev = ts
        out.write(ts_field.sub(f'"ts":{ts0 + (ts - ts0) * k}', line))
EOF
    mv "$SPACED.tmp" "$SPACED"
fi

for f in "$BASE" "$SPACED"; do
    if [[ ! -s $f.stats || $f -nt $f.stats ]]; then
        python3 "$HERE/velocity.py" "$f" /dev/null --stats 2> "$f.stats.tmp" || { cat "$f.stats.tmp" >&2; exit 1; }
        mv "$f.stats.tmp" "$f.stats"
    fi
    echo "gen.sh: $(basename "$f"): $(cat "$f.stats")" >&2
done
echo "$BASE"
echo "$SPACED"
