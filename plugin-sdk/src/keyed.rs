//! Keyed state: [`State`] and [`Context`], and the driver of
//! `#[weir_sdk::keyed]` / `#[weir_sdk::on_timer]` plugins.
//!
//! The host sends, with each batch, the stored value of every distinct key
//! of the batch; the driver decodes a key's value (JSON) once, at the key's
//! first event, hands the same [`State`] to every event of that key in batch
//! order (so they see each other's writes), and returns one write per
//! changed key at the end. An event whose function returns `Err` leaves the
//! state as it found it.

use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_batch::InputView;

use crate::__private::{Batch, OutputBatch};
use crate::codec::Encoder;
use crate::drivers::{emit_all, with_input};
use crate::event::{Event, Output};
use crate::{Error, Result};

/// The state a keyed plugin keeps for the key of the event it is called
/// for, stored by the host as JSON (`T: Serialize + DeserializeOwned`).
///
/// A key with nothing stored reads as unset ([`State::get`] is `None`);
/// [`State::get_mut`] sets it to `T::default()` first. The host stores a
/// new value only when the serialized state changed.
#[derive(Debug)]
pub struct State<T> {
    value: Option<T>,
    /// Changed by the current call (get_mut, set, clear).
    touched: bool,
}

impl<T> State<T> {
    fn new(value: Option<T>) -> Self {
        Self {
            value,
            touched: false,
        }
    }

    /// The state, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Whether the key has a state.
    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }

    /// Replaces the state.
    pub fn set(&mut self, value: T) {
        self.touched = true;
        self.value = Some(value);
    }

    /// Deletes the key's state.
    pub fn clear(&mut self) {
        self.touched = true;
        self.value = None;
    }

    /// Takes the state out, leaving the key without one.
    pub fn take(&mut self) -> Option<T> {
        self.touched = true;
        self.value.take()
    }

    /// The state, mutable; an unset state becomes `T::default()` first.
    pub fn get_mut(&mut self) -> &mut T
    where
        T: Default,
    {
        self.touched = true;
        self.value.get_or_insert_with(T::default)
    }

    /// A state for tests of a keyed function (`None`: nothing stored).
    pub fn for_test(value: Option<T>) -> Self {
        Self::new(value)
    }
}

/// What a timer operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerAction {
    Set,
    Cancel,
}

/// What a keyed function knows besides its event and state: the key, the
/// stage's watermark, its params; and how it sets and cancels timers.
#[derive(Debug)]
pub struct Context<P = ()> {
    key: Vec<u8>,
    watermark: Option<i64>,
    params: Rc<P>,
    timers: Vec<(TimerAction, i64)>,
}

impl<P> Context<P> {
    fn new(params: Rc<P>, watermark: Option<i64>) -> Self {
        Self {
            key: Vec::new(),
            watermark,
            params,
            timers: Vec::new(),
        }
    }

    fn reset(&mut self, key: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.timers.clear();
    }

    /// A context for tests of a keyed function.
    pub fn for_test(key: &[u8], watermark: Option<i64>, params: P) -> Self {
        let mut ctx = Self::new(Rc::new(params), watermark);
        ctx.reset(key);
        ctx
    }

    /// The state key of the event (or of the timer that fired).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The state key as UTF-8 text, if it is.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }

    /// The stage's watermark (event time, ms): events older than it are
    /// late. `None` until the host has seen event times.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The stage's params (`Context<P>`: deserialized once, in `init`).
    pub fn params(&self) -> &P {
        &self.params
    }

    /// Sets a timer for this key at event time `at_ms`: the plugin's
    /// `#[weir_sdk::on_timer]` function runs when the watermark passes it.
    /// Setting the same time twice is one timer.
    pub fn set_timer(&mut self, at_ms: i64) {
        self.timers.push((TimerAction::Set, at_ms));
    }

    /// Cancels this key's timer at `at_ms` (if any).
    pub fn cancel_timer(&mut self, at_ms: i64) {
        self.timers.push((TimerAction::Cancel, at_ms));
    }

    /// The timers set (`true`) and cancelled (`false`) so far, for tests.
    pub fn timers_for_test(&self) -> Vec<(bool, i64)> {
        self.timers
            .iter()
            .map(|(a, at)| (*a == TimerAction::Set, *at))
            .collect()
    }
}

/// One distinct key of the batch, loaded at its first use.
struct Slot<T> {
    state: State<T>,
    /// The serialized state after the last successful call (`None`: unset).
    bytes: Option<Vec<u8>>,
    /// A call changed it (the host gets a write if `bytes` differs from
    /// what it stored).
    changed: bool,
    /// The stored value does not decode as `T`: every event of the key fails.
    failed: Option<String>,
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn load<T: DeserializeOwned>(key: &[u8], stored: Option<&[u8]>) -> Slot<T> {
    let (value, failed) = match stored.map(serde_json::from_slice::<T>) {
        None => (None, None),
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (
            None,
            Some(format!(
                "the stored state of key `{}` does not decode as this plugin's state type: {e}",
                key_text(key)
            )),
        ),
    };
    Slot {
        state: State::new(value),
        bytes: stored.map(<[u8]>::to_vec),
        changed: false,
        failed,
    }
}

impl<T: Serialize + DeserializeOwned> Slot<T> {
    /// After a call: keeps its changes (`Ok`) or puts the state back as it
    /// was before the call (the call failed, or its state cannot be
    /// serialized: `Err` says why).
    fn settle(&mut self, call_ok: bool) -> Result<(), String> {
        if !std::mem::take(&mut self.state.touched) {
            return Ok(());
        }
        if call_ok {
            let serialized = match &self.state.value {
                None => Ok(None),
                Some(v) => serde_json::to_vec(v).map(Some),
            };
            match serialized {
                Ok(bytes) => {
                    self.bytes = bytes;
                    self.changed = true;
                    return Ok(());
                }
                Err(e) => {
                    self.restore();
                    return Err(format!("the state could not be serialized: {e}"));
                }
            }
        }
        self.restore();
        Ok(())
    }

    fn restore(&mut self) {
        self.state.value = match &self.bytes {
            None => None,
            Some(b) => match serde_json::from_slice(b) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.failed = Some(format!("the state could not be restored: {e}"));
                    None
                }
            },
        };
    }
}

/// Runs a keyed plugin over a keyed batch: first the timers that fired
/// (`on_timer`, in order), then the events (`f`, in batch order).
pub fn run_keyed<T, P>(
    batch: Batch,
    params: Rc<P>,
    mut f: impl FnMut(Event, &mut State<T>, &mut Context<P>) -> Result<Vec<Output>>,
    mut on_timer: impl FnMut(&[u8], i64, &mut State<T>, &mut Context<P>) -> Result<Vec<Output>>,
) -> OutputBatch
where
    T: Serialize + DeserializeOwned,
{
    with_input(&batch, |view, decoder, encoder| {
        if !view.is_keyed() {
            for input in 0..view.len() as u32 {
                encoder.fail(
                    input,
                    "this plugin is keyed: its stage needs a state key (`[stages.state] key = ...`)"
                        .to_owned(),
                );
            }
            return;
        }
        let mut slots: Vec<Option<Slot<T>>> = (0..view.keys_len()).map(|_| None).collect();
        let mut ctx = Context::new(params, view.watermark());
        let events = view.len() as u32;
        for (i, fired) in (0u32..).zip(view.fired()) {
            let input = events + i;
            let Some((key, slot)) = slot(view, &mut slots, fired.key) else {
                encoder.fail(
                    input,
                    format!("fired timer names unknown key {}", fired.key),
                );
                continue;
            };
            if let Some(message) = &slot.failed {
                encoder.fail(input, message.clone());
                continue;
            }
            ctx.reset(key);
            let result = on_timer(key, fired.at_ms, &mut slot.state, &mut ctx);
            finish_call(encoder, input, fired.at_ms, key, slot, &ctx, result);
        }
        for (input, raw) in (0u32..).zip(view.events()) {
            let Some(k) = raw.state_key else {
                encoder.fail(input, "the event has no state key".to_owned());
                continue;
            };
            let Some((key, slot)) = slot(view, &mut slots, k) else {
                encoder.fail(input, format!("the event names unknown key {k}"));
                continue;
            };
            if let Some(message) = &slot.failed {
                encoder.fail(input, message.clone());
                continue;
            }
            ctx.reset(key);
            let event = decoder.event(&raw);
            let result = f(event, &mut slot.state, &mut ctx);
            let outputs = finish_call(encoder, input, raw.timestamp_ms, key, slot, &ctx, result);
            for output in outputs {
                decoder.recycle(output.event);
            }
        }
        write_state(view, &slots, encoder);
    })
}

/// The key and slot of key index `k`, loading the slot at first use.
fn slot<'s, 'v, T: DeserializeOwned>(
    view: &InputView<'v>,
    slots: &'s mut [Option<Slot<T>>],
    k: u32,
) -> Option<(&'v [u8], &'s mut Slot<T>)> {
    let entry = view.key(k)?;
    let slot = slots.get_mut(k as usize)?;
    Some((
        entry.key,
        slot.get_or_insert_with(|| load(entry.key, entry.state)),
    ))
}

/// Settles the state after a call and emits its outputs and timers (or
/// its error); returns the outputs, for their buffers.
fn finish_call<T: Serialize + DeserializeOwned, P>(
    encoder: &mut Encoder,
    input: u32,
    timestamp_ms: i64,
    key: &[u8],
    slot: &mut Slot<T>,
    ctx: &Context<P>,
    result: Result<Vec<Output>>,
) -> Vec<Output> {
    match result {
        Ok(outputs) => match slot.settle(true) {
            Ok(()) => {
                emit_all(encoder, input, timestamp_ms, &outputs);
                for &(action, at_ms) in &ctx.timers {
                    let written = match action {
                        TimerAction::Set => encoder.writer().set_timer(key, at_ms),
                        TimerAction::Cancel => encoder.writer().cancel_timer(key, at_ms),
                    };
                    if written.is_err() {
                        encoder.fail(input, "output batch too large (over 4 GiB)".to_owned());
                    }
                }
                outputs
            }
            Err(message) => {
                encoder.fail(input, message);
                outputs
            }
        },
        Err(e) => {
            let _ = slot.settle(false);
            encoder.fail(input, Error::into_message(e));
            Vec::new()
        }
    }
}

/// One write per key whose serialized state differs from the stored one.
fn write_state<T>(view: &InputView<'_>, slots: &[Option<Slot<T>>], encoder: &mut Encoder) {
    for (k, slot) in (0u32..).zip(slots) {
        let (Some(slot), Some(entry)) = (slot, view.key(k)) else {
            continue;
        };
        if !slot.changed || slot.bytes.as_deref() == entry.state {
            continue;
        }
        let written = match &slot.bytes {
            Some(bytes) => encoder.writer().put(entry.key, bytes),
            None => encoder.writer().delete(entry.key),
        };
        if written.is_err() {
            // Cannot happen below 4 GiB; the host then sees no write for
            // the key, and its events' outputs stand.
            continue;
        }
    }
}

/// `check-state` of a keyed plugin: every sample value must decode as `T`.
pub fn run_check_state<T: DeserializeOwned>(sample: Batch) -> std::result::Result<(), String> {
    let view = InputView::parse(&sample).map_err(|e| format!("malformed state sample: {e}"))?;
    for entry in view.keys() {
        if let Some(stored) = entry.state {
            serde_json::from_slice::<T>(stored).map_err(|e| {
                format!(
                    "the stored state of key `{}` does not decode as this plugin's state type: {e}",
                    key_text(entry.key)
                )
            })?;
        }
    }
    Ok(())
}

/// What `#[weir_sdk::on_timer]` implements; the keyed entry point calls it
/// for each fired timer.
pub trait TimerHook<T, P> {
    /// Runs the plugin's timer function.
    fn run(
        key: &[u8],
        at_ms: i64,
        state: &mut State<T>,
        ctx: &mut Context<P>,
    ) -> Result<Vec<Output>>;
}

/// The default [`TimerHook`] when the plugin has no `#[weir_sdk::on_timer]`
/// function: a fired timer does nothing.
pub mod timer_fallback {
    #[doc(hidden)]
    pub struct __WeirTimer;

    impl<T, P> super::TimerHook<T, P> for __WeirTimer {
        fn run(
            _key: &[u8],
            _at_ms: i64,
            _state: &mut super::State<T>,
            _ctx: &mut super::Context<P>,
        ) -> crate::Result<Vec<crate::Output>> {
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests;
