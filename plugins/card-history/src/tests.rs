use std::collections::HashMap;

use weir_sdk::serde_json::{self, Value, json};

use super::*;

fn run(state: &mut State<Card>, value: &str) -> Result<Value> {
    let mut ctx = Context::for_test(b"c1", None, ());
    let out = history(Event::new(value.as_bytes().to_vec()), state, &mut ctx)?;
    assert_eq!(out.len(), 1);
    Ok(out[0].event().json()?)
}

#[test]
fn appends_the_history_and_keeps_the_rest_of_the_object() {
    let mut state = State::for_test(None);
    let first = run(&mut state, r#"{"txn_id":"a","ts":1000,"amount":12.5} "#).unwrap();
    assert_eq!(
        first,
        json!({"txn_id":"a","ts":1000,"amount":12.5,"secs_since_last":null,"txns_1h":1,"amount_1h":12.5})
    );
    let second = run(&mut state, r#"{"txn_id":"b","ts":62999,"amount":0.05}"#).unwrap();
    assert_eq!(second["secs_since_last"], 61);
    assert_eq!(second["txns_1h"], 2);
    assert_eq!(second["amount_1h"], 12.55);
    // An hour after the first, it has left the window.
    let third = run(&mut state, r#"{"txn_id":"c","ts":3601000,"amount":1}"#).unwrap();
    assert_eq!(
        (third["txns_1h"].as_u64(), third["amount_1h"].as_f64()),
        (Some(2), Some(1.05))
    );
    assert_eq!(state.get().map(|c| c.recent.len()), Some(2));
}

#[test]
fn a_bad_transaction_is_refused_with_the_reason_and_the_state_is_unchanged() {
    let mut state = State::for_test(None);
    for (value, reason) in [
        ("not json", "not a card transaction"),
        (r#"{"ts":1}"#, "missing field `amount`"),
        (r#"{"ts":1,"amount":-3}"#, "negative amount"),
        (r#"[{"ts":1,"amount":3}]"#, "not a card transaction"),
    ] {
        let err = run(&mut state, value).unwrap_err();
        assert!(err.message().contains(reason), "{value}: {}", err.message());
    }
    assert!(!state.is_set());
}

/// Every row of the fixture train.py wrote (all the holdout transactions of
/// 40 cards, in order) gets the history Python computed (history.py).
#[test]
fn history_matches_python() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/fraud/model/history-parity.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut cards: HashMap<String, Card> = HashMap::new();
    let (mut rows, mut with_history) = (0, 0);
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let card = cards
            .entry(rec["card_id"].as_str().unwrap().to_owned())
            .or_default();
        let h = card.record(rec["ts"].as_i64().unwrap(), rec["amount"].as_f64().unwrap());
        assert_eq!(h.secs_since_last, rec["secs_since_last"].as_i64(), "{line}");
        assert_eq!(h.txns_1h as u64, rec["txns_1h"].as_u64().unwrap(), "{line}");
        let python_cents = (rec["amount_1h"].as_f64().unwrap() * 100.0).round() as i64;
        assert_eq!(h.amount_1h_cents, python_cents, "{line}");
        rows += 1;
        with_history += usize::from(h.txns_1h > 1);
    }
    assert_eq!(cards.len(), 40);
    assert!(rows >= 400, "only {rows} rows");
    assert!(
        with_history >= 20,
        "only {with_history} rows with a busy hour"
    );
}
