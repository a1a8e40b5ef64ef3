//! Sinks: where events go. Each named output of a pipeline, and the
//! dead-letter output, is a sink.
//!
//! Each kind of sink is one module that owns its configuration struct
//! (`validate`, `resolve_paths`, `build`); [`SinkConfig`], an
//! `[outputs.<name>]` or `[dead_letter]` table, only dispatches on `type`.
//! Adding a sink is a module and a variant here.

mod context;
mod fields;
mod file;
mod http;
mod jsonl;
mod kafka;
mod postgres;
mod redis;
mod retry;
mod secret;
mod stdout;
mod template;
mod upsert;
mod writer;

use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::endpoint::EndpointError;
use crate::event::Event;
use crate::paths::ConfigPath;
use crate::pipeline::AckSet;
use crate::validate::FieldError;

pub use self::redis::{RedisMode, RedisSink, RedisSinkConfig, RedisVersion};
pub use context::{DeadLetters, SinkContext};
pub use file::{FileSink, FileSinkConfig};
pub use http::{HttpFormat, HttpMethod, HttpSink, HttpSinkConfig};
pub use jsonl::{OutputFormat, encode_envelope};
pub use kafka::{KafkaSink, KafkaSinkConfig};
pub use postgres::{PostgresSink, PostgresSinkConfig};
pub use retry::RetryConfig;
pub use secret::Secret;
pub use stdout::{StderrSink, StdoutSink, StdoutSinkConfig};
pub use template::{KeyTemplate, Version};
pub use writer::{AfterWrite, WriterSink};

/// An output (`[outputs.<name>]`) or the dead-letter output (`[dead_letter]`).
/// `type` selects the kind; the other fields are the kind's.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// JSON lines on standard output ([`StdoutSinkConfig`]).
    Stdout(StdoutSinkConfig),
    /// JSON lines on standard error ([`StdoutSinkConfig`]); the default
    /// dead-letter output.
    Stderr(StdoutSinkConfig),
    /// A file ([`FileSinkConfig`]).
    File(FileSinkConfig),
    /// A Kafka topic ([`KafkaSinkConfig`]).
    Kafka(KafkaSinkConfig),
    /// An HTTP endpoint, e.g. a webhook ([`HttpSinkConfig`]).
    Http(HttpSinkConfig),
    /// Keys of a Redis server ([`RedisSinkConfig`]).
    Redis(RedisSinkConfig),
    /// Rows of a PostgreSQL table ([`PostgresSinkConfig`]).
    Postgres(PostgresSinkConfig),
}

impl SinkConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            SinkConfig::Stdout(c) | SinkConfig::Stderr(c) => c.validate(),
            SinkConfig::File(c) => c.validate(),
            SinkConfig::Kafka(c) => c.validate(),
            SinkConfig::Http(c) => c.validate(),
            SinkConfig::Redis(c) => c.validate(),
            SinkConfig::Postgres(c) => c.validate(),
        }
    }

    /// Resolves relative paths against the pipeline file's folder (once,
    /// when the file is loaded).
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        match self {
            SinkConfig::File(c) => c.resolve_paths(base_dir),
            SinkConfig::Stdout(_)
            | SinkConfig::Stderr(_)
            | SinkConfig::Kafka(_)
            | SinkConfig::Http(_)
            | SinkConfig::Redis(_)
            | SinkConfig::Postgres(_) => {}
        }
    }

    /// The file this sink writes, if it writes one (as resolved, and as
    /// written in the pipeline file).
    pub fn file(&self) -> Option<&ConfigPath> {
        match self {
            SinkConfig::File(c) => Some(&c.path),
            SinkConfig::Stdout(_)
            | SinkConfig::Stderr(_)
            | SinkConfig::Kafka(_)
            | SinkConfig::Http(_)
            | SinkConfig::Redis(_)
            | SinkConfig::Postgres(_) => None,
        }
    }

    /// Creates the sink.
    pub fn build(&self) -> Result<Box<dyn Sink>, EndpointError> {
        Ok(match self {
            SinkConfig::Stdout(c) => Box::new(c.build_stdout()),
            SinkConfig::Stderr(c) => Box::new(c.build_stderr()),
            SinkConfig::File(c) => Box::new(c.build()?),
            SinkConfig::Kafka(c) => Box::new(c.build()?),
            SinkConfig::Http(c) => Box::new(c.build()?),
            SinkConfig::Redis(c) => Box::new(c.build()?),
            SinkConfig::Postgres(c) => Box::new(c.build()?),
        })
    }

    /// Deserializes the variant named `ty` on its own, for an error with the
    /// precise position of the offending field (serde's tagged enums lose it).
    pub fn variant_error(ty: &str, de: toml::de::Deserializer<'_>) -> Option<toml::de::Error> {
        match ty {
            "stdout" | "stderr" => StdoutSinkConfig::deserialize(de).err(),
            "file" => FileSinkConfig::deserialize(de).err(),
            "kafka" => KafkaSinkConfig::deserialize(de).err(),
            "http" => HttpSinkConfig::deserialize(de).err(),
            "redis" => RedisSinkConfig::deserialize(de).err(),
            "postgres" => PostgresSinkConfig::deserialize(de).err(),
            _ => None,
        }
    }
}

/// What a sink of type `kind` is built from: its config validated, then
/// `make` (its client, its parsed settings). A config error is the build's
/// error, named `"{kind} sink: {field}: ..."`.
fn checked<T>(
    kind: &'static str,
    validated: Result<(), FieldError>,
    make: impl FnOnce() -> Result<T, FieldError>,
) -> Result<T, EndpointError> {
    validated
        .and_then(|()| make())
        .map_err(|e| EndpointError::Other(format!("{kind} sink: {e}")))
}

/// Events for one sink, with the acknowledgement handles of the source chunks
/// they derive from.
pub struct SinkBatch {
    pub events: Vec<Event>,
    pub acks: AckSet,
}

impl SinkBatch {
    /// Queues `events` (if any) for the sink behind `tx`, under a clone of
    /// `acks`. `false` (and `acks` failed: the chunks count as not
    /// delivered) if that sink has stopped.
    pub async fn send(tx: &mpsc::Sender<SinkBatch>, events: Vec<Event>, acks: &AckSet) -> bool {
        if events.is_empty() {
            return true;
        }
        let batch = SinkBatch {
            events,
            acks: acks.clone(),
        };
        let sent = tx.send(batch).await.is_ok();
        if !sent {
            acks.fail();
        }
        sent
    }
}

#[async_trait]
pub trait Sink: Send {
    fn describe(&self) -> String;

    /// Called once by the pipeline before the first batch, inside the async
    /// runtime: the sink's name, its counters, where it sends the events its
    /// server refuses, and the pipeline's stop signal. Sinks that report
    /// nothing ignore it.
    fn attach(&mut self, _context: SinkContext) {}

    /// Takes a batch. The sink acknowledges it by dropping `batch.acks` once
    /// the events are accepted (written to the file, acknowledged by the
    /// broker) — after calling `batch.acks.fail()` if they could not be. A
    /// pipelined sink may return before that. An `Err` is fatal: the pipeline
    /// stops (at-least-once: unacknowledged input is read again on restart).
    async fn send(&mut self, batch: SinkBatch) -> Result<(), EndpointError>;

    /// Called when no batch is queued for the sink: a sink that holds a
    /// batch's acknowledgements back to overlap it with the next batch
    /// (the redis sink's `version = "none"`) completes it now, so an idle
    /// stream's last events are acknowledged without waiting for more.
    /// An `Err` is fatal, as for `send`.
    async fn settle(&mut self) -> Result<(), EndpointError> {
        Ok(())
    }

    /// Waits until everything sent so far is acknowledged. Called at shutdown.
    async fn flush(&mut self) -> Result<(), EndpointError>;
}
