//! Counters the pipeline keeps as it runs. Plain atomics: cheap on the data
//! path, read by the progress line (and by the metrics exporter).

pub mod progress;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::plugin::CallError;

/// Counters of one stage.
#[derive(Debug, Default)]
pub struct StageStats {
    pub events_in: AtomicU64,
    pub events_out: AtomicU64,
    pub dead_letters: AtomicU64,
    pub calls: AtomicU64,
    pub call_nanos: AtomicU64,
    pub traps: AtomicU64,
    pub deadlines: AtomicU64,
    pub memory_faults: AtomicU64,
}

impl StageStats {
    pub fn record_in(&self, n: usize) {
        self.events_in.fetch_add(n as u64, Relaxed);
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

/// Counters of a whole pipeline.
#[derive(Debug, Default)]
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
}

impl PipelineStats {
    pub fn new(outputs: impl IntoIterator<Item = String>, stages: &[String]) -> Self {
        Self {
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

    /// Events delivered to all outputs (not the dead-letter one).
    pub fn events_out(&self) -> u64 {
        self.outputs.values().map(|c| c.load(Relaxed)).sum()
    }
}
