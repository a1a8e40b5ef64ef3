//! Test plugin `keyed-incompatible`: a keyed plugin whose state type cannot
//! decode `keyed-count`'s values (`{"count": <number>}`: here `count` is a
//! string), so the host refuses a hot swap from `keyed-count` to it, at the
//! `check-state` dry run. On a fresh store it would count like keyed-count,
//! with the count as a string.

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::{Value, json};
use weir_sdk::{Context, Event, Output, Result, State};

/// A state that `{"count": 3}` does not decode into.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Counter {
    pub count: String,
}

#[weir_sdk::keyed]
fn count(ev: Event, state: &mut State<Counter>, ctx: &mut Context) -> Result<Vec<Output>> {
    let value: Value = ev.json()?;
    let counter = state.get_mut();
    let n = counter.count.parse::<u64>().unwrap_or(0) + 1;
    counter.count = n.to_string();
    let key = String::from_utf8_lossy(ctx.key()).into_owned();
    let input = value.get("input").cloned().unwrap_or(Value::Null);
    let out = Event::from_json(&json!({"key": key, "count": n.to_string(), "input": input}))?;
    Ok(vec![Output::new(out)])
}
