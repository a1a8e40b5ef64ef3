//! Printing the figures as Markdown tables (pasted into BENCHMARKS.md).

/// Rates per batch size: `[native, (pass, upper) per layout...]`, in
/// events/s (calls/s at batch 0): the best round of each, and every round.
#[derive(Default)]
pub struct Table {
    rows: Vec<(usize, Vec<f64>)>,
    rounds: Vec<(usize, Vec<Vec<f64>>)>,
}

/// The median and quartiles of `v`.
fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn ns(rate: f64) -> f64 {
    1e9 / rate
}

fn group(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Table {
    pub fn add(&mut self, batch: usize, rounds: Vec<Vec<f64>>) {
        let mut best = vec![0f64; rounds.first().map_or(0, Vec::len)];
        for round in &rounds {
            for (b, r) in best.iter_mut().zip(round) {
                *b = b.max(*r);
            }
        }
        self.rows.push((batch, best));
        self.rounds.push((batch, rounds));
    }

    /// Paired comparison: in every round the variants ran back to back, so
    /// the ratio of two layouts' rates in the same round cancels the slow
    /// drifts of a shared machine. Prints the median ratio and quartiles.
    fn print_paired(&self, layouts: &[&str]) {
        println!();
        println!(
            "paired comparison, upper map: speed of A relative to B in the same round, median [quartiles] over rounds:"
        );
        println!();
        let pairs: Vec<(usize, usize)> = (0..layouts.len())
            .flat_map(|a| (0..a).map(move |b| (a, b)))
            .collect();
        let mut head = String::from("| batch |");
        let mut rule = String::from("|---:|");
        for &(a, b) in &pairs {
            head.push_str(&format!(" {} vs {} |", layouts[a], layouts[b]));
            rule.push_str("---:|");
        }
        println!("{head}\n{rule}");
        for (batch, rounds) in &self.rounds {
            let mut line = format!("| {batch} |");
            for &(a, b) in &pairs {
                let (ka, kb) = (2 + 2 * a, 2 + 2 * b);
                let ratios = rounds.iter().map(|r| r[ka] / r[kb]).collect();
                let (lo, mid, hi) = quartiles(ratios);
                line.push_str(&format!(" {mid:.2}× [{lo:.2}–{hi:.2}] |"));
            }
            println!("{line}");
        }
    }

    pub fn print(&self, layouts: &[&str]) {
        println!();
        println!("ns per event (batch 0: ns per empty call), best round:");
        println!();
        let mut head = String::from("| batch | native map |");
        let mut rule = String::from("|---:|---:|");
        for l in layouts {
            head.push_str(&format!(" {l} pass | {l} upper |"));
            rule.push_str("---:|---:|");
        }
        println!("{head}\n{rule}");
        for (batch, rates) in &self.rows {
            let native = if *batch == 0 {
                "—".to_owned()
            } else {
                format!("{:.0}", ns(rates[0]))
            };
            let mut line = format!("| {batch} | {native} |");
            for r in &rates[1..] {
                line.push_str(&format!(" {:.0} |", ns(*r)));
            }
            println!("{line}");
        }

        println!();
        println!("upper map, events/s and ratio to the native map:");
        println!();
        let mut head = String::from("| batch | native |");
        let mut rule = String::from("|---:|---:|");
        for l in layouts {
            head.push_str(&format!(" {l} |"));
            rule.push_str("---:|");
        }
        for l in layouts {
            head.push_str(&format!(" {l}/native |"));
            rule.push_str("---:|");
        }
        println!("{head}\n{rule}");
        for (batch, rates) in self.rows.iter().filter(|(b, _)| *b > 0) {
            let mut line = format!("| {batch} | {} |", group(rates[0]));
            for i in 0..layouts.len() {
                line.push_str(&format!(" {} |", group(rates[2 + 2 * i])));
            }
            for i in 0..layouts.len() {
                line.push_str(&format!(" {:.2}× |", rates[2 + 2 * i] / rates[0]));
            }
            println!("{line}");
        }

        self.print_paired(layouts);

        let row = |b: usize| self.rows.iter().find(|(batch, _)| *batch == b);
        if let (Some((_, empty)), Some((_, one)), Some((_, big))) = (row(0), row(1), row(1024)) {
            println!();
            println!("fixed cost per call, ns (passthrough):");
            println!();
            println!("| layout | empty call | batch 1 | batch 1 − per-event cost at 1024 |");
            println!("|---|---:|---:|---:|");
            for (i, l) in layouts.iter().enumerate() {
                let k = 1 + 2 * i;
                println!(
                    "| {l} | {:.0} | {:.0} | {:.0} |",
                    ns(empty[k]),
                    ns(one[k]),
                    ns(one[k]) - ns(big[k])
                );
            }
        }
    }
}

/// `parts[layout]` = rates of [encode, encode + drop-all call, encode +
/// passthrough call, passthrough with host decode, upper with host decode],
/// each including the copy of the input batch that costs `clone_ns`.
pub fn breakdown(layouts: &[&str], clone_ns: f64, parts: &[[f64; 5]]) {
    println!();
    println!("where the time goes at batch 1024, ns per event (best round):");
    println!();
    let mut head = String::from("| part |");
    let mut rule = String::from("|---|");
    for l in layouts {
        head.push_str(&format!(" {l} |"));
        rule.push_str("---:|");
    }
    println!("{head}\n{rule}");
    let t: Vec<[f64; 5]> = parts.iter().map(|p| p.map(ns)).collect();
    // Each row: its name and how it follows from the five timings.
    type Row = (&'static str, fn(&[f64; 5], f64) -> f64);
    let rows: [Row; 6] = [
        ("host encode", |p, clone| p[0] - clone),
        ("call + input crossing (`drop-all`)", |p, _| p[1] - p[0]),
        (
            "guest decode/encode + output crossing (passthrough)",
            |p, _| p[2] - p[1],
        ),
        ("host decode into events", |p, _| p[3] - p[2]),
        ("the uppercase itself", |p, _| p[4] - p[3]),
        ("total, upper map", |p, clone| p[4] - clone),
    ];
    for (name, f) in rows {
        let mut line = format!("| {name} |");
        for p in &t {
            line.push_str(&format!(" {:.0} |", f(p, clone_ns)));
        }
        println!("{line}");
    }
    println!();
    println!(
        "(the copy of the input batch, {clone_ns:.0} ns per event, is left out of these rows; the tables above include it on every side)"
    );
}
