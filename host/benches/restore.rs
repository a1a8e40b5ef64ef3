//! The time to restore a partition's keyed state from its changelog topic,
//! per million keys (issue #11: state moves with partitions, the Kafka
//! Streams way). A first `weir run` reads N events of N distinct keys from
//! one Kafka partition through the keyed `keyed-count` plugin (each commit
//! also writes its changes to `<pipeline>-<stage>-changelog`) and is
//! stopped; its state directory is deleted; a second run, in the same
//! consumer group, finds no local state and restores the partition from the
//! changelog before it reads anything. The restore's own log line gives the
//! keys, the records read and the time.
//!
//! Run: `cargo bench -p weir --bench restore` (`WEIR_RESTORE_KEYS`, default
//! 200,000; starts its own tansu broker on `sqlite://`: the memory engine
//! skips records when a fetch starts inside a record batch, which a restore
//! of more than one fetch does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/broker.rs"]
mod broker;
mod common;
#[path = "common/rate.rs"]
#[allow(dead_code)]
mod rate;
use broker::Broker;

fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

fn produce(broker: &Broker, n: usize) {
    broker.produce(
        "in",
        (0..n).map(|i| (0, None, format!("{{\"k\":\"key-{i:08}\",\"input\":{i}}}"))),
    );
}

fn pipeline(dir: &Path, broker: &Broker) -> PathBuf {
    let toml = format!(
        "name = \"restore\"\nplugin_dir = \"{plugins}\"\ncache_dir = \"{cache}\"\nstate_dir = \"{state}\"\n\
         [source]\ntype = \"kafka\"\nbrokers = \"{addr}\"\ntopics = [\"in\"]\ngroup_id = \"g-restore\"\n\
         buffer_events = 1000000\n\
         [batch]\nmax_events = 1024\nmax_wait_ms = 20\n\
         [[stages]]\nname = \"count\"\nplugin = \"keyed-count\"\n[stages.state]\nkey = \"/k\"\n\
         [outputs.default]\ntype = \"file\"\npath = \"{out}\"\nformat = \"value\"\n",
        plugins = dir.join("plugins").display(),
        cache = dir.join("cache").display(),
        state = dir.join("state").display(),
        addr = broker.addr(),
        out = dir.join("out.jsonl").display(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, toml).expect("write pipeline");
    path
}

fn start(toml: &Path, log: &Path) -> Child {
    Command::new(weir_bin())
        .args(["run", "--quiet"])
        .arg(toml)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start weir")
}

/// Stops `child` as an operator would (SIGTERM: drain, commit, flush).
fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "weir exited with {exit:?}");
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The restore's log line: (keys, records, ms).
fn restored(log: &Path) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("restored partition 0 of stage count"))?;
    let after = line.split("stage count: ").nth(1)?;
    let mut words = after.split_whitespace();
    let keys = words.next()?.parse().ok()?;
    let ms = words.nth(2)?.parse().ok()?;
    let records = line
        .split("records=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((keys, records, ms))
}

fn main() {
    let n: usize = std::env::var("WEIR_RESTORE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    common::plugin_dir(dir.path(), &["keyed-count"]);
    let broker = Broker::sqlite();
    broker.topic("in", 1);
    produce(&broker, n);
    let toml = pipeline(dir.path(), &broker);
    let out = dir.path().join("out.jsonl");

    let seen = rate::tail(out, n, None);
    let t = Instant::now();
    let first = start(&toml, &dir.path().join("weir1.log"));
    seen.join().expect("every event counted");
    let took = t.elapsed().as_secs_f64();
    // Past the commit interval, so the changelog holds every change.
    std::thread::sleep(Duration::from_secs(2));
    stop(first);
    let state = std::fs::read_dir(dir.path().join("state"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(state > 0, "the first run kept no local state");
    std::fs::remove_dir_all(dir.path().join("state")).expect("delete the local state");

    let log = dir.path().join("weir2.log");
    let second = start(&toml, &log);
    wait_for("the restore", Duration::from_secs(600), || {
        restored(&log).is_some()
    });
    stop(second);
    let (keys, records, ms) = restored(&log).expect("restore line");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "restore bench: {n} keys in one partition; load average {}",
        load.trim()
    );
    println!("  first run: {n} events through the keyed stage in {took:.1} s (output seen)");
    println!(
        "  restore: {keys} keys from {records} changelog records in {ms} ms = {:.2} s per million keys",
        ms as f64 / 1000.0 / (keys as f64 / 1e6)
    );
    assert_eq!(keys as usize, n, "every key restored");
}
