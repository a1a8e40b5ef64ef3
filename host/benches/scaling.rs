//! Parallel stage instances (`parallelism`): the same pipeline over the same
//! file at parallelism 1 and 2 (this machine has 2 cores), interleaved
//! rounds, events/s of each and the ratio. Two jobs:
//!
//! - **busy**: a deliberately CPU-heavy plain map (the `hostile` test
//!   plugin in mode `busy`: rounds of a hash over each event's value), the
//!   case `parallelism` is for;
//! - **velocity**: the keyed per-card velocity job of `bench/velocity`
//!   (`card-velocity`, each card's window in the host's store), where the
//!   plugin is a smaller share of the work (the source, the store's commits
//!   and the sink take the rest);
//! - **fraud**: the fraud example's stages (`card-history`, keyed, then
//!   `fraud-features` with one call per batch to the ONNX model on one
//!   thread), both at the parallelism, alerts routed to a second file.
//!
//! Run: `cargo bench -p weir --bench scaling` (`WEIR_SCALING_EVENTS` sets the
//! velocity input size, default 300,000; busy uses a tenth, fraud a third;
//! fraud needs ONNX Runtime: `source scripts/setup.sh` first). events/s =
//! events / the process's wall time, after a warm-up run that fills the
//! compiled-plugin cache (start-up ~0.1 s is included in both columns).
//! Best of `ROUNDS`.

use std::path::{Path, PathBuf};

mod common;
#[path = "common/rate.rs"]
#[allow(dead_code)]
mod rate;

const ROUNDS: usize = 3;
const PARALLELISM: [usize; 2] = [1, 2];

fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

fn pipeline(dir: &Path, job: &str, input: &Path, parallelism: usize) -> PathBuf {
    let stage = match job {
        "busy" => format!(
            "[[stages]]\nname = \"busy\"\nplugin = \"hostile\"\nparallelism = {parallelism}\n\
             [stages.params]\nmode = \"busy\"\nwork = 200\n"
        ),
        "fraud" => format!(
            "[models.fraud]\npath = \"{}\"\ninputs = [\"features\"]\noutputs = [\"score\"]\n\
             intra_threads = 1\nmax_batch = 1024\nmax_delay_ms = 0\n\
             [[stages]]\nname = \"history\"\nplugin = \"card-history\"\nparallelism = {parallelism}\n\
             [stages.state]\nkey = \"/card_id\"\n\
             [[stages]]\nname = \"score\"\nplugin = \"fraud-features\"\nparallelism = {parallelism}\n\
             [stages.params]\nthreshold = 0.3\n\
             [outputs.alerts]\ntype = \"file\"\npath = \"out/alerts.jsonl\"\nformat = \"value\"\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/fraud/model/fraud.onnx")
                .display()
        ),
        _ => format!(
            "[[stages]]\nname = \"velocity\"\nplugin = \"card-velocity\"\nparallelism = {parallelism}\n\
             [stages.state]\nkey = \"/card_id\"\n"
        ),
    };
    let body = format!(
        "[state]\ndurability = \"interval\"\n\
         [source]\ntype = \"file\"\npath = \"{}\"\nevent_time = \"/ts\"\n\
         [batch]\nmax_events = 1024\nmax_wait_ms = 20\n{stage}\
         [outputs.default]\ntype = \"file\"\npath = \"out/out.jsonl\"\nformat = \"value\"\n",
        input.display()
    );
    rate::bench_pipeline(dir, job, &body)
}

/// One run to the end: (seconds of wall time, CPU seconds of all its
/// threads); panics unless every event came out.
fn run(dir: &Path, job: &str, input: &Path, parallelism: usize, n: usize) -> (f64, f64) {
    let toml = pipeline(dir, job, input, parallelism);
    let times = rate::run_to_end_cpu(&weir_bin(), &toml);
    let lines = std::fs::read_to_string(dir.join("out/out.jsonl"))
        .expect("output")
        .lines()
        .count();
    assert_eq!(
        lines, n,
        "{job} at parallelism {parallelism}: every event out"
    );
    times
}

fn main() {
    let n: usize = std::env::var("WEIR_SCALING_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let root = tempfile::tempdir().expect("tempdir");
    common::plugin_dir(
        root.path(),
        &["hostile", "card-velocity", "card-history", "fraud-features"],
    );
    let input = root.path().join("cards.jsonl");
    rate::generate(&weir_bin(), n, &input);
    let small = root.path().join("cards-small.jsonl");
    let text = std::fs::read_to_string(&input).expect("input");
    let busy_n = n / 10;
    let fraud_n = n / 3;
    let head = |k: usize| -> String { text.lines().take(k).map(|l| format!("{l}\n")).collect() };
    std::fs::write(&small, head(busy_n)).expect("write");
    let third = root.path().join("cards-third.jsonl");
    std::fs::write(&third, head(fraud_n)).expect("write");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "scaling: {n} velocity events, {busy_n} busy events, {fraud_n} fraud events; load average {}",
        load.trim()
    );
    println!(
        "| job | parallelism | events/s (best of {ROUNDS}) | vs parallelism 1 | cores busy (CPU s / wall s) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let jobs = [
        ("busy", &small, busy_n),
        ("velocity", &input, n),
        ("fraud", &third, fraud_n),
    ];
    for (job, input, events) in jobs {
        let dir = root.path();
        run(dir, job, input, 1, events);
        // The fastest round of each, with the CPU it used.
        let mut best = [(f64::MAX, 0f64); PARALLELISM.len()];
        for _ in 0..ROUNDS {
            for (i, p) in PARALLELISM.iter().enumerate() {
                let (wall, cpu) = run(dir, job, input, *p, events);
                if wall < best[i].0 {
                    best[i] = (wall, cpu);
                }
            }
        }
        for (i, p) in PARALLELISM.iter().enumerate() {
            let (wall, cpu) = best[i];
            println!(
                "| {job} | {p} | {:.0} | {:.2}x | {:.2} |",
                events as f64 / wall,
                best[0].0 / wall,
                cpu / wall
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
}
