//! `sensor-score`: scores each window result of `sensor-windows` against
//! its device's running baseline, kept in state by the host (the stage's
//! state key is the device).
//!
//! The baseline is the mean and standard deviation (Welford) of the
//! device's earlier *normal* window means. Once it holds `warmup` windows,
//! a window scores `z = (mean - baseline mean) / max(baseline std,
//! min_std)`; `|z| > threshold` makes it an anomaly: a copy goes to the
//! `route` output (default `alerts`), and it is not added to the baseline
//! (so a slow drift does not become the new normal). Every window goes on
//! (default route) with `"z"` (null while warming up) and `"anomaly"`.

use serde::{Deserialize, Serialize};
use weir_sdk::serde_json::{Value, json};
use weir_sdk::{Context, Event, Output, Result, State, bail};

/// The stage params.
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Windows in the baseline before scoring starts.
    pub warmup: u64,
    /// |z| above this is an anomaly.
    pub threshold: f64,
    /// The smallest standard deviation (°C) a z-score divides by.
    pub min_std: f64,
    /// The named output for alerts.
    pub route: String,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            warmup: 5,
            threshold: 4.0,
            min_std: 0.5,
            route: "alerts".to_owned(),
        }
    }
}

/// Refuses params that cannot work.
#[weir_sdk::init]
pub fn check(params: Params) -> Result<()> {
    if !(params.threshold > 0.0 && params.min_std > 0.0) {
        bail!("threshold and min_std must be above 0");
    }
    if params.route.is_empty() {
        bail!("route cannot be empty");
    }
    Ok(())
}

/// A device's baseline: Welford over its normal window means.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Baseline {
    pub windows: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Baseline {
    fn std(&self) -> f64 {
        if self.windows < 2 {
            0.0
        } else {
            (self.m2 / (self.windows - 1) as f64).sqrt()
        }
    }

    fn add(&mut self, x: f64) {
        self.windows += 1;
        let delta = x - self.mean;
        self.mean += delta / self.windows as f64;
        self.m2 += delta * (x - self.mean);
    }
}

#[weir_sdk::keyed]
fn score(ev: Event, state: &mut State<Baseline>, ctx: &mut Context<Params>) -> Result<Vec<Output>> {
    let mut window: Value = ev.json()?;
    let Some(mean) = window.get("mean").and_then(Value::as_f64) else {
        bail!("the window result has no number \"mean\"");
    };
    let p = ctx.params();
    let base = state.get_mut();
    let z = (base.windows >= p.warmup).then(|| (mean - base.mean) / base.std().max(p.min_std));
    let anomaly = z.is_some_and(|z| z.abs() > p.threshold);
    if !anomaly {
        base.add(mean);
    }
    if let Some(object) = window.as_object_mut() {
        object.insert("z".into(), json!(z.map(|z| (z * 100.0).round() / 100.0)));
        object.insert("anomaly".into(), json!(anomaly));
        object.insert(
            "baseline".into(),
            json!((base.mean * 100.0).round() / 100.0),
        );
    }
    let out = Event::from_json(&window)?;
    let mut outputs = Vec::with_capacity(2);
    if anomaly {
        outputs.push(Output::to(p.route.clone(), out.clone()));
    }
    outputs.push(Output::new(out));
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(mean: f64) -> Event {
        Event::from_json(&json!({"device": "d003", "start": 0, "end": 60_000, "mean": mean}))
            .expect("event")
    }

    #[test]
    fn warms_up_then_alerts_on_a_jump_without_learning_it() {
        let mut state = State::for_test(None);
        let mut ctx = Context::for_test(b"d003", None, Params::default());
        for (i, m) in [21.0, 21.2, 20.8, 21.1, 20.9, 21.0].into_iter().enumerate() {
            let out = score(window(m), &mut state, &mut ctx).expect("score");
            assert_eq!(out.len(), 1, "no alert for normal window {i}");
            let v: Value = out[0].event().json().expect("json");
            assert_eq!(v["anomaly"], false);
            assert_eq!(v["z"].is_null(), i < 5, "window {i}: {v}");
        }
        let out = score(window(30.0), &mut state, &mut ctx).expect("score");
        assert_eq!(out.len(), 2, "an alert and the window");
        let v: Value = out[0].event().json().expect("json");
        assert_eq!(v["anomaly"], true);
        assert!(v["z"].as_f64().expect("z") > 10.0, "{v}");
        // The anomaly was not learnt.
        assert_eq!(state.get().expect("baseline").windows, 6);
        let bad = Event::from_json(&json!({"device": "d003"})).expect("event");
        assert!(score(bad, &mut state, &mut ctx).is_err());
    }
}
