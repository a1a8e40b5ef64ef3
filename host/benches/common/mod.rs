//! What the benchmarks share: building the plugins they run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the named plugin crates for wasm32-wasip2 (release, in the test
/// plugins' target folder); returns the path of each `.wasm`, in order.
pub fn build_plugins(names: &[&str]) -> Vec<PathBuf> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = ws.join("target").join("test-plugins");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&ws)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target);
    for name in names {
        cmd.args(["-p", name]);
    }
    let status = cmd.status().expect("running cargo");
    assert!(status.success(), "building the benchmark plugins failed");
    names
        .iter()
        .map(|n| {
            target.join(format!(
                "wasm32-wasip2/release/{}.wasm",
                n.replace('-', "_")
            ))
        })
        .collect()
}

/// Builds the named plugin crates and copies each into `dir/plugins` as
/// `<name>.wasm` (what a pipeline's `plugin = "<name>"` loads).
#[allow(dead_code)]
pub fn plugin_dir(dir: &Path, names: &[&str]) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir plugins");
    for (name, file) in names.iter().zip(build_plugins(names)) {
        std::fs::copy(file, plugins.join(format!("{name}.wasm"))).expect("copy plugin");
    }
}
