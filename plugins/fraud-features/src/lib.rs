//! `fraud-features`: scores card transactions with the pipeline's fraud model.
//!
//! For each batch: parse every event, compute its features (features.rs, the
//! same as examples/fraud/features.py), run ONE `infer` call on all the rows,
//! append `"score": <f32>` to each event's JSON, send every event to the
//! default output and a copy of those scoring above `threshold` to `alerts`.
//! See README.md.

pub mod features;

use std::io::Write as _;

use serde::Deserialize;
use weir_sdk::infer::{Tensor, infer};
use weir_sdk::{Error, Event, Output, Result, bail};

use features::{FEATURES, event_features};

/// The stage params.
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// The `[models.NAME]` of the pipeline to call.
    pub model: String,
    /// The model's input tensor name.
    pub input: String,
    /// Events with a score strictly above this also go to `route`.
    pub threshold: f32,
    /// The named output for alerts.
    pub route: String,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            model: "fraud".to_owned(),
            input: "features".to_owned(),
            threshold: 0.3,
            route: "alerts".to_owned(),
        }
    }
}

/// Refuses params that cannot work.
#[weir_sdk::init]
pub fn check(params: Params) -> Result<()> {
    if !(0.0..=1.0).contains(&params.threshold) {
        bail!("threshold must be in [0, 1], got {}", params.threshold);
    }
    if params.model.is_empty() || params.input.is_empty() || params.route.is_empty() {
        bail!("model, input and route cannot be empty");
    }
    Ok(())
}

/// Appends `,"score":<score>` before the closing brace of a JSON object.
fn append_score(value: &mut Vec<u8>, score: f32) -> Result<()> {
    while value.last().is_some_and(u8::is_ascii_whitespace) {
        value.pop();
    }
    if value.pop() != Some(b'}') {
        bail!("event value is not a JSON object");
    }
    // Written in place: no temporary string per event.
    write!(value, ",\"score\":{score}}}").map_err(Error::msg)?;
    Ok(())
}

/// Scores a batch with one model call.
#[weir_sdk::batch]
pub fn score(events: Vec<Event>, params: &Params) -> Vec<Result<Vec<Output>>> {
    let mut rows: Vec<f32> = Vec::with_capacity(events.len() * FEATURES);
    // Per event: Ok(row index) or its error.
    let parsed: Vec<Result<usize>> = events
        .iter()
        .map(|ev| {
            let row = event_features(ev.value())?;
            rows.extend(row.iter().map(|&x| x as f32));
            Ok(rows.len() / FEATURES - 1)
        })
        .collect();
    let n = rows.len() / FEATURES;
    let scores = if n == 0 {
        Ok(Vec::new())
    } else {
        run_model(params, rows, n)
    };
    let scores = match scores {
        Ok(scores) => scores,
        Err(reason) => {
            return parsed
                .into_iter()
                .map(|p| p.and_then(|_| Err(reason.clone())))
                .collect();
        }
    };
    events
        .into_iter()
        .zip(parsed)
        .map(|(mut ev, p)| {
            let score = scores[p?];
            append_score(ev.value_mut(), score)?;
            if score > params.threshold {
                let alert = ev.clone();
                Ok(vec![
                    Output::new(ev),
                    Output::to(params.route.clone(), alert),
                ])
            } else {
                Ok(vec![Output::new(ev)])
            }
        })
        .collect()
}

/// One `infer` call on `n` rows; the scores, one per row.
fn run_model(params: &Params, rows: Vec<f32>, n: usize) -> Result<Vec<f32>> {
    let input = Tensor::f32(params.input.clone(), [n, FEATURES], rows);
    let out = infer(&params.model, &[input])
        .map_err(|e| Error::msg(format!("model `{}`: {e}", params.model)))?;
    let Some(first) = out.first() else {
        bail!("model `{}` returned no output", params.model);
    };
    let Some(scores) = first.as_f32() else {
        bail!(
            "model `{}`: output `{}` is not f32",
            params.model,
            first.name()
        );
    };
    if scores.len() != n {
        bail!(
            "model `{}`: {} scores for {n} rows (expected shape [N, 1])",
            params.model,
            scores.len()
        );
    }
    Ok(scores.to_vec())
}

#[cfg(test)]
mod tests;
