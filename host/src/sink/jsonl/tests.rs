use super::decode::{DecodeError, decode_envelope};
use super::*;
use crate::event::{Header, Position};
use std::sync::Arc;

use bytes::Bytes;

fn event(key: Option<&[u8]>, value: &[u8]) -> Event {
    let mut e = Event::new(
        Bytes::copy_from_slice(value),
        1_735_689_600_123,
        Position::new(Arc::from("in/\"quoted\".jsonl"), 3, 42),
    );
    e.key = key.map(Bytes::copy_from_slice);
    e
}

fn encode(e: &Event) -> String {
    let mut out = Vec::new();
    encode_envelope(e, &mut out);
    String::from_utf8(out).expect("envelopes are UTF-8")
}

fn roundtrip(e: &Event) {
    let line = encode(e);
    assert!(line.ends_with('\n'));
    assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
    // Every envelope is valid JSON.
    serde_json::from_str::<serde_json::Value>(&line).expect("valid JSON");
    let decoded = decode_envelope(line.as_bytes()).expect("decodes");
    let back = decoded.into_event(Position::new(Arc::from("x"), 0, 0));
    assert_eq!(&back, e, "line: {line}");
}

#[test]
fn roundtrips_exactly() {
    let values: &[&[u8]] = &[
        b"{\"amount\":12.5,\"tags\":[\"a\",\"b\"]}",
        b"{\"spaced\": [1, 2 ,3]}",
        b"[1,2,3]",
        b"42",
        b"-1.5e3",
        b"true",
        b"null",
        b"\"a JSON string literal\"",
        b"plain text, not JSON",
        b"with \"quotes\" and \\ and \t tab and \x01 control",
        b"",
        b" {\"leading\":\"space\"}",
        b"{\n  \"pretty\": true\n}",
        b"{\"base64\":\"aGk=\"}",
        b"{\"base64\":5}",
        b"\xff\xfe binary \x00",
        "unicode é ✓ 😀".as_bytes(),
        b"{\"unterminated\":",
        // JSON by the grammar, out of an f64's range: written as strings,
        // so every envelope stays readable by serde_json::Value (found by
        // the kafka_record fuzz target).
        b"1e999",
        b"{\"n\":-1e400}",
        b"[1,2e309]",
    ];
    for value in values {
        roundtrip(&event(None, value));
    }
    for key in [&b""[..], b"card-7", b"\x80\x81", b"{\"k\":1}"] {
        roundtrip(&event(Some(key), b"{}"));
    }
    let mut e = event(Some(b"k"), b"{\"x\":1}");
    e.headers.push(Header::new("weir.error", "bad \"input\"\n"));
    e.headers
        .push(Header::new("bin", Bytes::from_static(b"\xc3\x28")));
    e.headers.push(Header::new("dup", "1"));
    e.headers.push(Header::new("dup", "2"));
    roundtrip(&e);
}

#[test]
fn a_number_out_of_range_is_written_as_a_string() {
    assert_eq!(
        encode(&event(None, b"{\"n\":1e999}")),
        "{\"key\":null,\"value\":\"{\\\"n\\\":1e999}\",\"timestamp\":1735689600123,\"headers\":{},\
         \"source\":{\"stream\":\"in/\\\"quoted\\\".jsonl\",\"partition\":3,\"offset\":42}}\n"
    );
}

#[test]
fn encodes_the_documented_shape() {
    let mut e = event(Some(b"k1"), b"{\"a\":1}");
    e.headers.push(Header::new("h", "v"));
    assert_eq!(
        encode(&e),
        "{\"key\":\"k1\",\"value\":{\"a\":1},\"timestamp\":1735689600123,\"headers\":{\"h\":\"v\"},\
         \"source\":{\"stream\":\"in/\\\"quoted\\\".jsonl\",\"partition\":3,\"offset\":42}}\n"
    );
    let text = encode(&event(None, b"hello"));
    assert!(
        text.starts_with("{\"key\":null,\"value\":\"hello\","),
        "{text}"
    );
    let bin = encode(&event(Some(b"\xff"), b"\xff"));
    assert!(
        bin.starts_with("{\"key\":{\"base64\":\"/w==\"},\"value\":{\"base64\":\"/w==\"},"),
        "{bin}"
    );
    let mut line = Vec::new();
    OutputFormat::Value.encode(&event(None, b"raw"), &mut line);
    assert_eq!(line, b"raw\n");
}

#[test]
fn decode_defaults_and_errors() {
    let d = decode_envelope(b"{\"value\":{\"a\":1}}\n").expect("minimal envelope");
    assert_eq!(d.key, None);
    assert_eq!(&d.value[..], b"{\"a\":1}");
    assert_eq!(d.timestamp_ms, None);
    assert_eq!(d.position, None);
    assert!(decode_envelope(b"{\"value\":1,\"extra\":2}").is_err());
    assert!(decode_envelope(b"not json").is_err());
    assert!(matches!(
        decode_envelope(b"{\"value\":{\"base64\":\"!!\"}}"),
        Err(DecodeError::Base64 { .. })
    ));
}
