//! Layout 2: the per-event index as primitive columns (`list<u32>`,
//! `list<s64>`, `list<s32>`), which wasmtime copies as one block each. The
//! strides are documented on `columns-types` in `wit/layout.wit`.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Result;
use wasmtime::Store;
use wasmtime::component::Component;

use crate::decode::{self, DecodeError, NONE, Names};
use crate::engine::{Host, StoreState, arm};
use crate::model::{Event, Header, Output, Processed};
use crate::runner::{Op, Runner};

mod bindings {
    wasmtime::component::bindgen!({ path: "wit", world: "weir-bench:layout/columns" });
}

use bindings::Columns;
use bindings::weir_bench::layout::columns_types as wit;

/// `u32` words per input event in `index`.
pub const IN_STRIDE: usize = 7;
/// `u32` words per output event in `index`.
pub const OUT_STRIDE: usize = 8;
/// `u32` words per header in `header-index`.
pub const HEADER_STRIDE: usize = 4;

/// Appends `bytes` to `data`; returns (offset, len).
#[inline]
fn push(data: &mut Vec<u8>, bytes: &[u8]) -> (u32, u32) {
    let offset = data.len() as u32;
    data.extend_from_slice(bytes);
    (offset, bytes.len() as u32)
}

/// Reusable encoder: its columns keep their capacity from call to call.
pub struct Encoder {
    batch: wit::Batch,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            batch: wit::Batch {
                data: Vec::new(),
                index: Vec::new(),
                times: Vec::new(),
                partitions: Vec::new(),
                header_index: Vec::new(),
                streams: Vec::new(),
            },
        }
    }
}

impl Encoder {
    pub fn encode(&mut self, events: &[Event]) -> &wit::Batch {
        let b = &mut self.batch;
        b.data.clear();
        b.index.clear();
        b.times.clear();
        b.partitions.clear();
        b.header_index.clear();
        b.streams.clear();
        let bytes: usize = events
            .iter()
            .map(|e| e.value.len() + e.key.as_ref().map_or(0, |k| k.len()))
            .sum();
        b.data.reserve(bytes);
        b.index.reserve(events.len() * IN_STRIDE);
        b.times.reserve(events.len() * 2);
        b.partitions.reserve(events.len());
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
            let (key_offset, key_len) = match &ev.key {
                Some(k) => push(&mut b.data, k),
                None => (0, NONE),
            };
            let (value_offset, value_len) = push(&mut b.data, &ev.value);
            let first_header = (b.header_index.len() / HEADER_STRIDE) as u32;
            for h in &ev.headers {
                let (no, nl) = push(&mut b.data, h.name.as_bytes());
                let (vo, vl) = push(&mut b.data, &h.value);
                b.header_index.extend_from_slice(&[no, nl, vo, vl]);
            }
            b.index.extend_from_slice(&[
                key_offset,
                key_len,
                value_offset,
                value_len,
                first_header,
                ev.headers.len() as u32,
                stream,
            ]);
            b.times
                .extend_from_slice(&[ev.timestamp_ms, ev.position.offset]);
            b.partitions.push(ev.position.partition);
        }
        &self.batch
    }
}

/// Decodes an output batch for `inputs`, checking every index and span.
pub fn decode(out: wit::OutputBatch, inputs: &[Event]) -> Result<Processed, DecodeError> {
    decode::check_size(out.data.len())?;
    if !out.index.len().is_multiple_of(OUT_STRIDE) {
        return Err(decode::malformed(format!(
            "index has {} words, not a multiple of {OUT_STRIDE}",
            out.index.len()
        )));
    }
    let n = out.index.len() / OUT_STRIDE;
    if out.times.len() != n {
        return Err(decode::malformed(format!(
            "{} timestamps for {n} outputs",
            out.times.len()
        )));
    }
    if !out.header_index.len().is_multiple_of(HEADER_STRIDE) {
        return Err(decode::malformed(format!(
            "header index has {} words, not a multiple of {HEADER_STRIDE}",
            out.header_index.len()
        )));
    }
    let data = Bytes::from(out.data);
    let routes: Vec<Arc<str>> = out.routes.into_iter().map(Arc::from).collect();
    let mut names = Names::default();
    let mut outputs = Vec::with_capacity(n);
    for (o, &timestamp_ms) in out.index.chunks_exact(OUT_STRIDE).zip(&out.times) {
        let &[
            input_index,
            route,
            key_offset,
            key_len,
            value_offset,
            value_len,
            first,
            count,
        ] = o
        else {
            continue; // chunks_exact: unreachable
        };
        let input = decode::input(inputs, input_index)?;
        let route = decode::route(&routes, route)?;
        let key = match key_len {
            NONE => None,
            len => Some(decode::slice(&data, key_offset, len, "key")?),
        };
        let value = decode::slice(&data, value_offset, value_len, "value")?;
        let table = decode::range(&out.header_index, first, count, HEADER_STRIDE, "header")?;
        let mut headers = Vec::with_capacity(count as usize);
        for h in table.chunks_exact(HEADER_STRIDE) {
            let &[name_offset, name_len, value_offset, value_len] = h else {
                continue; // chunks_exact: unreachable
            };
            headers.push(Header {
                name: names.get(decode::slice(&data, name_offset, name_len, "header name")?)?,
                value: decode::slice(&data, value_offset, value_len, "header value")?,
            });
        }
        outputs.push(Output {
            input: input_index,
            route,
            event: Event {
                key,
                value,
                timestamp_ms,
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

pub struct ColumnsRunner {
    store: Store<StoreState>,
    guest: Columns,
    encoder: Encoder,
}

impl ColumnsRunner {
    pub fn new(host: &Host, component: &Component) -> Result<Self> {
        let mut store = host.store();
        let guest = Columns::instantiate(&mut store, component, &host.linker)?;
        Ok(Self {
            store,
            guest,
            encoder: Encoder::default(),
        })
    }

    fn call_raw(&mut self, op: Op, events: &[Event]) -> Result<wit::OutputBatch> {
        arm(&mut self.store);
        let batch = self.encoder.encode(events);
        let t = self.guest.weir_bench_layout_columns_transformer();
        Ok(match op {
            Op::Passthrough => t.call_passthrough(&mut self.store, batch)?,
            Op::Upper => t.call_upper(&mut self.store, batch)?,
            Op::DropAll => t.call_drop_all(&mut self.store, batch)?,
        })
    }
}

impl Runner for ColumnsRunner {
    fn name(&self) -> &'static str {
        "columns"
    }

    fn encode(&mut self, events: &[Event]) -> usize {
        self.encoder.encode(events).data.len()
    }

    fn call(&mut self, op: Op, events: &[Event]) -> Result<usize> {
        Ok(self.call_raw(op, events)?.times.len())
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

    /// One output of input `input`: value `data[0..5]`, header 0.
    fn batch(index: Vec<u32>, times: Vec<i64>, header_index: Vec<u32>) -> wit::OutputBatch {
        wit::OutputBatch {
            data: b"VALUEnamevalue".to_vec(),
            index,
            times,
            header_index,
            routes: vec!["alerts".into()],
            errors: Vec::new(),
        }
    }

    #[test]
    fn encodes_fixed_strides() {
        let inputs = events(3);
        let mut enc = Encoder::default();
        let b = enc.encode(&inputs);
        assert_eq!(b.index.len(), 3 * IN_STRIDE);
        assert_eq!(b.times.len(), 6);
        assert_eq!(b.header_index.len(), 3 * HEADER_STRIDE);
        let ix = &b.index[2 * IN_STRIDE..3 * IN_STRIDE];
        let value = &b.data[ix[2] as usize..(ix[2] + ix[3]) as usize];
        assert_eq!(value, &inputs[2].value[..]);
        assert_eq!((ix[4], ix[5], ix[6]), (2, 1, 0));
        assert_eq!(b.times[5], inputs[2].position.offset);
        assert_eq!(b.partitions, vec![0, 1, 2]);
    }

    #[test]
    fn decodes_spans_routes_and_headers() {
        let inputs = events(2);
        let out = batch(vec![1, 0, 0, NONE, 0, 5, 0, 1], vec![7], vec![5, 4, 9, 5]);
        let p = decode(out, &inputs).expect("decodes");
        let o = &p.outputs[0];
        assert_eq!(
            (o.input, o.route.as_deref(), &o.event.key),
            (1, Some("alerts"), &None)
        );
        assert_eq!(
            (&o.event.value[..], o.event.timestamp_ms),
            (&b"VALUE"[..], 7)
        );
        assert_eq!(&*o.event.headers[0].name, "name");
    }

    #[test]
    fn refuses_out_of_range_indexes() {
        let inputs = events(1);
        let h = || vec![5, 4, 9, 5];
        let cases = [
            (
                "input",
                batch(vec![1, NONE, 0, NONE, 0, 5, 0, 0], vec![0], h()),
            ),
            (
                "route",
                batch(vec![0, 1, 0, NONE, 0, 5, 0, 0], vec![0], h()),
            ),
            ("key", batch(vec![0, NONE, 10, 5, 0, 5, 0, 0], vec![0], h())),
            (
                "value",
                batch(vec![0, NONE, 0, NONE, 0, 15, 0, 0], vec![0], h()),
            ),
            (
                "headers",
                batch(vec![0, NONE, 0, NONE, 0, 5, 1, 1], vec![0], h()),
            ),
            (
                "header",
                batch(
                    vec![0, NONE, 0, NONE, 0, 5, 0, 1],
                    vec![0],
                    vec![5, 4, 9, 6],
                ),
            ),
            (
                "stride",
                batch(vec![0, NONE, 0, NONE, 0, 5, 0], vec![0], h()),
            ),
            (
                "times",
                batch(vec![0, NONE, 0, NONE, 0, 5, 0, 0], vec![], h()),
            ),
            (
                "header stride",
                batch(vec![0, NONE, 0, NONE, 0, 5, 0, 0], vec![0], vec![1]),
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
        let mut rng = Rng(0xc0105);
        let mut refused = 0;
        for _ in 0..20_000 {
            let words = (rng.next() % 20) as usize;
            let index = (0..words).map(|_| rng.word()).collect();
            let times = vec![0; (rng.next() % 3) as usize];
            let header_index = (0..(rng.next() % 9)).map(|_| rng.word()).collect();
            refused += usize::from(decode(batch(index, times, header_index), &inputs).is_err());
        }
        assert!(refused > 10_000, "most random outputs are out of range");
    }
}
