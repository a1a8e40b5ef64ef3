//! Batch decoding (WIT `batch` → [`Event`]s) and encoding ([`Event`]s → WIT
//! `output-batch`), and the per-shape drivers the attribute macros call.
//!
//! Everything here is plain Rust over the generated WIT types, so it is unit
//! tested natively. Costs per event: a copy of the value (and key) into a
//! buffer recycled from the previous events, none for headers when there are
//! none; outputs are appended to one `data` buffer reserved at the input's size.

use std::sync::Arc;

use crate::__private::bindings::weir::plugin::types as wit;
use crate::event::{Event, Output, Position};
use crate::{Error, Result};

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

/// Runs a `map` function over a batch.
pub fn run_map(batch: wit::Batch, mut f: impl FnMut(Event) -> Result<Event>) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => match f(event) {
                Ok(out) => {
                    encoder.emit(input, raw.timestamp_ms, None, &out);
                    decoder.recycle(out);
                }
                Err(e) => encoder.fail(input, e.into_message()),
            },
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

/// Runs a `filter` function over a batch.
pub fn run_filter(
    batch: wit::Batch,
    mut f: impl FnMut(&Event) -> Result<bool>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => {
                match f(&event) {
                    Ok(true) => encoder.emit(input, raw.timestamp_ms, None, &event),
                    Ok(false) => {}
                    Err(e) => encoder.fail(input, e.into_message()),
                }
                decoder.recycle(event);
            }
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

fn emit_all(encoder: &mut Encoder, input: u32, timestamp_ms: i64, outputs: &[Output]) {
    for output in outputs {
        encoder.emit(input, timestamp_ms, output.route(), &output.event);
    }
}

/// Runs a `flat_map` function over a batch.
pub fn run_flat_map(
    batch: wit::Batch,
    mut f: impl FnMut(Event) -> Result<Vec<Output>>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => match f(event) {
                Ok(outputs) => {
                    emit_all(&mut encoder, input, raw.timestamp_ms, &outputs);
                    for output in outputs {
                        decoder.recycle(output.event);
                    }
                }
                Err(e) => encoder.fail(input, e.into_message()),
            },
            Err(message) => encoder.fail(input, message),
        }
    }
    encoder.finish()
}

/// Runs a `batch` function over a batch. The function must return one result
/// per event it was given, in order; otherwise every event of the batch fails
/// (which result belongs to which event is unknown).
pub fn run_batch(
    batch: wit::Batch,
    f: impl FnOnce(Vec<Event>) -> Vec<Result<Vec<Output>>>,
) -> wit::OutputBatch {
    let mut decoder = Decoder::new(&batch);
    let mut encoder = Encoder::for_input(&batch);
    let mut events = Vec::with_capacity(batch.events.len());
    // (input index, input timestamp) of each event handed to `f`.
    let mut inputs = Vec::with_capacity(batch.events.len());
    for (input, raw) in (0u32..).zip(&batch.events) {
        match decoder.event(raw) {
            Ok(event) => {
                events.push(event);
                inputs.push((input, raw.timestamp_ms));
            }
            Err(message) => encoder.fail(input, message),
        }
    }
    let given = events.len();
    let results = f(events);
    if results.len() == given {
        for ((input, timestamp_ms), result) in inputs.into_iter().zip(results) {
            match result {
                Ok(outputs) => emit_all(&mut encoder, input, timestamp_ms, &outputs),
                Err(e) => encoder.fail(input, e.into_message()),
            }
        }
    } else {
        let message = format!(
            "the batch function returned {} results for {given} events (it must return one per event, in order)",
            results.len()
        );
        for (input, _) in inputs {
            encoder.fail(input, message.clone());
        }
    }
    encoder.finish()
}

/// Fails every event of a batch with `message`.
pub fn fail_all(batch: wit::Batch, message: &str) -> wit::OutputBatch {
    let mut encoder = Encoder::for_input(&wit::Batch {
        data: Vec::new(),
        events: Vec::new(),
        headers: Vec::new(),
        streams: Vec::new(),
    });
    for (input, _) in (0u32..).zip(&batch.events) {
        encoder.fail(input, message.to_owned());
    }
    encoder.finish()
}

/// Converts the result of an infallible entry point.
#[doc(hidden)]
pub fn ok<T>(value: T) -> Result<T, Error> {
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds input batches the way the host does.
    #[derive(Default)]
    struct BatchBuilder {
        batch: Option<wit::Batch>,
    }

    impl BatchBuilder {
        fn batch(&mut self) -> &mut wit::Batch {
            self.batch.get_or_insert_with(|| wit::Batch {
                data: Vec::new(),
                events: Vec::new(),
                headers: Vec::new(),
                streams: vec!["topic-a".into(), "topic-b".into()],
            })
        }

        fn span(&mut self, bytes: &[u8]) -> wit::Span {
            let data = &mut self.batch().data;
            let offset = data.len() as u32;
            data.extend_from_slice(bytes);
            wit::Span {
                offset,
                len: bytes.len() as u32,
            }
        }

        fn event(
            mut self,
            key: Option<&str>,
            value: &str,
            headers: &[(&str, &str)],
            offset: i64,
        ) -> Self {
            let key = key.map(|k| self.span(k.as_bytes()));
            let value = self.span(value.as_bytes());
            let first = self.batch().headers.len() as u32;
            for (n, v) in headers {
                let name = self.span(n.as_bytes());
                let value = self.span(v.as_bytes());
                self.batch().headers.push(wit::Header { name, value });
            }
            self.batch().events.push(wit::Event {
                key,
                value,
                timestamp_ms: 1000 + offset,
                headers: wit::Span {
                    offset: first,
                    len: headers.len() as u32,
                },
                position: wit::Position {
                    stream: (offset % 2) as u32,
                    partition: 3,
                    offset,
                },
            });
            self
        }

        fn build(mut self) -> wit::Batch {
            self.batch().clone()
        }
    }

    /// An output event read back from an output batch.
    #[derive(Debug, PartialEq)]
    struct Out {
        input: u32,
        route: Option<String>,
        key: Option<String>,
        value: String,
        timestamp_ms: i64,
        headers: Vec<(String, String)>,
    }

    fn text(out: &wit::OutputBatch, span: wit::Span) -> String {
        let range = span.offset as usize..(span.offset + span.len) as usize;
        String::from_utf8(out.data[range].to_vec()).unwrap()
    }

    fn read(out: &wit::OutputBatch) -> Vec<Out> {
        out.events
            .iter()
            .map(|e| Out {
                input: e.input,
                route: e.route.map(|r| out.routes[r as usize].clone()),
                key: e.key.map(|k| text(out, k)),
                value: text(out, e.value),
                timestamp_ms: e.timestamp_ms,
                headers: out.headers
                    [e.headers.offset as usize..(e.headers.offset + e.headers.len) as usize]
                    .iter()
                    .map(|h| (text(out, h.name), text(out, h.value)))
                    .collect(),
            })
            .collect()
    }

    fn errors(out: &wit::OutputBatch) -> Vec<(u32, &str)> {
        out.errors
            .iter()
            .map(|e| (e.input, e.message.as_str()))
            .collect()
    }

    fn sample() -> wit::Batch {
        BatchBuilder::default()
            .event(Some("k0"), "zero", &[], 0)
            .event(None, "one", &[("h", "1"), ("x", "y")], 1)
            .event(Some(""), "two", &[], 2)
            .build()
    }

    #[test]
    fn decode_builds_owned_events() {
        let batch = sample();
        let mut decoder = Decoder::new(&batch);
        let events: Vec<Event> = batch
            .events
            .iter()
            .map(|raw| decoder.event(raw).unwrap())
            .collect();
        assert_eq!(events[0].key(), Some(&b"k0"[..]));
        assert_eq!(events[0].value(), b"zero");
        assert_eq!(events[0].headers.capacity(), 0);
        assert_eq!(events[0].position().stream(), "topic-a");
        assert_eq!(events[1].position().stream(), "topic-b");
        assert_eq!(events[1].position().partition(), 3);
        assert_eq!(events[1].position().offset(), 1);
        assert_eq!(events[1].timestamp_ms(), 1001);
        assert_eq!(events[1].key(), None);
        assert_eq!(events[1].header_str("x"), Some("y"));
        assert_eq!(events[1].headers().len(), 2);
        assert_eq!(events[2].key(), Some(&b""[..]));
    }

    #[test]
    fn map_round_trips_everything() {
        let out = run_map(sample(), Ok);
        assert!(out.errors.is_empty());
        assert!(out.routes.is_empty());
        assert_eq!(
            read(&out),
            vec![
                Out {
                    input: 0,
                    route: None,
                    key: Some("k0".into()),
                    value: "zero".into(),
                    timestamp_ms: 1000,
                    headers: vec![],
                },
                Out {
                    input: 1,
                    route: None,
                    key: None,
                    value: "one".into(),
                    timestamp_ms: 1001,
                    headers: vec![("h".into(), "1".into()), ("x".into(), "y".into())],
                },
                Out {
                    input: 2,
                    route: None,
                    key: Some("".into()),
                    value: "two".into(),
                    timestamp_ms: 1002,
                    headers: vec![],
                },
            ]
        );
    }

    #[test]
    fn map_errors_and_new_events() {
        let out = run_map(sample(), |ev| {
            if ev.value() == b"one" {
                crate::bail!("poison at {}", ev.position().offset());
            }
            let mut new = Event::new(ev.value().to_ascii_uppercase()).with_header("n", "v");
            if ev.value() == b"two" {
                new.set_timestamp_ms(7);
            }
            Ok(new)
        });
        assert_eq!(errors(&out), vec![(1, "poison at 1")]);
        let outs = read(&out);
        assert_eq!(outs.len(), 2);
        assert_eq!((outs[0].input, outs[0].value.as_str()), (0, "ZERO"));
        assert_eq!(outs[0].key, None);
        assert_eq!(outs[0].timestamp_ms, 1000, "inherits the input's timestamp");
        assert_eq!(outs[0].headers, vec![("n".into(), "v".into())]);
        assert_eq!((outs[1].input, outs[1].timestamp_ms), (2, 7));
    }

    #[test]
    fn filter_keeps_and_drops() {
        let out = run_filter(sample(), |ev| match ev.value() {
            b"zero" => Ok(true),
            b"one" => Ok(false),
            _ => Err(Error::msg("nope")),
        });
        assert_eq!(errors(&out), vec![(2, "nope")]);
        let outs = read(&out);
        assert_eq!(outs.len(), 1);
        assert_eq!((outs[0].input, outs[0].key.as_deref()), (0, Some("k0")));
    }

    #[test]
    fn flat_map_routes_are_interned() {
        let out = run_flat_map(sample(), |ev| {
            let mut outputs = vec![Output::new(ev.clone())];
            if ev.value() != b"zero" {
                outputs.push(Output::to("alerts", ev.clone()));
                outputs.push(Output::to(String::from("audit"), ev.clone()));
            }
            if ev.value() == b"two" {
                outputs.push(Output::to("alerts", ev));
            }
            Ok(outputs)
        });
        assert_eq!(out.routes, vec!["alerts".to_owned(), "audit".to_owned()]);
        let outs = read(&out);
        let summary: Vec<(u32, Option<&str>)> =
            outs.iter().map(|o| (o.input, o.route.as_deref())).collect();
        assert_eq!(
            summary,
            vec![
                (0, None),
                (1, None),
                (1, Some("alerts")),
                (1, Some("audit")),
                (2, None),
                (2, Some("alerts")),
                (2, Some("audit")),
                (2, Some("alerts")),
            ]
        );
        assert_eq!(outs[3].headers.len(), 2);
    }

    #[test]
    fn flat_map_can_drop_everything() {
        let out = run_flat_map(sample(), |_| Ok(Vec::new()));
        assert!(out.events.is_empty() && out.errors.is_empty() && out.data.is_empty());
    }

    #[test]
    fn batch_results_align_with_inputs() {
        let out = run_batch(sample(), |events| {
            let n = events.len();
            events
                .into_iter()
                .map(|ev| {
                    if ev.value() == b"one" {
                        Err(Error::msg("bad"))
                    } else {
                        Ok(vec![Output::new(ev.with_header("n", n.to_string()))])
                    }
                })
                .collect()
        });
        assert_eq!(errors(&out), vec![(1, "bad")]);
        let outs = read(&out);
        assert_eq!(outs.len(), 2);
        assert_eq!((outs[0].input, outs[1].input), (0, 2));
        assert_eq!(outs[1].headers, vec![("n".into(), "3".into())]);
    }

    #[test]
    fn batch_length_mismatch_fails_every_event() {
        let out = run_batch(sample(), |mut events| {
            events.pop();
            events.into_iter().map(|ev| Ok(vec![ev.into()])).collect()
        });
        assert!(out.events.is_empty());
        let errs = errors(&out);
        assert_eq!(errs.len(), 3);
        assert!(
            errs[2]
                .1
                .starts_with("the batch function returned 2 results for 3 events")
        );
    }

    #[test]
    fn malformed_spans_fail_only_their_event() {
        let mut batch = sample();
        batch.events[1].value.len = 10_000;
        batch.events[2].headers = wit::Span { offset: 99, len: 1 };
        let out = run_map(batch, Ok);
        let errs = errors(&out);
        assert_eq!(errs.len(), 2);
        assert!(errs[0].1.starts_with("malformed input batch: data span"));
        assert!(errs[1].1.starts_with("malformed input batch: header range"));
        assert_eq!(read(&out).len(), 1);
    }

    #[test]
    fn unknown_stream_index_is_empty_name() {
        let mut batch = sample();
        batch.events[0].position.stream = 42;
        let mut decoder = Decoder::new(&batch);
        let ev = decoder.event(&batch.events[0]).unwrap();
        assert_eq!(ev.position().stream(), "");
        assert_eq!(ev.position().offset(), 0);
    }

    #[test]
    fn buffers_are_recycled_without_leaking_content() {
        let batch = BatchBuilder::default()
            .event(Some("a-long-key"), "a long first value", &[], 0)
            .event(None, "v2", &[], 1)
            .event(Some("k"), "", &[], 2)
            .build();
        let mut decoder = Decoder::new(&batch);
        let first = decoder.event(&batch.events[0]).unwrap();
        let value_ptr = first.value.as_ptr();
        decoder.recycle(first);
        assert_eq!(decoder.pool.len(), 2);
        let second = decoder.event(&batch.events[1]).unwrap();
        assert_eq!(second.value(), b"v2");
        assert_eq!(second.key(), None);
        assert_eq!(
            second.value.as_ptr(),
            value_ptr,
            "reused the key's or value's buffer"
        );
        decoder.recycle(second);
        let third = decoder.event(&batch.events[2]).unwrap();
        assert_eq!((third.key(), third.value()), (Some(&b"k"[..]), &b""[..]));
        let out = run_map(batch.clone(), |ev| Ok(ev.with_header("h", "v")));
        assert_eq!(read(&out).len(), 3);
        assert_eq!(read(&out)[1].value, "v2");
        assert_eq!(read(&out)[2].key.as_deref(), Some("k"));
    }

    #[test]
    fn fail_all_fails_everything() {
        let out = fail_all(sample(), "not initialized");
        assert_eq!(
            errors(&out),
            vec![
                (0, "not initialized"),
                (1, "not initialized"),
                (2, "not initialized")
            ]
        );
    }

    #[test]
    fn output_data_is_reserved_up_front() {
        let batch = sample();
        let size = batch.data.len();
        let out = run_map(batch, Ok);
        assert!(out.data.capacity() >= size);
        assert_eq!(out.data.len(), size, "same events, same bytes");
    }

    #[test]
    fn non_utf8_header_names_are_lossy() {
        let mut b = BatchBuilder::default().event(None, "v", &[("ok", "1")], 0);
        let name = b.span(&[0xff, b'a']);
        let value = b.span(b"2");
        let mut batch = b.build();
        batch.headers[0].name = name;
        batch.headers[0].value = value;
        let out = run_map(batch, Ok);
        assert_eq!(
            read(&out)[0].headers,
            vec![("\u{fffd}a".into(), "2".into())]
        );
    }
}
