//! The event type plugin functions receive and return.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Where an event was read from: a stream (a topic, a file, `generate`...), a
/// partition and an offset. Read-only: the host tracks provenance itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub(crate) stream: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

impl Position {
    /// The position of an event the plugin created itself: stream `""`,
    /// partition `-1`, offset `-1`.
    pub(crate) fn unknown() -> Self {
        Self {
            stream: Arc::from(""),
            partition: -1,
            offset: -1,
        }
    }

    /// The name of the stream the event was read from (`""` if unknown).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The partition the event was read from (`-1` if unknown).
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The event's offset in its partition (`-1` if unknown).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Whether this is a real source position (the event came from the input).
    pub fn is_known(&self) -> bool {
        self.partition >= 0 || !self.stream.is_empty()
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]@{}", self.stream, self.partition, self.offset)
    }
}

/// One header of an event: a UTF-8 name and a byte value.
pub(crate) type Header = (String, Vec<u8>);

/// An event: an optional key, a value, a timestamp and headers, all owned.
///
/// The events your function receives carry the [`Position`] they were read from
/// and their timestamp. Events you create ([`Event::new`], [`Event::from_json`])
/// have no position and no timestamp of their own: when you return one for an
/// input event, it inherits the input's timestamp unless you set one.
///
/// Header names are case-sensitive; an event may carry the same name twice
/// ([`Event::add_header`]), and [`Event::header`] returns the first.
#[derive(Clone, PartialEq)]
pub struct Event {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
    /// `None`: not set, inherits the input's timestamp on output.
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) headers: Vec<Header>,
    pub(crate) position: Position,
}

impl Event {
    /// A new event with this value, no key, no headers.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: None,
            value: value.into(),
            timestamp_ms: None,
            headers: Vec::new(),
            position: Position::unknown(),
        }
    }

    /// A new event whose value is `value` serialized as JSON.
    pub fn from_json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        let mut event = Self::new(Vec::new());
        event.set_json(value)?;
        Ok(event)
    }

    // ---- value ----

    /// The value's bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as UTF-8 text, or an error if it is not.
    pub fn value_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.value)
            .map_err(|e| Error::msg(format_args!("event value is not UTF-8: {e}")))
    }

    /// The value, mutable in place (no copy).
    pub fn value_mut(&mut self) -> &mut Vec<u8> {
        &mut self.value
    }

    /// Replaces the value.
    pub fn set_value(&mut self, value: impl Into<Vec<u8>>) {
        self.value = value.into();
    }

    /// Replaces the value (builder style).
    #[must_use]
    pub fn with_value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.set_value(value);
        self
    }

    /// Takes the value out, leaving it empty.
    pub fn take_value(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.value)
    }

    /// The value by value.
    pub fn into_value(self) -> Vec<u8> {
        self.value
    }

    /// Deserializes the value as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value)
            .map_err(|e| Error::msg(format_args!("event value is not the expected JSON: {e}")))
    }

    /// Replaces the value with `value` serialized as JSON (reusing the value's
    /// allocation).
    pub fn set_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut buffer = std::mem::take(&mut self.value);
        buffer.clear();
        match serde_json::to_writer(&mut buffer, value) {
            Ok(()) => {
                self.value = buffer;
                Ok(())
            }
            Err(e) => Err(Error::msg(format_args!("cannot serialize JSON value: {e}"))),
        }
    }

    // ---- key ----

    /// The key's bytes, if the event has a key (`None` and an empty key differ).
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// Sets (`Some`) or removes (`None`) the key.
    pub fn set_key(&mut self, key: Option<Vec<u8>>) {
        self.key = key;
    }

    /// Sets the key (builder style).
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Takes the key out, leaving none.
    pub fn take_key(&mut self) -> Option<Vec<u8>> {
        self.key.take()
    }

    // ---- timestamp ----

    /// Event time, milliseconds since the Unix epoch. `0` for an event you
    /// created and have not given a timestamp (it inherits the input's on output).
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms.unwrap_or(0)
    }

    /// Sets the event time (milliseconds since the Unix epoch).
    pub fn set_timestamp_ms(&mut self, timestamp_ms: i64) {
        self.timestamp_ms = Some(timestamp_ms);
    }

    /// Sets the event time (builder style).
    #[must_use]
    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    // ---- position ----

    /// Where the input event was read from. Events you create report an unknown
    /// position ([`Position::is_known`] is false).
    pub fn position(&self) -> &Position {
        &self.position
    }

    // ---- headers ----

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of the first header named `name`, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Sets header `name` to `value`, replacing every header of that name.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let name = name.into();
        let value = value.into();
        match self.headers.iter().position(|(n, _)| *n == name) {
            Some(first) => {
                self.headers[first].1 = value;
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    let keep = index <= first || *n != name;
                    index += 1;
                    keep
                });
            }
            None => self.headers.push((name, value)),
        }
    }

    /// Sets header `name` (builder style; see [`Event::set_header`]).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Appends a header, keeping any existing header of the same name.
    pub fn add_header(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Removes every header named `name`; returns the value of the first.
    pub fn remove_header(&mut self, name: &str) -> Option<Vec<u8>> {
        let first = self.headers.iter().position(|(n, _)| n == name)?;
        let (_, value) = self.headers.remove(first);
        self.headers.retain(|(n, _)| n != name);
        Some(value)
    }

    /// All headers, in order, as `(name, value)`.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Removes all headers.
    pub fn clear_headers(&mut self) {
        self.headers.clear();
    }
}

impl Default for Event {
    /// An event with an empty value.
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Shows the key, value and header values as (lossy) UTF-8 text.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Event");
        if let Some(key) = &self.key {
            s.field("key", &String::from_utf8_lossy(key));
        }
        s.field("value", &String::from_utf8_lossy(&self.value));
        if let Some(ts) = self.timestamp_ms {
            s.field("timestamp_ms", &ts);
        }
        if !self.headers.is_empty() {
            let headers: Vec<(&str, Cow<'_, str>)> = self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v)))
                .collect();
            s.field("headers", &headers);
        }
        if self.position.is_known() {
            s.field("position", &self.position);
        }
        s.finish()
    }
}

/// An event a `flat_map` or `batch` function emits, with the output it goes to.
#[derive(Clone, PartialEq, Debug)]
pub struct Output {
    pub(crate) route: Option<Cow<'static, str>>,
    pub(crate) event: Event,
}

impl Output {
    /// The event, to the default output (the next stage or the default sink).
    pub fn new(event: Event) -> Self {
        Self { route: None, event }
    }

    /// The event, to the named output `route` (declared in the pipeline file).
    /// A `&'static str` route costs no allocation.
    pub fn to(route: impl Into<Cow<'static, str>>, event: Event) -> Self {
        Self {
            route: Some(route.into()),
            event,
        }
    }

    /// The named output, or `None` for the default output.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event, mutable.
    pub fn event_mut(&mut self) -> &mut Event {
        &mut self.event
    }

    /// The event by value.
    pub fn into_event(self) -> Event {
        self.event
    }
}

impl From<Event> for Output {
    /// [`Output::new`]: the default output.
    fn from(event: Event) -> Self {
        Self::new(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Txn {
        id: u32,
        amount: f64,
    }

    #[test]
    fn json_round_trip() {
        let ev = Event::from_json(&Txn { id: 1, amount: 2.5 }).unwrap();
        assert_eq!(ev.value(), br#"{"id":1,"amount":2.5}"#);
        assert_eq!(ev.json::<Txn>().unwrap(), Txn { id: 1, amount: 2.5 });
        assert!(!ev.position().is_known());
        assert_eq!(ev.timestamp_ms(), 0);
        assert_eq!(ev.timestamp_ms, None);
    }

    #[test]
    fn json_errors_are_messages() {
        let ev = Event::new("not json");
        let err = ev.json::<Txn>().unwrap_err();
        assert!(
            err.message()
                .starts_with("event value is not the expected JSON: expected")
        );
        let ev = Event::new(r#"{"id":1}"#);
        let err = ev.json::<Txn>().unwrap_err();
        assert!(err.message().contains("missing field `amount`"), "{err}");
    }

    #[test]
    fn set_json_reuses_the_value() {
        let mut ev = Event::new(Vec::with_capacity(64)).with_key("k");
        ev.set_json(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(ev.value_str().unwrap(), r#"{"a":1}"#);
        assert!(ev.value_mut().capacity() >= 64);
        assert_eq!(ev.key(), Some(&b"k"[..]));
    }

    #[test]
    fn headers() {
        let mut ev = Event::new("v").with_header("a", "1");
        ev.add_header("b", "2");
        ev.add_header("a", "3");
        assert_eq!(ev.header("a"), Some(&b"1"[..]));
        assert_eq!(ev.header_str("b"), Some("2"));
        assert_eq!(ev.header("c"), None);
        ev.set_header("a", "x");
        assert_eq!(
            ev.headers().collect::<Vec<_>>(),
            vec![("a", &b"x"[..]), ("b", &b"2"[..])]
        );
        ev.add_header("b", "4");
        assert_eq!(ev.remove_header("b"), Some(b"2".to_vec()));
        assert_eq!(ev.headers().len(), 1);
        assert_eq!(ev.remove_header("b"), None);
        ev.set_header("bin", vec![0xff]);
        assert_eq!(ev.header_str("bin"), None);
        ev.clear_headers();
        assert_eq!(ev.headers().len(), 0);
    }

    #[test]
    fn key_and_value_accessors() {
        let mut ev = Event::new("abc").with_timestamp_ms(5);
        assert_eq!(ev.key(), None);
        ev.set_key(Some(Vec::new()));
        assert_eq!(ev.key(), Some(&b""[..]));
        assert_eq!(ev.take_key(), Some(Vec::new()));
        ev.value_mut().make_ascii_uppercase();
        assert_eq!(ev.value(), b"ABC");
        assert_eq!(ev.timestamp_ms(), 5);
        let ev = ev.with_value("x");
        assert_eq!(ev.clone().into_value(), b"x");
        assert_eq!(
            format!("{ev:?}"),
            r#"Event { value: "x", timestamp_ms: 5 }"#
        );
    }

    #[test]
    fn outputs() {
        let out = Output::to("alerts", Event::new("x"));
        assert_eq!(out.route(), Some("alerts"));
        assert!(matches!(out.route, Some(Cow::Borrowed(_))));
        let out: Output = Event::new("y").into();
        assert_eq!(out.route(), None);
        assert_eq!(out.event().value(), b"y");
        assert_eq!(
            Output::to(String::from("r"), Event::new("z")).route(),
            Some("r")
        );
    }
}
