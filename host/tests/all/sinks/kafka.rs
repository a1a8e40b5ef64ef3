//! Kafka in, the three action sinks out (redis, postgres, http): the
//! at-least-once guarantee end to end. An offset is committed only after
//! every sink acknowledged the events below it (checked while the HTTP
//! receiver stalls, with Redis and PostgreSQL already holding later events),
//! and after a SIGKILL with requests in flight and a restart, every event is
//! in Redis and PostgreSQL exactly once (versioned upserts) and answered by
//! the receiver at least once, repeats only after the last commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer};

use super::receiver::Receiver;
use super::servers::{Postgres, Redis};
use crate::kafka::{PARTITIONS, Weir, committed, producer, send, timed, wait_committed};
use crate::support::{Broker, Pipeline, plugin_dir, read_jsonl_or_empty};

/// Cards, a multiple of the partitions: each card's events are in one
/// partition, in order.
const CARDS: u64 = 40;
const GROUP: &str = "g-actions";

fn value(i: u64) -> String {
    format!(
        "{{\"i\":{i},\"card_id\":\"c{}\",\"ts\":{},\"score\":{}}}",
        i % CARDS,
        1000 + i,
        (i * 7919 % 1000) as f64 / 1000.0
    )
}

/// Event `i` is at offset `i / 4` of partition `i % 4` (a fresh topic).
fn partition_offset(i: u64) -> (usize, i64) {
    (
        (i % PARTITIONS as u64) as usize,
        (i / PARTITIONS as u64) as i64,
    )
}

/// Produces events `range` to `in`, without headers.
fn produce(broker: &Broker, range: std::ops::Range<u64>) {
    let producer = producer(broker);
    for i in range {
        let (key, payload) = (format!("k{i}"), value(i));
        let record = BaseRecord::to("in")
            .partition(partition_offset(i).0 as i32)
            .key(&key)
            .payload(&payload);
        send(&producer, record);
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush the produced events");
}

fn write_pipeline(dir: &Path, broker: &Broker, redis: &Redis, pg: &Postgres, hook: &Receiver) {
    plugin_dir(dir, &["router"]);
    Pipeline::new(dir)
        .top("name = \"actions\"")
        .source(&crate::kafka::in_topic_source(broker, GROUP))
        .batch(100, 20)
        .stage_with(
            "route",
            "router",
            "[stages.params]\nalso = [\"decisions\", \"hook\"]\n",
        )
        .output(
            "default",
            &format!(
                "type = \"redis\"\nurl = \"{}\"\nkey = \"ev:{{/i}}\"\nversion = \"/ts\"\n",
                redis.url()
            ),
        )
        .output(
            "decisions",
            &format!(
                "type = \"postgres\"\nurl = \"{}\"\ntable = \"cards\"\nkey = \"card_id\"\n\
                 columns = {{ card_id = \"/card_id\", score = \"/score\", ts = \"/ts\" }}\n\
                 types = {{ score = \"double precision\", ts = \"bigint\" }}\n\
                 version = \"/ts\"\ncreate_table = true\n",
                pg.url()
            ),
        )
        .output(
            "hook",
            &format!(
                "type = \"http\"\nurl = \"{}\"\nformat = \"ndjson\"\nbatch_max_events = 50\n\
                 concurrency = 2\ntimeout_ms = 120000\n",
                hook.url("/hook")
            ),
        )
        .tables("[reload]\nenabled = false\n")
        .write(dir);
}

/// The ids in the receiver's answered (2xx) requests, with how often each
/// was answered.
fn answered(hook: &Receiver) -> BTreeMap<u64, usize> {
    let mut ids = BTreeMap::new();
    for r in hook.received().iter().filter(|r| r.status == 200) {
        for v in r.values() {
            *ids.entry(v["i"].as_u64().expect("i")).or_default() += 1;
        }
    }
    ids
}

/// The ids held in Redis (`ev:<i>`).
fn in_redis(redis: &Redis) -> BTreeSet<u64> {
    redis
        .keys("ev:*")
        .iter()
        .map(|k| k.trim_start_matches("ev:").parse().expect("numeric id"))
        .collect()
}

/// Each card's stored version in PostgreSQL.
fn pg_versions(pg: &Postgres) -> HashMap<String, i64> {
    if pg.query("SELECT to_regclass('cards') IS NOT NULL").trim() != "t" {
        return HashMap::new();
    }
    pg.query("SELECT card_id, version FROM cards")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (card, version) = l.split_once('|').expect("card|version");
            (card.to_owned(), version.parse().expect("version"))
        })
        .collect()
}

/// Per partition, the offset below which every event of `0..n` was
/// acknowledged by all three sinks: answered by the receiver, in Redis, and
/// covered by its card's version in PostgreSQL.
fn acknowledged_prefix(n: u64, hook: &Receiver, redis: &Redis, pg: &Postgres) -> Vec<i64> {
    let (http, kv, rows) = (answered(hook), in_redis(redis), pg_versions(pg));
    let mut prefix = vec![None; PARTITIONS as usize];
    for i in 0..n {
        let (p, offset) = partition_offset(i);
        let card = format!("c{}", i % CARDS);
        let done = http.contains_key(&i)
            && kv.contains(&i)
            && rows.get(&card).is_some_and(|v| *v >= 1000 + i as i64);
        if !done && prefix[p].is_none() {
            prefix[p] = Some(offset);
        }
    }
    prefix
        .into_iter()
        .map(|p| p.unwrap_or(n as i64 / PARTITIONS as i64))
        .collect()
}

#[test]
fn kafka_offsets_wait_for_the_action_sinks_and_a_sigkill_loses_nothing() {
    timed(Duration::from_secs(480), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite();
        broker.create_topic("in", PARTITIONS as u32);
        let (redis, pg, mut hook) = (Redis::start(), Postgres::start(), Receiver::start());
        write_pipeline(tmp.path(), &broker, &redis, &pg, &hook);
        let pipeline = tmp.path().join("pipeline.toml");
        let (a, b, n) = (800u64, 1600u64, 2400u64);
        let per_partition = |k: u64| vec![Some(k as i64 / PARTITIONS as i64); PARTITIONS as usize];

        // 1. The first events, all acknowledged, all committed.
        produce(&broker, 0..a);
        let mut first = Weir::start(&pipeline, tmp.path().join("weir1.log"));
        wait_committed(
            &broker,
            GROUP,
            &per_partition(a),
            &mut first,
            Duration::from_secs(180),
        );
        let http = answered(&hook);
        assert!(
            (0..a).all(|i| http.contains_key(&i)),
            "committed before the receiver answered"
        );

        // 2. The receiver stalls: the next events reach Redis and PostgreSQL
        // but not its answer, so their offsets must not be committed.
        hook.stall(true);
        produce(&broker, a..b);
        crate::metrics::wait_for(
            "later events in Redis while the receiver stalls",
            Duration::from_secs(120),
            || hook.held() > 0 && in_redis(&redis).iter().any(|i| *i >= a),
        );
        let watch_until = Instant::now() + Duration::from_secs(4);
        let mut checks = 0;
        while Instant::now() < watch_until {
            first.assert_running();
            let got = committed(&broker, GROUP, "in");
            let acked = acknowledged_prefix(b, &hook, &redis, &pg);
            for p in 0..PARTITIONS as usize {
                let c = got[p].unwrap_or(0);
                assert!(
                    c <= acked[p],
                    "partition {p}: offset {c} committed, only {} acknowledged by every sink",
                    acked[p]
                );
            }
            checks += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        let at_kill = committed(&broker, GROUP, "in");
        let kv = in_redis(&redis);
        let beyond = (a..b)
            .filter(|i| {
                let (p, offset) = partition_offset(*i);
                kv.contains(i) && offset >= at_kill[p].unwrap_or(0)
            })
            .count();
        assert!(
            beyond > 0,
            "no event in Redis beyond the committed offsets: nothing in flight"
        );
        assert!(hook.held() > 0, "no request in flight at the kill");

        // 3. SIGKILL with requests in flight; the held requests are never
        // answered (the receiver drops them), then a restart.
        drop(first);
        hook.down();
        hook.stall(false);
        hook.up();
        produce(&broker, b..n);
        let mut second = Weir::start(&pipeline, tmp.path().join("weir2.log"));
        wait_committed(
            &broker,
            GROUP,
            &per_partition(n),
            &mut second,
            Duration::from_secs(240),
        );
        let status = second.stop();
        assert!(status.success(), "exit {status:?}: {}", second.log());

        // Redis: every event exactly once, as sent.
        let mut c = redis.connection();
        let keys: i64 = ::redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE");
        assert_eq!(keys, n as i64, "one key per event");
        for i in 0..n {
            let h: BTreeMap<String, String> = ::redis::cmd("HGETALL")
                .arg(format!("ev:{i}"))
                .query(&mut c)
                .expect("HGETALL");
            let want: serde_json::Value = serde_json::from_str(&value(i)).expect("json");
            assert_eq!(h["i"], i.to_string(), "{h:?}");
            assert_eq!(h["card_id"], want["card_id"].as_str().expect("card"));
            assert_eq!(h["ts"], want["ts"].to_string());
            assert_eq!(h["_version"], want["ts"].to_string());
            assert_eq!(h["score"], want["score"].to_string());
        }
        // PostgreSQL: one row per card, its latest event.
        let rows = pg.query("SELECT card_id, ts, score, version FROM cards ORDER BY card_id");
        let rows: Vec<&str> = rows.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(rows.len() as u64, CARDS, "one row per card");
        for row in rows {
            let f: Vec<&str> = row.split('|').collect();
            let card: u64 = f[0].trim_start_matches('c').parse().expect("card");
            let last = (0..n).filter(|i| i % CARDS == card).max().expect("events");
            let want: serde_json::Value = serde_json::from_str(&value(last)).expect("json");
            assert_eq!(f[1], want["ts"].to_string(), "{row}");
            assert_eq!(f[3], want["ts"].to_string(), "{row}");
            assert_eq!(
                f[2].parse::<f64>().expect("score"),
                want["score"].as_f64().expect("score"),
                "{row}"
            );
        }
        // HTTP: every event answered, repeats only at or after the offsets
        // committed when weir was killed.
        let http = answered(&hook);
        let missing: Vec<u64> = (0..n).filter(|i| !http.contains_key(i)).take(10).collect();
        assert!(missing.is_empty(), "never answered (first 10): {missing:?}");
        for (i, count) in &http {
            let (p, offset) = partition_offset(*i);
            assert!(
                *count == 1 || offset >= at_kill[p].unwrap_or(0),
                "event {i} answered {count} times, committed before the kill ({:?})",
                at_kill[p]
            );
        }
        assert!(
            hook.received().iter().all(|r| r
                .header("idempotency-key")
                .is_some_and(|k| k.starts_with("in/"))),
            "every request has an Idempotency-Key from its Kafka position"
        );
        assert!(read_jsonl_or_empty(&tmp.path().join("dlq.jsonl")).is_empty());
        eprintln!(
            "action sinks: {checks} commit checks while stalled, committed at kill {at_kill:?}, \
             {beyond} events in Redis beyond it"
        );
    });
}

/// The unversioned redis sink holds a batch's acknowledgements until the
/// next batch is on its way (the two overlap): once the stream goes quiet,
/// the last batch is completed anyway, so every offset is committed while
/// weir keeps running and nothing more arrives.
#[test]
fn a_quiet_stream_commits_the_last_unversioned_redis_batch() {
    timed(Duration::from_secs(240), || {
        let tmp = tempfile::tempdir().expect("tempdir");
        let broker = Broker::sqlite();
        broker.create_topic("in", PARTITIONS as u32);
        let redis = Redis::start();
        let group = "g-quiet";
        Pipeline::new(tmp.path())
            .top("name = \"quiet\"")
            .source(&crate::kafka::in_topic_source(&broker, group))
            .batch(100, 20)
            .output(
                "default",
                &format!(
                    "type = \"redis\"\nurl = \"{}\"\nkey = \"ev:{{/i}}\"\nversion = \"none\"\n",
                    redis.url()
                ),
            )
            .tables("[reload]\nenabled = false\n")
            .write(tmp.path());
        let n = 1_000u64;
        produce(&broker, 0..n);
        let mut weir = Weir::start(
            &tmp.path().join("pipeline.toml"),
            tmp.path().join("weir.log"),
        );
        let all = vec![Some(n as i64 / PARTITIONS as i64); PARTITIONS as usize];
        wait_committed(&broker, group, &all, &mut weir, Duration::from_secs(120));
        weir.assert_running();
        assert_eq!(in_redis(&redis), (0..n).collect::<BTreeSet<u64>>());
        let status = weir.stop();
        assert!(status.success(), "exit {status:?}: {}", weir.log());
    });
}
