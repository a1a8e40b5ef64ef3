//! Test plugin `scorer`: parses JSON events with an `"x": [4 floats]` field,
//! scores the whole batch with one call to the host model `params.model`
//! (default `linear`, input `features` [N,4] f32, output [N,1]) and appends
//! `"score"` to each event.
//!
//! A bad event (not JSON, no `x`, not 4 numbers) fails alone; a failed model
//! call fails every event of the batch with the call's error.

use weir_sdk::infer::{Tensor, infer};
use weir_sdk::serde_json::{Map, Value};
use weir_sdk::{Error, Event, Output, Result};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The model to call.
    #[serde(default = "default_model")]
    pub model: String,
    /// The model's input name.
    #[serde(default = "default_input")]
    pub input: String,
    /// Features per row sent to the model (4 for the test models; another
    /// value exercises the host's shape checks).
    #[serde(default = "default_width")]
    pub width: usize,
}

fn default_model() -> String {
    "linear".into()
}

fn default_input() -> String {
    "features".into()
}

fn default_width() -> usize {
    4
}

/// An event's JSON object and its feature row.
type Parsed = (Map<String, Value>, Vec<f32>);

fn parse(ev: &Event, width: usize) -> Result<Parsed> {
    let obj: Map<String, Value> = ev.json()?;
    let x = obj
        .get("x")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::msg("no \"x\" array"))?;
    weir_sdk::ensure!(x.len() == 4, "\"x\" has {} numbers, expected 4", x.len());
    let mut row = Vec::with_capacity(width);
    for v in x {
        row.push(
            v.as_f64()
                .ok_or_else(|| Error::msg("\"x\" holds a non-number"))? as f32,
        );
    }
    row.resize(width, 0.0);
    Ok((obj, row))
}

/// Scores every parsable event of the batch with one model call.
#[weir_sdk::batch]
pub fn score(events: Vec<Event>, params: &Params) -> Vec<Result<Vec<Output>>> {
    let parsed: Vec<Result<Parsed>> = events.iter().map(|ev| parse(ev, params.width)).collect();
    let mut features = Vec::new();
    for (_, row) in parsed.iter().flatten() {
        features.extend_from_slice(row);
    }
    let rows = features.len() / params.width.max(1);
    let scores: std::result::Result<Vec<f32>, String> = if rows == 0 {
        Ok(Vec::new())
    } else {
        infer(
            &params.model,
            &[Tensor::f32(&params.input, [rows, params.width], features)],
        )
        .map_err(|e| e.to_string())
        .and_then(|out| {
            let first = out.first().ok_or("the model returned no output")?;
            let data = first.as_f32().ok_or("the first output is not f32")?;
            let per_row = data.len() / rows.max(1);
            if per_row == 0 || data.len() != rows * per_row {
                return Err(format!(
                    "the first output has {} values for {rows} rows",
                    data.len()
                ));
            }
            Ok(data.iter().step_by(per_row).copied().collect())
        })
    };
    let mut next = 0;
    events
        .into_iter()
        .zip(parsed)
        .map(|(ev, parsed)| {
            let (mut obj, _) = parsed?;
            let scores = scores.as_ref().map_err(|e| Error::msg(e.clone()))?;
            let score = *scores
                .get(next)
                .ok_or_else(|| Error::msg("fewer scores than rows"))?;
            next += 1;
            obj.insert("score".into(), Value::from(f64::from(score)));
            let mut ev = ev;
            ev.set_json(&obj)?;
            Ok(vec![Output::new(ev)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::infer::{InferError, set_native_handler};

    fn params() -> Params {
        Params {
            model: "linear".into(),
            input: "features".into(),
            width: 4,
        }
    }

    #[test]
    fn one_call_per_batch_and_per_event_errors() {
        // A stand-in model: score = sum of the row.
        set_native_handler(|model, inputs| {
            assert_eq!(model, "linear");
            assert_eq!(inputs.len(), 1);
            let rows = inputs[0].rows();
            let x = inputs[0].as_f32().expect("f32");
            let sums = x.chunks(4).map(|r| r.iter().sum()).collect();
            Ok(vec![Tensor::f32("score", [rows, 1], sums)])
        });
        let events = vec![
            Event::new(r#"{"id":1,"x":[1,2,3,4]}"#),
            Event::new("not json"),
            Event::new(r#"{"id":3,"x":[1,1,1,1]}"#),
        ];
        let out = score(events, &params());
        assert_eq!(out.len(), 3);
        let first: Value = out[0].as_ref().expect("ok")[0]
            .event()
            .json()
            .expect("json");
        assert_eq!(first["score"], 10.0);
        assert!(out[1].is_err());
        let third: Value = out[2].as_ref().expect("ok")[0]
            .event()
            .json()
            .expect("json");
        assert_eq!(third["score"], 4.0);
    }

    #[test]
    fn a_failed_call_fails_the_whole_batch() {
        set_native_handler(|_, _| Err(InferError::InvalidInput("bad shape".into())));
        let out = score(
            vec![
                Event::new(r#"{"x":[1,2,3,4]}"#),
                Event::new(r#"{"x":[0,0,0,0]}"#),
            ],
            &params(),
        );
        for r in out {
            let msg = r.expect_err("failed").to_string();
            assert!(msg.contains("bad shape"), "{msg}");
        }
    }
}
