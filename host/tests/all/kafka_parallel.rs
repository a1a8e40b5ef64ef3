//! A plain stage at `parallelism = 4` on a Kafka topic of 8 partitions
//! (real broker): per-partition order and one delivery per event on a clean
//! run; at least once across SIGKILL and restart, repeats only of events
//! the group had not committed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::kafka::{Weir, assert_repeats_uncommitted, committed_of, produce_each, timed};
use crate::support::{Broker, Pipeline, file_table, plugin_dir, read_jsonl_or_empty};

const PARTITIONS: i32 = 8;
const GROUP: &str = "g-lanes";

/// Events `range` to topic `in8`: key `k<i>`, partition `i % 8` (so event
/// `i` is at offset `i / 8`), value `ev-<i>`.
fn produce(broker: &Broker, range: std::ops::Range<u64>) {
    produce_each(&broker.addr(), "in8", range, |i| {
        let partition = (i % PARTITIONS as u64) as i32;
        (partition, format!("k{i}"), format!("ev-{i}"))
    });
}

/// `in8` → `upper` on 4 instances → `out.jsonl` (appended to across
/// restarts), offsets committed every `commit_ms`.
fn pipeline(dir: &Path, broker: &Broker, commit_ms: u64) -> std::path::PathBuf {
    plugin_dir(dir, &["upper"]);
    let source = format!(
        "type = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"in8\"]\ngroup_id = \"{GROUP}\"\n\
         [source.properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 1000\n\
         \"auto.commit.interval.ms\" = {commit_ms}\n",
        broker.addr()
    );
    Pipeline::new(dir)
        .source(&source)
        .batch(1024, 20)
        .stage_with("work", "upper", "parallelism = 4\n")
        .output("default", &(file_table("out.jsonl") + "append = true\n"))
        .tables("[reload]\nenabled = false\n")
        .write(dir)
}

/// One output line: the event id and where it was read.
#[derive(Debug, Clone, Copy)]
struct Out {
    id: u64,
    partition: i32,
    offset: i64,
}

fn outputs(dir: &Path) -> Vec<Out> {
    read_jsonl_or_empty(&dir.join("out.jsonl"))
        .iter()
        .map(|o| {
            let value = o["value"].as_str().expect("a text value");
            let id = value
                .strip_prefix("EV-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("upper ran on every event: {o}"));
            let source = &o["source"];
            Out {
                id,
                partition: source["partition"].as_i64().expect("partition") as i32,
                offset: source["offset"].as_i64().expect("offset"),
            }
        })
        .collect()
}

/// Waits until the file holds every id in `0..n` (weir still running).
fn wait_all(dir: &Path, n: u64, weir: &mut Weir) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let out = outputs(dir);
        let mut ids: Vec<u64> = out.iter().map(|o| o.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() as u64 >= n {
            return;
        }
        weir.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} of {n} ids after 240 s: {}",
            ids.len(),
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every id of `0..n` is there, read from where it was produced, and each
/// partition's events come in offset order (first occurrences: a restart
/// may repeat a suffix). Returns how often each id was delivered.
fn check(out: &[Out], n: u64) -> BTreeMap<u64, usize> {
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    let mut last: HashMap<i32, i64> = HashMap::new();
    for o in out {
        assert_eq!(o.partition as u64, o.id % PARTITIONS as u64, "{o:?}");
        assert_eq!(o.offset as u64, o.id / PARTITIONS as u64, "{o:?}");
        let seen = count.entry(o.id).or_default();
        *seen += 1;
        if *seen > 1 {
            continue;
        }
        if let Some(prev) = last.insert(o.partition, o.offset) {
            assert!(
                prev < o.offset,
                "partition {} out of order: offset {prev} before {}",
                o.partition,
                o.offset
            );
        }
    }
    let missing: Vec<u64> = (0..n).filter(|i| !count.contains_key(i)).take(10).collect();
    assert!(missing.is_empty(), "missing ids (first 10): {missing:?}");
    assert_eq!(count.len() as u64, n, "no id outside 0..n");
    count
}

#[test]
fn eight_partitions_on_four_instances_keep_partition_order_and_deliver_once() {
    timed(Duration::from_secs(420), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite();
        broker.create_topic("in8", PARTITIONS as u32);
        let n = 16_000;
        produce(&broker, 0..n);
        let file = pipeline(tmp.path(), &broker, 500);
        let mut weir = Weir::start(&file, tmp.path().join("weir.log"));
        wait_all(tmp.path(), n, &mut weir);
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());
        assert!(weir.log().contains("instances=4"), "{}", weir.log());
        let count = check(&outputs(tmp.path()), n);
        assert!(
            count.values().all(|&c| c == 1),
            "a clean run delivers each event once"
        );
    });
}

#[test]
fn four_instances_killed_and_restarted_repeat_only_uncommitted_events() {
    timed(Duration::from_secs(420), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite();
        broker.create_topic("in8", PARTITIONS as u32);
        let n = 16_000;
        produce(&broker, 0..n / 2);
        let file = pipeline(tmp.path(), &broker, 1000);
        let mut first = Weir::start(&file, tmp.path().join("weir1.log"));
        let deadline = Instant::now() + Duration::from_secs(180);
        let committed = || committed_of(&broker, GROUP, "in8", PARTITIONS);
        while committed().iter().flatten().sum::<i64>() < 1_000 {
            first.assert_running();
            assert!(Instant::now() < deadline, "no commit: {}", first.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        produce(&broker, n / 2..n);
        first.signal("-KILL");
        first.kill();
        assert!(first.log().contains("instances=4"), "{}", first.log());
        let at_kill = committed();
        let mut second = Weir::start(&file, tmp.path().join("weir2.log"));
        wait_all(tmp.path(), n, &mut second);
        let status = second.stop();
        assert!(status.success(), "exit {status:?}: {}", second.log());
        let count = check(&outputs(tmp.path()), n);
        let repeated = assert_repeats_uncommitted(&count, &at_kill, PARTITIONS);
        eprintln!("lanes sigkill: committed at kill {at_kill:?}, {repeated} ids repeated");
    });
}
