//! The wire codec: batch decoding (WIT `batch` → [`Event`]s) and encoding
//! ([`Event`]s → WIT `output-batch`). The per-shape drivers the attribute
//! macros call (`crate::drivers`) run a plugin's function between the two.
//!
//! Everything here is plain Rust over the generated WIT types, so it is unit
//! tested natively (with the drivers, in `drivers/tests.rs`). Costs per event: a copy of the value (and key) into a
//! buffer recycled from the previous events, none for headers when there are
//! none; outputs are appended to one `data` buffer reserved at the input's size.

use std::sync::Arc;

use crate::__private::bindings::weir::plugin::types as wit;
use crate::Result;
use crate::event::{Event, Position};

/// How many byte buffers of finished events a [`Decoder`] keeps for reuse.
const POOL_SIZE: usize = 8;

/// Reads the events of an input batch.
///
/// The buffers of the events the plugin hands back (a map's output, a
/// filter's input) are recycled for the keys and values of the next events,
/// so that a map or filter costs no allocation per event in the steady state.
pub(crate) struct Decoder<'a> {
    batch: &'a wit::Batch,
    streams: Vec<Arc<str>>,
    unknown_stream: Arc<str>,
    pool: Vec<Vec<u8>>,
}

fn span_range(span: wit::Span) -> Option<std::ops::Range<usize>> {
    let start = span.offset as usize;
    let end = start.checked_add(span.len as usize)?;
    Some(start..end)
}

fn malformed(what: &str, span: wit::Span, available: usize) -> String {
    format!(
        "malformed input batch: {what} {}+{} is outside its table ({available} entries)",
        span.offset, span.len
    )
}

fn utf8_lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(batch: &'a wit::Batch) -> Self {
        Self {
            batch,
            streams: batch
                .streams
                .iter()
                .map(|s| Arc::from(s.as_str()))
                .collect(),
            unknown_stream: Arc::from(""),
            pool: Vec::new(),
        }
    }

    /// A copy of `bytes`, in a recycled buffer if there is one.
    fn owned(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self.pool.pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer.extend_from_slice(bytes);
                buffer
            }
            None => bytes.to_vec(),
        }
    }

    /// Keeps the buffers of an event that is done with, for the next events.
    pub(crate) fn recycle(&mut self, event: Event) {
        for buffer in [event.key, Some(event.value)].into_iter().flatten() {
            if self.pool.len() < POOL_SIZE && buffer.capacity() > 0 {
                self.pool.push(buffer);
            }
        }
    }

    /// How many buffers are kept for reuse.
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> usize {
        self.pool.len()
    }

    fn bytes(&self, span: wit::Span) -> Result<&'a [u8], String> {
        span_range(span)
            .and_then(|range| self.batch.data.get(range))
            .ok_or_else(|| malformed("data span", span, self.batch.data.len()))
    }

    /// The owned [`Event`] for one input event.
    pub(crate) fn event(&mut self, raw: &wit::Event) -> Result<Event, String> {
        let value = self.bytes(raw.value)?;
        let key = match raw.key {
            Some(span) => Some(self.bytes(span)?),
            None => None,
        };
        let value = self.owned(value);
        let key = key.map(|key| self.owned(key));
        let headers = if raw.headers.len == 0 {
            Vec::new()
        } else {
            let table = span_range(raw.headers)
                .and_then(|range| self.batch.headers.get(range))
                .ok_or_else(|| malformed("header range", raw.headers, self.batch.headers.len()))?;
            let mut headers = Vec::with_capacity(table.len());
            for header in table {
                headers.push((
                    utf8_lossy(self.bytes(header.name)?),
                    self.bytes(header.value)?.to_vec(),
                ));
            }
            headers
        };
        let stream = self
            .streams
            .get(raw.position.stream as usize)
            .unwrap_or(&self.unknown_stream)
            .clone();
        Ok(Event {
            key,
            value,
            timestamp_ms: Some(raw.timestamp_ms),
            headers,
            position: Position {
                stream,
                partition: raw.position.partition,
                offset: raw.position.offset,
            },
        })
    }
}

/// Builds an output batch.
pub(crate) struct Encoder {
    out: wit::OutputBatch,
}

impl Encoder {
    /// An encoder sized for the outputs of `input` (one output per input, of
    /// about the same size).
    pub(crate) fn for_input(input: &wit::Batch) -> Self {
        Self {
            out: wit::OutputBatch {
                data: Vec::with_capacity(input.data.len()),
                events: Vec::with_capacity(input.events.len()),
                headers: Vec::with_capacity(input.headers.len()),
                routes: Vec::new(),
                errors: Vec::new(),
            },
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Option<wit::Span> {
        let offset = u32::try_from(self.out.data.len()).ok()?;
        let len = u32::try_from(bytes.len()).ok()?;
        offset.checked_add(len)?;
        self.out.data.extend_from_slice(bytes);
        Some(wit::Span { offset, len })
    }

    fn route_index(&mut self, route: &str) -> Option<u32> {
        let index = match self.out.routes.iter().position(|r| r == route) {
            Some(index) => index,
            None => {
                self.out.routes.push(route.to_owned());
                self.out.routes.len() - 1
            }
        };
        u32::try_from(index).ok()
    }

    fn try_emit(
        &mut self,
        input: u32,
        input_timestamp_ms: i64,
        route: Option<&str>,
        event: &Event,
    ) -> Option<()> {
        let route = match route {
            Some(route) => Some(self.route_index(route)?),
            None => None,
        };
        let key = match &event.key {
            Some(key) => Some(self.push_bytes(key)?),
            None => None,
        };
        let value = self.push_bytes(&event.value)?;
        let first_header = u32::try_from(self.out.headers.len()).ok()?;
        for (name, value) in &event.headers {
            let name = self.push_bytes(name.as_bytes())?;
            let value = self.push_bytes(value)?;
            self.out.headers.push(wit::Header { name, value });
        }
        let header_count = u32::try_from(event.headers.len()).ok()?;
        self.out.events.push(wit::OutputEvent {
            input,
            route,
            key,
            value,
            timestamp_ms: event.timestamp_ms.unwrap_or(input_timestamp_ms),
            headers: wit::Span {
                offset: first_header,
                len: header_count,
            },
        });
        Some(())
    }

    /// Appends `event` as an output of input event `input`, to the default
    /// output (`route` `None`) or a named one. An event without a timestamp of
    /// its own gets the input's.
    pub(crate) fn emit(
        &mut self,
        input: u32,
        input_timestamp_ms: i64,
        route: Option<&str>,
        event: &Event,
    ) {
        let (data, headers) = (self.out.data.len(), self.out.headers.len());
        if self
            .try_emit(input, input_timestamp_ms, route, event)
            .is_none()
        {
            self.out.data.truncate(data);
            self.out.headers.truncate(headers);
            self.fail(input, "output batch too large (over 4 GiB)".to_owned());
        }
    }

    /// Records that input event `input` failed with `message`.
    pub(crate) fn fail(&mut self, input: u32, message: String) {
        self.out.errors.push(wit::EventError { input, message });
    }

    pub(crate) fn finish(self) -> wit::OutputBatch {
        self.out
    }
}
