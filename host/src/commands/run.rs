//! `weir run`: a pipeline, until its source ends or Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::app::{Built, build, start_reload};
use crate::config::PipelineConfig;
use crate::pipeline::RunSummary;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Counts Ctrl-C / SIGTERM for the whole run: the first cancels `token`
/// (the pipeline drains and stops); every signal bumps the count, which ends
/// the admin endpoint's linger at once (see [`linger`]).
fn on_signals(token: CancellationToken) -> tokio::sync::watch::Receiver<u32> {
    let (count, seen) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            {
                let next_term = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = next_term => {}
                }
            }
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if !token.is_cancelled() {
                tracing::info!("signal received: stopping");
                token.cancel();
            }
            count.send_modify(|n| *n += 1);
        }
    });
    seen
}

/// Keeps the admin endpoint up (not ready) for its `linger_secs` after the
/// pipeline ended, so a last scrape sees the final counters — unless a signal
/// arrives during the linger (one more than the signal that stopped the
/// pipeline, if one did): then it stops at once.
fn linger(
    runtime: &tokio::runtime::Runtime,
    admin: Option<crate::telemetry::Admin>,
    mut signals: tokio::sync::watch::Receiver<u32>,
    stopped_by_signal: bool,
) {
    let Some(admin) = admin else { return };
    admin.set_ready(false);
    let secs = admin.linger();
    if !secs.is_zero() {
        let target = if stopped_by_signal { 2 } else { 1 };
        tracing::info!(
            secs = secs.as_secs(),
            "admin endpoint lingering (a signal ends it)"
        );
        runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(secs) => {}
                _ = signals.wait_for(|n| *n >= target) => {
                    tracing::info!("signal received: the admin endpoint stops lingering");
                }
            }
        });
    }
    admin.finish();
}

impl RunArgs {
    /// Builds the pipeline, serves the admin endpoint and hot reload, runs
    /// until the source ends or a signal, then drains.
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        let config = PipelineConfig::from_file(&self.pipeline)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        // Up before the plugins compile: /healthz answers, /readyz says not yet.
        let admin = config
            .admin
            .as_ref()
            .map(crate::telemetry::Admin::start)
            .transpose()?;
        let Built {
            pipeline,
            reloader,
            models,
            status,
            plugin_files,
        } = build(&config)?;
        let kafka = pipeline.source.kafka_stats();
        if let Some(admin) = &admin {
            let live = crate::telemetry::Live {
                pipeline: config.name.clone(),
                source: pipeline.source.describe(),
                stats: pipeline.stats.clone(),
                status,
                kafka: kafka.clone(),
            };
            let mut metrics = crate::telemetry::Metrics::new(live.clone());
            // The models' metrics (calls, batch rows, latency, predictions, swaps).
            if let Some(models) = &models {
                models.register_metrics(metrics.registry_mut());
            }
            admin.publish(metrics, live);
        }
        let readiness = admin.as_ref().map(|a| a.readiness());
        let shutdown = CancellationToken::new();
        let signals = {
            let _guard = runtime.enter();
            on_signals(shutdown.clone())
        };
        let summary = runtime.block_on(async {
            let reload_stop = CancellationToken::new();
            let _stop_reload_on_exit = reload_stop.clone().drop_guard();
            if config.reload.enabled {
                start_reload(&config, reloader, plugin_files, reload_stop.clone());
                if let Some(models) = &models {
                    match crate::inference::start_model_watch(models, &config.reload, &reload_stop) {
                        Ok(()) => tracing::info!("watching the model files for new versions"),
                        Err(e) => tracing::error!(error = %e, "cannot start model hot swap"),
                    }
                }
            }
            tracing::info!(pipeline = %config.name, stages = pipeline.stages.len(), "pipeline started");
            let run_done = CancellationToken::new();
            if let Some(ready) = readiness.clone() {
                // Plugins are loaded and the source is built: ready once the
                // source is connected (a Kafka consumer has joined its group),
                // until a signal starts the shutdown.
                // Not ready either while an output cannot reach its server
                // (Redis, PostgreSQL, an HTTP endpoint).
                let stopping = shutdown.clone();
                let done = run_done.clone();
                let kafka = kafka.clone();
                let stats = pipeline.stats.clone();
                tokio::spawn(async move {
                    let connected = async {
                        while !kafka.as_ref().is_none_or(|k| k.joined()) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        _ = stopping.cancelled() => return,
                        _ = done.cancelled() => return,
                        _ = connected => {}
                    }
                    loop {
                        ready.set(stats.sinks_up());
                        tokio::select! {
                            _ = stopping.cancelled() => {
                                ready.set(false);
                                return;
                            }
                            _ = done.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                });
            }
            let progress_stop = CancellationToken::new();
            let progress = (!self.quiet).then(|| {
                tokio::spawn(crate::telemetry::report_progress(
                    pipeline.stats.clone(),
                    kafka.clone(),
                    Duration::from_secs(1),
                    progress_stop.clone(),
                ))
            });
            let result = pipeline.run(shutdown.clone()).await;
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
                linger(&runtime, admin, signals, shutdown.is_cancelled());
                return Err(e);
            }
        };
        tracing::info!(
            events_in = summary.events_in,
            events_out = summary.events_out,
            dead_letters = summary.dead_letters,
            "pipeline finished"
        );
        let undelivered = summary.chunks_failed > 0 || summary.chunks_unacked > 0;
        if undelivered {
            tracing::error!(
                failed = summary.chunks_failed,
                unacknowledged = summary.chunks_unacked,
                "some events were not delivered"
            );
        }
        linger(&runtime, admin, signals, shutdown.is_cancelled());
        // The source's reader thread may be blocked on stdin: don't wait for it.
        runtime.shutdown_timeout(Duration::from_millis(100));
        if let Some(models) = &models {
            models.shutdown();
        }
        if undelivered {
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}
