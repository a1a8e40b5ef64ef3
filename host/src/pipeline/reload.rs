//! Hot reload: a changed plugin file is compiled (cache reused), checked
//! against the host, instantiated and initialized with each using stage's
//! params, optionally smoke-tested — all off the data path, on the watcher's
//! thread. Only then is the ready instance handed to the stage, which swaps
//! it in at its next batch boundary (in-flight batches finish on the old
//! version; per-partition order holds because a stage is sequential). A bad
//! version is refused and the old one keeps serving.

use std::path::Path;
use std::sync::Arc;

use super::stage::StageSpec;
use super::swap::{Prepared, SwapSlot};
use crate::event::{Event, now_ms};
use crate::plugin::Change;
use crate::plugin::{LoadedPlugin, PluginEngine, PluginError, PluginInstance};
use crate::telemetry::{ReloadEvent, VersionBoard};

/// What the reloader knows of a stage.
pub struct StageHandle {
    pub spec: StageSpec,
    /// The plugin file's stem the stage is served by.
    pub plugin_name: String,
    pub slot: SwapSlot,
    /// Events run through a new version before it may serve: a trap refuses it.
    pub smoke: Option<Vec<Event>>,
    /// A keyed stage's store: a new version must be keyed too, and must
    /// read a sample of the stored state (`check_state`).
    pub state: Option<crate::state::StateStore>,
}

/// Turns settled file changes into prepared versions for the stages.
pub struct Reloader {
    engine: Arc<PluginEngine>,
    stages: Vec<StageHandle>,
    status: Arc<VersionBoard>,
}

impl Reloader {
    pub fn new(
        engine: Arc<PluginEngine>,
        stages: Vec<StageHandle>,
        status: Arc<VersionBoard>,
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
        self.status.refused(ReloadEvent {
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
        check_keyed(handle, &mut instance)?;
        // Warm it up (first-call costs: lazy init, fresh pages) before it
        // is on the data path.
        instance
            .process(&[])
            .map_err(|e| format!("stage `{}`: empty batch: {e}", handle.spec.name))?;
        Ok(instance)
    }

    /// Writes the version board if a stage swapped since (the stages only
    /// mark it changed: no file I/O on the data path).
    pub fn flush_status(&self) {
        self.status.flush();
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
                version: Some(plugin.short_version().to_string()),
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
                Err(reason) => {
                    return self.refuse(path, &name, Some(plugin.short_version()), reason);
                }
            }
        }
        for (i, instance) in prepared {
            let (stage, superseded) = {
                let handle = &mut self.stages[i];
                handle.spec.plugin = plugin.clone();
                let next = Prepared {
                    plugin: plugin.clone(),
                    instance,
                };
                let superseded = handle
                    .slot
                    .lock()
                    .ok()
                    .and_then(|mut slot| slot.replace(next));
                (handle.spec.name.to_string(), superseded)
            };
            // (The superseded instance is dropped here, the lock released.)
            if let Some(old) = superseded {
                tracing::info!(stage, plugin = %name, version = %old.plugin.short_version(), by = %plugin.short_version(), "a prepared version was superseded before the stage took it");
                self.status.record(ReloadEvent {
                    version: Some(old.plugin.short_version().to_string()),
                    stage: Some(stage.clone()),
                    reason: Some(format!("superseded by {}", plugin.short_version())),
                    ..self.event(path, &name, "superseded")
                });
            }
            tracing::info!(stage, plugin = %name, version = %plugin.short_version(), cache = ?plugin.cache, "new plugin version ready; swapping at the next batch");
            self.status.record(ReloadEvent {
                version: Some(plugin.short_version().to_string()),
                stage: Some(stage),
                ..self.event(path, &name, "prepared")
            });
        }
    }
}

/// Stored values a new keyed version must read before it may serve.
const STATE_SAMPLE: usize = 64;

/// A keyed stage takes only a keyed version that reads a sample of its
/// stored state; a plain stage only a plain version.
fn check_keyed(handle: &StageHandle, instance: &mut PluginInstance) -> Result<(), String> {
    let name = &handle.spec.name;
    let keyed = instance.info().keyed;
    let Some(store) = &handle.state else {
        if keyed {
            return Err(format!(
                "stage `{name}` is not keyed: the new version is a keyed plugin (the stage has no [stages.state])"
            ));
        }
        return Ok(());
    };
    if !keyed {
        return Err(format!(
            "stage `{name}` is keyed: the new version is not a keyed plugin, it could not use the stored state"
        ));
    }
    let sample: Vec<(bytes::Bytes, bytes::Bytes)> = store
        .scan(name, None, STATE_SAMPLE, now_ms())
        .map_err(|e| format!("stage `{name}`: reading a state sample: {e}"))?
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    instance
        .check_state(&sample)
        .map_err(|e| format!("stage `{name}`: the new version cannot read the stored state: {e}"))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
