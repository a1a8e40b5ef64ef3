//! File → plugins → files, with routed outputs and dead letters checked
//! exactly.

use std::path::Path;

use serde_json::Value;

use crate::support::{Pipeline, file_table, plugin, plugin_dir, read_jsonl, weir, weir_run};

/// Writes the input: 12 transactions with known amounts; #3 and #8 are
/// poison; line 6 is not JSON at all.
fn write_input(path: &Path) {
    let mut lines = Vec::new();
    for i in 0..12 {
        if i == 6 {
            lines.push("this is not json".to_string());
            continue;
        }
        let amount = (i as f64) * 150.0;
        let poison = i == 3 || i == 8;
        lines.push(format!(
            r#"{{"id":{i},"amount":{amount},"poison":{poison}}}"#
        ));
    }
    std::fs::write(path, lines.join("\n") + "\n").expect("write input");
}

/// `in.jsonl` → `guard` (fail-some) → `route` (router, threshold 1000) →
/// `out/default.jsonl` and `out/alerts.jsonl`, dead letters in
/// `out/dlq.jsonl`.
fn pipeline(dir: &Path) -> Pipeline {
    Pipeline::new(dir)
        .top("name = \"it\"")
        .file_source("in.jsonl")
        .batch(4, 20)
        .stage("guard", "fail-some")
        .stage_with("route", "router", "[stages.params]\nthreshold = 1000\n")
        .file_output("default", "out/default.jsonl")
        .file_output("alerts", "out/alerts.jsonl")
        .dead_letter(Some(&file_table("out/dlq.jsonl")))
}

fn ids(records: &[Value]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r["value"]["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn routes_outputs_and_dead_letters_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["fail-some", "router"]);
    write_input(&dir.join("in.jsonl"));
    pipeline(dir).write(dir);

    let out = weir()
        .arg("run")
        .arg(dir.join("pipeline.toml"))
        .arg("--quiet")
        .output()
        .expect("run weir");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir failed: {stderr}");

    // Default: every valid, non-poison event, in input order, having passed
    // both stages.
    let default = read_jsonl(&dir.join("out/default.jsonl"));
    assert_eq!(ids(&default), vec![0, 1, 2, 4, 5, 7, 9, 10, 11]);
    for r in &default {
        assert_eq!(r["headers"]["seen-by"], "fail-some");
        assert_eq!(r["source"]["stream"], "in.jsonl");
    }
    // Line numbers are offsets: line 7 (index 6) is the bad line, so id 7 is
    // at offset 7.
    assert_eq!(default[5]["source"]["offset"], 7);

    // Alerts: amount > 1000 → ids 7 (1050), 9, 10, 11 (8 is poison).
    let alerts = read_jsonl(&dir.join("out/alerts.jsonl"));
    assert_eq!(ids(&alerts), vec![7, 9, 10, 11]);

    // Dead letters: the unparseable line (from the source) and the two
    // poison events (from the `guard` stage), each with reason and provenance.
    let dlq = read_jsonl(&dir.join("out/dlq.jsonl"));
    assert_eq!(dlq.len(), 3, "dead letters: {dlq:#?}");
    let source_reject = dlq
        .iter()
        .find(|r| r["headers"].get("weir.stage").is_none())
        .expect("the invalid line is dead-lettered");
    assert_eq!(source_reject["source"]["offset"], 6);
    let reason = source_reject["headers"]["weir.error"]
        .as_str()
        .expect("reason");
    assert!(
        reason.contains("invalid JSON") && reason.contains("line 7"),
        "{reason}"
    );

    let mut poison: Vec<&Value> = dlq
        .iter()
        .filter(|r| r["headers"].get("weir.stage").is_some())
        .collect();
    poison.sort_by_key(|r| r["source"]["offset"].as_i64());
    assert_eq!(poison.len(), 2);
    for (r, id) in poison.iter().zip([3, 8]) {
        assert_eq!(r["value"]["id"], id);
        assert_eq!(r["headers"]["weir.stage"], "guard");
        assert_eq!(r["headers"]["weir.plugin"], "fail-some");
        assert_eq!(r["headers"]["weir.source.offset"], id.to_string());
        assert_eq!(r["headers"]["weir.source.stream"], "in.jsonl");
        let version = r["headers"]["weir.plugin.version"]
            .as_str()
            .expect("version");
        assert_eq!(
            version,
            &crate::reload::sha256_hex(&std::fs::read(plugin("fail-some")).expect("read"))[..12],
            "the version id, as in `weir.version.<stage>`"
        );
        assert!(
            r["headers"]["weir.error"]
                .as_str()
                .expect("reason")
                .contains("poison")
        );
    }
}

#[test]
fn an_unknown_route_is_a_dead_letter_not_a_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["fail-some", "router"]);
    write_input(&dir.join("in.jsonl"));
    // The same pipeline without an `alerts` output: the router's alerts
    // cannot be delivered anywhere, so they are dead letters with the reason.
    pipeline(dir).without_output("alerts").write(dir);
    let out = weir()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .output()
        .expect("run weir");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ids(&read_jsonl(&dir.join("out/default.jsonl"))),
        vec![0, 1, 2, 4, 5, 7, 9, 10, 11]
    );
    let dlq = read_jsonl(&dir.join("out/dlq.jsonl"));
    let unrouted: Vec<i64> = dlq
        .iter()
        .filter(|r| {
            r["headers"]["weir.error"]
                .as_str()
                .is_some_and(|e| e.contains("`alerts`"))
        })
        .map(|r| r["value"]["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(unrouted, vec![7, 9, 10, 11]);
    assert!(dlq.iter().all(|r| r["headers"]["weir.error"].is_string()));
}

#[test]
fn stdin_to_stdout_through_a_plugin() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["upper"]);
    Pipeline::new(dir)
        .stage("up", "upper")
        .output("default", "type = \"stdout\"\nformat = \"value\"\n")
        .write(dir);
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start weir");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"{\"a\":\"x\"}\nnot json\n{\"b\":\"y\"}\n")
            .expect("write stdin");
    } // closing stdin ends the source
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"A\":\"X\"}\n{\"B\":\"Y\"}\n"
    );
    let dlq = read_jsonl(&dir.join("dlq.jsonl"));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["value"], "not json");
    assert_eq!(dlq[0]["source"]["stream"], "stdin");
    assert_eq!(dlq[0]["source"]["offset"], 1);
}

/// A plugin built against the released contract `weir:plugin@0.1.0` (bare
/// wit-bindgen, `@0.1.0` import and export names) runs beside an SDK plugin
/// built against 0.1.1 in one pipeline.
#[test]
fn a_plugin_built_against_contract_0_1_0_still_runs() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["upper", "compat-v010"]);
    Pipeline::new(dir)
        .stage("up", "upper")
        .stage("old", "compat-v010")
        .output("default", "type = \"stdout\"\nformat = \"value\"\n")
        .write(dir);
    let mut child = weir_run(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start weir");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"{\"a\":\"x\"}\n{\"b\":\"y\"}\n")
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(out.status.success(), "{log}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "v010:{\"A\":\"X\"}\nv010:{\"B\":\"Y\"}\n"
    );
    assert!(log.contains("compat-v010 ready"), "{log}");
}

/// `--log-format json`: a plugin's log line carries the stage, the plugin,
/// and (from the batch's span) the version that served it and the source
/// partitions of the batch.
#[test]
fn json_logs_carry_stage_plugin_version_and_partition() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["hostile"]);
    Pipeline::new(dir)
        .stage_with("noisy", "hostile", "[stages.params]\nmode = \"stdio\"\n")
        .write(dir);
    let mut child = weir_run(dir)
        .args(["--log-format", "json"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start weir");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{\"id\":7}\n")
        .expect("write stdin");
    assert!(child.wait().expect("wait").success());
    let log = std::fs::read_to_string(dir.join("weir.log")).expect("log");
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "stdout line 7")
        .unwrap_or_else(|| panic!("no plugin line in the log:\n{log}"));
    assert_eq!(line["fields"]["stage"], "noisy", "{line:#}");
    assert_eq!(line["fields"]["plugin"], "hostile", "{line:#}");
    let wasm = std::fs::read(dir.join("plugins/hostile.wasm")).expect("plugin");
    let version = crate::reload::sha256_hex(&wasm);
    assert_eq!(line["span"]["version"], version[..12], "{line:#}");
    assert_eq!(line["span"]["partitions"], "0", "{line:#}");
}
