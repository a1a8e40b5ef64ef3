//! Rust plugins: a crate depending on `weir-sdk`, built by cargo for
//! wasm32-wasip2 (release); its WIT comes from the SDK.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::plan::{Scaffold, toml_name};

/// The files of a new Rust plugin crate.
pub const SCAFFOLD: &Scaffold = scaffold!(
    "rust": ["Cargo.toml", "src/lib.rs"],
    gitignore: "/target\n"
);

/// Makes sure the wasm32-wasip2 standard library is installed.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2") => Ok(()),
        Ok(_) => {
            let status = std::process::Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .status()
                .context("running rustup target add wasm32-wasip2")?;
            if !status.success() {
                bail!("`rustup target add wasm32-wasip2` failed");
            }
            Ok(())
        }
        // No rustup: trust that the toolchain has the target; cargo says if not.
        Err(_) => Ok(()),
    }
}

/// Builds the crate in `dir`; returns the component's path (copied into
/// `out` as `<crate-name>.wasm` when given).
pub fn build(dir: &Path, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("no plugin crate at {}", dir.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", manifest.display()))?;
    let name = toml_name(&doc, "package", &manifest)?;
    let output =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .arg("build")
            .arg("--release")
            .args([
                "--target",
                "wasm32-wasip2",
                "--message-format",
                "json-render-diagnostics",
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build failed for {}", dir.display());
    }
    let lib_name = name.replace('-', "_");
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || msg["target"]["name"].as_str() != Some(lib_name.as_str())
        {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    wasm = Some(PathBuf::from(f));
                }
            }
        }
    }
    let wasm = wasm.with_context(|| {
        format!("cargo built no .wasm for `{name}`: is its crate-type \"cdylib\"?")
    })?;
    match out {
        Some(out) => {
            std::fs::create_dir_all(out)?;
            let dest = out.join(format!("{name}.wasm"));
            // Copy then rename, so a watching host never sees half a file.
            let tmp = out.join(format!(".{name}.wasm.tmp"));
            std::fs::copy(&wasm, &tmp)?;
            std::fs::rename(&tmp, &dest)?;
            Ok(dest)
        }
        None => Ok(wasm),
    }
}
