//! The drivers over the codec, as the host calls them: batches built the
//! way the host builds them (`weir_batch::InputWriter`), outputs read back
//! the way the host reads them (`weir_batch::OutputView`).

use weir_batch::{InputView, InputWriter, Limits, NewEvent, OutputView};

use super::*;
use crate::codec::Decoder;

/// Builds input batches the way the host does.
struct BatchBuilder {
    writer: InputWriter,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        let mut writer = InputWriter::new();
        writer.stream("topic-a");
        writer.stream("topic-b");
        Self { writer }
    }
}

impl BatchBuilder {
    fn event(
        mut self,
        key: Option<&str>,
        value: &str,
        headers: &[(&str, &str)],
        offset: i64,
    ) -> Self {
        self.raw_event(
            key,
            value,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            offset,
        );
        self
    }

    fn raw_event<'a>(
        &mut self,
        key: Option<&str>,
        value: &str,
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        offset: i64,
    ) {
        self.writer.event(&NewEvent {
            key: key.map(str::as_bytes),
            value: value.as_bytes(),
            timestamp_ms: 1000 + offset,
            stream: (offset % 2) as u32,
            partition: 3,
            offset,
            state_key: None,
        });
        for (n, v) in headers {
            self.writer.header(n, v);
        }
    }

    fn build(mut self) -> Batch {
        self.writer.finish().expect("fits").to_vec()
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn view(out: &[u8]) -> OutputView<'_> {
    OutputView::parse(
        out,
        &Limits {
            inputs: 16,
            max_bytes: 1 << 30,
            keyed: false,
        },
    )
    .expect("the host accepts the output")
}

fn read(out: &[u8]) -> Vec<Out> {
    let v = view(out);
    v.outputs()
        .map(|e| Out {
            input: e.input,
            route: e.route.map(|r| v.route(r).to_owned()),
            key: e.key.map(text),
            value: text(e.value),
            timestamp_ms: e.timestamp_ms,
            headers: e.headers.map(|(n, v)| (text(n), text(v))).collect(),
        })
        .collect()
}

fn errors(out: &[u8]) -> Vec<(u32, String)> {
    view(out)
        .errors()
        .map(|e| (e.input, text(e.message)))
        .collect()
}

fn routes(out: &[u8]) -> Vec<String> {
    let v = view(out);
    (0..v.routes_len() as u32)
        .map(|i| v.route(i).to_owned())
        .collect()
}

fn decode_all(batch: &[u8]) -> Vec<Event> {
    let view = InputView::parse(batch).unwrap();
    let mut decoder = Decoder::new(&view);
    view.events().map(|raw| decoder.event(&raw)).collect()
}

fn sample() -> Batch {
    BatchBuilder::default()
        .event(Some("k0"), "zero", &[], 0)
        .event(None, "one", &[("h", "1"), ("x", "y")], 1)
        .event(Some(""), "two", &[], 2)
        .build()
}

#[test]
fn decode_builds_owned_events() {
    let events = decode_all(&sample());
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
    assert!(errors(&out).is_empty());
    assert!(routes(&out).is_empty());
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
    assert_eq!(errors(&out), vec![(1, "poison at 1".into())]);
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
    assert_eq!(errors(&out), vec![(2, "nope".into())]);
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
    assert_eq!(routes(&out), vec!["alerts".to_owned(), "audit".to_owned()]);
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
    let v = view(&out);
    assert!(v.outputs_len() == 0 && v.errors().len() == 0 && v.data().is_empty());
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
    assert_eq!(errors(&out), vec![(1, "bad".into())]);
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
    assert!(read(&out).is_empty());
    let errs = errors(&out);
    assert_eq!(errs.len(), 3);
    assert!(
        errs[2]
            .1
            .starts_with("the batch function returned 2 results for 3 events")
    );
}

#[test]
fn a_malformed_batch_fails_every_event_with_the_reason() {
    let mut batch = sample();
    // The first event's value length (at 12 in its entry) points past the data.
    let n = u32::from_le_bytes(batch[4..8].try_into().unwrap()) as usize;
    let events_at = (0..n)
        .map(|i| 8 + 16 * i)
        .find(|&at| u32::from_le_bytes(batch[at..at + 4].try_into().unwrap()) == 2)
        .map(|at| u32::from_le_bytes(batch[at + 8..at + 12].try_into().unwrap()) as usize)
        .unwrap();
    batch[events_at + 12..events_at + 16].copy_from_slice(&10_000u32.to_le_bytes());
    let out = run_map(batch, Ok);
    let errs = errors(&out);
    assert_eq!(errs.len(), 3);
    assert!(
        errs[0]
            .1
            .starts_with("malformed input batch: event 0: the value"),
        "{errs:?}"
    );
    assert!(read(&out).is_empty());
    // Not even a directory: nothing to answer for.
    let out = run_map(vec![1, 2, 3], Ok);
    assert!(errors(&out).is_empty());
}

#[test]
fn buffers_are_recycled_without_leaking_content() {
    let batch = BatchBuilder::default()
        .event(Some("a-long-key"), "a long first value", &[], 0)
        .event(None, "v2", &[], 1)
        .event(Some("k"), "", &[], 2)
        .build();
    let view = InputView::parse(&batch).unwrap();
    let raw: Vec<_> = view.events().collect();
    let mut decoder = Decoder::new(&view);
    let first = decoder.event(&raw[0]);
    let value_ptr = first.value.as_ptr();
    decoder.recycle(first);
    assert_eq!(decoder.pooled(), 2);
    let second = decoder.event(&raw[1]);
    assert_eq!(second.value(), b"v2");
    assert_eq!(second.key(), None);
    assert_eq!(
        second.value.as_ptr(),
        value_ptr,
        "reused the key's or value's buffer"
    );
    decoder.recycle(second);
    let third = decoder.event(&raw[2]);
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
            (0, "not initialized".into()),
            (1, "not initialized".into()),
            (2, "not initialized".into())
        ]
    );
}

#[test]
fn output_data_is_the_inputs_bytes() {
    let batch = sample();
    let input = InputView::parse(&batch).unwrap().data_len();
    let out = run_map(batch, Ok);
    assert!(out.capacity() >= input);
    // Same events, same bytes (the input also holds the two stream names).
    assert_eq!(view(&out).data().len(), input - "topic-atopic-b".len());
}

#[test]
fn non_utf8_header_names_are_lossy() {
    let mut b = BatchBuilder::default();
    b.raw_event(None, "v", [(&[0xff, b'a'][..], &b"2"[..])].into_iter(), 0);
    let out = run_map(b.build(), Ok);
    assert_eq!(
        read(&out)[0].headers,
        vec![("\u{fffd}a".into(), "2".into())]
    );
}
