//! JSON-lines encodings of events (what `stdout`, `stderr` and `file` sinks
//! write) and the decoder of the envelope.
//!
//! The envelope (format `json`), one line per event:
//!
//! ```json
//! {"key":"k1","value":{"amount":12.5},"timestamp":1735689600000,
//!  "headers":{"weir.error":"..."},"source":{"stream":"generate","partition":0,"offset":7}}
//! ```
//!
//! - `key`: `null` (no key), a string (UTF-8 key) or `{"base64":"..."}`.
//! - `value`: the value itself when it is one JSON document on one line
//!   without surrounding whitespace (objects, arrays, numbers...); otherwise a
//!   string holding the value (UTF-8 text, and also a value that is a JSON
//!   string literal, to keep the two apart); otherwise `{"base64":"..."}`.
//! - `headers`: an object, names in order (a repeated name is repeated); each
//!   value a string or `{"base64":"..."}`.
//!
//! [`decode_envelope`] gives back exactly the encoded key, value and headers.
//! Format `value` writes the value's bytes and a newline, nothing else.

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::event::{Event, Header, Position, now_ms};

/// How a sink writes each event.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// The JSON envelope with key, value, timestamp, headers and source
    /// position (see [`encode_envelope`]).
    #[default]
    Json,
    /// The value's bytes followed by `\n`.
    Value,
}

impl OutputFormat {
    /// Appends one line for `event` to `out`.
    pub fn encode(self, event: &Event, out: &mut Vec<u8>) {
        match self {
            OutputFormat::Json => encode_envelope(event, out),
            OutputFormat::Value => {
                out.extend_from_slice(&event.value);
                out.push(b'\n');
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Value => "value",
        }
    }
}

/// Appends the envelope line of `event` (with its `\n`) to `out`.
pub fn encode_envelope(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"key\":");
    match &event.key {
        None => out.extend_from_slice(b"null"),
        Some(key) => write_bytes(out, key),
    }
    out.extend_from_slice(b",\"value\":");
    if embeddable(&event.value) {
        out.extend_from_slice(&event.value);
    } else {
        write_bytes(out, &event.value);
    }
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(itoa::Buffer::new().format(event.timestamp_ms).as_bytes());
    out.extend_from_slice(b",\"headers\":{");
    for (i, header) in event.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, header.name.as_bytes());
        out.push(b':');
        write_bytes(out, &header.value);
    }
    out.extend_from_slice(b"},\"source\":{\"stream\":");
    let pos = &event.position;
    write_str(out, pos.stream.as_bytes());
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(itoa::Buffer::new().format(pos.partition).as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(itoa::Buffer::new().format(pos.offset).as_bytes());
    out.extend_from_slice(b"}}\n");
}

/// Whether `value` can be embedded as is: one JSON document, on one line,
/// not a string literal, not mistakable for `{"base64":...}`.
fn embeddable(value: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (value.first(), value.last()) else {
        return false;
    };
    if first == b'"' || first.is_ascii_whitespace() || last.is_ascii_whitespace() {
        return false;
    }
    if memchr::memchr2(b'\n', b'\r', value).is_some() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    if serde_json::from_str::<IgnoredAny>(text).is_err() {
        return false;
    }
    static BASE64_KEY: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"base64\""));
    !(first == b'{'
        && BASE64_KEY.find(value).is_some()
        && serde_json::from_str::<Base64Object>(text).is_ok())
}

/// A JSON string if `bytes` is UTF-8, else `{"base64":"..."}`.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if std::str::from_utf8(bytes).is_ok() {
        write_str(out, bytes);
    } else {
        out.extend_from_slice(b"{\"base64\":\"");
        out.extend_from_slice(BASE64.encode(bytes).as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// A JSON string literal of `text` (valid UTF-8).
fn write_str(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// An event read back from its envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedEvent {
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// `None` when the line has no `timestamp`.
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<Header>,
    /// `None` when the line has no `source`.
    pub position: Option<Position>,
}

impl DecodedEvent {
    /// The event, with `fallback` as position when the line had none (and
    /// the current time when it had no timestamp).
    pub fn into_event(self, fallback: Position) -> Event {
        Event {
            key: self.key,
            value: self.value,
            timestamp_ms: self.timestamp_ms.unwrap_or_else(now_ms),
            headers: self.headers,
            position: self.position.unwrap_or(fallback),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid envelope: {field}: invalid base64: {source}")]
    Base64 {
        field: String,
        #[source]
        source: base64::DecodeError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(default)]
    key: Option<BytesRepr>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    headers: HeaderList,
    #[serde(default)]
    source: Option<SourceRepr>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BytesRepr {
    Text(String),
    Binary(Base64Object),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Base64Object {
    base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceRepr {
    stream: String,
    partition: i32,
    offset: i64,
}

/// Headers in order, repeated names kept.
#[derive(Default)]
struct HeaderList(Vec<(String, BytesRepr)>);

impl<'de> Deserialize<'de> for HeaderList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeaderList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of headers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderList, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, BytesRepr>()? {
                    out.push(entry);
                }
                Ok(HeaderList(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl BytesRepr {
    fn into_bytes(self, field: &str) -> Result<Bytes, DecodeError> {
        match self {
            BytesRepr::Text(s) => Ok(Bytes::from(s.into_bytes())),
            BytesRepr::Binary(b) => b.decode(field),
        }
    }
}

impl Base64Object {
    fn decode(self, field: &str) -> Result<Bytes, DecodeError> {
        BASE64
            .decode(self.base64.as_bytes())
            .map(Bytes::from)
            .map_err(|source| DecodeError::Base64 {
                field: field.to_owned(),
                source,
            })
    }
}

/// Reads one envelope line (a trailing newline is fine).
pub fn decode_envelope(line: &[u8]) -> Result<DecodedEvent, DecodeError> {
    let envelope: Envelope<'_> = serde_json::from_slice(line)?;
    let raw = envelope.value.get();
    let value = match raw.as_bytes().first() {
        Some(b'"') => Bytes::from(serde_json::from_str::<String>(raw)?.into_bytes()),
        Some(b'{') => match serde_json::from_str::<Base64Object>(raw) {
            Ok(b) => b.decode("value")?,
            Err(_) => Bytes::copy_from_slice(raw.as_bytes()),
        },
        _ => Bytes::copy_from_slice(raw.as_bytes()),
    };
    let key = envelope.key.map(|k| k.into_bytes("key")).transpose()?;
    let headers = envelope
        .headers
        .0
        .into_iter()
        .map(|(name, value)| {
            let value = value.into_bytes(&format!("headers.{name}"))?;
            Ok(Header::new(name, value))
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(DecodedEvent {
        key,
        value,
        timestamp_ms: envelope.timestamp,
        headers,
        position: envelope
            .source
            .map(|s| Position::new(Arc::from(s.stream), s.partition, s.offset)),
    })
}

#[cfg(test)]
mod tests;
