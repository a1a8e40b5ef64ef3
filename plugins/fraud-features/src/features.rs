//! The model's feature vector, computed exactly as `examples/fraud/features.py`
//! does (the parity test checks it against `examples/fraud/model/parity.jsonl`).

use std::borrow::Cow;

use serde::Deserialize;
use weir_sdk::{Result, ensure};

/// Merchant categories, in the one-hot order of the model.
pub const CATEGORIES: [&str; 12] = [
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "pharmacy",
    "entertainment",
    "subscriptions",
    "home_improvement",
    "travel",
    "electronics",
    "gift_cards",
    "online_gaming",
];

/// `secs_since_last` of a card's first transaction seen: 3 days.
pub const FIRST_SECS: f64 = 259_200.0;

/// Number of features: 8 numeric/flag features + the category one-hot.
pub const FEATURES: usize = 8 + CATEGORIES.len();

/// The fields of a card transaction the model reads (others are ignored).
#[derive(Deserialize, Debug)]
pub struct Txn<'a> {
    pub amount: f64,
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub country: Cow<'a, str>,
    #[serde(borrow)]
    pub home_country: Cow<'a, str>,
    pub hour: i64,
    /// Added by the `card-history` stage from the card's state; `None`
    /// (null or absent: the card's first transaction seen) counts as
    /// [`FIRST_SECS`].
    #[serde(default)]
    pub secs_since_last: Option<f64>,
    #[serde(borrow)]
    pub merchant_category: Cow<'a, str>,
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The feature vector of `txn`, in the model's order:
/// `log_amount, online, foreign, night, log_secs_since, quick_repeat,
/// foreign_online, night_online, cat_<name>...` (see features.py).
pub fn features(txn: &Txn<'_>) -> Result<[f64; FEATURES]> {
    let secs = txn.secs_since_last.unwrap_or(FIRST_SECS);
    ensure!(
        txn.amount >= 0.0 && secs >= 0.0,
        "negative amount or secs_since_last"
    );
    let online = flag(txn.channel == "online");
    let foreign = flag(txn.country != txn.home_country);
    let night = flag(txn.hour <= 5);
    let mut row = [0.0; FEATURES];
    row[0] = txn.amount.ln_1p();
    row[1] = online;
    row[2] = foreign;
    row[3] = night;
    row[4] = secs.ln_1p();
    row[5] = flag(secs < 600.0);
    row[6] = foreign * online;
    row[7] = night * online;
    if let Some(i) = CATEGORIES.iter().position(|c| *c == txn.merchant_category) {
        row[8 + i] = 1.0;
    }
    Ok(row)
}

/// Parses one event value and computes its features.
pub fn event_features(value: &[u8]) -> Result<[f64; FEATURES]> {
    let txn: Txn<'_> = weir_sdk::serde_json::from_slice(value)
        .map_err(|e| weir_sdk::Error::msg(format!("not a card transaction: {e}")))?;
    features(&txn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::serde_json::{self, Value};

    /// Every event of the fixture train.py wrote gets the features Python
    /// computed, to 1e-6.
    #[test]
    fn features_match_python() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/fraud/model/parity.jsonl"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut checked = 0;
        let mut frauds = 0;
        for line in text.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let value = serde_json::to_vec(&rec["event"]).unwrap();
            let expected: Vec<f64> = serde_json::from_value(rec["features"].clone()).unwrap();
            assert_eq!(expected.len(), FEATURES);
            let got = event_features(&value).unwrap();
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-6,
                    "{line}: feature {i}: rust {g}, python {e}"
                );
            }
            checked += 1;
            frauds += usize::from(rec["event"]["is_fraud"] == 1);
        }
        assert!(checked >= 40, "only {checked} parity events");
        assert!(frauds >= 5, "the fixture should include frauds");
    }

    #[test]
    fn missing_or_mistyped_fields_are_errors() {
        let ok = br#"{"amount":10.5,"channel":"online","country":"FR","home_country":"US","hour":3,"secs_since_last":100,"merchant_category":"gift_cards"}"#;
        let row = event_features(ok).unwrap();
        assert_eq!(
            &row[1..8],
            &[1.0, 1.0, 1.0, 4.61512051684126, 1.0, 1.0, 1.0]
        );
        assert_eq!(row[8 + 10], 1.0);
        let missing = br#"{"amount":10.5,"channel":"online"}"#;
        let err = event_features(missing).unwrap_err();
        assert!(err.message().contains("missing field"), "{}", err.message());
        let typed = br#"{"amount":"ten","channel":"online","country":"FR","home_country":"US","hour":3,"secs_since_last":100,"merchant_category":"x"}"#;
        assert!(event_features(typed).is_err());
        assert!(event_features(b"not json").is_err());
        let negative = br#"{"amount":-1,"channel":"pos","country":"FR","home_country":"FR","hour":3,"secs_since_last":100,"merchant_category":"x"}"#;
        assert!(event_features(negative).is_err());
    }
}
