//! Keyed state on a Kafka source (real tansu broker on `sqlite://` with a
//! 2 s maintenance interval, so the changelog topics really get compacted):
//! SIGKILL and restart, two processes moving partitions both ways through
//! the changelog, and a restore into an empty `state_dir`. Counts are exact:
//! every output — re-deliveries included — carries its input's rank among
//! its key's events.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ranks, read_lines_tolerant, stored_counts};
use crate::kafka::{PARTITIONS, Weir, produce_each, timed, wait_for_log};
use crate::support::{Broker, Pipeline, plugin_dir};

pub(super) const KEYS: usize = 41;
/// An assignment of every partition of `in`, as the source logs it.
const ALL_FOUR: &str = r#"partitions=["in[0]", "in[1]", "in[2]", "in[3]"]"#;

/// Produces inputs `range`: value `{"card": "c<k>", "input": i}` with
/// `k = i % KEYS`, to partition `k % 4` (a card's events share a partition,
/// in input order).
pub(super) fn produce_cards(broker: &Broker, range: std::ops::Range<usize>) {
    produce_cards_to(&broker.addr(), range);
}

/// [`produce_cards`] to the broker at `addr` (from another thread).
pub(super) fn produce_cards_to(addr: &str, range: std::ops::Range<usize>) {
    let range = range.start as u64..range.end as u64;
    produce_each(addr, "in", range, |i| {
        let k = i as usize % KEYS;
        let key = format!("c{k}");
        let value = format!("{{\"card\":\"{key}\",\"input\":{i}}}");
        ((k % PARTITIONS as usize) as i32, key, value)
    });
}

/// `<dir>/pipeline.toml`: `in` (group `group`) → keyed-count on `/card` →
/// `<dir>/<out>`; pipeline name `counts` (the changelog is
/// `counts-count-changelog`), state under `<dir>/.weir-state`.
pub(super) fn counting(dir: &Path, broker: &Broker, group: &str, out: &str) -> PathBuf {
    plugin_dir(dir, &["keyed-count"]);
    Pipeline::new(dir)
        .top("name = \"counts\"")
        .source(&crate::kafka::in_topic_source(broker, group))
        .batch(64, 5)
        .stage_with("count", "keyed-count", "[stages.state]\nkey = \"/card\"\n")
        .output("default", &format!("type = \"file\"\npath = \"{out}\"\n"))
        .tables("[reload]\nenabled = false\n")
        .write(dir)
}

/// The outputs of these files (torn last lines skipped).
pub(super) fn outputs(files: &[PathBuf]) -> Vec<serde_json::Value> {
    files.iter().flat_map(|f| read_lines_tolerant(f)).collect()
}

pub(super) fn distinct(files: &[PathBuf]) -> BTreeSet<u64> {
    outputs(files)
        .iter()
        .filter_map(|o| o["value"]["input"].as_u64())
        .collect()
}

/// Waits until the files hold outputs for `want` distinct inputs.
pub(super) fn wait_outputs(files: &[PathBuf], want: usize, what: &str, logs: &[&Weir]) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got = distinct(files).len();
        if got >= want {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|w| w.log()).collect();
            panic!(
                "{what}: {got} of {want} inputs after 180 s\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every input below `n` has an output, and every output carries the exact
/// count of its input (state applied exactly once); returns how many
/// outputs were re-deliveries.
pub(super) fn assert_exact(files: &[PathBuf], n: usize) -> usize {
    let want = ranks(n, KEYS);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for o in outputs(files) {
        let v = &o["value"];
        let input = v["input"].as_u64().expect("input") as usize;
        assert!(input < n, "an input never produced: {v}");
        assert_eq!(v["key"], format!("c{}", input % KEYS), "{v}");
        assert_eq!(v["count"].as_u64(), Some(want[input]), "input {input}: {v}");
        *seen.entry(input).or_default() += 1;
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "inputs without output: {missing:?}");
    seen.values().map(|c| c - 1).sum()
}

/// The per-key totals of `n` inputs.
pub(super) fn totals(n: usize) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for i in 0..n {
        *out.entry(format!("c{}", i % KEYS)).or_default() += 1;
    }
    out
}

/// A temporary folder, and a compacting broker with topic `in` holding
/// inputs `0..n`.
pub(super) fn broker_with(n: usize) -> (tempfile::TempDir, Broker) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = Broker::sqlite_compacting();
    broker.create_topic("in", PARTITIONS as u32);
    produce_cards(&broker, 0..n);
    (tmp, broker)
}

/// [`broker_with`], and a folder per group member (`<tmp>/<name>`).
fn members(n: usize, names: [&str; 2]) -> (tempfile::TempDir, Broker, [PathBuf; 2]) {
    let (tmp, broker) = broker_with(n);
    let dirs = names.map(|name| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    });
    (tmp, broker, dirs)
}

/// The broker's topics, in order.
fn topic_names(broker: &Broker) -> Vec<String> {
    let probe: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .expect("consumer");
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&probe, None, Duration::from_secs(10))
            .expect("metadata");
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    names.sort();
    names
}

/// The "restored partition N of stage count: K keys" lines of a log: K per line.
fn restored_keys(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("of stage count: ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn kafka_keyed_sigkill_mid_stream_and_restart_keep_counts_exact() {
    timed(Duration::from_secs(300), || {
        let n = 6_000;
        // A third of the stream is there at the start; the rest arrives in
        // small paced chunks while weir runs, so the kill lands mid-stream
        // however fast this machine consumes.
        let (tmp, broker) = broker_with(n / 3);
        let dir = tmp.path();
        let first = counting(dir, &broker, "g-crash", "out1.jsonl");
        let files = [dir.join("out1.jsonl"), dir.join("out2.jsonl")];
        let mut weir = Weir::start(&first, dir.join("weir1.log"));
        let addr = broker.addr();
        let producer = std::thread::spawn(move || {
            for from in (n / 3..n).step_by(100) {
                produce_cards_to(&addr, from..(from + 100).min(n));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        wait_outputs(&files[..1], n / 6, "before the kill", &[&weir]);
        drop(weir); // SIGKILL
        let done = distinct(&files).len();
        assert!(
            done < n,
            "killed mid-stream: {done} of {n} inputs had output"
        );
        producer.join().expect("the producer thread");
        eprintln!("killed after {done} of {n} inputs");
        let second = counting(dir, &broker, "g-crash", "out2.jsonl");
        weir = Weir::start(&second, dir.join("weir2.log"));
        wait_outputs(&files, n, "after the restart", &[&weir]);
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());
        let repeated = assert_exact(&files, n);
        eprintln!("{repeated} outputs re-delivered after the kill");
        let log = weir.log();
        assert!(log.contains("restored partition"), "{log}");
        assert_eq!(stored_counts(dir), totals(n));
    });
}

/// Partitions move A → B (B joins), back and forth through a SIGKILL of A
/// and its restart, all to B (A leaves), and B → A (A joins again); the
/// two processes have separate `state_dir`s, so state moves only through
/// the changelog.
///
/// tansu 0.6 keeps a SIGKILLed member's partitions assigned to it until
/// another member joins (its expiry triggers no rebalance): after the kill
/// the test waits out A's session (6 s) and restarts A, whose join hands the
/// dead member's partitions out; "all to B" is then shown by A leaving
/// (SIGTERM).
#[test]
fn kafka_keyed_partitions_move_both_ways_between_two_processes_counts_exact() {
    timed(Duration::from_secs(600), || {
        let step = 1_000;
        let (_tmp, broker, [a_dir, b_dir]) = members(2 * step, ["a", "b"]);
        let a_run = |run: usize| {
            let file = counting(&a_dir, &broker, "g-move", &format!("out{run}.jsonl"));
            Weir::start(&file, a_dir.join(format!("weir{run}.log")))
        };
        let b_file = counting(&b_dir, &broker, "g-move", "out.jsonl");
        let files: Vec<PathBuf> = (1..=3)
            .map(|run| a_dir.join(format!("out{run}.jsonl")))
            .chain([b_dir.join("out.jsonl")])
            .collect();
        let a = a_run(1);
        wait_outputs(&files, step, "A alone", &[&a]);
        // B joins mid-stream: some partitions move to B with their state
        // (B's state_dir is empty: only the changelog has it).
        let mut b = Weir::start(&b_file, b_dir.join("weir.log"));
        wait_for_log(&b, "partitions assigned", 1);
        produce_cards(&broker, 2 * step..4 * step);
        wait_outputs(&files, 4 * step, "A and B", &[&a, &b]);
        assert!(
            restored_keys(&b.log()).iter().any(|&k| k > 0),
            "B restored state A wrote: {}",
            b.log()
        );
        // SIGKILL A with events of its partitions unread.
        produce_cards(&broker, 4 * step..5 * step);
        drop(a);
        std::thread::sleep(Duration::from_secs(8));
        let mut a = a_run(2);
        wait_for_log(&a, "partitions assigned", 1);
        wait_outputs(&files, 5 * step, "after the kill", &[&a, &b]);
        // A leaves: every partition moves to B.
        let status = a.stop();
        assert!(status.success(), "exit {status:?}: {}", a.log());
        wait_for_log(&b, ALL_FOUR, 1);
        produce_cards(&broker, 5 * step..6 * step);
        wait_outputs(&files, 6 * step, "B alone", &[&b]);
        // A again, behind B on every partition: what it gets back catches
        // up from the changelog B wrote.
        let mut a = a_run(3);
        wait_for_log(&a, "partitions assigned", 1);
        produce_cards(&broker, 6 * step..7 * step);
        wait_outputs(&files, 7 * step, "A and B again", &[&a, &b]);
        let a_log = a.log();
        assert!(
            restored_keys(&a_log).iter().any(|&k| k > 0),
            "A restored state B wrote: {a_log}"
        );
        assert!(
            !read_lines_tolerant(&files[2]).is_empty(),
            "A processed partitions after it came back: {a_log}"
        );
        for w in [&mut a, &mut b] {
            let status = w.stop();
            assert!(status.success(), "exit {status:?}: {}", w.log());
        }
        let repeated = assert_exact(&files, 7 * step);
        eprintln!("{repeated} outputs re-delivered across the moves");
    });
}

#[test]
fn kafka_keyed_restore_into_an_empty_state_dir_gives_the_same_state() {
    timed(Duration::from_secs(300), || {
        let n = 3_000;
        let (_tmp, broker, dirs) = members(n, ["a", "c"]);
        // The same pipeline and group in both folders.
        // The same pipeline and group in both folders, with a changelog
        // topic of its own name.
        let [a_file, c_file] = dirs.each_ref().map(|d| {
            let file = counting(d, &broker, "g-restore", "out.jsonl");
            let toml = std::fs::read_to_string(&file).expect("read pipeline");
            let named = toml.replace(
                "key = \"/card\"\n",
                "key = \"/card\"\nchangelog_topic = \"cards-log\"\n",
            );
            assert_ne!(named, toml);
            std::fs::write(&file, named).expect("write pipeline");
            file
        });
        let [a_dir, c_dir] = dirs;
        let mut a = Weir::start(&a_file, a_dir.join("weir.log"));
        wait_outputs(&[a_dir.join("out.jsonl")], n, "A", &[&a]);
        let status = a.stop();
        assert!(status.success(), "exit {status:?}: {}", a.log());
        assert_exact(&[a_dir.join("out.jsonl")], n);
        let stored = stored_counts(&a_dir);
        assert_eq!(stored, totals(n));
        assert_eq!(topic_names(&broker), ["cards-log", "in"]);
        // Let compaction run over the changelog (every 2 s) before reading it.
        std::thread::sleep(Duration::from_secs(5));

        // C: same pipeline and group, an empty state_dir; every partition is
        // restored from the changelog, and nothing is left to process.
        let mut c = Weir::start(&c_file, c_dir.join("weir.log"));
        wait_for_log(&c, "restored partition", PARTITIONS as usize);
        let status = c.stop();
        assert!(status.success(), "exit {status:?}: {}", c.log());
        let keys: u64 = restored_keys(&c.log()).iter().sum();
        assert_eq!(keys, KEYS as u64, "{}", c.log());
        assert_eq!(stored_counts(&c_dir), stored);
        assert!(
            read_lines_tolerant(&c_dir.join("out.jsonl")).is_empty(),
            "C had nothing to process"
        );
    });
}
