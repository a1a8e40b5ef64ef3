//! Stages with `parallelism` > 1: several instances of the plugin run each
//! batch side by side (a lane each), and the outputs come out as one
//! instance would have made them; keyed state stays exact; a poison event
//! in one lane is isolated without losing the others; hot swaps replace
//! every lane's instance.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::metrics::{free_port, get, parse, wait_for};
use crate::state::{card_lines, counting, ranks, stored_counts};
use crate::support::{Pipeline, output_of, plugin, plugin_dir, read_jsonl, weir, weir_run};

fn run_ok(dir: &std::path::Path) -> String {
    let (ok, _, err) = output_of(&mut weir_run(dir));
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    assert!(ok, "{err}{log}");
    log
}

#[test]
fn a_keyed_stage_on_four_instances_counts_exactly_in_input_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (n, keys) = (20_000, 101);
    std::fs::write(dir.path().join("in.jsonl"), card_lines(n, keys)).expect("write");
    counting(dir.path(), "").batch(1024, 20).write(dir.path());
    // `counting` keys the stage; run it on four instances.
    let toml = std::fs::read_to_string(dir.path().join("pipeline.toml")).expect("read");
    let toml = toml.replacen(
        "plugin = \"keyed-count\"\n",
        "plugin = \"keyed-count\"\nparallelism = 4\n",
        1,
    );
    std::fs::write(dir.path().join("pipeline.toml"), toml).expect("write");
    let log = run_ok(dir.path());
    assert!(log.contains("instances=4"), "four instances ran: {log}");
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), n, "one output per input");
    let want = ranks(n, keys);
    for (at, o) in out.iter().enumerate() {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        assert_eq!(input, at, "outputs in input order");
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
    }
    let stored = stored_counts(dir.path());
    assert_eq!(stored.len(), keys);
    assert_eq!(stored.values().sum::<u64>(), n as u64);
}

#[test]
fn a_plain_stage_on_three_instances_keeps_input_order_and_isolates_a_poison_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    plugin_dir(dir.path(), &["hostile"]);
    let n = 6_000;
    let poison = [1_234usize, 4_321];
    let lines: String = (0..n)
        .map(|i| {
            if poison.contains(&i) {
                format!("{{\"id\":{i},\"trigger\":true}}\n")
            } else {
                format!("{{\"id\":{i}}}\n")
            }
        })
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).expect("write");
    Pipeline::new(dir.path())
        .file_source("in.jsonl")
        .batch(1024, 20)
        .stage_with(
            "hostile",
            "hostile",
            "parallelism = 3\n[stages.params]\nmode = \"panic\"\n",
        )
        .write(dir.path());
    let log = run_ok(dir.path());
    assert!(log.contains("instances=3"), "three instances ran: {log}");
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    let ids: Vec<u64> = out
        .iter()
        .map(|o| o["value"]["id"].as_u64().expect("id"))
        .collect();
    let want: Vec<u64> = (0..n as u64)
        .filter(|i| !poison.contains(&(*i as usize)))
        .collect();
    // A lane that faulted runs again after the others of its batch: its
    // events' outputs follow theirs. Everything else is in input order.
    let mut got = ids.clone();
    got.sort_unstable();
    assert_eq!(got, want, "every event but the poison ones, once");
    let in_order = ids.windows(2).filter(|w| w[0] < w[1]).count();
    assert!(
        in_order + 8 >= ids.len(),
        "at most a few breaks of order (one per faulted lane): {} of {}",
        ids.len() - 1 - in_order,
        ids.len()
    );
    let dead = read_jsonl(&dir.path().join("dlq.jsonl"));
    let mut dead_ids: Vec<u64> = dead
        .iter()
        .map(|d| d["value"]["id"].as_u64().expect("dead id"))
        .collect();
    dead_ids.sort_unstable();
    assert_eq!(
        dead_ids,
        vec![1_234, 4_321],
        "exactly the poison events: {dead:?}"
    );
    for d in &dead {
        let reason = d["headers"]["weir.error"].as_str().expect("reason");
        assert!(
            reason.contains("boom on id"),
            "the reason names the panic: {reason}"
        );
    }
}

#[test]
fn hot_swaps_replace_every_instance_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let base = std::fs::read(plugin("keyed-count")).expect("read keyed-count");
    let install = |bytes: &[u8]| {
        let tmp = plugins.join(".keyed-count.wasm.tmp");
        std::fs::write(&tmp, bytes).expect("write");
        std::fs::rename(&tmp, plugins.join("keyed-count.wasm")).expect("rename");
    };
    install(&base);
    Pipeline::new(dir.path())
        .top("name = \"swaps\"")
        .batch(512, 20)
        .stage_with(
            "count",
            "keyed-count",
            "parallelism = 2\n[stages.state]\nkey = \"/card\"\n",
        )
        .tables("[reload]\ndebounce_ms = 50\npoll_interval_ms = 20\n")
        .write(dir.path());
    let log = std::fs::File::create(dir.path().join("weir.log")).expect("log");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(dir.path().join("pipeline.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start weir");
    let mut stdin = Some(child.stdin.take().expect("stdin"));
    let keys = 29;
    let mut next = 0usize;
    let mut feed = |n: usize| {
        let Some(stdin) = stdin.as_mut() else { return };
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(&format!(
                "{{\"card\":\"c{}\",\"input\":{next}}}\n",
                next % keys
            ));
            next += 1;
        }
        stdin.write_all(text.as_bytes()).expect("feed");
        stdin.flush().expect("flush");
    };
    let log_count = |needle: &str| {
        let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(needle)).count()
    };
    let wait_for = |needle: &str, n: usize, feed: &mut dyn FnMut(usize)| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while log_count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n}x {needle:?}"
            );
            feed(600);
            std::thread::sleep(Duration::from_millis(30));
        }
    };
    wait_for("watching for new plugin versions", 1, &mut feed);
    let swaps = 5;
    for k in 1..=swaps {
        feed(2_000);
        install(&crate::reload::variant(&base, k));
        wait_for("plugin swapped", k as usize, &mut feed);
    }
    feed(2_000);
    drop(stdin);
    let status = child.wait().expect("wait");
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert!(
        log.matches("parallel instances ready").count() >= swaps as usize,
        "each version starts its own parallel instances: {log}"
    );

    let n = next;
    let want = ranks(n, keys);
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), n, "one output per input");
    let mut versions = std::collections::BTreeSet::new();
    for o in &out {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
        if let Some(version) = o["headers"]["weir.version.count"].as_str() {
            versions.insert(version.to_owned());
        }
    }
    assert_eq!(versions.len(), swaps as usize + 1, "{versions:?}");
    let stored = stored_counts(dir.path());
    assert_eq!(stored.values().sum::<u64>(), n as u64);
}

#[test]
fn metrics_count_each_instance_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    plugin_dir(dir.path(), &["upper"]);
    let n = 6_000;
    let lines: String = (0..n).map(|i| format!("{{\"id\":{i}}}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).expect("write");
    let port = free_port();
    Pipeline::new(dir.path())
        .file_source("in.jsonl")
        .batch(1024, 20)
        .stage_with("up", "upper", "parallelism = 3\n")
        .tables(&format!(
            "[admin]\naddress = \"127.0.0.1:{port}\"\nlinger_secs = 60\n"
        ))
        .write(dir.path());
    let mut child = weir_run(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("start weir");
    let stage = r#"stage="up",plugin="upper""#;
    let mut m = Default::default();
    wait_for(
        "every event through the stage",
        Duration::from_secs(120),
        || {
            m = get(port, "/metrics")
                .map(|r| parse(&r.1))
                .unwrap_or_default();
            m.get(&format!("weir_stage_events_in_total{{{stage}}}")) == Some(&(n as f64))
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    let per_instance: Vec<f64> = (0..3)
        .map(|i| {
            let key = format!("weir_stage_instance_events_total{{{stage},instance=\"{i}\"}}");
            m.get(&key).copied().unwrap_or_default()
        })
        .collect();
    assert!(
        per_instance.iter().all(|&e| e > 0.0),
        "every instance ran events: {per_instance:?}"
    );
    assert_eq!(
        per_instance.iter().sum::<f64>(),
        n as f64,
        "{per_instance:?}"
    );
    assert!(
        !m.keys().any(|k| k.contains("instance=\"3\"")),
        "no fourth instance"
    );
}
