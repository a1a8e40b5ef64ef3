#!/usr/bin/env python3
"""The Python peer of the fraud pipeline, for the benchmark (host/benches/fraud.rs).

What a data scientist would write without weir: read JSON lines, keep each
card's history in a dict (history.py: what weir's keyed stage `card-history`
keeps in its store), compute the same features as the plugin (features.py), score batches of 64 with ONNX
Runtime (1 intra-op, 1 inter-op thread), write the scored events as JSON lines
(every event, with "score") and the alerts (score > threshold) to a second
file, flushing after every batch.

    python examples/fraud/peer.py --input in.jsonl --output scores.jsonl \
        --alerts alerts.jsonl [--model model/fraud.onnx] [--stamp]

`--input -` reads stdin. `--stamp` adds "read_ms" (the wall clock, ms, when
the line was read) to each output line, for latency measurement. Lines that
are not valid transactions go to stderr. Prints a JSON summary on stdout:
events, errors, seconds (of the processing loop) and events_per_sec.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from features import features  # noqa: E402
from history import History  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--alerts", required=True)
    ap.add_argument("--model", default=os.path.join(HERE, "model", "fraud.onnx"))
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--stamp", action="store_true")
    args = ap.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])

    src = sys.stdin if args.input == "-" else open(args.input)
    out = open(args.output, "w")
    alerts = open(args.alerts, "w")
    events = errors = 0
    history = History()

    def score(batch):
        nonlocal events, errors
        evs, rows = [], []
        for ev, stamp in batch:
            try:
                rows.append(features(history.enrich(ev)))
            except (KeyError, TypeError, ValueError) as e:
                print(f"bad event {ev}: {e!r}", file=sys.stderr)
                errors += 1
                continue
            if stamp is not None:
                ev["read_ms"] = stamp
            evs.append(ev)
        if not evs:
            return
        x = np.asarray(rows, dtype=np.float32)
        scores = sess.run(["score"], {"features": x})[0][:, 0]
        for ev, s in zip(evs, scores):
            ev["score"] = float(s)
            line = json.dumps(ev) + "\n"
            out.write(line)
            if s > args.threshold:
                alerts.write(line)
        out.flush()
        alerts.flush()
        events += len(evs)

    started = time.perf_counter()
    batch = []
    for line in src:
        if not line.strip():
            continue
        stamp = time.time_ns() // 1_000_000 if args.stamp else None
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"bad line: {e}", file=sys.stderr)
            errors += 1
            continue
        batch.append((ev, stamp))
        if len(batch) == args.batch:
            score(batch)
            batch = []
    score(batch)
    took = time.perf_counter() - started
    out.close()
    alerts.close()
    summary = {"events": events, "errors": errors, "seconds": round(took, 3)}
    summary["events_per_sec"] = round(events / took, 1) if took > 0 else 0.0
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
