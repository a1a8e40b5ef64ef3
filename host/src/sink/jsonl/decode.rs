//! The envelope decoder the tests use to read back what a sink wrote:
//! exactly the key, value and headers that were encoded.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::Base64Object;
use crate::event::{Event, Header, Position, now_ms};

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
            provenance: Default::default(),
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
