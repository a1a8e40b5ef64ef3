//! Counters the pipeline keeps as it runs. Plain atomics: cheap on the data
//! path, read by the progress line (and by the metrics exporter).

mod admin;
mod histogram;
mod metrics;
mod progress;
mod status;
mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::plugin::CallError;

pub use admin::{Admin, AdminConfig, AdminError, Readiness};
pub use histogram::{AtomicHistogram, HistogramSnapshot};
pub use metrics::{Live, Metrics};
pub use progress::report_progress;
pub use versions::{
    ModelEvent, ModelStatus, ReloadEvent, StageVersion, VersionBoard, VersionsSnapshot,
};

/// Counters of one stage.
#[derive(Debug)]
pub struct StageStats {
    pub events_in: AtomicU64,
    pub events_out: AtomicU64,
    pub dead_letters: AtomicU64,
    pub calls: AtomicU64,
    pub call_nanos: AtomicU64,
    pub traps: AtomicU64,
    pub deadlines: AtomicU64,
    pub memory_faults: AtomicU64,
    /// Time of each batch through the plugin (isolation re-runs included).
    pub latency: AtomicHistogram,
    /// Events per batch handed to the plugin.
    pub batch_events: AtomicHistogram,
    /// Linear memory of the stage's current plugin instance, in bytes.
    pub memory_bytes: AtomicU64,
    /// Batches waiting in the stage's input queue when it last took one.
    pub queued: AtomicU64,
    /// Keyed stages: events whose time was at or behind the watermark.
    pub late_events: AtomicU64,
    /// Keyed stages: the watermark (ms since the epoch; `i64::MIN`: none yet).
    pub watermark_ms: std::sync::atomic::AtomicI64,
    /// Keyed stages: the store, for the state's size (measured when
    /// asked: LSM metadata, no scan). Unset: not keyed.
    pub state: std::sync::OnceLock<StoreHandle>,
    /// Events each instance of the stage was given (index: the instance;
    /// `parallelism` > 1 runs several, at most [`MAX_INSTANCES`]).
    pub instance_events: [AtomicU64; MAX_INSTANCES],
}

/// The most instances of one stage counted apart (`parallelism`'s bound).
pub const MAX_INSTANCES: usize = 64;

impl StageStats {
    /// A keyed stage's state size (`None`: not keyed).
    pub fn state_size(&self, stage: &str) -> Option<crate::state::StateSize> {
        self.state.get().map(|h| h.0.approximate_size(stage))
    }
}

/// The store a keyed stage's state is in, for telemetry.
#[derive(Clone)]
pub struct StoreHandle(pub crate::state::StateStore);

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

impl Default for StageStats {
    fn default() -> Self {
        Self {
            events_in: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            call_nanos: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            deadlines: AtomicU64::new(0),
            memory_faults: AtomicU64::new(0),
            latency: AtomicHistogram::latency(),
            batch_events: AtomicHistogram::batch_events(),
            memory_bytes: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            late_events: AtomicU64::new(0),
            watermark_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            state: std::sync::OnceLock::new(),
            instance_events: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl StageStats {
    pub fn record_in(&self, n: usize) {
        self.events_in.fetch_add(n as u64, Relaxed);
        if n > 0 {
            self.batch_events.observe(n as f64);
        }
    }

    /// `n` events given to instance `instance` of the stage.
    pub fn record_instance(&self, instance: usize, n: usize) {
        if let Some(c) = self.instance_events.get(instance) {
            c.fetch_add(n as u64, Relaxed);
        }
    }

    /// Events per instance, up to the last instance that ran any.
    pub fn instance_events(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .instance_events
            .iter()
            .map(|c| c.load(Relaxed))
            .collect();
        let ran = all.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
        all.truncate(ran);
        all
    }

    pub fn record_out(&self, n: usize) {
        self.events_out.fetch_add(n as u64, Relaxed);
    }

    pub fn record_dead(&self, n: usize) {
        self.dead_letters.fetch_add(n as u64, Relaxed);
    }

    pub fn record_call(&self, took: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.call_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
        self.latency.observe(took.as_secs_f64());
    }

    pub fn record_late(&self, n: usize) {
        self.late_events.fetch_add(n as u64, Relaxed);
    }

    pub fn set_watermark(&self, ms: Option<i64>) {
        if let Some(ms) = ms {
            self.watermark_ms.store(ms, Relaxed);
        }
    }

    pub fn set_memory(&self, bytes: usize) {
        self.memory_bytes.store(bytes as u64, Relaxed);
    }

    pub fn record_fault(&self, fault: &CallError) {
        let counter = match fault {
            CallError::Deadline { .. } => &self.deadlines,
            CallError::OutOfMemory { .. } => &self.memory_faults,
            _ => &self.traps,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Counters of one output's sink: what the action sinks (http, redis,
/// postgres) report about their requests to the server. The other sinks
/// leave them at zero and `up`.
#[derive(Debug)]
pub struct SinkStats {
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Requests that failed and were tried again.
    pub retries: AtomicU64,
    /// Events the sink gave up on: rejected by the server (to the dead
    /// letters) or out of retries.
    pub failures: AtomicU64,
    /// Time of each request, sent to answered.
    pub latency: AtomicHistogram,
    /// Requests or batches accepted by the sink and not settled yet (bounded
    /// by the sink's `concurrency`).
    pub in_flight: AtomicU64,
    /// `false` while the sink cannot reach its server; `/readyz` answers 503.
    pub up: AtomicBool,
    /// Batches waiting in the sink's input queue when it last took one.
    pub queued: AtomicU64,
}

impl Default for SinkStats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: AtomicHistogram::latency(),
            in_flight: AtomicU64::new(0),
            up: AtomicBool::new(true),
            queued: AtomicU64::new(0),
        }
    }
}

impl SinkStats {
    /// Records whether the server is reachable; `true` if that changed.
    pub fn set_up(&self, up: bool) -> bool {
        self.up.swap(up, Relaxed) != up
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }
}

/// The name of the dead-letter output's [`SinkStats`].
pub const DEAD_LETTER_SINK: &str = "dead-letter";

/// Counters of a whole pipeline.
#[derive(Debug)]
pub struct PipelineStats {
    /// Events (and source rejects) read from the source.
    pub events_in: AtomicU64,
    /// Events accepted by each output's sink, by output name.
    pub outputs: BTreeMap<String, AtomicU64>,
    /// Events accepted by the dead-letter sink.
    pub dead_letters: AtomicU64,
    /// Source chunks acknowledged delivered / failed.
    pub chunks_delivered: AtomicU64,
    pub chunks_failed: AtomicU64,
    pub stages: Vec<(String, Arc<StageStats>)>,
    /// Events per batch cut by the micro-batcher.
    pub batch_events: AtomicHistogram,
    /// Event timestamp → accepted by the sink, by output name.
    pub end_to_end: BTreeMap<String, AtomicHistogram>,
    /// Event timestamp → accepted by the dead-letter sink.
    pub dead_letter_latency: AtomicHistogram,
    /// Each output's sink (and the dead-letter one, [`DEAD_LETTER_SINK`]).
    pub sinks: BTreeMap<String, Arc<SinkStats>>,
    /// Keyed state: how long each batch's atomic commit took.
    pub state_commit: AtomicHistogram,
    /// Keyed state on a Kafka source: how long restoring one assigned
    /// partition from the changelog took.
    pub state_restore: AtomicHistogram,
    /// Set once the pipeline has attached every sink (each has said
    /// whether it reaches its server): readiness waits for it.
    pub sinks_attached: AtomicBool,
}

impl Default for PipelineStats {
    fn default() -> Self {
        Self {
            events_in: AtomicU64::new(0),
            outputs: BTreeMap::new(),
            dead_letters: AtomicU64::new(0),
            chunks_delivered: AtomicU64::new(0),
            chunks_failed: AtomicU64::new(0),
            stages: Vec::new(),
            batch_events: AtomicHistogram::batch_events(),
            end_to_end: BTreeMap::new(),
            dead_letter_latency: AtomicHistogram::latency(),
            sinks: BTreeMap::new(),
            state_commit: AtomicHistogram::latency(),
            state_restore: AtomicHistogram::latency(),
            sinks_attached: AtomicBool::new(false),
        }
    }
}

impl PipelineStats {
    pub fn new(outputs: impl IntoIterator<Item = String>, stages: &[String]) -> Self {
        let outputs: Vec<String> = outputs.into_iter().collect();
        Self {
            end_to_end: outputs
                .iter()
                .cloned()
                .map(|n| (n, AtomicHistogram::latency()))
                .collect(),
            sinks: outputs
                .iter()
                .map(String::as_str)
                .chain([DEAD_LETTER_SINK])
                .map(|n| (n.to_owned(), Arc::default()))
                .collect(),
            outputs: outputs
                .into_iter()
                .map(|n| (n, AtomicU64::new(0)))
                .collect(),
            stages: stages
                .iter()
                .map(|s| (s.clone(), Arc::new(StageStats::default())))
                .collect(),
            ..Self::default()
        }
    }

    pub fn stage(&self, name: &str) -> Option<Arc<StageStats>> {
        self.stages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// Whether every sink is attached and reaches its server (before the
    /// pipeline attached them, a sink's `up` is only its default).
    pub fn sinks_up(&self) -> bool {
        self.sinks_attached.load(Relaxed) && self.sinks.values().all(|s| s.is_up())
    }

    /// Events delivered to all outputs (not the dead-letter one).
    pub fn events_out(&self) -> u64 {
        self.outputs.values().map(|c| c.load(Relaxed)).sum()
    }
}
