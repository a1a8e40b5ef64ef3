//! Test plugin `router`: every event goes to the default output; events whose
//! JSON `amount` is greater than the `threshold` param (default 1000) also go
//! to the named output `alerts`. Events without a numeric `amount` (or not
//! JSON) go to the default output only. Every event also goes to each output
//! named in `also` (default none), in that order.
//!
//! Params: `{"threshold": 1000, "also": ["audit"]}` (both optional).

use weir_sdk::serde_json::Value;
use weir_sdk::{Event, Output, Result};

/// The stage params.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Events with `amount` above this also go to `alerts`.
    pub threshold: f64,
    /// Outputs every event is copied to as well.
    pub also: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            threshold: 1000.0,
            also: Vec::new(),
        }
    }
}

fn amount(ev: &Event) -> Option<f64> {
    match ev.json::<Value>().ok()? {
        Value::Object(fields) => fields.get("amount")?.as_f64(),
        _ => None,
    }
}

/// Routes large amounts to `alerts` as well as to the default output, and
/// every event to the `also` outputs.
#[weir_sdk::flat_map]
pub fn route(ev: Event, params: &Params) -> Result<Vec<Output>> {
    let mut out = vec![Output::new(ev.clone())];
    if amount(&ev).is_some_and(|amount| amount > params.threshold) {
        out.push(Output::to("alerts", ev.clone()));
    }
    for name in &params.also {
        out.push(Output::to(name.clone(), ev.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(value: &str, threshold: f64) -> Vec<Option<String>> {
        route(
            Event::new(value),
            &Params {
                threshold,
                also: Vec::new(),
            },
        )
        .unwrap()
        .iter()
        .map(|o| o.route().map(str::to_owned))
        .collect()
    }

    #[test]
    fn large_amounts_also_go_to_alerts() {
        assert_eq!(
            routes(r#"{"amount": 1500}"#, 1000.0),
            vec![None, Some("alerts".to_owned())]
        );
        assert_eq!(routes(r#"{"amount": 1000}"#, 1000.0), vec![None]);
        assert_eq!(routes(r#"{"amount": 20.5}"#, 10.0).len(), 2);
    }

    #[test]
    fn others_go_to_default_only() {
        assert_eq!(routes(r#"{"amount": "big"}"#, 1.0), vec![None]);
        assert_eq!(routes(r#"{"id": 1}"#, 1.0), vec![None]);
        assert_eq!(routes("plain text", 1.0), vec![None]);
    }

    #[test]
    fn every_event_is_copied_to_the_also_outputs() {
        let params = Params {
            threshold: 10.0,
            also: vec!["a".to_owned(), "b".to_owned()],
        };
        let routes: Vec<Option<String>> = route(Event::new(r#"{"amount": 20}"#), &params)
            .unwrap()
            .iter()
            .map(|o| o.route().map(str::to_owned))
            .collect();
        let want = [None, Some("alerts"), Some("a"), Some("b")];
        assert_eq!(routes, want.map(|r| r.map(str::to_owned)));
        let plain = route(Event::new("text"), &params).unwrap();
        assert_eq!(plain.len(), 3);
    }

    #[test]
    fn default_threshold() {
        assert_eq!(Params::default().threshold, 1000.0);
    }
}
