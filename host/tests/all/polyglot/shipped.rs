//! The shipped Python and JavaScript plugins against their Rust originals,
//! on the same events: `json-filter-py` and `json-filter-js` vs
//! `json-filter`, `fraud-features-py` vs `fraud-features` (same model), and
//! the example pipeline mixing a Python and a Rust stage.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{
    cwasm_cache, fraud_features_py, json_filter_js, json_filter_py, pipeline, plugins, run_to_end,
};
use crate::support::{plugin, read_jsonl, read_jsonl_or_empty, workspace};

/// What one run of a filter produced: default values, alert values, and the
/// dead letters as (offset, reason).
#[derive(Debug, PartialEq)]
struct Outputs {
    default: Vec<Value>,
    alerts: Vec<Value>,
    dead: Vec<(String, String)>,
}

fn filter_inputs() -> Vec<Value> {
    let countries = ["FR", "DE", "US", "GB", "ES"];
    (0..240u64)
        .map(|i| {
            let mut v = json!({
                "txn_id": format!("t{i}"),
                "amount": (i * 73 % 1000) as f64 / 4.0,
                "country": countries[(i % 5) as usize],
                "customer": {"name": format!("c{}", i % 17), "tier": i % 3, "tags": ["a", i % 4]},
                "note": if i % 7 == 0 { "gift card" } else { "regular" },
            });
            if i % 11 == 0 {
                v["customer"]["vip"] = json!(true);
            }
            if i % 50 == 49 {
                v = json!([i, "not an object"]);
            }
            v
        })
        .collect()
}

fn run_filter(plugin_file: &Path, params: &str, name: &str) -> Outputs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(dir, &[("filter", plugin_file)]);
    let lines: Vec<String> = filter_inputs().iter().map(Value::to_string).collect();
    std::fs::write(dir.join("in.jsonl"), lines.join("\n") + "\n").expect("write input");
    pipeline(dir, name)
        .file_source("in.jsonl")
        .batch(64, 1000)
        .stage_with("f", "filter", &format!("[stages.params]\n{params}\n"))
        .file_output("alerts", "alerts.jsonl")
        .write(dir);
    run_to_end(dir);
    let values = |f: &str| -> Vec<Value> {
        read_jsonl_or_empty(&dir.join(f))
            .iter()
            .map(|r| r["value"].clone())
            .collect()
    };
    Outputs {
        default: values("out.jsonl"),
        alerts: values("alerts.jsonl"),
        dead: read_jsonl_or_empty(&dir.join("dlq.jsonl"))
            .iter()
            .map(|r| {
                (
                    r["headers"]["weir.source.offset"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    r["headers"]["weir.error"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect(),
    }
}

/// Three parameter sets: filter + projection (the events that are arrays
/// match, having no `customer`, and cannot be projected: dead letters),
/// routing, `any` with string/array operators.
const FILTER_PARAMS: [&str; 3] = [
    r#"match = "any"
where = [{ field = "amount", op = "gt", value = 200 }, { field = "country", op = "in", value = ["FR"] }, { field = "customer", op = "exists", value = false }]
keep = ["txn_id", "amount", "customer.name", "missing"]"#,
    r#"where = [{ field = "customer.vip", op = "exists" }, { field = "amount", op = "lte", value = 200.5 }]
route = "alerts""#,
    r#"match = "any"
where = [{ field = "note", op = "contains", value = "gift" }, { field = "customer.tags", op = "contains", value = 3 }, { field = "country", op = "eq", value = "GB" }, { field = "customer.tier", op = "ne", value = 1 }]"#,
];

/// Numbers as f64: JavaScript has one number type, so it writes `250` where
/// Rust and Python write `250.0`; the values are the same.
fn by_value(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(by_value).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), by_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn check_against_rust(guest: &Path, lang: &str) {
    for (k, params) in FILTER_PARAMS.iter().enumerate() {
        let rust = run_filter(
            &plugin("json-filter"),
            params,
            &format!("jf-rust-{lang}-{k}"),
        );
        let mut other = run_filter(guest, params, &format!("jf-{lang}-{k}"));
        if lang == "js" {
            let same = |a: &[Value], b: &[Value]| {
                a.iter().map(by_value).collect::<Vec<_>>()
                    == b.iter().map(by_value).collect::<Vec<_>>()
            };
            assert!(
                same(&other.default, &rust.default),
                "js vs Rust default, params {k}"
            );
            assert!(
                same(&other.alerts, &rust.alerts),
                "js vs Rust alerts, params {k}"
            );
            other.default = rust.default.clone();
            other.alerts = rust.alerts.clone();
        }
        assert!(
            !rust.default.is_empty() || !rust.alerts.is_empty(),
            "params {k} select something"
        );
        assert_eq!(other, rust, "{lang} vs Rust, params {k}:\n{params}");
    }
    // The projection's dead letters (compared above too): the non-object
    // events, with the reason.
    let rust = run_filter(&plugin("json-filter"), FILTER_PARAMS[0], "jf-dead");
    assert_eq!(rust.dead.len(), 4, "{:?}", rust.dead);
    assert!(
        rust.dead
            .iter()
            .all(|(_, r)| r == "`keep` needs a JSON object event, got an array")
    );
}

#[test]
fn json_filter_py_matches_the_rust_json_filter() {
    check_against_rust(json_filter_py(), "py");
}

#[test]
fn json_filter_js_matches_the_rust_json_filter() {
    check_against_rust(json_filter_js(), "js");
}

// ---------------------------------------------------------------------------
// fraud-features: Python vs Rust, same model, same events
// ---------------------------------------------------------------------------

const FRAUD_EVENTS: i64 = 3000;

/// `examples/<example>/pipeline.toml` written into `dir` as a bounded run
/// named `name`: the shared compiled-plugin cache, `count` events at full
/// speed instead of a rate, the models' paths resolved against the
/// example's folder. Its plugins come from `dir/plugins`.
fn example_pipeline(dir: &Path, example: &str, name: &str, count: i64) {
    let folder = workspace().join("examples").join(example);
    let text = std::fs::read_to_string(folder.join("pipeline.toml")).expect("read example");
    let mut config: toml::Table = toml::from_str(&text).expect("example is TOML");
    config.insert("name".into(), name.into());
    config.insert(
        "cache_dir".into(),
        cwasm_cache().display().to_string().into(),
    );
    // The keyed `history` stage's store, fresh in `dir`.
    config.insert(
        "state_dir".into(),
        dir.join("state").display().to_string().into(),
    );
    let source = config
        .get_mut("source")
        .and_then(|s| s.as_table_mut())
        .expect("[source]");
    source.remove("rate");
    source.insert("count".into(), count.into());
    if let Some(models) = config.get_mut("models").and_then(|m| m.as_table_mut()) {
        for (_, model) in models.iter_mut() {
            let model = model.as_table_mut().expect("[models.NAME]");
            let path = folder.join(model["path"].as_str().expect("model path"));
            model.insert("path".into(), path.display().to_string().into());
        }
    }
    std::fs::write(
        dir.join("pipeline.toml"),
        toml::to_string(&config).expect("toml"),
    )
    .expect("write pipeline");
}

/// `examples/fraud` on `FRAUD_EVENTS` events with `plugin_file` as its
/// `fraud-features` stage; returns the scored events by txn_id and the
/// alert ids.
fn run_fraud(plugin_file: &Path, name: &str) -> (HashMap<String, Value>, Vec<String>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(
        dir,
        &[
            ("card-history", &plugin("card-history")),
            ("fraud-features", plugin_file),
        ],
    );
    example_pipeline(dir, "fraud", name, FRAUD_EVENTS);
    let log = run_to_end(dir);
    assert!(
        read_jsonl_or_empty(&dir.join("out/dead-letters.jsonl")).is_empty(),
        "{log}"
    );
    let scores = read_jsonl(&dir.join("out/scores.jsonl"));
    assert_eq!(scores.len(), FRAUD_EVENTS as usize, "{log}");
    let by_id = scores
        .into_iter()
        .map(|v| (v["txn_id"].as_str().expect("txn_id").to_owned(), v))
        .collect();
    let mut alerts: Vec<String> = read_jsonl(&dir.join("out/alerts.jsonl"))
        .iter()
        .map(|v| v["txn_id"].as_str().expect("txn_id").to_owned())
        .collect();
    alerts.sort();
    (by_id, alerts)
}

#[test]
fn fraud_features_py_scores_like_the_rust_plugin() {
    let (rust, rust_alerts) = run_fraud(&plugin("fraud-features"), "fraud-rust-vs-py");
    let (py, py_alerts) = run_fraud(fraud_features_py(), "fraud-py");
    assert_eq!(rust.len(), py.len());
    let mut exact = 0;
    for (id, r) in &rust {
        let p = py
            .get(id)
            .unwrap_or_else(|| panic!("{id} not scored by Python"));
        let (rs, ps) = (
            r["score"].as_f64().expect("score"),
            p["score"].as_f64().expect("score"),
        );
        assert!((rs - ps).abs() < 1e-6, "{id}: Rust {rs} vs Python {ps}");
        if r == p {
            exact += 1;
        }
        // Apart from the score, the event is untouched, field for field.
        let (mut r, mut p) = (r.clone(), p.clone());
        r["score"] = Value::Null;
        p["score"] = Value::Null;
        assert_eq!(r, p);
    }
    // Same features, same f32 inputs, same model: the same bytes, almost
    // always (ONNX Runtime may round differently in differently sized runs).
    assert!(
        exact * 100 >= rust.len() * 99,
        "{exact} of {} identical",
        rust.len()
    );
    assert!(!rust_alerts.is_empty());
    assert_eq!(py_alerts, rust_alerts);
}

// ---------------------------------------------------------------------------
// examples/polyglot: a Python stage, then a Rust stage
// ---------------------------------------------------------------------------

#[test]
fn the_polyglot_example_runs_a_python_then_a_rust_stage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(
        dir,
        &[
            ("card-history", &plugin("card-history")),
            ("fraud-features-py", fraud_features_py()),
            ("json-filter", &plugin("json-filter")),
        ],
    );
    example_pipeline(dir, "polyglot", "polyglot-example", 2000);
    let log = run_to_end(dir);

    let scores = read_jsonl_or_empty(&dir.join("out/scores.jsonl"));
    assert_eq!(scores.len(), 2000, "{log}");
    for s in &scores {
        // (serde_json's map is sorted: the keys, not their order.)
        let keys: Vec<&str> = s
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["amount", "card_id", "score", "txn_id"],
            "the Rust stage projected the Python stage's output: {s}"
        );
    }
    let alerts = read_jsonl_or_empty(&dir.join("out/alerts.jsonl"));
    assert!(!alerts.is_empty());
    let score_of: HashMap<&str, f64> = scores
        .iter()
        .map(|s| {
            (
                s["txn_id"].as_str().expect("id"),
                s["score"].as_f64().expect("score"),
            )
        })
        .collect();
    let above = score_of.values().filter(|&&s| s > 0.3).count();
    assert_eq!(
        alerts.len(),
        above,
        "one alert per score over the threshold"
    );
    for a in &alerts {
        // Alerts leave at the Python stage: full events, not projected.
        assert!(a["merchant_category"].is_string(), "{a}");
        let id = a["txn_id"].as_str().expect("id");
        assert_eq!(Some(&a["score"].as_f64().expect("score")), score_of.get(id));
    }
    assert!(read_jsonl_or_empty(&dir.join("out/dead-letters.jsonl")).is_empty());
}
