//! Assembly: a pipeline file becomes a running pipeline (every part built,
//! every plugin loaded and initialized) plus what hot reload needs. The
//! commands (`crate::commands`) drive it; `anyhow` lives here, in the
//! commands and in `main` only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::PipelineConfig;
use crate::inference::{Infer, ModelRegistry};
use crate::pipeline::{BatchPolicy, Pipeline, Stage, StageSpec};
use crate::pipeline::{KeyedState, PipelineState, SwapSlot};
use crate::pipeline::{Reloader, StageHandle};
use crate::plugin::{ArtifactCache, Baseline, EngineOptions, InstanceConfig, PluginEngine};
use crate::telemetry::PipelineStats;
use crate::telemetry::VersionBoard;

/// A built pipeline and what hot reload needs.
pub struct Built {
    pub pipeline: Pipeline,
    pub reloader: Reloader,
    pub status: Arc<VersionBoard>,
    /// The pipeline's models (`None` when it declares none).
    pub models: Option<ModelRegistry>,
    /// The plugin directory as it was before the stages loaded their
    /// plugins: hot reload reports every change since.
    pub plugin_files: Baseline,
}

/// Where `weir run` keeps the status (`weir status` reads it).
pub fn status_path(config: &PipelineConfig) -> std::path::PathBuf {
    config
        .cache_dir_path()
        .join(format!("status-{}.json", config.name))
}

/// Reads a smoke-test file: one event per JSON line.
fn read_smoke(path: &std::path::Path) -> anyhow::Result<Vec<crate::event::Event>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("smoke file {}", path.display()))?;
    let stream: Arc<str> = path.display().to_string().into();
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            crate::event::Event::new(
                l.as_bytes().to_vec(),
                crate::event::now_ms(),
                crate::event::Position::new(stream.clone(), 0, i as i64),
            )
        })
        .collect())
}

/// Builds everything a pipeline needs; every plugin is loaded, checked and
/// initialized here, so a bad plugin or config fails before any event is read.
///
/// Call it outside any tokio runtime: a plugin's `init` may do blocking WASI
/// I/O (printing, sleeping), which wasmtime-wasi refuses inside a runtime.
pub fn build(config: &PipelineConfig) -> anyhow::Result<Built> {
    let plugin_files = Baseline::plugins(config.plugin_dir_path());
    let engine = Arc::new(PluginEngine::new(EngineOptions {
        pooling: true,
        cache: Some(ArtifactCache::new(config.cache_dir_path())),
        fuel: config.stages.iter().any(|s| s.limits.fuel > 0),
        ..EngineOptions::default()
    })?);
    let stage_names: Vec<String> = config.stages.iter().map(|s| s.name.clone()).collect();
    let stats = Arc::new(PipelineStats::new(
        config.outputs.keys().cloned(),
        &stage_names,
    ));
    let status = Arc::new(VersionBoard::new(Some(status_path(config))));
    // Models before stages: a plugin's `init` may already call them.
    let models = if config.models.is_empty() {
        None
    } else {
        let registry = ModelRegistry::load(config.onnxruntime_library(), &config.models)?;
        registry.publish_to(status.clone());
        Some(registry)
    };
    let infer: Option<Arc<dyn Infer>> = models
        .as_ref()
        .map(|m| Arc::new(m.clone()) as Arc<dyn Infer>);
    // The state store, if some stage is keyed (one process per store: a
    // second `weir run` of the pipeline is refused here).
    let mut state = if config.is_keyed() {
        let store = crate::state::StateStore::open(config.state_dir_path(), &config.state)
            .context("state_dir")?;
        let mut state = PipelineState::new(store, config.state.clone());
        state.ttl_stages = config
            .stages
            .iter()
            .filter(|s| s.state.as_ref().is_some_and(|st| st.ttl_secs.is_some()))
            .map(|s| s.name.as_str().into())
            .collect();
        Some(state)
    } else {
        None
    };
    let mut stages = Vec::with_capacity(config.stages.len());
    let mut handles = Vec::with_capacity(config.stages.len());
    for (i, sc) in config.stages.iter().enumerate() {
        let path = sc.plugin_file();
        let plugin = engine
            .load_file(path)
            .with_context(|| format!("stages[{i}] `{}`: plugin {}", sc.name, path.display()))?;
        tracing::info!(
            stage = %sc.name,
            plugin = %plugin.name,
            version = %plugin.short_version(),
            cache = ?plugin.cache,
            "plugin loaded"
        );
        let params = sc
            .params_json()
            .map_err(|e| anyhow::anyhow!("stages[{i}]: {e}"))?;
        let spec = StageSpec {
            name: sc.name.as_str().into(),
            plugin,
            params_json: params.to_string(),
            instance: InstanceConfig {
                stage: sc.name.as_str().into(),
                limits: sc.limits.clone(),
                sandbox: Arc::new(sc.grants.sandbox()),
                models: infer.clone(),
            },
            breaker: sc.circuit_breaker.clone(),
            parallelism: sc.parallelism.instances(),
        };
        let stage_stats = stats.stage(&sc.name).context("stage statistics missing")?;
        let mut stage = Stage::start(spec, engine.clone(), stage_stats)
            .with_context(|| format!("stages[{i}] `{}`", sc.name))?;
        match (sc.state.is_some(), stage.plugin_info().keyed) {
            (true, false) => anyhow::bail!(
                "stages[{i}] `{}`: plugin {} is not keyed, but the stage has [stages.state]: a keyed stage needs a keyed plugin (#[weir_sdk::keyed], contract 0.2.0)",
                sc.name,
                path.display()
            ),
            (false, true) => anyhow::bail!(
                "stages[{i}] `{}`: plugin {} is keyed: give the stage a [stages.state] table with its key (key = \"/field\" or \"$key\")",
                sc.name,
                path.display()
            ),
            _ => {}
        }
        if let (Some(sc_state), Some(state)) = (&sc.state, &state) {
            let keyed = KeyedState::new(
                sc.name.as_str().into(),
                sc_state,
                &config.watermark,
                state.store.clone(),
                state.committed.clone(),
            )
            .map_err(|e| anyhow::anyhow!("stages[{i}].state: {e}"))?;
            stage.make_keyed(keyed);
        }
        let slot = SwapSlot::default();
        stage.enable_reload(slot.clone(), status.clone());
        let smoke = match &sc.smoke {
            Some(p) => Some(read_smoke(p).with_context(|| format!("stages[{i}].smoke"))?),
            None => None,
        };
        handles.push(StageHandle {
            spec: stage.spec().clone(),
            plugin_name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            slot,
            smoke,
            state: state
                .as_ref()
                .filter(|_| sc.state.is_some())
                .map(|s| s.store.clone()),
        });
        stages.push(stage);
    }
    // What the stages serve at start.
    status.flush();
    let assignments = match &mut state {
        Some(state) => kafka_state(config, state, &stats)?,
        None => None,
    };
    let source = config.build_source_with(assignments).context("source")?;
    let outputs = config.build_outputs().context("outputs")?;
    let dead_letter = config.build_dead_letter().context("dead_letter")?;
    let pipeline = Pipeline {
        source,
        batch: BatchPolicy {
            max_events: config.batch.max_events,
            max_wait: config.batch.max_wait(),
        },
        stages,
        outputs,
        dead_letter,
        stats,
        drain_timeout: Duration::from_secs(30),
        state,
    };
    Ok(Built {
        pipeline,
        reloader: Reloader::new(engine, handles, status.clone()),
        status,
        models,
        plugin_files,
    })
}

/// Keyed state on a Kafka source: the stages' changelog topics (created if
/// missing, as many partitions as the source topics; unless `[state]
/// changelog = "off"`) and the listener that restores and forgets
/// partitions as the group moves them. `None` for other sources.
fn kafka_state(
    config: &PipelineConfig,
    state: &mut PipelineState,
    stats: &Arc<PipelineStats>,
) -> anyhow::Result<Option<Arc<dyn crate::source::Assignments>>> {
    let crate::source::SourceConfig::Kafka(kafka) = &config.source else {
        return Ok(None);
    };
    if state.config.changelog == crate::state::ChangelogMode::Auto {
        let client = crate::state::changelog_client(&kafka.brokers, &kafka.properties);
        let named: Vec<String> = kafka
            .topics
            .iter()
            .filter(|t| !t.starts_with('^'))
            .cloned()
            .collect();
        let partitions = crate::state::partition_counts(&client, &named)
            .map_err(|e| anyhow::anyhow!("state changelog: {e}"))?
            .into_iter()
            .max()
            .unwrap_or(0);
        anyhow::ensure!(
            partitions > 0,
            "state changelog: cannot tell how many partitions the source topics {:?} have (they must exist, and be named, not patterns)",
            kafka.topics
        );
        // Each keyed stage's topic: its `changelog_topic`, or the default.
        let topics: Vec<(Arc<str>, String)> = config
            .stages
            .iter()
            .filter_map(|s| {
                let topic = s.state.as_ref()?.changelog_topic.clone();
                let topic =
                    topic.unwrap_or_else(|| crate::state::changelog_topic(&config.name, &s.name));
                Some((Arc::from(s.name.as_str()), topic))
            })
            .collect();
        let changelog =
            crate::state::Changelog::open(client, topics, partitions).context("state changelog")?;
        state.changelog = Some(Arc::new(changelog));
    }
    Ok(Some(Arc::new(crate::pipeline::StateAssignments::new(
        state.store.clone(),
        state.changelog.clone(),
        stats.clone(),
    ))))
}

/// How soon a swap a stage made shows in the status file.
const STATUS_FLUSH: Duration = Duration::from_millis(50);

/// Watches `plugin_dir` and feeds settled changes to the reloader, on two
/// background threads, until `stop`.
pub fn start_reload(
    config: &PipelineConfig,
    mut reloader: Reloader,
    loaded: Baseline,
    stop: CancellationToken,
) {
    let dir = config.plugin_dir_path().to_path_buf();
    let reload = config.reload.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let watch_stop = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("weir-watch".into())
        .spawn(move || {
            if let Err(e) = crate::plugin::watch(&dir, &reload, loaded, tx, &watch_stop) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot watch the plugin directory: hot reload is off");
            }
        })
        .and_then(|_| {
            std::thread::Builder::new()
                .name("weir-reload".into())
                .spawn(move || {
                    // Compiling, instantiating and smoke-testing a new version
                    // yields the CPU to the data path.
                    crate::plugin::lower_this_thread_priority();
                    // Between changes, write what the stages swapped in.
                    loop {
                        match rx.recv_timeout(STATUS_FLUSH) {
                            Ok(change) => reloader.handle(change),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                        reloader.flush_status();
                    }
                })
        });
    match spawned {
        Ok(_) => {
            tracing::info!(dir = %config.plugin_dir_path().display(), mode = ?config.reload.mode, "watching for new plugin versions")
        }
        Err(e) => tracing::error!(error = %e, "cannot start hot reload"),
    }
}
