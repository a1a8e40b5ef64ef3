//! # weir-batch: the packed batch of `weir:plugin@0.2.0`
//!
//! A batch crosses the host/plugin boundary as ONE `list<u8>` each way: a
//! header, a section directory, fixed-stride little-endian tables and the
//! bytes they point into. This crate is the whole format, for both sides and
//! without dependencies (it builds for the host and for `wasm32-wasip2`):
//!
//! - the host writes an input batch with [`InputWriter`] and reads a plugin's
//!   answer with [`OutputView::parse`], which faces a hostile guest: every
//!   length, offset and index is checked with overflow-free arithmetic before
//!   anything is used, nothing panics, and no allocation is sized from a count
//!   in the buffer;
//! - a plugin (the SDK) reads the input with [`InputView::parse`] and writes
//!   its answer with [`OutputWriter`].
//!
//! The format is specified byte by byte in `wit/README.md` ("The packed
//! batch"); the constants below are its section kinds and entry sizes.
//!
//! Both views check the whole buffer in `parse`; their accessors and
//! iterators are then infallible.

#![deny(missing_docs)]

mod dir;
mod input;
mod output;

pub use input::{
    FiredTimer, Headers, InputEvent, InputView, InputWriter, KeyState, NewEvent, event_count,
};
pub use output::{
    EventError, Limits, OutputEvent, OutputView, OutputWriter, StateWrite, TimerOp, TimerOpKind,
    TooLarge,
};

/// The format number in the first word of every buffer.
pub const FORMAT: u32 = 1;

/// "Absent" in a length or an index field.
pub const NONE: u32 = u32::MAX;

/// Section kinds (the `kind` word of a directory entry).
pub mod kind {
    /// The bytes every span points into (stride 1, count = length).
    pub const DATA: u32 = 1;
    /// Input events (in).
    pub const EVENTS: u32 = 2;
    /// Headers of events or outputs (in, out).
    pub const HEADERS: u32 = 3;
    /// Stream names (in).
    pub const STREAMS: u32 = 4;
    /// Output events (out).
    pub const OUTPUTS: u32 = 5;
    /// Route names (out).
    pub const ROUTES: u32 = 6;
    /// Per-event errors (out).
    pub const ERRORS: u32 = 7;
    /// Keyed input: the distinct state keys of the batch and their values.
    pub const KEYS: u32 = 8;
    /// Keyed input: each event's index into `KEYS` (or none).
    pub const EVENT_KEYS: u32 = 9;
    /// Keyed input: the stage's watermark (0 or 1 entry).
    pub const WATERMARK: u32 = 10;
    /// Keyed input: the timers that fired.
    pub const FIRED: u32 = 11;
    /// Keyed output: state writes (put or delete).
    pub const WRITES: u32 = 12;
    /// Keyed output: timers to set or cancel.
    pub const TIMERS: u32 = 13;
}

/// The least entry size (stride) of each section kind, in bytes.
pub mod stride {
    /// `events`: see `wit/README.md`.
    pub const EVENT: usize = 48;
    /// `headers`: name span, value span.
    pub const HEADER: usize = 16;
    /// `streams`, `routes`: a name span.
    pub const SPAN: usize = 8;
    /// `outputs`.
    pub const OUTPUT: usize = 40;
    /// `errors`: input, message span.
    pub const ERROR: usize = 12;
    /// `keys`: key span, state span (length none: no state).
    pub const KEY: usize = 16;
    /// `event-keys`: a key index.
    pub const EVENT_KEY: usize = 4;
    /// `watermark`: an `s64`.
    pub const WATERMARK: usize = 8;
    /// `fired`: key index, reserved, at-ms.
    pub const FIRED: usize = 16;
    /// `writes`: key span, value span (length none: delete).
    pub const WRITE: usize = 16;
    /// `timers`: key span, op, reserved, at-ms.
    pub const TIMER: usize = 24;
}

/// A buffer that breaks the format, with what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl FormatError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

#[cfg(test)]
mod tests;
