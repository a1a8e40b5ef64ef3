//! The pipeline's version board: which plugin version each stage serves,
//! which version each model serves, and the recent reloads (swaps,
//! refusals, deletions). `weir status` prints it, the status page and
//! `/metrics` read it.
//!
//! The board is written from three sides: the stage threads (a swap took
//! effect), the plugin reloader and the model registry (a version was
//! prepared, refused, deleted). The stage threads only update it in memory
//! and mark it dirty; the status file is written off the data path, by
//! [`VersionBoard::flush`] (the reloader calls it between changes) and by the
//! control-plane updates themselves.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::event::now_ms;

/// One entry of the reload log.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReloadEvent {
    pub at_ms: i64,
    /// `loaded` (at start), `prepared` (ready, waiting for a batch boundary),
    /// `swapped` (serving), `refused`, `deleted`, `unchanged`.
    pub outcome: String,
    pub stage: Option<String>,
    pub plugin: String,
    pub file: String,
    pub version: Option<String>,
    pub reason: Option<String>,
}

/// The version a stage serves.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StageVersion {
    pub plugin: String,
    /// The version id (the first 12 hex digits of `sha256`).
    pub version: String,
    /// The SHA-256 of the `.wasm` file served.
    pub sha256: String,
    pub since_ms: i64,
    pub swaps: u64,
}

/// A model swap or refusal.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModelEvent {
    pub at_ms: i64,
    /// The new file's version (sha256), when it could be read.
    pub version: Option<String>,
    /// Why it was refused; for a swap, the version it replaced.
    pub detail: String,
}

/// One model as the board shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModelStatus {
    pub file: String,
    /// sha256 of the file being served.
    pub version: String,
    pub since_ms: i64,
    pub swaps: u64,
    pub last_swap: Option<ModelEvent>,
    pub refusals: u64,
    pub last_refusal: Option<ModelEvent>,
    /// The file was deleted; the last good version keeps serving.
    pub file_deleted: bool,
}

/// What the board shows, at one moment (the status file's content).
#[derive(Clone, Debug, Default, Serialize)]
pub struct VersionsSnapshot {
    pub stages: BTreeMap<String, StageVersion>,
    /// The pipeline's models (`[models.*]`): versions, last swap/refusal.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelStatus>,
    pub swaps: u64,
    pub refusals: u64,
    pub recent: Vec<ReloadEvent>,
}

/// How many reload events the board keeps.
const LOG_LEN: usize = 100;

#[derive(Default)]
struct Board {
    stages: BTreeMap<String, StageVersion>,
    models: BTreeMap<String, ModelStatus>,
    swaps: u64,
    refusals: u64,
    recent: VecDeque<ReloadEvent>,
}

impl Board {
    fn log(&mut self, event: ReloadEvent) {
        if self.recent.len() == LOG_LEN {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }
}

/// Loaded versions and recent reloads. Share it behind an `Arc`.
pub struct VersionBoard {
    board: Mutex<Board>,
    /// Changed since the status file was last written.
    dirty: AtomicBool,
    /// Where the board is written as JSON (if anywhere).
    file: Option<PathBuf>,
    /// Held from snapshot to rename: the last file written is always the
    /// latest state.
    writing: Mutex<()>,
}

impl VersionBoard {
    /// A board written to `file` (as JSON) when it changes.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            board: Mutex::default(),
            dirty: AtomicBool::new(false),
            file,
            writing: Mutex::new(()),
        }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> VersionsSnapshot {
        let board = self.board();
        VersionsSnapshot {
            stages: board.stages.clone(),
            models: board.models.clone(),
            swaps: board.swaps,
            refusals: board.refusals,
            recent: board.recent.iter().cloned().collect(),
        }
    }

    /// A stage now serves `plugin` at `version` (`swapped`: replacing another
    /// version). Cheap, for the stage thread: the file is written later, by
    /// [`VersionBoard::flush`].
    /// `sha256`: the content hash of the version now serving.
    pub fn serving(&self, stage: &str, plugin: &str, sha256: &str, swapped: bool) {
        let version = crate::plugin::version_id(sha256);
        let mut board = self.board();
        let swaps = board.stages.get(stage).map_or(0, |s| s.swaps) + u64::from(swapped);
        board.stages.insert(
            stage.to_owned(),
            StageVersion {
                plugin: plugin.to_owned(),
                version: version.to_owned(),
                sha256: sha256.to_owned(),
                since_ms: now_ms(),
                swaps,
            },
        );
        board.swaps += u64::from(swapped);
        board.log(ReloadEvent {
            at_ms: now_ms(),
            plugin: plugin.to_owned(),
            file: String::new(),
            outcome: if swapped { "swapped" } else { "loaded" }.into(),
            version: Some(version.to_owned()),
            stage: Some(stage.to_owned()),
            reason: None,
        });
        drop(board);
        self.dirty.store(true, Relaxed);
    }

    /// A reload event (prepared, unchanged, deleted); writes the file.
    pub fn record(&self, event: ReloadEvent) {
        self.board().log(event);
        self.write();
    }

    /// A new version was refused; writes the file.
    pub fn refused(&self, event: ReloadEvent) {
        let mut board = self.board();
        board.refusals += 1;
        board.log(event);
        drop(board);
        self.write();
    }

    /// The models' status changed (loaded, swapped, refused, deleted);
    /// writes the file.
    pub fn set_models(&self, models: BTreeMap<String, ModelStatus>) {
        self.board().models = models;
        self.write();
    }

    /// Writes the file if something changed since it was last written.
    pub fn flush(&self) {
        if self.dirty.load(Relaxed) {
            self.write();
        }
    }

    fn write(&self) {
        let Some(path) = &self.file else { return };
        let _writing = self.writing.lock();
        self.dirty.store(false, Relaxed);
        let Ok(json) = serde_json::to_vec_pretty(&self.snapshot()) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, json))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not write the status file");
        }
    }
}

impl Drop for VersionBoard {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &std::path::Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("status file")).expect("json")
    }

    #[test]
    fn stage_updates_wait_for_a_flush_control_plane_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        let board = VersionBoard::new(Some(path.clone()));
        board.serving("tag", "tagger", "v1", false);
        assert!(!path.exists(), "the stage thread writes no file");
        board.flush();
        assert_eq!(read(&path)["stages"]["tag"]["version"], "v1");
        board.serving("tag", "tagger", "v2", true);
        assert_eq!(read(&path)["stages"]["tag"]["version"], "v1");
        board.refused(ReloadEvent {
            at_ms: 0,
            plugin: "tagger".into(),
            file: "tagger.wasm".into(),
            outcome: "refused".into(),
            version: None,
            stage: None,
            reason: Some("bad".into()),
        });
        let json = read(&path);
        assert_eq!(json["stages"]["tag"]["version"], "v2", "{json:#}");
        assert_eq!(
            (json["swaps"].as_u64(), json["refusals"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(json["stages"]["tag"]["swaps"], 1);
        let outcomes: Vec<&str> = json["recent"]
            .as_array()
            .expect("recent")
            .iter()
            .filter_map(|e| e["outcome"].as_str())
            .collect();
        assert_eq!(outcomes, ["loaded", "swapped", "refused"]);
        board.serving("tag", "tagger", "v3", true);
        drop(board);
        assert_eq!(
            read(&path)["stages"]["tag"]["version"],
            "v3",
            "flushed when dropped"
        );
    }
}
