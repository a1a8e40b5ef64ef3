//! Test plugin `window-count`: per state key, 10-second tumbling windows of
//! event time with 2 s of allowed lateness. Each event is a JSON object with
//! a number `"amount"`; when the watermark passes a window's end + 2 s the
//! plugin emits `{"key": K, "start": ms, "end": ms, "count": n, "sum": s}`.
//! Late events go to the `late` route with the header `weir.late`.

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::{Value, json};
use weir_sdk::window::{Aggregate, Window};
use weir_sdk::{Event, Output, Result};

/// The accumulator of one key's window.
#[weir_sdk::window(tumbling = "10s", allowed_lateness = "2s")]
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Totals {
    count: u64,
    sum: f64,
}

impl Aggregate for Totals {
    fn add(&mut self, ev: &Event) -> Result<()> {
        let value: Value = ev.json()?;
        let Some(amount) = value.get("amount").and_then(Value::as_f64) else {
            weir_sdk::bail!("the event has no number \"amount\"");
        };
        self.count += 1;
        self.sum += amount;
        Ok(())
    }

    fn emit(&self, key: &[u8], w: Window) -> Result<Output> {
        let key = String::from_utf8_lossy(key).into_owned();
        Ok(Output::new(Event::from_json(&json!({
            "key": key, "start": w.start_ms, "end": w.end_ms,
            "count": self.count, "sum": self.sum,
        }))?))
    }
}
