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

/// Waits until the log has `n` lines containing `needle`.
fn wait_log(dir: &Path, needle: &str, n: usize, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default();
        if log.lines().filter(|l| l.contains(needle)).count() >= n {
            return;
        }
        assert!(
            child.try_wait().expect("poll").is_none(),
            "weir exited: {log}"
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n}× {needle:?}: {log}"
        );
        std::thread::sleep(Duration::from_millis(10));
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
    let mut stdin = child.stdin.take().expect("stdin");
    let keys = 13;
    let mut next = 0usize;
    let mut feed = |stdin: &mut std::process::ChildStdin, n: usize| {
        for _ in 0..n {
            writeln!(stdin, "{{\"card\":\"c{}\",\"input\":{next}}}", next % keys).expect("feed");
            next += 1;
        }
        stdin.flush().expect("flush");
    };
    for k in 1..=20u32 {
        feed(&mut stdin, 150);
        install(&plugins, &variant(&base, k));
        wait_log(dir.path(), "plugin swapped", k as usize, &mut child);
    }
    feed(&mut stdin, 150);
    let incompatible = std::fs::read(plugin("keyed-incompatible")).expect("read");
    install(&plugins, &incompatible);
    wait_log(dir.path(), "new plugin version refused", 1, &mut child);
    feed(&mut stdin, 150);
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
