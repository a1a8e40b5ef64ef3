#!/usr/bin/env bash
# The bounded soak (docs/reliability.md, "Soak"): the fraud pipeline
# (generated card transactions → card-history with host state →
# fraud-features with the ONNX model → scores and alerts) at a steady rate
# for SECS seconds, the fraud-features plugin hot-swapped every 30 s and the
# model every 2 min; RSS, file descriptors, threads, queue depths and the p99
# end-to-end latency sampled every 10 s (scripts/soak.py), written to
# OUT/soak.csv and plotted to OUT/soak.svg. Exits non-zero if a bound breaks.
#
#   scripts/soak.sh [SECS] [RATE]     default: 600 s at 20000 events/s
#   WEIR_SOAK_PROFILE=release scripts/soak.sh    (default: the dev build)
#   WEIR_SOAK_OUT=DIR                            (default: target/soak)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >/dev/null
SECS=${1:-600}
RATE=${2:-20000}
profile=${WEIR_SOAK_PROFILE:-dev}
out=$(realpath -m "${WEIR_SOAK_OUT:-target/soak}")
rm -rf "$out"
mkdir -p "$out/plugins"

cargo build -p weir --profile "$profile" --quiet
dir=debug
[[ $profile == dev ]] || dir=$profile
weir=$PWD/target/$dir/weir
for name in card-history fraud-features; do
  "$weir" plugin build "plugins/$name" --out "$out/plugins" >/dev/null
done
wasm="$out/fraud_features_a.wasm"
cp "$out/plugins/fraud-features.wasm" "$wasm"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$out/pipeline.toml" <<TOML
name = "fraud-soak"
plugin_dir = "$out/plugins"
cache_dir = "$out/cache"
state_dir = "$out/state"

[source]
type = "generate"
schema = "card-transactions"
rate = $RATE
count = $((RATE * (SECS + 600)))
seed = 42
partitions = 4

[batch]
max_events = 256
max_wait_ms = 20

[models.fraud]
path = "$out/fraud.onnx"
inputs = ["features"]
outputs = ["score"]
intra_threads = 1
max_batch = 512
max_delay_ms = 2

[[stages]]
name = "history"
plugin = "card-history"
[stages.state]
key = "/card_id"
ttl_secs = 604800

[[stages]]
name = "score"
plugin = "fraud-features"
[stages.params]
model = "fraud"
threshold = 0.3

[outputs.default]
type = "file"
path = "/dev/null"
format = "value"

[outputs.alerts]
type = "file"
path = "$out/alerts.jsonl"
format = "value"

[dead_letter]
type = "file"
path = "$out/dead-letters.jsonl"

[admin]
address = "127.0.0.1:$port"
TOML

echo "soak: $SECS s at $RATE events/s, $profile build, out $out, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 scripts/soak.py "$weir" "$out/pipeline.toml" "$out" "$port" "$SECS" \
  "$out/plugins" "$wasm" examples/fraud/model/fraud.onnx
