//! The changelog of a keyed stage on a Kafka source, the Kafka Streams way:
//! a compacted topic `<pipeline>-<stage>-changelog` whose partition N holds
//! what the stage's state in source partition N became. Every commit
//! publishes its changes there (and waits for the broker's acks) before the
//! local store commits them, so the changelog is never behind the store; a
//! process assigned a partition reads the changelog from its checkpoint (or
//! the beginning) to the high watermark into the store before it processes
//! the partition.
//!
//! Records (key → value; a `None` value is a tombstone):
//! * `k` + state key → the stored value (8-byte expiry header + the
//!   plugin's bytes), or a tombstone for a delete;
//! * `t` + at-ms (order-preserving) + key → empty (timer set) or a tombstone
//!   (removed);
//! * `p` + stream → the last source offset applied (8 bytes, big-endian):
//!   one well-known key per stream, so compaction keeps the latest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::store::{decode_value, encode_value, from_ordered_i64, timer_key};
use super::{Commit, Slot, StateError, StateStore, StateWrite, TimerWrite};

/// How long a broker call (metadata, a flush, a restore read) may take.
const BROKER_WAIT: Duration = Duration::from_secs(30);
/// Records applied to the store per restore batch.
const RESTORE_BATCH: usize = 10_000;

/// Why the changelog failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    #[error("changelog {topic}: {what}")]
    Broker { topic: String, what: String },
    #[error("changelog {topic}[{partition}] at offset {offset}: {what}")]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        what: String,
    },
    #[error(transparent)]
    Store(#[from] StateError),
}

/// What restoring one partition did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Distinct state keys read (puts and deletes).
    pub keys: usize,
    /// Changelog records applied.
    pub records: usize,
    /// The restored progress per stream (last source offset applied).
    pub progress: Vec<(Arc<str>, i64)>,
}

/// The changelog topics name: `<pipeline>-<stage>-changelog`.
pub fn changelog_topic(pipeline: &str, stage: &str) -> String {
    format!("{pipeline}-{stage}-changelog")
}

#[derive(Default)]
struct Deliveries {
    /// (topic, partition) → the highest offset the broker acknowledged.
    offsets: HashMap<(String, i32), i64>,
    failed: Vec<String>,
}

struct Context {
    deliveries: Mutex<Deliveries>,
}

impl Context {
    fn lock(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::forward_log(level, fac, log_message);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut d = self.lock();
        match result {
            Ok(m) => {
                let at = d
                    .offsets
                    .entry((m.topic().to_owned(), m.partition()))
                    .or_insert(m.offset());
                *at = (*at).max(m.offset());
            }
            Err((e, m)) => d
                .failed
                .push(format!("{}[{}]: {e}", m.topic(), m.partition())),
        }
    }
}

/// The changelogs of a pipeline's keyed stages: publishing commits and
/// restoring partitions. Used by the committer thread (publish) and the
/// Kafka consumer thread (restore, in its rebalance callback).
pub struct Changelog {
    /// Stage → its topic.
    topics: Vec<(Arc<str>, String)>,
    producer: BaseProducer<Context>,
    /// Brokers and security settings, for the restore consumer.
    client: ClientConfig,
}

/// The client settings a changelog client inherits from the source: the
/// brokers and the connection's security.
pub fn changelog_client(brokers: &str, properties: &crate::kafka::Properties) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        if k.starts_with("security.")
            || k.starts_with("sasl.")
            || k.starts_with("ssl.")
            || k == "client.id"
            || k == "broker.address.family"
        {
            config.set(k, v.resolved());
        }
    }
    config
}

impl Changelog {
    /// Connects to the changelogs `topics` (stage → topic), creating missing
    /// topics as compacted topics with `partitions` partitions.
    pub fn open(
        client: ClientConfig,
        topics: Vec<(Arc<str>, String)>,
        partitions: i32,
    ) -> Result<Self, ChangelogError> {
        let broker_err = |topic: &str, what: String| ChangelogError::Broker {
            topic: topic.to_owned(),
            what,
        };
        let all = topics
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        create_topics(&client, &topics, partitions).map_err(|w| broker_err(&all, w))?;
        let mut pc = client.clone();
        pc.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("compression.type", "none");
        let producer: BaseProducer<Context> = pc
            .create_with_context(Context {
                deliveries: Mutex::default(),
            })
            .map_err(|e| broker_err(&all, format!("cannot create the producer: {e}")))?;
        Ok(Self {
            topics,
            producer,
            client,
        })
    }

    fn topic(&self, stage: &str) -> Option<&str> {
        self.topics
            .iter()
            .find(|(s, _)| &**s == stage)
            .map(|(_, t)| t.as_str())
    }

    /// The stages whose changelogs these are.
    pub fn stages(&self) -> Vec<Arc<str>> {
        self.topics.iter().map(|(s, _)| s.clone()).collect()
    }

    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ChangelogError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        let deadline = Instant::now() + BROKER_WAIT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    return Err(ChangelogError::Broker {
                        topic: topic.to_owned(),
                        what: format!("producing to partition {partition}: {e}"),
                    });
                }
            }
        }
    }

    /// Publishes `commit`'s changes and progress and waits until the broker
    /// acknowledged all of them; returns, per (stage, partition) written,
    /// the offset of its last record (the checkpoint the store commits).
    pub fn publish(&self, commit: &Commit) -> Result<Vec<(Arc<str>, i32, i64)>, ChangelogError> {
        let mut touched: HashSet<Slot> = HashSet::new();
        let mut key = Vec::new();
        for w in &commit.writes {
            let Some(topic) = self.topic(&w.slot.stage) else {
                continue;
            };
            key.clear();
            key.push(b'k');
            key.extend_from_slice(&w.key);
            let value = w.value.as_ref().map(|v| encode_value(v, w.expires_ms));
            self.send(topic, w.slot.partition, &key, value.as_deref())?;
            touched.insert(w.slot.clone());
        }
        for t in &commit.timers {
            let Some(topic) = self.topic(&t.slot.stage) else {
                continue;
            };
            key.clear();
            key.push(b't');
            key.extend_from_slice(&timer_key(t.at_ms, &t.key));
            self.send(topic, t.slot.partition, &key, t.set.then_some(&[][..]))?;
            touched.insert(t.slot.clone());
        }
        for (stream, partition, offset) in &commit.progress {
            for (stage, topic) in &self.topics {
                key.clear();
                key.push(b'p');
                key.extend_from_slice(stream.as_bytes());
                self.send(topic, *partition, &key, Some(&offset.to_be_bytes()))?;
                touched.insert(Slot {
                    stage: stage.clone(),
                    partition: *partition,
                });
            }
        }
        if touched.is_empty() {
            return Ok(Vec::new());
        }
        let flushed = self.producer.flush(Timeout::After(BROKER_WAIT));
        let mut d = self.producer.context().lock();
        let failed = std::mem::take(&mut d.failed);
        let offsets = std::mem::take(&mut d.offsets);
        drop(d);
        let all = || {
            self.topics
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Err(e) = flushed {
            return Err(ChangelogError::Broker {
                topic: all(),
                what: format!("the broker did not acknowledge the commit in time: {e}"),
            });
        }
        if !failed.is_empty() {
            return Err(ChangelogError::Broker {
                topic: all(),
                what: format!("records were refused: {}", failed.join("; ")),
            });
        }
        let mut out = Vec::with_capacity(touched.len());
        for Slot { stage, partition } in touched {
            let Some(topic) = self.topic(&stage) else {
                continue;
            };
            if let Some(&o) = offsets.get(&(topic.to_owned(), partition)) {
                out.push((stage, partition, o));
            }
        }
        Ok(out)
    }

    /// Restores `stage`'s state in `partition` into `store`: the records
    /// after the store's checkpoint (every record if it has none) up to the
    /// high watermark, applied in order.
    pub fn restore(
        &self,
        store: &StateStore,
        stage: &Arc<str>,
        partition: i32,
    ) -> Result<Restored, ChangelogError> {
        let Some(topic) = self.topic(stage).map(str::to_owned) else {
            return Ok(Restored::default());
        };
        let broker_err = |what: String| ChangelogError::Broker {
            topic: topic.clone(),
            what,
        };
        let mut cc = self.client.clone();
        cc.set("group.id", format!("weir-restore-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer<DefaultConsumerContext> = cc
            .create()
            .map_err(|e| broker_err(format!("cannot create the restore consumer: {e}")))?;
        let (_, high) = consumer
            .fetch_watermarks(&topic, partition, BROKER_WAIT)
            .map_err(|e| broker_err(format!("reading the high watermark of {partition}: {e}")))?;
        let from = store.changelog_offset(stage, partition)?.map(|o| o + 1);
        let mut restored = Restored::default();
        if high <= from.unwrap_or(0) {
            return Ok(restored);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            &topic,
            partition,
            from.map_or(Offset::Beginning, Offset::Offset),
        )
        .map_err(|e| broker_err(e.to_string()))?;
        consumer
            .assign(&tpl)
            .map_err(|e| broker_err(format!("assigning partition {partition}: {e}")))?;
        let mut keys: HashSet<Bytes> = HashSet::new();
        let mut progress: HashMap<Arc<str>, i64> = HashMap::new();
        let mut batch = Commit::default();
        let mut last_seen = Instant::now();
        let mut done = false;
        while !done {
            let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
                if last_seen.elapsed() > BROKER_WAIT {
                    return Err(broker_err(format!(
                        "partition {partition}: no record for {} s before the high watermark {high}",
                        BROKER_WAIT.as_secs()
                    )));
                }
                continue;
            };
            let msg = msg
                .map_err(|e| broker_err(format!("reading partition {partition}: {e}")))?
                .detach();
            last_seen = Instant::now();
            done = msg.offset() + 1 >= high;
            apply(
                stage,
                partition,
                &topic,
                &msg,
                &mut batch,
                &mut keys,
                &mut progress,
            )?;
            restored.records += 1;
            batch.changelog = vec![(stage.clone(), partition, msg.offset())];
            if batch.writes.len() + batch.timers.len() >= RESTORE_BATCH || done {
                batch.progress = progress
                    .iter()
                    .map(|(s, o)| (s.clone(), partition, *o))
                    .collect();
                let committed = store.commit(&std::mem::take(&mut batch));
                store.replaced();
                committed?;
            }
        }
        restored.keys = keys.len();
        restored.progress = progress.into_iter().collect();
        restored.progress.sort();
        Ok(restored)
    }
}

/// Adds one changelog record to `batch`.
fn apply(
    stage: &Arc<str>,
    partition: i32,
    topic: &str,
    msg: &OwnedMessage,
    batch: &mut Commit,
    keys: &mut HashSet<Bytes>,
    progress: &mut HashMap<Arc<str>, i64>,
) -> Result<(), ChangelogError> {
    let bad = |what: &str| ChangelogError::Record {
        topic: topic.to_owned(),
        partition,
        offset: msg.offset(),
        what: what.to_owned(),
    };
    let key = msg.key().unwrap_or_default();
    let (kind, rest) = key
        .split_first()
        .ok_or_else(|| bad("a record without a key"))?;
    match kind {
        b'k' => {
            let rest = Bytes::copy_from_slice(rest);
            let (value, expires_ms) = match msg.payload() {
                None => (None, None),
                Some(stored) => {
                    let (v, at) =
                        decode_value(stored).ok_or_else(|| bad("a value lacks its header"))?;
                    (Some(Bytes::copy_from_slice(v)), at)
                }
            };
            keys.insert(rest.clone());
            batch.writes.push(StateWrite {
                slot: Slot {
                    stage: stage.clone(),
                    partition,
                },
                key: rest,
                value,
                expires_ms,
            });
        }
        b't' => {
            let at: [u8; 8] = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("a timer key is shorter than 8 bytes"))?;
            batch.timers.push(TimerWrite {
                slot: Slot {
                    stage: stage.clone(),
                    partition,
                },
                at_ms: from_ordered_i64(at),
                key: Bytes::copy_from_slice(&rest[8..]),
                set: msg.payload().is_some(),
            });
        }
        b'p' => {
            let stream =
                std::str::from_utf8(rest).map_err(|_| bad("a stream name is not UTF-8"))?;
            let v: [u8; 8] = msg
                .payload()
                .and_then(|p| p.try_into().ok())
                .ok_or_else(|| bad("an offset record is not 8 bytes"))?;
            progress.insert(Arc::from(stream), i64::from_be_bytes(v));
        }
        _ => return Err(bad("an unknown record kind")),
    }
    Ok(())
}

/// Creates the topics that do not exist yet (compacted, `partitions`
/// partitions, replication 1 or the broker's default).
fn create_topics(
    client: &ClientConfig,
    topics: &[(Arc<str>, String)],
    partitions: i32,
) -> Result<(), String> {
    let probe: BaseConsumer<DefaultConsumerContext> = client
        .create()
        .map_err(|e| format!("cannot connect: {e}"))?;
    let metadata = probe
        .fetch_metadata(None, BROKER_WAIT)
        .map_err(|e| format!("reading the topics: {e}"))?;
    let existing: HashSet<&str> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name())
        .collect();
    let missing: Vec<NewTopic<'_>> = topics
        .iter()
        .filter(|(_, t)| !existing.contains(t.as_str()))
        .map(|(_, t)| {
            NewTopic::new(t, partitions, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("retention.ms", "-1")
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client
        .create()
        .map_err(|e| format!("cannot create the admin client: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let options = AdminOptions::new().operation_timeout(Some(BROKER_WAIT));
    let results = runtime
        .block_on(admin.create_topics(&missing, &options))
        .map_err(|e| format!("creating the topics: {e}"))?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, partitions, "changelog topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, e)) => return Err(format!("creating {name}: {e}")),
        }
    }
    Ok(())
}

/// The partition count of each of `topics` (0: unknown topic).
pub fn partition_counts(client: &ClientConfig, topics: &[String]) -> Result<Vec<i32>, String> {
    let probe: BaseConsumer<DefaultConsumerContext> = client
        .create()
        .map_err(|e| format!("cannot connect: {e}"))?;
    topics
        .iter()
        .map(|t| {
            let m = probe
                .fetch_metadata(Some(t), BROKER_WAIT)
                .map_err(|e| format!("reading topic {t}: {e}"))?;
            Ok(m.topics()
                .first()
                .filter(|mt| mt.error().is_none())
                .map_or(0, |mt| mt.partitions().len() as i32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_named_per_pipeline_and_stage() {
        assert_eq!(
            changelog_topic("cards", "velocity"),
            "cards-velocity-changelog"
        );
    }

    fn record(key: &[u8], payload: Option<&[u8]>, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            payload.map(<[u8]>::to_vec),
            Some(key.to_vec()),
            "t".into(),
            rdkafka::Timestamp::NotAvailable,
            3,
            offset,
            None,
        )
    }

    /// The record kinds decode to the writes, timers and progress that
    /// were published; a malformed record names its offset.
    #[test]
    fn records_decode_into_a_commit() {
        let stage: Arc<str> = Arc::from("s");
        let mut batch = Commit::default();
        let mut keys = HashSet::new();
        let mut progress = HashMap::new();
        let mut k = b"k".to_vec();
        k.extend_from_slice(b"card-1");
        let v = encode_value(b"7", Some(99));
        let mut t = b"t".to_vec();
        t.extend_from_slice(&timer_key(5_000, b"card-1"));
        let msgs = [
            record(&k, Some(&v), 0),
            record(&k, None, 1),
            record(&t, Some(b""), 2),
            record(b"pin", Some(&41i64.to_be_bytes()), 3),
        ];
        for m in &msgs {
            apply(&stage, 3, "t", m, &mut batch, &mut keys, &mut progress).expect("apply");
        }
        assert_eq!(batch.writes.len(), 2);
        assert_eq!(batch.writes[0].value, Some(Bytes::from("7")));
        assert_eq!(batch.writes[0].expires_ms, Some(99));
        assert_eq!(batch.writes[1].value, None);
        assert_eq!(batch.writes[1].slot.partition, 3);
        assert_eq!(
            batch.timers,
            vec![TimerWrite {
                slot: Slot {
                    stage: stage.clone(),
                    partition: 3,
                },
                at_ms: 5_000,
                key: Bytes::from("card-1"),
                set: true,
            }]
        );
        assert_eq!(progress.get("in"), Some(&41));
        assert_eq!(keys.len(), 1);
        let err = apply(
            &stage,
            3,
            "t",
            &record(b"pin", Some(b"12"), 9),
            &mut batch,
            &mut keys,
            &mut progress,
        )
        .expect_err("short offset");
        assert!(err.to_string().contains("at offset 9"), "{err}");
    }
}
