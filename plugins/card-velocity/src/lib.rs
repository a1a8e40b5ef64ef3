//! `card-velocity`: the per-card velocity job of `bench/velocity` (its
//! README defines it) as a keyed weir plugin. The host keeps each card's
//! state; for every transaction the plugin emits
//! `{"txn_id","card_id","count_5m","sum_5m_cents","gap_ms"}`: how many of the
//! card's transactions (this one included) have `ts` in `(ts - 5 min, ts]`,
//! the sum of their amounts in cents, and the time since the card's previous
//! transaction (`null` for its first).
//!
//! The stage keys it by the card: `[stages.state] key = "/card_id"`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Event, Output, Result, State};

/// The window's length in event time.
pub const WINDOW_MS: i64 = 300_000;

/// What the host keeps per card.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Card {
    /// The `ts` of the card's previous transaction.
    pub last_ts: Option<i64>,
    /// The window: (ts, cents) of the card's recent transactions, oldest
    /// first.
    pub window: VecDeque<(i64, i64)>,
}

/// The fields the job reads (the rest of the transaction is skipped, not
/// built into a tree).
#[derive(Deserialize)]
struct Txn<'a> {
    #[serde(borrow)]
    txn_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    card_id: std::borrow::Cow<'a, str>,
    ts: i64,
    amount: f64,
}

#[weir_sdk::keyed]
fn velocity(ev: Event, state: &mut State<Card>, _ctx: &mut Context) -> Result<Vec<Output>> {
    let Txn {
        txn_id,
        card_id,
        ts,
        amount,
    } = weir_sdk::serde_json::from_slice(ev.value()).map_err(|e| {
        weir_sdk::Error::msg(format!(
            "a transaction needs txn_id, card_id (strings), ts (integer ms) and amount (a number): {e}"
        ))
    })?;
    let cents = (amount * 100.0).round() as i64;
    let card = state.get_mut();
    let gap_ms = card.last_ts.map(|prev| ts - prev);
    card.last_ts = Some(ts);
    while card
        .window
        .front()
        .is_some_and(|&(t, _)| t <= ts - WINDOW_MS)
    {
        card.window.pop_front();
    }
    card.window.push_back((ts, cents));
    let out = Row {
        txn_id: &txn_id,
        card_id: &card_id,
        count_5m: card.window.len(),
        sum_5m_cents: card.window.iter().map(|&(_, c)| c).sum(),
        gap_ms,
    };
    Ok(vec![Output::new(Event::from_json(&out)?)])
}

/// One output line, in the job's field order.
#[derive(Serialize)]
struct Row<'a> {
    txn_id: &'a str,
    card_id: &'a str,
    count_5m: usize,
    sum_5m_cents: i64,
    gap_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::serde_json::{Value, json};

    fn txn(id: &str, ts: i64, amount: f64) -> Event {
        Event::from_json(&json!({"txn_id": id, "card_id": "c1", "ts": ts, "amount": amount}))
            .unwrap()
    }

    #[test]
    fn counts_sums_and_gaps_over_five_minutes() {
        let mut state = State::for_test(None);
        let mut ctx = Context::for_test(b"c1", None, ());
        let mut run = |id, ts, amount| -> Value {
            let out = velocity(txn(id, ts, amount), &mut state, &mut ctx).unwrap();
            out[0].event().json().unwrap()
        };
        let first = run("a", 1_000, 1.25);
        assert_eq!(first["count_5m"], 1);
        assert_eq!(first["sum_5m_cents"], 125);
        assert_eq!(first["gap_ms"], Value::Null);
        let second = run("b", 61_000, 2.5);
        assert_eq!(
            (second["count_5m"].as_u64(), second["sum_5m_cents"].as_i64()),
            (Some(2), Some(375))
        );
        assert_eq!(second["gap_ms"], 60_000);
        // Exactly 5 minutes after the first: it falls out of (ts - 5 min, ts].
        let third = run("c", 301_000, 0.1);
        assert_eq!(
            (third["count_5m"].as_u64(), third["sum_5m_cents"].as_i64()),
            (Some(2), Some(260))
        );
    }

    #[test]
    fn a_transaction_without_its_fields_is_refused() {
        let mut state = State::for_test(None);
        let mut ctx = Context::for_test(b"c1", None, ());
        let ev = Event::from_json(&json!({"txn_id": "x"})).unwrap();
        assert!(velocity(ev, &mut state, &mut ctx).is_err());
    }
}
