//! Event-time windows of the SDK (`#[weir_sdk::window]`) on the host's
//! state, timers and watermarks, through the real binary: out-of-order
//! events within the allowed lateness are counted and later ones go to the
//! `late` route with the reason; an idle partition does not stall windows;
//! session windows merge when an event bridges them.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::read_lines_tolerant;
use crate::support::{Pipeline, output_of, plugin_dir, read_jsonl, read_jsonl_or_empty, weir};

fn run(dir: &Path) {
    let (ok, _, err) = output_of(&mut crate::support::weir_run(dir));
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");
}

/// A pipeline over `in.jsonl` (event time `/ts`, one event per batch, so
/// that each event sees the watermark of those before it) with `plugin`
/// keyed by `/k`, outputs `out.jsonl` and `late.jsonl`.
fn windowed(dir: &Path, plugin: &str, out_of_order_ms: u64) -> Pipeline {
    plugin_dir(dir, &[plugin]);
    Pipeline::new(dir)
        .top("name = \"windows\"")
        .source("type = \"file\"\npath = \"in.jsonl\"\nevent_time = \"/ts\"\n")
        .batch(1, 0)
        .stage_with("win", plugin, "[stages.state]\nkey = \"/k\"\n")
        .file_output("late", "late.jsonl")
        .tables(&format!(
            "[watermark]\nout_of_order_ms = {out_of_order_ms}\n"
        ))
}

fn write_lines<S: std::borrow::Borrow<str>>(dir: &Path, lines: &[S]) {
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
}

/// (key, start, end, count) of each window result, sorted.
fn results(dir: &Path) -> Vec<(String, i64, i64, u64)> {
    let mut out: Vec<_> = read_jsonl(&dir.join("out.jsonl"))
        .iter()
        .map(|o| {
            let v = &o["value"];
            (
                v["key"].as_str().unwrap_or("").to_owned(),
                v["start"].as_i64().unwrap_or(-1),
                v["end"].as_i64().unwrap_or(-1),
                v["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// `window-count`: 10 s tumbling windows, 2 s allowed lateness.
const TUMBLING: [&str; 6] = [
    r#"{"k":"a","ts":1000,"amount":1}"#,
    r#"{"k":"a","ts":11000,"amount":2}"#,
    // 2 s behind; window [0, 10 s) is open until the watermark reaches 12 s.
    r#"{"k":"a","ts":9000,"amount":4}"#,
    r#"{"k":"b","ts":13000,"amount":8}"#,
    // The watermark is 13 s: [0, 10 s) has closed (its result is out).
    r#"{"k":"a","ts":5000,"amount":16}"#,
    r#"{"k":"a","ts":12500,"amount":32}"#,
];

#[test]
fn out_of_order_events_within_the_lateness_count_and_later_ones_go_to_late_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_lines(dir.path(), &TUMBLING);
    windowed(dir.path(), "window-count", 0).write(dir.path());
    run(dir.path());
    let sums: Vec<(String, i64, u64, f64)> = read_jsonl(&dir.path().join("out.jsonl"))
        .iter()
        .map(|o| {
            let v = &o["value"];
            (
                v["key"].as_str().unwrap_or("").to_owned(),
                v["start"].as_i64().unwrap_or(-1),
                v["count"].as_u64().unwrap_or(0),
                v["sum"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    // The first window closed mid-run (before the late event), the others
    // at the end of the input.
    assert_eq!(sums[0], ("a".to_owned(), 0, 2, 5.0), "{sums:?}");
    let mut rest = sums[1..].to_vec();
    rest.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        rest,
        vec![
            ("a".to_owned(), 10_000, 2, 34.0),
            ("b".to_owned(), 10_000, 1, 8.0)
        ]
    );
    let late = read_jsonl(&dir.path().join("late.jsonl"));
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["value"]["amount"], 16);
    let reason = late[0]["headers"]["weir.late"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("late event: event time 5000 ms")
            && reason.contains("allowed lateness (2000 ms)")
            && reason.contains("the watermark is 13000 ms"),
        "{reason}"
    );
    assert!(read_jsonl_or_empty(&dir.path().join("dlq.jsonl")).is_empty());

    // Without a `late` output the late event is a dead letter, not lost.
    let dir = tempfile::tempdir().expect("tempdir");
    write_lines(dir.path(), &TUMBLING);
    windowed(dir.path(), "window-count", 0)
        .without_output("late")
        .write(dir.path());
    run(dir.path());
    assert_eq!(results(dir.path()).len(), 3);
    let dlq: Vec<(Value, String)> = read_jsonl(&dir.path().join("dlq.jsonl"))
        .into_iter()
        .map(|d| {
            let reason = d["headers"]["weir.error"].as_str().unwrap_or("").to_owned();
            (d["value"]["amount"].clone(), reason)
        })
        .collect();
    assert!(
        matches!(&dlq[..], [(amount, reason)] if *amount == 16 && reason.contains("late")),
        "one dead letter, the late event, with a reason naming the route: {dlq:?}"
    );
}

#[test]
fn session_windows_merge_when_an_event_bridges_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    // (key, event time, input)
    let events = [
        ("a", 0, 1),
        ("b", 0, 4),
        ("a", 16_000, 2),
        // [8 s, 18 s) overlaps [0, 10 s) and [16 s, 26 s): one session.
        ("a", 8_000, 3),
        // b's two sessions have a 30 s hole: they stay two.
        ("b", 30_000, 5),
        ("a", 50_000, 6),
    ];
    let lines: Vec<String> = events
        .iter()
        .map(|(k, ts, input)| serde_json::json!({"k": k, "ts": ts, "input": input}).to_string())
        .collect();
    write_lines(dir.path(), &lines);
    // 20 s of out-of-orderness: no session closes before the bridge.
    windowed(dir.path(), "session-count", 20_000).write(dir.path());
    run(dir.path());
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let mut got: Vec<(String, i64, i64, Value)> = out
        .iter()
        .map(|o| {
            let v = &o["value"];
            assert_eq!(
                v["count"].as_u64(),
                v["inputs"].as_array().map(|a| a.len() as u64)
            );
            (
                v["key"].as_str().unwrap_or("").to_owned(),
                v["start"].as_i64().unwrap_or(-1),
                v["end"].as_i64().unwrap_or(-1),
                v["inputs"].clone(),
            )
        })
        .collect();
    got.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    let s = |k: &str, start, end, inputs: Value| (k.to_owned(), start, end, inputs);
    assert_eq!(
        got,
        vec![
            s("a", 0, 26_000, serde_json::json!([1, 2, 3])),
            s("a", 50_000, 60_000, serde_json::json!([6])),
            s("b", 0, 10_000, serde_json::json!([4])),
            s("b", 30_000, 40_000, serde_json::json!([5])),
        ]
    );
    assert!(read_jsonl_or_empty(&dir.path().join("late.jsonl")).is_empty());
    assert!(read_jsonl_or_empty(&dir.path().join("dlq.jsonl")).is_empty());
}

/// The seed of the idle test: with 2 devices, `d000` and `d001` (on
/// partitions 0 and 1), hour 0 has one device offline for a long stretch.
const IDLE_SEED: u64 = 22;

/// How long before weir exited the first window of the active device that
/// starts 30 s into the outage was in `out.jsonl` (`None`: never, before).
fn lead_of_outage_window(
    dir: &Path,
    active: &str,
    from: i64,
    timeout: Duration,
) -> Option<Duration> {
    let log = std::fs::File::create(dir.join("weir.log")).expect("create weir.log");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stderr(log)
        .spawn()
        .expect("start weir");
    let started = Instant::now();
    let mut seen = None;
    let exited = loop {
        if let Some(status) = child.try_wait().expect("poll weir") {
            break (status, Instant::now());
        }
        if seen.is_none() {
            let results = read_lines_tolerant(&dir.join("out.jsonl"));
            if results.iter().any(|o| {
                o["value"]["device"] == active && o["value"]["start"].as_i64() >= Some(from)
            }) {
                seen = Some(Instant::now());
            }
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(exited.0.success(), "{log}");
    seen.map(|at| exited.1.saturating_duration_since(at))
}

#[test]
fn an_idle_partition_does_not_stall_the_windows_of_the_others() {
    // Two devices on two partitions; the input ends while one is offline.
    let tmp = tempfile::tempdir().expect("tempdir");
    let truth_path = tmp.path().join("truth.jsonl");
    let (ok, readings, err) = output_of(
        weir()
            .args([
                "generate",
                "--schema",
                "sensors",
                "--devices",
                "2",
                "--count",
                "3000",
            ])
            .args(["--seed", &IDLE_SEED.to_string(), "--truth"])
            .arg(&truth_path),
    );
    assert!(ok, "{err}");
    let truth = read_jsonl(&truth_path);
    let offline = truth
        .iter()
        .find(|t| t["kind"] == "offline")
        .expect("an offline device in hour 0");
    let (start, end) = (
        offline["start"].as_i64().expect("start"),
        offline["end"].as_i64().expect("end"),
    );
    assert!(
        end - start >= 8 * 60_000,
        "a long outage for this seed: {offline}"
    );
    let active = if offline["device"] == "d000" {
        "d001"
    } else {
        "d000"
    };
    // The input stops 10 s before the offline device is back.
    let count = readings
        .lines()
        .position(|l| {
            let r: Value = serde_json::from_str(l).expect("reading");
            r["ts"].as_i64() >= Some(end - 10_000)
        })
        .expect("readings past the outage");
    let from = start + 30_000;
    let lead = |idle_timeout_ms: u64| {
        let dir = tempfile::tempdir().expect("tempdir");
        plugin_dir(dir.path(), &["sensor-windows"]);
        Pipeline::new(dir.path())
            .top("name = \"idle\"")
            .source(&format!(
                "type = \"generate\"\nschema = \"sensors\"\ndevices = 2\npartitions = 2\n\
                 seed = {IDLE_SEED}\ncount = {count}\nrate = 100\n"
            ))
            .batch(50, 20)
            .stage_with(
                "win",
                "sensor-windows",
                "[stages.state]\nkey = \"/device\"\n",
            )
            .file_output("late", "late.jsonl")
            .tables(&format!(
                "[watermark]\nout_of_order_ms = 1000\nidle_timeout_ms = {idle_timeout_ms}\n"
            ))
            .write(dir.path());
        let lead = lead_of_outage_window(dir.path(), active, from, Duration::from_secs(120));
        assert!(read_jsonl_or_empty(&dir.path().join("dlq.jsonl")).is_empty());
        lead
    };
    // Idle after 300 ms: the active device's windows keep closing during
    // the outage, seconds before the input ends.
    let with_idle = lead(300);
    assert!(
        with_idle.is_some_and(|d| d >= Duration::from_millis(1500)),
        "with an idle timeout, outage windows closed only {with_idle:?} before the end"
    );
    // The control: a 10-minute idle timeout stalls them until the end of
    // the input (where every window closes).
    let stalled = lead(600_000);
    assert!(
        stalled.is_none_or(|d| d < Duration::from_millis(1500)),
        "without the idle timeout, outage windows still closed {stalled:?} before the end"
    );
}
