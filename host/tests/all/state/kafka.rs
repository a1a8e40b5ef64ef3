//! Keyed state on a Kafka source (real tansu broker on `sqlite://` with a
//! 2 s maintenance interval, so the changelog topics really get compacted):
//! SIGKILL and restart, two processes moving partitions both ways through
//! the changelog, and a restore into an empty `state_dir`. Counts are exact:
//! every output — re-deliveries included — carries its input's rank among
//! its key's events.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{ranks, read_lines_tolerant, stored_counts};
use crate::kafka::{PARTITIONS, Weir, send, timed, wait_for_log};
use crate::support::{Broker, Pipeline, plugin_dir};

const KEYS: usize = 41;

/// Produces inputs `range`: value `{"card": "c<k>", "input": i}` with
/// `k = i % KEYS`, to partition `k % 4` (a card's events share a partition,
/// in input order).
fn produce_cards(broker: &Broker, range: std::ops::Range<usize>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in range {
        let k = i % KEYS;
        let key = format!("c{k}");
        let value = format!("{{\"card\":\"{key}\",\"input\":{i}}}");
        let record = BaseRecord::to("in")
            .partition((k % PARTITIONS as usize) as i32)
            .key(&key)
            .payload(&value);
        send(&producer, record);
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush the produced events");
}

/// `<dir>/pipeline.toml`: `in` (group `group`) → keyed-count on `/card` →
/// `<dir>/<out>`; pipeline name `counts` (the changelog is
/// `counts-count-changelog`), state under `<dir>/.weir-state`.
fn counting(dir: &Path, broker: &Broker, group: &str, out: &str) -> PathBuf {
    plugin_dir(dir, &["keyed-count"]);
    Pipeline::new(dir)
        .top("name = \"counts\"")
        .source(&format!(
            "type = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"in\"]\ngroup_id = \"{group}\"\n\
             [source.properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 1000\n\
             \"auto.commit.interval.ms\" = 500\n",
            broker.addr()
        ))
        .batch(64, 5)
        .stage_with("count", "keyed-count", "[stages.state]\nkey = \"/card\"\n")
        .output("default", &format!("type = \"file\"\npath = \"{out}\"\n"))
        .tables("[reload]\nenabled = false\n")
        .write(dir)
}

/// The outputs of these files (torn last lines skipped).
fn outputs(files: &[PathBuf]) -> Vec<serde_json::Value> {
    files.iter().flat_map(|f| read_lines_tolerant(f)).collect()
}

fn distinct(files: &[PathBuf]) -> BTreeSet<u64> {
    outputs(files)
        .iter()
        .filter_map(|o| o["value"]["input"].as_u64())
        .collect()
}

/// Waits until the files hold outputs for `want` distinct inputs.
fn wait_outputs(files: &[PathBuf], want: usize, what: &str, logs: &[&Weir]) {
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
fn assert_exact(files: &[PathBuf], n: usize) -> usize {
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
fn totals(n: usize) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for i in 0..n {
        *out.entry(format!("c{}", i % KEYS)).or_default() += 1;
    }
    out
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
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite_compacting();
        broker.create_topic("in", PARTITIONS as u32);
        let n = 6_000;
        produce_cards(&broker, 0..n);
        let dir = tmp.path();
        let first = counting(dir, &broker, "g-crash", "out1.jsonl");
        let files = [dir.join("out1.jsonl"), dir.join("out2.jsonl")];
        let mut weir = Weir::start(&first, dir.join("weir1.log"));
        wait_outputs(&files[..1], n / 6, "before the kill", &[&weir]);
        drop(weir); // SIGKILL
        let done = distinct(&files).len();
        assert!(
            done < n,
            "killed mid-stream: {done} of {n} inputs had output"
        );
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

#[test]
fn kafka_keyed_partitions_move_both_ways_between_two_processes_counts_exact() {
    timed(Duration::from_secs(600), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite_compacting();
        broker.create_topic("in", PARTITIONS as u32);
        let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a_dir).expect("mkdir");
        std::fs::create_dir_all(&b_dir).expect("mkdir");
        let a1 = counting(&a_dir, &broker, "g-move", "out1.jsonl");
        let b_file = counting(&b_dir, &broker, "g-move", "out.jsonl");
        let files = [
            a_dir.join("out1.jsonl"),
            b_dir.join("out.jsonl"),
            a_dir.join("out2.jsonl"),
        ];
        let third = 2_000;
        produce_cards(&broker, 0..third);
        let a = Weir::start(&a1, a_dir.join("weir1.log"));
        wait_outputs(&files, third / 2, "A alone", &[&a]);
        // B joins mid-stream: some partitions move to B, their state with
        // them (B's state_dir is empty: only the changelog has it).
        let mut b = Weir::start(&b_file, b_dir.join("weir.log"));
        wait_for_log(&b, "partitions assigned", 1);
        produce_cards(&broker, third..2 * third);
        wait_outputs(&files, 2 * third, "A and B", &[&a, &b]);
        assert!(
            restored_keys(&b.log()).iter().any(|&k| k > 0),
            "B restored state A wrote: {}",
            b.log()
        );
        // SIGKILL A: all partitions move to B once A's session expired.
        let before = b.log().matches("partitions assigned").count();
        drop(a);
        wait_for_log(&b, "partitions assigned", before + 1);
        produce_cards(&broker, 2 * third..5 * third / 2);
        wait_outputs(&files, 5 * third / 2, "B alone", &[&b]);
        // A again (its own state_dir, behind B's work): some partitions move
        // back and catch up from the changelog.
        let a2 = counting(&a_dir, &broker, "g-move", "out2.jsonl");
        let mut a = Weir::start(&a2, a_dir.join("weir2.log"));
        wait_for_log(&a, "partitions assigned", 1);
        produce_cards(&broker, 5 * third / 2..3 * third);
        wait_outputs(&files, 3 * third, "A and B again", &[&a, &b]);
        let a_log = a.log();
        assert!(
            restored_keys(&a_log).iter().any(|&k| k > 0),
            "A restored state B wrote: {a_log}"
        );
        assert!(
            !read_lines_tolerant(&files[2]).is_empty(),
            "A processed partitions after its restart: {a_log}"
        );
        for w in [&mut a, &mut b] {
            let status = w.stop();
            assert!(status.success(), "exit {status:?}: {}", w.log());
        }
        let repeated = assert_exact(&files, 3 * third);
        eprintln!("{repeated} outputs re-delivered across the moves");
    });
}

#[test]
fn kafka_keyed_restore_into_an_empty_state_dir_gives_the_same_state() {
    timed(Duration::from_secs(300), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite_compacting();
        broker.create_topic("in", PARTITIONS as u32);
        let n = 3_000;
        produce_cards(&broker, 0..n);
        let (a_dir, c_dir) = (tmp.path().join("a"), tmp.path().join("c"));
        std::fs::create_dir_all(&a_dir).expect("mkdir");
        std::fs::create_dir_all(&c_dir).expect("mkdir");
        let a_file = counting(&a_dir, &broker, "g-restore", "out.jsonl");
        let mut a = Weir::start(&a_file, a_dir.join("weir.log"));
        wait_outputs(&[a_dir.join("out.jsonl")], n, "A", &[&a]);
        let status = a.stop();
        assert!(status.success(), "exit {status:?}: {}", a.log());
        assert_exact(&[a_dir.join("out.jsonl")], n);
        let stored = stored_counts(&a_dir);
        assert_eq!(stored, totals(n));
        // Let compaction run over the changelog (every 2 s) before reading it.
        std::thread::sleep(Duration::from_secs(5));

        // C: same pipeline and group, an empty state_dir; every partition is
        // restored from the changelog, and nothing is left to process.
        let c_file = counting(&c_dir, &broker, "g-restore", "out.jsonl");
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
