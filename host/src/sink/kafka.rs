//! The `kafka` sink: an idempotent producer writing every event to a topic.
//!
//! Pipelined: `send` hands the batch's records to librdkafka and queues their
//! delivery futures, with the batch's acknowledgements, to a watcher task;
//! the acknowledgements are released once the broker confirmed every record
//! of the batch. librdkafka retries failed sends until `message.timeout.ms`
//! (default 300000); a record that still fails marks its batch failed, and
//! the next `send`/`flush` returns the error (the pipeline stops; the
//! source's uncommitted input is read again on restart).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::{Sink, SinkBatch, SinkError};
use crate::config::FieldError;
use crate::pipeline::ack::AckSet;
use crate::source::kafka::{Properties, client_config, validate_properties};

/// Batches whose deliveries are awaited at once (beyond librdkafka's own
/// queue bound, `queue.buffering.max.messages`).
const PENDING_BATCHES: usize = 64;

/// `type = "kafka"`: every event becomes a record of `topic`, with its key,
/// value, headers and timestamp. The partition is chosen by librdkafka's
/// partitioner from the key (records with one key stay in order in one
/// partition).
///
/// The producer is idempotent (`enable.idempotence = true`, `acks = all`):
/// librdkafka's retries never duplicate or reorder records. Events are
/// acknowledged once the broker confirmed them. The dead-letter output can be
/// a Kafka sink too: dead letters carry `weir.*` headers (error, stage,
/// plugin, plugin version, source topic, partition and offset).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// The bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic to write to (it must exist, or the broker must create
    /// topics automatically).
    pub topic: String,
    /// Write the events' headers as record headers (default `true`). `false`
    /// drops them (for consumers or brokers that handle headers badly; e.g.
    /// tansu's sqlite engine serves records with headers very slowly).
    #[serde(default = "yes")]
    pub headers: bool,
    /// Any librdkafka producer property (`"linger.ms" = 20`,
    /// `"compression.type" = "lz4"`, `"message.timeout.ms" = 60000`...).
    /// `bootstrap.servers` is set by `brokers`; transactions are not used.
    #[serde(default)]
    pub properties: Properties,
}

fn yes() -> bool {
    true
}

const RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "set by `brokers`"),
    ("metadata.broker.list", "set by `brokers`"),
    ("transactional.id", "weir does not use transactions"),
];

const DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
];

impl KafkaSinkConfig {
    fn client_config(&self) -> ClientConfig {
        client_config(
            DEFAULTS,
            &self.properties,
            &[("bootstrap.servers", self.brokers.clone())],
        )
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        if self.brokers.trim().is_empty() {
            return Err(FieldError::new("brokers", "must not be empty"));
        }
        if self.topic.trim().is_empty() {
            return Err(FieldError::new("topic", "must not be empty"));
        }
        validate_properties(&self.properties, RESERVED, &self.client_config())
    }

    /// Creates the producer (it connects in the background).
    pub fn build(&self) -> Result<KafkaSink, SinkError> {
        self.validate()
            .map_err(|e| SinkError::Other(format!("kafka sink: {e}")))?;
        let producer: FutureProducer<LogContext> = self
            .client_config()
            .create_with_context(LogContext)
            .map_err(|e| SinkError::Other(format!("cannot create the Kafka producer: {e}")))?;
        Ok(KafkaSink {
            describe: format!("kafka {} ({})", self.topic, self.brokers),
            topic: self.topic.clone(),
            headers: self.headers,
            producer,
            watcher: None,
            failure: Arc::default(),
        })
    }
}

/// Forwards librdkafka's logs to `tracing`.
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::source::kafka::props::forward_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "kafka producer: {reason}");
    }
}

enum Pending {
    Batch(Vec<DeliveryFuture>, AckSet),
    Barrier(oneshot::Sender<()>),
}

/// A running Kafka sink.
pub struct KafkaSink {
    describe: String,
    topic: String,
    headers: bool,
    producer: FutureProducer<LogContext>,
    /// Started on the first send (inside the runtime).
    watcher: Option<mpsc::Sender<Pending>>,
    /// The first delivery failure.
    failure: Arc<Mutex<Option<String>>>,
}

impl KafkaSink {
    fn failed(&self) -> Result<(), SinkError> {
        match self.failure.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(SinkError::Other(e)),
            None => Ok(()),
        }
    }

    fn watcher(&mut self) -> mpsc::Sender<Pending> {
        if let Some(tx) = &self.watcher {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(PENDING_BATCHES);
        tokio::spawn(watch(rx, self.failure.clone(), self.topic.clone()));
        self.watcher = Some(tx.clone());
        tx
    }

    fn fail(&self, batch_acks: &AckSet, message: String) -> SinkError {
        batch_acks.fail();
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(message.clone());
        }
        SinkError::Other(message)
    }
}

/// Awaits deliveries in order and releases (or fails) each batch's acks.
async fn watch(
    mut rx: mpsc::Receiver<Pending>,
    failure: Arc<Mutex<Option<String>>>,
    topic: String,
) {
    while let Some(pending) = rx.recv().await {
        match pending {
            Pending::Batch(deliveries, acks) => {
                for delivery in deliveries {
                    let error = match delivery.await {
                        Ok(Ok(_)) => continue,
                        Ok(Err((e, _))) => e.to_string(),
                        Err(_) => "the producer was dropped".to_owned(),
                    };
                    acks.fail();
                    tracing::error!(topic = %topic, error = %error, "a record could not be delivered");
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(format!("delivery to topic {topic} failed: {error}"));
                    }
                }
                drop(acks);
            }
            Pending::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), SinkError> {
        if let Err(e) = self.failed() {
            batch.acks.fail();
            return Err(e);
        }
        let watcher = self.watcher();
        let SinkBatch { events, acks } = batch;
        let mut deliveries = Vec::with_capacity(events.len());
        for ev in &events {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(&ev.value[..]);
            if let Some(key) = &ev.key {
                record = record.key(&key[..]);
            }
            if ev.timestamp_ms > 0 {
                record = record.timestamp(ev.timestamp_ms);
            }
            if self.headers && !ev.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(ev.headers.len());
                for h in &ev.headers {
                    headers = headers.insert(Header {
                        key: &h.name,
                        value: Some(&h.value[..]),
                    });
                }
                record = record.headers(headers);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // librdkafka's queue is full: wait for deliveries.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        return Err(self.fail(&acks, format!("producing to {}: {e}", self.topic)));
                    }
                }
            }
        }
        if watcher
            .send(Pending::Batch(deliveries, acks.clone()))
            .await
            .is_err()
        {
            return Err(self.fail(&acks, "the delivery watcher stopped".into()));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(tx) = &self.watcher {
            let (done, wait) = oneshot::channel();
            if tx.send(Pending::Barrier(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
        self.failed()
    }
}
