//! The wire codec over the packed batch of `weir:plugin@0.2.0` (crate
//! `weir-batch`): input events into owned [`Event`]s, and outputs and
//! errors into the output buffer. The per-shape drivers the attribute
//! macros call (`crate::drivers`) run a plugin's function between the two.
//!
//! Everything here is plain Rust over byte buffers, so it is unit tested
//! natively (with the drivers, in `drivers/tests.rs`). Costs per event: a
//! copy of the value (and key) into a buffer recycled from the previous
//! events, none for headers when there are none; outputs are appended to one
//! buffer reserved at the input's size.

use std::sync::Arc;

use weir_batch::{InputEvent, InputView, OutputWriter};

use crate::event::{Event, Position};

/// How many byte buffers of finished events a [`Decoder`] keeps for reuse.
const POOL_SIZE: usize = 8;

/// Reads the events of an input batch.
///
/// The buffers of the events the plugin hands back (a map's output, a
/// filter's input) are recycled for the keys and values of the next events,
/// so that a map or filter costs no allocation per event in the steady state.
pub(crate) struct Decoder {
    streams: Vec<Arc<str>>,
    unknown_stream: Arc<str>,
    pool: Vec<Vec<u8>>,
}

fn utf8_lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl Decoder {
    pub(crate) fn new(view: &InputView<'_>) -> Self {
        Self {
            streams: (0..view.streams_len() as u32)
                .map(|i| Arc::from(view.stream(i)))
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

    /// The owned [`Event`] for one input event.
    pub(crate) fn event(&mut self, raw: &InputEvent<'_>) -> Event {
        let value = self.owned(raw.value);
        let key = raw.key.map(|key| self.owned(key));
        let headers = if raw.headers.len() == 0 {
            Vec::new()
        } else {
            raw.headers
                .clone()
                .map(|(name, value)| (utf8_lossy(name), value.to_vec()))
                .collect()
        };
        let stream = self
            .streams
            .get(raw.stream as usize)
            .unwrap_or(&self.unknown_stream)
            .clone();
        Event {
            key,
            value,
            timestamp_ms: Some(raw.timestamp_ms),
            headers,
            position: Position {
                stream,
                partition: raw.partition,
                offset: raw.offset,
            },
        }
    }
}

/// Builds an output batch.
pub(crate) struct Encoder {
    out: OutputWriter,
}

impl Encoder {
    /// An encoder sized for the outputs of `input` (one output per input, of
    /// about the same size).
    pub(crate) fn for_input(input: &InputView<'_>) -> Self {
        Self {
            out: OutputWriter::with_capacity(input.len(), input.data_len()),
        }
    }

    /// An encoder for a batch that could not be read.
    pub(crate) fn empty() -> Self {
        Self {
            out: OutputWriter::new(),
        }
    }

    fn try_emit(
        &mut self,
        input: u32,
        input_timestamp_ms: i64,
        route: Option<&str>,
        event: &Event,
    ) -> Result<(), weir_batch::TooLarge> {
        self.out.event(
            input,
            route,
            event.key.as_deref(),
            &event.value,
            event.timestamp_ms.unwrap_or(input_timestamp_ms),
        )?;
        for (name, value) in &event.headers {
            if let Err(e) = self.out.header(name, value) {
                self.out.drop_last_outputs(1);
                return Err(e);
            }
        }
        Ok(())
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
        if self
            .try_emit(input, input_timestamp_ms, route, event)
            .is_err()
        {
            self.fail(input, "output batch too large (over 4 GiB)".to_owned());
        }
    }

    /// Records that input event `input` failed with `message`.
    pub(crate) fn fail(&mut self, input: u32, message: String) {
        self.out.error(input, &message);
    }

    /// The writer, for keyed state writes and timers.
    pub(crate) fn writer(&mut self) -> &mut OutputWriter {
        &mut self.out
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out.finish()
    }
}
