//! Native inference through `weir run`: the `scorer` plugin calls the host's
//! ONNX models (`tests/models/*.onnx`, written by
//! `tests/models/make_models.py`). ONNX Runtime is found as `weir run` finds
//! it: `ORT_DYLIB_PATH` or the venv of `scripts/setup.sh`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Pipeline, plugin_dir, read_jsonl, weir, weir_run, workspace};

/// The weights `make_models.py` uses.
const W1: [f64; 4] = [0.5, -1.0, 0.25, 2.0];
const B1: f64 = 0.1;
const W2: [f64; 4] = [-0.75, 0.5, 1.5, -0.5];
const B2: f64 = -0.2;

fn model(name: &str) -> PathBuf {
    workspace().join("tests/models").join(name)
}

fn sigmoid(w: &[f64; 4], b: f64, x: &[f64]) -> f64 {
    let z: f64 = w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b;
    1.0 / (1.0 + (-z).exp())
}

fn x_of(i: usize) -> [f64; 4] {
    let t = i as f64;
    [
        t * 0.1 - 2.0,
        1.0 - t * 0.05,
        (t * 0.7).sin(),
        0.25 * (t % 7.0) - 0.5,
    ]
}

fn event(i: usize) -> String {
    let x = x_of(i);
    format!(r#"{{"id":{i},"x":[{},{},{},{}]}}"#, x[0], x[1], x[2], x[3])
}

/// A pipeline: the `[source]` body `source`, the scorer stage with
/// `params`, the `models` tables.
fn pipeline(dir: &Path, source: &str, params: &str, models: &str) {
    plugin_dir(dir, &["scorer"]);
    Pipeline::new(dir)
        .default_cache_dir()
        .top("name = \"inf\"")
        .source(source)
        .batch(16, 5)
        .stage_with("score", "scorer", &format!("[stages.params]\n{params}\n"))
        .tables("[reload]\ndebounce_ms = 50\npoll_interval_ms = 20\n")
        .tables(&format!("{models}\n"))
        .write(dir);
}

fn run_to_end(dir: &Path) -> (bool, String) {
    let out = weir()
        .arg("run")
        .arg(dir.join("pipeline.toml"))
        .arg("--quiet")
        .output()
        .expect("run weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn linear_model(path: &Path) -> String {
    format!("[models.linear]\npath = \"{}\"\n", path.display())
}

#[test]
fn scores_match_numpy_sigmoid_end_to_end_and_bad_events_are_dead_letters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let n = 200;
    let mut lines: Vec<String> = (0..n).map(event).collect();
    lines[17] = r#"{"id":17,"y":1}"#.into(); // no "x": fails alone
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
    pipeline(
        dir,
        "type = \"file\"\npath = \"in.jsonl\"\n",
        "",
        &linear_model(&model("linear.onnx")),
    );
    let (ok, stderr) = run_to_end(dir);
    assert!(ok, "weir failed: {stderr}");
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(out.len(), n - 1);
    for r in &out {
        let id = r["value"]["id"].as_u64().expect("id") as usize;
        let score = r["value"]["score"].as_f64().expect("score");
        let want = sigmoid(&W1, B1, &x_of(id));
        assert!((score - want).abs() < 1e-5, "event {id}: {score} vs {want}");
    }
    let dlq = read_jsonl(&dir.join("dlq.jsonl"));
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    assert_eq!(dlq[0]["value"]["id"], 17);
    let reason = dlq[0]["headers"]["weir.error"].as_str().expect("reason");
    assert!(reason.contains("no \"x\" array"), "{reason}");
}

#[test]
fn a_shape_mismatch_sends_the_events_to_the_dead_letters_and_the_host_keeps_going() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let lines: Vec<String> = (0..40).map(event).collect();
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
    // Three features per row for a model that takes four.
    pipeline(
        dir,
        "type = \"file\"\npath = \"in.jsonl\"\n",
        "width = 3",
        &linear_model(&model("linear.onnx")),
    );
    let (ok, stderr) = run_to_end(dir);
    assert!(ok, "weir failed: {stderr}");
    assert!(read_jsonl(&dir.join("out.jsonl")).is_empty());
    let dlq = read_jsonl(&dir.join("dlq.jsonl"));
    assert_eq!(dlq.len(), 40);
    for r in &dlq {
        let reason = r["headers"]["weir.error"].as_str().expect("reason");
        assert!(
            reason.contains("invalid model input")
                && reason.contains(", 3], the model wants [-1, 4]")
                && reason.contains("features"),
            "{reason}"
        );
        assert_eq!(r["headers"]["weir.stage"], "score");
    }
}

/// Start-up errors: each names the field and what is wrong; weir exits 1.
#[test]
fn loading_errors_are_clear_startup_errors() {
    let not_onnx = model("not_onnx.onnx");
    let cases: Vec<(String, &[&str])> = vec![
        (
            "[onnxruntime]\nlibrary = \"/nonexistent/libonnxruntime.so.1.31.1\"\n".to_owned()
                + &linear_model(&model("linear.onnx")),
            &[
                "onnxruntime.library",
                "/nonexistent/libonnxruntime.so.1.31.1",
                "pip install onnxruntime==1.31.1",
            ],
        ),
        (
            linear_model(&model("absent.onnx")),
            &["models.linear.path", "absent.onnx", "cannot read"],
        ),
        (
            linear_model(&not_onnx),
            &[
                "models.linear.path",
                "not_onnx.onnx",
                "not a loadable ONNX model",
            ],
        ),
        (
            linear_model(&model("linear.onnx")) + "inputs = [\"pixels\"]\n",
            &["models.linear.inputs", "no input named `pixels`"],
        ),
        (
            linear_model(&model("linear.onnx")) + "max_batch = 0\n",
            &["models.linear.max_batch", "must be between 1"],
        ),
        (
            linear_model(&model("linear.onnx")) + "batch = 4\n",
            &["unknown field `batch`"],
        ),
    ];
    for (models, wants) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        std::fs::write(dir.join("in.jsonl"), event(0) + "\n").expect("write input");
        pipeline(dir, "type = \"file\"\npath = \"in.jsonl\"\n", "", &models);
        let (ok, stderr) = run_to_end(dir);
        assert!(!ok, "weir accepted:\n{models}");
        for want in wants {
            assert!(
                stderr.contains(want),
                "{want:?} missing for\n{models}\nstderr:\n{stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

struct Live {
    dir: tempfile::TempDir,
    child: Child,
    stdin: Option<ChildStdin>,
    sent: usize,
}

impl Live {
    fn out(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("out.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn status(&self) -> Value {
        std::fs::read(self.dir.path().join(".weir-cache/status-inf.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    fn send(&mut self, n: usize) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        for _ in 0..n {
            writeln!(stdin, "{}", event(self.sent)).expect("write event");
            self.sent += 1;
        }
        stdin.flush().expect("flush");
        let sent = self.sent;
        self.wait_for(|l| l.out().len() == sent, "all events scored");
    }

    fn wait_for(&mut self, done: impl Fn(&Self) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(
                self.child.try_wait().expect("poll").is_none(),
                "weir exited while waiting for {what}"
            );
            if Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("weir.log")).unwrap_or_default();
                panic!(
                    "timed out waiting for {what}; status {:#}\nlog:\n{log}",
                    self.status()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces the model file atomically (write aside, rename in).
fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join(".linear.onnx.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join("linear.onnx")).expect("rename");
}

#[test]
fn model_swap_while_running_switches_outputs_refuses_corrupt_files_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    std::fs::copy(model("linear.onnx"), models.join("linear.onnx")).expect("copy");
    pipeline(
        dir,
        "type = \"stdin\"\n",
        "",
        "[models.linear]\npath = \"models/linear.onnx\"\n",
    );
    let mut child = weir_run(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start weir");
    let stdin = child.stdin.take();
    let mut live = Live {
        dir: tmp,
        child,
        stdin,
        sent: 0,
    };
    live.wait_for(
        |l| l.status()["models"]["linear"]["version"].is_string(),
        "the model loaded",
    );
    let v1 = live.status()["models"]["linear"]["version"].clone();

    live.send(50);
    let v2_bytes = std::fs::read(model("linear_v2.onnx")).expect("v2");
    install(&models, &v2_bytes);
    live.wait_for(|l| l.status()["models"]["linear"]["swaps"] == 1, "the swap");
    let v2 = live.status()["models"]["linear"]["version"].clone();
    assert_ne!(v1, v2);
    live.send(50);

    install(&models, b"corrupt: not a model");
    live.wait_for(
        |l| l.status()["models"]["linear"]["refusals"] == 1,
        "the refusal",
    );
    assert_eq!(live.status()["models"]["linear"]["version"], v2);
    live.send(50);

    // End of input: weir drains and exits cleanly.
    live.stdin = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = live.child.try_wait().expect("poll") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "weir did not stop at end of input"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(live.dir.path().join("weir.log")).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert!(log.contains("new model file refused"), "{log}");

    let out = read_jsonl(&live.dir.path().join("out.jsonl"));
    assert_eq!(out.len(), 150, "nothing lost or repeated");
    for (k, r) in out.iter().enumerate() {
        let id = r["value"]["id"].as_u64().expect("id") as usize;
        assert_eq!(id, k, "in order");
        let (w, b) = if id < 50 { (&W1, B1) } else { (&W2, B2) };
        let score = r["value"]["score"].as_f64().expect("score");
        let want = sigmoid(w, b, &x_of(id));
        assert!((score - want).abs() < 1e-5, "event {id}: {score} vs {want}");
    }
    assert!(read_jsonl(&live.dir.path().join("dlq.jsonl")).is_empty());
}

/// The models' metrics reach the admin endpoint's `/metrics`: rows, calls,
/// batch sizes, latency and the prediction histogram agree with the run.
#[test]
fn inference_metrics_on_the_admin_endpoint_match_the_run() {
    use crate::metrics::{free_port, get, parse, wait_for};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let n = 300;
    let mut lines: Vec<String> = (0..n).map(event).collect();
    lines[5] = r#"{"id":5}"#.into(); // no "x": an error before inference
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
    let port = free_port();
    let admin = format!("[admin]\naddress = \"127.0.0.1:{port}\"\nlinger_secs = 60\n");
    pipeline(
        dir,
        "type = \"file\"\npath = \"in.jsonl\"\n",
        "",
        &format!("{}\n{admin}", linear_model(&model("linear.onnx"))),
    );
    let mut child = weir_run(dir).spawn().expect("start weir");
    let rows = "weir_inference_rows_total{model=\"linear\"}";
    let mut m = Default::default();
    wait_for("all rows scored", Duration::from_secs(120), || {
        m = get(port, "/metrics")
            .map(|(_, body)| parse(&body))
            .unwrap_or_default();
        m.get(rows).copied() == Some((n - 1) as f64)
            && m.get("weir_output_events_total{output=\"default\"}")
                .copied()
                == Some((n - 1) as f64)
    });
    let _ = child.kill();
    let _ = child.wait();
    let at = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no sample {k}"));
    let calls = at("weir_inference_calls_total{model=\"linear\"}");
    assert!(calls >= 1.0 && calls <= (n - 1) as f64, "calls {calls}");
    assert_eq!(
        at("weir_inference_batch_rows_sum{model=\"linear\"}"),
        (n - 1) as f64
    );
    assert!(at("weir_inference_batch_rows_count{model=\"linear\"}") >= 1.0);
    assert_eq!(
        at("weir_inference_latency_seconds_count{model=\"linear\"}"),
        calls
    );
    assert_eq!(
        at("weir_model_prediction_count{model=\"linear\"}"),
        (n - 1) as f64
    );
    let mean = at("weir_model_prediction_sum{model=\"linear\"}") / (n - 1) as f64;
    let want: f64 = (0..n)
        .filter(|&i| i != 5)
        .map(|i| sigmoid(&W1, B1, &x_of(i)))
        .sum::<f64>()
        / (n - 1) as f64;
    assert!(
        (mean - want).abs() < 1e-4,
        "mean prediction {mean} vs {want}"
    );
    let info = m
        .iter()
        .filter(|(k, v)| k.starts_with("weir_model_info{") && **v == 1.0)
        .count();
    assert_eq!(info, 1, "one served version of the model");
}
