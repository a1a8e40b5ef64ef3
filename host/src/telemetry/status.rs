//! `/status.json`: what `weir status` prints (versions, swaps, refusals,
//! recent reloads) plus the live counters, for the status page.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::metrics::Live;
use super::versions::VersionsSnapshot;
use crate::source::PartitionMetrics;

#[derive(Debug, Serialize)]
pub struct StatusDoc {
    pub pipeline: String,
    pub source: String,
    pub ready: bool,
    pub uptime_secs: f64,
    pub now_ms: i64,
    pub events_in: u64,
    pub events_out: u64,
    pub dead_letters: u64,
    pub chunks_failed: u64,
    pub outputs: BTreeMap<String, OutputDoc>,
    pub stages: Vec<StageDoc>,
    pub kafka: Vec<PartitionMetrics>,
    /// What `weir status` prints.
    pub reload: VersionsSnapshot,
}

#[derive(Debug, Serialize)]
pub struct OutputDoc {
    pub events: u64,
    /// End-to-end latency (event time → sink), 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Requests to the sink's server (http, redis, postgres), retries
    /// included; retries; events given up on; requests in flight; whether
    /// the server is reachable; request latency, 99th percentile, ms.
    pub requests: u64,
    pub retries: u64,
    pub failures: u64,
    pub in_flight: u64,
    pub up: bool,
    pub request_p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct StageDoc {
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub events_in: u64,
    pub events_out: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub faults: u64,
    pub swaps: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub memory_bytes: u64,
    /// A keyed stage's state (`None`: not keyed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateDoc>,
}

/// A keyed stage's state, as `/metrics` says it (`weir_state_*`).
#[derive(Debug, Serialize)]
pub struct StateDoc {
    /// Keys in the store (approximate).
    pub keys: u64,
    /// Disk bytes of the stage's state.
    pub bytes: u64,
    /// Events at or behind the watermark (late).
    pub late_events: u64,
    /// The stage's watermark, ms since the epoch (`None`: none yet).
    pub watermark_ms: Option<i64>,
}

fn ms(seconds: Option<f64>) -> Option<f64> {
    seconds.map(|s| (s * 1e6).round() / 1e3)
}

impl StatusDoc {
    pub fn build(live: &Live, ready: bool, uptime_secs: f64) -> Self {
        let stats = &live.stats;
        let reload = live.status.snapshot();
        let stages = stats
            .stages
            .iter()
            .map(|(name, s)| {
                let served = reload.stages.get(name);
                let lat = s.latency.snapshot();
                StageDoc {
                    name: name.clone(),
                    plugin: served.map(|v| v.plugin.clone()).unwrap_or_default(),
                    version: served.map(|v| v.version.clone()).unwrap_or_default(),
                    events_in: s.events_in.load(Relaxed),
                    events_out: s.events_out.load(Relaxed),
                    dead_letters: s.dead_letters.load(Relaxed),
                    batches: s.calls.load(Relaxed),
                    faults: s.traps.load(Relaxed)
                        + s.deadlines.load(Relaxed)
                        + s.memory_faults.load(Relaxed),
                    swaps: served.map_or(0, |v| v.swaps),
                    p50_ms: ms(lat.quantile(0.5)),
                    p99_ms: ms(lat.quantile(0.99)),
                    memory_bytes: s.memory_bytes.load(Relaxed),
                    state: s.state_size(name).map(|size| {
                        let w = s.watermark_ms.load(Relaxed);
                        StateDoc {
                            keys: size.keys,
                            bytes: size.bytes,
                            late_events: s.late_events.load(Relaxed),
                            watermark_ms: (w != i64::MIN && w != i64::MAX).then_some(w),
                        }
                    }),
                }
            })
            .collect();
        let outputs = stats
            .outputs
            .iter()
            .map(|(name, c)| {
                let p99 = stats
                    .end_to_end
                    .get(name)
                    .and_then(|h| h.snapshot().quantile(0.99));
                let sink = stats.sinks.get(name).cloned().unwrap_or_default();
                (
                    name.clone(),
                    OutputDoc {
                        events: c.load(Relaxed),
                        p99_ms: ms(p99),
                        requests: sink.requests.load(Relaxed),
                        retries: sink.retries.load(Relaxed),
                        failures: sink.failures.load(Relaxed),
                        in_flight: sink.in_flight.load(Relaxed),
                        up: sink.is_up(),
                        request_p99_ms: ms(sink.latency.snapshot().quantile(0.99)),
                    },
                )
            })
            .collect();
        Self {
            pipeline: live.pipeline.clone(),
            source: live.source.clone(),
            ready,
            uptime_secs,
            now_ms: crate::event::now_ms(),
            events_in: stats.events_in.load(Relaxed),
            events_out: stats.events_out(),
            dead_letters: stats.dead_letters.load(Relaxed),
            chunks_failed: stats.chunks_failed.load(Relaxed),
            outputs,
            stages,
            kafka: live
                .kafka
                .as_ref()
                .map(|k| k.snapshot())
                .unwrap_or_default(),
            reload,
        }
    }
}
