use std::collections::{BTreeSet, HashMap};

use super::*;

/// `count` readings of seed `seed`: (key, parsed value, event time).
fn readings(seed: u64, devices: u32, count: usize) -> Vec<(String, Value, i64)> {
    let mut g = SensorGenerator::new(seed, devices);
    (0..count)
        .map(|_| {
            let (key, value, ts) = g.next_reading();
            (key, serde_json::from_str(&value).expect("JSON"), ts)
        })
        .collect()
}

fn truth_of(seed: u64, devices: u32, count: usize, kind: &str) -> Vec<Value> {
    sensor_truth(seed, devices, count as u64)
        .into_iter()
        .filter(|t| t["kind"] == kind)
        .collect()
}

#[test]
fn deterministic_fields_and_nothing_reveals_the_anomalies() {
    let a = readings(42, 20, 5_000);
    assert_eq!(a, readings(42, 20, 5_000));
    assert_ne!(a[..50], readings(43, 20, 5_000)[..50]);
    for (key, v, ts) in &a {
        let object = v.as_object().expect("object");
        let names = ["battery", "device", "humidity", "seq", "temp", "ts"];
        assert!(object.len() == names.len() && names.iter().all(|n| object.contains_key(*n)));
        assert_eq!(v["device"].as_str(), Some(key.as_str()));
        assert_eq!(v["ts"].as_i64(), Some(*ts));
    }
    let keys: BTreeSet<&str> = a.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys.len(), 20);
    assert!(keys.contains("d000") && keys.contains("d019"));
}

#[test]
fn arrivals_are_out_of_order_within_3_s_except_the_listed_delayed_ones() {
    let (devices, count) = (20, 100_000); // 5000 s
    let all = readings(7, devices, count);
    let delayed = truth_of(7, devices, count, "delayed");
    let delayed_ts: BTreeSet<(String, i64)> = delayed
        .iter()
        .map(|t| {
            (
                t["device"].as_str().unwrap_or("").to_owned(),
                t["ts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!((20..=90).contains(&delayed.len()), "{}", delayed.len());
    let (mut max, mut behind) = (i64::MIN, 0);
    for (key, _, ts) in &all {
        if *ts < max {
            behind += 1;
            let lag = max - ts;
            if delayed_ts.contains(&(key.clone(), *ts)) {
                assert!(lag > 4 * MINUTE_MS, "{key} {ts}: {lag}");
            } else {
                assert!(lag <= 3_250, "{key} at {ts} is {lag} ms behind");
            }
        }
        max = max.max(*ts);
    }
    let share = behind as f64 / count as f64;
    assert!((0.02..0.08).contains(&share), "{share}");
    // Per device, `seq` follows event time (gaps: readings still in flight).
    let mut by_device: HashMap<&str, Vec<(i64, u64)>> = HashMap::new();
    for (key, v, ts) in &all {
        by_device
            .entry(key)
            .or_default()
            .push((*ts, v["seq"].as_u64().unwrap_or(0)));
    }
    for list in by_device.values_mut() {
        list.sort();
        assert!(list.windows(2).all(|w| w[1].1 > w[0].1));
    }
}

#[test]
fn planted_anomalies_show_in_the_readings_of_their_device_only() {
    let (devices, count) = (20, 20 * 3_600 * 2); // two hours
    let all = readings(42, devices, count);
    let truth = sensor_truth(42, devices, count as u64);
    let anomalies: Vec<&Value> = truth.iter().filter(|t| t["kind"] != "delayed").collect();
    assert_eq!(anomalies.len(), 6, "{anomalies:?}");
    for hour in anomalies.chunks(3) {
        let devices: BTreeSet<&str> = hour.iter().filter_map(|a| a["device"].as_str()).collect();
        assert_eq!(devices.len(), 3, "distinct devices: {hour:?}");
    }
    let during = |a: &Value, key: &str, ts: i64| {
        a["device"] == key && a["start"].as_i64() <= Some(ts) && Some(ts) < a["end"].as_i64()
    };
    for a in &anomalies {
        let device = a["device"].as_str().expect("device");
        let temps = |inside: bool| -> Vec<f64> {
            all.iter()
                .filter(|(k, _, ts)| k == device && during(a, k, *ts) == inside)
                .filter(|(_, _, ts)| anomalies.iter().all(|b| !during(b, device, *ts)) || inside)
                .filter_map(|(_, v, _)| v["temp"].as_f64())
                .collect()
        };
        let (inside, outside) = (temps(true), temps(false));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        match a["kind"].as_str() {
            Some("offline") => assert!(inside.is_empty(), "{a}: {} readings", inside.len()),
            Some("spike") => assert!(mean(&inside) > mean(&outside) + 7.0, "{a}"),
            Some("drift") => assert!(mean(&inside) > mean(&outside) + 3.0, "{a}"),
            other => panic!("unexpected kind {other:?}"),
        }
    }
    // A device with no anomaly stays near its own mean.
    let quiet: Vec<f64> = all
        .iter()
        .filter(|(k, _, _)| anomalies.iter().all(|a| a["device"] != k.as_str()))
        .filter(|(k, _, _)| k == "d000" || k == "d001" || k == "d002")
        .filter_map(|(_, v, _)| v["temp"].as_f64())
        .collect();
    assert!(quiet.len() > 1000 && quiet.iter().all(|t| (16.0..28.0).contains(t)));
}

#[test]
fn two_devices_land_on_two_partitions_and_one_goes_offline_each_hour() {
    let truth = truth_of(3, 2, 2 * 3_600, "offline");
    assert_eq!(truth.len(), 1);
    let start = truth[0]["start"].as_i64().expect("start");
    assert!((START_TS + 3 * MINUTE_MS..=START_TS + 7 * MINUTE_MS).contains(&start));
    assert_ne!(
        super::super::fnv1a(b"d000") % 2,
        super::super::fnv1a(b"d001") % 2
    );
}
