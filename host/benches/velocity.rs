//! The per-card velocity job (bench/velocity/README.md) on weir at fixed
//! offered rates: latency from reading an event to its output line, with the
//! card's window kept by the host (keyed stage, fjall store, one atomic
//! commit per batch). The throughput against Flink and Python is
//! `bench/velocity/run.sh`; this is its latency half.
//!
//! Run: `cargo bench -p weir --bench velocity` (`WEIR_VELOCITY_SECS` sets the
//! seconds of traffic per run, default 6).
//!
//! The bench writes `weir generate` card transactions (seed 42) into weir's
//! stdin at each rate (a feeder thread, every 1 ms); latency of an event =
//! the wall-clock time its output line is seen in the output file (a tailer
//! polling every 1 ms) − the time weir's stdin source stamped it on reading
//! (the `timestamp` of the output envelope; the plugin reads the event time
//! from the `ts` field). Millisecond resolution; p50 / p99 / max, each
//! configuration's lowest-p99 round of `ROUNDS`. Target: p99 < 10 ms at
//! 50,000 events/s. Both durabilities run: `batch` (an fsync per commit) and
//! `interval` (an fsync every second).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
#[path = "common/rate.rs"]
mod rate;

use rate::{Seen, row, tail};

const ROUNDS: usize = 2;
const RATES: [f64; 3] = [10_000.0, 20_000.0, 50_000.0];
const DURABILITY: [&str; 2] = ["batch", "interval"];

fn pipeline(dir: &Path, durability: &str) -> PathBuf {
    let body = format!(
        r#"
[source]
type = "stdin"
format = "text"
[batch]
max_events = 1024
max_wait_ms = 1
[[stages]]
name = "velocity"
plugin = "card-velocity"
[stages.state]
key = "/card_id"
[state]
durability = "{durability}"
[outputs.default]
type = "file"
path = "out/velocity.jsonl"
format = "json"
"#,
    );
    rate::bench_pipeline(dir, "bench-velocity", &body)
}

fn run(dir: &Path, lines: &[Vec<u8>], rate: f64, durability: &str) -> Seen {
    let p = pipeline(dir, durability);
    let tailer = tail(
        dir.join("out/velocity.jsonl"),
        lines.len(),
        Some("timestamp"),
    );
    let log = dir.join("weir.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg(&p)
        .arg("--quiet")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    let status = rate::fed(cmd, lines, rate).status;
    assert!(
        status.success(),
        "weir failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    tailer.join().expect("tailer")
}

fn main() {
    let secs: f64 = std::env::var("WEIR_VELOCITY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6.0);
    let wasm = common::build_plugins(&["card-velocity"]).remove(0);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins dir");
    std::fs::copy(&wasm, dir.join("plugins/card-velocity.wasm")).expect("copy plugin");
    let most = (RATES[RATES.len() - 1] * secs) as usize;
    let weir = Path::new(env!("CARGO_BIN_EXE_weir"));
    let lines = rate::generate(weir, most, &dir.join("in.jsonl"));
    println!(
        "velocity latency bench: card transactions (seed 42), {secs} s of traffic per run, \
         {ROUNDS} rounds, each configuration's lowest-p99 round kept; load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // Warm the compiled-plugin cache.
    run(dir, &lines[..1000], 10_000.0, "batch");
    let configs: Vec<(f64, &str)> = RATES
        .iter()
        .flat_map(|&r| DURABILITY.iter().map(move |&d| (r, d)))
        .collect();
    let mut best: Vec<Option<Seen>> = configs.iter().map(|_| None).collect();
    for r in 0..ROUNDS {
        for (&(rate, durability), best) in configs.iter().zip(&mut best) {
            let feed = &lines[..((rate * secs) as usize).min(lines.len())];
            let seen = run(dir, feed, rate, durability);
            row(&format!("round {r}: {rate}/s, {durability}"), &seen);
            if best.as_ref().is_none_or(|b| seen.pct(0.99) < b.pct(0.99)) {
                *best = Some(seen);
            }
        }
    }
    println!("best rounds:");
    for (&(rate, durability), seen) in configs.iter().zip(&best) {
        row(
            &format!("{rate}/s, {durability}"),
            seen.as_ref().expect("rounds"),
        );
    }
    for (&(rate, durability), seen) in configs.iter().zip(&best) {
        if rate == 50_000.0 {
            let p99 = seen.as_ref().map_or(-1, |s| s.pct(0.99));
            println!("  p99 @ 50000/s, durability {durability}: {p99} ms (target < 10 ms)");
        }
    }
    println!(
        "load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
