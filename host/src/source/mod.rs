//! Sources: where events come from.
//!
//! A [`Source`] is pulled by the pipeline's source driver. Each chunk it
//! hands over ([`Read`]) carries the id the source minted for it
//! ([`ChunkIds`]: 0, 1, 2... in order); the driver reports each chunk's
//! outcome back under that id through [`Source::ack`] once everything derived
//! from it was delivered.
//!
//! Each kind of source is one module that owns its configuration struct
//! (`validate`, `resolve_paths`, `build`); [`SourceConfig`], the
//! `[source]` table, only dispatches on `type`. Adding a source is a module
//! and a variant here.

mod file;
mod generate;
pub(crate) mod kafka;
pub(crate) mod lines;
mod stdin;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::pipeline::{Ack, AckStatus, DeadLetter};
use crate::validate::FieldError;

pub use file::FileSourceConfig;
pub use generate::{
    GenerateSchema, GenerateSource, GenerateSourceConfig, SchemaName, generate_values, sensor_truth,
};
pub use kafka::{KafkaSource, KafkaSourceConfig, KafkaStats, PartitionMetrics, StartPosition};
pub use lines::{LineFormat, LinesSource};
pub use stdin::StdinSourceConfig;

/// `[source]`: where events come from. `type` selects the kind; the other
/// fields are the kind's (see each config struct).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Built-in synthetic events ([`GenerateSourceConfig`]).
    Generate(GenerateSourceConfig),
    /// A file of lines ([`FileSourceConfig`]).
    File(FileSourceConfig),
    /// Lines on standard input ([`StdinSourceConfig`]).
    Stdin(StdinSourceConfig),
    /// Kafka topics, as a consumer-group member ([`KafkaSourceConfig`]).
    Kafka(KafkaSourceConfig),
}

impl SourceConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            SourceConfig::Generate(c) => c.validate(),
            SourceConfig::File(c) => c.validate(),
            SourceConfig::Stdin(c) => c.validate(),
            SourceConfig::Kafka(c) => c.validate(),
        }
    }

    /// Resolves relative paths against the pipeline file's folder (once,
    /// when the file is loaded).
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        match self {
            SourceConfig::File(c) => c.resolve_paths(base_dir),
            SourceConfig::Generate(_) | SourceConfig::Stdin(_) | SourceConfig::Kafka(_) => {}
        }
    }

    /// The file this source reads, if it reads one.
    pub fn file(&self) -> Option<&crate::paths::ConfigPath> {
        match self {
            SourceConfig::File(c) => Some(&c.path),
            SourceConfig::Generate(_) | SourceConfig::Stdin(_) | SourceConfig::Kafka(_) => None,
        }
    }

    /// Creates the source.
    pub fn build(&self) -> Result<Box<dyn Source>, EndpointError> {
        self.build_with(None)
    }

    /// Creates the source; a partitioned source (Kafka) tells `assignments`
    /// of its rebalances (the others have nothing to tell).
    pub fn build_with(
        &self,
        assignments: Option<Arc<dyn Assignments>>,
    ) -> Result<Box<dyn Source>, EndpointError> {
        Ok(match self {
            SourceConfig::Generate(c) => Box::new(c.build()?),
            SourceConfig::File(c) => Box::new(c.build()?),
            SourceConfig::Stdin(c) => Box::new(c.build()?),
            SourceConfig::Kafka(c) => Box::new(c.build_with(assignments)?),
        })
    }

    /// Deserializes the variant named `ty` on its own, for an error with the
    /// precise position of the offending field (serde's tagged enums lose it).
    pub fn variant_error(ty: &str, de: toml::de::Deserializer<'_>) -> Option<toml::de::Error> {
        match ty {
            "generate" => GenerateSourceConfig::deserialize(de).err(),
            "file" => FileSourceConfig::deserialize(de).err(),
            "stdin" => StdinSourceConfig::deserialize(de).err(),
            "kafka" => KafkaSourceConfig::deserialize(de).err(),
            _ => None,
        }
    }
}

/// A (stream, partition) of a partitioned source.
pub type StreamPartition = (Arc<str>, i32);

/// Told of a partitioned source's rebalances (keyed state on a Kafka
/// source: restore on assignment, forget on revocation). Called on the
/// source's own thread, before any event of an assigned partition is read
/// and after every event of a revoked one was acknowledged.
pub trait Assignments: Send + Sync {
    /// Partitions were assigned: prepare them (restore their state). Returns
    /// where to start reading each partition that has a known position (the
    /// next offset), or why the partitions cannot be served (the source
    /// then fails).
    fn assigned(
        &self,
        partitions: &[StreamPartition],
    ) -> Result<Vec<(StreamPartition, i64)>, String>;

    /// Partitions were revoked, their in-flight events acknowledged (or the
    /// wait for them timed out: `drained` false).
    fn revoked(&self, partitions: &[StreamPartition], drained: bool);
}

/// What one [`Source::read`] returns: one chunk, never empty.
#[derive(Debug)]
pub struct Read {
    /// The chunk's id, minted by the source as it hands the chunk over
    /// ([`ChunkIds`]); its [`Ack`] names it.
    pub chunk: u64,
    pub events: Vec<Event>,
    /// Input that could not be turned into an event (a malformed line...): it
    /// goes to the dead-letter output with the reason. It belongs to the same
    /// chunk as `events` for acknowledgement.
    pub rejects: Vec<DeadLetter>,
}

impl Read {
    pub fn len(&self) -> usize {
        self.events.len() + self.rejects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty()
    }
}

/// A source's chunk ids: 0, 1, 2... one per chunk handed over.
#[derive(Debug, Default)]
pub struct ChunkIds(u64);

impl ChunkIds {
    /// The next chunk's id.
    pub fn mint(&mut self) -> u64 {
        let id = self.0;
        self.0 += 1;
        id
    }
}

/// Events acknowledged delivered / failed, as a source counts them for its
/// closing log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckCounts {
    pub delivered: u64,
    pub failed: u64,
}

impl AckCounts {
    pub fn record(&mut self, ack: &Ack) {
        match ack.status {
            AckStatus::Delivered => self.delivered += ack.events as u64,
            AckStatus::Failed => self.failed += ack.events as u64,
        }
    }

    /// The source's closing log line.
    pub fn log_closed(&self, source: &str) {
        tracing::info!(
            source = %source,
            delivered = self.delivered,
            failed = self.failed,
            "source closed"
        );
    }
}

#[async_trait]
pub trait Source: Send {
    /// A short description for logs ("file data/in.jsonl", "generate card-transactions").
    fn describe(&self) -> String;

    /// Per-partition consumer lag and committed offsets, for telemetry: a
    /// shared handle the source keeps up to date (`None`: the source has no
    /// partitions to report).
    fn kafka_stats(&self) -> Option<std::sync::Arc<KafkaStats>> {
        None
    }

    /// Reads up to `max` events (and rejects). `Ok(None)`: the input is
    /// exhausted. Must be cancel-safe: the driver drops the future at shutdown.
    async fn read(&mut self, max: usize) -> Result<Option<Read>, EndpointError>;

    /// The outcome of a chunk this source returned (by the id it minted).
    /// Acks may arrive in any order.
    async fn ack(&mut self, _ack: Ack) -> Result<(), EndpointError> {
        Ok(())
    }

    /// Called once at shutdown after every outstanding chunk was acknowledged
    /// (or the drain deadline passed): commit what must be committed.
    async fn close(&mut self) -> Result<(), EndpointError> {
        Ok(())
    }
}
