//! `weir plugin new --lang python|js` scaffolds that build as is (and whose
//! own unit tests pass), and `weir plugin test | inspect` on Python and JS
//! components.

use std::path::Path;
use std::process::Command;

use super::{build_guest, json_filter_js, py_modes, weir_plugin};
use crate::support::{output_of, weir, workspace};

fn new_plugin(dir: &Path, name: &str, lang: &str) -> std::path::PathBuf {
    let (ok, _, err) = output_of(
        weir()
            .args(["plugin", "new", name, "--lang", lang, "--dir"])
            .arg(dir),
    );
    assert!(ok, "{err}");
    dir.join(name)
}

/// A component file: the WebAssembly magic and the component layer.
fn assert_component(path: &Path) {
    let bytes = std::fs::read(path).expect("read component");
    assert_eq!(&bytes[..4], b"\0asm", "{}", path.display());
    assert_eq!(
        &bytes[6..8],
        &[0x01, 0x00],
        "a component, not a core module"
    );
}

#[test]
fn python_and_js_scaffolds_build_as_is_and_their_tests_pass() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    let py = new_plugin(dir, "hello-py", "python");
    for f in ["pyproject.toml", "app.py", "test_app.py"] {
        assert!(py.join(f).is_file(), "{f} scaffolded");
    }
    let tests = Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .current_dir(&py)
        .env("PYTHONPATH", workspace().join("plugin-sdk/python"))
        .output()
        .expect("run python3 -m unittest");
    let report = String::from_utf8_lossy(&tests.stderr);
    assert!(
        tests.status.success() && report.contains("Ran 2 tests"),
        "{report}"
    );
    let wasm = build_guest(&py, &dir.join("out"), None);
    assert_eq!(wasm, dir.join("out/hello-py.wasm"));
    assert_component(&wasm);

    let js = new_plugin(dir, "hello-js", "js");
    for f in ["package.json", "index.js", "index.test.js"] {
        assert!(js.join(f).is_file(), "{f} scaffolded");
    }
    let install = Command::new("npm")
        .args([
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&js)
        .output()
        .expect("run npm install");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let tests = Command::new("node")
        .arg("--test")
        .current_dir(&js)
        .output()
        .expect("run node --test");
    let report = String::from_utf8_lossy(&tests.stdout);
    assert!(
        tests.status.success() && report.contains("# pass 2") && report.contains("# fail 0"),
        "{report}"
    );
    let wasm = build_guest(&js, &dir.join("out"), None);
    assert_eq!(wasm, dir.join("out/hello-js.wasm"));
    assert_component(&wasm);

    // A folder that is no plugin, and a bad name, are refused clearly.
    let (ok, _, err) = output_of(weir_plugin().arg("build").arg(dir));
    assert!(!ok && err.contains("is not a plugin folder"), "{err}");
    let (ok, _, err) = output_of(
        weir_plugin()
            .args(["new", "Bad Name", "--lang", "python", "--dir"])
            .arg(dir),
    );
    assert!(!ok && err.contains("not a valid plugin name"), "{err}");
}

#[test]
fn weir_plugin_test_and_inspect_work_on_a_python_component() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"amount\": 5}\n{\"amount\": 5000}\nnot json\n{\"amount\": \"x\"}\n{\"drop\": true}\n",
    )
    .expect("write input");
    let (ok, out, err) = output_of(
        weir_plugin()
            .arg("test")
            .arg(py_modes())
            .arg("--input")
            .arg(&input)
            .args(["--param", "mode=route", "--param", "threshold=100"]),
    );
    assert!(ok, "{err}");
    assert!(out.contains("line 1 -> default"), "{out}");
    assert!(out.contains("line 2 -> alerts"), "{out}");
    assert!(!out.contains("line 1 -> alerts"), "{out}");
    assert!(out.contains("rejected line 3: invalid JSON"), "{out}");
    assert!(
        out.contains("line 4 -> ERROR: TypeError: '>' not supported"),
        "{out}"
    );
    assert!(!out.contains("line 5 ->"), "dropped: {out}");
    assert!(
        out.contains("4 inputs -> 3 outputs (alerts 1, default 2), 2 errors"),
        "{out}"
    );

    let (ok, out, err) = output_of(weir_plugin().arg("inspect").arg(py_modes()));
    assert!(ok, "{err}");
    assert!(out.contains("weir:plugin/transformer@0.2.0"), "{out}");
    assert!(
        out.contains("runs on this host: yes (world weir:plugin/transform)"),
        "{out}"
    );

    // Bad params refuse the plugin with the field named.
    let (ok, _, err) = output_of(
        weir_plugin()
            .arg("test")
            .arg(py_modes())
            .arg("--input")
            .arg(&input)
            .args(["--param", "mode=dance"]),
    );
    assert!(!ok, "bad params must fail");
    assert!(
        err.contains("invalid params: `mode`: expected one of"),
        "{err}"
    );
}

#[test]
fn weir_plugin_test_and_inspect_work_on_a_js_component() {
    let (ok, out, err) = output_of(weir_plugin().arg("inspect").arg(json_filter_js()));
    assert!(ok, "{err}");
    assert!(
        out.contains("runs on this host: yes (world weir:plugin/transform)"),
        "{out}"
    );
    assert!(out.contains("weir:plugin/transformer@0.2.0"), "{out}");
    // Built with every optional WASI feature off: it imports the weir world
    // and nothing else.
    let imports: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "imports:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(!imports.is_empty(), "{out}");
    assert!(
        imports.iter().all(|l| l.trim().starts_with("weir:plugin/")),
        "no WASI: {imports:?}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"amount\": 5}\n{\"id\": 2, \"amount\": 5000}\n[1, 2]\n",
    )
    .expect("write input");
    let (ok, out, err) = output_of(
        weir_plugin()
            .arg("test")
            .arg(json_filter_js())
            .arg("--input")
            .arg(&input)
            .arg("--params-json")
            .arg(r#"{"where": [{"field": "amount", "op": "gt", "value": 100}], "keep": ["id"], "route": "alerts"}"#),
    );
    assert!(ok, "{err}");
    assert!(out.contains("line 1 -> default"), "{out}");
    assert!(
        out.contains("line 2 -> alerts: {\"key\":null,\"value\":{\"id\":2}"),
        "{out}"
    );
    assert!(
        out.contains("line 3 -> default"),
        "no match: unchanged on the default output: {out}"
    );
    assert!(
        out.contains("3 inputs -> 3 outputs (alerts 1, default 2), 0 errors"),
        "{out}"
    );
}
