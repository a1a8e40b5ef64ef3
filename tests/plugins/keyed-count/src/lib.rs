//! Test plugin `keyed-count`: counts the events of each state key, in state
//! kept by the host.
//!
//! For each event (a JSON object) it emits
//! `{"key": "<state key>", "count": <events of this key so far>, "input": <the event's "input" field, or null>}`.
//! Optional event fields:
//! - `"pad": "<text>"` is stored in the key's state (to grow it: the
//!   host's `max_value_bytes` tests);
//! - `"timer_at": <ms>` sets a timer for the key at that event time; when the
//!   watermark passes it, the plugin emits
//!   `{"key": "<state key>", "timer": <ms>, "count": <count then>}`;
//! - `"fail": true` fails the event (a dead letter; the count is unchanged).
//!
//! The state is `{"count": <n>}` (plus `"pad"` when given).

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::{Value, json};
use weir_sdk::{Context, Event, Output, Result, State};

/// What is stored per key.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Counter {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<String>,
}

#[weir_sdk::keyed]
fn count(ev: Event, state: &mut State<Counter>, ctx: &mut Context) -> Result<Vec<Output>> {
    let value: Value = ev.json()?;
    if value.get("fail").and_then(Value::as_bool) == Some(true) {
        weir_sdk::bail!("failed on purpose (\"fail\": true)");
    }
    let counter = state.get_mut();
    counter.count += 1;
    if let Some(pad) = value.get("pad").and_then(Value::as_str) {
        counter.pad = Some(pad.to_owned());
    }
    let count = counter.count;
    if let Some(at) = value.get("timer_at").and_then(Value::as_i64) {
        ctx.set_timer(at);
    }
    let key = String::from_utf8_lossy(ctx.key()).into_owned();
    let input = value.get("input").cloned().unwrap_or(Value::Null);
    let out = Event::from_json(&json!({"key": key, "count": count, "input": input}))?;
    Ok(vec![Output::new(out)])
}

#[weir_sdk::on_timer]
fn fired(
    key: &[u8],
    at_ms: i64,
    state: &mut State<Counter>,
    _ctx: &mut Context,
) -> Result<Vec<Output>> {
    let count = state.get().map_or(0, |c| c.count);
    let key = String::from_utf8_lossy(key).into_owned();
    let out = Event::from_json(&json!({"key": key, "timer": at_ms, "count": count}))?;
    Ok(vec![Output::new(out)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_echoes() {
        let mut state = State::for_test(None);
        let mut ctx = Context::for_test(b"card-7", Some(0), ());
        for n in 1..=3 {
            let out = count(
                Event::from_json(&json!({"input": n, "timer_at": 99})).unwrap(),
                &mut state,
                &mut ctx,
            )
            .unwrap();
            let v: Value = out[0].event().json().unwrap();
            assert_eq!(v, json!({"key": "card-7", "count": n, "input": n}));
        }
        assert!(ctx.timers_for_test().contains(&(true, 99)));
        let out = fired(b"card-7", 99, &mut state, &mut ctx).unwrap();
        let v: Value = out[0].event().json().unwrap();
        assert_eq!(v, json!({"key": "card-7", "timer": 99, "count": 3}));
        assert!(
            count(
                Event::from_json(&json!({"fail": true})).unwrap(),
                &mut state,
                &mut ctx
            )
            .is_err()
        );
    }
}
