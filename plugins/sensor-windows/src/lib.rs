//! `sensor-windows`: per device (the stage's state key), 1-minute tumbling
//! windows of event time over sensor readings (`weir generate --schema
//! sensors`), with 5 s of allowed lateness. Each reading is a JSON object
//! with a number `"temp"` (and optionally `"humidity"`); when the watermark
//! passes a window's end + 5 s the plugin emits
//! `{"device": K, "start": ms, "end": ms, "count": n, "mean": °C,
//! "variance": °C², "humidity": % (mean)}`. Readings whose window has closed
//! go to the `late` route with the header `weir.late` (the reason).

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::json;
use weir_sdk::window::{Aggregate, Window};
use weir_sdk::{Event, Output, Result};

/// What a window reads of a reading (other fields are ignored).
#[derive(Deserialize)]
struct Reading {
    temp: f64,
    #[serde(default)]
    humidity: f64,
}

/// One device's window: Welford's running mean and sum of squared
/// deviations of the temperature, and the humidity's sum.
#[weir_sdk::window(tumbling = "60s", allowed_lateness = "5s")]
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub m2: f64,
    #[serde(default)]
    pub humidity_sum: f64,
}

impl Stats {
    /// The population variance of the window's temperatures.
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.m2 / self.count as f64
        }
    }
}

impl Aggregate for Stats {
    fn add(&mut self, ev: &Event) -> Result<()> {
        let reading: Reading = ev.json()?;
        self.count += 1;
        let delta = reading.temp - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (reading.temp - self.mean);
        self.humidity_sum += reading.humidity;
        Ok(())
    }

    fn emit(&self, key: &[u8], w: Window) -> Result<Output> {
        let n = self.count.max(1) as f64;
        Ok(Output::new(Event::from_json(&json!({
            "device": String::from_utf8_lossy(key),
            "start": w.start_ms,
            "end": w.end_ms,
            "count": self.count,
            "mean": round(self.mean, 4),
            "variance": round(self.variance(), 6),
            "humidity": round(self.humidity_sum / n, 2),
        }))?))
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(temp: f64) -> Event {
        Event::from_json(&json!({"device": "d001", "temp": temp, "humidity": 40.0})).expect("event")
    }

    #[test]
    fn mean_variance_count() {
        let mut s = Stats::default();
        for t in [20.0, 22.0, 24.0, 26.0] {
            s.add(&reading(t)).expect("add");
        }
        assert_eq!(s.count, 4);
        assert!((s.mean - 23.0).abs() < 1e-9);
        assert!((s.variance() - 5.0).abs() < 1e-9);
        let w = Window {
            start_ms: 60_000,
            end_ms: 120_000,
        };
        let out: weir_sdk::serde_json::Value = s
            .emit(b"d001", w)
            .expect("emit")
            .event()
            .json()
            .expect("json");
        assert_eq!(
            out,
            json!({"device": "d001", "start": 60_000, "end": 120_000, "count": 4,
                   "mean": 23.0, "variance": 5.0, "humidity": 40.0})
        );
        let bad = Event::from_json(&json!({"device": "d001"})).expect("event");
        assert!(s.add(&bad).is_err());
    }
}
