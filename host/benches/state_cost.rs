//! What host-kept state costs a job: the per-card velocity job (issue #11's
//! benchmark, `bench/velocity`) run twice over the same file, interleaved
//! rounds: once as the keyed `card-velocity` (each card's window in the
//! host's store: read per batch, JSON-encoded each way, one atomic commit
//! with the source position per batch), once as `velocity-mem` (the same
//! computation with the windows in the instance's memory: no state, no
//! commit, nothing that survives a restart). Both outputs must be the same
//! bytes. The difference is everything the host's state does for the job
//! (the key lookup, the state's crossing and encoding, the store, the
//! commit): an upper bound of the commit's own cost.
//!
//! Run: `cargo bench -p weir --bench state_cost` (`WEIR_STATE_COST_EVENTS`,
//! default 300,000 events of 10,000 cards). events/s = events / the
//! process's wall time, after a warm-up run of each; best of `ROUNDS`.

use std::path::{Path, PathBuf};

mod common;
#[path = "common/rate.rs"]
#[allow(dead_code)]
mod rate;

const ROUNDS: usize = 3;

fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

/// `durability`: the keyed job's `[state] durability`; `None`: the
/// in-memory job.
fn pipeline(dir: &Path, input: &Path, durability: Option<&str>) -> PathBuf {
    let stage = match durability {
        Some(d) => format!(
            "[state]\ndurability = \"{d}\"\n[[stages]]\nname = \"velocity\"\nplugin = \"card-velocity\"\n\
             [stages.state]\nkey = \"/card_id\"\n"
        ),
        None => "[[stages]]\nname = \"velocity\"\nplugin = \"velocity-mem\"\n".to_owned(),
    };
    let body = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\nevent_time = \"/ts\"\n\
         [batch]\nmax_events = 1024\nmax_wait_ms = 20\n{stage}\
         [outputs.default]\ntype = \"file\"\npath = \"out/out.jsonl\"\nformat = \"value\"\n",
        input.display()
    );
    rate::bench_pipeline(dir, "state-cost", &body)
}

/// One run to the end: seconds of wall time and the output.
fn run(dir: &Path, input: &Path, durability: Option<&str>) -> (f64, Vec<u8>) {
    let toml = pipeline(dir, input, durability);
    let secs = rate::run_to_end(&weir_bin(), &toml);
    let output = std::fs::read(dir.join("out/out.jsonl")).expect("output");
    (secs, output)
}

fn main() {
    let n: usize = std::env::var("WEIR_STATE_COST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let root = tempfile::tempdir().expect("tempdir");
    common::plugin_dir(root.path(), &["card-velocity", "velocity-mem"]);
    let input = root.path().join("cards.jsonl");
    rate::generate(&weir_bin(), n, &input);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "state cost: the velocity job, {n} events; load average {}",
        load.trim()
    );
    let dir = root.path();
    let variants = [None, Some("interval"), Some("batch")];
    let (_, reference) = run(dir, &input, None);
    assert_eq!(
        reference.iter().filter(|b| **b == b'\n').count(),
        n,
        "every event out"
    );
    for v in &variants[1..] {
        let (_, output) = run(dir, &input, *v);
        assert!(
            output == reference,
            "durability {v:?}: the keyed job's output differs from the in-memory one's"
        );
    }
    let mut best = [f64::MAX; 3];
    for _ in 0..ROUNDS {
        for (i, v) in variants.iter().enumerate() {
            best[i] = best[i].min(run(dir, &input, *v).0);
        }
    }
    println!("| job | events/s (best of {ROUNDS}) | time vs no state |");
    println!("|---|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        let name = match v {
            None => "velocity-mem (windows in the instance, no state)".to_owned(),
            Some(d) => format!("card-velocity (host state, durability = \"{d}\")"),
        };
        println!(
            "| {name} | {:.0} | {:+.0}% |",
            n as f64 / best[i],
            (best[i] / best[0] - 1.0) * 100.0
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "outputs identical; load average at the end: {}",
        load.trim()
    );
}
