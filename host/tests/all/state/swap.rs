//! Hot swaps of a keyed plugin keep its state; a version that cannot read
//! the stored state is refused and the old one keeps serving.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{ranks, stored_counts};
use crate::reload::variant;
use crate::support::{Pipeline, plugin, read_jsonl, weir};

fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join(".keyed-count.wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join("keyed-count.wasm")).expect("rename");
}

/// How many log lines contain `needle`.
fn log_count(dir: &Path, needle: &str) -> usize {
    let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Feeds events (a stage swaps at a batch boundary: it needs batches)
/// until the log has `n` lines containing `needle`.
fn feed_until(
    dir: &Path,
    needle: &str,
    n: usize,
    child: &mut std::process::Child,
    feed: &mut dyn FnMut(usize),
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_count(dir, needle) < n {
        let log = || std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
        assert!(
            child.try_wait().expect("poll").is_none(),
            "weir exited: {}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n}× {needle:?}: {}",
            log()
        );
        feed(3);
        std::thread::sleep(Duration::from_millis(15));
    }
}

#[test]
fn twenty_hot_swaps_keep_counts_exact_and_an_incompatible_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let base = std::fs::read(plugin("keyed-count")).expect("read keyed-count");
    install(&plugins, &base);
    Pipeline::new(dir.path())
        .top("name = \"swaps\"")
        .batch(16, 2)
        .stage_with("count", "keyed-count", "[stages.state]\nkey = \"/card\"\n")
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
    let keys = 13;
    let mut next = 0usize;
    let mut feed = |n: usize| {
        let Some(stdin) = stdin.as_mut() else { return };
        for _ in 0..n {
            writeln!(stdin, "{{\"card\":\"c{}\",\"input\":{next}}}", next % keys).expect("feed");
            next += 1;
        }
        stdin.flush().expect("flush");
    };
    let d = dir.path();
    feed_until(
        d,
        "watching for new plugin versions",
        1,
        &mut child,
        &mut feed,
    );
    for k in 1..=20u32 {
        feed(100);
        install(&plugins, &variant(&base, k));
        feed_until(d, "plugin swapped", k as usize, &mut child, &mut feed);
    }
    feed(100);
    let incompatible = std::fs::read(plugin("keyed-incompatible")).expect("read");
    install(&plugins, &incompatible);
    feed_until(d, "new plugin version refused", 1, &mut child, &mut feed);
    feed(100);
    drop(stdin);
    let status = child.wait().expect("wait");
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("cannot read the stored state"),
        "the refusal says why: {log}"
    );

    let n = next;
    let want = ranks(n, keys);
    let out = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(out.len(), n, "one output per input");
    let mut versions = std::collections::BTreeSet::new();
    for o in &out {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        // A number: keyed-incompatible (a string count) never served.
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
        if let Some(version) = o["headers"]["weir.version.count"].as_str() {
            versions.insert(version.to_owned());
        }
    }
    assert_eq!(
        versions.len(),
        21,
        "every version served some events: {versions:?}"
    );
    let stored = stored_counts(dir.path());
    assert_eq!(stored.len(), keys);
    assert_eq!(stored.values().sum::<u64>(), n as u64);
}
