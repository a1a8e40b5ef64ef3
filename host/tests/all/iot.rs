//! The IoT example end to end: the real `examples/iot/pipeline.toml` (state,
//! cache and outputs in a temporary folder), the `sensor-windows` and
//! `sensor-score` plugins built from source, checked against what
//! `weir generate --schema sensors --truth` says was planted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::support::{output_of, plugin_dir, read_jsonl, read_jsonl_or_empty, weir, weir_run};

/// Alerts on windows of no planted spike or drift that the test tolerates
/// over the hour (20 devices, ~1,200 windows): a z-score with a 4σ
/// threshold and a 0.5 °C floor should raise none on the generator's normal
/// readings; one is allowed for a partial window at an offline edge.
const FALSE_POSITIVE_BUDGET: usize = 1;

/// The example pipeline written into `dir` (its relative outputs land there).
fn example_pipeline(dir: &Path) -> toml::Table {
    let example = crate::support::workspace().join("examples/iot/pipeline.toml");
    let text = std::fs::read_to_string(example).expect("read example");
    let mut config: toml::Table = toml::from_str(&text).expect("example is TOML");
    config.insert(
        "cache_dir".into(),
        dir.join("cache").display().to_string().into(),
    );
    config
}

fn source_param(config: &toml::Table, name: &str) -> i64 {
    config["source"][name]
        .as_integer()
        .unwrap_or_else(|| panic!("source.{name}"))
}

/// Does window `w` (`start`, `end`) overlap `[start, end)` of anomaly `a`?
fn overlaps(w: &Value, a: &Value) -> bool {
    w["device"] == a["device"]
        && w["start"].as_i64() < a["end"].as_i64()
        && a["start"].as_i64() < w["end"].as_i64()
}

#[test]
fn example_alerts_the_planted_anomalies_counts_out_of_order_readings_and_routes_late_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["sensor-windows", "sensor-score"]);
    let config = example_pipeline(dir);
    std::fs::write(
        dir.join("pipeline.toml"),
        toml::to_string(&config).expect("toml"),
    )
    .expect("write pipeline");
    let (ok, _, err) = output_of(&mut weir_run(dir));
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");

    // The same readings and what was planted in them.
    let (seed, devices, count) = (
        source_param(&config, "seed"),
        source_param(&config, "devices"),
        source_param(&config, "count"),
    );
    let truth_path = dir.join("truth.jsonl");
    let (ok, readings, err) = output_of(
        weir()
            .args(["generate", "--schema", "sensors"])
            .args([
                "--seed",
                &seed.to_string(),
                "--devices",
                &devices.to_string(),
            ])
            .args(["--count", &count.to_string(), "--truth"])
            .arg(&truth_path),
    );
    assert!(ok, "{err}");
    let truth = read_jsonl(&truth_path);
    let anomalies: Vec<&Value> = truth
        .iter()
        .filter(|t| t["kind"] == "spike" || t["kind"] == "drift")
        .collect();
    assert_eq!(
        anomalies.len(),
        2,
        "one spike and one drift in the hour: {truth:?}"
    );
    let delayed: BTreeSet<(String, i64)> = truth
        .iter()
        .filter(|t| t["kind"] == "delayed")
        .map(|t| {
            (
                t["device"].as_str().unwrap_or("").to_owned(),
                t["ts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        !delayed.is_empty(),
        "the hour has readings delayed by minutes"
    );

    let out = |name: &str| read_jsonl_or_empty(&dir.join("out").join(name));
    let dead = out("dead-letters.jsonl");
    assert!(dead.is_empty(), "{dead:?}");

    // Late: exactly the readings delayed by minutes, each with the reason.
    let late = out("late.jsonl");
    let late_set: BTreeSet<(String, i64)> = late
        .iter()
        .map(|l| {
            let reason = l["headers"]["weir.late"].as_str().unwrap_or("");
            assert!(reason.starts_with("late event: "), "{l}");
            let v = &l["value"];
            (
                v["device"].as_str().unwrap_or("").to_owned(),
                v["ts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(late.len(), late_set.len(), "each late reading once");
    assert_eq!(late_set, delayed);

    // Windows: every reading that was not late is counted in its window,
    // the out-of-order ones (up to 3 s behind) included.
    let mut want: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut out_of_order = 0;
    let mut newest = i64::MIN;
    for line in readings.lines() {
        let r: Value = serde_json::from_str(line).expect("a reading");
        let (device, ts) = (
            r["device"].as_str().expect("device").to_owned(),
            r["ts"].as_i64().expect("ts"),
        );
        if ts < newest && !delayed.contains(&(device.clone(), ts)) {
            out_of_order += 1;
        }
        newest = newest.max(ts);
        if !delayed.contains(&(device.clone(), ts)) {
            *want
                .entry((device, ts.div_euclid(60_000) * 60_000))
                .or_default() += 1;
        }
    }
    assert!(out_of_order > 1000, "{out_of_order} out-of-order readings");
    let windows = out("windows.jsonl");
    let got: BTreeMap<(String, i64), u64> = windows
        .iter()
        .map(|w| {
            assert_eq!(
                w["end"].as_i64(),
                w["start"].as_i64().map(|s| s + 60_000),
                "{w}"
            );
            (
                (
                    w["device"].as_str().unwrap_or("").to_owned(),
                    w["start"].as_i64().unwrap_or(0),
                ),
                w["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got.len(), windows.len(), "one result per device and window");
    assert_eq!(got, want);

    // Alerts: every planted spike and drift, on its device, in its time.
    let alerts = out("alerts.jsonl");
    assert_eq!(
        alerts.len(),
        windows.iter().filter(|w| w["anomaly"] == true).count()
    );
    for a in &anomalies {
        let hits = alerts.iter().filter(|w| overlaps(w, a)).count();
        assert!(hits >= 1, "no alert for {a}");
        if a["kind"] == "spike" {
            // A 3–5 minute spike of 8+ °C: every full window in it alerts.
            let full = windows
                .iter()
                .filter(|w| {
                    w["device"] == a["device"]
                        && a["start"].as_i64() <= w["start"].as_i64()
                        && w["end"].as_i64() <= a["end"].as_i64()
                })
                .count();
            assert!(
                hits >= full && full >= 2,
                "{a}: {hits} alerts, {full} full windows"
            );
        }
    }
    let false_positives: Vec<&Value> = alerts
        .iter()
        .filter(|w| !anomalies.iter().any(|a| overlaps(w, a)))
        .collect();
    assert!(
        false_positives.len() <= FALSE_POSITIVE_BUDGET,
        "alerts on normal windows: {false_positives:?}"
    );
    let alerted: BTreeSet<&str> = alerts.iter().filter_map(|w| w["device"].as_str()).collect();
    let planted: BTreeSet<&str> = anomalies
        .iter()
        .filter_map(|a| a["device"].as_str())
        .collect();
    assert!(
        alerted.difference(&planted).count() <= FALSE_POSITIVE_BUDGET,
        "{alerted:?} vs {planted:?}"
    );
}
