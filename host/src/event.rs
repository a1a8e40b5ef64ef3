//! The host's representation of an event and of where it came from.

use std::sync::Arc;

use bytes::Bytes;

/// Where an event was read from. Plugins can read it but never change it; it
/// travels with every output derived from the event (provenance, acknowledgement).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The stream: a Kafka topic, a file path, `stdin`, `generate`.
    pub stream: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

impl Position {
    pub fn new(stream: Arc<str>, partition: i32, offset: i64) -> Self {
        Self {
            stream,
            partition,
            offset,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]@{}", self.stream, self.partition, self.offset)
    }
}

/// One header. Names are UTF-8; values are bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: Arc<str>,
    pub value: Bytes,
}

impl Header {
    pub fn new(name: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// An event in flight. `Bytes` fields are cheap to clone and slice: the outputs
/// of a plugin call all share the one buffer the batch came back in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `None` and an empty key are different things (as in Kafka).
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
    pub position: Position,
}

impl Event {
    pub fn new(value: impl Into<Bytes>, timestamp_ms: i64, position: Position) -> Self {
        Self {
            key: None,
            value: value.into(),
            timestamp_ms,
            headers: Vec::new(),
            position,
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| &*h.name == name)
            .map(|h| &h.value)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
