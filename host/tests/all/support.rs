//! Shared test fixtures: the test plugins are built from source as part of
//! the test run (no prebuilt `.wasm` is checked in).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Plugins built for the tests: shipped ones and test fixtures.
const PLUGINS: &[&str] = &[
    "json-filter",
    "pii-redact",
    "upper",
    "fail-some",
    "router",
    "tagger",
    "batch-count",
];

fn target_dir() -> PathBuf {
    workspace().join("target").join("test-plugins")
}

/// Builds every test plugin once per test process; returns the folder of
/// the built `.wasm` files.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
            .env("CARGO_TARGET_DIR", target_dir());
        for p in PLUGINS {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().expect("running cargo to build the test plugins");
        assert!(status.success(), "building the test plugins failed");
        target_dir().join("wasm32-wasip2").join("release")
    })
}

/// The built component of plugin `name` (crate name).
pub fn plugin(name: &str) -> PathBuf {
    let path = built().join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "no built plugin at {}", path.display());
    path
}

/// A fresh plugin folder holding `<name>.wasm` for each name.
pub fn plugin_dir(into: &Path, names: &[&str]) -> PathBuf {
    let dir = into.join("plugins");
    std::fs::create_dir_all(&dir).expect("create plugin dir");
    for name in names {
        std::fs::copy(plugin(name), dir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    dir
}

/// The `weir` binary built for this test run.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "info");
    cmd
}

/// Reads a JSON-lines file into values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}
