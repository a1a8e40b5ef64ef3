//! Keyed state kept by the host (`keyed-count` counts the events of each
//! key in host state): exact counts after a run, after SIGKILLs and
//! restarts, across hot swaps; bounds and missing keys as dead letters;
//! timers fired by the watermark.

mod bounds;
mod crash;
mod disk;
mod faults;
mod kafka;
mod metrics;
mod swap;
mod windows;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{Pipeline, output_of, plugin_dir, weir};

/// `n` events `{"card": "c<i % keys>", "input": i}`, one per line.
pub(crate) fn card_lines(n: usize, keys: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"card\":\"c{}\",\"input\":{i}}}\n", i % keys))
        .collect()
}

/// The expected count of each input (its rank among its key's events).
pub(crate) fn ranks(n: usize, keys: usize) -> Vec<u64> {
    let mut seen = vec![0u64; keys];
    (0..n)
        .map(|i| {
            seen[i % keys] += 1;
            seen[i % keys]
        })
        .collect()
}

/// A pipeline counting cards from `in.jsonl` with keyed-count.
pub(crate) fn counting(dir: &Path, state: &str) -> Pipeline {
    plugin_dir(dir, &["keyed-count"]);
    Pipeline::new(dir)
        .top("name = \"counts\"")
        .file_source("in.jsonl")
        .batch(64, 5)
        .stage_with(
            "count",
            "keyed-count",
            &format!("[stages.state]\nkey = \"/card\"\n{state}"),
        )
}

/// The JSON lines of a file written by a killed process: a torn last line
/// (and only that) is skipped.
pub(crate) fn read_lines_tolerant(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str(l) {
            Ok(v) => out.push(v),
            Err(e) => {
                // A kill tears at most the line being written; the test
                // closes it with a newline before the next run appends.
                assert!(l.len() < 4096, "line {i} is not JSON: {e}: {l}");
            }
        }
    }
    out
}

/// The per-key counts `weir state` prints for stage `count`.
pub(crate) fn stored_counts(dir: &Path) -> HashMap<String, u64> {
    let (ok, out, err) = output_of(
        weir()
            .args(["state"])
            .arg(dir.join("pipeline.toml"))
            .args(["--stage", "count", "--limit", "100000"]),
    );
    assert!(ok, "weir state failed: {err}");
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("weir state prints JSON lines");
            let key = v["key"].as_str().expect("key").to_owned();
            (key, v["value"]["count"].as_u64().expect("a count"))
        })
        .collect()
}

#[test]
fn counts_are_exact_per_key_after_a_file_run_and_a_rerun_applies_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (n, keys) = (3000, 37);
    std::fs::write(dir.path().join("in.jsonl"), card_lines(n, keys)).expect("write");
    counting(dir.path(), "").write(dir.path());
    let (ok, _, err) = output_of(&mut crate::support::weir_run(dir.path()));
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");
    let out = crate::support::read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), n, "one output per input");
    let want = ranks(n, keys);
    for o in &out {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        assert_eq!(v["key"], format!("c{}", input % keys));
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
    }
    let stored = stored_counts(dir.path());
    assert_eq!(stored.len(), keys);
    for k in 0..keys {
        let expected = (0..n).filter(|i| i % keys == k).count() as u64;
        assert_eq!(stored.get(&format!("c{k}")), Some(&expected), "key c{k}");
    }

    // The same input again: every event is already applied.
    let (ok, _, err) = output_of(&mut crate::support::weir_run(dir.path()));
    assert!(ok, "{err}");
    let out = crate::support::read_jsonl_or_empty(&dir.path().join("out.jsonl"));
    assert!(
        out.is_empty(),
        "nothing is applied twice: {} outputs",
        out.len()
    );
    assert_eq!(stored_counts(dir.path()), stored);
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    assert!(
        log.contains("skipped events whose state effects were already stored"),
        "{log}"
    );
}
