//! Sinks: where events go. Each named output of a pipeline, and the
//! dead-letter output, is a sink.

pub mod file;
pub mod jsonl;
pub mod kafka;
pub mod stdout;
pub mod writer;

use async_trait::async_trait;

use crate::event::Event;
use crate::pipeline::ack::AckSet;

pub use file::{FileSink, FileSinkConfig};
pub use jsonl::{DecodedEvent, OutputFormat, decode_envelope, encode_envelope};
pub use stdout::{StderrSink, StdoutSink, StdoutSinkConfig};
pub use writer::WriterSink;

/// Events for one sink, with the acknowledgement handles of the source chunks
/// they derive from.
pub struct SinkBatch {
    pub events: Vec<Event>,
    pub acks: AckSet,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Sink: Send {
    fn describe(&self) -> String;

    /// Takes a batch. The sink acknowledges it by dropping `batch.acks` once
    /// the events are accepted (written to the file, acknowledged by the
    /// broker) — after calling `batch.acks.fail()` if they could not be. A
    /// pipelined sink may return before that. An `Err` is fatal: the pipeline
    /// stops (at-least-once: unacknowledged input is read again on restart).
    async fn send(&mut self, batch: SinkBatch) -> Result<(), SinkError>;

    /// Waits until everything sent so far is acknowledged. Called at shutdown.
    async fn flush(&mut self) -> Result<(), SinkError>;
}
