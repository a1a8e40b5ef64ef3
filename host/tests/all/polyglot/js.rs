//! JavaScript plugins in a real pipeline: a routed and projected stream
//! through `json-filter-js`, and its dead letters (thrown errors), exactly,
//! through both of the JS SDK's codecs.

use std::path::Path;

use serde_json::{Value, json};

use super::{json_filter_js, json_filter_js_v011, pipeline, plugins, run_to_end};
use crate::support::read_jsonl_or_empty;

/// The same source built against 0.2.0 (the packed batch, the default) and
/// against 0.1.1 (the record batch) gives the same outputs, routes and dead
/// letters.
#[test]
fn js_outputs_routes_and_dead_letters_are_exact_on_both_contracts() {
    for component in [json_filter_js(), json_filter_js_v011()] {
        js_outputs_are_exact(component);
    }
}

fn js_outputs_are_exact(component: &Path) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugins(dir, &[("jf", component)]);
    let inputs: Vec<Value> = (0..200u64)
        .map(|i| {
            if i == 77 {
                json!(["not", "an", "object"])
            } else {
                json!({"id": i, "amount": i * 10, "user": {"name": format!("u{i}"), "tier": i % 3}})
            }
        })
        .collect();
    let text: String = inputs.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
    pipeline(dir, "js-route")
        .file_source("in.jsonl")
        .batch(50, 1000)
        .stage_with(
            "js",
            "jf",
            r#"[stages.params]
match = "any"
where = [{ field = "amount", op = "gte", value = 1000 }, { field = "user", op = "exists", value = false }]
keep = ["id", "user.tier"]
route = "alerts"
"#,
        )
        .file_output("alerts", "alerts.jsonl")
        .write(dir);
    run_to_end(dir);

    // Below 1000: unchanged, on the default output, in order.
    let default = read_jsonl_or_empty(&dir.join("out.jsonl"));
    let expected: Vec<&Value> = inputs[..100].iter().filter(|v| v.is_object()).collect();
    assert_eq!(
        default.iter().map(|r| &r["value"]).collect::<Vec<_>>(),
        expected
    );
    // From 1000: projected, to `alerts`, in order.
    let alerts = read_jsonl_or_empty(&dir.join("alerts.jsonl"));
    let want: Vec<Value> = (100..200u64)
        .map(|i| json!({"id": i, "user": {"tier": i % 3}}))
        .collect();
    assert_eq!(
        alerts
            .iter()
            .map(|r| r["value"].clone())
            .collect::<Vec<_>>(),
        want
    );
    for r in alerts.iter().chain(&default) {
        assert!(r["headers"]["weir.version.js"].is_string(), "{r}");
    }
    // #77 matches (no `user`) but is not an object: the projection throws,
    // so it is a dead letter with the reason and its provenance.
    let dlq = read_jsonl_or_empty(&dir.join("dlq.jsonl"));
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    let h = &dlq[0]["headers"];
    assert_eq!(dlq[0]["value"], json!(["not", "an", "object"]));
    assert_eq!(
        h["weir.error"],
        "`keep` needs a JSON object event, got an array"
    );
    assert_eq!(h["weir.stage"], "js");
    assert_eq!(h["weir.plugin"], "jf");
    assert_eq!(h["weir.source.offset"], "77");
}
