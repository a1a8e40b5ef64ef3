//! The input batch: [`InputWriter`] (host) and [`InputView`] (plugin).

use crate::dir::{self, Packer, Section, i64_at, opt_span, put_u32s, span, u32_at};
use crate::{FormatError, NONE, kind, stride};

/// One event to write into an input batch; its headers follow with
/// [`InputWriter::header`].
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// The key, if any (`None` and an empty key are different things).
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Event time, ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// Index of the event's stream (from [`InputWriter::stream`]).
    pub stream: u32,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Keyed stages: the index of the event's state key (from
    /// [`InputWriter::key_state`]); `None`: the event has no state key.
    pub state_key: Option<u32>,
}

/// Writes input batches (the host side). Reusable: [`InputWriter::clear`]
/// starts the next batch and keeps every buffer's capacity.
#[derive(Debug, Default)]
pub struct InputWriter {
    packer: Packer,
    events: Vec<u8>,
    headers: Vec<u8>,
    streams: Vec<u8>,
    keys: Vec<u8>,
    event_keys: Vec<u8>,
    fired: Vec<u8>,
    watermark: Option<i64>,
    keyed: bool,
    /// A push would have passed 4 GiB.
    overflow: bool,
}

/// Sections an input batch may carry (data, events, headers, streams, keys,
/// event-keys, watermark, fired).
const INPUT_SECTIONS: usize = 8;

impl InputWriter {
    /// An empty writer, ready for a batch.
    pub fn new() -> Self {
        let mut w = Self::default();
        w.clear();
        w
    }

    /// Starts a new batch.
    pub fn clear(&mut self) {
        self.packer.reset(INPUT_SECTIONS);
        self.events.clear();
        self.headers.clear();
        self.streams.clear();
        self.keys.clear();
        self.event_keys.clear();
        self.fired.clear();
        self.watermark = None;
        self.keyed = false;
        self.overflow = false;
    }

    /// Reserves room for about `events` events of `bytes` bytes in all.
    pub fn reserve(&mut self, events: usize, bytes: usize) {
        self.packer.buf.reserve(bytes);
        self.events.reserve(events * stride::EVENT);
    }

    fn push(&mut self, bytes: &[u8]) -> (u32, u32) {
        match self.packer.push(bytes) {
            Some(span) => span,
            None => {
                self.overflow = true;
                (0, 0)
            }
        }
    }

    /// Adds a stream name; returns its index (the caller reuses it for the
    /// stream's events).
    pub fn stream(&mut self, name: &str) -> u32 {
        let (offset, len) = self.push(name.as_bytes());
        put_u32s(&mut self.streams, &[offset, len]);
        (self.streams.len() / stride::SPAN - 1) as u32
    }

    /// Adds an event; returns its index in the batch.
    pub fn event(&mut self, e: &NewEvent<'_>) -> u32 {
        let (key_offset, key_len) = match e.key {
            Some(key) => self.push(key),
            None => (0, NONE),
        };
        let (value_offset, value_len) = self.push(e.value);
        let first_header = (self.headers.len() / stride::HEADER) as u32;
        put_u32s(
            &mut self.events,
            &[
                key_offset,
                key_len,
                value_offset,
                value_len,
                first_header,
                0,
                e.stream,
                e.partition as u32,
            ],
        );
        self.events.extend_from_slice(&e.timestamp_ms.to_le_bytes());
        self.events.extend_from_slice(&e.offset.to_le_bytes());
        let index = (self.events.len() / stride::EVENT - 1) as u32;
        if let Some(k) = e.state_key {
            self.keyed = true;
            // Events before the first keyed one have no state key.
            while self.event_keys.len() / stride::EVENT_KEY < index as usize {
                put_u32s(&mut self.event_keys, &[NONE]);
            }
            put_u32s(&mut self.event_keys, &[k]);
        } else if self.keyed {
            put_u32s(&mut self.event_keys, &[NONE]);
        }
        index
    }

    /// Adds a header to the last event added (none yet: ignored).
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        let Some(at) = self.events.len().checked_sub(stride::EVENT) else {
            return;
        };
        let (no, nl) = self.push(name);
        let (vo, vl) = self.push(value);
        put_u32s(&mut self.headers, &[no, nl, vo, vl]);
        let count_at = at + 20;
        if let Some(count) = self.events.get_mut(count_at..count_at + 4) {
            let n = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) + 1;
            count.copy_from_slice(&n.to_le_bytes());
        }
    }

    /// Marks the batch as a keyed call (even with no keys, e.g. a batch that
    /// only moves the watermark).
    pub fn keyed(&mut self) {
        if !self.keyed {
            self.keyed = true;
            let n = self.events.len() / stride::EVENT;
            for _ in 0..n {
                put_u32s(&mut self.event_keys, &[NONE]);
            }
        }
    }

    /// Adds a distinct state key of the batch with its stored value (`None`:
    /// no state yet); returns its index.
    pub fn key_state(&mut self, key: &[u8], state: Option<&[u8]>) -> u32 {
        self.keyed();
        let (ko, kl) = self.push(key);
        let (so, sl) = match state {
            Some(s) => self.push(s),
            None => (0, NONE),
        };
        put_u32s(&mut self.keys, &[ko, kl, so, sl]);
        (self.keys.len() / stride::KEY - 1) as u32
    }

    /// Sets the stage's watermark (event time, ms; `None`: none yet).
    pub fn watermark(&mut self, watermark: Option<i64>) {
        self.keyed();
        self.watermark = watermark;
    }

    /// Adds a timer that fired: the key's index and the time it was set for.
    pub fn fired_timer(&mut self, key: u32, at_ms: i64) {
        self.keyed();
        put_u32s(&mut self.fired, &[key, 0]);
        self.fired.extend_from_slice(&at_ms.to_le_bytes());
    }

    /// Events added so far.
    pub fn len(&self) -> usize {
        self.events.len() / stride::EVENT
    }

    /// No events added.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Finishes the batch: the buffer to hand to the plugin, or `None` if
    /// its data passed 4 GiB (spans are 32-bit). The writer keeps the
    /// buffer; the next [`InputWriter::clear`] reuses it.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.overflow {
            return None;
        }
        let watermark = self.watermark.map(i64::to_le_bytes);
        let wm: &[u8] = watermark.as_ref().map_or(&[], |w| &w[..]);
        let tables: [(u32, &[u8], usize); 7] = [
            (kind::EVENTS, &self.events, stride::EVENT),
            (kind::HEADERS, &self.headers, stride::HEADER),
            (kind::STREAMS, &self.streams, stride::SPAN),
            (kind::KEYS, &self.keys, stride::KEY),
            (kind::EVENT_KEYS, &self.event_keys, stride::EVENT_KEY),
            (kind::WATERMARK, wm, stride::WATERMARK),
            (kind::FIRED, &self.fired, stride::FIRED),
        ];
        let n = if self.keyed { 7 } else { 3 };
        self.packer.finish(&tables[..n]);
        Some(&self.packer.buf)
    }
}

/// The number of events an input buffer says it holds, read without
/// checking the rest (0 if even its directory is broken): how many errors a
/// plugin returns for a batch it cannot parse.
pub fn event_count(buf: &[u8]) -> usize {
    dir::directory(buf, [(kind::EVENTS, stride::EVENT)]).map_or(0, |([events], _)| events.len())
}

/// The headers of an event or an output: (name, value) pairs.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) table: Section<'a>,
    pub(crate) next: usize,
}

impl<'a> Headers<'a> {
    pub(crate) fn empty(data: &'a [u8]) -> Self {
        Self {
            data,
            table: Section::empty(stride::HEADER),
            next: 0,
        }
    }
}

/// Checks every header of `table` (the spans of name and value).
pub(crate) fn check_headers(data: &[u8], table: &Section<'_>) -> Result<(), FormatError> {
    for i in 0..table.len() {
        let ok = table.entry::<{ stride::HEADER }>(i).is_some_and(|h| {
            span(data, u32_at(h, 0), u32_at(h, 4)).is_some()
                && span(data, u32_at(h, 8), u32_at(h, 12)).is_some()
        });
        if !ok {
            return Err(FormatError::new(format!(
                "header {i} has a span outside the data section"
            )));
        }
    }
    Ok(())
}

impl<'a> Iterator for Headers<'a> {
    /// (name, value). Names are UTF-8 by contract; the reader checks.
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.table.len() {
            let h = self.table.entry::<{ stride::HEADER }>(self.next)?;
            self.next += 1;
            // Checked by `parse`.
            if let (Some(n), Some(v)) = (
                span(self.data, u32_at(h, 0), u32_at(h, 4)),
                span(self.data, u32_at(h, 8), u32_at(h, 12)),
            ) {
                return Some((n, v));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.table.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// One event of an input batch.
#[derive(Clone, Debug)]
pub struct InputEvent<'a> {
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Event time, ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// The headers.
    pub headers: Headers<'a>,
    /// Index into the stream names ([`InputView::stream`]).
    pub stream: u32,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Keyed batches: the index of the event's state key ([`InputView::key`]).
    pub state_key: Option<u32>,
}

/// A distinct state key of a keyed batch and its stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyState<'a> {
    /// The key's bytes.
    pub key: &'a [u8],
    /// The stored value (`None`: no state yet).
    pub state: Option<&'a [u8]>,
}

/// A timer that fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    /// Index of its key ([`InputView::key`]).
    pub key: u32,
    /// The time it was set for (event time, ms).
    pub at_ms: i64,
}

/// A checked, read-only view of an input batch (the plugin side).
#[derive(Clone, Debug)]
pub struct InputView<'a> {
    data: &'a [u8],
    events: Section<'a>,
    headers: Section<'a>,
    streams: Section<'a>,
    keys: Section<'a>,
    event_keys: Section<'a>,
    fired: Section<'a>,
    watermark: Option<i64>,
    keyed: bool,
}

impl<'a> InputView<'a> {
    /// Checks the whole buffer: directory, every span, range and index.
    pub fn parse(buf: &'a [u8]) -> Result<Self, FormatError> {
        let (
            [
                data,
                events,
                headers,
                streams,
                keys,
                event_keys,
                watermark,
                fired,
            ],
            seen,
        ) = dir::directory(
            buf,
            [
                (kind::DATA, 1),
                (kind::EVENTS, stride::EVENT),
                (kind::HEADERS, stride::HEADER),
                (kind::STREAMS, stride::SPAN),
                (kind::KEYS, stride::KEY),
                (kind::EVENT_KEYS, stride::EVENT_KEY),
                (kind::WATERMARK, stride::WATERMARK),
                (kind::FIRED, stride::FIRED),
            ],
        )?;
        let keyed = seen[4..].iter().any(|s| *s);
        let data = data.bytes;
        check_headers(data, &headers)?;
        for i in 0..streams.len() {
            let ok = streams.entry::<{ stride::SPAN }>(i).is_some_and(|s| {
                span(data, u32_at(s, 0), u32_at(s, 4))
                    .is_some_and(|name| std::str::from_utf8(name).is_ok())
            });
            if !ok {
                return Err(FormatError::new(format!(
                    "stream {i}: its name is outside the data section or not UTF-8"
                )));
            }
        }
        for i in 0..keys.len() {
            let ok = keys.entry::<{ stride::KEY }>(i).is_some_and(|k| {
                span(data, u32_at(k, 0), u32_at(k, 4)).is_some()
                    && opt_span(data, u32_at(k, 8), u32_at(k, 12)).is_some()
            });
            if !ok {
                return Err(FormatError::new(format!(
                    "key {i} has a span outside the data section"
                )));
            }
        }
        if keyed && event_keys.len() != events.len() {
            return Err(FormatError::new(format!(
                "{} event keys for {} events",
                event_keys.len(),
                events.len()
            )));
        }
        for i in 0..event_keys.len() {
            let k = event_keys
                .entry::<{ stride::EVENT_KEY }>(i)
                .map_or(0, |e| u32_at(e, 0));
            if k != NONE && k as usize >= keys.len() {
                return Err(FormatError::new(format!(
                    "event {i} names key {k} of {}",
                    keys.len()
                )));
            }
        }
        for i in 0..fired.len() {
            let k = fired
                .entry::<{ stride::FIRED }>(i)
                .map_or(NONE, |e| u32_at(e, 0));
            if k as usize >= keys.len() {
                return Err(FormatError::new(format!(
                    "fired timer {i} names key {k} of {}",
                    keys.len()
                )));
            }
        }
        let watermark = match watermark.len() {
            0 => None,
            1 => watermark
                .entry::<{ stride::WATERMARK }>(0)
                .map(|w| i64_at(w, 0)),
            n => return Err(FormatError::new(format!("{n} watermarks (at most 1)"))),
        };
        let view = Self {
            data,
            events,
            headers,
            streams,
            keys,
            event_keys,
            fired,
            watermark,
            keyed,
        };
        for i in 0..events.len() {
            view.check_event(i)?;
        }
        Ok(view)
    }

    fn check_event(&self, i: usize) -> Result<(), FormatError> {
        let bad = |what: &str| FormatError::new(format!("event {i}: {what}"));
        let e = self
            .events
            .entry::<{ stride::EVENT }>(i)
            .ok_or_else(|| bad("missing"))?;
        opt_span(self.data, u32_at(e, 0), u32_at(e, 4))
            .ok_or_else(|| bad("the key is outside the data section"))?;
        span(self.data, u32_at(e, 8), u32_at(e, 12))
            .ok_or_else(|| bad("the value is outside the data section"))?;
        self.headers
            .range(u32_at(e, 16), u32_at(e, 20))
            .ok_or_else(|| bad("its header range is outside the headers"))?;
        if u32_at(e, 24) as usize >= self.streams.len() {
            return Err(bad("its stream index is out of range"));
        }
        Ok(())
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// No events.
    pub fn is_empty(&self) -> bool {
        self.events.len() == 0
    }

    /// The total size of the data section (keys, values, headers...).
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Event `i`.
    pub fn event(&self, i: usize) -> Option<InputEvent<'a>> {
        let e = self.events.entry::<{ stride::EVENT }>(i)?;
        let state_key = match self.event_keys.entry::<{ stride::EVENT_KEY }>(i) {
            Some(k) if u32_at(k, 0) != NONE => Some(u32_at(k, 0)),
            _ => None,
        };
        Some(InputEvent {
            key: opt_span(self.data, u32_at(e, 0), u32_at(e, 4))?,
            value: span(self.data, u32_at(e, 8), u32_at(e, 12))?,
            timestamp_ms: i64_at(e, 32),
            headers: Headers {
                data: self.data,
                table: self.headers.range(u32_at(e, 16), u32_at(e, 20))?,
                next: 0,
            },
            stream: u32_at(e, 24),
            partition: u32_at(e, 28) as i32,
            offset: i64_at(e, 40),
            state_key,
        })
    }

    /// The events, in batch order.
    pub fn events(&self) -> impl ExactSizeIterator<Item = InputEvent<'a>> + '_ {
        (0..self.len()).map(|i| {
            self.event(i).unwrap_or(InputEvent {
                key: None,
                value: &[],
                timestamp_ms: 0,
                headers: Headers::empty(self.data),
                stream: 0,
                partition: 0,
                offset: 0,
                state_key: None,
            })
        })
    }

    /// The number of stream names.
    pub fn streams_len(&self) -> usize {
        self.streams.len()
    }

    /// Stream name `i` (`""` if out of range).
    pub fn stream(&self, i: u32) -> &'a str {
        self.streams
            .entry::<{ stride::SPAN }>(i as usize)
            .and_then(|s| span(self.data, u32_at(s, 0), u32_at(s, 4)))
            .and_then(|name| std::str::from_utf8(name).ok())
            .unwrap_or("")
    }

    /// A keyed call (the batch carries keyed sections).
    pub fn is_keyed(&self) -> bool {
        self.keyed
    }

    /// The number of distinct state keys.
    pub fn keys_len(&self) -> usize {
        self.keys.len()
    }

    /// State key `i` and its stored value.
    pub fn key(&self, i: u32) -> Option<KeyState<'a>> {
        let k = self.keys.entry::<{ stride::KEY }>(i as usize)?;
        Some(KeyState {
            key: span(self.data, u32_at(k, 0), u32_at(k, 4))?,
            state: opt_span(self.data, u32_at(k, 8), u32_at(k, 12))?,
        })
    }

    /// The distinct state keys, in index order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = KeyState<'a>> + '_ {
        (0..self.keys.len() as u32).map(|i| {
            self.key(i).unwrap_or(KeyState {
                key: &[],
                state: None,
            })
        })
    }

    /// The stage's watermark (`None`: none yet).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The timers that fired, in order.
    pub fn fired(&self) -> impl ExactSizeIterator<Item = FiredTimer> + '_ {
        (0..self.fired.len()).map(|i| {
            self.fired
                .entry::<{ stride::FIRED }>(i)
                .map_or(FiredTimer { key: 0, at_ms: 0 }, |f| FiredTimer {
                    key: u32_at(f, 0),
                    at_ms: i64_at(f, 8),
                })
        })
    }
}
