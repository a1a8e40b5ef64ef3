//! The 0.2.0 codec: host events (and the keyed part of a call) into one
//! packed input buffer, and a plugin's packed output buffer back into host
//! events that share it. The format is the crate `weir-batch`'s; its
//! `OutputView::parse` checks every span and index before anything is used.

use std::sync::Arc;

use bytes::Bytes;
use weir_batch::{InputWriter, Limits, NewEvent, OutputView, TimerOpKind};

use super::{Names, Output, Processed};
use crate::event::{Event, Header, Position};
use crate::plugin::error::CallError;
use crate::plugin::keyed::{KeyedInput, KeyedOutput, NO_KEY, TimerOp};

/// Reusable encoder: its buffers keep their capacity from call to call.
#[derive(Default)]
pub struct PackedEncoder {
    writer: InputWriter,
    streams: Vec<Arc<str>>,
}

impl PackedEncoder {
    /// Encodes `events` (and, for a keyed call, `keyed`) into one buffer.
    pub fn encode(
        &mut self,
        events: &[Event],
        keyed: Option<&KeyedInput>,
    ) -> Result<&[u8], CallError> {
        let w = &mut self.writer;
        w.clear();
        self.streams.clear();
        let bytes: usize = events
            .iter()
            .map(|e| e.value.len() + e.key.as_ref().map_or(0, |k| k.len()))
            .sum();
        w.reserve(events.len(), bytes);
        if let Some(k) = keyed {
            check_keyed(events.len(), k)?;
            for (key, state) in k.keys.iter().zip(&k.states) {
                w.key_state(key, state.as_deref());
            }
            w.watermark(k.watermark);
            for &(key, at_ms) in &k.fired {
                w.fired_timer(key, at_ms);
            }
        }
        let mut last_stream: Option<(&Arc<str>, u32)> = None;
        for (i, ev) in events.iter().enumerate() {
            let stream = match last_stream {
                Some((s, index)) if Arc::ptr_eq(s, &ev.position.stream) => index,
                _ => {
                    let found = self.streams.iter().position(|s| **s == *ev.position.stream);
                    let index = match found {
                        Some(index) => index as u32,
                        None => {
                            self.streams.push(ev.position.stream.clone());
                            w.stream(&ev.position.stream)
                        }
                    };
                    last_stream = Some((&ev.position.stream, index));
                    index
                }
            };
            let state_key = keyed
                .and_then(|k| k.event_key.get(i).copied())
                .filter(|&k| k != NO_KEY);
            w.event(&NewEvent {
                key: ev.key.as_deref(),
                value: &ev.value,
                timestamp_ms: ev.timestamp_ms,
                stream,
                partition: ev.position.partition,
                offset: ev.position.offset,
                state_key,
            });
            for h in &ev.headers {
                w.header(h.name.as_bytes(), &h.value);
            }
        }
        w.finish()
            .ok_or_else(|| CallError::Host("the batch's bytes pass 4 GiB".into()))
    }

    /// Encodes a `check-state` sample: (key, stored value) pairs, no events.
    pub fn encode_sample(&mut self, sample: &[(Bytes, Bytes)]) -> Result<&[u8], CallError> {
        let w = &mut self.writer;
        w.clear();
        w.keyed();
        for (key, value) in sample {
            w.key_state(key, Some(value));
        }
        w.finish()
            .ok_or_else(|| CallError::Host("the state sample passes 4 GiB".into()))
    }
}

fn check_keyed(events: usize, k: &KeyedInput) -> Result<(), CallError> {
    let bad = |what: String| Err(CallError::Host(format!("keyed input: {what}")));
    if k.event_key.len() != events {
        return bad(format!(
            "{} event keys for {events} events",
            k.event_key.len()
        ));
    }
    if k.states.len() != k.keys.len() {
        return bad(format!(
            "{} states for {} keys",
            k.states.len(),
            k.keys.len()
        ));
    }
    let keys = k.keys.len();
    if let Some(i) = k
        .event_key
        .iter()
        .find(|&&i| i != NO_KEY && i as usize >= keys)
    {
        return bad(format!("an event names key {i} of {keys}"));
    }
    if let Some((i, _)) = k.fired.iter().find(|(i, _)| *i as usize >= keys) {
        return bad(format!("a fired timer names key {i} of {keys}"));
    }
    Ok(())
}

/// Everything one output buffer holds, decoded.
pub struct Decoded {
    pub processed: Processed,
    pub keyed: KeyedOutput,
}

/// Decodes a plugin's output buffer for `inputs` (and `fired` timers, for a
/// keyed call: input indexes `inputs.len()..` name them), checking
/// everything. `provenance`, when given, is appended to every output's
/// headers (the version of the plugin that produced it).
pub fn decode(
    out: Vec<u8>,
    inputs: &[Event],
    keyed: Option<usize>,
    max_output_bytes: usize,
    limit_mib: u32,
    provenance: Option<&Header>,
) -> Result<Decoded, CallError> {
    if out.len() > max_output_bytes {
        return Err(CallError::OutputTooLarge {
            bytes: out.len(),
            limit_mib,
        });
    }
    let events = inputs.len();
    let limits = Limits {
        inputs: events + keyed.unwrap_or(0),
        max_bytes: max_output_bytes,
        keyed: keyed.is_some(),
    };
    let all = Bytes::from(out);
    let view = OutputView::parse(&all, &limits).map_err(|e| CallError::Malformed(e.0))?;
    let slice = |s: &[u8]| all.slice_ref(s);
    let routes: Vec<Arc<str>> = (0..view.routes_len() as u32)
        .map(|i| Arc::from(view.route(i)))
        .collect();
    let mut names = Names::default();
    let mut processed = Processed {
        outputs: Vec::with_capacity(view.outputs_len()),
        errors: Vec::with_capacity(view.errors().len()),
    };
    let mut result = KeyedOutput::default();
    for o in view.outputs() {
        let mut headers = Vec::with_capacity(o.headers.len() + usize::from(provenance.is_some()));
        for (name, value) in o.headers {
            headers.push(Header {
                name: names.get(slice(name))?,
                value: slice(value),
            });
        }
        if let Some(p) = provenance {
            headers.push(p.clone());
        }
        let index = o.input as usize;
        let (input, position, to) = match inputs.get(index) {
            Some(input) => (o.input, input.position.clone(), &mut processed.outputs),
            None => (
                (index - events) as u32,
                Position::new(Arc::from(""), -1, -1),
                &mut result.timer_outputs,
            ),
        };
        to.push(Output {
            input,
            route: o.route.and_then(|r| routes.get(r as usize).cloned()),
            event: Event {
                key: o.key.map(slice),
                value: slice(o.value),
                timestamp_ms: o.timestamp_ms,
                headers,
                position,
            },
        });
    }
    for e in view.errors() {
        let message = String::from_utf8_lossy(e.message).into_owned();
        if (e.input as usize) < events {
            processed.errors.push((e.input, message));
        } else {
            result.timer_errors.push((e.input - events as u32, message));
        }
    }
    result.writes = view
        .writes()
        .map(|w| (slice(w.key), w.value.map(slice)))
        .collect();
    result.timers = view
        .timers()
        .map(|t| match t.kind {
            TimerOpKind::Set => TimerOp::Set {
                key: slice(t.key),
                at_ms: t.at_ms,
            },
            TimerOpKind::Cancel => TimerOp::Cancel {
                key: slice(t.key),
                at_ms: t.at_ms,
            },
        })
        .collect();
    Ok(Decoded {
        processed,
        keyed: result,
    })
}
