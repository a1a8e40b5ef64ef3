//! Runs a pipeline: the source driver (with the micro-batcher), one thread
//! per plugin stage, the fan-out to outputs, and one task per sink, joined by
//! bounded channels so a slow sink or plugin slows the source down instead of
//! filling memory. Shutdown stops reading, drains what was read through to
//! the sinks, and waits for every acknowledgement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ack::{AckSet, AckStatus, Finalizer, ack_channel};
use super::batch::Batch;
use super::commit::{
    CommitMsg, CommitTracker, Committed, CommittedRx, END_CHUNK, PipelineState, spawn_committer,
};
use super::route::Routes;
use super::stage::Stage;
use crate::endpoint::EndpointError;
use crate::sink::{DeadLetters, Sink, SinkBatch, SinkContext};
use crate::source::Source;
use crate::telemetry::{DEAD_LETTER_SINK, PipelineStats, SinkStats};

/// Batches in flight between two steps of the pipeline. With `max_events`
/// per batch, at most `(stages + 2) * QUEUE_DEPTH + 2` batches are in memory.
pub const QUEUE_DEPTH: usize = 2;

/// How the micro-batcher cuts batches.
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    pub max_events: usize,
    pub max_wait: Duration,
}

/// Everything a pipeline runs with, built and started (plugins initialized).
pub struct Pipeline {
    pub source: Box<dyn Source>,
    pub batch: BatchPolicy,
    pub stages: Vec<Stage>,
    /// Sinks by output name; `"default"` is always there.
    pub outputs: BTreeMap<String, Box<dyn Sink>>,
    pub dead_letter: Box<dyn Sink>,
    pub stats: Arc<PipelineStats>,
    /// How long shutdown waits for in-flight events to be acknowledged.
    pub drain_timeout: Duration,
    /// The keyed state store, if a stage is keyed: batches commit their
    /// state and source progress once acknowledged, and a restart skips
    /// what was applied.
    pub state: Option<PipelineState>,
}

/// How a run ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub events_in: u64,
    pub events_out: u64,
    pub dead_letters: u64,
    pub chunks_failed: u64,
    /// Chunks still unacknowledged when the drain timeout passed.
    pub chunks_unacked: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("source: {0}")]
    Source(#[from] EndpointError),
    #[error("output `{output}`: {message}")]
    Sink { output: String, message: String },
    #[error("{0}")]
    Stage(String),
    #[error("state: {0}")]
    State(String),
    #[error("{0}")]
    Internal(String),
}

impl Pipeline {
    /// Runs until the source is exhausted or `shutdown` is cancelled, then
    /// drains. Returns an error if a source or sink failed for good.
    pub async fn run(self, shutdown: CancellationToken) -> Result<RunSummary, RunError> {
        let Pipeline {
            source,
            batch,
            stages,
            outputs,
            dead_letter,
            stats,
            drain_timeout,
            state,
        } = self;
        // A fatal sink error stops the source like a signal would.
        let stop = shutdown.child_token();
        let fatal: Arc<std::sync::Mutex<Option<RunError>>> = Arc::default();

        // Sinks: the outputs in name order (their places in the fan-out),
        // then the dead-letter output.
        let routes = Routes::only(outputs.keys().map(String::as_str));
        let default = routes
            .names()
            .iter()
            .position(|n| &**n == "default")
            .ok_or_else(|| RunError::Internal("the pipeline has no default output".into()))?;
        let mut sink_tasks = Vec::new();
        let mut spawn_sink =
            |role: SinkRole, mut sink: Box<dyn Sink>, dead: Option<DeadLetters>| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                let name = match &role {
                    SinkRole::Output(name) => name.as_str(),
                    SinkRole::DeadLetter => DEAD_LETTER_SINK,
                };
                let counters = stats.sinks.get(name).cloned().unwrap_or_default();
                sink.attach(SinkContext {
                    name: name.into(),
                    stats: counters.clone(),
                    dead_letters: dead,
                    stop: stop.clone(),
                });
                sink_tasks.push(tokio::spawn(run_sink(
                    role,
                    sink,
                    rx,
                    counters,
                    stats.clone(),
                    stop.clone(),
                    fatal.clone(),
                )));
                tx
            };
        // The dead-letter output first: the others send it what their
        // servers refuse.
        let dead_letter = spawn_sink(SinkRole::DeadLetter, dead_letter, None);
        let outputs: Vec<mpsc::Sender<SinkBatch>> = outputs
            .into_iter()
            .map(|(name, sink)| {
                let dead = DeadLetters::new(dead_letter.clone(), &name);
                spawn_sink(SinkRole::Output(name), sink, Some(dead))
            })
            .collect();
        stats
            .sinks_attached
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // The committer, and where the driver resumes, if state is kept.
        let mut committer = None;
        let mut tracker = None;
        let mut staged = None;
        let mut committed = None;
        if let Some(state) = &state {
            let resume = state
                .store
                .progress()
                .map_err(|e| RunError::State(e.to_string()))?;
            let (tx, handle, reports) = spawn_committer(state, stats.clone(), stop.clone())
                .map_err(|e| {
                    RunError::Internal(format!("cannot start the state committer: {e}"))
                })?;
            tracker = Some(CommitTracker::new(tx.clone(), resume));
            staged = Some(tx);
            committer = Some(handle);
            committed = Some(reports);
        }
        let fan_out = FanOut {
            outputs,
            default,
            dead_letter,
            staged,
        };

        // Stages, one thread each, chained.
        let (first_tx, mut rx) = mpsc::channel::<Batch>(QUEUE_DEPTH);
        let mut stage_threads = Vec::new();
        for mut stage in stages {
            stage.route_to(routes.clone());
            let (tx, next_rx) = mpsc::channel::<Batch>(QUEUE_DEPTH);
            let mut input = rx;
            if let Some(finder) = stage.key_finder() {
                // A keyed stage's state keys are found on a thread of their
                // own, for the batch after the one the stage is processing.
                let (keys_tx, keys_rx) = mpsc::channel::<Batch>(QUEUE_DEPTH);
                let mut from = input;
                let handle = std::thread::Builder::new()
                    .name(format!("weir-keys-{}", stage.name()))
                    .spawn(move || {
                        while let Some(mut batch) = from.blocking_recv() {
                            batch.state_keys = finder.keys(&batch.events);
                            if keys_tx.blocking_send(batch).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| RunError::Internal(format!("cannot start a key thread: {e}")))?;
                stage_threads.push(handle);
                input = keys_rx;
            }
            let name = format!("weir-stage-{}", stage.name());
            let (stop, fatal) = (stop.clone(), fatal.clone());
            // Log lines of the stage thread (plugin lines included) carry the
            // stage and the plugin; each batch's span adds the version serving
            // it and its partitions (see `Stage::process`).
            let span = tracing::info_span!(
                "stage",
                stage = %stage.name(),
                plugin = %stage.plugin().name,
            );
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let _span = span.enter();
                    while let Some(mut batch) = input.blocking_recv() {
                        stage.record_queued(input.len());
                        stage.process(&mut batch);
                        if let Some(reason) = stage.take_fatal() {
                            if let Ok(mut f) = fatal.lock() {
                                f.get_or_insert(RunError::Stage(reason));
                            }
                            stop.cancel();
                        }
                        if tx.blocking_send(batch).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| RunError::Internal(format!("cannot start a stage thread: {e}")))?;
            stage_threads.push(handle);
            rx = next_rx;
        }

        let fan_out = tokio::spawn(fan_out.run(rx));
        let driven = drive_source(
            source,
            batch,
            first_tx,
            stop.clone(),
            stats.clone(),
            drain_timeout,
            tracker,
            committed,
        )
        .await;
        let (chunks_unacked, source_result) = match driven {
            Ok(unacked) => (unacked, Ok(())),
            Err(e) => (0, Err(e)),
        };

        if fan_out.await.is_err() {
            return Err(RunError::Internal("the fan-out task panicked".into()));
        }
        for t in sink_tasks {
            if t.await.is_err() {
                return Err(RunError::Internal("a sink task panicked".into()));
            }
        }
        for t in stage_threads {
            if t.join().is_err() {
                return Err(RunError::Internal("a stage thread panicked".into()));
            }
        }
        if let Some(handle) = committer {
            // Every sender is gone (driver and fan-out ended): it commits
            // what is left and ends.
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            match joined {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => return Err(RunError::State(e)),
                _ => return Err(RunError::Internal("the state committer panicked".into())),
            }
        }
        if let Some(err) = fatal.lock().ok().and_then(|mut f| f.take()) {
            return Err(err);
        }
        source_result?;
        Ok(RunSummary {
            events_in: stats.events_in.load(Relaxed),
            events_out: stats.events_out(),
            dead_letters: stats.dead_letters.load(Relaxed),
            chunks_failed: stats.chunks_failed.load(Relaxed),
            chunks_unacked,
        })
    }
}

/// Reads the source into batches of at most `max_events`, cut early after
/// `max_wait`; hands acknowledgements back to the source; on shutdown or
/// end of input, flushes and waits for every outstanding chunk's ack.
/// Returns the number of chunks still unacknowledged at the end. With keyed
/// state, a chunk's acknowledgement reaches the source once its batch is
/// committed (`committed`: the committer's reports).
#[allow(clippy::too_many_arguments)]
async fn drive_source(
    mut source: Box<dyn Source>,
    policy: BatchPolicy,
    tx: mpsc::Sender<Batch>,
    stop: CancellationToken,
    stats: Arc<PipelineStats>,
    drain_timeout: Duration,
    mut tracker: Option<CommitTracker>,
    mut committed: Option<CommittedRx>,
) -> Result<u64, RunError> {
    let (ack_tx, mut ack_rx) = ack_channel();
    let mut outstanding = 0u64;
    let mut seq = 0u64;
    let mut pending = Batch::default();
    let mut finalizers: Vec<Finalizer> = Vec::new();
    let mut pending_len = 0usize;
    let mut deadline: Option<Instant> = None;
    let mut exhausted = false;
    let mut stopping = false;
    tracing::info!(source = %source.describe(), "reading");

    loop {
        let room = policy.max_events.saturating_sub(pending_len);
        let mut flush = false;
        tokio::select! {
            biased;
            _ = stop.cancelled(), if !stopping => {
                tracing::info!("stopping: no more reads; draining in-flight events");
                stopping = true;
            }
            Some(ack) = ack_rx.recv() => {
                outstanding -= 1;
                handle_ack(ack, &mut tracker, &stats, source.as_mut()).await?;
            }
            report = next_report(&mut committed), if committed.is_some() => {
                on_report(report, &mut committed, &mut tracker, &stats, source.as_mut()).await?;
            }
            _ = sleep_until(deadline), if deadline.is_some() => flush = true,
            read = source.read(room), if !exhausted && !stopping && room > 0 => match read? {
                Some(mut read) if !read.is_empty() => {
                    let skipped = tracker.as_mut().map_or(0, |t| t.skip_applied(&mut read));
                    let n = read.len();
                    outstanding += 1;
                    if n == 0 {
                        // All applied before a restart: acknowledged at once.
                        let done = Finalizer::new(read.chunk, skipped, ack_tx.clone());
                        done.mark_reached_sinks();
                        continue;
                    }
                    stats.events_in.fetch_add(n as u64, Relaxed);
                    finalizers.push(Finalizer::new(read.chunk, n + skipped, ack_tx.clone()));
                    if let Some(t) = tracker.as_mut() {
                        t.add_chunk(read.chunk);
                    }
                    pending.events.extend(read.events);
                    pending.dead.extend(read.rejects);
                    pending_len += n;
                    deadline.get_or_insert_with(|| Instant::now() + policy.max_wait);
                }
                Some(_) => {}
                None => exhausted = true,
            },
        }
        let ending = exhausted || stopping;
        if pending_len > 0 && (flush || pending_len >= policy.max_events || ending) {
            let mut batch = std::mem::take(&mut pending);
            stats.batch_events.observe(pending_len as f64);
            batch.seq = seq;
            seq += 1;
            batch.acks = AckSet::new(std::mem::take(&mut finalizers));
            if let Some(t) = tracker.as_mut() {
                let dead = batch.dead.iter().map(|d| &d.event.position);
                t.cut(
                    batch.seq,
                    batch.events.iter().map(|e| &e.position).chain(dead),
                );
            }
            pending_len = 0;
            deadline = None;
            if tx.send(batch).await.is_err() {
                return Err(RunError::Internal("the stage chain stopped early".into()));
            }
        }
        if ending && pending_len == 0 {
            break;
        }
    }
    // A finite input ended: keyed stages get a last, empty batch in which
    // every timer left is due.
    if exhausted
        && !stopping
        && let Some(t) = tracker.as_mut()
    {
        t.add_chunk(END_CHUNK);
        t.cut(seq, std::iter::empty());
        let batch = Batch {
            seq,
            end_of_input: true,
            acks: AckSet::new(vec![Finalizer::new(END_CHUNK, 0, ack_tx.clone())]),
            ..Batch::default()
        };
        outstanding += 1;
        if tx.send(batch).await.is_err() {
            return Err(RunError::Internal("the stage chain stopped early".into()));
        }
    }
    if let Some(t) = &tracker
        && t.skipped() > 0
    {
        tracing::info!(
            events = t.skipped(),
            "skipped events whose state effects were already stored"
        );
    }
    // No more batches: the stages drain and exit, then the sinks.
    drop(tx);
    drop(ack_tx);
    let give_up = Instant::now() + drain_timeout;
    while outstanding > 0 {
        match tokio::time::timeout_at(give_up, ack_rx.recv()).await {
            Ok(Some(ack)) => {
                outstanding -= 1;
                handle_ack(ack, &mut tracker, &stats, source.as_mut()).await?;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::error!(
                    chunks = outstanding,
                    "drain timeout: some events were not acknowledged (they will be read again where the source supports it)"
                );
                break;
            }
        }
    }
    // Keyed state: the last acknowledgements reach the source as their
    // batches commit.
    while committed.is_some() && tracker.as_ref().is_some_and(|t| t.holding() > 0) {
        match tokio::time::timeout_at(give_up, next_report(&mut committed)).await {
            Ok(report) => {
                on_report(
                    report,
                    &mut committed,
                    &mut tracker,
                    &stats,
                    source.as_mut(),
                )
                .await?;
            }
            Err(_) => {
                tracing::error!(
                    "drain timeout: some batches were not committed (they will be read again where the source supports it)"
                );
                break;
            }
        }
    }
    source.close().await?;
    Ok(outstanding)
}

/// One acknowledgement: to the state committer's tracker (which holds it
/// until its batch is committed), else to the source.
async fn handle_ack(
    ack: super::ack::Ack,
    tracker: &mut Option<CommitTracker>,
    stats: &PipelineStats,
    source: &mut dyn Source,
) -> Result<(), RunError> {
    let acks = match tracker.as_mut() {
        Some(t) => t.acked(ack),
        None => vec![ack],
    };
    to_source(acks, stats, source).await
}

/// The next report of the committer (`None`: it stopped).
async fn next_report(committed: &mut Option<CommittedRx>) -> Option<Committed> {
    match committed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A committer report: the acknowledgements of the committed batches go to
/// the source (all of them, failed, if the committer stalled or stopped).
async fn on_report(
    report: Option<Committed>,
    committed: &mut Option<CommittedRx>,
    tracker: &mut Option<CommitTracker>,
    stats: &PipelineStats,
    source: &mut dyn Source,
) -> Result<(), RunError> {
    if report.is_none() {
        *committed = None;
    }
    let acks = tracker
        .as_mut()
        .map(|t| t.committed(report))
        .unwrap_or_default();
    to_source(acks, stats, source).await
}

/// Hands acknowledgements to the source (except the driver's own
/// end-of-input chunk's).
async fn to_source(
    acks: Vec<super::ack::Ack>,
    stats: &PipelineStats,
    source: &mut dyn Source,
) -> Result<(), RunError> {
    for ack in acks {
        if ack.chunk == END_CHUNK {
            continue;
        }
        count_ack(stats, ack.status);
        source.ack(ack).await?;
    }
    Ok(())
}

fn count_ack(stats: &PipelineStats, status: AckStatus) {
    match status {
        AckStatus::Delivered => stats.chunks_delivered.fetch_add(1, Relaxed),
        AckStatus::Failed => stats.chunks_failed.fetch_add(1, Relaxed),
    };
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Hands each finished batch to the sinks, in batch order: its default
/// events and what stages routed, to each output at its place; its dead
/// letters to the dead-letter output. Routes were checked by the stages.
struct FanOut {
    /// The outputs' sinks, at their places ([`Routes`] order).
    outputs: Vec<mpsc::Sender<SinkBatch>>,
    /// The place of the `default` output.
    default: usize,
    dead_letter: mpsc::Sender<SinkBatch>,
    /// The state committer: what each batch's keyed stages wrote.
    staged: Option<std::sync::mpsc::Sender<CommitMsg>>,
}

impl FanOut {
    async fn run(self, mut rx: mpsc::Receiver<Batch>) {
        while let Some(batch) = rx.recv().await {
            let Batch {
                seq,
                events,
                routed,
                dead,
                acks,
                state,
                ..
            } = batch;
            if let Some(staged) = &self.staged {
                // Before the batch's acks can complete. A failed send means
                // the committer stopped on an error, which the run reports.
                let _ = staged.send(CommitMsg::Staged { seq, delta: state });
            }
            acks.mark_reached_sinks();
            let dead = dead.into_iter().map(|d| d.into_event()).collect();
            SinkBatch::send(&self.dead_letter, dead, &acks).await;
            let mut routed = routed.into_places();
            let mut unrouted = Some(events);
            for (place, tx) in self.outputs.iter().enumerate() {
                let mut events = routed.next().unwrap_or_default();
                if place == self.default
                    && let Some(mut first) = unrouted.take()
                {
                    first.append(&mut events);
                    events = first;
                }
                // A stopped sink recorded its fatal error already; the
                // failed acks report the chunk failed.
                SinkBatch::send(tx, events, &acks).await;
            }
        }
    }
}

/// Event time → now, for each event a sink just accepted (events without a
/// timestamp are skipped; one from the future counts as 0).
fn record_latency(histogram: &crate::telemetry::AtomicHistogram, stamps: &[i64]) {
    let now = crate::event::now_ms();
    for &t in stamps.iter().filter(|t| **t > 0) {
        histogram.observe((now - t).max(0) as f64 / 1000.0);
    }
}

/// What a sink is to the pipeline: which counters its deliveries add to,
/// and its name in errors.
enum SinkRole {
    Output(String),
    DeadLetter,
}

async fn run_sink(
    role: SinkRole,
    mut sink: Box<dyn Sink>,
    mut rx: mpsc::Receiver<SinkBatch>,
    counters: Arc<SinkStats>,
    stats: Arc<PipelineStats>,
    stop: CancellationToken,
    fatal: Arc<std::sync::Mutex<Option<RunError>>>,
) {
    let (label, counter, latency) = match &role {
        SinkRole::Output(name) => (
            name.clone(),
            stats.outputs.get(name),
            stats.end_to_end.get(name),
        ),
        SinkRole::DeadLetter => (
            "dead-letter".to_string(),
            Some(&stats.dead_letters),
            Some(&stats.dead_letter_latency),
        ),
    };
    let mut failed = false;
    let mut stamps: Vec<i64> = Vec::new();
    let fail = |err: EndpointError, failed: &mut bool| {
        tracing::error!(output = %label, error = %err, "output failed; stopping the pipeline");
        if let Ok(mut f) = fatal.lock() {
            f.get_or_insert(RunError::Sink {
                output: label.clone(),
                message: err.to_string(),
            });
        }
        *failed = true;
        stop.cancel();
    };
    loop {
        let batch = match rx.try_recv() {
            Ok(batch) => batch,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing queued: what the sink holds back is completed.
                if !failed && let Err(err) = sink.settle().await {
                    fail(err, &mut failed);
                }
                match rx.recv().await {
                    Some(batch) => batch,
                    None => break,
                }
            }
        };
        counters.queued.store(rx.len() as u64, Relaxed);
        if failed {
            batch.acks.fail();
            continue;
        }
        let n = batch.events.len() as u64;
        stamps.clear();
        stamps.extend(batch.events.iter().map(|e| e.timestamp_ms));
        match sink.send(batch).await {
            Ok(()) => {
                if let Some(latency) = latency {
                    record_latency(latency, &stamps);
                }
                if let Some(counter) = counter {
                    counter.fetch_add(n, Relaxed);
                }
            }
            Err(err) => fail(err, &mut failed),
        }
    }
    if let Err(err) = sink.flush().await {
        tracing::error!(output = %label, error = %err, "flushing the output failed");
        if let Ok(mut f) = fatal.lock() {
            f.get_or_insert(RunError::Sink {
                output: label,
                message: err.to_string(),
            });
        }
    }
}
