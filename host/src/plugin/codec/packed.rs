//! The 0.2.0 codec: host events (and the keyed part of a call) into one
//! packed input buffer, and a plugin's packed output buffer back into host
//! events that share it. The format is the crate `weir-batch`'s; its
//! `OutputView::parse` checks every span and index before anything is used.

use std::sync::Arc;

use bytes::Bytes;
use weir_batch::{InputWriter, Limits, NewEvent, OutputView, TimerOpKind};

use super::{Names, Output, Processed, StreamIndex};
use crate::event::{Event, Header, Position, Provenance, Stamp};
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
        let mut streams = StreamIndex::new();
        for (i, ev) in events.iter().enumerate() {
            let stream = streams.get(&ev.position.stream, &mut self.streams, |table| {
                table.push(ev.position.stream.clone());
                w.stream(&ev.position.stream)
            });
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
/// everything. Each output keeps its input's provenance (a timer's output
/// starts with none), with `provenance` (the version of the plugin that
/// produced it) after it when given.
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
    let (mut stamp, fired) = (Stamp::new(provenance), Provenance::default());
    // A timer's output has no source position; made once, if needed.
    let mut no_position: Option<Position> = None;
    let mut processed = Processed {
        outputs: Vec::with_capacity(view.outputs_len()),
        errors: Vec::with_capacity(view.errors().len()),
    };
    let mut result = KeyedOutput::default();
    for o in view.outputs() {
        let mut headers = Vec::with_capacity(o.headers.len());
        for (name, value) in o.headers {
            headers.push(Header {
                name: names.get(slice(name))?,
                value: slice(value),
            });
        }
        let index = o.input as usize;
        let (input, position, from, to) = match inputs.get(index) {
            Some(input) => (
                o.input,
                input.position.clone(),
                &input.provenance,
                &mut processed.outputs,
            ),
            None => (
                (index - events) as u32,
                no_position
                    .get_or_insert_with(|| Position::new(Arc::from(""), -1, -1))
                    .clone(),
                &fired,
                &mut result.timer_outputs,
            ),
        };
        let provenance = stamp.of(from);
        to.push(Output {
            input,
            route: o.route.and_then(|r| routes.get(r as usize).cloned()),
            event: Event {
                key: o.key.map(slice),
                value: slice(o.value),
                timestamp_ms: o.timestamp_ms,
                headers,
                provenance,
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

#[cfg(test)]
mod tests {
    use weir_batch::{InputView, OutputWriter};

    use super::*;

    fn ev(value: &str, stream: &str, offset: i64) -> Event {
        let mut e = Event::new(
            value.as_bytes().to_vec(),
            1000 + offset,
            Position::new(stream.into(), 2, offset),
        )
        .with_key(b"k".to_vec());
        e.headers.push(Header::new("h", b"v".to_vec()));
        e
    }

    #[test]
    fn encodes_events_streams_and_the_keyed_part() {
        let events = vec![ev("a", "in", 0), ev("b", "other", 1), ev("c", "in", 2)];
        let keyed = KeyedInput {
            keys: vec![Bytes::from_static(b"card-1"), Bytes::from_static(b"card-2")],
            event_key: vec![1, NO_KEY, 0],
            states: vec![Some(Bytes::from_static(b"{\"count\":1}")), None],
            watermark: Some(900),
            fired: vec![(1, 850)],
        };
        let mut enc = PackedEncoder::default();
        let buf = enc.encode(&events, Some(&keyed)).expect("encodes").to_vec();
        let v = InputView::parse(&buf).expect("the guest reads it");
        let got: Vec<_> = v.events().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (v.stream(got[0].stream), v.stream(got[1].stream)),
            ("in", "other")
        );
        assert_eq!(got[2].stream, got[0].stream, "stream names are shared");
        assert_eq!(
            (got[1].value, got[1].offset, got[1].partition),
            (&b"b"[..], 1, 2)
        );
        assert_eq!(
            got[0].headers.clone().collect::<Vec<_>>(),
            vec![(&b"h"[..], &b"v"[..])]
        );
        assert_eq!(
            got.iter().map(|e| e.state_key).collect::<Vec<_>>(),
            vec![Some(1), None, Some(0)]
        );
        assert_eq!(v.key(0).unwrap().state, Some(&b"{\"count\":1}"[..]));
        assert_eq!(v.key(1).unwrap().state, None);
        assert_eq!(v.watermark(), Some(900));
        assert_eq!(
            v.fired().map(|f| (f.key, f.at_ms)).collect::<Vec<_>>(),
            vec![(1, 850)]
        );

        // A plain call carries no keyed sections.
        let buf = enc.encode(&events, None).expect("encodes").to_vec();
        assert!(!InputView::parse(&buf).unwrap().is_keyed());
    }

    #[test]
    fn refuses_inconsistent_keyed_input() {
        let events = vec![ev("a", "in", 0)];
        let mut enc = PackedEncoder::default();
        let bad = [
            KeyedInput {
                event_key: vec![],
                ..KeyedInput::default()
            },
            KeyedInput {
                event_key: vec![0],
                ..KeyedInput::default()
            },
            KeyedInput {
                keys: vec![Bytes::new()],
                states: vec![None],
                event_key: vec![0],
                fired: vec![(3, 0)],
                ..KeyedInput::default()
            },
            KeyedInput {
                keys: vec![Bytes::new()],
                event_key: vec![0],
                ..KeyedInput::default()
            },
        ];
        for k in bad {
            assert!(
                matches!(enc.encode(&events, Some(&k)), Err(CallError::Host(_))),
                "{k:?}"
            );
        }
    }

    #[test]
    fn decodes_outputs_timer_outputs_writes_and_timers() {
        let inputs = vec![ev("a", "in", 10), ev("b", "in", 11)];
        let mut w = OutputWriter::new();
        w.event(1, Some("alerts"), None, b"XY", 5).unwrap();
        w.header("hdr", b"val").unwrap();
        w.event(2, None, Some(b"card"), b"from timer", 7).unwrap();
        w.error(0, "bad");
        w.error(2, "timer failed");
        w.put(b"card", b"{}").unwrap();
        w.delete(b"old").unwrap();
        w.set_timer(b"card", 60).unwrap();
        w.cancel_timer(b"card", 30).unwrap();
        let provenance = Header::new("weir.version.s", b"abc".to_vec());
        let d =
            decode(w.finish(), &inputs, Some(1), 1 << 20, 1, Some(&provenance)).expect("decodes");
        let o = &d.processed.outputs[0];
        assert_eq!(
            (o.input, o.route.as_deref(), &o.event.value[..]),
            (1, Some("alerts"), &b"XY"[..])
        );
        assert_eq!(o.event.position.offset, 11);
        assert_eq!(o.event.header("hdr").map(|v| &v[..]), Some(&b"val"[..]));
        assert_eq!(
            o.event.header("weir.version.s").map(|v| &v[..]),
            Some(&b"abc"[..])
        );
        assert_eq!(d.processed.errors, vec![(0, "bad".to_string())]);
        let t = &d.keyed.timer_outputs[0];
        assert_eq!(
            (t.input, &t.event.value[..], t.event.position.offset),
            (0, &b"from timer"[..], -1)
        );
        assert_eq!(d.keyed.timer_errors, vec![(0, "timer failed".to_string())]);
        assert_eq!(
            d.keyed.writes,
            vec![
                (Bytes::from_static(b"card"), Some(Bytes::from_static(b"{}"))),
                (Bytes::from_static(b"old"), None)
            ]
        );
        assert_eq!(
            d.keyed.timers,
            vec![
                TimerOp::Set {
                    key: Bytes::from_static(b"card"),
                    at_ms: 60
                },
                TimerOp::Cancel {
                    key: Bytes::from_static(b"card"),
                    at_ms: 30
                }
            ]
        );
    }

    /// Provenance is one list per call, shared by its outputs, the earlier
    /// stages' first; the plugin never sees it in its input.
    #[test]
    fn outputs_share_one_provenance_list_after_their_inputs() {
        let (a, b) = (
            Header::new("weir.version.a", b"aaa".to_vec()),
            Header::new("weir.version.b", b"bbb".to_vec()),
        );
        let mut w = OutputWriter::new();
        for i in 0..3 {
            w.event(i, None, None, b"v", 0).unwrap();
            w.header("h", b"v").unwrap();
        }
        let first = vec![ev("x", "in", 0), ev("y", "in", 1), ev("z", "in", 2)];
        let d = decode(w.finish(), &first, None, 1 << 20, 1, Some(&a)).expect("decodes");
        let after_a: Vec<Event> = d.processed.outputs.into_iter().map(|o| o.event).collect();
        assert!(
            after_a.iter().all(|e| e.headers.len() == 1),
            "own headers only"
        );

        let mut enc = PackedEncoder::default();
        let buf = enc.encode(&after_a, None).expect("encodes").to_vec();
        let v = InputView::parse(&buf).expect("the guest reads it");
        assert!(
            v.events().all(|e| e.headers.count() == 1),
            "the plugin sees the event's own headers, not its provenance"
        );

        let mut w = OutputWriter::new();
        for i in [2, 0] {
            w.event(i, None, None, b"v", 0).unwrap();
            w.header("h", b"v").unwrap();
        }
        let d = decode(w.finish(), &after_a, None, 1 << 20, 1, Some(&b)).expect("decodes");
        let out = &d.processed.outputs;
        for o in out {
            assert_eq!(o.event.provenance.headers(), [a.clone(), b.clone()]);
            assert_eq!(
                o.event.header("weir.version.a").map(|v| &v[..]),
                Some(&b"aaa"[..])
            );
            let all: Vec<&str> = o.event.all_headers().map(|h| &*h.name).collect();
            assert_eq!(all, ["h", "weir.version.a", "weir.version.b"]);
        }
        assert!(
            std::ptr::eq(
                out[0].event.provenance.headers(),
                out[1].event.provenance.headers()
            ),
            "one list for the call"
        );
    }

    #[test]
    fn refuses_hostile_outputs_without_panicking() {
        let inputs = vec![ev("a", "in", 0)];
        // An output naming a fired timer of a plain call, writes in a plain
        // call, and an oversized buffer.
        let mut w = OutputWriter::new();
        w.event(1, None, None, b"v", 0).unwrap();
        assert!(matches!(
            decode(w.finish(), &inputs, None, 1 << 20, 1, None),
            Err(CallError::Malformed(_))
        ));
        let mut w = OutputWriter::new();
        w.put(b"k", b"v").unwrap();
        assert!(matches!(
            decode(w.finish(), &inputs, None, 1 << 20, 1, None),
            Err(CallError::Malformed(_))
        ));
        assert!(matches!(
            decode(vec![0; 100], &inputs, None, 99, 1, None),
            Err(CallError::OutputTooLarge {
                bytes: 100,
                limit_mib: 1
            })
        ));
        // Random bytes with a valid header.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let mut b: Vec<u8> = (0..96)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            b[..4].copy_from_slice(&1u32.to_le_bytes());
            b[4..8].copy_from_slice(&((x % 6) as u32).to_le_bytes());
            let _ = decode(b, &inputs, Some(1), 1 << 20, 1, None);
        }
    }
}
