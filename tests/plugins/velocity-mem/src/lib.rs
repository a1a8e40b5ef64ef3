//! Test plugin `velocity-mem`: the job of `plugins/card-velocity` (same
//! input fields, same output line) with each card's window kept in the
//! instance's own memory instead of the host's store: a plain map, no
//! `[stages.state]`. Nothing survives a restart or a swap; it exists to
//! measure what host-kept state costs the same job
//! (`cargo bench -p weir --bench state_cost`). Only correct on one
//! partition in order (a file), which is what the bench feeds it. The
//! window update repeats card-velocity's on purpose: depending on that
//! crate would link its plugin exports too (the wasm link fails with
//! duplicate `weir:plugin/transformer` symbols).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use weir_sdk::{Event, Result};

/// The window's length in event time (as `card_velocity::WINDOW_MS`).
const WINDOW_MS: i64 = 300_000;

#[derive(Default)]
struct Card {
    last_ts: Option<i64>,
    window: VecDeque<(i64, i64)>,
}

thread_local! {
    static CARDS: RefCell<HashMap<String, Card>> = RefCell::new(HashMap::new());
}

#[derive(Deserialize)]
struct Txn<'a> {
    #[serde(borrow)]
    txn_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    card_id: std::borrow::Cow<'a, str>,
    ts: i64,
    amount: f64,
}

#[derive(Serialize)]
struct Row<'a> {
    txn_id: &'a str,
    card_id: &'a str,
    count_5m: usize,
    sum_5m_cents: i64,
    gap_ms: Option<i64>,
}

#[weir_sdk::map]
pub fn velocity(ev: Event) -> Result<Event> {
    let Txn {
        txn_id,
        card_id,
        ts,
        amount,
    } = weir_sdk::serde_json::from_slice(ev.value())
        .map_err(|e| weir_sdk::Error::msg(format!("not a transaction: {e}")))?;
    let cents = (amount * 100.0).round() as i64;
    CARDS.with_borrow_mut(|cards| {
        let card = match cards.get_mut(&*card_id) {
            Some(card) => card,
            None => cards.entry(card_id.to_string()).or_default(),
        };
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
        Event::from_json(&Row {
            txn_id: &txn_id,
            card_id: &card_id,
            count_5m: card.window.len(),
            sum_5m_cents: card.window.iter().map(|&(_, c)| c).sum(),
            gap_ms,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::serde_json::{Value, json};

    #[test]
    fn counts_sums_and_gaps_as_card_velocity() {
        let run = |id: &str, ts: i64, amount: f64| -> Value {
            let ev = Event::from_json(
                &json!({"txn_id": id, "card_id": "m1", "ts": ts, "amount": amount}),
            )
            .unwrap();
            velocity(ev).unwrap().json().unwrap()
        };
        assert_eq!(run("a", 1_000, 1.25)["gap_ms"], Value::Null);
        let second = run("b", 61_000, 2.5);
        assert_eq!(
            (second["count_5m"].as_u64(), second["sum_5m_cents"].as_i64()),
            (Some(2), Some(375))
        );
        let third = run("c", 301_000, 0.1);
        assert_eq!(
            (third["count_5m"].as_u64(), third["sum_5m_cents"].as_i64()),
            (Some(2), Some(260))
        );
    }
}
