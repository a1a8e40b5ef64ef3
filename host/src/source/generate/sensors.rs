//! The `sensors` schema: IoT readings with planted anomalies and
//! out-of-order arrivals.
//!
//! One JSON object per reading (~100 bytes), key = `device`:
//!
//! | field | meaning |
//! |---|---|
//! | `device` | `d` + 3 digits (`d000`, `d001`, …), `devices` of them (default 20) |
//! | `ts` | event time: when the device measured, ms since the epoch (starts 2025-01-01T00:00:00Z) |
//! | `temp` | °C, 2 decimals |
//! | `humidity` | %, 1 decimal |
//! | `battery` | 0–1, 3 decimals, draining slowly |
//! | `seq` | the device's reading counter (0, 1, …, by measurement time) |
//!
//! Every device measures once a second (with up to 250 ms of jitter).
//! Normal readings: a per-device base temperature (18–26 °C) plus a slow
//! cycle (0.3–0.8 °C, 40–90 min period) and noise (σ 0.2 °C); humidity moves
//! against the temperature.
//!
//! **Planted anomalies**, three per simulated hour, at fixed places in the
//! hour and on devices drawn from the seed (distinct when there are at least
//! three devices); which, where and when is not in the readings, only in
//! [`sensor_truth`] (`weir generate --schema sensors --truth FILE`):
//! - **offline**: the device sends nothing for 6–10 minutes, starting in
//!   minute 3–7 of the hour;
//! - **spike**: the temperature jumps 8–14 °C (humidity drops) for 3–5
//!   minutes, starting in minute 20–25;
//! - **drift**: the temperature climbs 0.8–1.4 °C per minute for 10–14
//!   minutes, starting in minute 32–37, then is back to normal.
//!
//! **Out-of-order arrivals**: the stream is in arrival order, not in event
//! time. 5% of readings arrive 1–3000 ms late, and 1 in 2000 arrives 5
//! minutes late (a gateway's buffer): those are listed by the truth as
//! `delayed` (any window of a minute with a few seconds of lateness has
//! closed when they arrive).
//!
//! The `generate` source stamps each event with its `ts` (event time), so
//! windows and timers work on it directly. The sequence is a pure function
//! of the seed and the number of devices.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde_json::{Value, json};

use super::rng::Rng;

/// The default number of devices.
pub(crate) const DEFAULT_DEVICES: u32 = 20;
pub(crate) const MAX_DEVICES: u32 = 10_000;
const START_TS: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
const PERIOD_MS: i64 = 1_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// How late a `delayed` reading arrives.
const DELAYED_MS: i64 = 5 * MINUTE_MS;

/// The kinds of planted anomalies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnomalyKind {
    Offline,
    Spike,
    Drift,
}

impl AnomalyKind {
    fn name(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Spike => "spike",
            Self::Drift => "drift",
        }
    }
}

/// One planted anomaly: device `device` during `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anomaly {
    pub(crate) kind: AnomalyKind,
    pub(crate) device: usize,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    /// Spike: °C added; drift: °C per minute.
    magnitude: f64,
}

struct Device {
    base: f64,
    amplitude: f64,
    period_ms: f64,
    phase: f64,
    humidity: f64,
    battery: f64,
    seq: u64,
}

/// A reading waiting for its arrival: (arrival, order, device, key, value,
/// ts, delay).
type Pending = Reverse<(i64, u64, usize, String, String, i64, i64)>;

/// The `sensors` generator (see the module documentation).
pub(crate) struct SensorGenerator {
    seed: u64,
    rng: Rng,
    devices: Vec<Device>,
    /// The next measurement round (every device once).
    step: i64,
    pending: BinaryHeap<Pending>,
    order: u64,
    /// The anomalies of the hours planned so far (hour h at index h).
    hours: Vec<[Anomaly; 3]>,
    /// The largest event time emitted, and the `delayed` readings emitted.
    max_ts: i64,
    delayed: Vec<(usize, i64, i64)>,
}

impl SensorGenerator {
    pub(crate) fn new(seed: u64, devices: u32) -> Self {
        let mut rng = Rng::new(seed ^ 0x5E45_0125);
        let devices = (0..devices.clamp(1, MAX_DEVICES))
            .map(|_| Device {
                base: rng.range(18.0, 26.0),
                amplitude: rng.range(0.3, 0.8),
                period_ms: rng.range(40.0, 90.0) * MINUTE_MS as f64,
                phase: rng.range(0.0, std::f64::consts::TAU),
                humidity: rng.range(35.0, 60.0),
                battery: rng.range(0.8, 1.0),
                seq: 0,
            })
            .collect();
        Self {
            seed,
            rng,
            devices,
            step: 0,
            pending: BinaryHeap::new(),
            order: 0,
            hours: Vec::new(),
            max_ts: i64::MIN,
            delayed: Vec::new(),
        }
    }

    /// The next reading in arrival order: (key, value, event time).
    pub(crate) fn next_reading(&mut self) -> (String, String, i64) {
        loop {
            // Every reading not measured yet has ts >= this round's start,
            // so it arrives after anything pending that arrives before.
            let round_start = START_TS + self.step * PERIOD_MS;
            if let Some(Reverse(p)) = self.pending.peek()
                && p.0 < round_start
                && let Some(Reverse((_, _, device, key, value, ts, delay))) = self.pending.pop()
            {
                self.max_ts = self.max_ts.max(ts);
                if delay >= DELAYED_MS {
                    self.delayed.push((device, ts, delay));
                }
                return (key, value, ts);
            }
            self.measure_round(round_start);
            self.step += 1;
        }
    }

    /// The anomalies planted in hour `h` (0-based, from the start).
    fn plan(&mut self, h: usize) -> [Anomaly; 3] {
        while self.hours.len() <= h {
            let hour = self.hours.len() as u64;
            let mut rng = Rng::new(self.seed ^ hour.wrapping_add(1).wrapping_mul(0x9E37_79B9));
            let n = self.devices.len() as u64;
            let mut picked: Vec<usize> = Vec::new();
            let mut pick = |rng: &mut Rng| loop {
                let d = rng.below(n) as usize;
                if n < 3 || !picked.contains(&d) {
                    picked.push(d);
                    break d;
                }
            };
            let at = START_TS + hour as i64 * HOUR_MS;
            let mut anomaly =
                |rng: &mut Rng, kind, from_min, to_min, min_len, max_len, mag: f64| {
                    let start = at + rng.int(from_min * MINUTE_MS, to_min * MINUTE_MS);
                    let len = rng.int(min_len * MINUTE_MS, max_len * MINUTE_MS);
                    Anomaly {
                        kind,
                        device: pick(rng),
                        start_ms: start,
                        end_ms: start + len,
                        magnitude: mag,
                    }
                };
            let offline = anomaly(&mut rng, AnomalyKind::Offline, 3, 7, 6, 10, 0.0);
            let size = rng.range(8.0, 14.0);
            let spike = anomaly(&mut rng, AnomalyKind::Spike, 20, 25, 3, 5, size);
            let rate = rng.range(0.8, 1.4);
            let drift = anomaly(&mut rng, AnomalyKind::Drift, 32, 37, 10, 14, rate);
            self.hours.push([offline, spike, drift]);
        }
        self.hours[h]
    }

    fn measure_round(&mut self, round_start: i64) {
        let hour = ((round_start - START_TS) / HOUR_MS) as usize;
        let plan = self.plan(hour);
        for d in 0..self.devices.len() {
            let ts = round_start + self.rng.int(0, 250);
            let active = |kind| {
                plan.iter()
                    .find(|a| a.kind == kind && a.device == d && a.start_ms <= ts && ts < a.end_ms)
            };
            if active(AnomalyKind::Offline).is_some() {
                continue;
            }
            let dev = &mut self.devices[d];
            let cycle =
                (std::f64::consts::TAU * (ts - START_TS) as f64 / dev.period_ms + dev.phase).sin();
            let mut temp = dev.base + dev.amplitude * cycle + 0.2 * self.rng.normal();
            let mut humidity = dev.humidity - 2.0 * dev.amplitude * cycle + self.rng.normal();
            if let Some(a) = active(AnomalyKind::Spike) {
                temp += a.magnitude;
                humidity -= a.magnitude;
            }
            if let Some(a) = active(AnomalyKind::Drift) {
                temp += a.magnitude * (ts - a.start_ms) as f64 / MINUTE_MS as f64;
            }
            dev.battery = (dev.battery - 0.000_002).max(0.0);
            let seq = dev.seq;
            dev.seq += 1;
            let key = format!("d{d:03}");
            let value = format!(
                r#"{{"device":"{key}","ts":{ts},"temp":{temp:.2},"humidity":{:.1},"battery":{:.3},"seq":{seq}}}"#,
                humidity.clamp(0.0, 100.0),
                dev.battery,
            );
            let r = self.rng.unit();
            let delay = if r < 0.0005 {
                DELAYED_MS
            } else if r < 0.05 {
                self.rng.int(1, 3000)
            } else {
                0
            };
            self.order += 1;
            self.pending
                .push(Reverse((ts + delay, self.order, d, key, value, ts, delay)));
        }
    }

    /// What was planted in the readings emitted so far: the anomalies that
    /// started at or before the last event time emitted, then the `delayed`
    /// readings, as JSON objects.
    pub(crate) fn truth(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .hours
            .iter()
            .flatten()
            .filter(|a| a.start_ms <= self.max_ts)
            .map(|a| {
                json!({
                    "kind": a.kind.name(), "device": format!("d{:03}", a.device),
                    "start": a.start_ms, "end": a.end_ms,
                })
            })
            .collect();
        out.extend(self.delayed.iter().map(|(d, ts, delay)| {
            json!({"kind": "delayed", "device": format!("d{d:03}"), "ts": ts, "delay_ms": delay})
        }));
        out
    }
}

/// What [`super::generate_values`] planted in the first `count` readings of
/// the `sensors` schema (see [`SensorGenerator::truth`]).
pub fn sensor_truth(seed: u64, devices: u32, count: u64) -> Vec<Value> {
    let mut g = SensorGenerator::new(seed, devices);
    for _ in 0..count {
        g.next_reading();
    }
    g.truth()
}

#[cfg(test)]
mod tests;
