//! The sandbox under attack: the `hostile` test plugin misbehaves on purpose
//! (infinite loop, memory bomb, stack overflow, panic, huge output, a panic
//! in init, file-system, network and environment probes, stdio, slowness) in
//! real pipelines run by the real `weir` binary.
//!
//! Each test asserts the exact outcome: the host survives (exit 0 unless the
//! circuit breaker is configured to stop), exactly the bad events are in the
//! dead-letter output with the right reason, every other event is delivered
//! in order, and nothing the plugin was not granted is reachable. Every run
//! is under a deadline (killed and failed on timeout), and the host's
//! resident memory is sampled from `/proc/<pid>/status` while it runs.
//!
//! `faults` (traps, limits, init), `files` (the file system), `reach`
//! (network, environment, stdio), `breaker` (the circuit breaker); the
//! pipeline and its input and output are written here, the run is
//! `support::run_watched`.

mod breaker;
mod faults;
mod files;
mod reach;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{Outcome, Pipeline, file_table, plugin_dir, read_jsonl_or_empty};

/// The name of the hostile stage (unless a test needs a more distinctive one).
const STAGE: &str = "h";

const MIB: u64 = 1 << 20;

const FILE_SOURCE: &str = "type = \"file\"\npath = \"in.jsonl\"\n";

/// The hostile stage `name` in `mode`; `rest` follows the `mode` param (more
/// params, then tables such as `[stages.limits]`).
struct Hostile<'a> {
    name: &'a str,
    mode: &'a str,
    rest: String,
}

fn named_stage<'a>(name: &'a str, mode: &'a str, rest: &str) -> Hostile<'a> {
    Hostile {
        name,
        mode,
        rest: rest.to_owned(),
    }
}

fn stage<'a>(mode: &'a str, rest: &str) -> Hostile<'a> {
    named_stage(STAGE, mode, rest)
}

/// Writes `<dir>/pipeline.toml`: the `[source]` body `source` → the stage →
/// `out/default.jsonl`, dead letters to `out/dlq.jsonl`; and the plugin folder.
fn write_pipeline(
    dir: &Path,
    source: &str,
    max_events: usize,
    max_wait_ms: u64,
    stage: &Hostile<'_>,
) {
    plugin_dir(dir, &["hostile"]);
    let params = format!("[stages.params]\nmode = \"{}\"\n{}", stage.mode, stage.rest);
    Pipeline::new(dir)
        .top("name = \"sandbox\"")
        .source(source)
        .batch(max_events, max_wait_ms)
        .stage_with(stage.name, "hostile", &params)
        .file_output("default", "out/default.jsonl")
        .dead_letter(Some(&file_table("out/dlq.jsonl")))
        .write(dir);
}

/// Writes `<dir>/in.jsonl`: `{"id":N}` for N in `0..n`, with
/// `"trigger": true` where `trigger(N)`.
fn write_ids(dir: &Path, n: usize, trigger: impl Fn(usize) -> bool) {
    let mut text = String::new();
    for id in 0..n {
        if trigger(id) {
            text.push_str(&format!("{{\"id\":{id},\"trigger\":true}}\n"));
        } else {
            text.push_str(&format!("{{\"id\":{id}}}\n"));
        }
    }
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
}

/// Writes `<dir>/in.jsonl` with these events, one JSON value a line.
fn write_events(dir: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
}

fn default_out(dir: &Path) -> Vec<Value> {
    read_jsonl_or_empty(&dir.join("out/default.jsonl"))
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    read_jsonl_or_empty(&dir.join("out/dlq.jsonl"))
}

fn id(record: &Value) -> usize {
    record["value"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id in {record}")) as usize
}

fn ids(records: &[Value]) -> Vec<usize> {
    records.iter().map(id).collect()
}

fn reason(record: &Value) -> &str {
    record["headers"]["weir.error"]
        .as_str()
        .unwrap_or_else(|| panic!("no weir.error header in {record}"))
}

fn assert_success(out: &Outcome) {
    assert!(
        out.status.success(),
        "weir failed ({:?}); stderr:\n{}",
        out.status,
        out.stderr
    );
}

/// Provenance headers of a dead letter from the hostile stage `stage`.
fn assert_provenance(record: &Value, stage: &str) {
    let headers = &record["headers"];
    assert_eq!(headers["weir.stage"], stage, "{record}");
    assert_eq!(headers["weir.plugin"], "hostile", "{record}");
    let version = headers["weir.plugin.version"]
        .as_str()
        .unwrap_or_else(|| panic!("no weir.plugin.version in {record}"));
    assert_eq!(
        version,
        &crate::reload::sha256_hex(
            &std::fs::read(crate::support::plugin("hostile")).expect("read")
        )[..12],
        "the version id, as in `weir.version.<stage>`: {record}"
    );
    assert_eq!(headers["weir.source.stream"], "in.jsonl", "{record}");
    assert_eq!(headers["weir.source.partition"], "0", "{record}");
    assert_eq!(
        headers["weir.source.offset"],
        id(record).to_string(),
        "{record}"
    );
}

/// The outcome header `result` of each event, by id.
fn results(dir: &Path, out: &Outcome) -> BTreeMap<usize, String> {
    assert_success(out);
    assert!(
        dead_letters(dir).is_empty(),
        "probes never fail an event: {:#?}",
        dead_letters(dir)
    );
    default_out(dir)
        .iter()
        .map(|r| {
            let result = r["headers"]["result"]
                .as_str()
                .unwrap_or_else(|| panic!("no result header in {r}"));
            (id(r), result.to_owned())
        })
        .collect()
}

fn assert_err(results: &BTreeMap<usize, String>, id: usize, what: &str) {
    let result = results
        .get(&id)
        .unwrap_or_else(|| panic!("event {id} ({what}) was not delivered"));
    assert!(result.starts_with("err:"), "{what}: {result}");
}
