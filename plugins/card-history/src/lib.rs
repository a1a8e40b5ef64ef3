//! `card-history`: what a card's past says about each of its transactions,
//! from state the host keeps per card (a keyed stage, `key = "/card_id"`).
//! Appended to the transaction's JSON object:
//!
//! - `secs_since_last`: whole seconds since the card's previous transaction
//!   (`null` for the first the pipeline has seen);
//! - `txns_1h`: the card's transactions with `ts` in `(ts - 1 h, ts]`, this
//!   one included;
//! - `amount_1h`: their amounts' sum, rounded to cents.
//!
//! `examples/fraud/history.py` computes the same offline (training, the
//! Python peer); the parity test checks the two agree.

use std::collections::VecDeque;
use std::io::Write as _;

use serde::{Deserialize, Serialize};
use weir_sdk::{Context, Error, Event, Output, Result, State, bail};

/// The window of `txns_1h` and `amount_1h`.
pub const WINDOW_MS: i64 = 3_600_000;

/// What the host keeps per card.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Card {
    /// The `ts` of the card's previous transaction.
    pub last_ts: Option<i64>,
    /// (ts, cents) of the card's transactions of the last hour, oldest first.
    pub recent: VecDeque<(i64, i64)>,
}

/// The fields read from a transaction.
#[derive(Deserialize)]
struct Txn {
    ts: i64,
    amount: f64,
}

/// What [`Card::record`] says about one transaction.
#[derive(Debug, PartialEq)]
pub struct History {
    pub secs_since_last: Option<i64>,
    pub txns_1h: usize,
    pub amount_1h_cents: i64,
}

impl Card {
    /// Records a transaction at `ts` of `amount` and says its history.
    pub fn record(&mut self, ts: i64, amount: f64) -> History {
        let secs_since_last = self.last_ts.map(|prev| (ts - prev).max(0) / 1000);
        self.last_ts = Some(self.last_ts.map_or(ts, |prev| prev.max(ts)));
        while self
            .recent
            .front()
            .is_some_and(|&(t, _)| t <= ts - WINDOW_MS)
        {
            self.recent.pop_front();
        }
        self.recent.push_back((ts, (amount * 100.0).round() as i64));
        History {
            secs_since_last,
            txns_1h: self.recent.len(),
            amount_1h_cents: self.recent.iter().map(|&(_, c)| c).sum(),
        }
    }
}

#[weir_sdk::keyed]
fn history(mut ev: Event, state: &mut State<Card>, _ctx: &mut Context) -> Result<Vec<Output>> {
    let txn: Txn = weir_sdk::serde_json::from_slice(ev.value())
        .map_err(|e| Error::msg(format!("not a card transaction: {e}")))?;
    if txn.amount < 0.0 {
        bail!("not a card transaction: negative amount {}", txn.amount);
    }
    let h = state.get_mut().record(txn.ts, txn.amount);
    let value = ev.value_mut();
    while value.last().is_some_and(u8::is_ascii_whitespace) {
        value.pop();
    }
    if value.pop() != Some(b'}') {
        bail!("not a card transaction: the value is not a JSON object");
    }
    let secs = h
        .secs_since_last
        .map_or_else(|| "null".to_owned(), |s| s.to_string());
    let (euros, cents) = (h.amount_1h_cents / 100, h.amount_1h_cents % 100);
    // Written in place: the rest of the object is kept byte for byte.
    write!(
        value,
        ",\"secs_since_last\":{secs},\"txns_1h\":{},\"amount_1h\":{euros}.{cents:02}}}",
        h.txns_1h
    )
    .map_err(Error::msg)?;
    Ok(vec![Output::new(ev)])
}

#[cfg(test)]
mod tests;
