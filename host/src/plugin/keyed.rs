//! What a keyed call carries each way (contract 0.2.0): the state of the
//! batch's keys, the watermark and the fired timers in; outputs, state
//! writes and timer operations out. The store and the keyed stage that fill
//! and apply these live in the data path (`crate::state`, `crate::pipeline`).

use bytes::Bytes;

use super::codec::Output;

/// What a plugin says about itself in `init` (0.1.x plugins: not keyed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin keeps per-key state: call it with
    /// [`PluginInstance::process_keyed`](super::PluginInstance::process_keyed).
    pub keyed: bool,
}

/// "This event has no state key" in [`KeyedInput::event_key`].
pub const NO_KEY: u32 = u32::MAX;

/// The keyed part of one call, beside the batch's events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedInput {
    /// The distinct state keys of the batch (and of the fired timers).
    pub keys: Vec<Bytes>,
    /// Per event of the batch: its index into `keys`, or [`NO_KEY`].
    pub event_key: Vec<u32>,
    /// Per key: its stored value (`None`: no state yet).
    pub states: Vec<Option<Bytes>>,
    /// The stage's watermark (event time, ms), if any yet.
    pub watermark: Option<i64>,
    /// Timers that fired: (index into `keys`, the time it was set for).
    pub fired: Vec<(u32, i64)>,
}

/// A timer operation a keyed plugin returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOp {
    /// Set a timer for `key` at event time `at_ms`.
    Set { key: Bytes, at_ms: i64 },
    /// Cancel the timer of `key` at `at_ms`.
    Cancel { key: Bytes, at_ms: i64 },
}

/// The decoded result of a keyed call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedOutput {
    /// Outputs of the batch's events, as [`Processed::outputs`](super::Processed):
    /// `input` indexes the events, positions are the inputs'.
    pub outputs: Vec<Output>,
    /// (event index, message): events the plugin refused.
    pub errors: Vec<(u32, String)>,
    /// Outputs of fired timers: `input` indexes [`KeyedInput::fired`]; the
    /// position is unknown (stream `""`, partition -1, offset -1) — the
    /// stage gives them the provenance it wants.
    pub timer_outputs: Vec<Output>,
    /// (fired-timer index, message): timers whose handler failed.
    pub timer_errors: Vec<(u32, String)>,
    /// State writes in the order the plugin made them: `None` deletes. A
    /// key may appear more than once: the last write wins.
    pub writes: Vec<(Bytes, Option<Bytes>)>,
    /// Timer operations, in order.
    pub timers: Vec<TimerOp>,
}
