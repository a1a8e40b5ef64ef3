//! Round trips of both directions, and a hostile guest: hand-made
//! violations, every truncation, and random corruption of valid buffers.

use super::*;

/// xorshift64: a small deterministic generator (no dependencies).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A word biased toward the values that break parsers.
    fn word(&mut self) -> u32 {
        match self.next() % 6 {
            0 => 0,
            1 => u32::MAX,
            2 => u32::MAX - (self.next() % 64) as u32,
            3 => (self.next() % 64) as u32,
            _ => self.next() as u32,
        }
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn keyed_input() -> Vec<u8> {
    let mut w = InputWriter::new();
    let s0 = w.stream("topic-a");
    let s1 = w.stream("topic-b");
    let card1 = w.key_state(b"card-1", Some(b"{\"count\":2}"));
    let card2 = w.key_state(b"card-2", None);
    w.event(&NewEvent {
        key: Some(b"k"),
        value: b"first",
        timestamp_ms: 1_000,
        stream: s0,
        partition: 3,
        offset: 17,
        state_key: Some(card1),
    });
    w.header(b"h1", b"v1");
    w.header(b"h2", b"");
    w.event(&NewEvent {
        key: None,
        value: b"",
        timestamp_ms: -5,
        stream: s1,
        partition: -1,
        offset: i64::MAX,
        state_key: None,
    });
    w.event(&NewEvent {
        key: Some(b""),
        value: b"third",
        timestamp_ms: 3,
        stream: s0,
        partition: 0,
        offset: 0,
        state_key: Some(card2),
    });
    w.watermark(Some(900));
    w.fired_timer(card2, 850);
    w.finish().expect("fits").to_vec()
}

#[test]
fn input_round_trip() {
    let buf = keyed_input();
    let v = InputView::parse(&buf).expect("parses");
    assert_eq!(v.len(), 3);
    assert!(v.is_keyed());
    let events: Vec<_> = v.events().collect();
    assert_eq!(events[0].key, Some(&b"k"[..]));
    assert_eq!(events[0].value, b"first");
    assert_eq!(
        (
            events[0].timestamp_ms,
            events[0].partition,
            events[0].offset
        ),
        (1_000, 3, 17)
    );
    assert_eq!(v.stream(events[0].stream), "topic-a");
    assert_eq!(
        events[0].headers.clone().collect::<Vec<_>>(),
        vec![(&b"h1"[..], &b"v1"[..]), (&b"h2"[..], &b""[..])]
    );
    assert_eq!(events[0].state_key, Some(0));
    assert_eq!(events[1].key, None);
    assert_eq!(v.stream(events[1].stream), "topic-b");
    assert_eq!(
        (
            events[1].timestamp_ms,
            events[1].partition,
            events[1].offset
        ),
        (-5, -1, i64::MAX)
    );
    assert_eq!(events[1].headers.len(), 0);
    assert_eq!(events[1].state_key, None);
    assert_eq!(events[2].key, Some(&b""[..]), "an empty key is not no key");
    assert_eq!(events[2].state_key, Some(1));
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        vec![
            KeyState {
                key: b"card-1",
                state: Some(b"{\"count\":2}")
            },
            KeyState {
                key: b"card-2",
                state: None
            }
        ]
    );
    assert_eq!(v.watermark(), Some(900));
    assert_eq!(
        v.fired().collect::<Vec<_>>(),
        vec![FiredTimer { key: 1, at_ms: 850 }]
    );
}

#[test]
fn plain_input_has_no_keyed_sections_and_the_writer_is_reusable() {
    let mut w = InputWriter::new();
    let _ = keyed_input();
    for round in 0..3 {
        w.clear();
        let s = w.stream("in");
        for i in 0..round {
            w.event(&NewEvent {
                key: None,
                value: format!("v{i}").as_bytes(),
                timestamp_ms: i,
                stream: s,
                partition: 0,
                offset: i,
                state_key: None,
            });
        }
        let buf = w.finish().expect("fits").to_vec();
        let v = InputView::parse(&buf).expect("parses");
        assert!(!v.is_keyed());
        assert_eq!(v.len(), round as usize);
        assert_eq!(v.watermark(), None);
        assert_eq!(v.keys_len(), 0);
        let values: Vec<_> = v.events().map(|e| e.value.to_vec()).collect();
        let want: Vec<_> = (0..round).map(|i| format!("v{i}").into_bytes()).collect();
        assert_eq!(values, want);
    }
}

#[test]
fn sections_start_8_aligned() {
    let buf = keyed_input();
    let sections = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
    for i in 0..sections {
        let at = 8 + 16 * i;
        let offset = u32::from_le_bytes(buf[at + 8..at + 12].try_into().unwrap());
        let kind = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
        if kind != kind::DATA {
            assert_eq!(offset % 8, 0, "section {kind}");
        }
    }
}

fn sample_output() -> Vec<u8> {
    let mut w = OutputWriter::with_capacity(4, 64);
    w.event(0, None, Some(b"key"), b"VALUE", 7).unwrap();
    w.header("name", b"value").unwrap();
    w.event(1, Some("alerts"), None, b"", -1).unwrap();
    w.event(1, Some("late"), None, b"x", 2).unwrap();
    w.event(0, Some("alerts"), None, b"y", 3).unwrap();
    w.error(2, "bad event");
    w.put(b"card-1", b"{\"count\":3}").unwrap();
    w.delete(b"card-2").unwrap();
    w.set_timer(b"card-1", 60_000).unwrap();
    w.cancel_timer(b"card-2", 30_000).unwrap();
    w.finish()
}

const KEYED: Limits = Limits {
    inputs: 3,
    max_bytes: 1 << 20,
    keyed: true,
};

#[test]
fn output_round_trip() {
    let buf = sample_output();
    let v = OutputView::parse(&buf, &KEYED).expect("parses");
    let outs: Vec<_> = v.outputs().collect();
    assert_eq!(outs.len(), 4);
    assert_eq!(
        (outs[0].input, outs[0].route, outs[0].key, outs[0].value),
        (0, None, Some(&b"key"[..]), &b"VALUE"[..])
    );
    assert_eq!(outs[0].timestamp_ms, 7);
    assert_eq!(
        outs[0].headers.clone().collect::<Vec<_>>(),
        vec![(&b"name"[..], &b"value"[..])]
    );
    assert_eq!(v.routes_len(), 2, "routes are interned");
    assert_eq!(v.route(outs[1].route.unwrap()), "alerts");
    assert_eq!(v.route(outs[2].route.unwrap()), "late");
    assert_eq!(outs[3].route, outs[1].route);
    assert_eq!(outs[1].headers.len(), 0);
    assert_eq!(
        v.errors().collect::<Vec<_>>(),
        vec![EventError {
            input: 2,
            message: b"bad event"
        }]
    );
    assert_eq!(
        v.writes().collect::<Vec<_>>(),
        vec![
            StateWrite {
                key: b"card-1",
                value: Some(b"{\"count\":3}")
            },
            StateWrite {
                key: b"card-2",
                value: None
            }
        ]
    );
    assert_eq!(
        v.timers().collect::<Vec<_>>(),
        vec![
            TimerOp {
                kind: TimerOpKind::Set,
                key: b"card-1",
                at_ms: 60_000
            },
            TimerOp {
                kind: TimerOpKind::Cancel,
                key: b"card-2",
                at_ms: 30_000
            }
        ]
    );
}

#[test]
fn dropping_the_last_outputs_removes_their_headers() {
    let mut w = OutputWriter::new();
    w.event(0, None, None, b"a", 0).unwrap();
    w.event(1, None, None, b"b", 0).unwrap();
    w.header("h", b"1").unwrap();
    w.event(1, None, None, b"c", 0).unwrap();
    w.header("h", b"2").unwrap();
    w.drop_last_outputs(2);
    w.error(1, "failed later");
    let buf = w.finish();
    let v = OutputView::parse(&buf, &KEYED).expect("parses");
    assert_eq!(v.outputs_len(), 1);
    assert_eq!(v.output(0).unwrap().value, b"a");
    assert_eq!(v.errors().len(), 1);
}

#[test]
fn output_limits() {
    let buf = sample_output();
    let small = Limits {
        max_bytes: buf.len() - 1,
        ..KEYED
    };
    assert!(
        OutputView::parse(&buf, &small)
            .unwrap_err()
            .0
            .contains("over the")
    );
    let fewer = Limits { inputs: 2, ..KEYED };
    assert!(
        OutputView::parse(&buf, &fewer)
            .unwrap_err()
            .0
            .contains("refers to input 2")
    );
    let plain = Limits {
        keyed: false,
        ..KEYED
    };
    assert!(
        OutputView::parse(&buf, &plain)
            .unwrap_err()
            .0
            .contains("without state")
    );
    // A plain output (no writes) passes a plain call.
    let mut w = OutputWriter::new();
    w.event(0, None, None, b"v", 0).unwrap();
    assert!(OutputView::parse(&w.finish(), &plain).is_ok());
}

/// The directory entry of `kind` in `buf`: its byte position.
fn dir_entry(buf: &[u8], kind: u32) -> usize {
    let n = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| 8 + 16 * i)
        .find(|&at| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) == kind)
        .expect("section present")
}

fn section_at(buf: &[u8], kind: u32) -> usize {
    let at = dir_entry(buf, kind);
    u32::from_le_bytes(buf[at + 8..at + 12].try_into().unwrap()) as usize
}

#[test]
fn refuses_hand_made_violations() {
    let good = sample_output();
    let outputs = section_at(&good, kind::OUTPUTS);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("input index", edit(&|b| put_u32(b, outputs, 3))),
        ("route index", edit(&|b| put_u32(b, outputs + 4, 2))),
        ("key span", edit(&|b| put_u32(b, outputs + 8, u32::MAX))),
        ("value length", edit(&|b| put_u32(b, outputs + 20, 1 << 20))),
        ("header count", edit(&|b| put_u32(b, outputs + 28, 2))),
        (
            "huge header range",
            edit(&|b| {
                put_u32(b, outputs + 24, u32::MAX);
                put_u32(b, outputs + 28, u32::MAX);
            }),
        ),
        (
            "section offset",
            edit(&|b| put_u32(b, dir_entry(&good, kind::OUTPUTS) + 8, u32::MAX)),
        ),
        (
            "section count",
            edit(&|b| put_u32(b, dir_entry(&good, kind::OUTPUTS) + 4, u32::MAX)),
        ),
        (
            "short stride",
            edit(&|b| put_u32(b, dir_entry(&good, kind::OUTPUTS) + 12, 8)),
        ),
        (
            "data stride",
            edit(&|b| put_u32(b, dir_entry(&good, kind::DATA) + 12, 2)),
        ),
        (
            "repeated section",
            edit(&|b| put_u32(b, dir_entry(&good, kind::HEADERS), kind::OUTPUTS)),
        ),
        (
            "timer op",
            edit(&|b| put_u32(b, section_at(&good, kind::TIMERS) + 8, 2)),
        ),
        (
            "write span",
            edit(&|b| put_u32(b, section_at(&good, kind::WRITES) + 4, u32::MAX - 1)),
        ),
        (
            "error message",
            edit(&|b| put_u32(b, section_at(&good, kind::ERRORS) + 8, u32::MAX)),
        ),
        ("format", edit(&|b| put_u32(b, 0, 2))),
        ("directory size", edit(&|b| put_u32(b, 4, u32::MAX))),
        ("no header", vec![1, 0, 0]),
    ];
    for (what, buf) in cases {
        assert!(
            OutputView::parse(&buf, &KEYED).is_err(),
            "{what} was accepted"
        );
    }
    // Unknown sections are skipped: a reader of this version reads a
    // buffer with a section kind from the future.
    let future = edit(&|b| put_u32(b, dir_entry(&good, kind::TIMERS), 99));
    let v = OutputView::parse(&future, &KEYED).expect("an unknown section is skipped");
    assert_eq!(v.timers().len(), 0);
}

#[test]
fn every_truncation_is_refused_or_consistent() {
    for good in [sample_output(), keyed_input()] {
        for len in 0..good.len() {
            let cut = &good[..len];
            // Never a panic; a cut through the tables is an error.
            let _ = OutputView::parse(cut, &KEYED);
            let _ = InputView::parse(cut);
        }
    }
    let out = sample_output();
    let last = out.len() - 1;
    assert!(OutputView::parse(&out[..last], &KEYED).is_err());
    let input = keyed_input();
    assert!(InputView::parse(&input[..input.len() - 1]).is_err());
}

/// Everything a view yields lies in the buffer and obeys the limits.
fn check_consistent(v: &OutputView<'_>, limits: &Limits) {
    for o in v.outputs() {
        assert!((o.input as usize) < limits.inputs);
        if let Some(r) = o.route {
            assert!((r as usize) < v.routes_len());
        }
        for (n, val) in o.headers {
            let _ = (n.len(), val.len());
        }
    }
    for e in v.errors() {
        assert!((e.input as usize) < limits.inputs);
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = Rng(0x5eed_ba7c);
    let (out, input) = (sample_output(), keyed_input());
    let mut refused = [0usize; 2];
    const ROUNDS: usize = 30_000;
    for round in 0..ROUNDS {
        let good = if round % 2 == 0 { &out } else { &input };
        let mut b = good.clone();
        for _ in 0..(1 + rng.next() % 4) {
            let at = (rng.next() as usize % (b.len() / 4)) * 4;
            put_u32(&mut b, at, rng.word());
        }
        if rng.next().is_multiple_of(5) {
            b.truncate(rng.next() as usize % b.len());
        }
        if round % 2 == 0 {
            match OutputView::parse(&b, &KEYED) {
                Ok(v) => check_consistent(&v, &KEYED),
                Err(_) => refused[0] += 1,
            }
        } else {
            match InputView::parse(&b) {
                Ok(v) => {
                    for e in v.events() {
                        assert!((e.stream as usize) < v.streams_len());
                        if let Some(k) = e.state_key {
                            assert!(v.key(k).is_some());
                        }
                    }
                    for f in v.fired() {
                        assert!(v.key(f.key).is_some());
                    }
                }
                Err(_) => refused[1] += 1,
            }
        }
    }
    assert!(
        refused.iter().all(|&r| r > ROUNDS / 8),
        "most corrupted buffers are refused: {refused:?}"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let len = (rng.next() % 300) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if b.len() >= 8 {
            put_u32(&mut b, 0, FORMAT);
            put_u32(&mut b, 4, (rng.next() % 12) as u32);
        }
        let _ = OutputView::parse(&b, &KEYED);
        let _ = InputView::parse(&b);
    }
}
