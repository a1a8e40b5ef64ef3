//! The pipeline's models by name: what the plugins' `infer` import calls.
//! Built once at start-up from `[models.*]`; each model has its batcher
//! thread. Model files are hot-swapped by [`super::reload`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::batcher::{BatchPolicy, Batcher, ModelSlot};
use super::config::ModelConfig;
use super::metrics::{Metrics, ModelMetrics};
use super::model::Model;
use super::{Infer, InferError, LoadError, Tensor};
use crate::event::now_ms;
use crate::plugin::Baseline;
use crate::telemetry::{ModelEvent, ModelStatus, VersionBoard};

struct Entry {
    config: ModelConfig,
    slot: Arc<ModelSlot>,
    batcher: Batcher,
    metrics: ModelMetrics,
    state: Mutex<ModelStatus>,
}

struct Inner {
    models: BTreeMap<String, Entry>,
    metrics: Metrics,
    env: ort::environment::Environment,
    status: RwLock<Option<Arc<VersionBoard>>>,
    /// The model files as they were before loading: the watcher reports
    /// what changed since.
    loaded: Baseline,
}

/// The models, shared by every stage (cheap to clone).
#[derive(Clone)]
pub struct ModelRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry")
            .field("models", &self.inner.models.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The file as the watcher names it: `<folder>/<file name>`.
pub(super) fn watch_key(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match path.file_name() {
        Some(name) => dir.join(name),
        None => path.to_path_buf(),
    }
}

impl ModelRegistry {
    /// Loads ONNX Runtime (`library`, else the environment or the set-up
    /// venv) and every model (paths already resolved), and starts their
    /// batchers. Any problem is an error naming the model and field.
    pub fn load(
        library: Option<&Path>,
        models: &BTreeMap<String, ModelConfig>,
    ) -> Result<Self, LoadError> {
        let files: Vec<PathBuf> = models.values().map(|c| watch_key(&c.path)).collect();
        let loaded = Baseline::files(&files);
        let env = super::runtime::environment(library)?;
        let metrics = Metrics::default();
        let mut entries = BTreeMap::new();
        for (name, config) in models {
            let model = Model::load(name, config, &env)?;
            model.dry_run().map_err(|e| LoadError::Model {
                model: name.clone(),
                field: "path",
                path: config.path.clone(),
                reason: format!("a one-row dry run failed: {e}"),
            })?;
            tracing::info!(model = %name, file = %config.path.display(), version = %model.short_version(),
                inputs = ?model.inputs, outputs = ?model.outputs, "model loaded");
            let m = metrics.model(name);
            m.serving(None, &model.version);
            let state = ModelStatus {
                file: config.path.display().to_string(),
                version: model.version.clone(),
                since_ms: now_ms(),
                swaps: 0,
                last_swap: None,
                refusals: 0,
                last_refusal: None,
                file_deleted: false,
            };
            let slot = Arc::new(ModelSlot::new(model));
            let policy = BatchPolicy {
                max_batch: config.max_batch,
                max_delay: config.max_delay(),
            };
            let batcher = Batcher::start(name, slot.clone(), policy, m.clone()).map_err(|e| {
                LoadError::Model {
                    model: name.clone(),
                    field: "path",
                    path: config.path.clone(),
                    reason: format!("cannot start its batcher thread: {e}"),
                }
            })?;
            entries.insert(
                name.clone(),
                Entry {
                    config: config.clone(),
                    slot,
                    batcher,
                    metrics: m,
                    state: Mutex::new(state),
                },
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                models: entries,
                metrics,
                env,
                status: RwLock::new(None),
                loaded,
            }),
        })
    }

    /// The declared model names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.models.keys().map(String::as_str)
    }

    /// The model files as they were before this registry loaded them.
    pub fn loaded_files(&self) -> Baseline {
        self.inner.loaded.clone()
    }

    /// The model files, as the watcher names them.
    pub fn files(&self) -> Vec<PathBuf> {
        self.inner
            .models
            .values()
            .map(|e| watch_key(&e.config.path))
            .collect()
    }

    /// Registers every model metric (`weir_inference_*`, `weir_model_*`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// One model's metric handles (tests, benchmarks).
    pub fn metrics(&self, model: &str) -> Option<&ModelMetrics> {
        self.inner.models.get(model).map(|e| &e.metrics)
    }

    /// The version (sha256) model `model` serves now.
    pub fn version(&self, model: &str) -> Option<String> {
        let e = self.inner.models.get(model)?;
        e.slot.get().ok().map(|m| m.version.clone())
    }

    /// Every model's status.
    pub fn status(&self) -> BTreeMap<String, ModelStatus> {
        self.inner
            .models
            .iter()
            .filter_map(|(n, e)| Some((n.clone(), e.state.lock().ok()?.clone())))
            .collect()
    }

    /// Publishes the models' status in `status` (the file `weir status`
    /// prints), now and after every swap or refusal.
    pub fn publish_to(&self, status: Arc<VersionBoard>) {
        if let Ok(mut s) = self.inner.status.write() {
            *s = Some(status);
        }
        self.publish();
    }

    fn publish(&self) {
        let status = self.inner.status.read().ok().and_then(|s| s.clone());
        if let Some(status) = status {
            status.set_models(self.status());
        }
    }

    /// Stops every batcher: queued and later calls get `Unavailable`.
    pub fn shutdown(&self) {
        for e in self.inner.models.values() {
            e.batcher.shutdown();
        }
    }

    /// A model file changed: load it, dry-run it, swap it in. A bad file is
    /// refused and the old version keeps serving.
    pub fn file_changed(&self, path: &Path) {
        for (name, e) in &self.inner.models {
            if watch_key(&e.config.path) == watch_key(path) {
                self.reload(name, e);
            }
        }
        self.publish();
    }

    /// A model file was deleted: the last good version keeps serving.
    pub fn file_removed(&self, path: &Path) {
        for (name, e) in &self.inner.models {
            if watch_key(&e.config.path) == watch_key(path) {
                tracing::warn!(model = %name, file = %path.display(), "model file deleted; the last good version keeps serving");
                if let Ok(mut s) = e.state.lock() {
                    s.file_deleted = true;
                }
            }
        }
        self.publish();
    }

    fn reload(&self, name: &str, e: &Entry) {
        let loaded =
            Model::load(name, &e.config, &self.inner.env).map_err(|err| (None, err.to_string()));
        let current = match e.slot.get() {
            Ok(m) => m,
            Err(err) => return self.refuse(name, e, None, err.to_string()),
        };
        let checked = loaded.and_then(|model| {
            if model.version == current.version {
                return Ok(None);
            }
            let version = Some(model.version.clone());
            match model.dry_run() {
                Ok(()) => Ok(Some(model)),
                Err(err) => Err((version, format!("a one-row dry run failed: {err}"))),
            }
        });
        let model = match checked {
            Ok(Some(model)) => model,
            Ok(None) => {
                tracing::info!(model = %name, version = %current.short_version(), "model file unchanged");
                if let Ok(mut s) = e.state.lock() {
                    s.file_deleted = false;
                }
                return;
            }
            Err((version, reason)) => return self.refuse(name, e, version, reason),
        };
        let version = model.version.clone();
        let short = model.short_version().to_owned();
        let old = match e.slot.swap(Arc::new(model)) {
            Ok(old) => old,
            Err(err) => return self.refuse(name, e, Some(version), err.to_string()),
        };
        e.metrics.swaps.inc();
        e.metrics.serving(Some(&old.version), &version);
        tracing::info!(model = %name, from = %old.short_version(), to = %short, "new model version swapped in");
        if let Ok(mut s) = e.state.lock() {
            s.swaps += 1;
            s.version = version.clone();
            s.since_ms = now_ms();
            s.file_deleted = false;
            s.last_swap = Some(ModelEvent {
                at_ms: now_ms(),
                version: Some(version),
                detail: format!("replaced {}", old.version),
            });
        }
    }

    fn refuse(&self, name: &str, e: &Entry, version: Option<String>, reason: String) {
        tracing::error!(model = %name, file = %e.config.path.display(), reason = %reason, "new model file refused; the previous version keeps serving");
        e.metrics.refusals.inc();
        if let Ok(mut s) = e.state.lock() {
            s.refusals += 1;
            s.last_refusal = Some(ModelEvent {
                at_ms: now_ms(),
                version,
                detail: reason,
            });
        }
    }
}

fn kind(e: &InferError) -> &'static str {
    match e {
        InferError::UnknownModel(_) => "unknown_model",
        InferError::InvalidInput(_) => "invalid_input",
        InferError::Runtime(_) => "runtime",
        InferError::Unavailable(_) => "unavailable",
    }
}

impl Infer for ModelRegistry {
    fn infer(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, InferError> {
        let Some(e) = self.inner.models.get(model) else {
            self.inner.metrics.error(model, "unknown_model");
            return Err(InferError::UnknownModel(model.to_owned()));
        };
        e.metrics.calls.inc();
        e.metrics
            .rows
            .inc_by(inputs.first().map_or(0, Tensor::rows) as u64);
        let started = Instant::now();
        let result = e.batcher.call(inputs);
        e.metrics.latency.observe(started.elapsed().as_secs_f64());
        if let Err(err) = &result {
            e.metrics.error(kind(err));
        }
        result
    }
}
