//! The `generate` source: built-in synthetic events, deterministic from a
//! seed, optionally paced at a fixed rate. The benchmark and demo input.

mod cards;
mod rng;
mod sensors;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

use super::{AckCounts, ChunkIds, Read, Source};
use crate::endpoint::EndpointError;
use crate::event::{Event, Position, now_ms};
use crate::pipeline::Ack;
use crate::validate::{self, FieldError};
use cards::CardGenerator;
use rng::{Rng, fnv1a};
use sensors::SensorGenerator;
pub use sensors::sensor_truth;

/// Bounds of the `sized` schema's `size`.
pub const MIN_SIZED_BYTES: usize = 40;
pub const MAX_SIZED_BYTES: usize = 16 << 20;

/// The `schema` of a `generate` source, as written in the pipeline file.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaName {
    /// Card payments with labelled fraud (see [`GenerateSchema::CardTransactions`]).
    #[default]
    CardTransactions,
    /// Fixed-size events (see [`GenerateSchema::Sized`]).
    Sized,
    /// IoT sensor readings (see [`GenerateSchema::Sensors`]).
    Sensors,
}

/// What events the generator makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenerateSchema {
    /// Synthetic card transactions (~300-byte JSON, key = `card_id`) with ~2%
    /// fraud planted in learnable patterns: amount spikes, foreign online
    /// purchases in risky categories at night, velocity bursts. The fields and
    /// patterns are documented in `source/generate/cards.rs`.
    CardTransactions,
    /// `{"id":N,"payload":"..."}` padded to exactly `size` bytes (key = `N`).
    Sized { size: usize },
    /// IoT readings of `devices` devices (key = `device`), one per device and
    /// second of event time, with planted anomalies and out-of-order
    /// arrivals; the event time is the reading's `ts`. Documented in
    /// `source/generate/sensors.rs`.
    Sensors { devices: u32 },
}

impl GenerateSchema {
    pub const DEFAULT_SIZE: usize = 200;
    pub const DEFAULT_DEVICES: u32 = sensors::DEFAULT_DEVICES;

    /// The schema called `name` (`card-transactions`, `sized`, `sensors`);
    /// `size` is used by `sized` only, `devices` by `sensors` only.
    pub fn from_name(name: &str, size: usize, devices: u32) -> Result<Self, String> {
        match name {
            "card-transactions" => Ok(Self::CardTransactions),
            "sensors" if (1..=sensors::MAX_DEVICES).contains(&devices) => {
                Ok(Self::Sensors { devices })
            }
            "sensors" => Err(format!(
                "devices must be between 1 and {}, got {devices}",
                sensors::MAX_DEVICES
            )),
            "sized" if (MIN_SIZED_BYTES..=MAX_SIZED_BYTES).contains(&size) => {
                Ok(Self::Sized { size })
            }
            "sized" => Err(format!(
                "size must be between {MIN_SIZED_BYTES} and {MAX_SIZED_BYTES} bytes, got {size}"
            )),
            other => Err(format!(
                "unknown schema {other:?}: expected card-transactions, sized or sensors"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::CardTransactions => "card-transactions",
            Self::Sized { .. } => "sized",
            Self::Sensors { .. } => "sensors",
        }
    }
}

/// The values (JSON, no trailing newline) the generator makes for `seed`, in
/// order: what `weir generate` prints and what a `generate` source with the
/// same schema and seed emits as event values.
pub fn generate_values(
    schema: &GenerateSchema,
    seed: u64,
    count: u64,
) -> impl Iterator<Item = Vec<u8>> + use<> {
    let mut generator = ValueGenerator::new(schema, seed);
    (0..count).map(move |_| generator.next_value().1)
}

/// `[source] type = "generate"`: synthetic events.
///
/// Positions: stream `generate`, partition = a stable hash of the key modulo
/// `partitions`, offset = a counter per partition. Event timestamps are the
/// wall clock when generated (end-to-end latency is measured from them).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerateSourceConfig {
    /// `card-transactions` (default), `sized` or `sensors`.
    #[serde(default)]
    pub schema: SchemaName,
    /// Bytes per event, for `schema = "sized"` only (40 to 16 MiB). Default 200.
    #[serde(default)]
    pub size: Option<usize>,
    /// How many devices, for `schema = "sensors"` only (1 to 10,000).
    /// Default 20.
    #[serde(default)]
    pub devices: Option<u32>,
    /// Events per second. Absent: as fast as the pipeline takes them. If the
    /// pipeline falls more than a second behind, the missed events are not
    /// made up for.
    #[serde(default)]
    pub rate: Option<f64>,
    /// How many events in total. Absent: unbounded.
    #[serde(default)]
    pub count: Option<u64>,
    /// The seed: the same seed gives the same events (keys and values).
    /// Default 0.
    #[serde(default)]
    pub seed: u64,
    /// How many partitions events are spread over (by key), 1 to 65536.
    /// Default 1.
    #[serde(default = "one")]
    pub partitions: u32,
}

fn one() -> u32 {
    1
}

impl GenerateSourceConfig {
    pub fn schema(&self) -> GenerateSchema {
        match self.schema {
            SchemaName::CardTransactions => GenerateSchema::CardTransactions,
            SchemaName::Sized => GenerateSchema::Sized {
                size: self.size.unwrap_or(GenerateSchema::DEFAULT_SIZE),
            },
            SchemaName::Sensors => GenerateSchema::Sensors {
                devices: self.devices.unwrap_or(GenerateSchema::DEFAULT_DEVICES),
            },
        }
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        match (self.schema, self.devices) {
            (SchemaName::Sensors, Some(devices)) => {
                validate::in_range("devices", devices, 1..=sensors::MAX_DEVICES)?;
            }
            (_, Some(_)) => {
                return Err(FieldError::new("devices", "only for schema = \"sensors\""));
            }
            _ => {}
        }
        match (self.schema, self.size) {
            (SchemaName::CardTransactions | SchemaName::Sensors, Some(_)) => {
                return Err(FieldError::new("size", "only for schema = \"sized\""));
            }
            (SchemaName::Sized, Some(size)) => {
                validate::in_range("size", size, MIN_SIZED_BYTES..=MAX_SIZED_BYTES)?;
            }
            _ => {}
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(FieldError::new(
                "rate",
                format!("must be a number of events per second above 0, got {rate}"),
            ));
        }
        validate::in_range("partitions", self.partitions, 1..=65_536)
    }

    pub fn build(&self) -> Result<GenerateSource, EndpointError> {
        self.validate()
            .map_err(|e| EndpointError::Other(format!("generate source: {e}")))?;
        let schema = self.schema();
        let mut describe = format!("generate {} (seed {})", schema.name(), self.seed);
        if let Some(rate) = self.rate {
            describe.push_str(&format!(", {rate}/s"));
        }
        Ok(GenerateSource {
            describe,
            generator: ValueGenerator::new(&schema, self.seed),
            remaining: self.count,
            pacer: self.rate.map(Pacer::new),
            offsets: vec![0; self.partitions as usize],
            stream: Arc::from("generate"),
            chunks: ChunkIds::default(),
            acked: AckCounts::default(),
        })
    }
}

/// Keys and values for a schema.
enum ValueGenerator {
    Cards(Box<CardGenerator>),
    Sized(SizedGenerator),
    Sensors(Box<SensorGenerator>),
}

impl ValueGenerator {
    fn new(schema: &GenerateSchema, seed: u64) -> Self {
        match schema {
            GenerateSchema::CardTransactions => Self::Cards(Box::new(CardGenerator::new(seed))),
            GenerateSchema::Sized { size } => Self::Sized(SizedGenerator::new(*size, seed)),
            GenerateSchema::Sensors { devices } => {
                Self::Sensors(Box::new(SensorGenerator::new(seed, *devices)))
            }
        }
    }

    /// The next key, value and, for schemas with one, event time.
    fn next_value(&mut self) -> (Vec<u8>, Vec<u8>, Option<i64>) {
        match self {
            Self::Cards(g) => {
                let (key, value) = g.next_txn();
                (key.into_bytes(), value.into_bytes(), None)
            }
            Self::Sized(g) => {
                let (key, value) = g.next_value();
                (key, value, None)
            }
            Self::Sensors(g) => {
                let (key, value, ts) = g.next_reading();
                (key.into_bytes(), value.into_bytes(), Some(ts))
            }
        }
    }
}

/// `{"id":N,"payload":"<letters>"}`, exactly `size` bytes.
struct SizedGenerator {
    size: usize,
    /// Letters and digits, deterministic from the seed; sliced per event.
    pad: Vec<u8>,
    next_id: u64,
}

impl SizedGenerator {
    fn new(size: usize, seed: u64) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut rng = Rng::new(seed);
        let pad = (0..size)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
            .collect();
        Self {
            size,
            pad,
            next_id: 0,
        }
    }

    fn next_value(&mut self) -> (Vec<u8>, Vec<u8>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let digits = id.to_string();
        // `{"id":` + digits + `,"payload":"` + pad + `"}`
        let pad_len = self.size.saturating_sub(20 + digits.len());
        let mut value = Vec::with_capacity(self.size);
        value.extend_from_slice(b"{\"id\":");
        value.extend_from_slice(digits.as_bytes());
        value.extend_from_slice(b",\"payload\":\"");
        value.extend_from_slice(&self.pad[..pad_len.min(self.pad.len())]);
        value.extend_from_slice(b"\"}");
        (digits.into_bytes(), value)
    }
}

/// Paces a generator at `rate` events/s: each read makes the events due by
/// now (the first one at once), sleeping only when none is due.
struct Pacer {
    rate: f64,
    start: Option<Instant>,
    sent: u64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            start: None,
            sent: 0,
        }
    }

    /// How many events are due at `now` (the clock starts at the first call).
    fn due(&mut self, now: Instant) -> u64 {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        let allowed = (elapsed * self.rate) as u64 + 1;
        // More than a second behind: forget the excess rather than burst.
        let backlog = (self.rate.ceil() as u64).max(1);
        if allowed > self.sent + backlog {
            self.sent = allowed - backlog;
        }
        allowed.saturating_sub(self.sent)
    }

    /// When the next event is due.
    fn next_at(&self) -> Instant {
        let start = self.start.unwrap_or_else(Instant::now);
        start + Duration::from_secs_f64(self.sent as f64 / self.rate)
    }
}

/// The `generate` source.
pub struct GenerateSource {
    describe: String,
    generator: ValueGenerator,
    remaining: Option<u64>,
    pacer: Option<Pacer>,
    offsets: Vec<i64>,
    stream: Arc<str>,
    chunks: ChunkIds,
    acked: AckCounts,
}

#[async_trait]
impl Source for GenerateSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn read(&mut self, max: usize) -> Result<Option<Read>, EndpointError> {
        let mut n = max.max(1) as u64;
        if let Some(remaining) = self.remaining {
            if remaining == 0 {
                return Ok(None);
            }
            n = n.min(remaining);
        }
        if let Some(pacer) = &mut self.pacer {
            // Cancel-safe: nothing changes before the sleep completes.
            let due = loop {
                let due = pacer.due(Instant::now());
                if due > 0 {
                    break due;
                }
                tokio::time::sleep_until(pacer.next_at()).await;
            };
            n = n.min(due);
            pacer.sent += n;
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= n;
        }
        let ts = now_ms();
        let partitions = self.offsets.len() as u64;
        let mut events = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (key, value, event_ms) = self.generator.next_value();
            let partition = (fnv1a(&key) % partitions) as usize;
            let offset = self.offsets[partition];
            self.offsets[partition] += 1;
            let position = Position::new(self.stream.clone(), partition as i32, offset);
            let ts = event_ms.unwrap_or(ts);
            events.push(Event::new(Bytes::from(value), ts, position).with_key(key));
        }
        Ok(Some(Read {
            chunk: self.chunks.mint(),
            events,
            rejects: Vec::new(),
        }))
    }

    async fn ack(&mut self, ack: Ack) -> Result<(), EndpointError> {
        self.acked.record(&ack);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), EndpointError> {
        self.acked.log_closed(&self.describe);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
