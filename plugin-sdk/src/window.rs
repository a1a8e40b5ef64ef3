//! Event-time windows built on keyed state and timers: tumbling, hopping,
//! sliding and session windows with an allowed lateness.
//!
//! Each key's open windows (and their accumulators) are the key's
//! [`State`]; each window sets a timer at `end + allowed_lateness`, and when
//! the watermark passes it the window's result is emitted
//! ([`Aggregate::emit`]) and the window is dropped. An event whose windows
//! are all closed already is **late**: it goes to the `late` route with the
//! header `weir.late` (the reason), or, with `late = ""`, fails with
//! `late event: ...` (a dead letter with the reason). Never silently dropped;
//! a pipeline without a `late` output sends such events to the dead letters
//! too (unknown route).
//!
//! Use it through `#[weir_sdk::window(...)]` on the accumulator type, or
//! call [`on_event`] and [`on_timer`] from your own `#[weir_sdk::keyed]` and
//! `#[weir_sdk::on_timer]` functions.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Output};
use crate::keyed::{Context, State};
use crate::{Error, Result};

/// A window: event times `start_ms <= t < end_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First event time in the window (ms).
    pub start_ms: i64,
    /// First event time after the window (ms).
    pub end_ms: i64,
}

/// How events are assigned to windows (all sizes in ms, positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows `[n·size, (n+1)·size)`.
    Tumbling {
        /// The window length.
        size_ms: i64,
    },
    /// Fixed windows of `size` starting every `hop` (an event is in
    /// `size / hop` windows).
    Hopping {
        /// The window length.
        size_ms: i64,
        /// The distance between window starts.
        hop_ms: i64,
    },
    /// One window per event, ending at it: `(t - size, t]`, i.e. the
    /// `size` of event time before and including each event (Kafka
    /// Streams' sliding windows). Needs [`Aggregate::merge`].
    Sliding {
        /// The window length.
        size_ms: i64,
    },
    /// Activity sessions: windows `[t, t + gap)` that merge when they
    /// overlap. Needs [`Aggregate::merge`].
    Session {
        /// The inactivity gap that closes a session.
        gap_ms: i64,
    },
}

/// A window definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// How events are assigned to windows.
    pub kind: WindowKind,
    /// How long after a window's end (in watermark time) its events are
    /// still counted; its result is emitted then.
    pub allowed_lateness_ms: i64,
    /// Where late events go: `Some(route)` (with the header `weir.late`),
    /// or `None`: they fail with `late event: ...` (dead letters).
    pub late_route: Option<&'static str>,
}

/// What a window computes, per key and window: an accumulator kept in the
/// key's state (as JSON).
pub trait Aggregate: Serialize + DeserializeOwned + Default {
    /// Adds an event to the accumulator.
    fn add(&mut self, ev: &Event) -> Result<()>;

    /// Adds another accumulator into this one (session merges, sliding
    /// windows). The default refuses: implement it for those kinds.
    fn merge(&mut self, other: &Self) -> Result<()> {
        let _ = other;
        Err(Error::msg(
            "this aggregate does not implement Aggregate::merge, which session and sliding windows need",
        ))
    }

    /// The result of a closed window. Its timestamp, unless set, is the
    /// window's end − 1 ms (the last event time in it).
    fn emit(&self, key: &[u8], window: Window) -> Result<Output>;
}

/// One open window and its accumulator.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pane<A> {
    /// The window.
    pub window: Window,
    /// Its accumulator.
    pub acc: A,
}

/// The state of one key: its open windows (and, for sliding windows, the
/// single-event accumulators they are merged from).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: DeserializeOwned", serialize = "A: Serialize"))]
pub struct WindowState<A> {
    /// Open windows, by start.
    #[serde(default)]
    pub panes: Vec<Pane<A>>,
    /// Sliding windows: (event time, accumulator of that one event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<(i64, A)>,
}

impl<A> Default for WindowState<A> {
    fn default() -> Self {
        Self {
            panes: Vec::new(),
            items: Vec::new(),
        }
    }
}

/// When a window's result is due (its timer).
fn due(spec: &WindowSpec, w: Window) -> i64 {
    w.end_ms.saturating_add(spec.allowed_lateness_ms)
}

/// The window is closed at watermark `wm` (its result was emitted, or is).
fn closed(spec: &WindowSpec, w: Window, wm: Option<i64>) -> bool {
    wm.is_some_and(|wm| due(spec, w) <= wm)
}

/// The windows of fixed kinds that contain `t`.
fn assign(kind: WindowKind, t: i64) -> Vec<Window> {
    match kind {
        WindowKind::Tumbling { size_ms } => {
            let start = t.div_euclid(size_ms) * size_ms;
            vec![Window {
                start_ms: start,
                end_ms: start + size_ms,
            }]
        }
        WindowKind::Hopping { size_ms, hop_ms } => {
            let mut out = Vec::new();
            let mut start = t.div_euclid(hop_ms) * hop_ms;
            while start > t - size_ms {
                out.push(Window {
                    start_ms: start,
                    end_ms: start + size_ms,
                });
                start -= hop_ms;
            }
            out.reverse();
            out
        }
        WindowKind::Sliding { size_ms } => vec![Window {
            start_ms: t - size_ms + 1,
            end_ms: t + 1,
        }],
        WindowKind::Session { gap_ms } => vec![Window {
            start_ms: t,
            end_ms: t + gap_ms,
        }],
    }
}

fn late<P>(spec: &WindowSpec, ev: Event, ctx: &Context<P>) -> Result<Vec<Output>> {
    let t = ev.timestamp_ms();
    let reason = format!(
        "late event: event time {t} ms is more than the allowed lateness ({} ms) behind its window's end; the watermark is {} ms",
        spec.allowed_lateness_ms,
        ctx.watermark()
            .map_or_else(|| "none".to_owned(), |w| w.to_string())
    );
    match spec.late_route {
        Some(route) => Ok(vec![Output::to(route, ev.with_header("weir.late", reason))]),
        None => Err(Error::msg(reason)),
    }
}

/// Adds an event to its key's windows (or routes it as late).
pub fn on_event<A: Aggregate, P>(
    spec: &WindowSpec,
    ev: Event,
    state: &mut State<WindowState<A>>,
    ctx: &mut Context<P>,
) -> Result<Vec<Output>> {
    let t = ev.timestamp_ms();
    let wm = ctx.watermark();
    if let WindowKind::Session { gap_ms } = spec.kind {
        return add_to_session(spec, gap_ms, ev, state, ctx);
    }
    let windows: Vec<Window> = assign(spec.kind, t)
        .into_iter()
        .filter(|w| !closed(spec, *w, wm))
        .collect();
    if windows.is_empty() {
        return late(spec, ev, ctx);
    }
    let st = state.get_mut();
    if let WindowKind::Sliding { .. } = spec.kind {
        let mut one = A::default();
        one.add(&ev)?;
        let at = st.items.partition_point(|(u, _)| *u <= t);
        st.items.insert(at, (t, one));
    }
    for w in windows {
        let at = st.panes.partition_point(|p| p.window.start_ms < w.start_ms);
        let pane = match st.panes.get_mut(at) {
            Some(p) if p.window == w => p,
            _ => {
                st.panes.insert(
                    at,
                    Pane {
                        window: w,
                        acc: A::default(),
                    },
                );
                ctx.set_timer(due(spec, w));
                &mut st.panes[at]
            }
        };
        if !matches!(spec.kind, WindowKind::Sliding { .. }) {
            pane.acc.add(&ev)?;
        }
    }
    Ok(Vec::new())
}

fn add_to_session<A: Aggregate, P>(
    spec: &WindowSpec,
    gap_ms: i64,
    ev: Event,
    state: &mut State<WindowState<A>>,
    ctx: &mut Context<P>,
) -> Result<Vec<Output>> {
    let t = ev.timestamp_ms();
    let wm = ctx.watermark();
    let mut window = Window {
        start_ms: t,
        end_ms: t.saturating_add(gap_ms),
    };
    let overlapping =
        |p: &Pane<A>| p.window.start_ms < window.end_ms && window.start_ms < p.window.end_ms;
    let open_overlap = state.get().is_some_and(|s| {
        s.panes
            .iter()
            .any(|p| overlapping(p) && !closed(spec, p.window, wm))
    });
    if !open_overlap && closed(spec, window, wm) {
        return late(spec, ev, ctx);
    }
    let st = state.get_mut();
    let mut acc = A::default();
    acc.add(&ev)?;
    // Merge every open session the new one overlaps (and so transitively).
    let mut i = 0;
    while i < st.panes.len() {
        let p = &st.panes[i];
        let touches = p.window.start_ms < window.end_ms && window.start_ms < p.window.end_ms;
        if touches && !closed(spec, p.window, wm) {
            let pane = st.panes.remove(i);
            acc.merge(&pane.acc)?;
            ctx.cancel_timer(due(spec, pane.window));
            window = Window {
                start_ms: window.start_ms.min(pane.window.start_ms),
                end_ms: window.end_ms.max(pane.window.end_ms),
            };
            i = 0; // the grown window may touch earlier ones
        } else {
            i += 1;
        }
    }
    let at = st
        .panes
        .partition_point(|p| p.window.start_ms < window.start_ms);
    st.panes.insert(at, Pane { window, acc });
    ctx.set_timer(due(spec, window));
    Ok(Vec::new())
}

/// Emits (and drops) every window of the key that is due at `at_ms`.
pub fn on_timer<A: Aggregate, P>(
    spec: &WindowSpec,
    key: &[u8],
    at_ms: i64,
    state: &mut State<WindowState<A>>,
    _ctx: &mut Context<P>,
) -> Result<Vec<Output>> {
    let Some(st) = state.get() else {
        return Ok(Vec::new());
    };
    if !st.panes.iter().any(|p| due(spec, p.window) <= at_ms) {
        return Ok(Vec::new());
    }
    let st = state.get_mut();
    let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut st.panes)
        .into_iter()
        .partition(|p| due(spec, p.window) <= at_ms);
    st.panes = open;
    let mut outputs = Vec::with_capacity(done.len());
    for pane in done {
        let acc = if let WindowKind::Sliding { .. } = spec.kind {
            let mut acc = A::default();
            for (t, one) in &st.items {
                if pane.window.start_ms <= *t && *t < pane.window.end_ms {
                    acc.merge(one)?;
                }
            }
            acc
        } else {
            pane.acc
        };
        let mut out = acc.emit(key, pane.window)?;
        if out.event.timestamp_ms.is_none() {
            out.event.timestamp_ms = Some(pane.window.end_ms - 1);
        }
        outputs.push(out);
    }
    if let WindowKind::Sliding { .. } = spec.kind {
        // Items no open window can still hold.
        match st.panes.iter().map(|p| p.window.start_ms).min() {
            Some(first) => st.items.retain(|(t, _)| *t >= first),
            None => st.items.clear(),
        }
    }
    if st.panes.is_empty() && st.items.is_empty() {
        state.clear();
    }
    Ok(outputs)
}

/// Parses a duration: `500ms`, `5s`, `1m`, `2h`, `1d` (for the
/// `#[weir_sdk::window]` attribute, which checks it at compile time).
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests;
