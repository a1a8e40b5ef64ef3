#!/usr/bin/env bash
# run.sh [N]: the per-card velocity benchmark (README.md). Generates N input
# lines (default 1,000,000) and the spaced variant, runs plain Python (the
# reference), Flink Java at each parallelism and weir (weir.toml beside this
# script: the keyed plugin plugins/card-velocity, state in fjall, once with
# `durability = "batch"` and once with "interval"), all measured by
# measure.py, checks every output against Python's with check.py and prints
# the table. Exits non-zero if any run fails or any output differs.
#
# Environment:
#   SPACING=10                  the spaced variant's factor (gen.sh)
#   ROUNDS=1                    rounds of the whole set; the table keeps each one's best
#   FLINK_PARALLELISM="1 2"     Flink runs, one per value
#   WEIR_VELOCITY_PIPELINE=F    weir's pipeline template (default weir.toml here):
#                               @INPUT@, @OUTPUT@ and @STATE_DIR@ are replaced by
#                               absolute paths, @DURABILITY@ by the run's; the
#                               rendered copy is written next to F (so its
#                               relative paths keep working) and removed after
#   WEIR_DURABILITY="batch interval"  weir runs, one per value
#   WEIR_BIN                    default target/release/weir (gen.sh builds it)
#   JAVA_HOME                   default /usr/lib/jvm/java-17-openjdk-amd64
set -euo pipefail

N=${1:-1000000}
SPACING=${SPACING:-10}
ROUNDS=${ROUNDS:-1}
FLINK_PARALLELISM=${FLINK_PARALLELISM:-1 2}
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=$ROOT/target/bench-velocity
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$DIR/results-$STAMP.jsonl
LOGS=$DIR/logs-$STAMP
mkdir -p "$LOGS"

echo "run.sh: $(date -Is), N=$N, spacing x$SPACING, rounds $ROUNDS; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

mapfile -t INPUTS < <("$HERE/gen.sh" "$N" "$SPACING")
[[ ${#INPUTS[@]} -eq 2 ]] || { echo "run.sh: gen.sh did not print two input paths" >&2; exit 1; }
mapfile -t FLINK < <("$HERE/flink/setup.sh")
[[ ${#FLINK[@]} -eq 2 && -f ${FLINK[1]}/CardVelocity.class ]] || { echo "run.sh: flink/setup.sh failed" >&2; exit 1; }
PYFLINK=${FLINK[0]}
CLASSES=${FLINK[1]}

WEIR=${WEIR_BIN:-$ROOT/target/release/weir}
RENDERED=()
cleanup() { rm -f "${RENDERED[@]}"; }
trap cleanup EXIT
WEIR_VELOCITY_PIPELINE=${WEIR_VELOCITY_PIPELINE:-$HERE/weir.toml}
WEIR_DURABILITY=${WEIR_DURABILITY:-batch interval}
[[ -f $WEIR_VELOCITY_PIPELINE ]] || { echo "run.sh: WEIR_VELOCITY_PIPELINE=$WEIR_VELOCITY_PIPELINE is not a file" >&2; exit 1; }
for p in @INPUT@ @OUTPUT@ @STATE_DIR@; do
    grep -q "$p" "$WEIR_VELOCITY_PIPELINE" || { echo "run.sh: $WEIR_VELOCITY_PIPELINE has no $p placeholder" >&2; exit 1; }
done
if [[ $WEIR_VELOCITY_PIPELINE == "$HERE/weir.toml" ]]; then
    "$WEIR" plugin build "$ROOT/plugins/card-velocity" --out "$HERE/plugins" >/dev/null \
        || { echo "run.sh: building plugins/card-velocity failed" >&2; exit 1; }
fi

failed=0
measure() { # NAME VARIANT OUT [--check EXPECTED] -- CMD...
    local name=$1 variant=$2 out=$3
    shift 3
    python3 "$HERE/measure.py" run --name "$name" --variant "$variant" --out "$out" --lines "$N" \
        --results "$RESULTS" --log "$LOGS/$name-$variant.log" "$@" || failed=1
}

JAVA=("$JAVA_HOME/bin/java")
for m in java.lang java.lang.reflect java.util java.util.concurrent java.util.concurrent.atomic \
    java.util.concurrent.locks java.io java.net java.nio java.text java.time sun.nio.ch; do
    JAVA+=("--add-opens=java.base/$m=ALL-UNNAMED")
done
JAVA+=("-Dlog4j.configurationFile=$PYFLINK/conf/log4j-cli.properties" -cp "$CLASSES:$PYFLINK/lib/*:$PYFLINK/opt/*")

for round in $(seq 1 "$ROUNDS"); do
    for input in "${INPUTS[@]}"; do
        base=$(basename "$input" .jsonl)
        variant=x1
        [[ $base == *-x$SPACING ]] && variant=x$SPACING
        out=$DIR/out/$variant
        mkdir -p "$out"
        expected=$out/python.jsonl
        echo "run.sh: round $round, variant $variant ($input)"

        rm -f "$expected"
        measure python "$variant" "$expected" -- python3 "$HERE/velocity.py" "$input" "$expected"
        [[ -s $expected ]] || { echo "run.sh: no Python output for $variant: nothing to check against" >&2; exit 1; }

        for p in $FLINK_PARALLELISM; do
            rm -rf "$out/flink-p$p"
            measure "flink-p$p" "$variant" "$out/flink-p$p" --check "$expected" -- \
                "${JAVA[@]}" "-Dlog.file=$LOGS/flink-p$p-$variant.flink.log" CardVelocity "$input" "$out/flink-p$p" "$p"
        done

        for durability in $WEIR_DURABILITY; do
            name=weir-$durability
            rendered=$(dirname "$WEIR_VELOCITY_PIPELINE")/.velocity-run-$variant.toml
            RENDERED+=("$rendered")
            rm -rf "$out/$name.jsonl" "$out/$name-state"
            sed -e "s|@INPUT@|$input|g" -e "s|@OUTPUT@|$out/$name.jsonl|g" -e "s|@STATE_DIR@|$out/$name-state|g" \
                -e "s|@DURABILITY@|$durability|g" "$WEIR_VELOCITY_PIPELINE" > "$rendered"
            measure "$name" "$variant" "$out/$name.jsonl" --check "$expected" -- "$WEIR" run --quiet "$rendered"
            du -sb "$out/$name-state" | awk -v n="$name" -v v="$variant" '{print "run.sh: " n " " v ": state directory " $1 " bytes"}'
        done
    done
done

echo
python3 "$HERE/measure.py" table "$RESULTS"
echo
echo "run.sh: results in $RESULTS, logs in $LOGS; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $failed -ne 0 ]]; then
    echo "run.sh: some runs failed or disagreed with Python (see above)" >&2
    exit 1
fi
