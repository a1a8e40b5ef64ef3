//! Hot reload: a changed plugin file is compiled (cache reused), checked
//! against the host, instantiated and initialized with each using stage's
//! params, optionally smoke-tested — all off the data path, on the watcher's
//! thread. Only then is the ready instance handed to the stage, which swaps
//! it in at its next batch boundary (in-flight batches finish on the old
//! version; per-partition order holds because a stage is sequential). A bad
//! version is refused and the old one keeps serving.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::event::{Event, now_ms};
use crate::inference::ModelStatus;
use crate::pipeline::stage::StageSpec;
use crate::plugin::watcher::Change;
use crate::plugin::{LoadedPlugin, PluginEngine, PluginError, PluginInstance};

/// A version ready to serve, waiting for its stage's next batch boundary.
pub struct Prepared {
    pub plugin: LoadedPlugin,
    pub instance: PluginInstance,
}

/// Where the reloader leaves a prepared version for a stage. A newer one
/// replaces one the stage has not taken yet.
pub type SwapSlot = Arc<Mutex<Option<Prepared>>>;

/// What the reloader knows of a stage.
pub struct StageHandle {
    pub spec: StageSpec,
    /// The plugin file's stem the stage is served by.
    pub plugin_name: String,
    pub slot: SwapSlot,
    /// Events run through a new version before it may serve: a trap refuses it.
    pub smoke: Option<Vec<Event>>,
}

/// One entry of the reload log.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReloadEvent {
    pub at_ms: i64,
    pub plugin: String,
    pub file: String,
    /// `loaded` (at start), `prepared` (ready, waiting for a batch boundary),
    /// `swapped` (serving), `refused`, `deleted`, `unchanged`.
    pub outcome: String,
    pub version: Option<String>,
    pub stage: Option<String>,
    pub reason: Option<String>,
}

/// The version a stage serves.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StageVersion {
    pub plugin: String,
    pub version: String,
    pub since_ms: i64,
    pub swaps: u64,
}

/// Loaded versions and recent reloads, for `weir status` and telemetry.
#[derive(Default)]
pub struct ReloadStatus {
    stages: Mutex<BTreeMap<String, StageVersion>>,
    models: Mutex<BTreeMap<String, ModelStatus>>,
    log: Mutex<VecDeque<ReloadEvent>>,
    pub swaps: AtomicU64,
    pub refusals: AtomicU64,
    /// Where the status is written as JSON after each change (if set).
    file: Option<PathBuf>,
    /// Held from snapshot to rename: the last file written is always the
    /// latest state (two threads record: the reloader and the stages).
    writing: Mutex<()>,
}

/// A snapshot of [`ReloadStatus`].
#[derive(Clone, Debug, Serialize)]
pub struct StatusSnapshot {
    pub stages: BTreeMap<String, StageVersion>,
    /// The pipeline's models (`[models.*]`): versions, last swap/refusal.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelStatus>,
    pub swaps: u64,
    pub refusals: u64,
    pub recent: Vec<ReloadEvent>,
}

const LOG_LEN: usize = 100;

impl ReloadStatus {
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            ..Self::default()
        }
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        StatusSnapshot {
            stages: self.stages.lock().map(|s| s.clone()).unwrap_or_default(),
            models: self.models.lock().map(|s| s.clone()).unwrap_or_default(),
            swaps: self.swaps.load(Relaxed),
            refusals: self.refusals.load(Relaxed),
            recent: self
                .log
                .lock()
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    fn write_file(&self) {
        let Some(path) = &self.file else { return };
        let _writing = self.writing.lock();
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

    pub fn record(&self, event: ReloadEvent) {
        if let Ok(mut log) = self.log.lock() {
            if log.len() == LOG_LEN {
                log.pop_front();
            }
            log.push_back(event);
        }
        self.write_file();
    }

    /// The models' status changed (loaded, swapped, refused, deleted).
    pub fn set_models(&self, models: BTreeMap<String, ModelStatus>) {
        if let Ok(mut m) = self.models.lock() {
            *m = models;
        }
        self.write_file();
    }

    /// A stage now serves `plugin`.
    pub fn serving(&self, stage: &str, plugin: &LoadedPlugin, swapped: bool) {
        if let Ok(mut stages) = self.stages.lock() {
            let swaps = stages.get(stage).map_or(0, |s| s.swaps) + u64::from(swapped);
            stages.insert(
                stage.to_string(),
                StageVersion {
                    plugin: plugin.name.to_string(),
                    version: plugin.version.to_string(),
                    since_ms: now_ms(),
                    swaps,
                },
            );
        }
        if swapped {
            self.swaps.fetch_add(1, Relaxed);
        }
        self.record(ReloadEvent {
            at_ms: now_ms(),
            plugin: plugin.name.to_string(),
            file: String::new(),
            outcome: if swapped { "swapped" } else { "loaded" }.into(),
            version: Some(plugin.version.to_string()),
            stage: Some(stage.to_string()),
            reason: None,
        });
    }
}

/// Turns settled file changes into prepared versions for the stages.
pub struct Reloader {
    engine: Arc<PluginEngine>,
    stages: Vec<StageHandle>,
    status: Arc<ReloadStatus>,
}

impl Reloader {
    pub fn new(
        engine: Arc<PluginEngine>,
        stages: Vec<StageHandle>,
        status: Arc<ReloadStatus>,
    ) -> Self {
        Self {
            engine,
            stages,
            status,
        }
    }

    fn event(&self, path: &Path, plugin: &str, outcome: &str) -> ReloadEvent {
        ReloadEvent {
            at_ms: now_ms(),
            plugin: plugin.to_string(),
            file: path.display().to_string(),
            outcome: outcome.to_string(),
            version: None,
            stage: None,
            reason: None,
        }
    }

    fn refuse(&self, path: &Path, plugin: &str, version: Option<&str>, reason: String) {
        tracing::error!(file = %path.display(), plugin, reason = %reason, "new plugin version refused; the previous version keeps serving");
        self.status.refusals.fetch_add(1, Relaxed);
        self.status.record(ReloadEvent {
            version: version.map(str::to_string),
            reason: Some(reason),
            ..self.event(path, plugin, "refused")
        });
    }

    /// Prepares one instance for a stage: instantiate, init, smoke test.
    fn prepare(
        &self,
        handle: &StageHandle,
        plugin: &LoadedPlugin,
    ) -> Result<PluginInstance, String> {
        let fresh = || -> Result<PluginInstance, PluginError> {
            let mut instance = self.engine.instantiate(plugin, &handle.spec.instance)?;
            instance.init(&handle.spec.params_json)?;
            Ok(instance)
        };
        if let Some(smoke) = &handle.smoke {
            let mut tester = fresh().map_err(|e| e.to_string())?;
            tester
                .process(smoke)
                .map_err(|e| format!("smoke batch of stage `{}`: {e}", handle.spec.name))?;
        }
        let mut instance = fresh().map_err(|e| format!("stage `{}`: {e}", handle.spec.name))?;
        // Warm it up (first-call costs: lazy init, fresh pages) before it
        // is on the data path.
        instance
            .process(&[])
            .map_err(|e| format!("stage `{}`: empty batch: {e}", handle.spec.name))?;
        Ok(instance)
    }

    pub fn handle(&mut self, change: Change) {
        match change {
            Change::Removed(path) => {
                let name = stem(&path);
                if self.stages.iter().any(|s| s.plugin_name == name) {
                    tracing::warn!(file = %path.display(), plugin = %name, "plugin file deleted; its stages keep serving the last good version");
                    self.status.record(self.event(&path, &name, "deleted"));
                }
            }
            Change::Ready(path) => self.load(&path),
        }
    }

    fn load(&mut self, path: &Path) {
        let name = stem(path);
        let users: Vec<usize> = (0..self.stages.len())
            .filter(|&i| self.stages[i].plugin_name == name)
            .collect();
        if users.is_empty() {
            tracing::debug!(file = %path.display(), "changed plugin file is not used by any stage");
            return;
        }
        let plugin = match self.engine.load_file(path) {
            Ok(p) => p,
            Err(e) => return self.refuse(path, &name, None, e.to_string()),
        };
        if users
            .iter()
            .all(|&i| self.stages[i].spec.plugin.version == plugin.version)
        {
            self.status.record(ReloadEvent {
                version: Some(plugin.version.to_string()),
                ..self.event(path, &name, "unchanged")
            });
            return;
        }
        // Prepare every using stage first: a version refused by one stage is
        // refused for all, so stages never disagree on what they run.
        let mut prepared = Vec::with_capacity(users.len());
        for &i in &users {
            match self.prepare(&self.stages[i], &plugin) {
                Ok(instance) => prepared.push((i, instance)),
                Err(reason) => return self.refuse(path, &name, Some(&plugin.version), reason),
            }
        }
        for (i, instance) in prepared {
            let handle = &mut self.stages[i];
            handle.spec.plugin = plugin.clone();
            if let Ok(mut slot) = handle.slot.lock() {
                *slot = Some(Prepared {
                    plugin: plugin.clone(),
                    instance,
                });
            }
            tracing::info!(stage = %handle.spec.name, plugin = %name, version = %plugin.short_version(), cache = ?plugin.cache, "new plugin version ready; swapping at the next batch");
            self.status.record(ReloadEvent {
                version: Some(plugin.version.to_string()),
                stage: Some(handle.spec.name.to_string()),
                ..self.event(path, &name, "prepared")
            });
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
