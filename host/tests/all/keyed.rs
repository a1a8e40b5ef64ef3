//! The keyed call of contract 0.2.0 at the plugin-engine level, on the real
//! test plugins: `keyed-count` (per-key counts, timers), `keyed-incompatible`
//! (a state type that cannot read keyed-count's values), and 0.1.x / plain
//! plugins beside them. The keyed stage and the durable store that drive
//! these calls in a pipeline are tested in `state/`.

use std::sync::Arc;

use bytes::Bytes;
use weir::event::{Event, Position};
use weir::plugin::{
    CallError, Contract, EngineOptions, InstanceConfig, KeyedInput, NO_KEY, PluginEngine,
    PluginInstance, TimerOp,
};

use crate::support::plugin;

fn engine() -> PluginEngine {
    PluginEngine::new(EngineOptions {
        pooling: false,
        ..EngineOptions::default()
    })
    .expect("engine")
}

fn instance(engine: &PluginEngine, name: &str) -> PluginInstance {
    let loaded = engine.load_file(&plugin(name)).expect("loads");
    let mut instance = engine
        .instantiate(&loaded, &InstanceConfig::new("s"))
        .expect("instantiates");
    instance.init("{}").expect("init");
    instance
}

fn event(json: &str, offset: i64) -> Event {
    Event::new(
        json.as_bytes().to_vec(),
        1_000 + offset,
        Position::new(Arc::from("in"), 0, offset),
    )
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("JSON")
}

#[test]
fn keyed_count_counts_per_key_across_calls_with_state_carried_by_the_host() {
    let engine = engine();
    let mut inst = instance(&engine, "keyed-count");
    assert!(inst.info().keyed);
    assert_eq!(inst.plugin().contract(), Contract::V0_2);

    let events = vec![
        event(r#"{"input": 1}"#, 0),
        event(r#"{"input": 2}"#, 1),
        event(r#"{"input": 3, "fail": true}"#, 2),
        event(r#"{"input": 4}"#, 3),
        event(r#"{"input": 5}"#, 4),
    ];
    let keyed = KeyedInput {
        keys: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        event_key: vec![0, 1, 0, 0, NO_KEY],
        states: vec![Some(Bytes::from_static(br#"{"count":41}"#)), None],
        watermark: None,
        fired: vec![],
    };
    let out = inst.process_keyed(&events, &keyed).expect("call");
    let got: Vec<_> = out
        .outputs
        .iter()
        .map(|o| (o.input, json(&o.event.value)))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, serde_json::json!({"key": "a", "count": 42, "input": 1})),
            (1, serde_json::json!({"key": "b", "count": 1, "input": 2})),
            (3, serde_json::json!({"key": "a", "count": 43, "input": 4})),
        ]
    );
    assert_eq!(
        out.outputs[2].event.position.offset, 3,
        "positions are the inputs'"
    );
    let errors: Vec<u32> = out.errors.iter().map(|(i, _)| *i).collect();
    assert_eq!(errors, vec![2, 4], "{:?}", out.errors);
    assert!(out.errors[0].1.contains("failed on purpose"));
    assert_eq!(out.errors[1].1, "the event has no state key");
    assert_eq!(
        out.writes,
        vec![
            (
                Bytes::from_static(b"a"),
                Some(Bytes::from_static(br#"{"count":43}"#))
            ),
            (
                Bytes::from_static(b"b"),
                Some(Bytes::from_static(br#"{"count":1}"#))
            ),
        ]
    );

    // The next call sees what the host stored (the instance keeps nothing).
    let keyed = KeyedInput {
        keys: vec![Bytes::from_static(b"b")],
        event_key: vec![0],
        states: vec![Some(Bytes::from_static(br#"{"count":7}"#))],
        ..KeyedInput::default()
    };
    let out = inst
        .process_keyed(&[event(r#"{"input": 9}"#, 5)], &keyed)
        .expect("call");
    assert_eq!(json(&out.outputs[0].event.value)["count"], 8);
}

#[test]
fn timers_are_returned_and_fired_timers_run_before_the_events() {
    let engine = engine();
    let mut inst = instance(&engine, "keyed-count");
    let keyed = KeyedInput {
        keys: vec![Bytes::from_static(b"a")],
        event_key: vec![0],
        states: vec![None],
        watermark: Some(500),
        fired: vec![],
    };
    let out = inst
        .process_keyed(&[event(r#"{"timer_at": 2000}"#, 0)], &keyed)
        .expect("call");
    assert_eq!(
        out.timers,
        vec![TimerOp::Set {
            key: Bytes::from_static(b"a"),
            at_ms: 2000
        }]
    );
    // The watermark passed 2000: the host fires the timer, with the key's
    // state, in a call that may hold no events at all.
    let fired = KeyedInput {
        keys: vec![Bytes::from_static(b"a")],
        event_key: vec![],
        states: vec![Some(Bytes::from_static(br#"{"count":1}"#))],
        watermark: Some(2500),
        fired: vec![(0, 2000)],
    };
    let out = inst.process_keyed(&[], &fired).expect("call");
    assert!(out.outputs.is_empty());
    assert_eq!(out.timer_outputs.len(), 1);
    let t = &out.timer_outputs[0];
    assert_eq!(t.input, 0);
    assert_eq!(
        json(&t.event.value),
        serde_json::json!({"key": "a", "timer": 2000, "count": 1})
    );
    assert_eq!(t.event.timestamp_ms, 2000);
    assert!(out.writes.is_empty(), "reading state writes nothing");
}

#[test]
fn check_state_refuses_a_version_that_cannot_read_the_stored_values() {
    let engine = engine();
    let sample = vec![
        (
            Bytes::from_static(b"a"),
            Bytes::from_static(br#"{"count":3}"#),
        ),
        (
            Bytes::from_static(b"b"),
            Bytes::from_static(br#"{"count":1,"pad":"x"}"#),
        ),
    ];
    let mut same = instance(&engine, "keyed-count");
    assert_eq!(same.check_state(&sample), Ok(()));
    let mut other = instance(&engine, "keyed-incompatible");
    assert!(other.info().keyed);
    let err = other.check_state(&sample).unwrap_err();
    assert!(
        err.contains("the stored state of key `a` does not decode"),
        "{err}"
    );
    // The incompatible version's events fail the same way, never overwrite.
    let keyed = KeyedInput {
        keys: vec![Bytes::from_static(b"a")],
        event_key: vec![0],
        states: vec![Some(sample[0].1.clone())],
        ..KeyedInput::default()
    };
    let out = other
        .process_keyed(&[event("{}", 0)], &keyed)
        .expect("call");
    assert!(out.outputs.is_empty() && out.writes.is_empty());
    assert!(
        out.errors[0].1.contains("does not decode"),
        "{:?}",
        out.errors
    );
}

#[test]
fn plain_and_0_1_plugins_beside_keyed_ones() {
    let engine = engine();
    let mut upper = instance(&engine, "upper");
    assert!(!upper.info().keyed);
    assert_eq!(upper.plugin().contract(), Contract::V0_2);
    let out = upper.process(&[event("abc", 0)]).expect("call");
    assert_eq!(&out.outputs[0].event.value[..], b"ABC");
    assert!(matches!(
        upper.process_keyed(
            &[event("abc", 0)],
            &KeyedInput {
                event_key: vec![NO_KEY],
                ..KeyedInput::default()
            }
        ),
        Err(CallError::Host(_))
    ));
    assert_eq!(upper.check_state(&[]), Ok(()));

    let mut old = instance(&engine, "compat-v010");
    assert_eq!(old.plugin().contract(), Contract::V0_1);
    assert!(!old.info().keyed);
    let out = old.process(&[event("x", 0)]).expect("0.1.0 call");
    assert_eq!(out.outputs.len(), 1);
    assert_eq!(&out.outputs[0].event.value[..], b"v010:x");

    // A keyed plugin called without state fails each event with the reason.
    let mut keyed = instance(&engine, "keyed-count");
    let out = keyed.process(&[event("{}", 0)]).expect("call");
    assert!(out.outputs.is_empty());
    assert!(
        out.errors[0].1.contains("[stages.state]"),
        "{:?}",
        out.errors
    );
}
