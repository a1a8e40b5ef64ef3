//! Paths written in a pipeline file: relative ones are relative to the
//! file's folder, and are resolved once, when the file is loaded.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A path field that is shown as written (in event positions, logs and
/// messages) and opened as resolved.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(from = "PathBuf")]
pub struct ConfigPath {
    written: PathBuf,
    resolved: PathBuf,
}

impl From<PathBuf> for ConfigPath {
    fn from(written: PathBuf) -> Self {
        Self {
            resolved: written.clone(),
            written,
        }
    }
}

impl From<&Path> for ConfigPath {
    fn from(written: &Path) -> Self {
        written.to_path_buf().into()
    }
}

impl From<&str> for ConfigPath {
    fn from(written: &str) -> Self {
        PathBuf::from(written).into()
    }
}

impl ConfigPath {
    /// Resolves the path against `base_dir` (an absolute path stays as is).
    pub fn resolve(&mut self, base_dir: &Path) {
        self.resolved = resolve(base_dir, &self.written);
    }

    /// The path as the pipeline file wrote it.
    pub fn written(&self) -> &Path {
        &self.written
    }

    /// The path to open.
    pub fn resolved(&self) -> &Path {
        &self.resolved
    }
}

/// `path` resolved against `base_dir`.
pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths_only() {
        let mut p = ConfigPath::from("out/a.jsonl");
        assert_eq!(p.resolved(), Path::new("out/a.jsonl"));
        p.resolve(Path::new("/srv/pipe"));
        assert_eq!(p.written(), Path::new("out/a.jsonl"));
        assert_eq!(p.resolved(), Path::new("/srv/pipe/out/a.jsonl"));
        let mut abs = ConfigPath::from("/var/in.jsonl");
        abs.resolve(Path::new("/srv/pipe"));
        assert_eq!(abs.resolved(), Path::new("/var/in.jsonl"));
    }
}
