//! A keyed stage's state is visible while it runs: `/metrics` has
//! `weir_state_keys`, `weir_state_bytes`, `weir_stage_late_events`,
//! `weir_watermark_lag_seconds` and `weir_state_commit_seconds`, and
//! `status.json` (the status page's source) carries the same in the stage's
//! `state` block; a stage that is not keyed has none.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::counting;
use crate::metrics::{free_port, get, parse, wait_for};
use crate::support::weir_run;

#[test]
fn state_size_late_events_and_the_watermark_are_in_metrics_and_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (n, keys, late) = (2000usize, 50usize, 5usize);
    // Event time advances 1 s per event; then `late` events 60 s behind the
    // newest, far past the 5 s out-of-orderness.
    let mut lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"card":"c{}","ts":{},"input":{i}}}"#,
                i % keys,
                1_000_000 + i * 1000
            )
        })
        .collect();
    let newest = 1_000_000 + (n as i64 - 1) * 1000;
    for j in 0..late {
        lines.push(format!(
            r#"{{"card":"c{j}","ts":{},"input":{}}}"#,
            newest - 60_000,
            n + j
        ));
    }
    let port = free_port();
    counting(dir, "")
        .source("type = \"stdin\"\nevent_time = \"/ts\"\n")
        .stage("plain", "passthrough")
        .tables(&format!(
            "[watermark]\nout_of_order_ms = 5000\n[admin]\naddress = \"127.0.0.1:{port}\"\nlinger_secs = 60\n"
        ))
        .write(dir);
    crate::support::plugin_dir(dir, &["keyed-count", "passthrough"]);
    let mut child = weir_run(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start weir");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all((lines.join("\n") + "\n").as_bytes())
        .expect("feed weir");
    stdin.flush().expect("flush");
    // While it runs (stdin open): every event through both stages.
    let done = format!(
        "weir_stage_events_out_total{{stage=\"plain\",plugin=\"passthrough\"}} {}",
        n + late
    );
    let mut body = String::new();
    wait_for(
        "every event out of both stages",
        Duration::from_secs(120),
        || {
            body = get(port, "/metrics").map(|r| r.1).unwrap_or_default();
            body.lines().any(|l| l.starts_with(&done))
        },
    );
    // The size is measured at most once a second: wait for it.
    wait_for("weir_state_keys", Duration::from_secs(30), || {
        body = get(port, "/metrics").map(|r| r.1).unwrap_or_default();
        parse(&body)
            .iter()
            .any(|(k, v)| k.starts_with("weir_state_keys{stage=\"count\"") && *v > 0.0)
    });
    let m = parse(&body);
    let at = |name: &str| {
        m.iter()
            .find(|(k, _)| k.starts_with(name) && k.contains("stage=\"count\""))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name} for stage count in\n{body}"))
    };
    let stored = at("weir_state_keys{");
    assert!(
        stored >= keys as f64 && stored <= (n + late) as f64,
        "weir_state_keys {stored} (an LSM count: at least the {keys} keys)"
    );
    assert!(at("weir_state_bytes{") >= 0.0);
    assert_eq!(at("weir_stage_late_events"), late as f64, "{body}");
    assert!(at("weir_watermark_lag_seconds{") > 0.0);
    let commits = m
        .get("weir_state_commit_seconds_count")
        .copied()
        .unwrap_or_else(|| panic!("no weir_state_commit_seconds_count in\n{body}"));
    assert!(commits >= 1.0, "{body}");

    let (code, status) = get(port, "/status.json").expect("status.json");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).expect("status is JSON");
    let stages = status["stages"].as_array().expect("stages");
    let count = stages
        .iter()
        .find(|s| s["name"] == "count")
        .expect("stage count");
    let state = &count["state"];
    assert!(state["keys"].as_f64() >= Some(keys as f64), "{count}");
    assert_eq!(state["late_events"], late as u64, "{count}");
    // The watermark: the newest event time minus the out-of-orderness.
    assert_eq!(
        state["watermark_ms"].as_i64(),
        Some(newest - 5000),
        "{count}"
    );
    let plain = stages
        .iter()
        .find(|s| s["name"] == "plain")
        .expect("stage plain");
    assert!(
        plain.get("state").is_none(),
        "a plain stage has no state block: {plain}"
    );

    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
}
