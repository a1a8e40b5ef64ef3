//! The Prometheus registry `/metrics` serves. The pipeline's own numbers are
//! kept in plain atomics ([`PipelineStats`], [`VersionBoard`], the Kafka
//! source's [`KafkaStats`]) and encoded by one collector at scrape time, so
//! the data path never touches prometheus-client. Other parts of the host
//! (the model registry) register their metrics through
//! [`Metrics::registry_mut`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::versions::{VersionBoard, VersionsSnapshot};
use super::{AtomicHistogram, HistogramSnapshot, PipelineStats, SinkStats, StageStats};
use crate::source::{KafkaStats, PartitionMetrics};
use crate::state::StateSize;

/// What the pipeline collector reads at each scrape.
#[derive(Clone)]
pub struct Live {
    pub pipeline: String,
    /// The source's description ("stdin", "kafka topic …").
    pub source: String,
    pub stats: Arc<PipelineStats>,
    pub status: Arc<VersionBoard>,
    /// The Kafka source's consumer metrics, when the source is Kafka.
    pub kafka: Option<Arc<KafkaStats>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

/// The metrics registry of one `weir run`.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with the pipeline's metrics (`weir_*`).
    pub fn new(live: Live) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PipelineCollector(live)));
        Self { registry }
    }

    /// Where other components add their metrics before serving starts, e.g.
    /// `models.register_metrics(metrics.registry_mut())`.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[derive(Debug)]
struct PipelineCollector(Live);

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn counter(m: &mut MetricEncoder<'_>, v: u64) -> Result<(), std::fmt::Error> {
    m.encode_counter::<NoLabelSet, u64, u64>(&v, None)
}

/// The encoder sums the buckets itself: it takes per-bucket counts.
fn histogram(m: &mut MetricEncoder<'_>, h: &HistogramSnapshot) -> Result<(), std::fmt::Error> {
    let mut below = 0;
    let per_bucket: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let n = cumulative.saturating_sub(below);
            below = cumulative;
            // prometheus-client writes `+Inf` for f64::MAX.
            (if bound.is_finite() { bound } else { f64::MAX }, n)
        })
        .collect();
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &per_bucket, None)
}

/// One metric family: a descriptor, then one sample per label set.
fn family<'a, T: 'a>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (Labels<'a>, T)>,
    mut write: impl FnMut(&mut MetricEncoder<'_>, T) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        if labels.is_empty() {
            write(&mut m, value)?;
        } else {
            write(&mut m.encode_family(&labels)?, value)?;
        }
    }
    Ok(())
}

fn single<T>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    value: T,
    write: impl FnMut(&mut MetricEncoder<'_>, T) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    family(enc, name, help, kind, [(Labels::new(), value)], write)
}

/// `stage` and `plugin` (the one the stage serves now).
fn stage_labels<'a>(snapshot: &'a VersionsSnapshot, stage: &'a str) -> Labels<'a> {
    let plugin = snapshot.stages.get(stage).map_or("", |v| v.plugin.as_str());
    vec![("stage", stage), ("plugin", plugin)]
}

/// One value per output's sink, labelled `output`.
fn per_sink<'a, T>(
    stats: &'a PipelineStats,
    value: impl Fn(&SinkStats) -> T + 'a,
) -> impl Iterator<Item = (Labels<'a>, T)> + 'a {
    stats
        .sinks
        .iter()
        .map(move |(o, s)| (vec![("output", o.as_str())], value(s)))
}

/// One value per stage, labelled with [`stage_labels`].
fn per_stage<'a>(
    stats: &'a PipelineStats,
    snapshot: &'a VersionsSnapshot,
    f: fn(&StageStats) -> u64,
) -> Vec<(Labels<'a>, u64)> {
    stats
        .stages
        .iter()
        .map(|(n, s)| (stage_labels(snapshot, n), f(s)))
        .collect()
}

fn gauge_i64(m: &mut MetricEncoder<'_>, v: i64) -> Result<(), std::fmt::Error> {
    m.encode_gauge(&v)
}

/// A count as a gauge (saturating at `i64::MAX`).
fn gauge_u64(m: &mut MetricEncoder<'_>, v: u64) -> Result<(), std::fmt::Error> {
    gauge_i64(m, i64::try_from(v).unwrap_or(i64::MAX))
}

impl prometheus_client::collector::Collector for PipelineCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Live {
            stats,
            status,
            kafka,
            ..
        } = &self.0;
        let snapshot = status.snapshot();
        use MetricType::{Counter, Gauge, Histogram};
        // The source and the outputs.
        single(
            &mut enc,
            "weir_source_events",
            "Events (and rejects) read from the source.",
            Counter,
            stats.events_in.load(Relaxed),
            counter,
        )?;
        family(
            &mut enc,
            "weir_output_events",
            "Events accepted by each output's sink.",
            Counter,
            stats
                .outputs
                .iter()
                .map(|(o, c)| (vec![("output", o.as_str())], c.load(Relaxed))),
            counter,
        )?;
        single(
            &mut enc,
            "weir_dead_letter_events",
            "Events accepted by the dead-letter sink.",
            Counter,
            stats.dead_letters.load(Relaxed),
            counter,
        )?;
        family(
            &mut enc,
            "weir_source_chunks",
            "Source chunks acknowledged, by outcome.",
            Counter,
            [
                (
                    vec![("status", "delivered")],
                    stats.chunks_delivered.load(Relaxed),
                ),
                (
                    vec![("status", "failed")],
                    stats.chunks_failed.load(Relaxed),
                ),
            ],
            counter,
        )?;
        single(
            &mut enc,
            "weir_batch_events",
            "Events per batch cut by the micro-batcher.",
            Histogram,
            &stats.batch_events.snapshot(),
            histogram,
        )?;
        let e2e: Vec<_> = stats
            .end_to_end
            .iter()
            .map(|(o, h)| (vec![("output", o.as_str())], h.snapshot()))
            .collect();
        family(
            &mut enc,
            "weir_end_to_end_latency_seconds",
            "Event timestamp to acceptance by the output's sink.",
            Histogram,
            e2e.iter().map(|(l, h)| (l.clone(), h)),
            histogram,
        )?;
        single(
            &mut enc,
            "weir_dead_letter_latency_seconds",
            "Event timestamp to acceptance by the dead-letter sink.",
            Histogram,
            &stats.dead_letter_latency.snapshot(),
            histogram,
        )?;

        // The outputs' sinks: requests to their servers (http, redis,
        // postgres; the others report zeros and up).
        type SinkValue = fn(&SinkStats) -> u64;
        #[rustfmt::skip]
        let sink_families: [(&str, MetricType, &str, SinkValue); 6] = [
            ("weir_sink_requests", Counter, "Requests the output's sink sent to its server (retries included).", |s| s.requests.load(Relaxed)),
            ("weir_sink_retries", Counter, "Requests the output's sink tried again.", |s| s.retries.load(Relaxed)),
            ("weir_sink_failures", Counter, "Events the output's sink gave up on (refused: to the dead letters; or out of retries).", |s| s.failures.load(Relaxed)),
            ("weir_sink_in_flight", Gauge, "Requests or batches the output's sink has accepted and not settled.", |s| s.in_flight.load(Relaxed)),
            ("weir_sink_up", Gauge, "1 while the output's sink reaches its server.", |s| u64::from(s.is_up())),
            ("weir_sink_queued_batches", Gauge, "Batches waiting in the output's queue when its sink last took one.", |s| s.queued.load(Relaxed)),
        ];
        for (name, kind, help, value) in sink_families {
            let rows = per_sink(stats, value);
            if matches!(kind, Counter) {
                family(&mut enc, name, help, kind, rows, counter)?;
            } else {
                family(&mut enc, name, help, kind, rows, gauge_u64)?;
            }
        }
        let sink_latency: Vec<_> = per_sink(stats, |s| s.latency.snapshot()).collect();
        family(
            &mut enc,
            "weir_sink_request_latency_seconds",
            "Time of one request of the output's sink to its server.",
            Histogram,
            sink_latency.iter().map(|(l, h)| (l.clone(), h)),
            histogram,
        )?;

        // Stages.
        let per_stage = |f: fn(&StageStats) -> u64| per_stage(stats, &snapshot, f);
        family(
            &mut enc,
            "weir_stage_events_in",
            "Events handed to the stage's plugin.",
            Counter,
            per_stage(|s| s.events_in.load(Relaxed)),
            counter,
        )?;
        family(
            &mut enc,
            "weir_stage_events_out",
            "Events the stage's plugin returned.",
            Counter,
            per_stage(|s| s.events_out.load(Relaxed)),
            counter,
        )?;
        family(
            &mut enc,
            "weir_stage_dead_letters",
            "Events the stage sent to the dead-letter output.",
            Counter,
            per_stage(|s| s.dead_letters.load(Relaxed)),
            counter,
        )?;
        family(
            &mut enc,
            "weir_stage_batches",
            "Batches run through the stage.",
            Counter,
            per_stage(|s| s.calls.load(Relaxed)),
            counter,
        )?;
        let mut faults = Vec::new();
        for (n, s) in &stats.stages {
            for (kind, v) in [
                ("trap", s.traps.load(Relaxed)),
                ("deadline", s.deadlines.load(Relaxed)),
                ("memory", s.memory_faults.load(Relaxed)),
            ] {
                let mut l = stage_labels(&snapshot, n);
                l.push(("kind", kind));
                faults.push((l, v));
            }
        }
        family(
            &mut enc,
            "weir_stage_faults",
            "Plugin faults (trap, deadline, memory) of the stage.",
            Counter,
            faults,
            counter,
        )?;
        let instance_names: Vec<String> =
            (0..super::MAX_INSTANCES).map(|i| i.to_string()).collect();
        let mut per_instance = Vec::new();
        for (n, s) in &stats.stages {
            for (name, events) in instance_names.iter().zip(s.instance_events()) {
                let mut l = stage_labels(&snapshot, n);
                l.push(("instance", name.as_str()));
                per_instance.push((l, events));
            }
        }
        family(
            &mut enc,
            "weir_stage_instance_events",
            "Events given to each instance of the stage (`parallelism` > 1 runs several).",
            Counter,
            per_instance,
            counter,
        )?;
        let memory = per_stage(|s| s.memory_bytes.load(Relaxed));
        family(
            &mut enc,
            "weir_stage_memory_bytes",
            "Linear memory of the stage's current plugin instance.",
            Gauge,
            memory,
            gauge_u64,
        )?;
        family(
            &mut enc,
            "weir_stage_queued_batches",
            "Batches waiting in the stage's input queue when it last took one.",
            Gauge,
            per_stage(|s| s.queued.load(Relaxed)),
            gauge_u64,
        )?;
        // Keyed state.
        family(
            &mut enc,
            "weir_stage_late_events",
            "Events of a keyed stage at or behind its watermark.",
            Counter,
            per_stage(|s| s.late_events.load(Relaxed)),
            counter,
        )?;
        let sizes: Vec<_> = stats
            .stages
            .iter()
            .filter_map(|(n, s)| Some((stage_labels(&snapshot, n), s.state_size(n)?)))
            .collect();
        type SizeValue = fn(&StateSize) -> u64;
        #[rustfmt::skip]
        let size_families: [(&str, &str, SizeValue); 2] = [
            ("weir_state_keys", "Keys a keyed stage holds in the store (approximate: an LSM count).", |s| s.keys),
            ("weir_state_bytes", "Disk bytes of a keyed stage's flushed state tables (the journal not counted).", |s| s.bytes),
        ];
        for (name, help, value) in size_families {
            let rows = sizes.iter().map(|(l, s)| (l.clone(), value(s)));
            family(&mut enc, name, help, Gauge, rows, gauge_u64)?;
        }
        let now = crate::event::now_ms();
        let lag: Vec<_> = stats
            .stages
            .iter()
            .filter_map(|(n, s)| {
                let w = s.watermark_ms.load(Relaxed);
                (w != i64::MIN && w != i64::MAX).then(|| {
                    (
                        stage_labels(&snapshot, n),
                        (now.saturating_sub(w)) as f64 / 1000.0,
                    )
                })
            })
            .collect();
        family(
            &mut enc,
            "weir_watermark_lag_seconds",
            "Wall clock minus a keyed stage's watermark.",
            Gauge,
            lag,
            |m, v: f64| m.encode_gauge(&v),
        )?;
        single(
            &mut enc,
            "weir_state_commit_seconds",
            "Time of one batch's atomic state commit.",
            Histogram,
            &stats.state_commit.snapshot(),
            histogram,
        )?;
        single(
            &mut enc,
            "weir_state_restore_seconds",
            "Time of restoring one assigned partition's state from its changelog.",
            Histogram,
            &stats.state_restore.snapshot(),
            histogram,
        )?;
        type StageHistogram = fn(&StageStats) -> &AtomicHistogram;
        let histograms: [(&str, &str, StageHistogram); 2] = [
            (
                "weir_stage_batch_latency_seconds",
                "Time of one batch through the stage's plugin.",
                |s| &s.latency,
            ),
            (
                "weir_stage_batch_events",
                "Events per batch handed to the stage's plugin.",
                |s| &s.batch_events,
            ),
        ];
        for (name, help, of) in histograms {
            let rows: Vec<_> = stats
                .stages
                .iter()
                .map(|(n, s)| (stage_labels(&snapshot, n), of(s).snapshot()))
                .collect();
            let rows = rows.iter().map(|(l, h)| (l.clone(), h));
            family(&mut enc, name, help, Histogram, rows, histogram)?;
        }

        // Plugin versions and hot reload.
        family(
            &mut enc,
            "weir_plugin_info",
            "The plugin version each stage serves (value 1).",
            Gauge,
            snapshot.stages.iter().map(|(stage, v)| {
                (
                    vec![
                        ("stage", stage.as_str()),
                        ("plugin", v.plugin.as_str()),
                        ("version", v.version.as_str()),
                    ],
                    1i64,
                )
            }),
            gauge_i64,
        )?;
        family(
            &mut enc,
            "weir_plugin_swaps",
            "New plugin versions swapped in, by stage.",
            Counter,
            snapshot.stages.iter().map(|(stage, v)| {
                (
                    vec![("stage", stage.as_str()), ("plugin", v.plugin.as_str())],
                    v.swaps,
                )
            }),
            counter,
        )?;
        single(
            &mut enc,
            "weir_reload_refusals",
            "Plugin versions refused by hot reload.",
            Counter,
            snapshot.refusals,
            counter,
        )?;

        // Kafka consumer positions, one gauge per partition.
        if let Some(kafka) = kafka {
            let parts = kafka.snapshot();
            let labelled: Vec<_> = parts
                .iter()
                .map(|p| (p.topic.as_str(), p.partition.to_string(), p))
                .collect();
            type Value = fn(&PartitionMetrics) -> Option<i64>;
            let gauges: [(&str, &str, Value); 3] = [
                (
                    "weir_kafka_consumer_lag",
                    "Records of the partition not yet committed (high watermark - committed offset).",
                    |p| p.lag,
                ),
                (
                    "weir_kafka_committed_offset",
                    "The last offset committed for the partition (the next to read).",
                    |p| p.committed,
                ),
                (
                    "weir_kafka_partition_assigned",
                    "1 while this consumer owns the partition.",
                    |p| Some(i64::from(p.assigned)),
                ),
            ];
            for (name, help, value) in gauges {
                let rows = labelled.iter().filter_map(|(t, n, p)| {
                    Some((vec![("topic", *t), ("partition", n.as_str())], value(p)?))
                });
                family(&mut enc, name, help, Gauge, rows, gauge_i64)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_collector_encodes_counters_histograms_and_labels() {
        let stats = Arc::new(PipelineStats::new(
            ["default".to_string()],
            &["s1".to_string()],
        ));
        stats.events_in.store(12, Relaxed);
        stats.outputs["default"].store(10, Relaxed);
        stats.dead_letters.store(2, Relaxed);
        let stage = stats.stage("s1").expect("stage");
        stage.record_in(12);
        stage.record_instance(0, 8);
        stage.record_instance(1, 4);
        stage.record_call(std::time::Duration::from_millis(3));
        stage.set_memory(65536);
        stats.end_to_end["default"].observe_n(0.02, 10);
        stats.sinks["default"].requests.store(3, Relaxed);
        stats.sinks["default"].set_up(false);
        stats.sinks["default"].latency.observe(0.01);
        let kafka = Arc::new(KafkaStats::default());
        let metrics = Metrics::new(Live {
            pipeline: "p".into(),
            source: "test".into(),
            stats,
            status: Arc::new(VersionBoard::new(None)),
            kafka: Some(kafka),
        });
        let text = metrics.encode().expect("encode");
        for line in [
            "weir_source_events_total 12",
            "weir_output_events_total{output=\"default\"} 10",
            "weir_dead_letter_events_total 2",
            "weir_stage_events_in_total{stage=\"s1\",plugin=\"\"} 12",
            "weir_stage_instance_events_total{stage=\"s1\",plugin=\"\",instance=\"0\"} 8",
            "weir_stage_instance_events_total{stage=\"s1\",plugin=\"\",instance=\"1\"} 4",
            "weir_stage_batch_events_count{stage=\"s1\",plugin=\"\"} 1",
            "weir_stage_batch_latency_seconds_count{stage=\"s1\",plugin=\"\"} 1",
            "weir_stage_memory_bytes{stage=\"s1\",plugin=\"\"} 65536",
            "weir_stage_faults_total{stage=\"s1\",plugin=\"\",kind=\"trap\"} 0",
            "weir_end_to_end_latency_seconds_bucket{le=\"0.01\",output=\"default\"} 0",
            "weir_end_to_end_latency_seconds_bucket{le=\"0.025\",output=\"default\"} 10",
            "weir_end_to_end_latency_seconds_bucket{le=\"0.05\",output=\"default\"} 10",
            "weir_end_to_end_latency_seconds_bucket{le=\"+Inf\",output=\"default\"} 10",
            "weir_sink_requests_total{output=\"default\"} 3",
            "weir_sink_retries_total{output=\"dead-letter\"} 0",
            "weir_sink_up{output=\"default\"} 0",
            "weir_sink_request_latency_seconds_count{output=\"default\"} 1",
            "# TYPE weir_kafka_consumer_lag gauge",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }
}
