//! Layout 3: one packed `list<u8>` each way, in the format recommended for
//! `weir:plugin@0.2.0` (specified in full in `RECOMMENDATION.md`):
//!
//! - little-endian throughout; readers never assume alignment;
//! - an 8-byte header: format (1), section count; then a directory of
//!   16-byte entries: kind, count, offset (from the buffer start; writers
//!   8-align it), stride (bytes per entry) — `u32` each;
//! - section kinds: 1 data (the bytes spans point into, stride 1), 2 events
//!   (48), 3 headers (16), 4 streams (8), 5 outputs (40), 6 routes (8),
//!   7 errors (12). Readers skip kinds they do not know and read the known
//!   prefix of entries longer than they know: both sides can grow.
//!
//! Entries (offsets in bytes): an event is key offset, key length
//! (`0xffff_ffff` = no key), value offset, value length, first header, header
//! count, stream (`u32` at 0..28), partition (`s32` at 28), timestamp ms
//! (`s64` at 32), source offset (`s64` at 40). A header: name offset, name
//! length, value offset, value length. A stream or route: name offset, name
//! length. An output: input index, route (`0xffff_ffff` = default), key
//! offset, key length, value offset, value length, first header, header count
//! (`u32` at 0..32), timestamp ms (`s64` at 32). An error: input index,
//! message offset, message length.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Result;
use wasmtime::Store;
use wasmtime::component::Component;

use crate::decode::{self, DecodeError, NONE, Names, malformed};
use crate::engine::{Host, StoreState, arm};
use crate::model::{Event, Header, Output, Processed};
use crate::runner::{Op, Runner};

mod bindings {
    wasmtime::component::bindgen!({ path: "wit", world: "weir-bench:layout/packed" });
}

use bindings::Packed;

pub const FORMAT: u32 = 1;
pub const DATA: u32 = 1;
pub const EVENTS: u32 = 2;
pub const HEADERS: u32 = 3;
pub const STREAMS: u32 = 4;
pub const OUTPUTS: u32 = 5;
pub const ROUTES: u32 = 6;
pub const ERRORS: u32 = 7;

pub const EVENT: usize = 48;
pub const HEADER: usize = 16;
pub const SPAN: usize = 8;
pub const OUTPUT: usize = 40;
pub const ERROR: usize = 12;
const DIR_ENTRY: usize = 16;

#[inline]
fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Pads `buf` with zeros to a multiple of 8.
#[inline]
fn align8(buf: &mut Vec<u8>) {
    buf.resize(buf.len().next_multiple_of(8), 0);
}

/// Writes the header and directory at the start of `buf`, which has room.
fn put_directory(buf: &mut [u8], sections: &[(u32, usize, usize, usize)]) {
    put_u32(buf, 0, FORMAT);
    put_u32(buf, 4, sections.len() as u32);
    for (i, &(kind, count, offset, stride)) in sections.iter().enumerate() {
        let at = 8 + i * DIR_ENTRY;
        for (j, w) in [kind, count as u32, offset as u32, stride as u32]
            .into_iter()
            .enumerate()
        {
            put_u32(buf, at + 4 * j, w);
        }
    }
}

/// Appends `bytes` to the data section (which starts at `data_at`);
/// returns (offset in the section, len).
#[inline]
fn push(buf: &mut Vec<u8>, data_at: usize, bytes: &[u8]) -> (u32, u32) {
    let offset = (buf.len() - data_at) as u32;
    buf.extend_from_slice(bytes);
    (offset, bytes.len() as u32)
}

/// Reusable encoder: the buffer keeps its capacity from call to call.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
    streams: Vec<Arc<str>>,
}

impl Encoder {
    /// Layout written: header and directory, events, headers, data, streams.
    pub fn encode(&mut self, events: &[Event]) -> &[u8] {
        let n = events.len();
        let h: usize = events.iter().map(|e| e.headers.len()).sum();
        let bytes: usize = events
            .iter()
            .map(|e| e.value.len() + e.key.as_ref().map_or(0, |k| k.len()))
            .sum();
        let events_at = 8 + 4 * DIR_ENTRY;
        let headers_at = events_at + n * EVENT;
        let data_at = headers_at + h * HEADER;
        let buf = &mut self.buf;
        buf.clear();
        buf.reserve(data_at + bytes + h * 32 + 64);
        buf.resize(data_at, 0);
        self.streams.clear();
        let mut last_stream: Option<(&Arc<str>, u32)> = None;
        let mut header = 0usize;
        for (i, ev) in events.iter().enumerate() {
            let stream = match last_stream {
                Some((s, i)) if Arc::ptr_eq(s, &ev.position.stream) => i,
                _ => {
                    let found = self.streams.iter().position(|s| **s == *ev.position.stream);
                    let i = match found {
                        Some(i) => i as u32,
                        None => {
                            self.streams.push(ev.position.stream.clone());
                            (self.streams.len() - 1) as u32
                        }
                    };
                    last_stream = Some((&ev.position.stream, i));
                    i
                }
            };
            let (key_offset, key_len) = match &ev.key {
                Some(k) => push(buf, data_at, k),
                None => (0, NONE),
            };
            let (value_offset, value_len) = push(buf, data_at, &ev.value);
            let first_header = header as u32;
            for hd in &ev.headers {
                let (no, nl) = push(buf, data_at, hd.name.as_bytes());
                let (vo, vl) = push(buf, data_at, &hd.value);
                let mut entry = [0u8; HEADER];
                for (slot, w) in entry.chunks_exact_mut(4).zip([no, nl, vo, vl]) {
                    slot.copy_from_slice(&w.to_le_bytes());
                }
                let at = headers_at + header * HEADER;
                buf[at..at + HEADER].copy_from_slice(&entry);
                header += 1;
            }
            let mut entry = [0u8; EVENT];
            let words = [
                key_offset,
                key_len,
                value_offset,
                value_len,
                first_header,
                ev.headers.len() as u32,
                stream,
                ev.position.partition as u32,
            ];
            for (slot, w) in entry.chunks_exact_mut(4).zip(words) {
                slot.copy_from_slice(&w.to_le_bytes());
            }
            entry[32..40].copy_from_slice(&ev.timestamp_ms.to_le_bytes());
            entry[40..48].copy_from_slice(&ev.position.offset.to_le_bytes());
            let at = events_at + i * EVENT;
            buf[at..at + EVENT].copy_from_slice(&entry);
        }
        let mut names = Vec::with_capacity(self.streams.len());
        for s in &self.streams {
            names.push(push(buf, data_at, s.as_bytes()));
        }
        let data_len = buf.len() - data_at;
        align8(buf);
        let streams_at = buf.len();
        for (offset, len) in names {
            buf.extend_from_slice(&offset.to_le_bytes());
            buf.extend_from_slice(&len.to_le_bytes());
        }
        put_directory(
            buf,
            &[
                (EVENTS, n, events_at, EVENT),
                (HEADERS, h, headers_at, HEADER),
                (DATA, data_len, data_at, 1),
                (STREAMS, self.streams.len(), streams_at, SPAN),
            ],
        );
        &self.buf
    }
}

/// The little-endian `u32` at byte `at` of a fixed-size entry.
#[inline(always)]
fn word<const N: usize>(e: &[u8; N], at: usize) -> u32 {
    u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]])
}

/// One section: `count` entries of `stride` bytes.
#[derive(Clone, Copy)]
struct Section<'a> {
    bytes: &'a [u8],
    stride: usize,
}

impl<'a> Section<'a> {
    /// The known prefix (`N` bytes) of every entry.
    fn entries<const N: usize>(self) -> impl Iterator<Item = &'a [u8; N]> {
        // `stride >= N` was checked when the directory was read.
        self.bytes
            .chunks_exact(self.stride.max(1))
            .filter_map(|e| e.first_chunk::<N>())
    }

    fn len(self) -> usize {
        self.bytes.len() / self.stride.max(1)
    }
}

/// Reads the directory: the sections of the kinds in `known` (kind, least
/// stride), each checked to lie inside `buf`; absent kinds are empty.
fn directory<'a, const K: usize>(
    buf: &'a [u8],
    known: [(u32, usize); K],
) -> Result<[Section<'a>; K], DecodeError> {
    let Some(head) = buf.first_chunk::<8>() else {
        return Err(malformed(format!(
            "{}-byte output has no header",
            buf.len()
        )));
    };
    if word(head, 0) != FORMAT {
        return Err(malformed(format!("unknown format {}", word(head, 0))));
    }
    let count = word(head, 4) as usize;
    let dir = buf.get(8..8 + count * DIR_ENTRY).ok_or_else(|| {
        malformed(format!(
            "directory of {count} sections is outside the buffer"
        ))
    })?;
    // An absent section is empty, with the stride its kind needs (so that a
    // range into it is checked like any other).
    let mut found = known.map(|(_, stride)| Section { bytes: &[], stride });
    let mut seen = [false; K];
    for e in dir.chunks_exact(DIR_ENTRY) {
        let Some(e) = e.first_chunk::<DIR_ENTRY>() else {
            continue;
        };
        let kind = word(e, 0);
        let Some(k) = known.iter().position(|&(known, _)| known == kind) else {
            continue; // a section this reader does not know
        };
        let (count, offset, stride) = (
            word(e, 4) as usize,
            word(e, 8) as usize,
            word(e, 12) as usize,
        );
        if stride < known[k].1 || seen[k] {
            return Err(malformed(format!(
                "section {kind}: stride {stride} under {} or repeated",
                known[k].1
            )));
        }
        // u32 × u32 + u32: cannot overflow a 64-bit usize.
        let bytes = buf.get(offset..offset + count * stride).ok_or_else(|| {
            malformed(format!(
                "section {kind} ({count} × {stride} bytes at {offset}) is outside the {}-byte buffer",
                buf.len()
            ))
        })?;
        found[k] = Section { bytes, stride };
        seen[k] = true;
    }
    Ok(found)
}

/// Decodes an output buffer for `inputs`, checking every index and span.
pub fn decode(out: Vec<u8>, inputs: &[Event]) -> Result<Processed, DecodeError> {
    decode::check_size(out.len())?;
    // The buffer becomes shared: every output's bytes are slices of it.
    let all = Bytes::from(out);
    let [data, outputs, headers, routes, errors] = directory(
        &all,
        [
            (DATA, 1),
            (OUTPUTS, OUTPUT),
            (HEADERS, HEADER),
            (ROUTES, SPAN),
            (ERRORS, ERROR),
        ],
    )?;
    if data.stride != 1 {
        return Err(malformed(format!(
            "data section stride {}, not 1",
            data.stride
        )));
    }
    let data = all.slice_ref(data.bytes);
    let mut route_names = Vec::with_capacity(routes.len());
    for r in routes.entries::<SPAN>() {
        let name = decode::slice(&data, word(r, 0), word(r, 4), "route")?;
        let name = std::str::from_utf8(&name).map_err(|_| malformed("a route is not UTF-8"))?;
        route_names.push(Arc::<str>::from(name));
    }
    let mut names = Names::default();
    let mut result = Vec::with_capacity(outputs.len());
    for o in outputs.entries::<OUTPUT>() {
        let input_index = word(o, 0);
        let input = decode::input(inputs, input_index)?;
        let route = decode::route(&route_names, word(o, 4))?;
        let key = match word(o, 12) {
            NONE => None,
            len => Some(decode::slice(&data, word(o, 8), len, "key")?),
        };
        let value = decode::slice(&data, word(o, 16), word(o, 20), "value")?;
        let (first, count) = (word(o, 24) as usize, word(o, 28) as usize);
        let hs = first
            .checked_mul(headers.stride)
            .zip((first + count).checked_mul(headers.stride))
            .and_then(|(start, end)| headers.bytes.get(start..end))
            .ok_or_else(|| {
                malformed(format!(
                    "header range {first}..{} is outside its {}-entry table",
                    first + count,
                    headers.len()
                ))
            })?;
        let mut event_headers = Vec::with_capacity(hs.len() / headers.stride.max(1));
        for h in (Section {
            bytes: hs,
            stride: headers.stride,
        })
        .entries::<HEADER>()
        {
            event_headers.push(Header {
                name: names.get(decode::slice(&data, word(h, 0), word(h, 4), "header name")?)?,
                value: decode::slice(&data, word(h, 8), word(h, 12), "header value")?,
            });
        }
        let timestamp_ms =
            i64::from_le_bytes([o[32], o[33], o[34], o[35], o[36], o[37], o[38], o[39]]);
        result.push(Output {
            input: input_index,
            route,
            event: Event {
                key,
                value,
                timestamp_ms,
                headers: event_headers,
                position: input.position.clone(),
            },
        });
    }
    let mut failed = Vec::with_capacity(errors.len());
    for e in errors.entries::<ERROR>() {
        let message = decode::slice(&data, word(e, 4), word(e, 8), "error message")?;
        failed.push((word(e, 0), String::from_utf8_lossy(&message).into_owned()));
    }
    let errors = decode::errors(failed, inputs.len())?;
    Ok(Processed {
        outputs: result,
        errors,
    })
}

pub struct PackedRunner {
    store: Store<StoreState>,
    guest: Packed,
    encoder: Encoder,
}

impl PackedRunner {
    pub fn new(host: &Host, component: &Component) -> Result<Self> {
        let mut store = host.store();
        let guest = Packed::instantiate(&mut store, component, &host.linker)?;
        Ok(Self {
            store,
            guest,
            encoder: Encoder::default(),
        })
    }

    fn call_raw(&mut self, op: Op, events: &[Event]) -> Result<Vec<u8>> {
        arm(&mut self.store);
        let batch = self.encoder.encode(events);
        let t = self.guest.weir_bench_layout_packed_transformer();
        Ok(match op {
            Op::Passthrough => t.call_passthrough(&mut self.store, batch)?,
            Op::Upper => t.call_upper(&mut self.store, batch)?,
            Op::DropAll => t.call_drop_all(&mut self.store, batch)?,
        })
    }
}

impl Runner for PackedRunner {
    fn name(&self) -> &'static str {
        "packed"
    }

    fn encode(&mut self, events: &[Event]) -> usize {
        self.encoder.encode(events).len()
    }

    fn call(&mut self, op: Op, events: &[Event]) -> Result<usize> {
        Ok(self.call_raw(op, events)?.len())
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

    const DATA_BYTES: &[u8] = b"VALUEnamevalue";

    /// An output buffer laid out the way the guest writes one: header,
    /// directory, data, then the tables.
    fn buffer(outputs: &[[u32; 8]], headers: &[[u32; 4]]) -> Vec<u8> {
        let head = 8 + 5 * DIR_ENTRY;
        let mut b = vec![0u8; head];
        b.extend_from_slice(DATA_BYTES);
        align8(&mut b);
        let outputs_at = b.len();
        for o in outputs {
            for w in o {
                b.extend_from_slice(&w.to_le_bytes());
            }
            b.extend_from_slice(&7i64.to_le_bytes());
        }
        let headers_at = b.len();
        for h in headers {
            for w in h {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        let end = b.len();
        put_directory(
            &mut b,
            &[
                (DATA, DATA_BYTES.len(), head, 1),
                (OUTPUTS, outputs.len(), outputs_at, OUTPUT),
                (HEADERS, headers.len(), headers_at, HEADER),
                (ROUTES, 0, end, SPAN),
                (ERRORS, 0, end, ERROR),
            ],
        );
        b
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn encodes_directory_tables_and_data() {
        let inputs = events(3);
        let mut enc = Encoder::default();
        let b = enc.encode(&inputs).to_vec();
        assert_eq!((u32_at(&b, 0), u32_at(&b, 4)), (FORMAT, 4));
        let section = |kind: u32| {
            (0..4)
                .map(|i| 8 + 16 * i)
                .find(|&at| u32_at(&b, at) == kind)
                .map(|at| {
                    (
                        u32_at(&b, at + 4),
                        u32_at(&b, at + 8) as usize,
                        u32_at(&b, at + 12),
                    )
                })
                .expect("section present")
        };
        let (n, events_at, stride) = section(EVENTS);
        assert_eq!((n, stride), (3, EVENT as u32));
        let (_, data_at, _) = section(DATA);
        let e = events_at + 2 * EVENT;
        let value = &b[data_at + u32_at(&b, e + 8) as usize..][..u32_at(&b, e + 12) as usize];
        assert_eq!(value, &inputs[2].value[..]);
        assert_eq!(
            (u32_at(&b, e + 16), u32_at(&b, e + 20), u32_at(&b, e + 28)),
            (2, 1, 2)
        );
        let (streams, streams_at, _) = section(STREAMS);
        assert_eq!((streams, streams_at % 8, events_at % 8), (1, 0, 0));
        let name =
            &b[data_at + u32_at(&b, streams_at) as usize..][..u32_at(&b, streams_at + 4) as usize];
        assert_eq!(name, b"bench");
    }

    #[test]
    fn decodes_what_the_guest_writes() {
        let inputs = events(2);
        let out = buffer(&[[1, NONE, 0, NONE, 0, 5, 0, 1]], &[[5, 4, 9, 5]]);
        let p = decode(out, &inputs).expect("decodes");
        let o = &p.outputs[0];
        assert_eq!((o.input, &o.route, &o.event.key), (1, &None, &None));
        assert_eq!(
            (&o.event.value[..], o.event.timestamp_ms),
            (&b"VALUE"[..], 7)
        );
        assert_eq!(&*o.event.headers[0].name, "name");
        assert_eq!(o.event.position, inputs[1].position);
    }

    #[test]
    fn skips_unknown_sections_and_reads_longer_entries() {
        let inputs = events(1);
        let mut b = buffer(&[[0, NONE, 0, NONE, 0, 5, 0, 0]], &[]);
        // Section 0 (data) becomes an unknown kind 99 and a longer, 48-byte
        // output entry replaces section 1: readers skip and prefix-read.
        put_u32(&mut b, 8, 99);
        b.extend_from_slice(DATA_BYTES);
        let data_at = b.len() - DATA_BYTES.len();
        let entries_at = b.len();
        for w in [0, NONE, 0, NONE, 0, 5, 0, 0] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&9i64.to_le_bytes());
        b.extend_from_slice(&[0xee; 8]);
        let end = b.len();
        put_directory(
            &mut b,
            &[
                (99, 1, end, 1),
                (OUTPUTS, 1, entries_at, 48),
                (HEADERS, 0, end, HEADER),
                (DATA, DATA_BYTES.len(), data_at, 1),
                (ERRORS, 0, end, ERROR),
            ],
        );
        let p = decode(b, &inputs).expect("decodes");
        assert_eq!(
            (
                &p.outputs[0].event.value[..],
                p.outputs[0].event.timestamp_ms
            ),
            (&b"VALUE"[..], 9)
        );
    }

    #[test]
    fn refuses_out_of_range_indexes_and_sections() {
        let inputs = events(1);
        let ok = [0, NONE, 0, NONE, 0, 5, 0, 0];
        let h = [[5, 4, 9, 5]];
        let mut truncated = buffer(&[ok], &h);
        truncated.truncate(truncated.len() - 1);
        let mut far = buffer(&[ok], &h);
        put_u32(&mut far, 8 + 16 + 8, u32::MAX); // outputs offset
        let mut short_stride = buffer(&[ok], &h);
        put_u32(&mut short_stride, 8 + 16 + 12, 8);
        let mut twice = buffer(&[ok], &h);
        put_u32(&mut twice, 8 + 32, OUTPUTS); // headers section claims to be outputs
        let mut data_stride = buffer(&[ok], &h);
        put_u32(&mut data_stride, 8 + 12, 2);
        let mut format = buffer(&[], &[]);
        put_u32(&mut format, 0, 2);
        let mut directory = buffer(&[], &[]);
        put_u32(&mut directory, 4, u32::MAX);
        let cases = [
            ("input", buffer(&[[1, NONE, 0, NONE, 0, 5, 0, 0]], &h)),
            ("route", buffer(&[[0, 0, 0, NONE, 0, 5, 0, 0]], &h)),
            ("key", buffer(&[[0, NONE, 10, 5, 0, 5, 0, 0]], &h)),
            (
                "value",
                buffer(&[[0, NONE, 0, NONE, u32::MAX, 5, 0, 0]], &h),
            ),
            ("headers", buffer(&[[0, NONE, 0, NONE, 0, 5, 0, 2]], &h)),
            (
                "huge header range",
                buffer(&[[0, NONE, 0, NONE, 0, 5, u32::MAX, u32::MAX]], &h),
            ),
            (
                "header span",
                buffer(&[[0, NONE, 0, NONE, 0, 5, 0, 1]], &[[5, 4, 9, 6]]),
            ),
            ("truncated section", truncated),
            ("section offset", far),
            ("stride", short_stride),
            ("repeated section", twice),
            ("data stride", data_stride),
            ("format", format),
            ("directory", directory),
            ("no header", vec![1, 0, 0]),
        ];
        for (what, out) in cases {
            assert!(
                matches!(decode(out, &inputs), Err(DecodeError::Malformed(_))),
                "{what} accepted"
            );
        }
    }

    #[test]
    fn random_buffers_never_panic() {
        let inputs = events(4);
        let mut rng = Rng(0xbac3d);
        let mut refused = 0;
        for _ in 0..20_000 {
            let mut b = buffer(&[[0, NONE, 0, NONE, 0, 5, 0, 1]], &[[5, 4, 9, 5]]);
            // Overwrite a few random words: directory, table entries.
            for _ in 0..(1 + rng.next() % 3) {
                let at = (rng.next() as usize % (b.len() / 4)) * 4;
                put_u32(&mut b, at, rng.word());
            }
            if rng.next().is_multiple_of(4) {
                b.truncate(rng.next() as usize % b.len());
            }
            refused += usize::from(decode(b, &inputs).is_err());
        }
        assert!(refused > 5_000, "most corrupted buffers are refused");
    }
}
