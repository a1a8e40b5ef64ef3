//! The drivers over the codec, as the host calls them: batches built the
//! way the host builds them, outputs read back the way the host reads them.

use super::*;
use crate::codec::Decoder;

/// Builds input batches the way the host does.
#[derive(Default)]
struct BatchBuilder {
    batch: Option<wit::Batch>,
}

impl BatchBuilder {
    fn batch(&mut self) -> &mut wit::Batch {
        self.batch.get_or_insert_with(|| wit::Batch {
            data: Vec::new(),
            events: Vec::new(),
            headers: Vec::new(),
            streams: vec!["topic-a".into(), "topic-b".into()],
        })
    }

    fn span(&mut self, bytes: &[u8]) -> wit::Span {
        let data = &mut self.batch().data;
        let offset = data.len() as u32;
        data.extend_from_slice(bytes);
        wit::Span {
            offset,
            len: bytes.len() as u32,
        }
    }

    fn event(
        mut self,
        key: Option<&str>,
        value: &str,
        headers: &[(&str, &str)],
        offset: i64,
    ) -> Self {
        let key = key.map(|k| self.span(k.as_bytes()));
        let value = self.span(value.as_bytes());
        let first = self.batch().headers.len() as u32;
        for (n, v) in headers {
            let name = self.span(n.as_bytes());
            let value = self.span(v.as_bytes());
            self.batch().headers.push(wit::Header { name, value });
        }
        self.batch().events.push(wit::Event {
            key,
            value,
            timestamp_ms: 1000 + offset,
            headers: wit::Span {
                offset: first,
                len: headers.len() as u32,
            },
            position: wit::Position {
                stream: (offset % 2) as u32,
                partition: 3,
                offset,
            },
        });
        self
    }

    fn build(mut self) -> wit::Batch {
        self.batch().clone()
    }
}

/// An output event read back from an output batch.
#[derive(Debug, PartialEq)]
struct Out {
    input: u32,
    route: Option<String>,
    key: Option<String>,
    value: String,
    timestamp_ms: i64,
    headers: Vec<(String, String)>,
}

fn text(out: &wit::OutputBatch, span: wit::Span) -> String {
    let range = span.offset as usize..(span.offset + span.len) as usize;
    String::from_utf8(out.data[range].to_vec()).unwrap()
}

fn read(out: &wit::OutputBatch) -> Vec<Out> {
    out.events
        .iter()
        .map(|e| Out {
            input: e.input,
            route: e.route.map(|r| out.routes[r as usize].clone()),
            key: e.key.map(|k| text(out, k)),
            value: text(out, e.value),
            timestamp_ms: e.timestamp_ms,
            headers: out.headers
                [e.headers.offset as usize..(e.headers.offset + e.headers.len) as usize]
                .iter()
                .map(|h| (text(out, h.name), text(out, h.value)))
                .collect(),
        })
        .collect()
}

fn errors(out: &wit::OutputBatch) -> Vec<(u32, &str)> {
    out.errors
        .iter()
        .map(|e| (e.input, e.message.as_str()))
        .collect()
}

fn sample() -> wit::Batch {
    BatchBuilder::default()
        .event(Some("k0"), "zero", &[], 0)
        .event(None, "one", &[("h", "1"), ("x", "y")], 1)
        .event(Some(""), "two", &[], 2)
        .build()
}

#[test]
fn decode_builds_owned_events() {
    let batch = sample();
    let mut decoder = Decoder::new(&batch);
    let events: Vec<Event> = batch
        .events
        .iter()
        .map(|raw| decoder.event(raw).unwrap())
        .collect();
    assert_eq!(events[0].key(), Some(&b"k0"[..]));
    assert_eq!(events[0].value(), b"zero");
    assert_eq!(events[0].headers.capacity(), 0);
    assert_eq!(events[0].position().stream(), "topic-a");
    assert_eq!(events[1].position().stream(), "topic-b");
    assert_eq!(events[1].position().partition(), 3);
    assert_eq!(events[1].position().offset(), 1);
    assert_eq!(events[1].timestamp_ms(), 1001);
    assert_eq!(events[1].key(), None);
    assert_eq!(events[1].header_str("x"), Some("y"));
    assert_eq!(events[1].headers().len(), 2);
    assert_eq!(events[2].key(), Some(&b""[..]));
}

#[test]
fn map_round_trips_everything() {
    let out = run_map(sample(), Ok);
    assert!(out.errors.is_empty());
    assert!(out.routes.is_empty());
    assert_eq!(
        read(&out),
        vec![
            Out {
                input: 0,
                route: None,
                key: Some("k0".into()),
                value: "zero".into(),
                timestamp_ms: 1000,
                headers: vec![],
            },
            Out {
                input: 1,
                route: None,
                key: None,
                value: "one".into(),
                timestamp_ms: 1001,
                headers: vec![("h".into(), "1".into()), ("x".into(), "y".into())],
            },
            Out {
                input: 2,
                route: None,
                key: Some("".into()),
                value: "two".into(),
                timestamp_ms: 1002,
                headers: vec![],
            },
        ]
    );
}

#[test]
fn map_errors_and_new_events() {
    let out = run_map(sample(), |ev| {
        if ev.value() == b"one" {
            crate::bail!("poison at {}", ev.position().offset());
        }
        let mut new = Event::new(ev.value().to_ascii_uppercase()).with_header("n", "v");
        if ev.value() == b"two" {
            new.set_timestamp_ms(7);
        }
        Ok(new)
    });
    assert_eq!(errors(&out), vec![(1, "poison at 1")]);
    let outs = read(&out);
    assert_eq!(outs.len(), 2);
    assert_eq!((outs[0].input, outs[0].value.as_str()), (0, "ZERO"));
    assert_eq!(outs[0].key, None);
    assert_eq!(outs[0].timestamp_ms, 1000, "inherits the input's timestamp");
    assert_eq!(outs[0].headers, vec![("n".into(), "v".into())]);
    assert_eq!((outs[1].input, outs[1].timestamp_ms), (2, 7));
}

#[test]
fn filter_keeps_and_drops() {
    let out = run_filter(sample(), |ev| match ev.value() {
        b"zero" => Ok(true),
        b"one" => Ok(false),
        _ => Err(Error::msg("nope")),
    });
    assert_eq!(errors(&out), vec![(2, "nope")]);
    let outs = read(&out);
    assert_eq!(outs.len(), 1);
    assert_eq!((outs[0].input, outs[0].key.as_deref()), (0, Some("k0")));
}

#[test]
fn flat_map_routes_are_interned() {
    let out = run_flat_map(sample(), |ev| {
        let mut outputs = vec![Output::new(ev.clone())];
        if ev.value() != b"zero" {
            outputs.push(Output::to("alerts", ev.clone()));
            outputs.push(Output::to(String::from("audit"), ev.clone()));
        }
        if ev.value() == b"two" {
            outputs.push(Output::to("alerts", ev));
        }
        Ok(outputs)
    });
    assert_eq!(out.routes, vec!["alerts".to_owned(), "audit".to_owned()]);
    let outs = read(&out);
    let summary: Vec<(u32, Option<&str>)> =
        outs.iter().map(|o| (o.input, o.route.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (0, None),
            (1, None),
            (1, Some("alerts")),
            (1, Some("audit")),
            (2, None),
            (2, Some("alerts")),
            (2, Some("audit")),
            (2, Some("alerts")),
        ]
    );
    assert_eq!(outs[3].headers.len(), 2);
}

#[test]
fn flat_map_can_drop_everything() {
    let out = run_flat_map(sample(), |_| Ok(Vec::new()));
    assert!(out.events.is_empty() && out.errors.is_empty() && out.data.is_empty());
}

#[test]
fn batch_results_align_with_inputs() {
    let out = run_batch(sample(), |events| {
        let n = events.len();
        events
            .into_iter()
            .map(|ev| {
                if ev.value() == b"one" {
                    Err(Error::msg("bad"))
                } else {
                    Ok(vec![Output::new(ev.with_header("n", n.to_string()))])
                }
            })
            .collect()
    });
    assert_eq!(errors(&out), vec![(1, "bad")]);
    let outs = read(&out);
    assert_eq!(outs.len(), 2);
    assert_eq!((outs[0].input, outs[1].input), (0, 2));
    assert_eq!(outs[1].headers, vec![("n".into(), "3".into())]);
}

#[test]
fn batch_length_mismatch_fails_every_event() {
    let out = run_batch(sample(), |mut events| {
        events.pop();
        events.into_iter().map(|ev| Ok(vec![ev.into()])).collect()
    });
    assert!(out.events.is_empty());
    let errs = errors(&out);
    assert_eq!(errs.len(), 3);
    assert!(
        errs[2]
            .1
            .starts_with("the batch function returned 2 results for 3 events")
    );
}

#[test]
fn malformed_spans_fail_only_their_event() {
    let mut batch = sample();
    batch.events[1].value.len = 10_000;
    batch.events[2].headers = wit::Span { offset: 99, len: 1 };
    let out = run_map(batch, Ok);
    let errs = errors(&out);
    assert_eq!(errs.len(), 2);
    assert!(errs[0].1.starts_with("malformed input batch: data span"));
    assert!(errs[1].1.starts_with("malformed input batch: header range"));
    assert_eq!(read(&out).len(), 1);
}

#[test]
fn unknown_stream_index_is_empty_name() {
    let mut batch = sample();
    batch.events[0].position.stream = 42;
    let mut decoder = Decoder::new(&batch);
    let ev = decoder.event(&batch.events[0]).unwrap();
    assert_eq!(ev.position().stream(), "");
    assert_eq!(ev.position().offset(), 0);
}

#[test]
fn buffers_are_recycled_without_leaking_content() {
    let batch = BatchBuilder::default()
        .event(Some("a-long-key"), "a long first value", &[], 0)
        .event(None, "v2", &[], 1)
        .event(Some("k"), "", &[], 2)
        .build();
    let mut decoder = Decoder::new(&batch);
    let first = decoder.event(&batch.events[0]).unwrap();
    let value_ptr = first.value.as_ptr();
    decoder.recycle(first);
    assert_eq!(decoder.pooled(), 2);
    let second = decoder.event(&batch.events[1]).unwrap();
    assert_eq!(second.value(), b"v2");
    assert_eq!(second.key(), None);
    assert_eq!(
        second.value.as_ptr(),
        value_ptr,
        "reused the key's or value's buffer"
    );
    decoder.recycle(second);
    let third = decoder.event(&batch.events[2]).unwrap();
    assert_eq!((third.key(), third.value()), (Some(&b"k"[..]), &b""[..]));
    let out = run_map(batch.clone(), |ev| Ok(ev.with_header("h", "v")));
    assert_eq!(read(&out).len(), 3);
    assert_eq!(read(&out)[1].value, "v2");
    assert_eq!(read(&out)[2].key.as_deref(), Some("k"));
}

#[test]
fn fail_all_fails_everything() {
    let out = fail_all(sample(), "not initialized");
    assert_eq!(
        errors(&out),
        vec![
            (0, "not initialized"),
            (1, "not initialized"),
            (2, "not initialized")
        ]
    );
}

#[test]
fn output_data_is_reserved_up_front() {
    let batch = sample();
    let size = batch.data.len();
    let out = run_map(batch, Ok);
    assert!(out.data.capacity() >= size);
    assert_eq!(out.data.len(), size, "same events, same bytes");
}

#[test]
fn non_utf8_header_names_are_lossy() {
    let mut b = BatchBuilder::default().event(None, "v", &[("ok", "1")], 0);
    let name = b.span(&[0xff, b'a']);
    let value = b.span(b"2");
    let mut batch = b.build();
    batch.headers[0].name = name;
    batch.headers[0].value = value;
    let out = run_map(batch, Ok);
    assert_eq!(
        read(&out)[0].headers,
        vec![("\u{fffd}a".into(), "2".into())]
    );
}
