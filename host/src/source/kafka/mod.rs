//! The `kafka` source: a consumer-group member with at-least-once delivery.
//!
//! Design. librdkafka's consumer runs on a dedicated thread
//! ([`consumer`]): it polls records into a bounded in-memory buffer that
//! [`Source::read`] drains, serves rebalances, and stores offsets. The
//! consumer is a `BaseConsumer` on its own thread rather than a
//! `StreamConsumer` polled from the pipeline's task because a revocation must
//! *wait* (in librdkafka's rebalance callback, which runs on the polling
//! thread) for the acknowledgements of the revoked partitions' in-flight
//! events, and those acknowledgements come back through the pipeline's task:
//! waiting on that task would deadlock it. It also keeps the consumer's
//! blocking close off the async runtime (rust-rdkafka issue #509).
//!
//! Offsets: `enable.auto.offset.store = false`, `enable.auto.commit = true`.
//! An offset is stored (then committed by librdkafka every
//! `auto.commit.interval.ms`, default here 1000) only once the chunk holding
//! it and every earlier chunk of its partition were acknowledged delivered
//! ([`tracker::OffsetTracker`]). On revocation and on close, the delivered
//! prefix is committed synchronously.

mod consumer;
mod record;
mod stats;
mod tracker;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Assignments, ChunkIds, Read, Source};
use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::kafka::{Properties, client_config, validate_properties};
use crate::pipeline::{Ack, AckStatus};
use crate::validate::{self, FieldError};
pub use record::{RecordParts, TopicNames, record_to_event};
pub use stats::{KafkaStats, PartitionMetrics};
use tracker::{OffsetTracker, TopicPartition};

/// Where a group with no committed offset starts reading.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record still in the partition.
    #[default]
    Earliest,
    /// Only records produced after the consumer joined.
    Latest,
}

impl StartPosition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
        }
    }
}

/// `[source] type = "kafka"`: records of one or more topics, read as a
/// member of a consumer group (several `weir` processes with the same
/// `group_id` share the partitions).
///
/// Delivery is at-least-once: a record's offset is committed only after
/// every output derived from it (routed outputs and dead letters included)
/// was acknowledged by its sink, and after every earlier record of its
/// partition was. After a crash, records after the last commit are read
/// again (commits happen every `auto.commit.interval.ms`, default 1 s, on
/// revocation and at shutdown). A delivery failure stops the pipeline.
///
/// Positions: stream = topic, partition, offset. Keys, headers and
/// timestamps are carried (a record without a timestamp gets the ingestion
/// time). Order within a partition is kept through the pipeline.
///
/// Memory: the source buffers at most `buffer_events` records (plus one poll
/// batch of up to 512) before it pauses its partitions, and librdkafka
/// prefetches at most `queued.max.messages.kbytes` (weir's default: 16384,
/// i.e. 16 MiB) ahead of that; the pipeline's own queues come on top.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// The bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to subscribe to. An entry starting with `^` is a regular
    /// expression matching topic names (librdkafka syntax).
    pub topics: Vec<String>,
    /// The consumer group.
    pub group_id: String,
    /// `earliest` (default) or `latest`: where a partition with no committed
    /// offset in the group starts.
    #[serde(default)]
    pub start: StartPosition,
    /// Records read ahead of the pipeline before the partitions are paused.
    /// Default 10000.
    #[serde(default = "default_buffer_events")]
    pub buffer_events: usize,
    /// How long a revocation waits for the in-flight events of the revoked
    /// partitions to be acknowledged, in milliseconds, before it lets the
    /// partitions go anyway (those events may then be processed twice).
    /// Default 30000; keep it below `max.poll.interval.ms` (default 300000).
    #[serde(default = "default_revoke_timeout_ms")]
    pub revoke_timeout_ms: u64,
    /// Any librdkafka consumer property (`"fetch.min.bytes" = 1`,
    /// `"security.protocol" = "SASL_SSL"`...). `bootstrap.servers`,
    /// `group.id`, `auto.offset.reset` and `enable.auto.offset.store` are set
    /// by the fields above and may not appear here.
    #[serde(default)]
    pub properties: Properties,
}

fn default_buffer_events() -> usize {
    10_000
}

fn default_revoke_timeout_ms() -> u64 {
    30_000
}

/// Properties weir sets and the pipeline file may not.
const RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "set by `brokers`"),
    ("metadata.broker.list", "set by `brokers`"),
    ("group.id", "set by `group_id`"),
    ("auto.offset.reset", "set by `start`"),
    (
        "enable.auto.offset.store",
        "weir stores offsets itself, after delivery (at-least-once)",
    ),
];

/// weir's defaults; the pipeline file's `properties` override them.
const DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "true"),
    ("auto.commit.interval.ms", "1000"),
    ("statistics.interval.ms", "1000"),
    ("queued.max.messages.kbytes", "16384"),
    ("enable.partition.eof", "false"),
];

impl KafkaSourceConfig {
    fn client_config(&self) -> rdkafka::ClientConfig {
        client_config(
            DEFAULTS,
            &self.properties,
            &[
                ("bootstrap.servers", self.brokers.clone()),
                ("group.id", self.group_id.clone()),
                ("auto.offset.reset", self.start.as_str().to_owned()),
                ("enable.auto.offset.store", "false".to_owned()),
            ],
        )
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        validate::not_blank("brokers", &self.brokers)?;
        if self.topics.is_empty() {
            return Err(FieldError::new("topics", "name at least one topic"));
        }
        if let Some(i) = self.topics.iter().position(|t| t.trim().is_empty()) {
            return Err(FieldError::new("topics", format!("entry {i} is empty")));
        }
        validate::not_blank("group_id", &self.group_id)?;
        validate::at_least_one("buffer_events", self.buffer_events as u64)?;
        validate_properties(&self.properties, RESERVED, &self.client_config())
    }

    /// Creates the consumer and subscribes; records flow once the group
    /// assigned partitions.
    pub fn build(&self) -> Result<KafkaSource, EndpointError> {
        self.build_with(None)
    }

    /// [`build`](Self::build), telling `assignments` of every rebalance:
    /// an assigned partition starts where it says (keyed state: the stored
    /// progress), and a revoked one is handed back once drained.
    pub fn build_with(
        &self,
        assignments: Option<Arc<dyn Assignments>>,
    ) -> Result<KafkaSource, EndpointError> {
        self.validate()
            .map_err(|e| EndpointError::Other(format!("kafka source: {e}")))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            acked: Condvar::new(),
            data: tokio::sync::Notify::new(),
            stats: Arc::new(KafkaStats::default()),
            revoke_timeout: Duration::from_millis(self.revoke_timeout_ms),
            buffer_events: self.buffer_events,
            assignments,
        });
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let thread = consumer::spawn(self.client_config(), &topics, shared.clone())?;
        Ok(KafkaSource {
            describe: format!(
                "kafka {} (group {}, {})",
                self.topics.join(","),
                self.group_id,
                self.brokers
            ),
            shared,
            chunks: ChunkIds::default(),
            thread: Some(thread),
        })
    }
}

/// One buffered record.
struct Buffered {
    event: Event,
    tp: TopicPartition,
    generation: u64,
}

#[derive(Default)]
struct State {
    tracker: OffsetTracker,
    buffer: VecDeque<Buffered>,
    /// A consumer error the pipeline must stop for.
    error: Option<String>,
    /// close() or drop: the consumer thread commits and exits.
    closing: bool,
    /// The consumer thread has exited.
    done: bool,
    /// Partitions were assigned since the consumer thread last looked.
    rebalanced: bool,
}

/// What the consumer thread and the source share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when an acknowledgement arrived (a revocation waits on it).
    acked: Condvar,
    /// Signalled when records were buffered (or an error / the end).
    data: tokio::sync::Notify,
    stats: Arc<KafkaStats>,
    revoke_timeout: Duration,
    buffer_events: usize,
    /// Told of rebalances (keyed state), if any.
    assignments: Option<Arc<dyn Assignments>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running Kafka source.
pub struct KafkaSource {
    describe: String,
    shared: Arc<Shared>,
    chunks: ChunkIds,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaSource {
    /// The per-partition consumer metrics (committed offsets, lag).
    pub fn stats(&self) -> Arc<KafkaStats> {
        self.shared.stats.clone()
    }

    /// Takes up to `max` buffered records of owned partitions as one chunk,
    /// registered with the offset tracker under the id it is handed over with.
    fn take(&mut self, max: usize) -> Result<Option<Read>, EndpointError> {
        let mut st = self.shared.lock();
        if let Some(error) = st.error.take() {
            return Err(EndpointError::Other(error));
        }
        let mut events = Vec::with_capacity(max.min(st.buffer.len()));
        let mut last: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        while events.len() < max {
            let Some(b) = st.buffer.pop_front() else {
                break;
            };
            if !st.tracker.owns(&b.tp, b.generation) {
                continue;
            }
            last.insert(b.tp, b.event.position.offset);
            events.push(b.event);
        }
        if events.is_empty() {
            return Ok(None);
        }
        let chunk = self.chunks.mint();
        st.tracker.register(chunk, &last);
        Ok(Some(Read {
            chunk,
            events,
            rejects: Vec::new(),
        }))
    }

    fn stop_thread(&mut self) {
        self.shared.lock().closing = true;
        self.shared.acked.notify_all();
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn kafka_stats(&self) -> Option<Arc<KafkaStats>> {
        Some(self.stats())
    }

    async fn read(&mut self, max: usize) -> Result<Option<Read>, EndpointError> {
        let max = max.max(1);
        loop {
            if let Some(read) = self.take(max)? {
                return Ok(Some(read));
            }
            if self.shared.lock().done {
                return Err(EndpointError::Other(
                    "the Kafka consumer stopped unexpectedly".into(),
                ));
            }
            // A missed wake-up costs at most this long.
            let _ =
                tokio::time::timeout(Duration::from_millis(100), self.shared.data.notified()).await;
        }
    }

    async fn ack(&mut self, ack: Ack) -> Result<(), EndpointError> {
        let outcome = {
            let mut st = self.shared.lock();
            st.tracker
                .ack(ack.chunk, ack.status == AckStatus::Delivered)
        };
        self.shared.acked.notify_all();
        if outcome.failed.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = outcome
            .failed
            .iter()
            .map(|(t, p)| format!("{t}[{p}]"))
            .collect();
        Err(EndpointError::Other(format!(
            "events of {} could not be delivered: offsets are committed up to the last delivered one (they will be read again)",
            list.join(", ")
        )))
    }

    async fn close(&mut self) -> Result<(), EndpointError> {
        self.stop_thread();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // The thread commits and closes the consumer (a blocking call).
        let joined = tokio::task::spawn_blocking(move || thread.join());
        match tokio::time::timeout(Duration::from_secs(30), joined).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(_) => Err(EndpointError::Other(
                "the Kafka consumer thread panicked".into(),
            )),
            Err(_) => Err(EndpointError::Other(
                "closing the Kafka consumer took more than 30 s".into(),
            )),
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // Without close() (a fatal error): the thread still commits what was
        // delivered and closes the consumer, detached.
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests;
