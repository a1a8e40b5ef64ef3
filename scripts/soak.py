#!/usr/bin/env python3
"""A bounded soak of the fraud pipeline (issue #16, item 3), driven by
scripts/soak.sh: runs `weir run` on a pipeline for SECS seconds at a steady
rate, hot-swaps the `fraud-features` plugin every 30 s (two builds that
differ by a custom section) and the model every 120 s (two files that differ
by an unknown protobuf field), and samples every 10 s: RSS, open file
descriptors, threads (from /proc), the stage and sink queue depths, and the
p99 end-to-end latency of the last interval (from /metrics).

Writes OUT/soak.csv and OUT/soak.svg, prints the figures and checks the
bounds: after a 60 s warm-up RSS grows by at most 10 % (or 32 MiB), file
descriptors and threads by at most 8, queues stay below their capacity, and
every interval's p99 stays within 2x the first minute's. Exits 1 if a bound
is broken or weir dies.

    soak.py WEIR PIPELINE OUT ADMIN_PORT SECS PLUGIN_DIR WASM MODEL
"""

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

QUEUE_CAPACITY = 2  # runner.rs QUEUE_DEPTH: batches a queue holds
INTERVAL = 10
WARMUP = 60


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def series(text, name):
    """(labels, value) of every sample of `name`."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            m = re.match(r"[^{ ]+(\{[^}]*\})?\s+(\S+)", line)
            if m:
                out.append((m.group(1) or "", float(m.group(2))))
    return out


def buckets(text, output="default"):
    """{le: cumulative count} of the end-to-end latency of `output`."""
    got = {}
    for labels, v in series(text, "weir_end_to_end_latency_seconds_bucket"):
        if f'output="{output}"' not in labels:
            continue
        le = re.search(r'le="([^"]+)"', labels).group(1)
        got[math.inf if le == "+Inf" else float(le)] = v
    return got


def p99(now, before):
    """The p99 (seconds, the bucket's upper bound) of what was observed
    between two bucket snapshots."""
    diff = {le: now[le] - before.get(le, 0) for le in now}
    total = diff.get(math.inf, 0)
    if total <= 0:
        return None
    for le in sorted(diff):
        if diff[le] >= 0.99 * total:
            return le
    return None


def proc(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def replace(src, dst):
    tmp = dst + ".tmp-soak"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def svg(rows, path):
    """Five small line charts, one per measure, over time."""
    panels = [
        ("RSS (MiB)", "rss_mib"),
        ("open file descriptors", "fds"),
        ("threads", "threads"),
        ("queued batches (max of stages and sinks)", "queued"),
        ("p99 end-to-end latency (ms)", "p99_ms"),
    ]
    w, h, pad = 640, 150, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * len(panels)}" '
        'font-family="sans-serif" font-size="11">'
    ]
    t_max = max(r["t"] for r in rows) or 1
    for i, (title, key) in enumerate(panels):
        y0 = i * h
        values = [r[key] for r in rows if r[key] is not None]
        top = max(values + [1]) * 1.15
        parts.append(f'<text x="{pad}" y="{y0 + 14}">{title} (max {max(values + [0]):.1f})</text>')
        parts.append(
            f'<rect x="{pad}" y="{y0 + 20}" width="{w - 2 * pad}" height="{h - 45}" '
            'fill="none" stroke="#ccc"/>'
        )
        pts = " ".join(
            f"{pad + (w - 2 * pad) * r['t'] / t_max:.1f},"
            f"{y0 + 20 + (h - 45) * (1 - r[key] / top):.1f}"
            for r in rows
            if r[key] is not None
        )
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
        parts.append(f'<text x="{pad}" y="{y0 + h - 12}">0 s</text>')
        parts.append(f'<text x="{w - pad - 30}" y="{y0 + h - 12}">{t_max:.0f} s</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    weir, pipeline, out, port, secs, plugin_dir, wasm, model = sys.argv[1:9]
    port, secs = int(port), int(secs)
    # The second versions: the same bytes plus a custom section (plugin) or
    # an unknown protobuf field (model): new content hashes, same behaviour.
    wasm_b = os.path.join(out, "fraud_features_b.wasm")
    with open(wasm, "rb") as f:
        component = f.read()
    name, payload = b"weir-soak", b"b"
    body = bytes([len(name)]) + name + payload
    with open(wasm_b, "wb") as f:
        f.write(component + b"\x00" + bytes([len(body)]) + body)
    model_live = os.path.join(out, "fraud.onnx")
    model_b = os.path.join(out, "fraud_b.onnx")
    shutil.copyfile(model, model_live)
    with open(model, "rb") as f:
        onnx = f.read()
    # Field 1000, wire type 2 (bytes): tag varint 0xC2 0x3E, length 1, "b".
    with open(model_b, "wb") as f:
        f.write(onnx + b"\xc2\x3e\x01b")
    live_wasm = os.path.join(plugin_dir, "fraud-features.wasm")

    log = open(os.path.join(out, "weir.log"), "w")
    child = subprocess.Popen([weir, "run", "--quiet", pipeline], stderr=log)
    started = time.time()
    while not metrics(port):
        if child.poll() is not None or time.time() - started > 120:
            print("soak: weir did not start; see", log.name, file=sys.stderr)
            return 1
        time.sleep(0.5)
    t0 = time.time()
    rows, before, swaps, model_swaps = [], buckets(metrics(port)), 0, 0
    next_sample, next_swap, next_model = t0 + INTERVAL, t0 + 30, t0 + 120
    failed = []
    while time.time() - t0 < secs:
        if child.poll() is not None:
            failed.append(f"weir exited with {child.returncode} after {time.time() - t0:.0f} s")
            break
        now = time.time()
        if now >= next_swap:
            swaps += 1
            replace(wasm_b if swaps % 2 else wasm, live_wasm)
            next_swap += 30
        if now >= next_model:
            model_swaps += 1
            replace(model_b if model_swaps % 2 else model, model_live)
            next_model += 120
        if now >= next_sample:
            text = metrics(port)
            rss, fds, threads = proc(child.pid)
            queued = [v for _, v in series(text, "weir_stage_queued_batches")]
            queued += [v for _, v in series(text, "weir_sink_queued_batches")]
            now_b = buckets(text)
            q = p99(now_b, before)
            before = now_b
            events = sum(v for _, v in series(text, "weir_source_events_total"))
            row = {
                "t": round(now - t0),
                "rss_mib": round(rss, 1),
                "fds": fds,
                "threads": threads,
                "queued": max(queued) if queued else 0,
                "p99_ms": None if q is None or q == math.inf else q * 1000,
                "events": int(events),
            }
            rows.append(row)
            print("soak:", row, flush=True)
            next_sample += INTERVAL
        time.sleep(0.1)
    text = metrics(port)
    plugin_swaps = sum(v for _, v in series(text, "weir_plugin_swaps_total"))
    models_swapped = sum(v for _, v in series(text, "weir_model_swaps_total"))
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            failed.append("weir did not stop within 120 s of SIGTERM")
    if child.returncode not in (0, None) and not failed:
        failed.append(f"weir exited {child.returncode}")

    with open(os.path.join(out, "soak.csv"), "w") as f:
        keys = list(rows[0]) if rows else []
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join("" if r[k] is None else str(r[k]) for k in keys) + "\n")
    if rows:
        svg(rows, os.path.join(out, "soak.svg"))

    warm = [r for r in rows if r["t"] >= WARMUP]
    first = [r["p99_ms"] for r in rows if r["t"] <= WARMUP and r["p99_ms"] is not None]
    if not warm or not first:
        failed.append("too short a run to judge (needs more than 60 s)")
    else:
        base = warm[0]
        rss_max = max(r["rss_mib"] for r in warm)
        rss_bound = base["rss_mib"] + max(32, base["rss_mib"] * 0.10)
        fds_max = max(r["fds"] for r in warm)
        thr_max = max(r["threads"] for r in warm)
        q_max = max(r["queued"] for r in rows)
        p99_first = max(first)
        p99_worst = max(r["p99_ms"] for r in warm if r["p99_ms"] is not None)
        rate = (rows[-1]["events"] - rows[0]["events"]) / max(1, rows[-1]["t"] - rows[0]["t"])
        print(f"soak: {rows[-1]['t']} s sampled, {rate:.0f} events/s, "
              f"{int(plugin_swaps)} plugin swaps and {int(models_swapped)} model swaps counted "
              f"({swaps} and {model_swaps} made)")
        print(f"soak: RSS {base['rss_mib']} MiB after warm-up, max {rss_max} (bound {rss_bound:.1f})")
        print(f"soak: fds {base['fds']} after warm-up, max {fds_max}; threads {base['threads']}, max {thr_max}")
        print(f"soak: queued batches max {q_max} (capacity {QUEUE_CAPACITY})")
        print(f"soak: p99 first minute {p99_first:.0f} ms, worst later interval {p99_worst:.0f} ms")
        if rss_max > rss_bound:
            failed.append(f"RSS grew to {rss_max} MiB (bound {rss_bound:.1f})")
        if fds_max > base["fds"] + 8:
            failed.append(f"file descriptors grew from {base['fds']} to {fds_max}")
        if thr_max > base["threads"] + 8:
            failed.append(f"threads grew from {base['threads']} to {thr_max}")
        if q_max > QUEUE_CAPACITY:
            failed.append(f"a queue held {q_max} batches")
        if p99_worst > 2 * p99_first:
            failed.append(f"p99 {p99_worst:.0f} ms is over 2x the first minute's {p99_first:.0f} ms")
        if swaps and plugin_swaps < swaps:
            failed.append(f"{swaps} plugin swaps made, {int(plugin_swaps)} counted")
        if model_swaps and models_swapped < model_swaps:
            failed.append(f"{model_swaps} model swaps made, {int(models_swapped)} counted")
    print(f"soak: wrote {out}/soak.csv and {out}/soak.svg")
    for f in failed:
        print("soak: FAILED:", f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
