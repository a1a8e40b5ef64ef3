//! `weir plugin new | build | test | inspect` on good and bad files.

use crate::support::{output_of, plugin, weir, workspace};

#[test]
fn plugin_test_prints_outputs_routes_and_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"amount\": 5}\n{\"amount\": 5000}\nnot json\n{\"amount\": 7, \"poison\": true}\n",
    )
    .expect("write input");

    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(plugin("router"))
            .arg("--input")
            .arg(&input)
            .args(["--param", "threshold=100"]),
    );
    assert!(ok, "{err}");
    assert!(out.contains("line 1 -> default"), "{out}");
    assert!(out.contains("line 2 -> default"), "{out}");
    assert!(out.contains("line 2 -> alerts"), "{out}");
    assert!(!out.contains("line 1 -> alerts"), "{out}");
    assert!(out.contains("rejected line 3: invalid JSON"), "{out}");
    assert!(
        out.contains("3 inputs -> 4 outputs (alerts 1, default 3), 1 errors"),
        "{out}"
    );

    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(plugin("fail-some"))
            .arg("--input")
            .arg(&input),
    );
    assert!(ok, "{err}");
    assert!(out.contains("line 4 -> ERROR: poison"), "{out}");
    assert!(
        out.contains("3 inputs -> 2 outputs (default 2), 2 errors"),
        "{out}"
    );
}

#[test]
fn plugin_test_on_a_bad_file_fails_clearly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("bad.wasm");
    std::fs::write(&bad, b"not a plugin").expect("write");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(&input, "{}\n").expect("write");
    let (ok, _, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(&bad)
            .arg("--input")
            .arg(&input),
    );
    assert!(!ok);
    assert!(err.contains("not a WebAssembly component"), "{err}");
}

#[test]
fn inspect_shows_the_interface_and_verdict() {
    let (ok, out, err) = output_of(weir().args(["plugin", "inspect"]).arg(plugin("upper")));
    assert!(ok, "{err}");
    assert!(
        out.contains("exports:\n  weir:plugin/transformer@0.2.0"),
        "{out}"
    );
    assert!(
        out.contains("imports:\n  weir:plugin/types@0.2.0 (interface)"),
        "{out}"
    );
    assert!(
        out.contains("contract: weir:plugin@0.2.0 (packed batch, keyed state)"),
        "{out}"
    );
    assert!(out.contains("runs on this host: yes"), "{out}");

    // A plugin of the released 0.1.0 contract: linked beside 0.2.0.
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "inspect"])
            .arg(plugin("compat-v010")),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("contract: weir:plugin@0.1.0 (typed batch records)"),
        "{out}"
    );

    // An empty component: valid WebAssembly, but it exports nothing.
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").expect("write");
    let (ok, out, _) = output_of(weir().args(["plugin", "inspect"]).arg(&empty));
    assert!(!ok, "an empty component cannot run");
    assert!(out.contains("runs on this host: no"), "{out}");
    assert!(
        out.contains("transformer"),
        "the reason names the missing export: {out}"
    );

    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let (ok, out, _) = output_of(weir().args(["plugin", "inspect"]).arg(&core));
    assert!(!ok);
    assert!(out.contains("core WebAssembly module"), "{out}");
}

#[test]
fn new_scaffolds_a_plugin_that_builds_and_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "new", "my-enricher", "--dir"])
            .arg(tmp.path()),
    );
    assert!(ok, "{err}");
    assert!(out.contains("my-enricher"), "{out}");
    let crate_dir = tmp.path().join("my-enricher");
    assert!(crate_dir.join("Cargo.toml").is_file());

    // Refuses to overwrite, and refuses bad names.
    let (ok, _, err) = output_of(
        weir()
            .args(["plugin", "new", "my-enricher", "--dir"])
            .arg(tmp.path()),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = output_of(
        weir()
            .args(["plugin", "new", "Bad Name", "--dir"])
            .arg(tmp.path()),
    );
    assert!(!ok && err.contains("not a valid plugin name"), "{err}");

    let out_dir = tmp.path().join("plugins");
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "build"])
            .arg(&crate_dir)
            .arg("--out")
            .arg(&out_dir)
            // Share compiled dependencies with the other test plugins.
            .env("CARGO_TARGET_DIR", workspace().join("target/test-plugins")),
    );
    assert!(ok, "build failed: {err}");
    let wasm = out_dir.join("my-enricher.wasm");
    assert!(out.trim().ends_with("my-enricher.wasm"), "{out}");
    assert!(wasm.is_file());

    let (ok, out, err) = output_of(weir().args(["plugin", "inspect"]).arg(&wasm));
    assert!(ok, "{err}");
    assert!(out.contains("runs on this host: yes"), "{out}");

    let input = tmp.path().join("events.jsonl");
    std::fs::write(&input, "{\"amount\": 5}\n").expect("write");
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(&wasm)
            .arg("--input")
            .arg(&input),
    );
    assert!(ok, "{err}");
    assert!(out.contains("1 inputs -> 1 outputs"), "{out}");
}

/// `weir plugin test --model NAME=PATH` gives the plugin the host's model:
/// the scorer's scores are the linear test model's (sigmoid(w·x + b)).
#[test]
fn plugin_test_runs_a_plugin_that_calls_a_model() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(&input, "{\"x\": [1, 0, 0, 0]}\n{\"x\": [0, 0, 0, 0]}\n").expect("write");
    let model = workspace().join("tests/models/linear.onnx");
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(plugin("scorer"))
            .arg("--input")
            .arg(&input)
            .arg("--model")
            .arg(format!("linear={}", model.display())),
    );
    assert!(ok, "{err}");
    // make_models.py: w = [0.5, -1, 0.25, 2], b = 0.1.
    let score = |z: f64| 1.0 / (1.0 + (-z).exp());
    for (line, want) in [(1, score(0.6)), (2, score(0.1))] {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("line {line} -> default")))
            .unwrap_or_else(|| panic!("no output for line {line}: {out}"));
        let got: f64 = row
            .split("\"score\":")
            .nth(1)
            .and_then(|v| v.split([',', '}']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no score in {row}"));
        assert!((got - want).abs() < 1e-5, "line {line}: {got} vs {want}");
    }
    // Without the model, the call fails: each event is an error, not a crash.
    let (ok, out, err) = output_of(
        weir()
            .args(["plugin", "test"])
            .arg(plugin("scorer"))
            .arg("--input")
            .arg(&input),
    );
    assert!(ok, "{err}");
    assert!(out.contains("ERROR") && out.contains("linear"), "{out}");
}
