//! The `kafka` sink: an idempotent producer writing every event to a topic.
//!
//! Pipelined and allocation-light: `send` hands the batch's records to
//! librdkafka with one shared per-batch delivery record (an `Arc`) as each
//! record's opaque; librdkafka's delivery callbacks (on the producer's polling
//! thread) drop their reference, and the batch's acknowledgements are
//! released when the last record of the batch is confirmed. No future or
//! channel per record. librdkafka retries failed sends until
//! `message.timeout.ms` (default 300000); a record that still fails marks its
//! batch failed, and the next `send`/`flush` returns the error (the pipeline
//! stops; the source's uncommitted input is read again on restart).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use serde::Deserialize;
use tokio::sync::Notify;

use super::{Sink, SinkBatch};
use crate::endpoint::EndpointError;
use crate::kafka::{Properties, client_config, forward_log, validate_properties};
use crate::pipeline::AckSet;
use crate::validate::{self, FieldError};

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
        validate::not_blank("brokers", &self.brokers)?;
        validate::not_blank("topic", &self.topic)?;
        validate_properties(&self.properties, RESERVED, &self.client_config())
    }

    /// Creates the producer (it connects in the background).
    pub fn build(&self) -> Result<KafkaSink, EndpointError> {
        self.validate()
            .map_err(|e| EndpointError::Other(format!("kafka sink: {e}")))?;
        let shared = Arc::new(Shared {
            topic: self.topic.clone(),
            failure: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
        });
        let producer: ThreadedProducer<DeliveryContext> = self
            .client_config()
            .create_with_context(DeliveryContext)
            .map_err(|e| EndpointError::Other(format!("cannot create the Kafka producer: {e}")))?;
        Ok(KafkaSink {
            describe: format!("kafka {} ({})", self.topic, self.brokers),
            topic: self.topic.clone(),
            headers: self.headers,
            producer,
            shared,
        })
    }
}

/// Forwards librdkafka's logs to `tracing` (the Kafka source uses it too).
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "kafka producer: {reason}");
    }
}

/// The producer's context: logs like [`LogContext`], and settles each
/// record's delivery against its batch.
pub struct DeliveryContext;

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        LogContext.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        LogContext.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<BatchDelivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchDelivery>) {
        if let Err((error, _)) = result {
            batch.failed(error);
        }
        // Dropping the last reference of the batch releases its acks.
    }
}

/// What the sink and its delivery callbacks share.
struct Shared {
    topic: String,
    /// The first delivery failure.
    failure: Mutex<Option<String>>,
    /// Batches sent and not yet settled.
    in_flight: AtomicUsize,
    drained: Notify,
}

/// One sent batch: each of its records holds a reference; when the last one
/// is settled the acknowledgements are released (or fail, if a record did).
pub struct BatchDelivery {
    acks: AckSet,
    shared: Arc<Shared>,
}

impl BatchDelivery {
    fn failed(&self, error: &KafkaError) {
        self.acks.fail();
        let topic = &self.shared.topic;
        tracing::error!(topic = %topic, error = %error, "a record could not be delivered");
        if let Ok(mut f) = self.shared.failure.lock() {
            f.get_or_insert(format!("delivery to topic {topic} failed: {error}"));
        }
    }
}

impl Drop for BatchDelivery {
    fn drop(&mut self) {
        if self.shared.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.drained.notify_waiters();
        }
    }
}

/// A running Kafka sink.
pub struct KafkaSink {
    describe: String,
    topic: String,
    headers: bool,
    producer: ThreadedProducer<DeliveryContext>,
    shared: Arc<Shared>,
}

impl KafkaSink {
    fn failed(&self) -> Result<(), EndpointError> {
        match self.shared.failure.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(EndpointError::Other(e)),
            None => Ok(()),
        }
    }

    fn fail(&self, batch_acks: &AckSet, message: String) -> EndpointError {
        batch_acks.fail();
        if let Ok(mut f) = self.shared.failure.lock() {
            f.get_or_insert(message.clone());
        }
        EndpointError::Other(message)
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError> {
        if let Err(e) = self.failed() {
            batch.acks.fail();
            return Err(e);
        }
        let SinkBatch { events, acks } = batch;
        if events.is_empty() {
            return Ok(());
        }
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let delivery = Arc::new(BatchDelivery {
            acks: acks.clone(),
            shared: self.shared.clone(),
        });
        for ev in &events {
            let mut record = BaseRecord::<[u8], [u8], Arc<BatchDelivery>>::with_opaque_to(
                &self.topic,
                delivery.clone(),
            )
            .payload(&ev.value[..]);
            if let Some(key) = &ev.key {
                record = record.key(&key[..]);
            }
            if ev.timestamp_ms > 0 {
                record = record.timestamp(ev.timestamp_ms);
            }
            if self.headers && ev.all_headers_len() > 0 {
                let mut headers = OwnedHeaders::new_with_capacity(ev.all_headers_len());
                for h in ev.all_headers() {
                    headers = headers.insert(Header {
                        key: &h.name,
                        value: Some(&h.value[..]),
                    });
                }
                record = record.headers(headers);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
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
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), EndpointError> {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.shared.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            drained.await;
        }
        self.failed()
    }
}
