//! What the `weir` commands do: the glue between the command line, the
//! pipeline file and the runtime. (anyhow lives here and in `main` only.)

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, GenerateArgs, PluginCommand, RunArgs};
use crate::config::PipelineConfig;
use crate::inference::{Infer, ModelRegistry};
use crate::pipeline::reload::{Reloader, StageHandle};
use crate::pipeline::swap::SwapSlot;
use crate::pipeline::{BatchPolicy, Pipeline, RunSummary, Stage, StageSpec};
use crate::plugin::{ArtifactCache, EngineOptions, InstanceConfig, PluginEngine};
use crate::source::generate::{GenerateSchema, generate_values};
use crate::telemetry::PipelineStats;
use crate::telemetry::versions::VersionBoard;

pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Generate(args) => generate(&args),
        Command::Status(args) => status(&args),
        Command::Plugin(cmd) => plugin(cmd),
    }
}

/// A built pipeline and what hot reload needs.
pub struct Built {
    pub pipeline: Pipeline,
    pub reloader: Reloader,
    pub status: Arc<VersionBoard>,
    /// The pipeline's models (`None` when it declares none).
    pub models: Option<ModelRegistry>,
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
        };
        let stage_stats = stats.stage(&sc.name).context("stage statistics missing")?;
        let mut stage = Stage::start(spec, engine.clone(), stage_stats)
            .with_context(|| format!("stages[{i}] `{}`", sc.name))?;
        let slot = SwapSlot::default();
        stage.enable_reload(slot.clone(), status.clone());
        let smoke = match &sc.smoke {
            Some(p) => {
                Some(read_smoke(p).with_context(|| format!("stages[{i}].smoke"))?)
            }
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
        });
        stages.push(stage);
    }
    // What the stages serve at start.
    status.flush();
    let source = config.build_source().context("source")?;
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
    };
    Ok(Built {
        pipeline,
        reloader: Reloader::new(engine, handles, status.clone()),
        status,
        models,
    })
}

/// How soon a swap a stage made shows in the status file.
const STATUS_FLUSH: Duration = Duration::from_millis(50);

/// Watches `plugin_dir` and feeds settled changes to the reloader, on two
/// background threads, until `stop`.
pub fn start_reload(config: &PipelineConfig, mut reloader: Reloader, stop: CancellationToken) {
    let dir = config.plugin_dir_path().to_path_buf();
    let reload = config.reload.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let watch_stop = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("weir-watch".into())
        .spawn(move || {
            if let Err(e) = crate::plugin::watcher::watch(&dir, &reload, tx, &watch_stop) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot watch the plugin directory: hot reload is off");
            }
        })
        .and_then(|_| {
            std::thread::Builder::new()
                .name("weir-reload".into())
                .spawn(move || {
                    // Compiling, instantiating and smoke-testing a new version
                    // yields the CPU to the data path.
                    crate::plugin::engine::lower_this_thread_priority();
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

/// Cancels `token` on Ctrl-C or SIGTERM.
fn on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("signal received: stopping");
        token.cancel();
    });
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = PipelineConfig::from_file(&args.pipeline)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Up before the plugins compile: /healthz answers, /readyz says not yet.
    let admin = config
        .admin
        .as_ref()
        .map(crate::telemetry::admin::Admin::start)
        .transpose()?;
    let Built {
        pipeline,
        reloader,
        models,
        status,
    } = build(&config)?;
    let kafka = pipeline.source.kafka_stats();
    if let Some(admin) = &admin {
        let live = crate::telemetry::metrics::Live {
            pipeline: config.name.clone(),
            source: pipeline.source.describe(),
            stats: pipeline.stats.clone(),
            status,
            kafka: kafka.clone(),
        };
        let mut metrics = crate::telemetry::metrics::Metrics::new(live.clone());
        // The models' metrics (calls, batch rows, latency, predictions, swaps).
        if let Some(models) = &models {
            models.register_metrics(metrics.registry_mut());
        }
        admin.publish(metrics, live);
    }
    let readiness = admin.as_ref().map(|a| a.readiness());
    let summary = runtime.block_on(async {
        let reload_stop = CancellationToken::new();
        let _stop_reload_on_exit = reload_stop.clone().drop_guard();
        if config.reload.enabled {
            start_reload(&config, reloader, reload_stop.clone());
            if let Some(models) = &models {
                match crate::inference::reload::start_watch(models, &config.reload, &reload_stop) {
                    Ok(()) => tracing::info!("watching the model files for new versions"),
                    Err(e) => tracing::error!(error = %e, "cannot start model hot swap"),
                }
            }
        }
        tracing::info!(pipeline = %config.name, stages = pipeline.stages.len(), "pipeline started");
        let shutdown = CancellationToken::new();
        on_signals(shutdown.clone());
        let run_done = CancellationToken::new();
        if let Some(ready) = readiness.clone() {
            // Plugins are loaded and the source is built: ready once the
            // source is connected (a Kafka consumer has joined its group),
            // until a signal starts the shutdown.
            let stopping = shutdown.clone();
            let done = run_done.clone();
            let kafka = kafka.clone();
            tokio::spawn(async move {
                let connected = async {
                    while !kafka.as_ref().is_none_or(|k| k.joined()) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    _ = done.cancelled() => return,
                    _ = connected => ready.set(true),
                }
                tokio::select! {
                    _ = stopping.cancelled() => ready.set(false),
                    _ = done.cancelled() => {}
                }
            });
        }
        let progress_stop = CancellationToken::new();
        let progress = (!args.quiet).then(|| {
            tokio::spawn(crate::telemetry::progress::report(
                pipeline.stats.clone(),
                kafka.clone(),
                Duration::from_secs(1),
                progress_stop.clone(),
            ))
        });
        let result = pipeline.run(shutdown).await;
        run_done.cancel();
        progress_stop.cancel();
        if let Some(p) = progress {
            let _ = p.await;
        }
        if let Some(ready) = &readiness {
            ready.set(false);
        }
        result.map_err(anyhow::Error::from)
    });
    let summary: RunSummary = match summary {
        Ok(s) => s,
        Err(e) => {
            if let Some(admin) = admin {
                admin.finish();
            }
            return Err(e);
        }
    };
    // The source's reader thread may be blocked on stdin: don't wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    if let Some(models) = &models {
        models.shutdown();
    }
    tracing::info!(
        events_in = summary.events_in,
        events_out = summary.events_out,
        dead_letters = summary.dead_letters,
        "pipeline finished"
    );
    if summary.chunks_failed > 0 || summary.chunks_unacked > 0 {
        tracing::error!(
            failed = summary.chunks_failed,
            unacknowledged = summary.chunks_unacked,
            "some events were not delivered"
        );
        if let Some(admin) = admin {
            admin.finish();
        }
        return Ok(ExitCode::FAILURE);
    }
    if let Some(admin) = admin {
        admin.finish();
    }
    Ok(ExitCode::SUCCESS)
}

fn status(args: &crate::cli::StatusArgs) -> anyhow::Result<ExitCode> {
    let config = PipelineConfig::from_file(&args.pipeline)?;
    let path = status_path(&config);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no status at {} (is `weir run {}` running, or has it run?)",
            path.display(),
            args.pipeline.display()
        )
    })?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let schema = GenerateSchema::from_name(&args.schema, args.size).map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for value in generate_values(&schema, args.seed, args.count) {
        out.write_all(&value)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn plugin(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    use crate::cli::plugin as p;
    match cmd {
        PluginCommand::New {
            name,
            dir,
            sdk_path,
        } => {
            let root = p::new(&name, &dir, sdk_path.as_deref())?;
            println!("created {}", root.display());
            println!("next: weir plugin build {}", root.display());
        }
        PluginCommand::Build { dir, out } => {
            let wasm = p::build(&dir, out.as_deref())?;
            println!("{}", wasm.display());
        }
        PluginCommand::Test {
            plugin,
            input,
            params,
            params_json,
            batch,
            models,
        } => {
            let params = p::params_json(&params, params_json.as_deref())?;
            let models = p::models(&models)?;
            let stdout = std::io::stdout();
            p::test(&plugin, &input, &params, batch, models, &mut stdout.lock())?;
        }
        PluginCommand::Inspect { plugin } => {
            let stdout = std::io::stdout();
            if !p::inspect(&plugin, &mut stdout.lock())? {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
