//! Built guest components, cached by the hash of everything that goes into
//! them, under `$WEIR_CACHE/builds` (default `~/.cache/weir/builds`).
//!
//! A Python component takes ~30 s to build and a JS one 20-60 s; rebuilding
//! an unchanged plugin (the test run does it every time) is then a copy.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::super::home::user_cache_dir;
use super::plan::BuildPlan;

/// Folders and files that are never inputs of a build.
fn skipped(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "target" | "node_modules" | "__pycache__" | "build" | "dist"
        )
        || name.ends_with(".wasm")
        || name.ends_with(".pyc")
}

/// Every file under `dir` (sorted, relative paths), minus the skipped ones.
pub fn source_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if skipped(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Copies the source files of `from` into `to`.
pub fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    for rel in source_files(from)? {
        let dest = to.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&rel), &dest)
            .with_context(|| format!("copying {}", from.join(&rel).display()))?;
    }
    Ok(())
}

/// The cache key of a plan: a SHA-256 over its toolchain, world and the
/// names and contents of all its inputs.
pub fn key(plan: &BuildPlan) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"weir-guest-build-1");
    field(plan.lang.name().as_bytes());
    field(plan.toolchain.as_bytes());
    field(plan.world.as_bytes());
    field(plan.name.as_bytes());
    for (label, dir) in &plan.inputs {
        field(label.as_bytes());
        for rel in source_files(dir)? {
            field(rel.to_string_lossy().as_bytes());
            let bytes = std::fs::read(dir.join(&rel))
                .with_context(|| format!("reading {}", dir.join(&rel).display()))?;
            field(&bytes);
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn cache_dir() -> PathBuf {
    std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(user_cache_dir)
        .join("builds")
}

/// Writes `bytes`' file at `dest` atomically (a watching host never sees
/// half a file).
fn install(from: &Path, dest: &Path) -> anyhow::Result<()> {
    let dir = dest.parent().context("the output path has no folder")?;
    std::fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::copy(from, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

/// Builds `plan` into `dest`, or copies the cached component of the same
/// inputs.
pub fn build(plan: &BuildPlan, dest: &Path) -> anyhow::Result<()> {
    let key = key(plan)?;
    let cached = cache_dir().join(format!("{key}.wasm"));
    if cached.is_file() {
        eprintln!(
            "weir: {} ({}) unchanged: using the cached build {}",
            plan.name,
            plan.lang.name(),
            cached.display()
        );
        return install(&cached, dest);
    }
    eprintln!(
        "weir: building {} ({}, world {}, {})",
        plan.name,
        plan.lang.name(),
        plan.world,
        plan.toolchain
    );
    let started = std::time::Instant::now();
    let scratch = tempfile::tempdir().context("a scratch folder for the build")?;
    let built = scratch.path().join("plugin.wasm");
    (plan.run)(&built)?;
    eprintln!(
        "weir: built {} in {:.1} s",
        plan.name,
        started.elapsed().as_secs_f64()
    );
    // The cache is an optimization: failing to fill it is not an error.
    if let Err(e) = install(&built, &cached) {
        eprintln!(
            "weir: could not cache the build in {}: {e:#}",
            cached.display()
        );
    }
    install(&built, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path) -> BuildPlan {
        BuildPlan {
            name: "p".into(),
            lang: super::super::plan::Lang::Python,
            world: "transform".into(),
            inputs: vec![("plugin".into(), dir.to_path_buf())],
            toolchain: "t 1".into(),
            run: Box::new(|_| Ok(())),
        }
    }

    #[test]
    fn the_key_follows_sources_and_ignores_build_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("app.py"), "x = 1").unwrap();
        let first = key(&plan(dir)).unwrap();
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("target/p.wasm"), "built").unwrap();
        std::fs::create_dir_all(dir.join("__pycache__")).unwrap();
        std::fs::write(dir.join("__pycache__/app.pyc"), "c").unwrap();
        assert_eq!(key(&plan(dir)).unwrap(), first);
        std::fs::write(dir.join("app.py"), "x = 2").unwrap();
        assert_ne!(key(&plan(dir)).unwrap(), first);
        let mut other = plan(dir);
        other.world = "transform-with-inference".into();
        assert_ne!(key(&other).unwrap(), key(&plan(dir)).unwrap());
    }
}
