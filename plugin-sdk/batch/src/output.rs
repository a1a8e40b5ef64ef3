//! The output batch: [`OutputWriter`] (plugin) and [`OutputView`] (host).

use crate::dir::{self, Packer, Section, i64_at, opt_span, put_u32s, span, u32_at};
use crate::input::{Headers, check_headers};
use crate::{FormatError, NONE, kind, stride};

/// Writes a plugin's output batch (the plugin side).
#[derive(Debug)]
pub struct OutputWriter {
    packer: Packer,
    outputs: Vec<u8>,
    headers: Vec<u8>,
    routes: Vec<u8>,
    errors: Vec<u8>,
    writes: Vec<u8>,
    timers: Vec<u8>,
}

/// Sections an output batch may carry (data, outputs, headers, routes,
/// errors, writes, timers).
const OUTPUT_SECTIONS: usize = 7;

impl Default for OutputWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// An output could not be written: the data section would pass 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge;

impl OutputWriter {
    /// An empty output batch.
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// An empty output batch with room for about `events` outputs of
    /// `bytes` bytes in all.
    pub fn with_capacity(events: usize, bytes: usize) -> Self {
        let mut packer = Packer::default();
        packer.buf.reserve(bytes + 128);
        packer.reset(OUTPUT_SECTIONS);
        Self {
            packer,
            outputs: Vec::with_capacity(events * stride::OUTPUT),
            headers: Vec::new(),
            routes: Vec::new(),
            errors: Vec::new(),
            writes: Vec::new(),
            timers: Vec::new(),
        }
    }

    fn route_index(&mut self, route: &str) -> Option<u32> {
        let data = self.packer.data();
        let found = self.routes.chunks_exact(stride::SPAN).position(|r| {
            let (o, l) = (
                u32::from_le_bytes([r[0], r[1], r[2], r[3]]),
                u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
            );
            span(data, o, l) == Some(route.as_bytes())
        });
        match found {
            Some(i) => u32::try_from(i).ok(),
            None => {
                let (o, l) = self.packer.push(route.as_bytes())?;
                put_u32s(&mut self.routes, &[o, l]);
                u32::try_from(self.routes.len() / stride::SPAN - 1).ok()
            }
        }
    }

    /// Adds an output of input event `input`, to the default output
    /// (`route` `None`) or a named one. Headers follow with
    /// [`OutputWriter::header`]. `Err`: nothing was added (the batch's bytes
    /// would pass 4 GiB).
    pub fn event(
        &mut self,
        input: u32,
        route: Option<&str>,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp_ms: i64,
    ) -> Result<(), TooLarge> {
        let mark = self.packer.buf.len();
        let written = (|| {
            let route = match route {
                Some(r) => self.route_index(r)?,
                None => NONE,
            };
            let (ko, kl) = match key {
                Some(k) => self.packer.push(k)?,
                None => (0, NONE),
            };
            let (vo, vl) = self.packer.push(value)?;
            let first = u32::try_from(self.headers.len() / stride::HEADER).ok()?;
            Some([input, route, ko, kl, vo, vl, first, 0])
        })();
        match written {
            Some(words) => {
                put_u32s(&mut self.outputs, &words);
                self.outputs.extend_from_slice(&timestamp_ms.to_le_bytes());
                Ok(())
            }
            None => {
                self.packer.buf.truncate(mark);
                Err(TooLarge)
            }
        }
    }

    /// Adds a header to the last output added (none yet: ignored).
    pub fn header(&mut self, name: &str, value: &[u8]) -> Result<(), TooLarge> {
        let Some(at) = self.outputs.len().checked_sub(stride::OUTPUT) else {
            return Ok(());
        };
        let mark = self.packer.buf.len();
        let (Some((no, nl)), Some((vo, vl))) =
            (self.packer.push(name.as_bytes()), self.packer.push(value))
        else {
            self.packer.buf.truncate(mark);
            return Err(TooLarge);
        };
        put_u32s(&mut self.headers, &[no, nl, vo, vl]);
        if let Some(count) = self.outputs.get_mut(at + 28..at + 32) {
            let n = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) + 1;
            count.copy_from_slice(&n.to_le_bytes());
        }
        Ok(())
    }

    /// Removes the outputs of the last `n` calls of [`OutputWriter::event`]
    /// from the tables (their bytes stay in the data section). For a
    /// function whose later output failed: its input becomes an error.
    pub fn drop_last_outputs(&mut self, n: usize) {
        let keep = (self.outputs.len() / stride::OUTPUT).saturating_sub(n);
        let first_header = self
            .outputs
            .get(keep * stride::OUTPUT + 24..keep * stride::OUTPUT + 28)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize);
        self.outputs.truncate(keep * stride::OUTPUT);
        if let Some(first) = first_header {
            self.headers.truncate(first * stride::HEADER);
        }
    }

    /// The number of outputs added.
    pub fn outputs_len(&self) -> usize {
        self.outputs.len() / stride::OUTPUT
    }

    /// Input event `input` failed: the host sends it to the dead-letter
    /// output with `message` as the reason.
    pub fn error(&mut self, input: u32, message: &str) {
        // A message that does not fit is cut to what does (or to nothing).
        let room = (u32::MAX as usize).saturating_sub(self.packer.data_len());
        let mut cut = message.len().min(room);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let (o, l) = self
            .packer
            .push(&message.as_bytes()[..cut])
            .unwrap_or((0, 0));
        put_u32s(&mut self.errors, &[input, o, l]);
    }

    /// Keyed plugins: stores `value` as the state of `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), TooLarge> {
        self.write(key, Some(value))
    }

    /// Keyed plugins: deletes the state of `key`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), TooLarge> {
        self.write(key, None)
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), TooLarge> {
        let mark = self.packer.buf.len();
        let words = (|| {
            let (ko, kl) = self.packer.push(key)?;
            let (vo, vl) = match value {
                Some(v) => self.packer.push(v)?,
                None => (0, NONE),
            };
            Some([ko, kl, vo, vl])
        })();
        match words {
            Some(words) => {
                put_u32s(&mut self.writes, &words);
                Ok(())
            }
            None => {
                self.packer.buf.truncate(mark);
                Err(TooLarge)
            }
        }
    }

    /// Keyed plugins: a timer for `key` at event time `at_ms` (fires when the
    /// watermark passes it).
    pub fn set_timer(&mut self, key: &[u8], at_ms: i64) -> Result<(), TooLarge> {
        self.timer(key, 0, at_ms)
    }

    /// Keyed plugins: cancels the timer of `key` at `at_ms`.
    pub fn cancel_timer(&mut self, key: &[u8], at_ms: i64) -> Result<(), TooLarge> {
        self.timer(key, 1, at_ms)
    }

    fn timer(&mut self, key: &[u8], op: u32, at_ms: i64) -> Result<(), TooLarge> {
        let (ko, kl) = self.packer.push(key).ok_or(TooLarge)?;
        put_u32s(&mut self.timers, &[ko, kl, op, 0]);
        self.timers.extend_from_slice(&at_ms.to_le_bytes());
        Ok(())
    }

    /// The finished buffer.
    pub fn finish(mut self) -> Vec<u8> {
        let tables: [(u32, &[u8], usize); 6] = [
            (kind::OUTPUTS, &self.outputs, stride::OUTPUT),
            (kind::HEADERS, &self.headers, stride::HEADER),
            (kind::ROUTES, &self.routes, stride::SPAN),
            (kind::ERRORS, &self.errors, stride::ERROR),
            (kind::WRITES, &self.writes, stride::WRITE),
            (kind::TIMERS, &self.timers, stride::TIMER),
        ];
        let n = if self.writes.is_empty() && self.timers.is_empty() {
            4
        } else {
            6
        };
        self.packer.finish(&tables[..n]);
        self.packer.buf
    }
}

/// What the host checks an output batch against.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The number of events of the input batch (every `input` index must be
    /// below it).
    pub inputs: usize,
    /// The largest buffer accepted, in bytes.
    pub max_bytes: usize,
    /// State writes and timer operations are allowed (a keyed call).
    pub keyed: bool,
}

/// One output event.
#[derive(Clone, Debug)]
pub struct OutputEvent<'a> {
    /// Index of the input event it derives from.
    pub input: u32,
    /// `None`: the default output; else an index into the routes
    /// ([`OutputView::route`]).
    pub route: Option<u32>,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Event time, ms.
    pub timestamp_ms: i64,
    /// The headers (names are bytes: the host checks UTF-8).
    pub headers: Headers<'a>,
}

/// An input event the plugin refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventError<'a> {
    /// Index of the input event.
    pub input: u32,
    /// The reason, UTF-8 by contract (read it lossily).
    pub message: &'a [u8],
}

/// A state write of a keyed plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateWrite<'a> {
    /// The key.
    pub key: &'a [u8],
    /// `Some`: the new value; `None`: delete.
    pub value: Option<&'a [u8]>,
}

/// Set or cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerOpKind {
    /// Set a timer.
    Set,
    /// Cancel a timer.
    Cancel,
}

/// A timer operation of a keyed plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerOp<'a> {
    /// Set or cancel.
    pub kind: TimerOpKind,
    /// The key.
    pub key: &'a [u8],
    /// Event time, ms.
    pub at_ms: i64,
}

/// A checked, read-only view of an output batch (the host side).
#[derive(Clone, Debug)]
pub struct OutputView<'a> {
    data: &'a [u8],
    outputs: Section<'a>,
    headers: Section<'a>,
    routes: Section<'a>,
    errors: Section<'a>,
    writes: Section<'a>,
    timers: Section<'a>,
}

impl<'a> OutputView<'a> {
    /// Checks the whole buffer against `limits`: its size, the directory,
    /// every span, range and index, route names (UTF-8) and timer ops.
    /// Allocates nothing.
    pub fn parse(buf: &'a [u8], limits: &Limits) -> Result<Self, FormatError> {
        if buf.len() > limits.max_bytes {
            return Err(FormatError::new(format!(
                "an output of {} bytes is over the {}-byte limit",
                buf.len(),
                limits.max_bytes
            )));
        }
        let ([data, outputs, headers, routes, errors, writes, timers], _) = dir::directory(
            buf,
            [
                (kind::DATA, 1),
                (kind::OUTPUTS, stride::OUTPUT),
                (kind::HEADERS, stride::HEADER),
                (kind::ROUTES, stride::SPAN),
                (kind::ERRORS, stride::ERROR),
                (kind::WRITES, stride::WRITE),
                (kind::TIMERS, stride::TIMER),
            ],
        )?;
        let data = data.bytes;
        let view = Self {
            data,
            outputs,
            headers,
            routes,
            errors,
            writes,
            timers,
        };
        check_headers(data, &headers)?;
        for i in 0..routes.len() {
            let ok = routes.entry::<{ stride::SPAN }>(i).is_some_and(|r| {
                span(data, u32_at(r, 0), u32_at(r, 4))
                    .is_some_and(|name| std::str::from_utf8(name).is_ok())
            });
            if !ok {
                return Err(FormatError::new(format!(
                    "route {i}: its name is outside the data section or not UTF-8"
                )));
            }
        }
        let input = |what: &str, i: usize, input: u32| {
            if (input as usize) < limits.inputs {
                Ok(())
            } else {
                Err(FormatError::new(format!(
                    "{what} {i} refers to input {input} of a {}-event batch",
                    limits.inputs
                )))
            }
        };
        for i in 0..outputs.len() {
            let bad = |what: &str| FormatError::new(format!("output {i}: {what}"));
            let o = outputs
                .entry::<{ stride::OUTPUT }>(i)
                .ok_or_else(|| bad("missing"))?;
            input("output", i, u32_at(o, 0))?;
            let route = u32_at(o, 4);
            if route != NONE && route as usize >= routes.len() {
                return Err(bad(&format!(
                    "route index {route} of {} routes",
                    routes.len()
                )));
            }
            opt_span(data, u32_at(o, 8), u32_at(o, 12))
                .ok_or_else(|| bad("the key is outside the data section"))?;
            span(data, u32_at(o, 16), u32_at(o, 20))
                .ok_or_else(|| bad("the value is outside the data section"))?;
            headers.range(u32_at(o, 24), u32_at(o, 28)).ok_or_else(|| {
                bad(&format!(
                    "header range {}+{} is outside the {}-entry headers",
                    u32_at(o, 24),
                    u32_at(o, 28),
                    headers.len()
                ))
            })?;
        }
        for i in 0..errors.len() {
            let e = errors
                .entry::<{ stride::ERROR }>(i)
                .ok_or_else(|| FormatError::new(format!("error {i}: missing")))?;
            input("error", i, u32_at(e, 0))?;
            span(data, u32_at(e, 4), u32_at(e, 8)).ok_or_else(|| {
                FormatError::new(format!(
                    "error {i}: the message is outside the data section"
                ))
            })?;
        }
        if !limits.keyed && (writes.len() > 0 || timers.len() > 0) {
            return Err(FormatError::new(
                "state writes or timers from a plugin called without state",
            ));
        }
        for i in 0..writes.len() {
            let ok = writes.entry::<{ stride::WRITE }>(i).is_some_and(|w| {
                span(data, u32_at(w, 0), u32_at(w, 4)).is_some()
                    && opt_span(data, u32_at(w, 8), u32_at(w, 12)).is_some()
            });
            if !ok {
                return Err(FormatError::new(format!(
                    "state write {i} has a span outside the data section"
                )));
            }
        }
        for i in 0..timers.len() {
            let t = timers
                .entry::<{ stride::TIMER }>(i)
                .ok_or_else(|| FormatError::new(format!("timer {i}: missing")))?;
            span(data, u32_at(t, 0), u32_at(t, 4)).ok_or_else(|| {
                FormatError::new(format!("timer {i}: the key is outside the data section"))
            })?;
            if u32_at(t, 8) > 1 {
                return Err(FormatError::new(format!(
                    "timer {i}: unknown operation {}",
                    u32_at(t, 8)
                )));
            }
        }
        Ok(view)
    }

    /// The data section (every slice the view returns lies in it).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The number of outputs.
    pub fn outputs_len(&self) -> usize {
        self.outputs.len()
    }

    /// Output `i`.
    pub fn output(&self, i: usize) -> Option<OutputEvent<'a>> {
        let o = self.outputs.entry::<{ stride::OUTPUT }>(i)?;
        let route = u32_at(o, 4);
        Some(OutputEvent {
            input: u32_at(o, 0),
            route: (route != NONE).then_some(route),
            key: opt_span(self.data, u32_at(o, 8), u32_at(o, 12))?,
            value: span(self.data, u32_at(o, 16), u32_at(o, 20))?,
            timestamp_ms: i64_at(o, 32),
            headers: Headers {
                data: self.data,
                table: self.headers.range(u32_at(o, 24), u32_at(o, 28))?,
                next: 0,
            },
        })
    }

    /// The outputs, in emission order.
    pub fn outputs(&self) -> impl ExactSizeIterator<Item = OutputEvent<'a>> + '_ {
        (0..self.outputs.len()).map(|i| {
            // Every output was checked by `parse`.
            self.output(i).unwrap_or(OutputEvent {
                input: 0,
                route: None,
                key: None,
                value: &[],
                timestamp_ms: 0,
                headers: Headers::empty(self.data),
            })
        })
    }

    /// The number of route names.
    pub fn routes_len(&self) -> usize {
        self.routes.len()
    }

    /// Route name `i` (`""` if out of range).
    pub fn route(&self, i: u32) -> &'a str {
        self.routes
            .entry::<{ stride::SPAN }>(i as usize)
            .and_then(|r| span(self.data, u32_at(r, 0), u32_at(r, 4)))
            .and_then(|name| std::str::from_utf8(name).ok())
            .unwrap_or("")
    }

    /// The per-event errors.
    pub fn errors(&self) -> impl ExactSizeIterator<Item = EventError<'a>> + '_ {
        (0..self.errors.len()).map(|i| {
            let e = self.errors.entry::<{ stride::ERROR }>(i);
            EventError {
                input: e.map_or(0, |e| u32_at(e, 0)),
                message: e
                    .and_then(|e| span(self.data, u32_at(e, 4), u32_at(e, 8)))
                    .unwrap_or(&[]),
            }
        })
    }

    /// The state writes, in order.
    pub fn writes(&self) -> impl ExactSizeIterator<Item = StateWrite<'a>> + '_ {
        (0..self.writes.len()).map(|i| {
            let w = self.writes.entry::<{ stride::WRITE }>(i);
            StateWrite {
                key: w
                    .and_then(|w| span(self.data, u32_at(w, 0), u32_at(w, 4)))
                    .unwrap_or(&[]),
                value: w
                    .and_then(|w| opt_span(self.data, u32_at(w, 8), u32_at(w, 12)))
                    .flatten(),
            }
        })
    }

    /// The timer operations, in order.
    pub fn timers(&self) -> impl ExactSizeIterator<Item = TimerOp<'a>> + '_ {
        (0..self.timers.len()).map(|i| {
            let t = self.timers.entry::<{ stride::TIMER }>(i);
            TimerOp {
                kind: if t.is_some_and(|t| u32_at(t, 8) == 1) {
                    TimerOpKind::Cancel
                } else {
                    TimerOpKind::Set
                },
                key: t
                    .and_then(|t| span(self.data, u32_at(t, 0), u32_at(t, 4)))
                    .unwrap_or(&[]),
                at_ms: t.map_or(0, |t| i64_at(t, 16)),
            }
        })
    }
}
