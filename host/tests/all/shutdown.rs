//! SIGTERM mid-stream: the host stops reading, drains what it read through
//! the plugins to the sinks, and exits 0. Nothing read is lost.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Pipeline, plugin_dir, read_jsonl, weir};

#[test]
fn sigterm_drains_everything_read_and_exits_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    plugin_dir(dir, &["tagger"]);
    Pipeline::new(dir)
        .source(
            "type = \"generate\"\nschema = \"sized\"\nsize = 200\nrate = 20000\npartitions = 4\n",
        )
        .batch(256, 20)
        .stage_with("tag", "tagger", "[stages.params]\ntag = \"t\"\n")
        .write(dir);
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(dir.join("pipeline.toml"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start weir");

    // Let it run until output is flowing.
    let out = dir.join("out.jsonl");
    let started = Instant::now();
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 1_000_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no output after 60 s"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "weir exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("poll") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "weir did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(exit.success(), "exit {exit:?}: {stderr}");

    // Everything read was delivered: per partition, offsets 0..n with no
    // gap and no duplicate, and the total equals what the source read.
    let records = read_jsonl(&out);
    let mut per_partition: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &records {
        assert_eq!(r["headers"]["tag"], "t");
        per_partition
            .entry(r["source"]["partition"].as_i64().expect("partition"))
            .or_default()
            .push(r["source"]["offset"].as_i64().expect("offset"));
    }
    assert_eq!(per_partition.len(), 4);
    for (p, offsets) in &per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {p}: gap, duplicate or reordering"
        );
    }
    let read = stderr
        .lines()
        .find(|l| l.contains("pipeline finished"))
        .and_then(|l| l.split("events_in=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    assert_eq!(records.len(), read, "events read vs delivered");
    assert!(!dir.join("dlq.jsonl").exists() || read_jsonl(&dir.join("dlq.jsonl")).is_empty());
}
