//! Python plugins (the `py-modes` test plugin) in real pipelines: outputs,
//! routes and dead letters exactly as for Rust; a hot swap v1 → v2 under a
//! stream; the sandbox against a hostile Python plugin; a plugin built
//! against the 0.1.0 contract beside newer ones.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{pipeline, plugins, py_modes, py_modes_v2, run_to_end, weir_plugin};
use crate::reload::sha256_hex;
use crate::support::{Pipeline, output_of, plugin, read_jsonl, read_jsonl_or_empty, weir_run};

/// A pipeline named `name` reading `in.jsonl` in batches of `max_events`,
/// writing `out.jsonl`, `alerts.jsonl` and dead letters `dlq.jsonl`; the
/// stages are added by the caller.
fn file_pipeline(dir: &Path, name: &str, max_events: usize) -> Pipeline {
    pipeline(dir, name)
        .file_source("in.jsonl")
        .batch(max_events, 10_000)
        .file_output("alerts", "alerts.jsonl")
}

fn write_lines(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
}

fn id(record: &Value) -> u64 {
    record["value"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id in {record}"))
}

fn reason(record: &Value) -> &str {
    record["headers"]["weir.error"]
        .as_str()
        .unwrap_or_else(|| panic!("no weir.error in {record}"))
}

/// The same plugin source gives the same outputs, routes and dead letters
/// through both of the SDK's codecs: v1 built against 0.2.0 (the packed
/// batch) and v2 against 0.1.0 (the record batch); only the `py-version`
/// header (`version.py`) differs.
#[test]
fn python_outputs_routes_and_dead_letters_are_exact_on_both_contracts() {
    for (component, version) in [(py_modes(), "v1"), (py_modes_v2(), "v2")] {
        route_mode_is_exact(component, version);
    }
}

fn route_mode_is_exact(component: &Path, version: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(dir, &[("py-modes", component)]);
    // 300 events: every 10th (id % 10 == 3) asks to be dropped, #57's amount
    // is a string (the plugin's `>` raises), amounts spread over 0..500
    // (threshold 250).
    let inputs: Vec<Value> = (0..300u64)
        .map(|i| {
            let mut v = json!({"id": i, "amount": (i * 37) % 500, "user": format!("u{i}")});
            if i % 10 == 3 {
                v["drop"] = json!(true);
            }
            v
        })
        .collect();
    let mut lines: Vec<String> = inputs.iter().map(Value::to_string).collect();
    lines[57] = r#"{"id":57,"amount":"lots"}"#.into();
    write_lines(dir, &lines);
    file_pipeline(dir, "py-route", 64)
        .stage_with(
            "py",
            "py-modes",
            "[stages.params]\nmode = \"route\"\nthreshold = 250\n",
        )
        .write(dir);
    let log = run_to_end(dir);

    let kept: Vec<&Value> = inputs
        .iter()
        .filter(|v| v["id"] != 57 && v.get("drop").is_none())
        .collect();
    let expected = |v: &Value| {
        let mut v = v.clone();
        v["seen_by"] = json!("py");
        v
    };
    let default = read_jsonl_or_empty(&dir.join("out.jsonl"));
    assert_eq!(default.len(), kept.len(), "{log}");
    for (r, input) in default.iter().zip(&kept) {
        assert_eq!(r["value"], expected(input), "value, in input order");
        assert_eq!(r["headers"]["py-version"], version, "{r}");
        assert_eq!(r["source"]["offset"], input["id"], "{r}");
        let hash = r["headers"]["weir.version.py"].as_str().expect("version");
        assert_eq!(
            hash,
            &sha256_hex(&std::fs::read(component).expect("read"))[..12]
        );
    }
    let alerts = read_jsonl_or_empty(&dir.join("alerts.jsonl"));
    let want: Vec<Value> = kept
        .iter()
        .filter(|v| v["amount"].as_u64() > Some(250))
        .map(|v| expected(v))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        alerts
            .iter()
            .map(|r| r["value"].clone())
            .collect::<Vec<_>>(),
        want,
        "exactly the events over the threshold, in order"
    );

    let dlq = read_jsonl_or_empty(&dir.join("dlq.jsonl"));
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    let dead = &dlq[0];
    assert_eq!(
        dead["value"],
        json!({"id": 57, "amount": "lots"}),
        "the original value"
    );
    assert_eq!(
        reason(dead),
        "TypeError: '>' not supported between instances of 'str' and 'float'",
        "{dead}"
    );
    assert_eq!(dead["headers"]["weir.stage"], "py");
    assert_eq!(dead["headers"]["weir.plugin"], "py-modes");
    assert_eq!(dead["headers"]["weir.source.offset"], "57");
}

// ---------------------------------------------------------------------------
// The sandbox: a hostile Python plugin, one bad event among 1,000
// ---------------------------------------------------------------------------

const EVENTS: u64 = 1_000;
const BAD_ID: u64 = 517;

/// Runs `py-modes` in `mode` on 1,000 events in one batch, #517 triggered;
/// asserts the host survived, #517 alone is a dead letter (original value,
/// provenance) and the 999 others were delivered in order. Returns the
/// reason.
fn one_bad_python_event(mode: &str, limits: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(dir, &[("py-modes", py_modes())]);
    let lines: Vec<String> = (0..EVENTS)
        .map(|i| {
            if i == BAD_ID {
                json!({"id": i, "trigger": true}).to_string()
            } else {
                json!({"id": i}).to_string()
            }
        })
        .collect();
    write_lines(dir, &lines);
    file_pipeline(dir, &format!("py-hostile-{mode}"), EVENTS as usize)
        .stage_with(
            "h",
            "py-modes",
            &format!("[stages.params]\nmode = \"{mode}\"\n[stages.limits]\n{limits}"),
        )
        .write(dir);
    let log = run_to_end(dir);
    let dlq = read_jsonl_or_empty(&dir.join("dlq.jsonl"));
    assert_eq!(
        dlq.iter().map(id).collect::<Vec<_>>(),
        vec![BAD_ID],
        "exactly the bad event is a dead letter; log:\n{log}"
    );
    let dead = &dlq[0];
    assert_eq!(dead["value"], json!({"id": BAD_ID, "trigger": true}));
    assert_eq!(dead["headers"]["weir.stage"], "h");
    assert_eq!(dead["headers"]["weir.plugin"], "py-modes");
    assert_eq!(dead["headers"]["weir.source.offset"], BAD_ID.to_string());
    let delivered: Vec<u64> = read_jsonl_or_empty(&dir.join("out.jsonl"))
        .iter()
        .map(id)
        .collect();
    let expected: Vec<u64> = (0..EVENTS).filter(|&i| i != BAD_ID).collect();
    assert_eq!(delivered, expected, "every other event, in order");
    reason(dead).to_owned()
}

#[test]
fn a_python_infinite_loop_is_stopped_by_the_batch_deadline() {
    let reason = one_bad_python_event("loop", "max_batch_ms = 300\n");
    assert!(
        reason.contains("CPU time limit") && reason.contains("300 ms"),
        "{reason}"
    );
}

#[test]
fn a_python_memory_bomb_hits_the_memory_limit() {
    let reason = one_bad_python_event("memory", "max_memory_mib = 160\n");
    assert!(
        reason.contains("memory limit") && reason.contains("160 MiB"),
        "{reason}"
    );
}

#[test]
fn a_python_exception_sends_only_that_event_to_the_dead_letters() {
    let reason = one_bad_python_event("raise", "");
    assert_eq!(reason, format!("ValueError: boom on id {BAD_ID}"));
}

#[test]
fn a_huge_python_output_is_refused_by_the_output_limit() {
    let reason = one_bad_python_event("huge-output", "max_output_mib = 4\n");
    assert!(
        reason.starts_with("plugin output of") && reason.contains("(4 MiB per batch)"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------
// Contract 0.1.0 beside 0.2.0
// ---------------------------------------------------------------------------

#[test]
fn a_python_plugin_built_against_0_1_0_runs_beside_newer_ones() {
    let old = py_modes_v2();
    let (ok, out, err) = output_of(weir_plugin().arg("inspect").arg(old));
    assert!(ok, "{err}");
    assert!(
        out.contains("weir:plugin/transformer@0.1.0") && out.contains("weir:plugin/log@0.1.0"),
        "built against 0.1.0:\n{out}"
    );
    assert!(
        out.contains("runs on this host: yes (world weir:plugin/transform)"),
        "{out}"
    );
    let (ok, new, err) = output_of(weir_plugin().arg("inspect").arg(py_modes()));
    assert!(ok, "{err}");
    assert!(
        new.contains("weir:plugin/transformer@0.2.0"),
        "the default build is against 0.2.0:\n{new}"
    );

    // 0.2.0 Python → 0.1.0 Python → Rust, in one pipeline.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(
        dir,
        &[
            ("py-old", old),
            ("py-new", py_modes()),
            ("tagger", &plugin("tagger")),
        ],
    );
    let lines: Vec<String> = (0..100u64)
        .map(|i| json!({"id": i, "amount": i * 10}).to_string())
        .collect();
    write_lines(dir, &lines);
    file_pipeline(dir, "py-compat", 32)
        .stage_with(
            "new",
            "py-new",
            "[stages.params]\nmode = \"route\"\nthreshold = 900\n",
        )
        .stage_with(
            "old",
            "py-old",
            "[stages.params]\nmode = \"tag\"\ntag = \"from-0.1.0\"\n",
        )
        .stage_with("rust", "tagger", "[stages.params]\ntag = \"rust\"\n")
        .write(dir);
    let log = run_to_end(dir);
    let out = read_jsonl_or_empty(&dir.join("out.jsonl"));
    assert_eq!(out.len(), 100, "{log}");
    for (i, r) in out.iter().enumerate() {
        let h = &r["headers"];
        assert_eq!(r["value"]["id"], i as u64);
        assert_eq!(h["tag"], "rust", "the Rust stage ran last: {r}");
        assert_eq!(
            h["py-version"], "v2",
            "the 0.1.0 Python stage ran second: {r}"
        );
        assert_eq!(
            r["value"]["seen_by"], "py",
            "the 0.2.0 Python stage ran first: {r}"
        );
        assert_eq!(r["value"]["tag"], "rust", "{r}");
        for stage in ["old", "new", "rust"] {
            assert!(
                h[format!("weir.version.{stage}")].is_string(),
                "stage {stage} ran: {r}"
            );
        }
    }
    assert_eq!(
        out[0]["headers"]["weir.version.old"],
        &sha256_hex(&std::fs::read(old).expect("read"))[..12]
    );
    assert_eq!(read_jsonl_or_empty(&dir.join("alerts.jsonl")).len(), 9);
    assert!(read_jsonl_or_empty(&dir.join("dlq.jsonl")).is_empty());
}

// ---------------------------------------------------------------------------
// Hot swap v1 → v2 under a stream
// ---------------------------------------------------------------------------

struct Stream {
    dir: Option<tempfile::TempDir>,
    child: Child,
}

impl Stream {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        plugins(dir.path(), &[("pytag", py_modes())]);
        pipeline(dir.path(), "py-swap")
            .source(
                "type = \"generate\"\nschema = \"sized\"\nsize = 120\nrate = 2000\npartitions = 4\n",
            )
            .batch(64, 10)
            .stage_with("tag", "pytag", "[stages.params]\nmode = \"tag\"\n")
            .tables("[reload]\ndebounce_ms = 50\npoll_interval_ms = 20\n")
            .write(dir.path());
        let child = weir_run(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("start weir");
        Self {
            dir: Some(dir),
            child,
        }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).expect("running")
    }

    fn lines(&self) -> usize {
        std::fs::read(self.path().join("out.jsonl"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    fn serving(&self) -> Option<String> {
        let status = super::cwasm_cache().join("status-py-swap.json");
        let doc: Value = serde_json::from_slice(&std::fs::read(status).ok()?).ok()?;
        doc["stages"]["tag"]["sha256"].as_str().map(str::to_owned)
    }

    fn wait_for(&mut self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                self.child.try_wait().expect("poll").is_none(),
                "weir exited while waiting for {what}"
            );
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.path().join("weir.log"));
                panic!(
                    "timed out waiting for {what}; log:\n{}",
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> tempfile::TempDir {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll") {
                let log = std::fs::read_to_string(self.path().join("weir.log"));
                assert!(status.success(), "{}", log.unwrap_or_default());
                break;
            }
            assert!(Instant::now() < deadline, "weir did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.dir.take().expect("running")
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn python_hot_swap_v1_to_v2_under_a_stream_loses_and_repeats_nothing() {
    // Built (and compiled, by another test or here) before the stream starts.
    let v1 = std::fs::read(py_modes()).expect("read v1");
    let v2 = std::fs::read(py_modes_v2()).expect("read v2");
    let (h1, h2) = (sha256_hex(&v1), sha256_hex(&v2));
    let mut run = Stream::start();
    // Cold, the first start compiles the 18 MB component (~30 s).
    run.wait_for("output from v1", Duration::from_secs(180), |r| {
        r.lines() > 500
    });
    assert_eq!(run.serving().as_deref(), Some(h1.as_str()));

    let plugins = run.path().join("plugins");
    std::fs::write(plugins.join(".pytag.wasm.tmp"), &v2).expect("write v2");
    std::fs::rename(plugins.join(".pytag.wasm.tmp"), plugins.join("pytag.wasm")).expect("swap");
    run.wait_for("v2 serving", Duration::from_secs(180), |r| {
        r.serving().as_deref() == Some(h2.as_str())
    });
    let at_swap = run.lines();
    run.wait_for("output from v2", Duration::from_secs(60), |r| {
        r.lines() > at_swap + 500
    });
    let dir = run.stop();

    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let mut per_partition: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for r in &out {
        let version = r["headers"]["py-version"].as_str().expect("py-version");
        let provenance = r["headers"]["weir.version.tag"]
            .as_str()
            .expect("provenance");
        let expected = if version == "v1" { &h1 } else { &h2 };
        assert_eq!(
            provenance,
            &expected[..12],
            "the code that ran is the version served: {r}"
        );
        per_partition
            .entry(r["source"]["partition"].as_i64().expect("partition"))
            .or_default()
            .push((
                r["source"]["offset"].as_i64().expect("offset"),
                version.to_owned(),
            ));
    }
    assert_eq!(per_partition.len(), 4);
    let (mut v1_seen, mut v2_seen) = (0, 0);
    for (p, events) in &per_partition {
        let offsets: Vec<i64> = events.iter().map(|(o, _)| *o).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert!(
            offsets == expected,
            "partition {p}: lost, repeated or reordered events"
        );
        // v1 then v2, never back.
        let first_v2 = events
            .iter()
            .position(|(_, v)| v == "v2")
            .unwrap_or(events.len());
        assert!(
            events[first_v2..].iter().all(|(_, v)| v == "v2"),
            "partition {p} went back to v1 after v2"
        );
        v1_seen += first_v2;
        v2_seen += events.len() - first_v2;
    }
    assert!(v1_seen > 0 && v2_seen > 0, "v1 {v1_seen}, v2 {v2_seen}");
    assert!(read_jsonl_or_empty(&dir.path().join("dlq.jsonl")).is_empty());
}
