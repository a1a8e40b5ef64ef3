//! Layout 1, the baseline: today's 0.1.1 `list<event>` / `list<output-event>`
//! records. The encoder and decoder are weir's (`host/src/plugin/codec.rs`),
//! minus the provenance header.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Result;
use wasmtime::Store;
use wasmtime::component::Component;

use crate::decode::{self, DecodeError, Names};
use crate::engine::{Host, StoreState, arm};
use crate::model::{Event, Header, Output, Processed};
use crate::runner::{Op, Runner};

mod bindings {
    wasmtime::component::bindgen!({ path: "wit", world: "weir-bench:layout/records" });
}

use bindings::Records;
use bindings::weir_bench::layout::records_types as wit;

fn push_span(data: &mut Vec<u8>, bytes: &[u8]) -> wit::Span {
    let offset = data.len() as u32;
    data.extend_from_slice(bytes);
    wit::Span {
        offset,
        len: bytes.len() as u32,
    }
}

/// Reusable encoder: its buffers keep their capacity from call to call.
pub struct Encoder {
    batch: wit::Batch,
}

impl Default for Encoder {
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

impl Encoder {
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
        let mut last_stream: Option<(&Arc<str>, u32)> = None;
        for ev in events {
            let stream = match last_stream {
                Some((s, i)) if Arc::ptr_eq(s, &ev.position.stream) => i,
                _ => {
                    let found = b.streams.iter().position(|s| **s == *ev.position.stream);
                    let i = match found {
                        Some(i) => i as u32,
                        None => {
                            b.streams.push(ev.position.stream.to_string());
                            (b.streams.len() - 1) as u32
                        }
                    };
                    last_stream = Some((&ev.position.stream, i));
                    i
                }
            };
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

fn slice(data: &Bytes, span: wit::Span, what: &str) -> Result<Bytes, DecodeError> {
    decode::slice(data, span.offset, span.len, what)
}

/// Decodes an output batch for `inputs`, checking every index and span.
pub fn decode(out: wit::OutputBatch, inputs: &[Event]) -> Result<Processed, DecodeError> {
    decode::check_size(out.data.len())?;
    let data = Bytes::from(out.data);
    let routes: Vec<Arc<str>> = out.routes.into_iter().map(Arc::from).collect();
    let mut names = Names::default();
    let mut outputs = Vec::with_capacity(out.events.len());
    for o in out.events {
        let input = decode::input(inputs, o.input)?;
        let route = decode::route(&routes, o.route.unwrap_or(decode::NONE))?;
        let table = decode::range(&out.headers, o.headers.offset, o.headers.len, 1, "header")?;
        let mut headers = Vec::with_capacity(table.len());
        for h in table {
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
                position: input.position.clone(),
            },
        });
    }
    let errors = decode::errors(
        out.errors.into_iter().map(|e| (e.input, e.message)),
        inputs.len(),
    )?;
    Ok(Processed { outputs, errors })
}

pub struct RecordsRunner {
    store: Store<StoreState>,
    guest: Records,
    encoder: Encoder,
}

impl RecordsRunner {
    pub fn new(host: &Host, component: &Component) -> Result<Self> {
        let mut store = host.store();
        let guest = Records::instantiate(&mut store, component, &host.linker)?;
        Ok(Self {
            store,
            guest,
            encoder: Encoder::default(),
        })
    }

    fn call_raw(&mut self, op: Op, events: &[Event]) -> Result<wit::OutputBatch> {
        arm(&mut self.store);
        let batch = self.encoder.encode(events);
        let t = self.guest.weir_bench_layout_records_transformer();
        Ok(match op {
            Op::Passthrough => t.call_passthrough(&mut self.store, batch)?,
            Op::Upper => t.call_upper(&mut self.store, batch)?,
            Op::DropAll => t.call_drop_all(&mut self.store, batch)?,
        })
    }
}

impl Runner for RecordsRunner {
    fn name(&self) -> &'static str {
        "records"
    }

    fn encode(&mut self, events: &[Event]) -> usize {
        self.encoder.encode(events).data.len()
    }

    fn call(&mut self, op: Op, events: &[Event]) -> Result<usize> {
        Ok(self.call_raw(op, events)?.events.len())
    }

    fn process(&mut self, op: Op, events: &[Event]) -> Result<Processed> {
        let out = self.call_raw(op, events)?;
        Ok(decode(out, events)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::hostile::Rng;
    use crate::model::events;

    fn span(offset: u32, len: u32) -> wit::Span {
        wit::Span { offset, len }
    }

    fn output(value: wit::Span, headers: wit::Span) -> wit::OutputEvent {
        wit::OutputEvent {
            input: 0,
            route: None,
            key: None,
            value,
            timestamp_ms: 7,
            headers,
        }
    }

    fn batch(events: Vec<wit::OutputEvent>, headers: Vec<wit::Header>) -> wit::OutputBatch {
        wit::OutputBatch {
            data: b"VALUEnamevalue".to_vec(),
            events,
            headers,
            routes: vec!["alerts".into()],
            errors: Vec::new(),
        }
    }

    #[test]
    fn decodes_spans_routes_and_headers() {
        let inputs = events(2);
        let mut o = output(span(0, 5), span(0, 1));
        o.input = 1;
        o.route = Some(0);
        let header = wit::Header {
            name: span(5, 4),
            value: span(9, 5),
        };
        let p = decode(batch(vec![o], vec![header]), &inputs).expect("decodes");
        let out = &p.outputs[0];
        assert_eq!((out.input, out.route.as_deref()), (1, Some("alerts")));
        assert_eq!(&out.event.value[..], b"VALUE");
        assert_eq!(&*out.event.headers[0].name, "name");
        assert_eq!(out.event.position, inputs[1].position);
    }

    #[test]
    fn refuses_out_of_range_indexes() {
        let inputs = events(1);
        let header = || wit::Header {
            name: span(5, 4),
            value: span(9, 5),
        };
        let mut bad_input = output(span(0, 5), span(0, 0));
        bad_input.input = 1;
        let mut bad_route = output(span(0, 5), span(0, 0));
        bad_route.route = Some(1);
        let cases = [
            ("input", batch(vec![bad_input], vec![])),
            ("route", batch(vec![bad_route], vec![])),
            (
                "value",
                batch(vec![output(span(10, 5), span(0, 0))], vec![]),
            ),
            (
                "header range",
                batch(vec![output(span(0, 5), span(0, 2))], vec![header()]),
            ),
            (
                "header span",
                batch(
                    vec![output(span(0, 5), span(0, 1))],
                    vec![wit::Header {
                        name: span(u32::MAX, u32::MAX),
                        value: span(0, 0),
                    }],
                ),
            ),
        ];
        for (what, out) in cases {
            assert!(
                matches!(decode(out, &inputs), Err(DecodeError::Malformed(_))),
                "{what} accepted"
            );
        }
    }

    #[test]
    fn random_indexes_never_panic() {
        let inputs = events(4);
        let mut rng = Rng(0x5eed);
        let mut refused = 0;
        for _ in 0..20_000 {
            let mut s = || span(rng.word(), rng.word());
            let (value, headers, key, name, hvalue) = (s(), s(), s(), s(), s());
            let mut o = output(value, headers);
            o.key = Some(key);
            o.input = rng.word();
            o.route = Some(rng.word()).filter(|_| rng.next().is_multiple_of(2));
            let h = wit::Header {
                name,
                value: hvalue,
            };
            refused += usize::from(decode(batch(vec![o], vec![h]), &inputs).is_err());
        }
        assert!(refused > 10_000, "most random outputs are out of range");
    }
}
