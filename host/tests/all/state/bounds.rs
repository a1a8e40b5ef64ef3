//! Bad input loses nothing: oversized state and missing keys are dead
//! letters with the reason; timers fire when the watermark passes them.

use serde_json::Value;

use super::counting;
use crate::support::{output_of, read_jsonl, weir_run};

fn run(dir: &std::path::Path) -> (Vec<Value>, Vec<Value>) {
    let (ok, _, err) = output_of(&mut weir_run(dir));
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");
    (
        read_jsonl(&dir.join("out.jsonl")),
        crate::support::read_jsonl_or_empty(&dir.join("dlq.jsonl")),
    )
}

#[test]
fn an_oversized_value_and_a_missing_key_are_dead_letters_and_the_stage_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pad = "x".repeat(100);
    let lines = [
        r#"{"card":"a","input":1}"#.to_owned(),
        format!(r#"{{"card":"a","input":2,"pad":"{pad}"}}"#),
        r#"{"input":3}"#.to_owned(),
        r#"{"card":"a","input":4}"#.to_owned(),
        r#"{"card":"b","input":5}"#.to_owned(),
    ];
    std::fs::write(dir.path().join("in.jsonl"), lines.join("\n") + "\n").expect("write");
    // One event per batch: a refused write dead-letters the events of its
    // key in that call, here the one that grew it.
    counting(dir.path(), "max_value_bytes = 64\n")
        .batch(1, 0)
        .write(dir.path());
    let (out, dlq) = run(dir.path());
    let got: Vec<(u64, u64)> = out
        .iter()
        .map(|o| {
            let v = &o["value"];
            (
                v["input"].as_u64().unwrap_or(0),
                v["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Input 2's write was refused: input 4 counts 2, not 3.
    assert_eq!(got, vec![(1, 1), (4, 2), (5, 1)]);
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let reason = |d: &Value| d["headers"]["weir.error"].as_str().unwrap_or("").to_owned();
    let by_input = |i: u64| {
        dlq.iter()
            .find(|d| d["value"]["input"].as_u64() == Some(i))
            .unwrap_or_else(|| panic!("no dead letter for input {i}: {dlq:?}"))
    };
    let oversized = reason(by_input(2));
    assert!(
        oversized.contains("over max_value_bytes = 64"),
        "{oversized}"
    );
    assert!(oversized.contains("key \"a\""), "{oversized}");
    let keyless = reason(by_input(3));
    assert!(keyless.contains("no state key at \"/card\""), "{keyless}");
    assert_eq!(by_input(3)["headers"]["weir.stage"], "count");
}

#[test]
fn a_timer_fires_when_the_watermark_passes_it_and_the_rest_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        r#"{"card":"a","ts":1000,"timer_at":5000,"input":1}"#,
        r#"{"card":"b","ts":2000,"timer_at":100000,"input":2}"#,
        r#"{"card":"a","ts":4000,"input":3}"#,
        r#"{"card":"a","ts":6000,"input":4}"#,
        r#"{"card":"b","ts":7000,"input":5}"#,
        r#"{"card":"b","ts":8000,"input":6}"#,
    ];
    std::fs::write(dir.path().join("in.jsonl"), lines.join("\n") + "\n").expect("write");
    counting(dir.path(), "")
        .source("type = \"file\"\npath = \"in.jsonl\"\nevent_time = \"/ts\"\n")
        .batch(1, 0)
        .tables("[watermark]\nout_of_order_ms = 0\n")
        .write(dir.path());
    let (out, dlq) = run(dir.path());
    assert!(dlq.is_empty(), "{dlq:?}");
    let seq: Vec<String> = out
        .iter()
        .map(|o| {
            let v = &o["value"];
            match v["timer"].as_i64() {
                Some(at) => format!(
                    "timer {} {at} count {}",
                    v["key"].as_str().unwrap_or(""),
                    v["count"]
                ),
                None => format!("input {}", v["input"]),
            }
        })
        .collect();
    // The watermark reaches 6000 with input 4; the timer at 5000 fires in
    // the next call (input 5's), with a's count then (3). The timer at
    // 100000 fires at the end of the input.
    assert_eq!(
        seq.iter().position(|s| s == "timer a 5000 count 3"),
        Some(4),
        "{seq:?}"
    );
    assert_eq!(
        seq.last().map(String::as_str),
        Some("timer b 100000 count 3"),
        "{seq:?}"
    );
    assert_eq!(seq.len(), 8, "{seq:?}");
}
