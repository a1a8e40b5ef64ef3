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

/// The `weir.version.<stage>` headers of the plugin versions an event went
/// through, in stage order: one list per batch and stage, shared by every
/// output of the call (no allocation per event), kept beside the event's own
/// headers and written out with them by the sinks that write headers. A
/// plugin does not see them (they are not part of its input) and cannot drop
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance(Option<Arc<Vec<Header>>>);

impl Provenance {
    pub fn headers(&self) -> &[Header] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// This list and then `header`.
    pub fn and(&self, header: &Header) -> Provenance {
        let mut all = Vec::with_capacity(self.headers().len() + 1);
        all.extend_from_slice(self.headers());
        all.push(header.clone());
        Provenance(Some(Arc::new(all)))
    }

    fn same(&self, other: &Provenance) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// The provenance of a call's outputs: their input's, then the call's
/// header if it has one, made once per distinct input list (once per batch,
/// in the steady state).
pub struct Stamp<'a> {
    header: Option<&'a Header>,
    last: Option<(Provenance, Provenance)>,
}

impl<'a> Stamp<'a> {
    pub fn new(header: Option<&'a Header>) -> Self {
        Self { header, last: None }
    }

    /// The provenance of an output of an input whose provenance is `input`.
    pub fn of(&mut self, input: &Provenance) -> Provenance {
        let Some(header) = self.header else {
            return input.clone();
        };
        if let Some((from, to)) = &self.last
            && from.same(input)
        {
            return to.clone();
        }
        let to = input.and(header);
        self.last = Some((input.clone(), to.clone()));
        to
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
    /// The event's own headers (what its source read, what plugins set).
    pub headers: Vec<Header>,
    /// The plugin versions it went through ([`Provenance`]).
    pub provenance: Provenance,
    pub position: Position,
}

impl Event {
    pub fn new(value: impl Into<Bytes>, timestamp_ms: i64, position: Position) -> Self {
        Self {
            key: None,
            value: value.into(),
            timestamp_ms,
            headers: Vec::new(),
            provenance: Provenance::default(),
            position,
        }
    }

    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The first header with this name, of its own or of its provenance.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.all_headers()
            .find(|h| &*h.name == name)
            .map(|h| &h.value)
    }

    /// Its own headers, then its provenance's: what a sink writes.
    pub fn all_headers(&self) -> impl Iterator<Item = &Header> {
        self.headers.iter().chain(self.provenance.headers())
    }

    /// How many headers [`Event::all_headers`] yields.
    pub fn all_headers_len(&self) -> usize {
        self.headers.len() + self.provenance.headers().len()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
