//! The keyed driver, driven the way the host calls it: keyed batches built
//! with `weir_batch::InputWriter`, answers read with `OutputView`.

use serde::{Deserialize, Serialize};
use weir_batch::{InputWriter, Limits, NewEvent, OutputView, StateWrite, TimerOpKind};

use super::*;

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Count {
    count: u64,
    last: String,
}

/// A keyed batch: `keys` with their stored values, then events
/// (key index, value).
fn batch(
    keys: &[(&str, Option<&str>)],
    events: &[(Option<u32>, &str)],
    fired: &[(u32, i64)],
) -> Vec<u8> {
    let mut w = InputWriter::new();
    let s = w.stream("in");
    for (k, v) in keys {
        w.key_state(k.as_bytes(), v.map(str::as_bytes));
    }
    for (i, (k, v)) in events.iter().enumerate() {
        w.event(&NewEvent {
            key: None,
            value: v.as_bytes(),
            timestamp_ms: 100 + i as i64,
            stream: s,
            partition: 0,
            offset: i as i64,
            state_key: *k,
        });
    }
    w.watermark(Some(50));
    for &(k, at) in fired {
        w.fired_timer(k, at);
    }
    w.finish().unwrap().to_vec()
}

fn view(out: &[u8], inputs: usize) -> OutputView<'_> {
    OutputView::parse(
        out,
        &Limits {
            inputs,
            max_bytes: 1 << 20,
            keyed: true,
        },
    )
    .expect("the host accepts the output")
}

fn count(ev: Event, state: &mut State<Count>, ctx: &mut Context<u64>) -> Result<Vec<Output>> {
    let value = ev.value_str()?.to_owned();
    if value == "poison" {
        state.get_mut().count += 1000; // discarded: the call fails
        ctx.set_timer(1);
        crate::bail!("poison event");
    }
    let c = state.get_mut();
    c.count += *ctx.params();
    c.last = value.clone();
    let n = c.count;
    if value == "reset" {
        state.clear();
    }
    if value == "timer" {
        ctx.set_timer(1_000);
        ctx.cancel_timer(500);
    }
    let key = ctx.key_str().unwrap_or("").to_owned();
    Ok(vec![Output::new(Event::new(format!("{key}:{n}:{value}")))])
}

fn expire(
    key: &[u8],
    at_ms: i64,
    state: &mut State<Count>,
    _ctx: &mut Context<u64>,
) -> Result<Vec<Output>> {
    let n = state.take().map_or(0, |c| c.count);
    Ok(vec![Output::new(Event::new(format!(
        "expired {}@{at_ms}:{n}",
        String::from_utf8_lossy(key)
    )))])
}

fn run(input: Vec<u8>) -> Vec<u8> {
    run_keyed(input, Rc::new(1u64), count, expire)
}

fn values(v: &OutputView<'_>) -> Vec<(u32, String)> {
    v.outputs()
        .map(|o| (o.input, String::from_utf8_lossy(o.value).into_owned()))
        .collect()
}

#[test]
fn events_of_a_key_see_each_others_writes_and_one_write_per_key() {
    let input = batch(
        &[("a", Some(r#"{"count":5,"last":"x"}"#)), ("b", None)],
        &[
            (Some(0), "e0"),
            (Some(1), "e1"),
            (Some(0), "e2"),
            (Some(1), "e3"),
        ],
        &[],
    );
    let out = run(input);
    let v = view(&out, 4);
    assert_eq!(
        values(&v),
        vec![
            (0, "a:6:e0".into()),
            (1, "b:1:e1".into()),
            (2, "a:7:e2".into()),
            (3, "b:2:e3".into())
        ]
    );
    let writes: Vec<_> = v.writes().collect();
    assert_eq!(
        writes,
        vec![
            StateWrite {
                key: b"a",
                value: Some(br#"{"count":7,"last":"e2"}"#)
            },
            StateWrite {
                key: b"b",
                value: Some(br#"{"count":2,"last":"e3"}"#)
            }
        ]
    );
    assert_eq!(v.errors().len(), 0);
}

#[test]
fn an_error_leaves_the_state_and_timers_as_they_were() {
    let input = batch(
        &[("a", Some(r#"{"count":5,"last":"x"}"#))],
        &[(Some(0), "e0"), (Some(0), "poison"), (Some(0), "e2")],
        &[],
    );
    let out = run(input);
    let v = view(&out, 3);
    assert_eq!(values(&v), vec![(0, "a:6:e0".into()), (2, "a:7:e2".into())]);
    let errors: Vec<_> = v.errors().map(|e| (e.input, e.message.to_vec())).collect();
    assert_eq!(errors, vec![(1, b"poison event".to_vec())]);
    assert_eq!(v.timers().len(), 0, "the failed call's timer is dropped");
    assert_eq!(
        v.writes().next().unwrap().value,
        Some(&br#"{"count":7,"last":"e2"}"#[..])
    );
}

#[test]
fn unchanged_state_is_not_written_and_cleared_state_is_deleted() {
    fn read_only(_: Event, state: &mut State<Count>, _: &mut Context<u64>) -> Result<Vec<Output>> {
        let _ = state.get();
        Ok(vec![])
    }
    let stored = r#"{"count":5,"last":"x"}"#;
    let out = run_keyed(
        batch(&[("a", Some(stored))], &[(Some(0), "e")], &[]),
        Rc::new(1u64),
        read_only,
        expire,
    );
    assert_eq!(view(&out, 1).writes().len(), 0);

    // get_mut without a change: the serialized state equals the stored one.
    fn touch(_: Event, state: &mut State<Count>, _: &mut Context<u64>) -> Result<Vec<Output>> {
        let _ = state.get_mut();
        Ok(vec![])
    }
    let out = run_keyed(
        batch(
            &[("a", Some(r#"{"count":5,"last":"x"}"#))],
            &[(Some(0), "e")],
            &[],
        ),
        Rc::new(1u64),
        touch,
        expire,
    );
    assert_eq!(view(&out, 1).writes().len(), 0);

    let out = run(batch(&[("a", Some(stored))], &[(Some(0), "reset")], &[]));
    let v = view(&out, 1);
    assert_eq!(
        v.writes().collect::<Vec<_>>(),
        vec![StateWrite {
            key: b"a",
            value: None
        }]
    );
    // A key that had nothing and ends with nothing: no write.
    let out = run(batch(&[("n", None)], &[(Some(0), "reset")], &[]));
    assert_eq!(view(&out, 1).writes().len(), 0);
}

#[test]
fn undecodable_state_fails_the_keys_events_with_the_reason() {
    let input = batch(
        &[("bad", Some(r#"{"count":"many"}"#)), ("ok", None)],
        &[
            (Some(0), "e0"),
            (Some(1), "e1"),
            (Some(0), "e2"),
            (None, "e3"),
        ],
        &[],
    );
    let out = run(input);
    let v = view(&out, 4);
    assert_eq!(values(&v), vec![(1, "ok:1:e1".into())]);
    let errors: Vec<_> = v
        .errors()
        .map(|e| (e.input, String::from_utf8_lossy(e.message).into_owned()))
        .collect();
    assert_eq!(errors.len(), 3);
    assert_eq!((errors[0].0, errors[1].0, errors[2].0), (0, 2, 3));
    assert!(
        errors[0]
            .1
            .starts_with("the stored state of key `bad` does not decode"),
        "{errors:?}"
    );
    assert_eq!(errors[2].1, "the event has no state key");
    // The bad key's value is not overwritten.
    assert_eq!(v.writes().map(|w| w.key).collect::<Vec<_>>(), vec![b"ok"]);
}

#[test]
fn timers_are_set_cancelled_and_fire_before_the_events() {
    let input = batch(
        &[("a", Some(r#"{"count":5,"last":"x"}"#)), ("b", None)],
        &[(Some(1), "timer")],
        &[(0, 40)],
    );
    let out = run(input);
    let v = view(&out, 2);
    // The fired timer is input 1 (after the one event).
    assert_eq!(
        values(&v),
        vec![(1, "expired a@40:5".into()), (0, "b:1:timer".into())]
    );
    assert_eq!(
        v.outputs().next().unwrap().timestamp_ms,
        40,
        "a timer's output has the timer's time"
    );
    let timers: Vec<_> = v.timers().map(|t| (t.kind, t.key, t.at_ms)).collect();
    assert_eq!(
        timers,
        vec![
            (TimerOpKind::Set, &b"b"[..], 1_000),
            (TimerOpKind::Cancel, &b"b"[..], 500)
        ]
    );
    let writes: Vec<_> = v.writes().collect();
    assert_eq!(
        writes[0],
        StateWrite {
            key: b"a",
            value: None
        }
    );
    assert_eq!(writes[1].key, b"b");
}

#[test]
fn a_plain_batch_fails_every_event() {
    let mut w = InputWriter::new();
    let s = w.stream("in");
    w.event(&NewEvent {
        key: None,
        value: b"v",
        timestamp_ms: 0,
        stream: s,
        partition: 0,
        offset: 0,
        state_key: None,
    });
    let out = run(w.finish().unwrap().to_vec());
    let v = view(&out, 1);
    let e = v.errors().next().unwrap();
    assert!(String::from_utf8_lossy(e.message).contains("[stages.state]"));
}

#[test]
fn check_state_decodes_every_sample() {
    let mut w = InputWriter::new();
    w.key_state(b"a", Some(br#"{"count":1,"last":""}"#));
    w.key_state(b"b", None);
    assert_eq!(
        run_check_state::<Count>(w.finish().unwrap().to_vec()),
        Ok(())
    );
    w.key_state(b"c", Some(br#"[1,2]"#));
    let err = run_check_state::<Count>(w.finish().unwrap().to_vec()).unwrap_err();
    assert!(
        err.starts_with("the stored state of key `c` does not decode"),
        "{err}"
    );
    assert!(run_check_state::<Count>(vec![0; 3]).is_err());
}

#[test]
fn state_and_context_for_tests() {
    let mut state = State::for_test(None);
    let mut ctx = Context::for_test(b"card-1", Some(10), 2u64);
    let out = count(Event::new("v"), &mut state, &mut ctx).unwrap();
    assert_eq!(out[0].event.value(), b"card-1:2:v");
    assert_eq!(state.get().map(|c| c.count), Some(2));
    let mut ctx = Context::for_test(b"card-1", Some(10), 2u64);
    count(Event::new("timer"), &mut state, &mut ctx).unwrap();
    assert_eq!(ctx.timers_for_test(), vec![(true, 1_000), (false, 500)]);
    assert_eq!(ctx.watermark(), Some(10));
}
