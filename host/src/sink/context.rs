//! What the pipeline hands a sink before its first batch ([`SinkContext`]).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::SinkBatch;
use crate::event::Event;
use crate::pipeline::{AckSet, DeadLetter};
use crate::telemetry::SinkStats;

/// A sink's place in the running pipeline.
#[derive(Clone)]
pub struct SinkContext {
    /// The output's name (`"dead-letter"` for the dead-letter output).
    pub name: Arc<str>,
    /// The counters `/metrics`, the status page and `/readyz` read.
    pub stats: Arc<SinkStats>,
    /// Where events the server refused for good go; `None` for the
    /// dead-letter output itself.
    pub dead_letters: Option<DeadLetters>,
    /// Cancelled when the pipeline stops (signal, or another part failed):
    /// retries that would go on forever give up then.
    pub stop: CancellationToken,
}

impl SinkContext {
    /// A context for a sink used on its own (tests, benchmarks).
    pub fn detached(name: &str) -> Self {
        Self {
            name: name.into(),
            stats: Arc::default(),
            dead_letters: None,
            stop: CancellationToken::new(),
        }
    }

    /// The context `attach` left in `slot`, or a detached one named `name`
    /// (a sink used on its own).
    pub fn attached(slot: &mut Option<SinkContext>, name: &str) -> Self {
        slot.get_or_insert_with(|| Self::detached(name)).clone()
    }

    /// Marks the sink down, then probes `connect` in the background (with
    /// `retry`'s backoff, until it answers or the pipeline stops) and marks
    /// it up: `/readyz` says not ready until the server answers. `server`
    /// names it in the log.
    pub fn probe_until_up<F, Fut, T, E>(
        &self,
        server: &'static str,
        retry: super::retry::RetryConfig,
        mut connect: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send,
        E: std::fmt::Display + Send,
    {
        self.stats.set_up(false);
        let (stats, stop, output) = (self.stats.clone(), self.stop.clone(), self.name.clone());
        tokio::spawn(async move {
            let mut attempt = 0;
            while !stop.is_cancelled() && !stats.is_up() {
                match connect().await {
                    Ok(_) => {
                        stats.set_up(true);
                        tracing::info!(output = &*output, "{server} reachable");
                    }
                    Err(e) => {
                        attempt += 1;
                        if attempt == 1 {
                            tracing::warn!(output = &*output, error = %e, "{server} cannot be reached yet");
                        }
                        tokio::time::sleep(retry.backoff(attempt)).await;
                    }
                }
            }
        });
    }

    /// Sends `events` to the dead letters with `reason` (keeping them under
    /// `acks`); without a dead-letter output, fails `acks` and returns
    /// `false`.
    pub async fn dead_letter(&self, events: Vec<Event>, reason: &str, acks: &AckSet) -> bool {
        let n = events.len() as u64;
        self.stats
            .failures
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        match &self.dead_letters {
            Some(dl) => dl.send(events, reason, acks).await,
            None => {
                acks.fail();
                false
            }
        }
    }
}

/// The pipeline's dead-letter output, as seen from another output's sink.
#[derive(Clone)]
pub struct DeadLetters {
    tx: mpsc::Sender<SinkBatch>,
    /// `output <name>`: the dead letters' `weir.stage` header.
    stage: Arc<str>,
}

impl DeadLetters {
    pub fn new(tx: mpsc::Sender<SinkBatch>, output: &str) -> Self {
        Self {
            tx,
            stage: format!("output {output}").into(),
        }
    }

    /// Sends `events` as dead letters with `reason`, under `acks`. `false`
    /// (and `acks` failed) if the dead-letter output has stopped.
    pub async fn send(&self, events: Vec<Event>, reason: &str, acks: &AckSet) -> bool {
        let events = events
            .into_iter()
            .map(|event| {
                DeadLetter {
                    event,
                    reason: reason.to_owned(),
                    stage: Some(self.stage.clone()),
                    plugin: None,
                    plugin_version: None,
                }
                .into_event()
            })
            .collect();
        SinkBatch::send(&self.tx, events, acks).await
    }
}
