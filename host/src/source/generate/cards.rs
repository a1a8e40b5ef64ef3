//! The `card-transactions` schema: synthetic card payments with labelled,
//! learnable fraud.
//!
//! One JSON object per transaction (~300 bytes), key = `card_id`:
//!
//! | field | meaning |
//! |---|---|
//! | `txn_id` | `t` + 10 digits, the transaction's sequence number |
//! | `card_id` | `c` + 5 digits; 10 000 cards |
//! | `card_number` | 16 digits, Luhn-valid (Visa `4…` or Mastercard `51…`–`55…`) |
//! | `email` | the cardholder's, `first.last<n>@<domain>` |
//! | `amount` | 2 decimals |
//! | `currency` | the currency of `country` |
//! | `merchant_id` | `m` + 2-digit category index + 4 digits |
//! | `merchant_category` | grocery, restaurant, fuel, retail, pharmacy, entertainment, subscriptions, home_improvement, travel, electronics, gift_cards, online_gaming |
//! | `country` | where the merchant is |
//! | `home_country` | the cardholder's |
//! | `channel` | `pos` or `online` |
//! | `hour` | 0–23, the hour at the cardholder's home when the transaction happened |
//! | `ts` | simulated time, ms since the epoch (starts 2025-01-01T00:00:00Z) |
//! | `is_fraud` | 1 for fraud, 0 otherwise (ground truth) |
//!
//! Each card has a home country, a typical amount (log-normal around 35) and
//! a last-transaction time. Legitimate activity follows the cardholder's day
//! (few transactions between midnight and 6 am); categories have their own
//! amount scale and share of online payments.
//!
//! About 2% of transactions are fraud (`is_fraud` = 1), in episodes:
//! - **(a) amount spike** (30% of episodes): one transaction 8–30× the card's
//!   typical amount (30% of them only 2–5×), mostly electronics, retail,
//!   travel; 85% in the home country.
//! - **(b) foreign card-not-present** (30%): `country` ≠ `home_country`,
//!   90% `channel` = online, category electronics, gift_cards or
//!   online_gaming (25%: retail, entertainment or travel), 1–4× the typical
//!   amount; 70% of episodes hit a card whose holder's `hour` is 0–5. 40% are
//!   followed by a second one 1–20 minutes later.
//! - **(c) velocity burst** (30%): 3–7 transactions on one card, 20–300 s
//!   apart (visible only through the card's history: no field says how long
//!   ago its previous transaction was), gift cards, electronics, gaming, retail,
//!   fuel, grocery; 70% online, 40% foreign.
//! - **mimic** (10%): indistinguishable from the card's normal spending (it
//!   caps what any model can reach).
//!
//! Legitimate noise: trips abroad (2–10 days of foreign point-of-sale
//! payments, at home-night hours when far away), cross-border online shopping
//! (4% of online payments), big purchases (1%: 4–12×, electronics, travel,
//! home improvement), follow-up purchases 10 s–10 min later (7%), night-time
//! online gaming and subscriptions. A logistic regression on the event's own
//! fields reaches an AUC of about 0.95 (seeds 7 and 42, 200k events); a
//! stronger model or per-card history can do somewhat better, never 1.0.
//!
//! The sequence is a pure function of the seed: the same seed gives the same
//! transactions in every run (the simulated `ts`, not the wall clock).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::rng::Rng;

const CARDS: usize = 10_000;
const START_TS: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
/// Mean simulated time between arrivals (before the time-of-day filter).
const MEAN_GAP_MS: f64 = 86_400_000.0 / (CARDS as f64 * 4.0);
/// Chance that an arrival starts a fraud episode instead.
const FRAUD_EPISODE: f64 = 0.0062;

struct Country {
    code: &'static str,
    currency: &'static str,
    utc_offset_h: i64,
    /// How many cardholders live there.
    home: f64,
    /// Where stolen cards get used.
    fraud: f64,
    /// Where cardholders travel.
    travel: f64,
}

/// A country; the weights are `[home, fraud, travel]`.
const fn country(
    code: &'static str,
    currency: &'static str,
    utc_offset_h: i64,
    [home, fraud, travel]: [f64; 3],
) -> Country {
    Country {
        code,
        currency,
        utc_offset_h,
        home,
        fraud,
        travel,
    }
}

#[rustfmt::skip]
const COUNTRIES: &[Country] = &[
    country("US", "USD", -5, [30.0, 3.0, 8.0]), country("GB", "GBP", 0, [10.0, 2.0, 6.0]),
    country("DE", "EUR", 1, [10.0, 1.0, 3.0]), country("FR", "EUR", 1, [9.0, 1.0, 8.0]),
    country("ES", "EUR", 1, [6.0, 1.0, 9.0]), country("IT", "EUR", 1, [6.0, 1.0, 8.0]),
    country("NL", "EUR", 1, [4.0, 2.0, 3.0]), country("CA", "CAD", -5, [6.0, 1.0, 3.0]),
    country("MX", "MXN", -6, [3.0, 3.0, 5.0]), country("BR", "BRL", -3, [5.0, 8.0, 2.0]),
    country("IN", "INR", 5, [4.0, 4.0, 2.0]), country("JP", "JPY", 9, [3.0, 1.0, 4.0]),
    country("AU", "AUD", 10, [2.0, 1.0, 2.0]), country("SG", "SGD", 8, [1.0, 2.0, 2.0]),
    country("NG", "NGN", 1, [1.0, 10.0, 0.5]), country("RO", "RON", 2, [1.0, 8.0, 1.0]),
];

struct Category {
    name: &'static str,
    /// Weight among legitimate purchases, by day and at night (0–5 h).
    day: f64,
    night: f64,
    /// Amount scale relative to the card's typical amount.
    amount: f64,
    online_share: f64,
}

const fn category(name: &'static str, day: f64, night: f64, amount: f64, online: f64) -> Category {
    Category {
        name,
        day,
        night,
        amount,
        online_share: online,
    }
}

#[rustfmt::skip]
const CATEGORIES: &[Category] = &[
    category("grocery", 24.0, 2.0, 0.9, 0.08), category("restaurant", 16.0, 3.0, 1.0, 0.05),
    category("fuel", 11.0, 3.0, 1.1, 0.0), category("retail", 10.0, 1.0, 1.6, 0.35),
    category("pharmacy", 5.0, 2.0, 0.6, 0.1), category("entertainment", 5.0, 3.0, 1.0, 0.5),
    category("subscriptions", 5.0, 6.0, 0.4, 1.0), category("home_improvement", 4.0, 0.3, 2.4, 0.2),
    category("travel", 3.0, 2.0, 6.0, 0.75), category("electronics", 4.0, 2.0, 3.5, 0.5),
    category("gift_cards", 1.5, 1.0, 1.8, 0.5), category("online_gaming", 2.0, 8.0, 0.7, 1.0),
];

// Category indices used by the fraud patterns.
const GROCERY: usize = 0;
const RESTAURANT: usize = 1;
const FUEL: usize = 2;
const RETAIL: usize = 3;
const ENTERTAINMENT: usize = 5;
const HOME_IMPROVEMENT: usize = 7;
const TRAVEL: usize = 8;
const ELECTRONICS: usize = 9;
const GIFT_CARDS: usize = 10;
const ONLINE_GAMING: usize = 11;

/// Where an amount spike is spent, weighted.
#[rustfmt::skip]
const SPIKE_CATEGORIES: &[(usize, f64)] = &[
    (ELECTRONICS, 35.0), (RETAIL, 20.0), (TRAVEL, 15.0), (HOME_IMPROVEMENT, 10.0),
    (GIFT_CARDS, 10.0), (RESTAURANT, 5.0), (GROCERY, 5.0),
];

/// Where a velocity burst is spent, weighted.
#[rustfmt::skip]
const BURST_CATEGORIES: &[(usize, f64)] = &[
    (ELECTRONICS, 20.0), (GIFT_CARDS, 25.0), (ONLINE_GAMING, 15.0), (RETAIL, 20.0),
    (FUEL, 10.0), (GROCERY, 10.0),
];

/// Chance that a legitimate arrival at this local hour becomes a transaction.
const ACTIVITY: [f64; 24] = [
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.55, 0.75, 0.90, 0.90, 0.90, 1.0, 1.0, 0.90, 0.90,
    0.90, 0.90, 1.0, 1.0, 1.0, 0.80, 0.60, 0.40,
];

const FIRST_NAMES: &[&str] = &[
    "maria", "james", "sofia", "liam", "emma", "noah", "olivia", "lucas", "mia", "hugo", "anna",
    "leo", "chloe", "mateo", "yuki", "arjun", "ines", "omar", "zoe", "ivan",
];
const LAST_NAMES: &[&str] = &[
    "garcia", "smith", "muller", "rossi", "martin", "silva", "kim", "tanaka", "patel", "novak",
    "dubois", "jensen", "costa", "nguyen", "okafor", "popescu", "brown", "lopez", "weber", "sato",
];
const DOMAINS: &[&str] = &["example.com", "mail.test", "inbox.example", "post.test"];

struct Card {
    number: String,
    email: String,
    home: usize,
    /// Cents.
    typical: f64,
    last_ts: i64,
    /// A trip abroad: the country and when it ends.
    trip: Option<(usize, i64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Legit,
    Spike,
    ForeignOnline,
    Burst { left: u8 },
    Mimic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    ts: i64,
    seq: u64,
    card: usize,
    kind: Kind,
}

/// The `card-transactions` generator (see the module documentation).
pub(crate) struct CardGenerator {
    rng: Rng,
    cards: Vec<Card>,
    next_arrival: f64,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    sched_seq: u64,
    txn_seq: u64,
}

impl CardGenerator {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let home_weights: Vec<f64> = COUNTRIES.iter().map(|c| c.home).collect();
        let cards = (0..CARDS)
            .map(|i| {
                let home = rng.weighted(&home_weights);
                let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
                let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
                let domain = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
                Card {
                    number: card_number(&mut rng),
                    email: format!("{first}.{last}{i}@{domain}"),
                    home,
                    typical: 3500.0 * (0.6 * rng.normal()).exp(),
                    last_ts: START_TS - rng.int(0, 3 * 86_400_000),
                    trip: None,
                }
            })
            .collect();
        Self {
            rng,
            cards,
            next_arrival: START_TS as f64,
            scheduled: BinaryHeap::new(),
            sched_seq: 0,
            txn_seq: 0,
        }
    }

    /// The next transaction: its key (`card_id`) and JSON value.
    pub(crate) fn next_txn(&mut self) -> (String, String) {
        loop {
            let arrival = self.next_arrival as i64;
            if let Some(Reverse(s)) = self.scheduled.peek().copied()
                && s.ts <= arrival
            {
                self.scheduled.pop();
                return self.emit(s.card, s.ts, s.kind);
            }
            self.next_arrival += self.rng.exp(MEAN_GAP_MS).max(1.0);
            if self.rng.chance(FRAUD_EPISODE) {
                return self.start_fraud(arrival);
            }
            let card = self.rng.below(CARDS as u64) as usize;
            let hour = self.local_hour(card, arrival);
            if self.rng.chance(ACTIVITY[hour as usize]) {
                return self.emit(card, arrival, Kind::Legit);
            }
        }
    }

    fn schedule(&mut self, ts: i64, card: usize, kind: Kind) {
        self.sched_seq += 1;
        let seq = self.sched_seq;
        self.scheduled.push(Reverse(Scheduled {
            ts,
            seq,
            card,
            kind,
        }));
    }

    fn local_hour(&self, card: usize, ts: i64) -> u8 {
        let offset = COUNTRIES[self.cards[card].home].utc_offset_h;
        (ts / 3_600_000 + offset).rem_euclid(24) as u8
    }

    fn start_fraud(&mut self, ts: i64) -> (String, String) {
        let r = self.rng.unit();
        if r < 0.10 {
            let card = self.rng.below(CARDS as u64) as usize;
            self.emit(card, ts, Kind::Mimic)
        } else if r < 0.40 {
            let card = self.rng.below(CARDS as u64) as usize;
            self.emit(card, ts, Kind::Spike)
        } else if r < 0.70 {
            // Mostly a card whose holder is asleep.
            let mut card = 0;
            let tries = if self.rng.chance(0.7) { 16 } else { 1 };
            for _ in 0..tries {
                card = self.rng.below(CARDS as u64) as usize;
                if self.local_hour(card, ts) <= 5 {
                    break;
                }
            }
            if self.rng.chance(0.4) {
                let later = ts + self.rng.int(60_000, 1_200_000);
                self.schedule(later, card, Kind::ForeignOnline);
            }
            self.emit(card, ts, Kind::ForeignOnline)
        } else {
            let card = self.rng.below(CARDS as u64) as usize;
            let left = self.rng.int(2, 6) as u8;
            self.emit(card, ts, Kind::Burst { left })
        }
    }

    fn emit(&mut self, card: usize, ts: i64, kind: Kind) -> (String, String) {
        let rng = &mut self.rng;
        let c = &mut self.cards[card];
        let hour = (ts / 3_600_000 + COUNTRIES[c.home].utc_offset_h).rem_euclid(24) as u8;
        let night = hour <= 5;
        let mut country = c.home;
        let mut follow = None;
        let (category, online, amount) = match kind {
            Kind::Legit | Kind::Mimic => {
                let legit = kind == Kind::Legit;
                if let Some((_, until)) = c.trip
                    && until <= ts
                {
                    c.trip = None;
                }
                if legit && c.trip.is_none() && rng.chance(0.0025) {
                    let weights: Vec<f64> = COUNTRIES.iter().map(|k| k.travel).collect();
                    let dest = rng.weighted(&weights);
                    if dest != c.home {
                        c.trip = Some((dest, ts + rng.int(2 * 86_400_000, 10 * 86_400_000)));
                    }
                }
                let weights: Vec<f64> = CATEGORIES
                    .iter()
                    .map(|k| if night { k.night } else { k.day })
                    .collect();
                let mut cat = rng.weighted(&weights);
                let mut scale = CATEGORIES[cat].amount * (0.5 * rng.normal()).exp();
                if legit && rng.chance(0.01) {
                    cat = [ELECTRONICS, TRAVEL, HOME_IMPROVEMENT][rng.below(3) as usize];
                    scale = rng.range(4.0, 12.0);
                }
                let online = rng.chance(CATEGORIES[cat].online_share);
                match c.trip {
                    Some((dest, _)) if !online => country = dest,
                    None if online && legit && rng.chance(0.04) => {
                        // Cross-border e-commerce.
                        let weights: Vec<f64> = COUNTRIES.iter().map(|k| k.travel).collect();
                        country = rng.weighted(&weights);
                    }
                    _ => {}
                }
                if legit && rng.chance(0.07) {
                    follow = Some((ts + rng.int(10_000, 600_000), Kind::Legit));
                }
                (cat, online, scale)
            }
            Kind::Spike => {
                let cat = pick(rng, SPIKE_CATEGORIES);
                if rng.chance(0.15) {
                    country = foreign(rng, c.home);
                }
                let scale = if rng.chance(0.3) {
                    rng.range(2.0, 5.0)
                } else {
                    rng.range(8.0, 30.0)
                };
                (cat, rng.chance(0.55), scale)
            }
            Kind::ForeignOnline => {
                let cat = if rng.chance(0.25) {
                    pick(rng, &[(RETAIL, 1.0), (ENTERTAINMENT, 1.0), (TRAVEL, 1.0)])
                } else {
                    pick(
                        rng,
                        &[
                            (ELECTRONICS, 35.0),
                            (GIFT_CARDS, 35.0),
                            (ONLINE_GAMING, 30.0),
                        ],
                    )
                };
                country = foreign(rng, c.home);
                (cat, rng.chance(0.9), rng.range(1.0, 4.0))
            }
            Kind::Burst { left } => {
                let cat = pick(rng, BURST_CATEGORIES);
                if rng.chance(0.4) {
                    country = foreign(rng, c.home);
                }
                if left > 0 {
                    let later = ts + rng.int(20_000, 300_000);
                    follow = Some((later, Kind::Burst { left: left - 1 }));
                }
                (cat, rng.chance(0.7), rng.range(0.5, 3.0))
            }
        };
        if let Some((later, kind)) = follow {
            self.schedule(later, card, kind);
        }
        let rng = &mut self.rng;
        let c = &mut self.cards[card];
        let cents = ((c.typical * amount).round() as i64).max(50);
        let merchant = rng.below(400);
        c.last_ts = ts;
        self.txn_seq += 1;
        let fraud = u8::from(kind != Kind::Legit);
        let value = format!(
            concat!(
                r#"{{"txn_id":"t{:010}","card_id":"c{:05}","card_number":"{}","email":"{}","#,
                r#""amount":{}.{:02},"currency":"{}","merchant_id":"m{:02}{:04}","#,
                r#""merchant_category":"{}","country":"{}","home_country":"{}","#,
                r#""channel":"{}","hour":{},"ts":{},"is_fraud":{}}}"#
            ),
            self.txn_seq,
            card,
            c.number,
            c.email,
            cents / 100,
            cents % 100,
            COUNTRIES[country].currency,
            category,
            merchant,
            CATEGORIES[category].name,
            COUNTRIES[country].code,
            COUNTRIES[c.home].code,
            if online { "online" } else { "pos" },
            hour,
            ts,
            fraud,
        );
        (format!("c{card:05}"), value)
    }
}

fn pick(rng: &mut Rng, choices: &[(usize, f64)]) -> usize {
    let weights: Vec<f64> = choices.iter().map(|(_, w)| *w).collect();
    choices[rng.weighted(&weights)].0
}

/// A country other than `home`, weighted by where stolen cards get used.
fn foreign(rng: &mut Rng, home: usize) -> usize {
    let weights: Vec<f64> = COUNTRIES
        .iter()
        .enumerate()
        .map(|(i, c)| if i == home { 0.0 } else { c.fraud })
        .collect();
    rng.weighted(&weights)
}

/// A 16-digit Luhn-valid card number (Visa or Mastercard prefix).
fn card_number(rng: &mut Rng) -> String {
    let mut digits: Vec<u8> = if rng.chance(0.6) {
        vec![4]
    } else {
        vec![5, rng.int(1, 5) as u8]
    };
    while digits.len() < 15 {
        digits.push(rng.below(10) as u8);
    }
    digits.push(luhn_check_digit(&digits));
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// The digit that makes `payload` followed by it pass the Luhn check.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether a string of digits passes the Luhn check.
#[cfg(test)]
pub(crate) fn luhn_valid(number: &str) -> bool {
    let digits: Vec<u8> = number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    if digits.iter().any(|d| *d > 9) || digits.is_empty() {
        return false;
    }
    let (payload, check) = digits.split_at(digits.len() - 1);
    luhn_check_digit(payload) == check[0]
}

#[cfg(test)]
mod tests;
