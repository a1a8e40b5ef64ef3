#!/usr/bin/env python3
"""Trains the fraud model on weir's synthetic card transactions and exports it.

    source scripts/setup.sh
    python examples/fraud/train.py            # writes examples/fraud/model/

Data: `weir generate --schema card-transactions` (labelled with `is_fraud`),
one seed for training (7) and another for the holdout (42), 200k events each.
Model: a small MLP (features -> 16 tanh -> 1 sigmoid), or a logistic regression
with `--model logreg`, trained with numpy (full-batch Adam, L2); the feature
standardization is folded into the first layer, so the ONNX graph takes the
raw features (features.py) and needs nothing else:

    features: float [N, F]  ->  score: float [N, 1] in [0, 1]

The generator does not say how long ago a card's previous transaction was:
like the pipeline's keyed stage `card-history`, history.py computes it per
card, in order, from the events before (no field of the future leaks in).

Writes model/fraud.onnx, model/features.json (feature order, holdout AUC,
seeds, threshold table, chosen threshold), model/parity.jsonl (events with
the features and score Python computed, for the fraud-features plugin's
parity test) and model/history-parity.jsonl (every holdout transaction of
some cards, in order, with the history Python computed, for card-history's
parity test).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from features import FEATURES, features  # noqa: E402
from history import History  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


def generate(weir, seed, count):
    """Events (dicts) from weir's generator, each with the card's history
    added (history.py: what the pipeline's `card-history` stage adds)."""
    out = subprocess.run(
        [weir, "generate", "--schema", "card-transactions", "--count", str(count), "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    history = History()
    return [history.enrich(json.loads(line)) for line in out.splitlines() if line]


def matrix(events):
    x = np.array([features(ev) for ev in events], dtype=np.float64)
    y = np.array([ev["is_fraud"] for ev in events], dtype=np.float64)
    return x, y


def auc(y, score):
    """Area under the ROC curve (Mann-Whitney U, ties get average ranks)."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def train(x, y, hidden, steps, l2, seed):
    """Full-batch Adam on the log loss. Returns the layers as [(W, b), ...]."""
    rng = np.random.default_rng(seed)
    n, f = x.shape
    if hidden:
        params = [
            rng.normal(0, 1 / np.sqrt(f), (f, hidden)),
            np.zeros(hidden),
            rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)),
            np.zeros(1),
        ]
    else:
        params = [np.zeros((f, 1)), np.zeros(1)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1, b2 = 0.05, 0.9, 0.999
    yc = y[:, None]
    for t in range(1, steps + 1):
        if hidden:
            w1, c1, w2, c2 = params
            h = np.tanh(x @ w1 + c1)
            p = sigmoid(h @ w2 + c2)
            d = (p - yc) / n
            gw2 = h.T @ d + l2 * w2
            gc2 = d.sum(0)
            dh = (d @ w2.T) * (1 - h * h)
            gw1 = x.T @ dh + l2 * w1
            gc1 = dh.sum(0)
            grads = [gw1, gc1, gw2, gc2]
        else:
            w, c = params
            p = sigmoid(x @ w + c)
            d = (p - yc) / n
            grads = [x.T @ d + l2 * w, d.sum(0)]
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            mh = m[i] / (1 - b1**t)
            vh = v[i] / (1 - b2**t)
            params[i] = params[i] - lr * mh / (np.sqrt(vh) + 1e-8)
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def predict(layers, x):
    h = x
    for i, (w, b) in enumerate(layers):
        z = h @ w + b
        h = np.tanh(z) if i + 1 < len(layers) else sigmoid(z)
    return h[:, 0]


def fold_standardization(layers, mean, std):
    """First layer on raw x: W' = W / std, b' = b - (mean / std) @ W."""
    (w, b), rest = layers[0], layers[1:]
    w2 = w / std[:, None]
    b2 = b - (mean / std) @ w
    return [(w2, b2)] + rest


def export(layers, path):
    nodes, inits = [], []
    prev = "features"
    for i, (w, b) in enumerate(layers):
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        inits.append(numpy_helper.from_array(b.astype(np.float32), f"b{i}"))
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"z{i}"]))
        last = i + 1 == len(layers)
        out = "score" if last else f"h{i}"
        nodes.append(helper.make_node("Sigmoid" if last else "Tanh", [f"z{i}"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "fraud",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", len(FEATURES)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    model = helper.make_model(
        graph,
        producer_name="weir examples/fraud/train.py",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8  # readable by every ONNX Runtime >= 1.10
    onnx.checker.check_model(model)
    onnx.save(model, path)


def threshold_table(y, score, thresholds):
    rows = []
    for t in thresholds:
        flagged = score > t
        tp = float((flagged & (y == 1)).sum())
        precision = tp / flagged.sum() if flagged.any() else 0.0
        recall = tp / (y == 1).sum()
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "threshold": t,
                "flagged_share": round(float(flagged.mean()), 5),
                "precision": round(float(precision), 4),
                "recall": round(float(recall), 4),
                "f1": round(float(f1), 4),
            }
        )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weir", default=os.path.join(REPO, "target", "debug", "weir"))
    ap.add_argument("--train-seed", type=int, default=7)
    ap.add_argument("--holdout-seed", type=int, default=42)
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--model", choices=["mlp", "logreg"], default="mlp")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", default=os.path.join(HERE, "model"))
    args = ap.parse_args()
    if not os.path.exists(args.weir):
        sys.exit(f"{args.weir} not found: build it with `cargo build -p weir` or pass --weir")

    x, y = matrix(generate(args.weir, args.train_seed, args.count))
    holdout = generate(args.weir, args.holdout_seed, args.count)
    xh, yh = matrix(holdout)
    print(f"train: {len(y)} events, fraud rate {y.mean():.4f}; holdout: {len(yh)}, {yh.mean():.4f}")

    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    hidden = args.hidden if args.model == "mlp" else 0
    layers = train((x - mean) / std, y, hidden, args.steps, l2=1e-4, seed=1)
    layers = fold_standardization(layers, mean, std)

    train_auc = auc(y, predict(layers, x))
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "fraud.onnx")
    export(layers, onnx_path)

    # Score the holdout with the exported graph itself (what weir will run).
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    score = sess.run(["score"], {"features": xh.astype(np.float32)})[0][:, 0].astype(np.float64)
    np_score = predict(layers, xh)
    assert np.max(np.abs(score - np_score)) < 1e-4, "ONNX graph disagrees with numpy"
    holdout_auc = auc(yh, score)
    print(f"AUC: train {train_auc:.4f}, holdout {holdout_auc:.4f}")

    table = threshold_table(yh, score, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    print("holdout: threshold  flagged  precision  recall  f1")
    for r in table:
        print(
            f"         {r['threshold']:.1f}        {r['flagged_share']:.4f}   "
            f"{r['precision']:.3f}      {r['recall']:.3f}   {r['f1']:.3f}"
        )
    best = max(table, key=lambda r: r["f1"])
    print(f"threshold with the best F1: {best['threshold']}")

    meta = {
        "model": args.model,
        "hidden": hidden,
        "input": "features",
        "output": "score",
        "features": FEATURES,
        "train_seed": args.train_seed,
        "holdout_seed": args.holdout_seed,
        "count": args.count,
        "fraud_rate_holdout": round(float(yh.mean()), 5),
        "auc_train": round(train_auc, 4),
        "auc_holdout": round(holdout_auc, 4),
        "thresholds": table,
        "best_f1_threshold": best["threshold"],
    }
    with open(os.path.join(args.out, "features.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    # Parity fixture: the first 40 holdout events plus up to 8 frauds, with
    # the features and score computed here.
    picks = list(range(40)) + [i for i in range(40, len(holdout)) if yh[i] == 1][:8]
    with open(os.path.join(args.out, "parity.jsonl"), "w") as f:
        for i in picks:
            rec = {"event": holdout[i], "features": list(xh[i]), "score": float(score[i])}
            f.write(json.dumps(rec) + "\n")
    # History parity: every transaction of 40 cards among the first 100k
    # holdout events (20 with frauds, the 20 busiest others), in order.
    first = holdout[:100_000]
    counts = {}
    for ev in first:
        counts[ev["card_id"]] = counts.get(ev["card_id"], 0) + 1
    with_fraud = []
    for ev in first:
        if ev["is_fraud"] == 1 and ev["card_id"] not in with_fraud:
            with_fraud.append(ev["card_id"])
    with_fraud = with_fraud[:20]
    busiest = [c for c in sorted(counts, key=lambda c: (-counts[c], c)) if c not in with_fraud][:20]
    cards = set(with_fraud + busiest)
    keep = ("card_id", "ts", "amount", "secs_since_last", "txns_1h", "amount_1h")
    rows = 0
    with open(os.path.join(args.out, "history-parity.jsonl"), "w") as f:
        for ev in first:
            if ev["card_id"] in cards:
                f.write(json.dumps({k: ev[k] for k in keep}) + "\n")
                rows += 1
    print(f"wrote {onnx_path}, features.json, parity.jsonl ({len(picks)} events), history-parity.jsonl ({rows} rows)")


if __name__ == "__main__":
    main()
