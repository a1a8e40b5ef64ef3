//! A Kafka record → an event (`source/kafka/record.rs`, what the consumer
//! thread does with every record), on records whose key, value, headers
//! (names not UTF-8 included: Kafka does not check them) and timestamps a
//! producer chose; then that event as a sink writes it (the JSON envelope of
//! `sink/jsonl.rs`), read back by an independent reader.
//!
//! Checked: the event carries the key (`None` apart from empty), the value
//! (a tombstone: empty), the timestamp (none: the ingestion time, asked for
//! only then), every header in order (a missing value: empty; a name that is
//! not UTF-8: read lossily), the topic, partition and offset, one shared name
//! per topic; its envelope is one line of JSON that gives back exactly the
//! key, value, timestamp, headers and position.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use weir::event::Event;
use weir::fuzzing::{RecordParts, TopicNames, record_to_event};

#[derive(Arbitrary, Debug)]
struct Record {
    /// One of a few topics, or one of the case's own.
    topic: u8,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp_ms: Option<i64>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Arbitrary, Debug)]
struct Case {
    topics: Vec<String>,
    records: Vec<Record>,
}

const TOPICS: [&str; 3] = ["in", "orders.v1", "a_b-C"];
const NOW: i64 = 1_733_000_000_123;

fuzz_target!(|case: Case| {
    let mut names = TopicNames::default();
    let mut seen: Vec<Arc<str>> = Vec::new();
    for r in &case.records {
        let n = TOPICS.len() + case.topics.len();
        let j = usize::from(r.topic) % n;
        let topic = match j.checked_sub(TOPICS.len()) {
            None => TOPICS[j],
            Some(k) => case.topics[k].as_str(),
        };
        let parts = RecordParts {
            topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref(),
            payload: r.payload.as_deref(),
            timestamp_ms: r.timestamp_ms,
        };
        let headers = r.headers.iter().map(|(n, v)| (&n[..], v.as_deref()));
        let mut asked = false;
        let e = record_to_event(parts, headers, &mut names, || {
            asked = true;
            NOW
        });
        assert_eq!(e.key.as_deref(), r.key.as_deref());
        assert_eq!(&e.value[..], r.payload.as_deref().unwrap_or_default());
        assert_eq!(e.timestamp_ms, r.timestamp_ms.unwrap_or(NOW));
        assert_eq!(
            asked,
            r.timestamp_ms.is_none(),
            "the clock asked only when needed"
        );
        assert_eq!(e.headers.len(), r.headers.len());
        for (h, (n, v)) in e.headers.iter().zip(&r.headers) {
            assert_eq!(&*h.name, String::from_utf8_lossy(n));
            assert_eq!(&h.value[..], v.as_deref().unwrap_or_default());
        }
        assert_eq!(&*e.position.stream, topic);
        assert_eq!(
            (e.position.partition, e.position.offset),
            (r.partition, r.offset)
        );
        match seen.iter().find(|s| ***s == *topic) {
            Some(s) => assert!(Arc::ptr_eq(s, &e.position.stream), "one name per topic"),
            None => seen.push(e.position.stream.clone()),
        }
        envelope_round_trip(&e);
    }
});

/// What a sink writes for `e` reads back as `e`.
fn envelope_round_trip(e: &Event) {
    let mut line = Vec::new();
    weir::sink::encode_envelope(e, &mut line);
    assert_eq!(line.last(), Some(&b'\n'));
    let body = &line[..line.len() - 1];
    assert!(!body.contains(&b'\n') && !body.contains(&b'\r'), "one line");
    let text = std::str::from_utf8(body).expect("an envelope is UTF-8");
    let env: Envelope<'_> = serde_json::from_str(text).expect("an envelope is JSON");
    assert_eq!(
        env.key.map(|k| k.bytes()).as_deref(),
        e.key.as_deref(),
        "key"
    );
    assert_eq!(
        value_bytes(env.value.get()),
        &e.value[..],
        "value of {text}"
    );
    assert_eq!(env.timestamp, e.timestamp_ms);
    assert_eq!(env.headers.0.len(), e.headers.len(), "headers of {text}");
    for ((name, value), h) in env.headers.0.iter().zip(&e.headers) {
        assert_eq!(name.as_str(), &*h.name);
        assert_eq!(value.bytes(), &h.value[..], "header {name}");
    }
    assert_eq!(env.source.stream, &*e.position.stream);
    assert_eq!(env.source.partition, e.position.partition);
    assert_eq!(env.source.offset, e.position.offset);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    key: Option<Bytes>,
    #[serde(borrow)]
    value: &'a RawValue,
    timestamp: i64,
    headers: Pairs,
    source: Src,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Src {
    stream: String,
    partition: i32,
    offset: i64,
}

/// A string (its UTF-8 bytes) or `{"base64": "..."}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Bytes {
    Text(String),
    Base64 { base64: String },
}

impl Bytes {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Bytes::Text(s) => s.as_bytes().to_vec(),
            Bytes::Base64 { base64 } => BASE64.decode(base64).expect("valid base64"),
        }
    }
}

/// An object's members in order, repeats kept.
struct Pairs(Vec<(String, Bytes)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Bytes>()? {
                    out.push(entry);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The value's bytes from its envelope field: a string holds them as text,
/// `{"base64": ...}` (that one member, as a reader that keeps the last of
/// repeated members sees it too) in base64; any other JSON is the value
/// itself, as it was.
fn value_bytes(raw: &str) -> Vec<u8> {
    let parsed: Value = serde_json::from_str(raw).expect("the value field is JSON");
    match &parsed {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(m) if m.len() == 1 && m.get("base64").is_some_and(Value::is_string) => {
            let b64 = m.get("base64").and_then(Value::as_str).unwrap_or_default();
            BASE64.decode(b64).expect("valid base64")
        }
        _ => raw.as_bytes().to_vec(),
    }
}
