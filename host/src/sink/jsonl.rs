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
//! The tests read envelopes back (`decode`) to show that the key, value and
//! headers come back exactly. Format `value` writes the value's bytes and a
//! newline, nothing else.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::event::Event;

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
    for (i, header) in event.all_headers().enumerate() {
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
    if crate::json_check::check_str(text).is_err() {
        return false;
    }
    static BASE64_KEY: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"base64\""));
    !(first == b'{'
        && BASE64_KEY.find(value).is_some()
        && serde_json::from_str::<Base64Object>(text).is_ok())
}

/// `{"base64":"..."}`: how bytes that are not text are written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Base64Object {
    /// The bytes, in standard base64. The encoder only checks that a value
    /// has this shape; the tests' decoder reads it.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "read by the tests' decoder only")
    )]
    pub(crate) base64: String,
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

/// Reads envelopes back, for the tests of what sinks write.
#[cfg(test)]
pub(crate) mod decode;

#[cfg(test)]
mod tests;
