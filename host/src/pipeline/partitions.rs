//! Keyed state follows Kafka partitions: the Kafka source tells
//! [`StateAssignments`] of its rebalances (on its consumer thread, inside
//! librdkafka's rebalance callback). On assignment, each partition's state
//! is restored from the stages' changelogs (what the store lacks of it:
//! everything after its checkpoint) before any of its events is read, and
//! the partition starts after the stored progress. On revocation — once the
//! partition's in-flight events were acknowledged, which for a keyed
//! pipeline means committed (state, changelog, offsets) — the partition's
//! local state is forgotten, so a later assignment restores whatever
//! another process made of it meanwhile.

use std::sync::Arc;
use std::time::Instant;

use crate::source::{Assignments, StreamPartition};
use crate::state::{Changelog, StateStore};
use crate::telemetry::PipelineStats;

/// The keyed state's side of a Kafka source's rebalances.
pub struct StateAssignments {
    store: StateStore,
    /// `None` (`[state] changelog = "off"`): state stays on this machine; an
    /// assignment only seeks to the stored progress, a revocation keeps it.
    changelog: Option<Arc<Changelog>>,
    stats: Arc<PipelineStats>,
}

impl StateAssignments {
    pub fn new(
        store: StateStore,
        changelog: Option<Arc<Changelog>>,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self {
            store,
            changelog,
            stats,
        }
    }

    fn restore(&self, changelog: &Changelog, partition: i32) -> Result<(), String> {
        for stage in changelog.stages() {
            let started = Instant::now();
            let restored = changelog
                .restore(&self.store, &stage, partition)
                .map_err(|e| format!("restoring partition {partition} of stage {stage}: {e}"))?;
            let took = started.elapsed();
            self.stats.state_restore.observe(took.as_secs_f64());
            tracing::info!(
                records = restored.records,
                progress = ?restored.progress,
                "restored partition {partition} of stage {stage}: {} keys in {} ms",
                restored.keys,
                took.as_millis()
            );
        }
        Ok(())
    }
}

impl Assignments for StateAssignments {
    fn assigned(
        &self,
        partitions: &[StreamPartition],
    ) -> Result<Vec<(StreamPartition, i64)>, String> {
        if let Some(changelog) = &self.changelog {
            // State is per partition number (the changelog's partition).
            let mut numbers: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
            numbers.sort_unstable();
            numbers.dedup();
            for p in numbers {
                self.restore(changelog, p)?;
            }
        }
        let progress = self.store.progress().map_err(|e| e.to_string())?;
        Ok(partitions
            .iter()
            .filter_map(|tp| progress.get(tp).map(|&at| (tp.clone(), at + 1)))
            .collect())
    }

    fn revoked(&self, partitions: &[StreamPartition], drained: bool) {
        let Some(changelog) = &self.changelog else {
            return;
        };
        if !drained {
            // A commit of these partitions may still land: keep what the
            // store has (a later assignment catches up from its checkpoint).
            tracing::warn!(
                partitions = partitions.len(),
                "revoked partitions were not drained in time: their local state is kept"
            );
            return;
        }
        let stages = changelog.stages();
        for (stream, p) in partitions {
            match self.store.forget(&stages, stream, *p) {
                Ok(n) => tracing::info!(entries = n, "forgot the state of {stream}[{p}] (revoked)"),
                Err(e) => tracing::warn!(error = %e, "forgetting the state of {stream}[{p}]"),
            }
        }
    }
}
