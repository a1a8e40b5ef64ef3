//! The host-side events the layouts move, shaped like weir's own
//! (`host/src/event.rs`): shared `Bytes` for keys, values and header values,
//! an interned header name, and the source position. Also the bench's input
//! events and the native reference map.

use std::sync::Arc;

use bytes::Bytes;

/// Size of each event's value.
pub const EVENT_SIZE: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: Arc<str>,
    pub value: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub stream: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
    pub position: Position,
}

/// One output of a call, as weir's codec returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Index of the input event it derives from.
    pub input: u32,
    /// `None`: the default output.
    pub route: Option<Arc<str>>,
    pub event: Event,
}

/// The decoded result of one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processed {
    pub outputs: Vec<Output>,
    /// (input index, message).
    pub errors: Vec<(u32, String)>,
}

/// `n` ~200-byte JSON events (the `throughput` bench's), each with a key and
/// one header, on four partitions of one stream.
pub fn events(n: usize) -> Vec<Event> {
    let stream: Arc<str> = "bench".into();
    let trace: Arc<str> = "trace-id".into();
    (0..n)
        .map(|i| {
            let head = format!("{{\"id\":{i},\"user\":\"u{}\",\"payload\":\"", i % 977);
            let pad = EVENT_SIZE - head.len() - 2;
            let value = format!("{head}{}\"}}", &"abcdefghij".repeat(pad / 10 + 1)[..pad]);
            Event {
                key: Some(Bytes::from(format!("u{}", i % 977))),
                value: Bytes::from(value),
                timestamp_ms: 1_764_000_000_000 + i as i64,
                headers: vec![Header {
                    name: trace.clone(),
                    value: Bytes::from(format!("{:016x}", i as u64 * 0x9e37_79b9)),
                }],
                position: Position {
                    stream: stream.clone(),
                    partition: (i % 4) as i32,
                    offset: i as i64,
                },
            }
        })
        .collect()
}

/// The native reference: the same ASCII-uppercase map, compiled into the host
/// (the `throughput` bench's "native").
pub fn native_upper(ev: &Event) -> Event {
    let mut v = ev.value.to_vec();
    v.make_ascii_uppercase();
    Event {
        value: Bytes::from(v),
        ..ev.clone()
    }
}
