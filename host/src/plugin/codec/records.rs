//! The 0.1.x codec: host events into one WIT `batch` record (one contiguous
//! byte buffer + spans), and a WIT `output-batch` back into host events that
//! all share the one returned buffer.

use std::sync::Arc;

use bytes::Bytes;

use super::{Names, Output, Processed, StreamIndex};
use crate::event::{Event, Header, Stamp};
use crate::plugin::bindings::v1::wit;
use crate::plugin::error::CallError;

/// Reusable encoder: its buffers keep their capacity from call to call.
pub struct BatchEncoder {
    batch: wit::Batch,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        Self {
            batch: wit::Batch {
                data: Vec::new(),
                events: Vec::new(),
                headers: Vec::new(),
                streams: Vec::new(),
            },
        }
    }
}

fn push_span(data: &mut Vec<u8>, bytes: &[u8]) -> wit::Span {
    let offset = data.len() as u32;
    data.extend_from_slice(bytes);
    wit::Span {
        offset,
        len: bytes.len() as u32,
    }
}

impl BatchEncoder {
    /// Encodes `events`. Spans are 32-bit: a batch's bytes must stay under
    /// 4 GiB, far above any sane `max_events` × event size.
    pub fn encode(&mut self, events: &[Event]) -> &wit::Batch {
        let b = &mut self.batch;
        b.data.clear();
        b.events.clear();
        b.headers.clear();
        b.streams.clear();
        let bytes: usize = events
            .iter()
            .map(|e| e.value.len() + e.key.as_ref().map_or(0, |k| k.len()))
            .sum();
        b.data.reserve(bytes);
        b.events.reserve(events.len());
        let mut streams = StreamIndex::new();
        for ev in events {
            let stream = streams.get(&ev.position.stream, &mut b.streams, |table| {
                table.push(ev.position.stream.to_string());
                (table.len() - 1) as u32
            });
            let key = ev.key.as_ref().map(|k| push_span(&mut b.data, k));
            let value = push_span(&mut b.data, &ev.value);
            let first_header = b.headers.len() as u32;
            for h in &ev.headers {
                let name = push_span(&mut b.data, h.name.as_bytes());
                let value = push_span(&mut b.data, &h.value);
                b.headers.push(wit::Header { name, value });
            }
            b.events.push(wit::Event {
                key,
                value,
                timestamp_ms: ev.timestamp_ms,
                headers: wit::Span {
                    offset: first_header,
                    len: ev.headers.len() as u32,
                },
                position: wit::Position {
                    stream,
                    partition: ev.position.partition,
                    offset: ev.position.offset,
                },
            });
        }
        &self.batch
    }
}

fn slice(data: &Bytes, span: wit::Span, what: &str) -> Result<Bytes, CallError> {
    let start = span.offset as usize;
    let end = start + span.len as usize;
    if end > data.len() {
        return Err(CallError::Malformed(format!(
            "{what} span {start}..{end} is outside the {}-byte data buffer",
            data.len()
        )));
    }
    Ok(data.slice(start..end))
}

/// Decodes an output batch for `inputs`, checking every index and span.
/// Each output keeps its input's provenance, with `provenance` (the version
/// of the plugin that produced it) after it when given.
pub fn decode(
    out: wit::OutputBatch,
    inputs: &[Event],
    max_output_bytes: usize,
    limit_mib: u32,
    provenance: Option<&Header>,
) -> Result<Processed, CallError> {
    if out.data.len() > max_output_bytes {
        return Err(CallError::OutputTooLarge {
            bytes: out.data.len(),
            limit_mib,
        });
    }
    let data = Bytes::from(out.data);
    let routes: Vec<Arc<str>> = out.routes.into_iter().map(Arc::from).collect();
    let mut names = Names::default();
    let mut stamp = Stamp::new(provenance);
    let mut outputs = Vec::with_capacity(out.events.len());
    for o in out.events {
        let input = inputs.get(o.input as usize).ok_or_else(|| {
            CallError::Malformed(format!(
                "output refers to input {} of a {}-event batch",
                o.input,
                inputs.len()
            ))
        })?;
        let route = match o.route {
            None => None,
            Some(i) => Some(routes.get(i as usize).cloned().ok_or_else(|| {
                CallError::Malformed(format!("route index {i} of {} routes", routes.len()))
            })?),
        };
        let first = o.headers.offset as usize;
        let hs = out
            .headers
            .get(first..first + o.headers.len as usize)
            .ok_or_else(|| CallError::Malformed("header range out of bounds".into()))?;
        let mut headers = Vec::with_capacity(hs.len());
        for h in hs {
            headers.push(Header {
                name: names.get(slice(&data, h.name, "header name")?)?,
                value: slice(&data, h.value, "header value")?,
            });
        }
        outputs.push(Output {
            input: o.input,
            route,
            event: Event {
                key: o.key.map(|k| slice(&data, k, "key")).transpose()?,
                value: slice(&data, o.value, "value")?,
                timestamp_ms: o.timestamp_ms,
                headers,
                provenance: stamp.of(&input.provenance),
                position: input.position.clone(),
            },
        });
    }
    let mut errors = Vec::with_capacity(out.errors.len());
    for e in out.errors {
        if e.input as usize >= inputs.len() {
            return Err(CallError::Malformed(format!(
                "error refers to input {} of a {}-event batch",
                e.input,
                inputs.len()
            )));
        }
        errors.push((e.input, e.message));
    }
    Ok(Processed { outputs, errors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn ev(value: &str, offset: i64) -> Event {
        let mut e = Event::new(
            value.as_bytes().to_vec(),
            1000 + offset,
            Position::new("in".into(), 2, offset),
        )
        .with_key(b"k".to_vec());
        e.headers.push(Header::new("h", b"v".to_vec()));
        e
    }

    #[test]
    fn encodes_into_one_buffer_with_spans() {
        let events = vec![ev("hello", 0), ev("world!", 1)];
        let mut enc = BatchEncoder::default();
        let b = enc.encode(&events);
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.streams, vec!["in".to_string()]);
        let v = b.events[1].value;
        assert_eq!(
            &b.data[v.offset as usize..(v.offset + v.len) as usize],
            b"world!"
        );
        assert_eq!(b.events[1].headers.offset, 1);
        assert_eq!(b.events[1].position.offset, 1);
        assert_eq!(b.events[1].position.partition, 2);
        assert_eq!(b.headers.len(), 2);
    }

    #[test]
    fn decodes_outputs_sharing_the_buffer_and_keeps_positions() {
        let inputs = vec![ev("a", 10), ev("b", 11)];
        let out = wit::OutputBatch {
            data: b"XYhdrval".to_vec(),
            events: vec![wit::OutputEvent {
                input: 1,
                route: Some(0),
                key: None,
                value: wit::Span { offset: 0, len: 2 },
                timestamp_ms: 5,
                headers: wit::Span { offset: 0, len: 1 },
            }],
            headers: vec![wit::Header {
                name: wit::Span { offset: 2, len: 3 },
                value: wit::Span { offset: 5, len: 3 },
            }],
            routes: vec!["alerts".into()],
            errors: vec![wit::EventError {
                input: 0,
                message: "bad".into(),
            }],
        };
        let p = decode(out, &inputs, 1 << 20, 1, None).expect("decodes");
        assert_eq!(p.outputs.len(), 1);
        let o = &p.outputs[0];
        assert_eq!(o.route.as_deref(), Some("alerts"));
        assert_eq!(&o.event.value[..], b"XY");
        assert_eq!(o.event.position.offset, 11);
        assert_eq!(o.event.header("hdr").map(|v| &v[..]), Some(&b"val"[..]));
        assert_eq!(p.errors, vec![(0, "bad".to_string())]);
    }

    #[test]
    fn rejects_out_of_range_spans_and_indexes() {
        let inputs = vec![ev("a", 0)];
        let bad_span = wit::OutputBatch {
            data: b"ab".to_vec(),
            events: vec![wit::OutputEvent {
                input: 0,
                route: None,
                key: None,
                value: wit::Span { offset: 1, len: 5 },
                timestamp_ms: 0,
                headers: wit::Span { offset: 0, len: 0 },
            }],
            headers: vec![],
            routes: vec![],
            errors: vec![],
        };
        assert!(matches!(
            decode(bad_span, &inputs, 1 << 20, 1, None),
            Err(CallError::Malformed(_))
        ));
        let bad_input = wit::OutputBatch {
            data: vec![],
            events: vec![],
            headers: vec![],
            routes: vec![],
            errors: vec![wit::EventError {
                input: 3,
                message: "x".into(),
            }],
        };
        assert!(matches!(
            decode(bad_input, &inputs, 1 << 20, 1, None),
            Err(CallError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_output_over_the_limit() {
        let out = wit::OutputBatch {
            data: vec![0; 100],
            events: vec![],
            headers: vec![],
            routes: vec![],
            errors: vec![],
        };
        assert_eq!(
            decode(out, &[], 99, 1, None),
            Err(CallError::OutputTooLarge {
                bytes: 100,
                limit_mib: 1
            })
        );
    }
}
