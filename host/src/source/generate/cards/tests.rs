use super::*;

struct Txn {
    amount: f64,
    card: String,
    number: String,
    category: String,
    foreign: bool,
    online: bool,
    hour: u64,
    secs_since_last: u64,
    ts: i64,
    fraud: bool,
    len: usize,
}

fn sample(seed: u64, n: usize) -> Vec<Txn> {
    let mut g = CardGenerator::new(seed);
    // A card's history, as a keyed stage would keep it.
    let mut last_ts: std::collections::HashMap<String, i64> = Default::default();
    (0..n)
        .map(|_| {
            let (key, value) = g.next_txn();
            let v: serde_json::Value = serde_json::from_str(&value).expect("json");
            assert_eq!(v["card_id"].as_str(), Some(key.as_str()));
            assert!(
                v.get("secs_since_last").is_none(),
                "history is the pipeline's to compute"
            );
            let ts = v["ts"].as_i64().expect("ts");
            let secs_since_last = last_ts
                .insert(key.clone(), ts)
                .map_or(u64::MAX, |prev| ((ts - prev) / 1000) as u64);
            Txn {
                amount: v["amount"].as_f64().expect("amount"),
                card: key,
                number: v["card_number"].as_str().expect("number").to_owned(),
                category: v["merchant_category"].as_str().expect("cat").to_owned(),
                foreign: v["country"] != v["home_country"],
                online: v["channel"] == "online",
                hour: v["hour"].as_u64().expect("hour"),
                secs_since_last,
                ts: v["ts"].as_i64().expect("ts"),
                fraud: v["is_fraud"].as_u64().expect("label") == 1,
                len: value.len(),
            }
        })
        .collect()
}

#[test]
fn luhn_check_digit_matches_known_numbers() {
    assert!(luhn_valid("4539578763621486"));
    assert!(luhn_valid("79927398713"));
    assert!(!luhn_valid("4539578763621487"));
    assert!(!luhn_valid("45x9578763621486"));
}

#[test]
fn fields_cards_and_fraud_rate() {
    let txns = sample(42, 50_000);
    let fraud = txns.iter().filter(|t| t.fraud).count() as f64 / txns.len() as f64;
    assert!((0.01..=0.04).contains(&fraud), "fraud rate {fraud}");
    for t in &txns {
        assert_eq!(t.number.len(), 16);
        assert!(luhn_valid(&t.number), "{}", t.number);
        assert!(t.hour < 24);
        assert!(t.amount >= 0.5);
        assert!((180..=340).contains(&t.len), "size {}", t.len);
    }
    assert!(
        txns.windows(2).all(|w| w[0].ts <= w[1].ts),
        "time goes forward"
    );
    // A card keeps its number.
    let mut numbers = std::collections::HashMap::new();
    for t in &txns {
        assert_eq!(numbers.entry(&t.card).or_insert(&t.number), &&t.number);
    }
}

#[test]
fn planted_patterns_are_visible() {
    let txns = sample(7, 100_000);
    let share = |fraud: bool, f: &dyn Fn(&Txn) -> bool| {
        let group: Vec<_> = txns.iter().filter(|t| t.fraud == fraud).collect();
        group.iter().filter(|t| f(t)).count() as f64 / group.len() as f64
    };
    let risky = |t: &Txn| {
        matches!(
            t.category.as_str(),
            "electronics" | "gift_cards" | "online_gaming"
        )
    };
    let cnp = |t: &Txn| t.foreign && t.online && risky(t);
    assert!(share(true, &cnp) > 0.2, "foreign online risky among fraud");
    assert!(
        share(false, &cnp) < 0.01,
        "foreign online risky among legit"
    );
    let night = |t: &Txn| t.hour <= 5;
    assert!(share(true, &night) > 2.0 * share(false, &night));
    let fast = |t: &Txn| t.secs_since_last < 300;
    assert!(share(true, &fast) > 0.25, "{}", share(true, &fast));
    assert!(share(false, &fast) < 0.06, "{}", share(false, &fast));
    // Noise: some legit transactions look suspicious.
    assert!(share(false, &|t: &Txn| t.foreign) > 0.005);
    assert!(share(false, &fast) > 0.005);
}
