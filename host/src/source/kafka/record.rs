//! A Kafka record's parts → an event: what the consumer thread does with
//! each record librdkafka hands it, on plain parts (no rdkafka types), so it
//! can be tested and fuzzed without a broker.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, Header, Position};

/// One record as read from the broker. Everything but the topic (which the
/// broker checks) is whatever the producer wrote.
#[derive(Clone, Copy, Debug)]
pub struct RecordParts<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// `None`: a record without a key (not the same as an empty key).
    pub key: Option<&'a [u8]>,
    /// `None`: a tombstone (no value): an empty value.
    pub payload: Option<&'a [u8]>,
    /// The record's create or log-append time, `None` when it has none.
    pub timestamp_ms: Option<i64>,
}

/// The topics seen so far, so that every event of a topic shares one
/// `Arc<str>` (no allocation per record for the stream name).
#[derive(Debug, Default)]
pub struct TopicNames(HashMap<String, Arc<str>>);

impl TopicNames {
    fn get(&mut self, topic: &str) -> Arc<str> {
        match self.0.get(topic) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(topic);
                self.0.insert(topic.to_owned(), t.clone());
                t
            }
        }
    }
}

/// Converts a record to an event (copies key, value and headers).
/// `headers` are the record's (name, value) pairs in order: a header without
/// a value gets an empty value, a name that is not UTF-8 (Kafka does not
/// check) is read lossily (U+FFFD for each invalid sequence). `now_ms` is the
/// ingestion time, for a record without a timestamp.
pub fn record_to_event<'h>(
    record: RecordParts<'_>,
    headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    topics: &mut TopicNames,
    now_ms: impl FnOnce() -> i64,
) -> Event {
    let headers = headers
        .into_iter()
        .map(|(name, value)| {
            let name: Arc<str> = Arc::from(String::from_utf8_lossy(name).as_ref());
            Header::new(name, Bytes::copy_from_slice(value.unwrap_or_default()))
        })
        .collect();
    Event {
        key: record.key.map(Bytes::copy_from_slice),
        value: Bytes::copy_from_slice(record.payload.unwrap_or_default()),
        timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
        headers,
        provenance: Default::default(),
        position: Position::new(topics.get(record.topic), record.partition, record.offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_become_the_event_and_topics_are_shared() {
        let mut topics = TopicNames::default();
        let record = RecordParts {
            topic: "in",
            partition: 3,
            offset: 41,
            key: Some(b""),
            payload: None,
            timestamp_ms: None,
        };
        let headers: [(&[u8], Option<&[u8]>); 3] =
            [(b"a", Some(b"1")), (b"a", None), (b"b\xffc", Some(b"\xff"))];
        let e = record_to_event(record, headers, &mut topics, || 7);
        assert_eq!(e.key.as_deref(), Some(&b""[..]), "an empty key is a key");
        assert!(e.value.is_empty());
        assert_eq!(e.timestamp_ms, 7, "no timestamp: the ingestion time");
        let got: Vec<(&str, &[u8])> = e.headers.iter().map(|h| (&*h.name, &h.value[..])).collect();
        let want: [(&str, &[u8]); 3] = [("a", b"1"), ("a", b""), ("b\u{fffd}c", b"\xff")];
        assert_eq!(got, want);
        assert_eq!(
            (&*e.position.stream, e.position.partition, e.position.offset),
            ("in", 3, 41)
        );
        let again = RecordParts {
            timestamp_ms: Some(-5),
            key: None,
            ..record
        };
        let e2 = record_to_event(again, [], &mut topics, || 7);
        assert_eq!((e2.key, e2.timestamp_ms), (None, -5));
        assert!(Arc::ptr_eq(&e.position.stream, &e2.position.stream));
    }
}
