//! Test plugin `session-count`: per state key, session windows of event
//! time with a 10 s gap (no allowed lateness). Each event is a JSON object
//! with a number `"input"`; when the watermark passes a session's end the
//! plugin emits `{"key": K, "start": ms, "end": ms, "count": n, "inputs":
//! [...]}` (the inputs sorted). An event that overlaps two sessions merges
//! them into one. Late events go to the `late` route.

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::json;
use weir_sdk::window::{Aggregate, Window};
use weir_sdk::{Event, Output, Result};

/// What the plugin reads of an event.
#[derive(Deserialize)]
struct Input {
    input: i64,
}

/// The accumulator of one key's session.
#[weir_sdk::window(session = "10s")]
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Session {
    count: u64,
    inputs: Vec<i64>,
}

impl Aggregate for Session {
    fn add(&mut self, ev: &Event) -> Result<()> {
        let Input { input } = ev.json()?;
        self.count += 1;
        self.inputs.push(input);
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.count += other.count;
        self.inputs.extend_from_slice(&other.inputs);
        Ok(())
    }

    fn emit(&self, key: &[u8], w: Window) -> Result<Output> {
        let mut inputs = self.inputs.clone();
        inputs.sort_unstable();
        Ok(Output::new(Event::from_json(&json!({
            "key": String::from_utf8_lossy(key), "start": w.start_ms, "end": w.end_ms,
            "count": self.count, "inputs": inputs,
        }))?))
    }
}
