//! A bad pipeline file or plugin is a clear error naming the field (and its
//! line) before any event is read.

use std::path::Path;

use crate::support::{plugin_dir, weir};

/// Runs `weir run` on `toml`; returns stderr, asserting failure.
fn run_failing(dir: &Path, toml: &str) -> String {
    std::fs::write(dir.join("pipeline.toml"), toml).expect("write pipeline");
    std::fs::write(dir.join("in.jsonl"), "{\"id\":1}\n").expect("write input");
    let out = weir()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .output()
        .expect("run weir");
    assert!(!out.status.success(), "weir accepted a bad pipeline");
    assert!(
        !dir.join("out.jsonl").exists(),
        "no output may be written when the pipeline is refused"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD_TAIL: &str = r#"
[outputs.default]
type = "file"
path = "out.jsonl"
"#;

#[test]
fn unknown_field_in_a_stage_names_field_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n\n[[stages]]\nname = \"a\"\nplugin = \"upper\"\nparamz = 1\n{GOOD_TAIL}"
    );
    let err = run_failing(tmp.path(), &toml);
    assert!(err.contains("paramz"), "{err}");
    assert!(err.contains("pipeline.toml:8:"), "{err}");
}

#[test]
fn unknown_field_in_the_source_names_field_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let toml = format!("[source]\ntype = \"file\"\npaht = \"in.jsonl\"\n{GOOD_TAIL}");
    let err = run_failing(tmp.path(), &toml);
    assert!(err.contains("paht"), "{err}");
    assert!(err.contains("pipeline.toml:3:"), "{err}");
}

#[test]
fn wrong_type_names_field_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[batch]\nmax_events = \"many\"\n{GOOD_TAIL}"
    );
    let err = run_failing(tmp.path(), &toml);
    assert!(err.contains("max_events"), "{err}");
    assert!(err.contains("pipeline.toml:5:"), "{err}");
}

#[test]
fn a_missing_default_output_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let toml =
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[outputs.alerts]\ntype = \"stdout\"\n";
    let err = run_failing(tmp.path(), toml);
    assert!(err.contains("outputs") && err.contains("default"), "{err}");
}

#[test]
fn a_missing_plugin_file_names_the_stage_and_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[[stages]]\nname = \"enrich\"\nplugin = \"nope\"\n{GOOD_TAIL}"
    );
    let err = run_failing(tmp.path(), &toml);
    assert!(err.contains("enrich"), "{err}");
    assert!(err.contains("nope.wasm"), "{err}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("plugins");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("bogus.wasm"), b"definitely not wasm").expect("write");
    // A core module (not a component): the header of an empty module.
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").expect("write");
    // The magic, then a version that is neither a module's nor a component's.
    std::fs::write(dir.join("odd.wasm"), b"\0asm\x02\0\x07\0rest").expect("write");
    for (plugin, expect) in [
        ("bogus", "not WebAssembly"),
        ("core", "core WebAssembly module"),
        ("odd", "unknown WebAssembly binary version 02 00 07 00"),
    ] {
        let toml = format!(
            "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[[stages]]\nname = \"s\"\nplugin = \"{plugin}\"\n{GOOD_TAIL}"
        );
        let err = run_failing(tmp.path(), &toml);
        assert!(err.contains(expect), "{plugin}: {err}");
    }
}

/// An `init` that fails although the stage gives no params is not reported
/// as refusing params it was never given.
#[test]
fn an_init_error_without_params_says_no_params_were_given() {
    let tmp = tempfile::tempdir().expect("tempdir");
    plugin_dir(tmp.path(), &["hostile"]);
    let toml = format!(
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[[stages]]\nname = \"h\"\nplugin = \"hostile\"\n{GOOD_TAIL}"
    );
    let err = run_failing(tmp.path(), &toml);
    assert!(
        err.contains("init returned an error (the stage gives it no params)")
            && err.contains("missing field `mode`")
            && !err.contains("refused the stage params"),
        "{err}"
    );
}

#[test]
fn bad_params_are_refused_by_the_plugin_init() {
    let tmp = tempfile::tempdir().expect("tempdir");
    plugin_dir(tmp.path(), &["router"]);
    let toml = format!(
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[[stages]]\nname = \"r\"\nplugin = \"router\"\n[stages.params]\nthreshold = \"high\"\n{GOOD_TAIL}"
    );
    let err = run_failing(tmp.path(), &toml);
    assert!(err.contains("init refused"), "{err}");
    assert!(
        err.contains("threshold") || err.contains("invalid type"),
        "{err}"
    );
}
