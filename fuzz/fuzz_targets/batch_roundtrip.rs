//! Both directions of the packed batch: what `InputWriter` (host) packs,
//! `InputView` (guest) reads back field for field; what `OutputWriter`
//! (guest) packs, `OutputView` (host) accepts and reads back the same.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_batch::{InputView, InputWriter, Limits, NewEvent, OutputView, OutputWriter, TimerOpKind};

#[derive(Arbitrary, Debug)]
struct In {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp_ms: i64,
    stream: u8,
    partition: i32,
    offset: i64,
    state_key: Option<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
struct Out {
    input: u8,
    route: Option<String>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp_ms: i64,
    headers: Vec<(String, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Set(Vec<u8>, i64),
    Cancel(Vec<u8>, i64),
}

#[derive(Arbitrary, Debug)]
struct Case {
    streams: Vec<String>,
    keys: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    watermark: Option<i64>,
    fired: Vec<(u8, i64)>,
    events: Vec<In>,
    outputs: Vec<Out>,
    errors: Vec<(u8, String)>,
    ops: Vec<Op>,
}

fuzz_target!(|case: Case| {
    input(&case);
    output(&case);
});

fn input(case: &Case) {
    let mut w = InputWriter::new();
    let streams: Vec<u32> = case.streams.iter().map(|s| w.stream(s)).collect();
    if streams.is_empty() {
        return;
    }
    let keyed = !case.keys.is_empty();
    for (k, s) in &case.keys {
        w.key_state(k, s.as_deref());
    }
    let nkeys = case.keys.len();
    if keyed {
        w.watermark(case.watermark);
        for (k, at) in &case.fired {
            w.fired_timer(u32::from(*k) % nkeys as u32, *at);
        }
    }
    for e in &case.events {
        w.event(&NewEvent {
            key: e.key.as_deref(),
            value: &e.value,
            timestamp_ms: e.timestamp_ms,
            stream: streams[usize::from(e.stream) % streams.len()],
            partition: e.partition,
            offset: e.offset,
            state_key: e
                .state_key
                .filter(|_| keyed)
                .map(|k| u32::from(k) % nkeys as u32),
        });
        for (n, v) in &e.headers {
            w.header(n, v);
        }
    }
    let Some(buf) = w.finish() else { return };
    let view = InputView::parse(buf).expect("a batch the writer packed parses");
    assert_eq!(view.len(), case.events.len());
    for (e, got) in case.events.iter().zip(view.events()) {
        assert_eq!(got.key, e.key.as_deref());
        assert_eq!(got.value, &e.value[..]);
        assert_eq!(
            (got.timestamp_ms, got.partition, got.offset),
            (e.timestamp_ms, e.partition, e.offset)
        );
        let name = &case.streams[usize::from(e.stream) % streams.len()];
        assert_eq!(view.stream(got.stream), name.as_str());
        let headers: Vec<(&[u8], &[u8])> = got.headers.collect();
        let want: Vec<(&[u8], &[u8])> = e.headers.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(headers, want);
    }
    if keyed {
        assert!(view.is_keyed());
        assert_eq!(view.keys_len(), nkeys);
        for ((k, s), got) in case.keys.iter().zip(view.keys()) {
            assert_eq!((got.key, got.state), (&k[..], s.as_deref()));
        }
        assert_eq!(view.watermark(), case.watermark);
        assert_eq!(view.fired().count(), case.fired.len());
    }
}

fn output(case: &Case) {
    let inputs = case.events.len().max(1);
    let mut w = OutputWriter::new();
    for o in &case.outputs {
        let input = u32::from(o.input) % inputs as u32;
        if w.event(
            input,
            o.route.as_deref(),
            o.key.as_deref(),
            &o.value,
            o.timestamp_ms,
        )
        .is_err()
        {
            return;
        }
        for (n, v) in &o.headers {
            if w.header(n, v).is_err() {
                return;
            }
        }
    }
    for (i, m) in &case.errors {
        w.error(u32::from(*i) % inputs as u32, m);
    }
    for op in &case.ops {
        let done = match op {
            Op::Put(k, v) => w.put(k, v),
            Op::Delete(k) => w.delete(k),
            Op::Set(k, at) => w.set_timer(k, *at),
            Op::Cancel(k, at) => w.cancel_timer(k, *at),
        };
        if done.is_err() {
            return;
        }
    }
    let buf = w.finish();
    let limits = Limits {
        inputs,
        max_bytes: usize::MAX,
        keyed: true,
    };
    let view = OutputView::parse(&buf, &limits).expect("a batch the writer packed parses");
    assert_eq!(view.outputs_len(), case.outputs.len());
    for (o, got) in case.outputs.iter().zip(view.outputs()) {
        assert_eq!(got.input, u32::from(o.input) % inputs as u32);
        assert_eq!(got.route.map(|r| view.route(r)), o.route.as_deref());
        assert_eq!(
            (got.key, got.value, got.timestamp_ms),
            (o.key.as_deref(), &o.value[..], o.timestamp_ms)
        );
        let headers: Vec<(&[u8], &[u8])> = got.headers.collect();
        let want: Vec<(&[u8], &[u8])> = o
            .headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), &v[..]))
            .collect();
        assert_eq!(headers, want);
    }
    let errors: Vec<(u32, &[u8])> = view.errors().map(|e| (e.input, e.message)).collect();
    let want: Vec<(u32, &[u8])> = case
        .errors
        .iter()
        .map(|(i, m)| (u32::from(*i) % inputs as u32, m.as_bytes()))
        .collect();
    assert_eq!(errors, want);
    let (writes, timers) = (view.writes().count(), view.timers().count());
    let puts = case
        .ops
        .iter()
        .filter(|o| matches!(o, Op::Put(..) | Op::Delete(_)))
        .count();
    assert_eq!((writes, timers), (puts, case.ops.len() - puts));
    let mut ops = case.ops.iter();
    let mut w_iter = view.writes();
    let mut t_iter = view.timers();
    for op in &mut ops {
        match op {
            Op::Put(k, v) => {
                let got = w_iter.next().expect("a write");
                assert_eq!((got.key, got.value), (&k[..], Some(&v[..])));
            }
            Op::Delete(k) => {
                let got = w_iter.next().expect("a write");
                assert_eq!((got.key, got.value), (&k[..], None));
            }
            Op::Set(k, at) | Op::Cancel(k, at) => {
                let got = t_iter.next().expect("a timer");
                let kind = if matches!(op, Op::Set(..)) {
                    TimerOpKind::Set
                } else {
                    TimerOpKind::Cancel
                };
                assert_eq!((got.kind, got.key, got.at_ms), (kind, &k[..], *at));
            }
        }
    }
}
