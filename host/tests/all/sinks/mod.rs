//! The action sinks against real servers: an HTTP receiver inside the test,
//! Redis and PostgreSQL started by the test on loopback ports (installed by
//! `scripts/setup.sh --tests`).

mod http;
mod kafka;
mod postgres;
pub(crate) mod receiver;
mod redis;
pub(crate) mod servers;

use std::path::Path;

/// `n` events over `cards` cards, `{"id":i,"card_id":"c<k>","ts":i,"score":...}`,
/// one per line (the `ts` of a card's events grows with `i`).
pub fn card_events(n: usize, cards: usize) -> String {
    let mut out = String::with_capacity(n * 64);
    for i in 0..n {
        let card = i % cards;
        let score = (i * 7919 % 1000) as f64 / 1000.0;
        out.push_str(&format!(
            "{{\"id\":{i},\"card_id\":\"c{card}\",\"ts\":{},\"score\":{score}}}\n",
            1000 + i
        ));
    }
    out
}

/// The last event of each card in `card_events(n, cards)`: card → (ts, score).
pub fn latest(n: usize, cards: usize) -> std::collections::BTreeMap<String, (i64, f64)> {
    let mut m = std::collections::BTreeMap::new();
    for i in 0..n {
        let score = (i * 7919 % 1000) as f64 / 1000.0;
        m.insert(format!("c{}", i % cards), ((1000 + i) as i64, score));
    }
    m
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write input");
}

/// A bad action-sink config fails before any event is read, naming the
/// field (and the secret's variable, never a value).
#[test]
fn action_sink_config_errors_name_the_field() {
    let cases = [
        (
            "type = \"http\"\nurl = \"http://127.0.0.1:1/\"\nconcurrency = 0\n",
            "outputs.default.concurrency",
        ),
        (
            "type = \"http\"\nurl = \"http://127.0.0.1:1/\"\nheaders = { Authorization = \"env:WEIR_TEST_NEVER_SET\" }\n",
            "WEIR_TEST_NEVER_SET",
        ),
        (
            "type = \"redis\"\nurl = \"redis://127.0.0.1:1/\"\nkey = \"card:{/card_id}\"\nttl_secs = 0\n",
            "outputs.default.ttl_secs",
        ),
        (
            "type = \"redis\"\nurl = \"redis://127.0.0.1:1/\"\nkey = \"card\"\n",
            "no placeholder",
        ),
        (
            "type = \"redis\"\nurl = \"redis://127.0.0.1:1/\"\nkey = \"card:{/card_id}\"\nversion = \"none\"\nversion_field = \"v\"\n",
            "outputs.default.version_field",
        ),
        (
            "type = \"postgres\"\nurl = \"postgres://weir@127.0.0.1:1/weir\"\ntable = \"t\"\nkey = \"id\"\ncolumns = { id = \"/id\" }\ntypes = { id = \"text; drop\" }\n",
            "outputs.default.types.id",
        ),
    ];
    for (body, expected) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        write(tmp.path(), "in.jsonl", "{\"id\":1}\n");
        crate::support::Pipeline::new(tmp.path())
            .file_source("in.jsonl")
            .output("default", body)
            .write(tmp.path());
        let (ok, _, stderr) = crate::support::output_of(
            crate::support::weir()
                .args(["run", "--quiet"])
                .arg(tmp.path().join("pipeline.toml")),
        );
        assert!(!ok, "accepted:\n{body}");
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
        assert!(stderr.contains("pipeline.toml:"), "no line in:\n{stderr}");
    }
}
