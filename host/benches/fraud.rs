//! Fraud scoring: weir (source → the keyed `card-history` plugin, each card's
//! history in weir's store → `fraud-features` plugin → ONNX model on 1
//! thread → file sinks) against the Python peer (`examples/fraud/peer.py`:
//! the card's history in a dict, the same features, onnxruntime with 1 intra/1 inter thread, batches of 64),
//! same input, same model, same run.
//!
//! Run: `cargo bench -p weir --bench fraud` (needs the venv of
//! `scripts/setup.sh`; `WEIR_FRAUD_EVENTS` sets the input size, default 200k).
//!
//! 1. **Throughput**: both read the same JSON-lines file (made by `weir
//!    generate`, seed 42) as fast as they can and write every scored event
//!    (and the alerts) as JSON lines to files: the same work (weir's source
//!    passes lines as text and its outputs write the values, so the JSON is
//!    parsed once and written once, as in the peer). events/s = (lines − 1) /
//!    (time between the first and the last scored line appearing in the
//!    output file), so start-up (Python imports, plugin compilation, model
//!    loading) is left out of both. Best of `ROUNDS` interleaved rounds. No
//!    latency here: when a reader outruns the scorer, "latency" is only how
//!    much its bounded queues hold.
//! 2. **Latency** at a fixed offered rate: the bench writes the same lines
//!    into each one's stdin at `rate` events/s (a feeder thread, every 1 ms).
//!    Latency of an event = the wall-clock time its scored line is seen in the
//!    output file (a tailer polling every 1 ms) − the wall-clock time the
//!    system read it from stdin (weir: the event timestamp its stdin source
//!    stamps, in the output envelope; the peer: `read_ms`, stamped the same
//!    way with `--stamp`). Millisecond resolution; p50 / p99 / max. Rates the
//!    peer sustains (`PEER_RATES`, both run), and 50,000/s (weir only; its
//!    target: p99 < 20 ms). weir's batches wait at most 1 ms to fill
//!    (`max_wait_ms = 1`); the peer's fill up to 64 events, as written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
#[path = "common/rate.rs"]
mod rate;

use rate::{Seen, row, tail};

const ROUNDS: usize = 3;
const LATENCY_ROUNDS: usize = 2;
const THRESHOLD: f64 = 0.3;
/// Seconds of traffic per fixed-rate run.
const RATE_SECS: f64 = 6.0;
/// Rates both sustain (the peer does 30–65k events/s on this machine).
const PEER_RATES: [f64; 2] = [10_000.0, 20_000.0];
const WEIR_RATE: f64 = 50_000.0;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    let venv = std::env::var_os("WEIR_VENV").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/weir/venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "no venv at {}: run `source scripts/setup.sh`",
        venv.display()
    );
    py
}

/// The benchmark pipeline: `source` → fraud-features → files in `format`
/// (`value`: the scored JSON, like the peer writes; `json`: the envelope,
/// which carries the read stamp as `timestamp`).
fn pipeline(dir: &Path, source: &str, format: &str) -> PathBuf {
    let model = workspace().join("examples/fraud/model/fraud.onnx");
    let body = format!(
        r#"
[source]
{source}
[batch]
max_events = 1024
max_wait_ms = 1
[models.fraud]
path = "{model}"
inputs = ["features"]
outputs = ["score"]
intra_threads = 1
inter_threads = 1
max_batch = 1024
max_delay_ms = 0
[[stages]]
name = "history"
plugin = "card-history"
[stages.state]
key = "/card_id"
[[stages]]
name = "score"
plugin = "fraud-features"
[stages.params]
threshold = {THRESHOLD}
[outputs.default]
type = "file"
path = "out/scores.jsonl"
format = "{format}"
[outputs.alerts]
type = "file"
path = "out/alerts.jsonl"
format = "{format}"
"#,
        model = model.display(),
    );
    rate::bench_pipeline(dir, "bench-fraud", &body)
}

fn weir_cmd(pipeline: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg(pipeline)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"));
    cmd
}

fn check_exit(status: std::process::ExitStatus, what: &str, log: &Path) {
    assert!(
        status.success(),
        "{what} failed: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// weir, file source, as fast as it goes. The source hands lines to the
/// plugin as text (`format = "text"`): the plugin parses the JSON, once, as
/// the peer does.
fn weir_file(dir: &Path, input: &Path, n: usize) -> Seen {
    let source = format!(
        "type = \"file\"\npath = \"{}\"\nformat = \"text\"",
        input.display()
    );
    let p = pipeline(dir, &source, "value");
    let tailer = tail(dir.join("out/scores.jsonl"), n, None);
    let log = dir.join("weir.log");
    let status = weir_cmd(&p, &log).status().expect("run weir");
    check_exit(status, "weir", &log);
    tailer.join().expect("tailer")
}

fn peer_cmd(dir: &Path, input: &str, stamp: bool, log: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(workspace().join("examples/fraud/peer.py"))
        .args(["--input", input])
        .args(stamp.then_some("--stamp"))
        .arg("--output")
        .arg(dir.join("peer-scores.jsonl"))
        .arg("--alerts")
        .arg(dir.join("peer-alerts.jsonl"))
        .args(["--threshold", &THRESHOLD.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log"));
    cmd
}

/// The peer on the same file; also returns its own loop rate.
fn peer_file(dir: &Path, input: &Path, n: usize) -> (Seen, String) {
    let _ = std::fs::remove_file(dir.join("peer-scores.jsonl"));
    let tailer = tail(dir.join("peer-scores.jsonl"), n, None);
    let log = dir.join("peer.log");
    let out = peer_cmd(dir, &input.display().to_string(), false, &log)
        .output()
        .expect("run peer");
    check_exit(out.status, "peer", &log);
    let seen = tailer.join().expect("tailer");
    (seen, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn weir_rate(dir: &Path, lines: &[Vec<u8>], rate: f64) -> Seen {
    let p = pipeline(dir, "type = \"stdin\"\nformat = \"text\"", "json");
    let tailer = tail(dir.join("out/scores.jsonl"), lines.len(), Some("timestamp"));
    let log = dir.join("weir-rate.log");
    let out = rate::fed(weir_cmd(&p, &log), lines, rate);
    check_exit(out.status, "weir", &log);
    tailer.join().expect("tailer")
}

fn peer_rate(dir: &Path, lines: &[Vec<u8>], rate: f64) -> Seen {
    let _ = std::fs::remove_file(dir.join("peer-scores.jsonl"));
    let tailer = tail(dir.join("peer-scores.jsonl"), lines.len(), Some("read_ms"));
    let log = dir.join("peer-rate.log");
    let out = rate::fed(peer_cmd(dir, "-", true, &log), lines, rate);
    check_exit(out.status, "peer", &log);
    tailer.join().expect("tailer")
}

fn main() {
    let n: usize = std::env::var("WEIR_FRAUD_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let wasm = common::build_plugins(&["card-history", "fraud-features"]);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    for (name, wasm) in ["card-history", "fraud-features"].iter().zip(&wasm) {
        std::fs::copy(wasm, dir.join(format!("plugins/{name}.wasm"))).expect("copy plugin");
    }

    let input = dir.join("in.jsonl");
    let lines = rate::generate(Path::new(env!("CARGO_BIN_EXE_weir")), n, &input);
    println!(
        "fraud bench: {n} card transactions (seed 42), model examples/fraud/model/fraud.onnx, threshold {THRESHOLD}"
    );

    // Warm the compiled-plugin cache.
    weir_file(dir, &input, n);

    println!("throughput, same file, as fast as each goes:");
    let mut best_weir: Option<Seen> = None;
    let mut best_peer: Option<Seen> = None;
    for r in 0..ROUNDS {
        let w = weir_file(dir, &input, n);
        row(&format!("round {r}: weir"), &w);
        let (p, summary) = peer_file(dir, &input, n);
        row(&format!("round {r}: python peer"), &p);
        println!("    peer's own summary: {summary}");
        if best_weir.as_ref().is_none_or(|b| w.rate() > b.rate()) {
            best_weir = Some(w);
        }
        if best_peer.as_ref().is_none_or(|b| p.rate() > b.rate()) {
            best_peer = Some(p);
        }
    }
    let (w, p) = (best_weir.expect("rounds"), best_peer.expect("rounds"));
    println!("best rounds:");
    row("weir", &w);
    row("python peer", &p);
    println!(
        "  throughput ratio weir/peer: {:.2}x (target >= 5x)",
        w.rate() / p.rate()
    );

    let take = |rate: f64| lines[..((rate * RATE_SECS) as usize).min(n)].to_vec();
    println!(
        "latency at a fixed offered rate (stdin, {RATE_SECS} s of traffic; {LATENCY_ROUNDS} rounds, each configuration's lowest-p99 round kept):"
    );
    // (label, rate, is weir) per configuration, run interleaved.
    let mut configs: Vec<(String, f64, bool)> = Vec::new();
    for rate in PEER_RATES {
        configs.push((format!("weir @ {rate}/s"), rate, true));
        configs.push((format!("python peer @ {rate}/s"), rate, false));
    }
    configs.push((format!("weir @ {WEIR_RATE}/s"), WEIR_RATE, true));
    let mut best: Vec<Option<Seen>> = configs.iter().map(|_| None).collect();
    for r in 0..LATENCY_ROUNDS {
        for ((label, rate, is_weir), best) in configs.iter().zip(&mut best) {
            let feed = take(*rate);
            let seen = if *is_weir {
                weir_rate(dir, &feed, *rate)
            } else {
                peer_rate(dir, &feed, *rate)
            };
            row(&format!("round {r}: {label}"), &seen);
            if best.as_ref().is_none_or(|b| seen.pct(0.99) < b.pct(0.99)) {
                *best = Some(seen);
            }
        }
    }
    println!("best rounds:");
    for ((label, _, _), seen) in configs.iter().zip(&best) {
        row(label, seen.as_ref().expect("rounds"));
    }
    let p99 = |i: usize| best[i].as_ref().map_or(-1, |s| s.pct(0.99));
    for (k, rate) in PEER_RATES.iter().enumerate() {
        println!(
            "  p99 @ {rate}/s: weir {} ms, peer {} ms (target: weir lower)",
            p99(2 * k),
            p99(2 * k + 1)
        );
    }
    println!(
        "  weir p99 @ {WEIR_RATE}/s: {} ms (target < 20 ms)",
        p99(configs.len() - 1)
    );
}
